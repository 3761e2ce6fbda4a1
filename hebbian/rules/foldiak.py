"""Földiák (1990): sparse, decorrelated codes by Hebbian feed-forward and anti-Hebbian lateral learning."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from hebbian.rules.base import LearningRule, Statistics, check_positive
from hebbian.rules.competitive import instar_delta
from hebbian.rules.layers import LayerView
from hebbian.rules.registry import register_rule


@register_rule(
    "foldiak",
    description="Foldiak 1990: Hebbian dq = y (x - q), anti-Hebbian lateral dw = -alpha (y_i y_j - p^2), "
                "thresholds dt = gamma (y - p); a FoldiakLayer.",
    supports_conv=False,
)
class Foldiak(LearningRule):
    """Földiák's learning rules for the three learned tensors of a :class:`~hebbian.models.lateral.FoldiakLayer`.

    With the layer's binary output :math:`y_i = [y^*_i > 1/2]` (:math:`y^*` the settled response, see
    :func:`~hebbian.models.lateral.settle`), over the ``S`` samples of a batch:

    .. math::
        \\Delta q_i = \\frac{1}{S} \\sum_n y_{n,i} (x_n - q_i)
        \\qquad \\text{(Hebbian feed-forward; returned, applied by the optimizer with its rate } \\beta)

        w_{ij} \\leftarrow \\min\\Big(0,\\;
            w_{ij} - \\alpha \\big(\\tfrac{1}{S}\\textstyle\\sum_n y_{n,i} y_{n,j} - p^2\\big)\\Big),
        \\quad w_{ii} = 0 \\qquad \\text{(anti-Hebbian lateral)}

        t_i \\leftarrow t_i + \\gamma \\big(\\tfrac{1}{S}\\textstyle\\sum_n y_{n,i} - p\\big)
        \\qquad \\text{(adaptive thresholds)}

    Földiák's equations, applied to batch means instead of one pattern at a time. Two units that fire together more
    often than chance (:math:`p^2`) inhibit each other more, so the code decorrelates; every unit's threshold moves
    its firing rate towards :math:`p`, so the code is sparse. Lateral weights are kept inhibitory (:math:`\\le 0`),
    as in the paper's network of inhibitory feedback connections.

    The lateral weights and thresholds live in the layer (buffers, saved with the model); :meth:`finalize` steps them
    from the reduced batch sums, so every data-parallel worker takes the same step (into new tensors that replace the
    buffers, so that the autograd graph of a forward pass that saved them stays valid).

    Args:
        alpha: rate of the lateral weights (>= 0; 0.1 in the paper).
        gamma: rate of the thresholds (>= 0; 0.02 in the paper).
        p: target firing probability of every unit (0 < p < 1; 1/8 in the paper).

    Shapes: ``x (S, D)``, ``u (S, M)`` (the layer's output); returns the weight's shape ``(M, D)``.
    """

    def __init__(self, alpha: float = 0.1, gamma: float = 0.02, p: float = 0.125) -> None:
        self.alpha = check_positive("alpha", alpha, strict=False)
        self.gamma = check_positive("gamma", gamma, strict=False)
        self.p = check_positive("p", p)
        if not self.p < 1:
            raise ValueError(f"p must be a firing probability in (0, 1), got {p!r}")

    def check_layer(self, layer: nn.Module) -> LayerView:
        view = super().check_layer(layer)
        from hebbian.models.lateral import FoldiakLayer  # models build on rules: imported when used

        if not isinstance(view.layer, FoldiakLayer):
            raise TypeError(f"rule 'foldiak' trains a hebbian.models.FoldiakLayer (it learns the layer's lateral "
                            f"weights and thresholds too), got {type(view.layer).__name__}")
        return view

    def statistics(self, view: LayerView, x: Tensor, u: Tensor, labels: Optional[Tensor] = None) -> Statistics:
        y = (u > 0.5).to(u.dtype)  # the binary output (the layer's output is y itself, or the settled rates y*)
        return {"delta": instar_delta(view, x, y), "coactive": view.gram(y), "active": view.neuron_sum(y),
                "count": view.count(u)}

    def finalize(self, view: LayerView, stats: Statistics, grad: Optional[Tensor] = None) -> Tensor:
        count = stats["count"].clamp_min(1)
        layer = view.layer
        with torch.no_grad():  # new tensors, not in place: a forward graph that saved the old ones stays valid
            lateral, threshold = layer.lateral, layer.threshold
            step = (stats["coactive"] / count - self.p ** 2).to(lateral.dtype)
            layer.lateral = torch.sub(lateral, step, alpha=self.alpha).clamp_(max=0.0).fill_diagonal_(0.0)
            rate = (stats["active"] / count - self.p).to(threshold.dtype)
            layer.threshold = torch.add(threshold, rate, alpha=self.gamma)
        return stats["delta"].div_(count)
