"""Forward hooks that record what each bound layer received and produced during one forward pass."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, Iterator, List, Sequence, Set, Tuple

from torch import Tensor, nn

from hebbian.trainers.binding import RuleBinding


class _ForwardDone(Exception):
    """Raised from a hook to skip the rest of the forward pass once every wanted layer has been seen."""


class LayerCapture:
    """Records ``(x, u)`` of bound layers: the layer's input and its output (pre-activation), detached.

    Only the first call of a layer within one recording is kept. With ``stop_early=True`` the forward pass is cut
    short as soon as every wanted layer has run, which saves the supervised head in pure Hebbian training.
    """

    def __init__(self, bindings: Sequence[RuleBinding]) -> None:
        self._wanted: Set[str] = set()
        self._stop_early = False
        self.records: Dict[str, Tuple[Tensor, Tensor]] = {}
        self._handles: List = [b.layer.register_forward_hook(self._hook(b.name)) for b in bindings]

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: Tuple[Tensor, ...], output: Tensor) -> None:
            if name in self._wanted and name not in self.records:
                self.records[name] = (inputs[0].detach(), output.detach())
                if self._stop_early and len(self.records) == len(self._wanted):
                    raise _ForwardDone

        return hook

    @contextmanager
    def record(self, names: Set[str], stop_early: bool = False) -> Iterator[Dict[str, Tuple[Tensor, Tensor]]]:
        """Context in which one forward pass is recorded; yields the ``name -> (x, u)`` dict."""
        self.records = {}
        self._wanted, self._stop_early = set(names), stop_early
        try:
            yield self.records
        except _ForwardDone:
            pass
        finally:
            self._wanted, self._stop_early = set(), False

    def missing(self) -> Set[str]:
        return self._wanted - set(self.records)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
