"""Fixtures of the pytorch-hebbian compat tests (helpers in compat_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from compat_helpers import SHARED, SIZES, Sandbox, write_subset


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory) -> Path:
    """A data root with the first images of the shared MNIST and Fashion-MNIST (see compat_helpers.SIZES)."""
    if not all((SHARED / name / "raw").is_dir() for name in SIZES):
        pytest.skip(f"MNIST / FashionMNIST are not under {SHARED} (torchvision layout <name>/raw)")
    root = tmp_path_factory.mktemp("data")
    write_subset(SHARED, root)
    return root


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    """Nothing may download: torchvision's download helpers raise instead."""
    import torchvision.datasets.mnist as mnist
    import torchvision.datasets.utils as utils

    def refuse(*args, **kwargs):
        raise AssertionError(f"a test tried to download {args[:1]}")

    for module in (utils, mnist):
        for name in ("download_and_extract_archive", "download_url"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, refuse)


@pytest.fixture
def sandbox(monkeypatch, tmp_path, tiny_data_root) -> Sandbox:
    """examples/pytorch_hebbian copied to a temporary folder, run from there on ``tiny_data_root``."""
    box = Sandbox(monkeypatch, tmp_path, tiny_data_root)
    yield box
    box.forget_modules()
