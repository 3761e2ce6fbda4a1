"""Lagani's rules in their FastHebb batch-aggregated form: soft winner-take-all (SWTA) and Hebbian PCA (HPCA)."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from hebbian.rules.base import LearningRule, Statistics, check_choice, check_positive
from hebbian.rules.competition import flush_subnormal_, k_wta
from hebbian.rules.competitive import instar_delta
from hebbian.rules.layers import LayerView
from hebbian.rules.oja import Sanger
from hebbian.rules.registry import register_rule

SWTA_COMPETITIONS = ("exp", "poly", "kwta")


def raised_cosine_sq(view: LayerView, x: Tensor, u: Tensor) -> Tensor:
    """Squared raised cosine :math:`s_k = ((1 + \\cos(w_k, x)) / 2)^2`, shaped like ``u``."""
    w = view.weight
    w_norms = view.per_neuron(w.reshape(w.shape[0], -1).norm(dim=1)).reshape((1, -1) + (1,) * (u.dim() - 2))
    cos = u / (w_norms * view.input_norms(x)).clamp_min(1e-12)
    return ((1.0 + cos) * 0.5).square()


@register_rule(
    "swta",
    description="Lagani's soft-WTA instar: z = softmax(s/T) on raised-cosine^2, dw = sum z^2 (x - w) / sum z.",
)
class SWTA(LearningRule):
    """Soft winner-take-all competitive learning (Lagani et al., FastHebb), weighted-average reduction.

    .. math::
        s_k = \\big((1 + \\cos(w_k, x))/2\\big)^2, \\qquad
        z_k = \\frac{e^{s_k/T}}{\\sum_j e^{s_j/T}} \\;(\\texttt{exp}), \\quad
        \\frac{s_k^{\\,a}}{\\sum_j s_j^{\\,a}} \\;(\\texttt{poly}), \\quad [k \\in \\text{top-}k] \\;(\\texttt{kwta})

        \\Delta w_k = \\frac{\\sum_{n,p} z_{n,k,p}^2\\,(P_{n,p} - w_k)}{\\sum_{n,p} z_{n,k,p}}
                    = \\frac{Z_2^\\top X - \\mathrm{diag}(Z_2^\\top 1) W}{Z^\\top 1}

    An instar rule: every unit moves towards the centroid of the inputs it wins. S-LHL whitens the inputs (ZCA)
    first; do that in the data pipeline.

    Args:
        competition: ``"exp"`` (temperature ``temperature``), ``"poly"`` (exponent ``power``) or ``"kwta"`` (``k``).
        temperature: softmax temperature T > 0 (0.02 in S-LHL).
        power: polynomial exponent a > 0 (20 in S-LHL).
        k: number of winners for ``"kwta"`` (>= 1).
    """

    def __init__(self, competition: str = "exp", temperature: float = 0.02, power: float = 20.0, k: int = 1) -> None:
        self.competition = check_choice("competition", competition, SWTA_COMPETITIONS)
        self.temperature = check_positive("temperature", temperature)
        self.power = check_positive("power", power)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        self.k = k

    def check_layer(self, layer: nn.Module) -> LayerView:
        view = super().check_layer(layer)
        if self.competition == "kwta" and view.units_per_group < self.k:
            raise ValueError(f"k={self.k} needs at least k competing units, got {view.units_per_group} "
                             f"(units per competition group)")
        return view

    def compete(self, s: Tensor) -> Tensor:
        if self.competition == "exp":
            return torch.softmax(s / self.temperature, dim=1)
        if self.competition == "poly":
            z = s.pow(self.power)
            return z / z.sum(dim=1, keepdim=True).clamp_min(1e-30)
        return k_wta(s, self.k)

    def statistics(self, view: LayerView, x: Tensor, u: Tensor, labels: Optional[Tensor] = None) -> Statistics:
        z = view.per_group(self.compete, raised_cosine_sq(view, x, u))
        # z^2 of a sharp competition (T = 0.02) underflows into subnormals, which slow the CPU correlation ~30x
        return {"delta": instar_delta(view, x, flush_subnormal_(z * z)), "weight": view.neuron_sum(z)}

    def finalize(self, view: LayerView, stats: Statistics, grad: Optional[Tensor] = None) -> Tensor:
        return stats["delta"] / view.per_neuron(stats["weight"].clamp_min(1e-30))


@register_rule(
    "hpca",
    description="Hebbian PCA (non-linear Sanger): y = relu(w.x), dw_i = mean y_i (x - sum_{k<=i} y_k w_k) / sqrt(fan_in).",
)
class HPCA(Sanger):
    """Hebbian PCA (Lagani et al. 2020): Sanger's rule with a ReLU, in the FastHebb batched form.

    .. math:: \\Delta w_i = \\frac{1}{S\\sqrt{D}}\\sum_{n,p} y_i\\Big(P - \\sum_{k \\le i} y_k w_k\\Big),
              \\qquad y = \\mathrm{ReLU}(W x)

    Batched as :math:`(Y^\\top X - \\mathrm{tril}(Y^\\top Y) W) / (S \\sqrt{D})` with :math:`D` the fan-in.

    Args:
        fan_in_scaling: divide by :math:`\\sqrt{D}` (S-LHL's ``adaptive_step``).
        activation: ``"relu"`` (HPCA) or ``"identity"`` (then it is linear GHA, scaled).
    """

    def __init__(self, fan_in_scaling: bool = True, activation: str = "relu") -> None:
        super().__init__(activation=activation, normalize="mean")
        if not isinstance(fan_in_scaling, bool):
            raise ValueError(f"fan_in_scaling must be a bool, got {fan_in_scaling!r}")
        self.fan_in_scaling = fan_in_scaling

    def finalize(self, view: LayerView, stats: Statistics, grad: Optional[Tensor] = None) -> Tensor:
        delta = super().finalize(view, stats, grad)
        return delta / math.sqrt(view.fan_in) if self.fan_in_scaling else delta
