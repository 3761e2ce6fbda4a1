"""Plain Hebbian learning."""

from __future__ import annotations

from typing import Optional

from torch import Tensor

from hebbian.rules.base import NORMALIZATIONS, LearningRule, Statistics, check_choice
from hebbian.rules.layers import LayerView
from hebbian.rules.registry import register_rule


@register_rule("hebb", description="Plain Hebb: dw = y x with y = w.x. Unstable: the norm grows without bound.")
class Hebb(LearningRule):
    """Plain Hebbian rule, the teaching baseline.

    .. math:: \\Delta w_k = \\frac{1}{S}\\sum_{n,p} u_{n,k,p}\\, P_{n,p}, \\qquad u_k = w_k \\cdot x

    In expectation :math:`\\dot w = C w`: the direction tends to the first principal component while the norm grows
    like :math:`e^{\\lambda_1 t}`. Nothing bounds it, which is the lesson that Oja's rule answers.

    Args:
        normalize: ``"mean"`` (divide by the number S of samples x positions), ``"sum"`` or ``"max_abs"``.

    Shapes: ``x (S, D)`` / ``(N, C, H, W)``, ``u (S, M)`` / ``(N, M, OH, OW)``; returns the weight's shape.
    """

    def __init__(self, normalize: str = "mean") -> None:
        self.normalize = check_choice("normalize", normalize, NORMALIZATIONS)

    def statistics(self, view: LayerView, x: Tensor, u: Tensor, labels: Optional[Tensor] = None) -> Statistics:
        return {"delta": view.correlate(x, u), "count": view.count(u)}
