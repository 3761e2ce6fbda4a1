"""Fast loaders for data that already sits in memory as tensors."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, TensorDataset


class TensorRows(Dataset):
    """The rows ``rows`` of a ``TensorDataset``, in that order, gathered only when a batch is fetched.

    What ``TensorDataset(*(t[rows] for t in dataset.tensors))`` holds, without copying it: a split of a large feature
    cache (e.g. 60,000 x 57,600 floats, 13.8 GB) costs no second copy.
    """

    def __init__(self, dataset: TensorDataset, rows: Tensor) -> None:
        if not isinstance(dataset, TensorDataset) or not dataset.tensors:
            raise TypeError(f"dataset must be a non-empty TensorDataset, got {type(dataset).__name__}")
        if not isinstance(rows, Tensor) or rows.dim() != 1 or rows.dtype != torch.long:
            raise TypeError("rows must be a 1-d tensor of int64 row indices")
        self.source = dataset.tensors
        self.rows = rows.to(self.device)

    @property
    def device(self) -> torch.device:
        return self.source[0].device

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: Any) -> Tuple[Tensor, ...]:
        return tuple(t[self.rows[index]] for t in self.source)

    def gather(self, indices: Tensor) -> Tuple[Tensor, ...]:
        """The rows at positions ``indices`` of this view: one ``index_select`` per tensor."""
        rows = self.rows.index_select(0, indices.to(self.device))
        return tuple(t.index_select(0, rows) for t in self.source)


class _GatherDataset(Dataset):
    """A ``TensorDataset`` (or :class:`TensorRows`) whose batch fetch (``__getitems__``) is one gather per tensor."""

    def __init__(self, dataset: Union[TensorDataset, TensorRows]) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Tuple[Tensor, ...]:
        return self.dataset[index]

    def __getitems__(self, indices: Union[Tensor, Sequence[int]]) -> Tuple[Tensor, ...]:
        if isinstance(self.dataset, TensorRows):
            return self.dataset.gather(indices if isinstance(indices, Tensor) else torch.as_tensor(list(indices)))
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

    **Sharded** (``num_replicas > 1``): every process draws the same permutation (same ``generator`` seed) and cuts
    the same global batches of ``batch_size``; process ``rank`` takes rows ``rank::num_replicas`` of each (a
    distributed batch sampler). The union of the processes' batches is exactly the single-process batch, the last
    uneven one included, so data-parallel training sees the same global batches as one process. (PyTorch's
    ``DistributedSampler`` would instead pad the data with repeated samples and shuffle per shard.)

    **Checkpointable** (``state_dict`` / ``load_state_dict``): the data order of the current epoch (the generator's
    state before this epoch's permutation was drawn) and how many batches of it were handed out, so that a run
    resumed from a checkpoint (at an epoch's end or in the middle of one) sees the same batches as an uninterrupted
    run, with any Ignite engine. (It counts the batches the ``DataLoader`` took, which with the in-memory loader's
    single process are the batches the engine ran. Under ``DeterministicEngine``, whose ``ReproducibleBatchSampler``
    draws a whole epoch up front and reseeds the global RNG, use a loader without ``generator`` instead.)
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        drop_last: bool,
        shuffle: bool,
        generator: Optional[torch.Generator] = None,
        device: Optional[torch.device] = None,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        # BatchSampler.__init__ only validates and stores; ``sampler`` is the range it would have iterated.
        super().__init__(range(num_samples), batch_size, drop_last)
        if isinstance(num_replicas, bool) or not isinstance(num_replicas, int) or num_replicas < 1:
            raise ValueError(f"num_replicas must be a positive integer, got {num_replicas!r}")
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be an integer in [0, {num_replicas}), got {rank!r}")
        last = num_samples % batch_size
        if num_replicas > 1 and (batch_size < num_replicas or (0 < last < num_replicas and not drop_last)):
            size = batch_size if batch_size < num_replicas else last
            raise ValueError(f"a global batch of {size} images cannot be split over {num_replicas} processes; "
                             "choose a batch size (and number of images) that gives every process a share")
        self.num_samples, self.shuffle, self.generator = num_samples, shuffle, generator
        self.num_replicas, self.rank = num_replicas, rank
        self.device = device if device is not None else torch.device("cpu")
        self._epoch_start_state: Optional[Tensor] = None  # generator state before this epoch's permutation
        self._handed_out = 0  # batches of the current epoch handed out so far
        self._resume_at = 0  # batches to skip at the next epoch (set by load_state_dict)

    def _order(self) -> Tensor:
        if not self.shuffle:
            return torch.arange(self.num_samples, device=self.device)
        if self.generator is not None:
            self._epoch_start_state = self.generator.get_state()
        gen_device = self.generator.device if self.generator is not None else self.device
        return torch.randperm(self.num_samples, generator=self.generator, device=gen_device).to(self.device)

    def __iter__(self) -> Iterator[Tensor]:  # type: ignore[override]
        order = self._order()
        stop = len(self) * self.batch_size if self.drop_last else self.num_samples
        start, self._resume_at = self._resume_at, 0
        self._handed_out = start
        for first in range(start * self.batch_size, stop, self.batch_size):
            batch = order[first : first + self.batch_size]
            self._handed_out += 1
            yield batch if self.num_replicas == 1 else batch[self.rank :: self.num_replicas]

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return (self.num_samples + self.batch_size - 1) // self.batch_size

    def state_dict(self) -> Dict[str, Any]:
        """``{"generator": state or None, "position": batches of the epoch already handed out}``.

        Between epochs (nothing or everything of the epoch handed out) the generator's current state is saved,
        position 0; in the middle of an epoch the state before this epoch's permutation and the position in it.
        """
        middle = 0 < self._handed_out < len(self)
        if self.generator is None:
            state = None
        else:
            state = self._epoch_start_state if middle else self.generator.get_state()
        return {"generator": None if state is None else state.clone(), "position": self._handed_out if middle else 0}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Continue the data order saved by :meth:`state_dict` (the next epoch skips the batches already seen)."""
        state, position = state_dict.get("generator"), state_dict.get("position", 0)
        if (state is None) != (self.generator is None):
            raise ValueError("the saved data order and this loader differ in having a generator")
        if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < max(len(self), 1):
            raise ValueError(f"data order position must be an integer in [0, {len(self)}), got {position!r}")
        if state is not None:
            self.generator.set_state(state)
        self._resume_at, self._handed_out = position, 0

def _as_list(batch: Any) -> List[Tensor]:
    return list(batch)


def in_memory_loader(
    dataset: Union[TensorDataset, TensorRows],
    batch_size: int,
    *,
    shuffle: bool = True,
    drop_last: bool = False,
    generator: Optional[torch.Generator] = None,
    num_replicas: int = 1,
    rank: int = 0,
) -> DataLoader:
    """A ``DataLoader`` that indexes each batch of a ``TensorDataset`` in one go.

    The batches come from a ``BatchSampler`` (``loader.batch_sampler``) that draws one permutation per epoch on the
    data's device and yields slices of it as index tensors; the dataset's ``__getitems__`` fetches a batch with one
    ``index_select`` per tensor, instead of one ``__getitem__`` per sample and a collate (about 0.05 s per MNIST
    epoch on 2 CPU cores, see ``docs/performance.md``); batches are lists ``[x, y]``. It is an ordinary
    ``DataLoader``: Ignite's ``DeterministicEngine`` can swap in its ``ReproducibleBatchSampler`` (exact mid-epoch
    resume), and with the dataset on a GPU no index ever crosses from the host.

    ``loader.batch_sampler`` has ``state_dict``/``load_state_dict`` (checkpoint it for an exact resume with a plain
    engine). ``num_replicas``/``rank`` shard every global batch of ``batch_size`` over data-parallel processes
    (``idist.get_world_size()``/``idist.get_rank()``); see the sampler's docstring.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(dataset, TensorRows):
        device: Optional[torch.device] = dataset.device
    else:
        device = dataset.tensors[0].device if isinstance(dataset, TensorDataset) and dataset.tensors else None
    sampler = _IndexBatchSampler(len(dataset), batch_size, drop_last, shuffle, generator, device, num_replicas, rank)
    return DataLoader(_GatherDataset(dataset), batch_sampler=sampler, collate_fn=_as_list)
