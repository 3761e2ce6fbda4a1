"""SoftHebb (Journé et al., ICLR 2023): soft winner-take-all with anti-Hebbian losers and adaptive rates."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from hebbian.rules.base import LearningRule, Statistics, check_positive, normalize_delta
from hebbian.rules.competition import anti_hebbian_losers, soft_wta
from hebbian.rules.competitive import competitive_oja_delta
from hebbian.rules.krotov import p_current
from hebbian.rules.layers import LayerView
from hebbian.rules.registry import register_rule


@register_rule(
    "softhebb",
    description="SoftHebb: softmax WTA, anti-Hebbian losers, max-abs step, per-neuron rate |‖w‖-1|^q.",
    stateful=True,
)
class SoftHebb(LearningRule):
    """SoftHebb's plasticity rule as used for its CIFAR-10 networks ("softkrotov", mode 0).

    .. math::
        y = \\mathrm{softmax}_k(t_{inv} I), \\quad \\tilde y_{k^*} = y_{k^*}, \\; \\tilde y_{k \\ne k^*} = -y_k

        \\Delta_k = \\sum_{n,p} \\tilde y_{n,k,p} P_{n,p} - \\Big(\\sum_{n,p} \\tilde y_{n,k,p} I_{n,k,p}\\Big) w_k,
        \\qquad \\hat\\Delta = \\Delta / (\\max|\\Delta| + 10^{-30})

        \\Delta w_k = r_k\\, \\hat\\Delta_k, \\qquad r_k = (|\\,\\|w_k\\|_p - 1| + 10^{-10})^{q}

    with :math:`I = W x` for p = 2 (else the p-metric current) and :math:`k^* = \\arg\\max_k I`. The optimizer's
    learning rate is SoftHebb's :math:`\\eta_0`; the rate multiplier :math:`r_k` anneals itself to 0 as the norm
    reaches 1. Initialise with :func:`softhebb_init_` (radius 25).

    State: ``rates``, the per-neuron multipliers :math:`r_k` of the last update (``(M,)``), for logging and resume.

    Args:
        t_inv: inverse temperature of the softmax (> 0). DeepHebb: 1, 0.65, 0.25.
        q: exponent of the adaptive rate (>= 0; ``power_lr``; 0.5 in the CIFAR presets).
        p: Lebesgue exponent (>= 1) of the norm and current; 2 in the presets.
    """

    state_tensors = ("rates",)

    def __init__(self, t_inv: float = 1.0, q: float = 0.5, p: float = 2.0) -> None:
        self.t_inv = check_positive("t_inv", t_inv)
        self.q = check_positive("q", q, strict=False)
        self.p = check_positive("p", p)
        if self.p < 1:
            raise ValueError(f"p must be >= 1, got {p!r}")
        self.rates: Optional[Tensor] = None

    def statistics(self, view: LayerView, x: Tensor, u: Tensor, labels: Optional[Tensor] = None) -> Statistics:
        current = p_current(view, x, u, self.p)
        y = view.per_group(_soft_losers, current, t_inv=self.t_inv)
        return {"delta": competitive_oja_delta(view, x, current, y, overwrite_y=True, u_is_drive=self.p == 2.0)}

    def finalize(self, view: LayerView, stats: Statistics, grad: Optional[Tensor] = None) -> Tensor:
        w = view.weight
        norms = w.reshape(w.shape[0], -1).norm(p=self.p, dim=1)
        self.rates = ((norms - 1.0).abs() + 1e-10).pow(self.q)
        return normalize_delta(stats["delta"], None, "max_abs") * view.per_neuron(self.rates)


def _soft_losers(current: Tensor, t_inv: float) -> Tensor:
    """:math:`\\tilde y`: softmax over the units (axis 1), the losers' sign flipped."""
    return anti_hebbian_losers(soft_wta(current, t_inv), current, inplace=True)


def softhebb_init_(weight: Tensor, radius: float = 25.0, p: float = 2.0) -> Tensor:
    """SoftHebb's initialisation in place: :math:`w \\sim \\mathcal N(0, \\sigma^2)`, :math:`\\sigma = (r^p / \\text{fan\\_in})^{1/p}`.

    For p = 2 this is :math:`\\sigma = r/\\sqrt{\\text{fan\\_in}}`, so every :math:`\\|w_k\\|_2 \\approx r`.
    """
    check_positive("radius", radius)
    check_positive("p", p)
    fan_in = weight[0].numel()
    std = (radius**p / fan_in) ** (1.0 / p)
    with torch.no_grad():
        return weight.normal_(0.0, std)


def softhebb_rate(norm: float, q: float = 0.5) -> float:
    """The scalar rate multiplier :math:`(|\\|w\\| - 1| + 10^{-10})^q` (about 4.9 at the initial norm 25)."""
    return math.pow(abs(norm - 1.0) + 1e-10, q)
