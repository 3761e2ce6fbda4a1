"""examples/pytorch_hebbian_listing.py: the pytorch-hebbian paper's listings run as a script on a small MNIST subset."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "pytorch_hebbian_listing.py"
MNIST_ROOT = ROOT.parent / "shared" / "datasets"


@pytest.mark.data
@pytest.mark.usefixtures("single_thread")
def test_listings_run_as_a_script(monkeypatch, capsys):
    if not (MNIST_ROOT / "MNIST" / "raw").is_dir():
        pytest.skip(f"MNIST is not under {MNIST_ROOT} (torchvision layout MNIST/raw); the example never downloads")
    argv = [str(SCRIPT), "--data-root", str(MNIST_ROOT), "--limit", "1000", "--epochs", "1", "--probe-epochs", "5"]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(SCRIPT), run_name="__main__")
    out = capsys.readouterr().out
    assert "listing 2 (untrained readout): accuracy" in out
    probe = float(out.split("test accuracy")[-1].strip())
    assert probe > 0.6  # the Krotov features after one epoch on 1,000 images (measured 0.70)


def test_missing_data_root_is_a_clear_error(tmp_path, monkeypatch):
    module = runpy.run_path(str(SCRIPT))
    with pytest.raises(RuntimeError, match="Dataset not found"):
        module["main"](["--data-root", str(tmp_path), "--probe-epochs", "0"])
