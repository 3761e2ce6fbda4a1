"""pytorch-hebbian's ``OjasRule``: Oja's rule scaled by ``c`` (:class:`hebbian.rules.Oja`)."""

from __future__ import annotations

import dataclasses
from typing import Optional

from torch import Tensor

from hebbian.compat.pytorch_hebbian.learning_rules.hebb import check_c
from hebbian.compat.pytorch_hebbian.learning_rules.learning_rule import NativeBackedRule
from hebbian.rules import LayerView, Oja
from hebbian.rules.base import Statistics

__all__ = ["OjasRule"]


class OjasRule(NativeBackedRule):
    """Oja's rule per unit, :math:`\\Delta w_k = \\frac{c}{S} \\sum_n y_{nk} (x_n - y_{nk} w_k)`, :math:`y = W x`.

    The same equation as pytorch-hebbian's ``OjasRule`` (which looped over samples and weights in Python); here it
    is :class:`hebbian.rules.Oja` (``normalize="mean"``) times ``c``. Shapes: ``inputs (S, D)``, ``weights (M, D)``.
    """

    def __init__(self, c: float = 0.1) -> None:
        super().__init__()
        self.c = check_c(c)

    def native(self) -> "ScaledOja":
        return ScaledOja(self.c)

    def __repr__(self) -> str:
        return f"OjasRule(c={self.c!r})"


class ScaledOja(Oja):
    """:class:`hebbian.rules.Oja` (batch mean) times ``c``."""

    def __init__(self, c: float = 0.1) -> None:
        super().__init__("mean")
        self.c = check_c(c)

    def finalize(self, view: LayerView, stats: Statistics, grad: Optional[Tensor] = None) -> Tensor:
        return super().finalize(view, stats, grad).mul_(self.c)


ScaledOja.info = dataclasses.replace(Oja.info, cls=ScaledOja, aliases=())  # type: ignore[misc]
