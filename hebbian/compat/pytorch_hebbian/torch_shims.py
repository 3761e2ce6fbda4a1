"""Keywords that torch removed but pytorch-hebbian's scripts still pass.

``torch.optim.lr_scheduler.ReduceLROnPlateau(..., verbose=True)``: torch deprecated ``verbose`` in 2.2 and removed
it later; pytorch-hebbian's ``examples/hebbian.py`` and ``examples/supervised.py`` pass it. :func:`install` (run when
:mod:`hebbian.compat.pytorch_hebbian` is imported, and only if the installed torch lacks the keyword) replaces the
attribute ``torch.optim.lr_scheduler.ReduceLROnPlateau`` by a subclass that accepts ``verbose`` and, when it is true,
prints each learning-rate reduction as torch used to. Everything else is torch's class unchanged; :func:`uninstall`
restores the original attribute.
"""

from __future__ import annotations

import inspect
from typing import Any, Optional

import torch.optim.lr_scheduler as lr_scheduler

ORIGINAL = lr_scheduler.ReduceLROnPlateau


class ReduceLROnPlateau(ORIGINAL):  # type: ignore[misc, valid-type]
    """torch's ``ReduceLROnPlateau`` that also takes ``verbose`` (print every reduction of a group's lr)."""

    def __init__(self, optimizer: Any, *args: Any, verbose: bool = False, **kwargs: Any) -> None:
        super().__init__(optimizer, *args, **kwargs)
        self.verbose = bool(verbose)

    def step(self, metrics: Any, epoch: Optional[int] = None) -> None:  # type: ignore[override]
        before = [group["lr"] for group in self.optimizer.param_groups]
        if epoch is None:
            super().step(metrics)
        else:
            super().step(metrics, epoch)
        if self.verbose:
            for i, (old, group) in enumerate(zip(before, self.optimizer.param_groups)):
                if group["lr"] < old:
                    print(f"Epoch {self.last_epoch}: reducing learning rate of group {i} to {group['lr']:.4e}.")


def needed() -> bool:
    """Whether the installed torch's ``ReduceLROnPlateau`` lacks the ``verbose`` keyword."""
    return "verbose" not in inspect.signature(ORIGINAL.__init__).parameters


def install() -> bool:
    """Put :class:`ReduceLROnPlateau` in ``torch.optim.lr_scheduler`` if torch lacks ``verbose``; True if it did."""
    if not needed():
        return False
    lr_scheduler.ReduceLROnPlateau = ReduceLROnPlateau  # type: ignore[misc]
    return True


def uninstall() -> None:
    """Restore torch's own ``ReduceLROnPlateau``."""
    lr_scheduler.ReduceLROnPlateau = ORIGINAL  # type: ignore[misc]
