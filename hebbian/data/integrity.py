"""Is what was read from disk a usable dataset? Damaged idx files, empty splits, labels and shapes.

A dataset that is on disk but cannot be used raises :class:`DatasetError` (a :class:`~hebbian.errors.UsageError`:
the ``hebbian`` command prints it as one line) naming the dataset, the file or folder, and what was expected. The
checks run when the data is loaded, before any model is built or trained.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from hebbian.errors import UsageError

#: idx (MNIST-style) type codes and their item sizes in bytes (LeCun's format; MNIST uses 0x08, unsigned bytes).
IDX_ITEM_BYTES = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}


class DatasetError(UsageError, ValueError):
    """A dataset is on disk but cannot be used (a damaged file, an empty split, labels outside the classes, images of
    another shape); the message names the dataset, where it was read and what was expected."""


def idx_problem(path: Path, dims: int) -> Optional[str]:
    """What is wrong with the idx file ``path`` that should hold a ``dims``-dimensional array, or ``None``.

    Reads only the header and the file size: the magic number (``0x0000 <type> <dims>``), one 4-byte big-endian
    size per dimension, then exactly ``prod(sizes) * item size`` bytes of data.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(4 + 4 * dims)
    if len(head) < 4:
        return f"it is {size} bytes long, shorter than the 4-byte idx header"
    zero, kind, nd = int.from_bytes(head[:2], "big"), head[2], head[3]
    if zero != 0 or kind not in IDX_ITEM_BYTES or nd != dims:
        return (f"its header {head[:4].hex()} is not that of a {dims}-dimensional idx array (expected 0000 <type> "
                f"{dims:02x})")
    if len(head) < 4 + 4 * dims:
        return f"it is {size} bytes long, shorter than its {4 + 4 * dims}-byte header"
    shape = [int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    expected = 4 + 4 * dims + IDX_ITEM_BYTES[kind] * math.prod(shape)
    if size != expected:
        cut = "truncated" if size < expected else "longer than its header says"
        return f"it is {cut}: {size} bytes, where its header (shape {tuple(shape)}) needs {expected}"
    return None


def idx_length(path: Path) -> int:
    """The first dimension (number of items) in the header of an idx file that :func:`idx_problem` accepted."""
    with open(path, "rb") as f:
        head = f.read(8)
    return int.from_bytes(head[4:8], "big")


def check_idx_files(name: str, images: Path, labels: Path) -> None:
    """Check the image (3-d) and label (1-d) idx files of one split of an MNIST-style dataset, where they exist.

    Raises:
        DatasetError: a file is damaged (naming it and how), holds no images, or the two disagree in length.
    """
    present = [p for p in (images, labels) if p.is_file()]
    for path, dims in ((images, 3), (labels, 1)):
        if path in present:
            problem = idx_problem(path, dims)
            if problem is not None:
                raise DatasetError(f"{name} file {path} is damaged: {problem}; replace it with an intact copy "
                                   "(or delete the folder and pass --download)")
    if len(present) < 2:
        return  # torchvision reports what is missing
    n_images, n_labels = idx_length(images), idx_length(labels)
    if n_images != n_labels:
        raise DatasetError(f"{name}: {images} holds {n_images} images but {labels} holds {n_labels} labels; the two "
                           "files must have one label per image")
    if n_images == 0:
        raise DatasetError(f"{name}: {images} holds no images; expected at least one")


def check_loaded(name: str, split: str, where: str, x: Tensor, y: Tensor, shape: Tuple[int, int, int],
                 num_classes: int) -> None:
    """The images ``x`` ``(N, C, H, W)`` and labels ``y`` ``(N,)`` of one split are non-empty, of one length, of the
    dataset's image ``shape``, and the labels are class indices in ``[0, num_classes)``.

    Raises:
        DatasetError: naming the dataset, the split, ``where`` it was read from and what was expected.
    """
    what = f"{name} {split} split ({where})"
    if x.shape[0] != y.shape[0]:
        raise DatasetError(f"{what} has {x.shape[0]} images but {y.shape[0]} labels; expected one label per image")
    if x.shape[0] == 0:
        raise DatasetError(f"{what} holds no images; expected at least one")
    if tuple(x.shape[1:]) != tuple(shape):
        raise DatasetError(f"{what} has images of shape {tuple(x.shape[1:])}; {name} images are {tuple(shape)} "
                           "(channels, height, width)")
    if y.dim() != 1 or y.dtype.is_floating_point or y.dtype == torch.bool or y.is_complex():
        raise DatasetError(f"{what} has labels of shape {tuple(y.shape)} and dtype {y.dtype}; expected one integer "
                           "class index per image")
    bad = (y < 0) | (y >= num_classes)
    if bool(bad.any()):
        values = _describe(torch.unique(y[bad]).tolist())
        raise DatasetError(f"{what} has {int(bad.sum())} label(s) outside the {num_classes} classes [0, "
                           f"{num_classes - 1}]: {values}")


def _describe(values: Sequence[int], most: int = 5) -> str:
    shown = ", ".join(str(v) for v in values[:most])
    return shown + (f" and {len(values) - most} other values" if len(values) > most else "")


def describe_root(root: Optional[os.PathLike]) -> str:
    """Where a dataset was read from, for messages: the root folder, or the bundled copy."""
    return "bundled" if root is None else f"under {root}"
