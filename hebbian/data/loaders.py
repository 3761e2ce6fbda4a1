"""Fast loaders for data that already sits in memory as tensors."""

from __future__ import annotations

from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, TensorDataset


class _GatherDataset(Dataset):
    """A ``TensorDataset`` whose batch fetch (``__getitems__``) is one tensor gather per tensor."""

    def __init__(self, dataset: TensorDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Tuple[Tensor, ...]:
        return self.dataset[index]

    def __getitems__(self, indices: Union[Tensor, Sequence[int]]) -> Tuple[Tensor, ...]:
        tensors = getattr(self.dataset, "tensors", None)
        if isinstance(indices, Tensor) and tensors is not None:  # one index_select per tensor, no Python ints
            return tuple(t.index_select(0, indices.to(t.device)) for t in tensors)
        return self.dataset[indices.tolist() if isinstance(indices, Tensor) else list(indices)]


class _IndexBatchSampler(BatchSampler):
    """A ``BatchSampler`` that yields each batch's indices as a slice of ONE index tensor per epoch.

    ``torch.randperm`` (shuffle) or ``torch.arange`` is drawn once per epoch, on the data's device, and sliced into
    batches: no per-sample Python ints and no host-to-device index copies. The permutation comes from ``generator``,
    else from torch's global RNG (which Ignite's ``DeterministicEngine`` seeds every epoch). Being a ``BatchSampler``,
    it can be wrapped by Ignite's ``ReproducibleBatchSampler``.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        drop_last: bool,
        shuffle: bool,
        generator: Optional[torch.Generator] = None,
        device: Optional[torch.device] = None,
    ) -> None:
        # BatchSampler.__init__ only validates and stores; ``sampler`` is the range it would have iterated.
        super().__init__(range(num_samples), batch_size, drop_last)
        self.num_samples, self.shuffle, self.generator = num_samples, shuffle, generator
        self.device = device if device is not None else torch.device("cpu")

    def _order(self) -> Tensor:
        if not self.shuffle:
            return torch.arange(self.num_samples, device=self.device)
        gen_device = self.generator.device if self.generator is not None else self.device
        return torch.randperm(self.num_samples, generator=self.generator, device=gen_device).to(self.device)

    def __iter__(self) -> Iterator[Tensor]:  # type: ignore[override]
        order = self._order()
        stop = len(self) * self.batch_size if self.drop_last else self.num_samples
        for start in range(0, stop, self.batch_size):
            yield order[start : start + self.batch_size]

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return (self.num_samples + self.batch_size - 1) // self.batch_size


def _as_list(batch: Any) -> List[Tensor]:
    return list(batch)


def in_memory_loader(
    dataset: TensorDataset,
    batch_size: int,
    *,
    shuffle: bool = True,
    drop_last: bool = False,
    generator: Optional[torch.Generator] = None,
) -> DataLoader:
    """A ``DataLoader`` that indexes each batch of a ``TensorDataset`` in one go.

    The batches come from a ``BatchSampler`` (``loader.batch_sampler``) that draws one permutation per epoch on the
    data's device and yields slices of it as index tensors; the dataset's ``__getitems__`` fetches a batch with one
    ``index_select`` per tensor, instead of one ``__getitem__`` per sample and a collate (about 0.05 s per MNIST
    epoch on 2 CPU cores, see ``docs/performance.md``); batches are lists ``[x, y]``. It is an ordinary
    ``DataLoader``: Ignite's ``DeterministicEngine`` can swap in its ``ReproducibleBatchSampler`` (exact mid-epoch
    resume), and with the dataset on a GPU no index ever crosses from the host.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    device = dataset.tensors[0].device if isinstance(dataset, TensorDataset) and dataset.tensors else None
    sampler = _IndexBatchSampler(len(dataset), batch_size, drop_last, shuffle, generator, device)
    return DataLoader(_GatherDataset(dataset), batch_sampler=sampler, collate_fn=_as_list)
