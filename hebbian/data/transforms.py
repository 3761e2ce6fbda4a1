"""Whole-dataset transforms of in-memory image datasets (applied once, not per batch)."""

from __future__ import annotations

from typing import Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.utils.data import TensorDataset

Number = Union[float, Sequence[float], Tensor]


def channel_stats(dataset: TensorDataset) -> Tuple[Tensor, Tensor]:
    """Per-channel mean and standard deviation of the images ``(N, C, H, W)``, each of shape ``(C,)``."""
    x = dataset.tensors[0]
    return x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))


def pixel_stats(dataset: TensorDataset) -> Tuple[Tensor, Tensor]:
    """Every pixel's mean over the images, ``(C, H, W)``, and the standard deviation of the centred images (a scalar).

    ``(x - mean) / std`` with these gives inputs of zero mean at every pixel (what PCA-type rules assume, and what
    keeps competing units from all pointing into the positive cone of raw pixels) at unit overall variance.
    """
    x = dataset.tensors[0]
    mean = x.mean(dim=0)
    return mean, (x - mean).std()


def center(dataset: TensorDataset, mean: Tensor, std: Tensor) -> TensorDataset:
    """``(x - mean) / std`` with a per-pixel ``mean`` ``(C, H, W)`` and a scalar ``std`` (see :func:`pixel_stats`)."""
    x, *rest = dataset.tensors
    if mean.shape != x.shape[1:]:
        raise ValueError(f"mean must have the image shape {tuple(x.shape[1:])}, got {tuple(mean.shape)}")
    if not float(std) > 0:
        raise ValueError(f"std must be positive, got {float(std)}")
    return TensorDataset((x - mean) / std, *rest)


def normalize(dataset: TensorDataset, mean: Number, std: Number) -> TensorDataset:
    """``(x - mean) / std`` per channel, as ``torchvision.transforms.Normalize`` but once for the whole dataset.

    Args:
        dataset: ``TensorDataset(images (N, C, H, W), labels)``.
        mean: one number or one per channel.
        std: one positive number or one per channel.

    Returns:
        A new ``TensorDataset`` sharing the labels.

    Raises:
        ValueError: a per-channel list of the wrong length, or a non-positive ``std``.
    """
    x, *rest = dataset.tensors
    channels = x.shape[1]
    m, s = (torch.as_tensor(v, dtype=x.dtype).flatten() for v in (mean, std))
    for name, v in (("mean", m), ("std", s)):
        if v.numel() not in (1, channels):
            raise ValueError(f"{name} must be one number or {channels} (one per channel), got {v.numel()}")
    if not bool((s > 0).all()):
        raise ValueError(f"std must be positive, got {s.tolist()}")
    shape = (1, -1, 1, 1)
    return TensorDataset((x - m.view(shape)) / s.view(shape), *rest)
