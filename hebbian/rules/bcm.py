"""Bienenstock-Cooper-Munro (BCM) learning with a sliding modification threshold, in the Intrator-Cooper form."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from hebbian.rules.base import NORMALIZATIONS, LearningRule, Statistics, check_choice, check_positive, normalize_delta
from hebbian.rules.layers import LayerView
from hebbian.rules.registry import register_rule

BCM_ACTIVATIONS = ("relu", "identity")


@register_rule(
    "bcm",
    description="BCM (Intrator-Cooper): dw_k = y_k (y_k - theta_k) x, theta_k a running average of y_k^2.",
    stateful=True,
)
class BCM(LearningRule):
    """BCM with the sliding threshold of Intrator & Cooper (1992) kept as a temporal average (Law & Cooper 1994).

    .. math::
        y = f(u), \\qquad
        \\theta_k \\leftarrow \\theta_k + \\frac{1}{\\tau}\\Big(\\frac{1}{S}\\sum_{n,p} y_{n,k,p}^2 - \\theta_k\\Big)
        \\quad (\\theta_k = \\tfrac{1}{S}\\sum y_k^2 \\text{ at the first batch})

        \\Delta w_k = \\frac{1}{S} \\sum_{n,p} y_{n,k,p}\\,(y_{n,k,p} - \\theta_k)\\, P_{n,p}
                    = \\frac{1}{S}\\Big(\\sum y_k^2 P - \\theta_k \\sum y_k P\\Big)

    :math:`\\phi(y, \\theta) = y (y - \\theta)` is Intrator & Cooper's modification function: potentiation when the
    response exceeds the threshold, depression below it. Their threshold is :math:`\\theta = E[y^2]`; like Law & Cooper
    (1994) it is estimated here as an exponentially weighted running average over the batches seen, with time constant
    ``tau`` batches (:math:`\\theta` then includes the current batch, the discrete form of their
    :math:`\\theta(t) = \\frac{1}{\\tau}\\int_{-\\infty}^{t} y^2(t') e^{-(t - t')/\\tau} dt'`). For
    ``activation="relu"`` (a rectified unit, :math:`f'(u) = [u > 0]`) the update equals Intrator & Cooper's gradient
    :math:`\\phi(y, \\theta) f'(u) x` of their risk :math:`-\\frac13 E[y^3] + \\frac14 E^2[y^2]`.

    Batch sums (reducible across data-parallel workers): :math:`\\sum y^2 P`, :math:`\\sum y P`, :math:`\\sum y^2` and
    :math:`S`; :math:`\\theta` is stepped in :meth:`finalize` from the reduced sums, so every worker keeps the same
    threshold and the result equals the one-process run.

    State: ``theta``, the thresholds :math:`\\theta_k` ``(M,)`` (``None`` before the first batch); checkpointed.

    Args:
        tau: time constant of the threshold's running average, in batches (>= 1; ``1``: the batch mean).
        activation: ``"relu"`` (rectified responses, the default) or ``"identity"`` (linear BCM neuron).
        normalize: ``"mean"``, ``"sum"`` or ``"max_abs"`` (see :func:`~hebbian.rules.base.normalize_delta`).

    Shapes: ``x (S, D)`` / ``(N, C, *spatial)``, ``u (S, M)`` / ``(N, M, *out)``; returns the weight's shape.
    """

    state_tensors = ("theta",)

    def __init__(self, tau: float = 20.0, activation: str = "relu", normalize: str = "mean") -> None:
        self.tau = check_positive("tau", tau)
        if self.tau < 1:
            raise ValueError(f"tau must be >= 1 (batches), got {tau!r}")
        self.activation = check_choice("activation", activation, BCM_ACTIVATIONS)
        self.normalize = check_choice("normalize", normalize, NORMALIZATIONS)
        self.theta: Optional[Tensor] = None

    def response(self, u: Tensor) -> Tensor:
        """The unit's output :math:`y = f(u)`."""
        return torch.relu(u) if self.activation == "relu" else u

    def statistics(self, view: LayerView, x: Tensor, u: Tensor, labels: Optional[Tensor] = None) -> Statistics:
        y = self.response(u)
        y2 = y * y
        return {"y2x": view.correlate(x, y2), "yx": view.correlate(x, y), "y2": view.neuron_sum(y2),
                "count": view.count(u)}

    def finalize(self, view: LayerView, stats: Statistics, grad: Optional[Tensor] = None) -> Tensor:
        count = stats["count"].clamp_min(1)
        batch_y2 = stats["y2"] / count
        theta = self.theta
        if theta is None:
            theta = batch_y2.clone()
        elif theta.shape != batch_y2.shape:
            raise ValueError(f"rule 'bcm' holds thresholds theta for {theta.shape[0]} units, but the layer has "
                             f"{batch_y2.shape[0]}; use one rule per layer (rule.clone())")
        else:
            theta = theta.to(batch_y2).lerp_(batch_y2, 1.0 / self.tau)
        self.theta = theta
        delta = stats["y2x"].sub_(view.per_neuron(theta) * stats["yx"])
        return normalize_delta(delta, stats["count"], self.normalize)
