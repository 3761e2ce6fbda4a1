"""Krotov & Hopfield (2019): unsupervised learning by competing hidden units."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from hebbian.rules.base import LearningRule, Statistics, check_positive, max_abs
from hebbian.rules.competition import rank_gates
from hebbian.rules.layers import LayerView
from hebbian.rules.registry import register_rule


def p_current(view: LayerView, x: Tensor, u: Tensor, p: float) -> Tensor:
    """The p-metric input current :math:`I_k = \\sum_i \\mathrm{sign}(w_{ki}) |w_{ki}|^{p-1} x_i` (``u`` itself for p = 2)."""
    if p == 2.0:
        return u
    w = view.weight
    return view.respond(x, w.sign() * w.abs().pow(p - 1.0))


@register_rule(
    "krotov",
    description="Krotov-Hopfield: top-1 unit learns, rank-k unit unlearns (-delta); p-norm sphere; max-abs step.",
    aliases=("krotov_hopfield",),
)
class Krotov(LearningRule):
    """The Krotov-Hopfield rule in its fast minibatch form.

    .. math::
        I_{n,k,p} = \\sum_i \\mathrm{sign}(w_{ki})|w_{ki}|^{p-1} P_{n,p,i}, \\qquad
        g_{n,k,p} = \\begin{cases} 1 & k = \\text{rank 1 of } I_{n,:,p} \\\\ -\\Delta & k = \\text{rank } k \\\\ 0 \\end{cases}

        ds_k = \\sum_{n,p} g_{n,k,p}\\, P_{n,p} - \\Big(\\sum_{n,p} g_{n,k,p} I_{n,k,p}\\Big) w_k, \\qquad
        \\Delta W = ds / \\max(\\max|ds|, \\text{prec})

    So the largest element change per batch equals the learning rate (``eps_t``, usually linearly annealed with a
    ``LambdaLR``). Units that win regularly converge to the unit p-sphere :math:`\\sum_i |w_{ki}|^p = 1`.

    Args:
        p: Lebesgue exponent of the metric (>= 1). S-PH default 2; MNIST 3, CIFAR-10 5.
        k: rank of the anti-Hebbian unit (>= 2; at most the number of units).
        delta: anti-Hebbian strength (>= 0).
        prec: floor of the normaliser (> 0).

    Shapes: ``x (S, D)`` / ``(N, C, H, W)``, ``u (S, M)`` / ``(N, M, OH, OW)``; returns the weight's shape.
    For ``Linear`` layers the two non-zeros of ``g`` per sample are scattered with ``index_add`` (``O(S D)``),
    instead of a dense ``g.T @ x`` (``O(S M D)``).
    """

    def __init__(self, p: float = 2.0, k: int = 2, delta: float = 0.4, prec: float = 1e-30) -> None:
        self.p = check_positive("p", p)
        if self.p < 1:
            raise ValueError(f"p must be >= 1, got {p!r}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 2:
            raise ValueError(f"k must be an integer >= 2 (rank of the anti-Hebbian unit), got {k!r}")
        self.k = k
        self.delta = check_positive("delta", delta, strict=False)
        self.prec = check_positive("prec", prec)

    def check_layer(self, layer: nn.Module) -> LayerView:
        view = super().check_layer(layer)
        if view.units_per_group < self.k:
            raise ValueError(f"k={self.k} needs at least k competing units, got {view.units_per_group} "
                             f"(units per competition group)")
        return view

    def statistics(self, view: LayerView, x: Tensor, u: Tensor, labels: Optional[Tensor] = None) -> Statistics:
        current = p_current(view, x, u, self.p)
        if view.is_conv or view.groups > 1:
            g = view.per_group(rank_gates, current, k=self.k, delta=self.delta)
            return {"delta": view.correlate(x, g) - view.per_neuron(view.neuron_sum(g * current)) * view.weight}
        return {"delta": self._sparse_linear(view, x, current)}

    def _sparse_linear(self, view: LayerView, x: Tensor, current: Tensor) -> Tensor:
        top = current.topk(self.k, dim=1)
        first, kth = top.indices[:, 0], top.indices[:, self.k - 1]
        w = view.weight
        drive = torch.zeros(w.shape[0], dtype=w.dtype, device=w.device)
        drive.index_add_(0, first, top.values[:, 0]).index_add_(0, kth, top.values[:, self.k - 1], alpha=-self.delta)
        # ds = -drive * w (the only pass over the whole weight), then each sample's two rows scattered into it
        ds = w * drive.neg_().unsqueeze(1)
        return ds.index_add_(0, first, x).index_add_(0, kth, x, alpha=-self.delta)

    def finalize(self, view: LayerView, stats: Statistics, grad: Optional[Tensor] = None) -> Tensor:
        ds = stats["delta"]
        return ds.div_(max_abs(ds).clamp_min(self.prec))  # in place: the statistics are consumed here
