"""Guard against non-finite updates: they are never applied, and training stops naming the layer and rule."""

from __future__ import annotations

from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor

from hebbian.trainers.binding import RuleBinding


class NonFiniteUpdateError(RuntimeError):
    """A rule produced NaN or Inf for a layer; the update was not applied."""


class NonFiniteGuard:
    """Checks every update before it is written.

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
        self.deferred = deferred
        self._flags: Optional[Tensor] = None
        self._checked_until = 0

    def is_deferred(self, device: torch.device) -> bool:
        """Whether updates on ``device`` are checked without a host sync (flag now, raise later)."""
        return device.type != "cpu" if self.deferred is None else self.deferred

    def __call__(self, index: int, delta: Tensor, iteration: int) -> Tensor:
        """``delta`` if it is finite; otherwise raise (immediate mode) or flag it and return zeros (deferred mode)."""
        finite = torch.isfinite(delta.sum())
        if not self.is_deferred(delta.device):
            if not bool(finite):
                self._raise([index], iteration)
            return delta
        if self._flags is None or self._flags.device != delta.device:
            self._flags = torch.zeros(len(self.bindings), dtype=torch.bool, device=delta.device)
        self._flags[index] |= ~finite
        return torch.where(finite, delta, torch.zeros((), dtype=delta.dtype, device=delta.device))

    def raise_if_flagged(self, iteration: int) -> None:
        """Raise :class:`NonFiniteUpdateError` naming every flagged layer (and clear the flags)."""
        since = self._checked_until + 1 if self._checked_until <= iteration else 1  # 1: a new run began
        self._checked_until = iteration
        if self._flags is not None and bool(self._flags.any()):
            bad = [i for i, f in enumerate(self._flags.tolist()) if f]
            self._flags.zero_()
            self._raise(bad, f"iterations {since}..{iteration}" if since < iteration else f"iteration {iteration}")

    def _raise(self, indices: List[int], when: Union[int, str]) -> None:
        when = f"iteration {when}" if isinstance(when, int) else when
        what = ", ".join(f"layer {self.bindings[i].name!r} (rule {self.bindings[i].rule!r})" for i in indices)
        raise NonFiniteUpdateError(
            f"non-finite (NaN/Inf) weight update in {when} from {what}; the update was not applied "
            "and training stopped. Check the inputs for NaN/Inf, the learning rate and the rule's hyperparameters."
        )
