"""Seeded, stratified splits of a labelled dataset (every class split in the same proportion)."""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor
from torch.utils.data import TensorDataset


def stratified_indices(labels: Tensor, fraction: float, seed: int) -> Tuple[Tensor, Tensor]:
    """``(kept, held_out)`` sorted index tensors: from each class a seeded random ``fraction`` is held out.

    Args:
        labels: ``(N,)`` integer class labels.
        fraction: share of each class held out, in ``(0, 1)`` (rounded down per class, at least one sample of a
            class with two or more).
        seed: seed of the draw (the same seed gives the same split).

    Raises:
        ValueError: ``fraction`` outside ``(0, 1)`` or a split that would leave one side empty.
    """
    if isinstance(fraction, bool) or not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    labels = labels.detach().cpu()
    g = torch.Generator().manual_seed(int(seed))
    held = torch.zeros(len(labels), dtype=torch.bool)
    for c in torch.unique(labels):
        idx = (labels == c).nonzero().squeeze(1)
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_held = int(len(idx) * fraction)
        if n_held == 0 and len(idx) > 1:
            n_held = 1
        held[idx[:n_held]] = True
    if held.all() or not held.any():
        raise ValueError(f"a stratified split of {len(labels)} samples with fraction {fraction} leaves one side empty")
    return (~held).nonzero().squeeze(1), held.nonzero().squeeze(1)


def stratified_split(dataset: TensorDataset, fraction: float, seed: int) -> Tuple[TensorDataset, TensorDataset]:
    """``(kept, held_out)`` subsets of ``TensorDataset(x, y)``; see :func:`stratified_indices`."""
    x, y = dataset.tensors[0], dataset.tensors[1]
    kept, held = stratified_indices(y, fraction, seed)
    kept, held = kept.to(y.device), held.to(y.device)
    return TensorDataset(x[kept], y[kept]), TensorDataset(x[held], y[held])
