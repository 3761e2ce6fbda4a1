"""Tiny MNIST-style datasets in torchvision's layout (``ROOT/<name>/raw/*-idx*-ubyte``), written into a test folder."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def write_idx(path: Path, array: np.ndarray) -> Path:
    """``array`` as an idx file of unsigned bytes: magic ``0x0000 08 <dims>``, big-endian sizes, then the data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 | array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.tobytes())
    return path


def fake_mnist(root: Path, n_train: int, n_test: int, labels: Optional[Sequence[int]] = None, name: str = "MNIST",
               size: int = 28, seed: int = 0) -> Path:
    """Random images with labels ``0, 1, ..., 9, 0, ...`` (or ``labels`` repeated) for both splits; returns ``root``."""
    raw = root / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        y = np.arange(n) % 10 if labels is None else np.resize(np.asarray(labels), n)
        images, label_file = FILES[split]
        write_idx(raw / images, rng.integers(0, 256, (n, size, size)))
        write_idx(raw / label_file, y)
    return root


def raw_file(root: Path, split: str, kind: str, name: str = "MNIST") -> Path:
    """The ``kind`` (``"images"`` or ``"labels"``) file of ``split`` (``"train"``/``"test"``)."""
    return root / name / "raw" / FILES[split][0 if kind == "images" else 1]
