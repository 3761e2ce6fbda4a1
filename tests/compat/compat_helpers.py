"""Helpers of the pytorch-hebbian compat tests: a small copy of MNIST / Fashion-MNIST and a sandbox for scripts.

pytorch-hebbian's example scripts read their data from ``config.DATASETS_DIR``, which follows ``$HEBBIAN_DATA_ROOT``.
The scripts are shrunk through that config value: :func:`write_subset` writes the first images of the shared MNIST
and Fashion-MNIST (torchvision's raw IDX layout) into a temporary data root, so the scripts run unchanged on fewer
images. Fashion-MNIST keeps 10,000 training images because ``hebbian.py`` hard-codes a random subset of that size.
"""

from __future__ import annotations

import runpy
import shutil
import struct
import sys
from pathlib import Path
from typing import Dict

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "pytorch_hebbian"
SHARED = ROOT.parent / "shared" / "datasets"

#: images kept per (dataset, split)
SIZES: Dict[str, Dict[str, int]] = {"MNIST": {"train": 512, "t10k": 128}, "FashionMNIST": {"train": 10000, "t10k": 256}}
#: the scripts' helper modules (imported by name from the scripts' folder)
SCRIPT_MODULES = ("data", "models")


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format) as a uint8 array."""
    data = path.read_bytes()
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4: 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_subset(source: Path, target: Path, sizes: Dict[str, Dict[str, int]] = SIZES) -> None:
    """The first ``sizes`` images and labels of each dataset under ``source``, in the same layout under ``target``."""
    for name, splits in sizes.items():
        raw = target / name / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for split, n in splits.items():
            for kind in ("images-idx3", "labels-idx1"):
                file = f"{split}-{kind}-ubyte"
                write_idx(raw / file, read_idx(source / name / "raw" / file)[:n])


class Sandbox:
    """A copy of examples/pytorch_hebbian under ``<tmp>/examples``, run from ``<tmp>`` on the tiny data root."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp: Path, data_root: Path) -> None:
        self.tmp, self.monkeypatch = tmp, monkeypatch
        self.dir = tmp / "examples"
        shutil.copytree(EXAMPLES, self.dir)
        monkeypatch.chdir(tmp)
        monkeypatch.setenv("HEBBIAN_DATA_ROOT", str(data_root))
        monkeypatch.syspath_prepend(str(self.dir))
        for name in SCRIPT_MODULES:  # fresh helper modules for every sandbox
            monkeypatch.delitem(sys.modules, name, raising=False)

    def run(self, script: str, *argv: str, run_name: str = "__main__") -> dict:
        """Run ``script`` as ``python script argv...`` would (``run_name="__main__"``); returns its globals."""
        path = self.dir / script
        self.monkeypatch.setattr(sys, "argv", [str(path), *argv])
        return runpy.run_path(str(path), run_name=run_name)

    @staticmethod
    def forget_modules() -> None:
        for name in SCRIPT_MODULES:
            sys.modules.pop(name, None)
