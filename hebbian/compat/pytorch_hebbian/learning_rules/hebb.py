"""pytorch-hebbian's ``HebbsRule``: plain Hebb scaled by ``c`` (:class:`hebbian.rules.Hebb`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

from torch import Tensor

from hebbian.compat.pytorch_hebbian.learning_rules.learning_rule import NativeBackedRule
from hebbian.rules import Hebb, LayerView
from hebbian.rules.base import Statistics

__all__ = ["HebbsRule"]


def check_c(c: float) -> float:
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c):
        raise ValueError(f"c must be a finite number, got {c!r}")
    return float(c)


class HebbsRule(NativeBackedRule):
    """Plain Hebb, :math:`\\Delta W = c \\cdot \\frac{1}{S} \\sum_n y_n x_n^\\top` with :math:`y = W x`.

    pytorch-hebbian's ``HebbsRule`` meant this but raised on any batch (``torch.dot`` of a matrix); here it is
    :class:`hebbian.rules.Hebb` (``normalize="mean"``) times ``c``. Shapes: ``inputs (S, D)``, ``weights (M, D)``.
    """

    def __init__(self, c: float = 0.1) -> None:
        super().__init__()
        self.c = check_c(c)

    def native(self) -> "ScaledHebb":
        return ScaledHebb(self.c)

    def __repr__(self) -> str:
        return f"HebbsRule(c={self.c!r})"


class ScaledHebb(Hebb):
    """:class:`hebbian.rules.Hebb` (batch mean) times ``c``."""

    def __init__(self, c: float = 0.1) -> None:
        super().__init__("mean")
        self.c = check_c(c)

    def finalize(self, view: LayerView, stats: Statistics, grad: Optional[Tensor] = None) -> Tensor:
        return super().finalize(view, stats, grad).mul_(self.c)


ScaledHebb.info = dataclasses.replace(Hebb.info, cls=ScaledHebb, aliases=())  # type: ignore[misc]
