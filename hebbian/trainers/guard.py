"""Guard against non-finite updates and weights: a NaN/Inf update is never applied, weights that a (finite) step
overflowed are detected right after the step, and training stops naming the layer and rule."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor

from hebbian.rules.buffers import noted_rows, rows_written_since, written_rows
from hebbian.trainers.binding import RuleBinding


class NonFiniteUpdateError(RuntimeError):
    """A rule produced NaN or Inf for a layer; the update was not applied.

    ``weights_finite`` is ``True`` when the weights in memory are still finite (the update was refused), ``False``
    when an optimizer step made them non-finite (:class:`NonFiniteWeightsError`).
    """

    weights_finite = True


class NonFiniteWeightsError(NonFiniteUpdateError):
    """An optimizer step turned a layer's weights into NaN/Inf (e.g. a finite update times a huge learning rate);
    the weights in memory are no longer finite, so nothing of them may be saved."""

    weights_finite = False


class ExplodingWeightsError(NonFiniteUpdateError):
    """A layer's weights are still finite but their magnitude passed the trainer's limit (``max_abs_weight``): the
    rule diverges (e.g. plain Hebb without normalisation), and at that scale float32 products, squares and p-norms
    overflow in what comes next (activations, the next update, the visualizers). Training stops; the weights in
    memory are finite and are kept, like those of a refused update."""

    weights_finite = True


#: The default limit of :meth:`NonFiniteGuard.check_magnitude`: far above what a converging rule reaches (units of
#: norm ~1 to ~25), and low enough that ``|w|^p`` sums with ``p <= 4`` over thousands of inputs stay finite in float32.
DEFAULT_MAX_ABS_WEIGHT = 1e8


def finite(t: Tensor) -> Tensor:
    """A 0-d bool tensor: whether every element of ``t`` is finite. Exact and without a host sync: the smallest and the
    largest element (one ``aminmax`` pass, no temporary of ``t``'s size) are finite exactly when every element is
    (NaN propagates through both)."""
    low, high = torch.aminmax(t.detach())
    return torch.isfinite(low) & torch.isfinite(high)


def all_finite(t: Tensor) -> bool:
    """Whether every element of ``t`` is finite, as a host bool (syncs). The plain sum (in ``t``'s dtype, float32 for
    half types), the cheapest reduction, is finite whenever every element is unless it overflows, so only a non-finite
    sum is checked again exactly (:func:`finite`)."""
    t = t.detach()
    total = t.sum(dtype=torch.float32) if t.dtype in (torch.float16, torch.bfloat16) else t.sum()
    return bool(torch.isfinite(total)) or bool(finite(t))


class NonFiniteGuard:
    """Checks every update before it is written, and the weights after the optimizer step (:meth:`check_weights`).

    On the CPU a check costs nothing extra, so a bad update raises at once. On accelerators the check must not
    synchronise the host every batch (*deferred* mode): a bad update is replaced by zeros (``torch.where``, no sync),
    flagged on the device, and :meth:`raise_if_flagged` (called by the trainer every ``nan_check_every`` iterations
    and at each epoch's end) raises. Either way a non-finite update never reaches the weights.

    Args:
        bindings: the trainer's bindings; ``index`` in :meth:`__call__` refers to this list.
        deferred: ``True``/``False`` force the deferred / immediate mode; ``None`` (default) picks deferred exactly
            when the update lives off the CPU.
    """

    def __init__(
        self, bindings: Sequence[RuleBinding], *, deferred: Optional[bool] = None
    ) -> None:
        if deferred is not None and not isinstance(deferred, bool):
            raise TypeError(f"deferred must be True, False or None, got {deferred!r}")
        self.bindings = list(bindings)
        self._positions = {id(b): i for i, b in enumerate(self.bindings)}
        self.deferred = deferred
        self._flags: Optional[Tensor] = None
        self._weight_flags: Optional[Tensor] = None
        self._checked_until = 0
        self._checked: Dict[int, int] = {}  # binding index -> its weight's version at the last check_weights

    def index_of(self, binding: RuleBinding) -> int:
        """The position of ``binding`` in :attr:`bindings` (the ``index`` of :meth:`__call__`), in O(1): a list search
        per layer and step would cost O(L^2) per step in an L-layer network (ResNet-1202: most of GHL's step)."""
        return self._positions[id(binding)]

    def is_deferred(self, device: torch.device) -> bool:
        """Whether updates on ``device`` are checked without a host sync (flag now, raise later)."""
        return device.type != "cpu" if self.deferred is None else self.deferred

    def __call__(self, index: int, delta: Tensor, iteration: int, rows: Optional[Tensor] = None) -> Tensor:
        """``delta`` if it is finite; otherwise raise (immediate mode) or flag it and return zeros (deferred mode).

        ``rows``: the rows outside of which ``delta`` is zero (the rule's ``support``), so only they are checked."""
        part = delta if rows is None else noted_rows(delta, rows)
        if not self.is_deferred(delta.device):
            if not all_finite(part):
                self._raise([index], iteration)
            return delta
        ok = finite(part)
        self._flags = self._flag(self._flags, [index], ok.view(1), delta.device)
        return torch.where(ok, delta, torch.zeros((), dtype=delta.dtype, device=delta.device))

    def check_weights(self, indices: Sequence[int], iteration: int) -> None:
        """After the optimizer step: whether the weights of the bindings ``indices`` are still finite.

        One reduction per weight (no temporary of the weight's size), over the rows the step wrote when the only
        change since the last check is a recorded row-sparse step (:func:`~hebbian.rules.buffers.rows_written_since`):
        the other rows were checked before. Immediate mode raises :class:`NonFiniteWeightsError` at once; deferred
        mode flags the layers (raised by :meth:`raise_if_flagged`).
        """
        if not indices:
            return
        weights = [self._changed_part(i) for i in indices]
        device = weights[0].device
        if not self.is_deferred(device):
            bad = [i for i, w in zip(indices, weights) if not all_finite(w)]
            if bad:
                self._raise(bad, iteration, weights=True)
            return
        ok = torch.stack([finite(w).to(device) for w in weights])
        self._weight_flags = self._flag(self._weight_flags, list(indices), ok, device)

    def check_magnitude(self, limit: Optional[float], iteration: int) -> None:
        """Raise :class:`ExplodingWeightsError` when a layer's largest ``|w|`` exceeds ``limit`` (``None``: no limit).

        One ``amax`` per weight and one host sync for all of them; the trainer calls it once an epoch."""
        if limit is None or not self.bindings:
            return
        peaks = torch.stack([b.weight.detach().abs().amax().to(torch.float64).cpu() for b in self.bindings]).tolist()
        bad = [(b, peak) for b, peak in zip(self.bindings, peaks) if peak > limit]
        if bad:
            what = ", ".join(f"layer {b.name!r} (rule {b.rule!r}: max |w| {peak:.3g})" for b, peak in bad)
            raise ExplodingWeightsError(
                f"exploding weights after iteration {iteration} in {what}: above the limit {limit:g} (train."
                "diverge_above / max_abs_weight), the rule diverges; training stopped. Lower the learning rate or "
                "use a normalised rule."
            )

    def _changed_part(self, index: int) -> Tensor:
        """The part of binding ``index``'s weight that can have changed since its last check (all of it if unknown)."""
        w = self.bindings[index].weight
        last = self._checked.get(index)
        rows = None if last is None else rows_written_since(w, last)
        self._checked[index] = w._version
        return w if rows is None else written_rows(w, rows)

    def _flag(self, flags: Optional[Tensor], indices: List[int], ok: Tensor, device: torch.device) -> Tensor:
        if flags is None or flags.device != device:
            flags = torch.zeros(len(self.bindings), dtype=torch.bool, device=device)
        flags[indices] |= ~ok
        return flags

    def raise_if_flagged(self, iteration: int) -> None:
        """Raise :class:`NonFiniteUpdateError` naming every flagged layer (and clear the flags)."""
        since = self._checked_until + 1 if self._checked_until <= iteration else 1  # 1: a new run began
        self._checked_until = iteration
        when = f"iterations {since}..{iteration}" if since < iteration else f"iteration {iteration}"
        for flags, weights in ((self._weight_flags, True), (self._flags, False)):
            if flags is not None and bool(flags.any()):
                bad = [i for i, f in enumerate(flags.tolist()) if f]
                for f in (self._flags, self._weight_flags):
                    if f is not None:
                        f.zero_()
                self._raise(bad, when, weights=weights)

    def _raise(self, indices: List[int], when: Union[int, str], weights: bool = False) -> None:
        when = f"iteration {when}" if isinstance(when, int) else when
        what = ", ".join(f"layer {self.bindings[i].name!r} (rule {self.bindings[i].rule!r})" for i in indices)
        if weights:
            raise NonFiniteWeightsError(
                f"non-finite (NaN/Inf) weights after the optimizer step in {when} in {what}: the step overflowed "
                "and training stopped (these weights are never checkpointed). Lower the learning rate or check the "
                "rule's hyperparameters."
            )
        raise NonFiniteUpdateError(
            f"non-finite (NaN/Inf) weight update in {when} from {what}; the update was not applied "
            "and training stopped. Check the inputs for NaN/Inf, the learning rate and the rule's hyperparameters."
        )
