"""What a layer's units respond to: their class selectivity and how correlated their responses are.

Pure functions of a response matrix ``(N, M)`` (N samples, M units; responses >= 0, e.g. rectified outputs) and the
samples' class labels, computed in float64. :meth:`hebbian.experiment.Experiment.rule_metrics` applies them to the
first Hebbian layer of a run, before and after training.

* **Selectivity** (Bienenstock, Cooper & Munro 1982): with :math:`r_{ck}` the mean response of unit :math:`k` to the
  samples of class :math:`c`, :math:`\\mathrm{Sel}_k = 1 - \\overline{r_{\\cdot k}} / \\max_c r_{ck}` (0: the unit
  responds equally to every class; :math:`1 - 1/C`: to one class only). Also the *fraction of classes a unit responds
  to*: the classes whose mean response exceeds half of the unit's largest class mean.
* **Decorrelation**: the mean absolute Pearson correlation :math:`\\frac{1}{M(M-1)}\\sum_{i \\ne j} |\\rho_{ij}|` of the
  units' responses over the samples (Földiák 1990's goal is :math:`\\rho_{ij} \\to 0`).

Units that never respond (all zero) have no selectivity and no correlation: they are left out, and their share is
reported as ``silent_units``.
"""

from __future__ import annotations

from typing import Dict

import torch
from torch import Tensor


def class_means(responses: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Mean response of every unit to every class, ``(C, M)`` in float64 (``NaN`` rows for absent classes)."""
    r = responses.detach().double()
    onehot = torch.zeros(r.shape[0], num_classes, dtype=torch.float64, device=r.device)
    onehot.scatter_(1, labels.long().view(-1, 1), 1.0)
    return (onehot.t() @ r) / onehot.sum(0).unsqueeze(1)


def selectivity(responses: Tensor, labels: Tensor, num_classes: int) -> Dict[str, float]:
    """``selectivity``: mean over responding units of :math:`1 - \\text{mean}_c r_{ck} / \\max_c r_{ck}`;
    ``classes_responded``: mean over responding units of the fraction of classes with :math:`r_{ck} > \\frac12
    \\max_c r_{ck}`; ``silent_units``: the share of units that never respond.

    Args:
        responses: ``(N, M)`` non-negative responses.
        labels: ``(N,)`` class indices in ``[0, num_classes)``.
        num_classes: C.
    """
    check_responses(responses, labels)
    means = class_means(responses, labels, num_classes)
    means = means[~torch.isnan(means).any(dim=1)]  # classes without samples
    peak = means.max(dim=0).values
    alive = peak > 0
    if not bool(alive.any()):
        return {"selectivity": float("nan"), "classes_responded": float("nan"), "silent_units": 1.0}
    m, p = means[:, alive], peak[alive]
    return {"selectivity": float((1.0 - m.mean(dim=0) / p).mean()),
            "classes_responded": float((m > 0.5 * p).double().mean(dim=0).mean()),
            "silent_units": float(1.0 - alive.double().mean())}


def mean_abs_correlation(responses: Tensor) -> float:
    """:math:`\\frac{1}{M'(M'-1)}\\sum_{i \\ne j} |\\rho_{ij}|` over the :math:`M'` units whose response varies
    (``NaN`` when fewer than two do)."""
    r = responses.detach().double()
    r = r - r.mean(dim=0)
    std = r.norm(dim=0)
    varying = std > 1e-12 * max(1.0, float(std.max()) if std.numel() else 1.0)
    r, std = r[:, varying], std[varying]
    m = r.shape[1]
    if m < 2:
        return float("nan")
    corr = (r.t() @ r) / (std.unsqueeze(1) * std.unsqueeze(0))
    return float((corr.abs().sum() - corr.diagonal().abs().sum()) / (m * (m - 1)))


def unit_metrics(responses: Tensor, labels: Tensor, num_classes: int) -> Dict[str, float]:
    """:func:`selectivity` and :func:`mean_abs_correlation` (as ``correlation``) of one response matrix."""
    return {**selectivity(responses, labels, num_classes), "correlation": mean_abs_correlation(responses)}


def check_responses(responses: Tensor, labels: Tensor) -> None:
    if responses.dim() != 2:
        raise ValueError(f"responses must have shape (N, M), got {tuple(responses.shape)}")
    if labels.shape != (responses.shape[0],):
        raise ValueError(f"labels must have shape ({responses.shape[0]},), got {tuple(labels.shape)}")
    if bool((responses < 0).any()):
        raise ValueError("responses must be >= 0 (rectify them first)")
