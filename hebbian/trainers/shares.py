"""One process computing a batch's statistics as N data-parallel processes do (``train.shares``).

N processes each take rows ``r::N`` of every global batch (the sampler's split, :mod:`hebbian.data.loaders`), run
their forward pass on them, compute the rules' batch sums and add the N sums in an all-reduce. One process that
does the same per share and adds the sums in rank order (:func:`~hebbian.trainers.distributed.add_in_rank_order`)
gets the N processes' update bit for bit: for N = 2 the all-reduce is exactly ``s_0 + s_1``; for N >= 3 the
all-reduce adds in an order of its own, and the processes must add in rank order too
(:func:`~hebbian.trainers.distributed.all_reduce_statistics` with ``ordered=True``, which the trainer uses when
``shares`` is the number of processes).

Each share's forward pass draws from its process's torch RNG (:class:`Shares` keeps one state per process: dropout
masks and exploration noise are drawn as that process draws them) and starts from the model's buffers as the step
found them; the step leaves the global RNG and the buffers as process 0 leaves its own (what its checkpoint holds).
Each process keeps its own BatchNorm running statistics, which a training forward pass does not read; a module whose
training forward read buffers it also updates would see process 0's in every share (none in this package).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from hebbian.rules.base import Statistics
from hebbian.trainers.distributed import add_in_rank_order, compact


def check_shares(shares: Optional[int], world: int) -> int:
    """The number of shares this process splits each batch into: ``shares`` in one process (1 for ``None``), 1 in a
    data-parallel run, where each process is a share already (``shares`` must then be ``None``, 1 or the number of
    processes).

    Raises:
        ValueError: ``shares`` is not a positive integer (or ``None``), or another number than the processes'.
    """
    if shares is None:
        return 1
    if isinstance(shares, bool) or not isinstance(shares, int) or shares < 1:
        raise ValueError(f"shares must be a positive integer or None, got {shares!r}")
    if world > 1 and shares not in (1, world):
        raise ValueError(f"shares={shares} in a data-parallel run of {world} processes: each process computes its "
                         f"own share already; use shares={world} (sums added in rank order) or None")
    return shares if world == 1 else 1


def check_batch(size: int, shares: int) -> None:
    """A batch of ``size`` samples splits into ``shares`` non-empty shares (as the data-parallel sampler requires)."""
    if size < shares:
        raise ValueError(f"a batch of {size} samples cannot be split into shares={shares} shares (one sample each at "
                         "least)")


class Shares:
    """Computes each batch's statistics as ``shares`` data-parallel processes do and adds them in rank order.

    Holds the torch RNG state of each emulated process ``r >= 1`` from step to step: N processes draw from RNGs that
    start in step (the run's seed) but part as soon as their forward passes draw unequal amounts (17 rows split 9/8:
    a dropout mask or exploration draw of 9 rows takes more random numbers than one of 8). Process 0's RNG is the
    global one (what a checkpoint saves; a fresh trainer, e.g. a resumed run's, starts every process from it again).
    What draws from the RNG between steps (a ``DataLoader`` draws its base seed each epoch) draws in every process:
    while the processes are in step, all of them follow; once they have parted, the other processes' RNGs cannot
    follow such a draw, and a :class:`SharesRNGWarning` says so once (batches that split evenly keep them in step).
    """

    def __init__(self, shares: int) -> None:
        self.shares = shares
        self._streams: Optional[List[RNGState]] = None  # per emulated process r >= 1 (index r - 1)
        self._end: Optional[RNGState] = None  # the global RNG as the last step left it
        self._warned = False

    def _follow_outside_draws(self, start: RNGState) -> None:
        """Every process's RNG at the start of a step (see the class)."""
        if self._streams is None or self._end is None:  # the processes' RNGs in step at the first step
            self._streams = [start] * (self.shares - 1)
        elif not _same(start, self._end):  # drawn between the steps, in every process
            if all(_same(s, self._end) for s in self._streams):
                self._streams = [start] * (self.shares - 1)
            elif not self._warned:
                self._warned = True
                warnings.warn("train.shares: the processes' RNGs parted at a batch that split unevenly (dropout or "
                              "exploration noise of unequal shares), and the torch RNG was drawn between steps since "
                              "(e.g. a DataLoader's seed); the other shares' draws no longer follow their processes' "
                              "(use batches that split evenly into the shares for bit-for-bit equality)",
                              SharesRNGWarning, stacklevel=2)

    def __call__(
        self, model: nn.Module, x: Tensor, y: Optional[Tensor],
        statistics: Callable[[Tensor, Optional[Tensor], int], List[Statistics]],
    ) -> List[Statistics]:
        """Each layer's batch sums, added as ``((s_0 + s_1) + s_2) + ...`` over the shares.

        Args:
            model: the model whose buffers each share's forward pass starts from (restored between the shares).
            x: the batch ``(S, ...)``; share ``r`` is ``x[r::N]`` (and ``y[r::N]``), the sampler's split.
            y: the labels ``(S,)`` or ``None``.
            statistics: ``(x_r, y_r, r) -> [layer statistics]``: the forward pass and the rules' sums of share ``r``.
        """
        n = self.shares
        check_batch(x.shape[0], n)
        saved = {name: b.clone() for name, b in model.named_buffers()}
        start = _rng_state(x)
        self._follow_outside_draws(start)
        assert self._streams is not None
        parts: List[Any] = [None] * n
        for r in [*range(1, n), 0]:  # process 0's share last: its RNG and buffers are what the step leaves
            _set_rng_state(x, start if r == 0 else self._streams[r - 1])
            sums = statistics(x[r::n], None if y is None else y[r::n], r)
            parts[r] = sums if r == 0 else compact(sums)  # (a rule may reuse a row-sparse sum's memory for the next)
            del sums
            if r != 0:
                self._streams[r - 1] = _rng_state(x)
                _restore(model, saved)
        self._end = _rng_state(x)
        return add_in_rank_order(parts)


class SharesRNGWarning(UserWarning):
    """One process with ``train.shares`` can no longer draw random numbers as each of the N processes would."""


RNGState = Tuple[Tensor, Optional[Tensor]]


def _rng_state(x: Tensor) -> RNGState:
    """The torch CPU RNG state and that of ``x``'s CUDA device (when on one)."""
    return torch.get_rng_state(), (torch.cuda.get_rng_state(x.device) if x.is_cuda else None)


def _same(a: RNGState, b: RNGState) -> bool:
    return torch.equal(a[0], b[0]) and (a[1] is None) == (b[1] is None) and (a[1] is None or torch.equal(a[1], b[1]))


def _set_rng_state(x: Tensor, state: RNGState) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], x.device)


def _restore(model: nn.Module, saved: Dict[str, Tensor]) -> None:
    """Put the buffers' values back in place (a forward pass updates e.g. BatchNorm's running statistics)."""
    for name, b in model.named_buffers():
        b.copy_(saved[name])
