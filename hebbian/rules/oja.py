"""Oja's rule and its multi-neuron forms: independent units, the subspace rule and Sanger's GHA."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from hebbian.rules.base import NORMALIZATIONS, LearningRule, Statistics, check_choice
from hebbian.rules.layers import LayerView
from hebbian.rules.registry import register_rule

ACTIVATIONS = ("identity", "relu")


def overshoot_lr(max_input_sq: float, max_row_sq: float) -> float:
    """The learning rate from which ONE sample can make a step of the rules of this module overshoot:
    :math:`2 / (\\max_n \\lVert x_n\\rVert^2 \\cdot \\max_k \\lVert w_k\\rVert^2)`.

    Along its own row, unit :math:`k`'s step on one sample is :math:`w_k \\leftarrow (1 - \\eta y_k^2) w_k + \\eta y_k
    (x - \\dots)`: the decay factor :math:`1 - \\eta y_k^2` flips the row and grows it once :math:`\\eta y_k^2 > 2`,
    and :math:`y_k^2 \\le \\lVert w_k\\rVert^2 \\lVert x\\rVert^2`. Below this rate no sample can overshoot (while the
    rows keep their norms, which these rules drive to 1). A batch of :math:`B` samples averages :math:`y_k^2`
    (``normalize="mean"``), so a rate tuned on batches (:math:`\\eta \\lambda_1 \\ll 1`, :math:`\\lambda_1` the
    largest eigenvalue of the input covariance) can be far above this bound and diverge at batch size 1: on the
    centred digits, :math:`\\eta = 0.05` is stable on batches of 8 or 64 but not on single images
    (:math:`\\max \\lVert x\\rVert^2 = 123`, bound 0.016; see ``tests/rules/test_oja_single_sample.py``).
    """
    return 2.0 / max(max_input_sq * max_row_sq, 1e-300)


def reconstruction_delta(view: LayerView, x: Tensor, y: Tensor, mask: Optional[Tensor]) -> Tensor:
    """:math:`\\sum_{n,p} y_i P - \\sum_k (M \\odot Y^\\top Y)_{ik} w_k`, the batch sum of :math:`y_i(x - \\sum_k M_{ik} y_k w_k)`."""
    gram = view.gram(y)
    if mask is not None:
        gram = gram * mask
    w = view.weight
    return view.correlate(x, y) - (gram @ w.reshape(w.shape[0], -1)).reshape(w.shape)


@register_rule("oja", description="Oja's rule per unit: dw_k = y_k (x - y_k w_k); each unit tends to +-PC1, |w|=1.")
class Oja(LearningRule):
    """Oja's (1982) normalised Hebbian rule, applied to every neuron independently.

    .. math:: \\Delta w_k = \\frac{1}{S}\\sum_{n,p} y_{n,k,p}\\,(P_{n,p} - y_{n,k,p}\\, w_k), \\qquad y_k = w_k \\cdot x

    The only stable fixed points are :math:`\\pm e_1` (first principal component) with :math:`\\|w\\| = 1`. The step
    must be small: :math:`\\eta \\lambda_1 \\ll 1`. With one output unit this is the classic single-neuron rule.

    Args:
        normalize: ``"mean"``, ``"sum"`` or ``"max_abs"`` (see :func:`~hebbian.rules.base.normalize_delta`).
    """

    def __init__(self, normalize: str = "mean") -> None:
        self.normalize = check_choice("normalize", normalize, NORMALIZATIONS)

    def statistics(self, view: LayerView, x: Tensor, u: Tensor, labels: Optional[Tensor] = None) -> Statistics:
        decay = view.per_neuron(view.neuron_sum(u * u)) * view.weight
        return {"delta": view.correlate(x, u) - decay, "count": view.count(u)}


@register_rule(
    "oja_subspace",
    description="Oja's subspace rule: dw_i = y_i (x - sum_k y_k w_k); an orthonormal basis of the top-M subspace.",
)
class OjaSubspace(LearningRule):
    """Oja's subspace rule (symmetric multi-unit Oja).

    .. math:: \\Delta w_i = \\frac{1}{S}\\sum_{n,p} y_i \\Big(P - \\sum_{k=1}^{M} y_k w_k\\Big), \\qquad y = W x

    Batched as :math:`Y^\\top X - (Y^\\top Y) W`. Converges to an orthonormal basis of span(e1..eM) (up to rotation).

    Args:
        normalize: ``"mean"``, ``"sum"`` or ``"max_abs"``.
    """

    def __init__(self, normalize: str = "mean") -> None:
        self.normalize = check_choice("normalize", normalize, NORMALIZATIONS)

    def statistics(self, view: LayerView, x: Tensor, u: Tensor, labels: Optional[Tensor] = None) -> Statistics:
        return {"delta": reconstruction_delta(view, x, u, None), "count": view.count(u)}


@register_rule(
    "sanger",
    description="Sanger's GHA: dw_i = y_i (x - sum_{k<=i} y_k w_k); ordered principal components.",
    aliases=("gha",),
)
class Sanger(LearningRule):
    """Sanger's generalized Hebbian algorithm (GHA).

    .. math:: \\Delta w_i = \\frac{1}{S}\\sum_{n,p} y_i \\Big(P - \\sum_{k \\le i} y_k w_k\\Big), \\qquad y = f(W x)

    Batched as :math:`Y^\\top X - (\\mathrm{tril}(Y^\\top Y)) W`. With ``activation="identity"`` the units converge to
    :math:`\\pm e_1, \\dots, \\pm e_M` in order (requires distinct eigenvalues).

    Args:
        activation: ``"identity"`` (linear GHA) or ``"relu"`` (non-linear, as in HPCA).
        normalize: ``"mean"``, ``"sum"`` or ``"max_abs"``.
    """

    def __init__(self, activation: str = "identity", normalize: str = "mean") -> None:
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        self.normalize = check_choice("normalize", normalize, NORMALIZATIONS)

    def statistics(self, view: LayerView, x: Tensor, u: Tensor, labels: Optional[Tensor] = None) -> Statistics:
        y = torch.relu(u) if self.activation == "relu" else u
        mask = torch.ones(view.num_neurons, view.num_neurons, dtype=u.dtype, device=u.device).tril_()
        return {"delta": reconstruction_delta(view, x, y, mask), "count": view.count(u)}
