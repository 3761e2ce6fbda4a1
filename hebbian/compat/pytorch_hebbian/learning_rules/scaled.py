"""pytorch-hebbian's rules that are a native rule (batch mean) scaled by ``c``: ``HebbsRule`` and ``OjasRule``."""

from __future__ import annotations

import math
from typing import Optional

from torch import Tensor

from hebbian.compat.pytorch_hebbian.learning_rules.learning_rule import NativeBackedRule
from hebbian.rules import LayerView
from hebbian.rules import LearningRule as NativeRule
from hebbian.rules.base import Statistics


def check_c(c: float) -> float:
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c):
        raise ValueError(f"c must be a finite number, got {c!r}")
    return float(c)


class ScaledNative:
    """Mixin for a native rule (``normalize="mean"``) whose update is multiplied by ``c``."""

    def __init__(self, c: float = 0.1) -> None:
        super().__init__("mean")  # type: ignore[call-arg]
        self.c = check_c(c)

    def finalize(self, view: LayerView, stats: Statistics, grad: Optional[Tensor] = None) -> Tensor:
        return super().finalize(view, stats, grad).mul_(self.c)  # type: ignore[misc]


class ScaledRule(NativeBackedRule):
    """An old-style rule backed by ``native_class(c)`` (a :class:`ScaledNative` rule)."""

    native_class: type

    def __init__(self, c: float = 0.1) -> None:
        super().__init__()
        self.c = check_c(c)

    def native(self) -> NativeRule:
        return self.native_class(self.c)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(c={self.c!r})"
