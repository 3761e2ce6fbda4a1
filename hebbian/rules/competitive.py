"""Competitive learning: Oja and instar neurons behind hard or soft winner-take-all."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from hebbian.rules.base import NORMALIZATIONS, LearningRule, Statistics, check_choice, check_positive
from hebbian.rules.competition import hard_wta, soft_wta
from hebbian.rules.layers import LayerView
from hebbian.rules.registry import register_rule

COMPETITIONS = ("hard", "soft")


def competitive_oja_delta(
    view: LayerView, x: Tensor, u: Tensor, y: Tensor, *, overwrite_y: bool = False, u_is_drive: bool = False
) -> Tensor:
    """Batch sum of :math:`y_k (x - u_k w_k)`: :math:`C_k - (\\sum y_k u_k) w_k` with :math:`C = \\sum y P`.

    ``u_is_drive=True`` says that ``u`` is the layer's drive (not, say, a p-metric current); if the view's ``u`` is
    exactly :math:`W x` (:attr:`LayerView.exact_drive`, captured uses), :math:`\\sum y_k u_k = \\langle w_k, C_k\\rangle`
    is taken from the correlation (:meth:`LayerView.drive_dot`), which saves two passes over ``u``-shaped tensors.
    Otherwise ``overwrite_y=True`` lets the product :math:`y u` be formed in ``y``'s memory (for a ``y`` the caller
    no longer needs), so no temporary of ``u``'s size is allocated.
    """
    delta = view.correlate(x, y)
    if u_is_drive and view.exact_drive:
        yu_sum = view.drive_dot(delta)
    else:
        yu_sum = view.neuron_sum(y.mul_(u) if overwrite_y else y * u)
    return delta.addcmul_(view.per_neuron(yu_sum), view.weight, value=-1.0)


def instar_delta(view: LayerView, x: Tensor, y: Tensor) -> Tensor:
    """Batch sum of :math:`y_k (x - w_k)`: :math:`\\sum y_k P - (\\sum y_k) w_k`."""
    return view.correlate(x, y) - view.per_neuron(view.neuron_sum(y)) * view.weight


class _Competitive(LearningRule):
    """Shared hyperparameters of the winner-take-all rules."""

    def __init__(self, competition: str = "soft", t_inv: float = 1.0, normalize: str = "mean") -> None:
        self.competition = check_choice("competition", competition, COMPETITIONS)
        self.t_inv = check_positive("t_inv", t_inv)
        self.normalize = check_choice("normalize", normalize, NORMALIZATIONS)

    def compete(self, view: LayerView, u: Tensor) -> Tensor:
        """The competition within each of the view's competition groups."""
        if self.competition == "soft":
            return view.per_group(soft_wta, u, t_inv=self.t_inv)
        return view.per_group(hard_wta, u)


@register_rule(
    "competitive_oja",
    description="Oja neurons behind hard or soft (softmax) WTA: dw_k = y_k (x - u_k w_k). GHL's local term.",
    aliases=("wta_oja", "soft_wta_oja"),
)
class CompetitiveOja(_Competitive):
    """Competitive Oja rule with hard or soft winner-take-all.

    .. math:: \\Delta w_k = \\sum_{n,p} y_{n,k,p}\\,(P_{n,p} - u_{n,k,p}\\, w_k)

    * ``competition="soft"``: :math:`y = \\mathrm{softmax}_k(t_{inv}\\, u)`. This is GHL's local component and SoftHebb
      without its anti-Hebbian losers. Fixed point :math:`w_k = E[y_k x]/\\|E[y_k x]\\|`.
    * ``competition="hard"``: only the winner learns, as an Oja neuron: :math:`y_k = u_k [k = \\arg\\max u]`.

    Norms are attracted to 1 in both cases. GHL uses ``competition="soft", normalize="max_abs"``.

    Args:
        competition: ``"soft"`` or ``"hard"``.
        t_inv: inverse temperature of the softmax (> 0); ignored for ``"hard"``.
        normalize: ``"mean"``, ``"sum"`` or ``"max_abs"``.
    """

    def statistics(self, view: LayerView, x: Tensor, u: Tensor, labels: Optional[Tensor] = None) -> Statistics:
        y = self.compete(view, u)
        if self.competition == "hard":
            y = y * u
        return {"delta": competitive_oja_delta(view, x, u, y, overwrite_y=True, u_is_drive=True), "count": view.count(u)}


@register_rule(
    "instar",
    description="Grossberg's instar behind WTA (competitive learning / online k-means): dw_k = y_k (x - w_k).",
)
class Instar(_Competitive):
    """Instar rule with winner-take-all: competitive learning.

    .. math:: \\Delta w_k = \\sum_{n,p} y_{n,k,p}\\,(P_{n,p} - w_k)

    With ``competition="hard"`` (the default) :math:`y` is the winner's indicator and every unit tends to the centroid
    of the inputs it wins (online k-means); the fixed point is :math:`w_k = E[y_k x]/E[y_k]`.

    Args:
        competition: ``"hard"`` or ``"soft"``.
        t_inv: inverse temperature of the softmax (> 0); ignored for ``"hard"``.
        normalize: ``"mean"``, ``"sum"`` or ``"max_abs"``.
    """

    def __init__(self, competition: str = "hard", t_inv: float = 1.0, normalize: str = "mean") -> None:
        super().__init__(competition, t_inv, normalize)

    def statistics(self, view: LayerView, x: Tensor, u: Tensor, labels: Optional[Tensor] = None) -> Statistics:
        return {"delta": instar_delta(view, x, self.compete(view, u)), "count": view.count(u)}


@register_rule(
    "supervised_instar",
    description="Teacher-gated instar (Hebbian classifier): the unit of the true class learns dw = x - w.",
    needs_labels=True,
)
class SupervisedInstar(LearningRule):
    """Instar gated by the label: a Hebbian classifier (one unit per class).

    .. math:: \\Delta w_k = \\sum_{n,p} [t_n = k]\\,(P_{n,p} - w_k)

    Each unit tends to the mean input of its class. The layer must have as many output units as there are classes.

    Args:
        normalize: ``"mean"``, ``"sum"`` or ``"max_abs"``.
    """

    def __init__(self, normalize: str = "mean") -> None:
        self.normalize = check_choice("normalize", normalize, NORMALIZATIONS)

    def statistics(self, view: LayerView, x: Tensor, u: Tensor, labels: Optional[Tensor] = None) -> Statistics:
        assert labels is not None
        y = torch.zeros_like(u)
        index = labels.long().view((-1, 1) + (1,) * (u.dim() - 2)).expand((-1, 1) + tuple(u.shape[2:]))
        if u.dim() == 2 and index.shape[0] != u.shape[0]:
            raise ValueError(f"labels must have one entry per sample ({u.shape[0]}), got {labels.shape[0]}")
        y.scatter_(1, index, 1.0)
        return {"delta": instar_delta(view, x, y), "count": view.count(u)}

    def check_extras(self, view, x, labels, grad) -> None:  # type: ignore[override]
        super().check_extras(view, x, labels, grad)
        if view.groups > 1:
            raise ValueError(f"supervised_instar needs one group of units (one unit per class), got {view.groups} "
                             "competition groups")
        if not view.is_conv and x.dim() != 2:
            raise ValueError(f"supervised_instar needs Linear inputs of shape (N, D), got {tuple(x.shape)}")
        # An out-of-range index would fail inside scatter_ (a device-side assert on CUDA): check it here (one sync).
        if labels.numel() and not bool(((labels >= 0) & (labels < view.num_neurons)).all()):
            raise ValueError(
                f"labels must lie in [0, {view.num_neurons}) (one output unit per class), "
                f"got values in [{int(labels.min())}, {int(labels.max())}]"
            )
