"""Fast loaders for data that already sits in memory as tensors."""

from __future__ import annotations

from typing import Optional

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset


def in_memory_loader(
    dataset: TensorDataset,
    batch_size: int,
    *,
    shuffle: bool = True,
    drop_last: bool = False,
    generator: Optional[torch.Generator] = None,
) -> DataLoader:
    """A ``DataLoader`` that indexes each batch of a ``TensorDataset`` in one go.

    A ``BatchSampler`` is used as the sampler (``batch_size=None``), so ``dataset[list_of_indices]`` is a single
    tensor gather per batch instead of one ``__getitem__`` per sample and a collate. It is an ordinary
    ``DataLoader``: Ignite's ``DeterministicEngine`` and ``idist.auto_dataloader`` work with it.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    base = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    return DataLoader(dataset, batch_size=None, sampler=BatchSampler(base, batch_size, drop_last))
