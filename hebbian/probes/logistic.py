"""Multinomial logistic regression on standardised features, fitted to convergence: the default linear probe.

The functional core of :class:`~hebbian.probes.LogisticProbe`:

* :func:`standardize` scales every feature to zero mean and unit variance with statistics of the training split
  only (constant features stay 0), so the probe measures what the features separate, not their scale;
* :func:`fit_logistic` minimises the convex objective

  .. math:: L(W, b) = \\frac{1}{N}\\sum_n -\\log \\mathrm{softmax}(W z_n + b)_{y_n} + \\frac{\\lambda}{2}\\lVert W\\rVert^2

  from ``W = 0, b = 0`` with full-batch L-BFGS (strong-Wolfe line search) in float64 until the gradient's largest
  entry is below ``tol`` (or ``max_iter`` L-BFGS iterations pass, which it reports). With ``λ > 0`` the minimiser is
  unique, so the result depends on neither an initialisation nor a data order;
* :func:`select_l2` fits every ``λ`` of a grid on the training part and keeps the one with the best accuracy on the
  validation part (ties: the larger ``λ``), never looking at a test split.

Shapes: features ``(N, D)`` (any trailing shape is flattened), labels ``(N,)`` integers in ``[0, C)``;
``W`` is ``(C, D)``, ``b`` is ``(C,)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from hebbian.threads import one_thread

#: Feature matrices up to this many elements are fitted on one CPU thread (many short steps: threads only wait).
SMALL = 1 << 21

#: The default grid of L2 strengths (on standardised features, mean cross-entropy).
DEFAULT_L2_GRID: Tuple[float, ...] = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


class NonFiniteFeaturesError(ValueError):
    """The features hold NaN or Inf (e.g. the weights of a diverged rule): no readout can be fitted to them."""


@dataclass
class Standardizer:
    """Per-feature ``(z - mean) / std`` with the statistics of one split (``std`` 0 -> the feature becomes 0)."""

    mean: Tensor
    std: Tensor

    @classmethod
    def fit(cls, features: Tensor) -> "Standardizer":
        x = features.flatten(1).double()
        std = x.std(dim=0, unbiased=False)
        return cls(x.mean(dim=0), torch.where(std > 0, std, torch.ones_like(std)))

    def __call__(self, features: Tensor) -> Tensor:
        x = features.flatten(1).to(self.mean.device, torch.float64)
        return (x - self.mean) / self.std


def standardize(train: Tensor, *others: Tensor) -> List[Tensor]:
    """``[train, *others]`` standardised with the training split's per-feature mean and standard deviation."""
    scaler = Standardizer.fit(train)
    return [scaler(train)] + [scaler(o) for o in others]


@dataclass
class LogisticFit:
    """A fitted readout ``logits = z @ weight.T + bias`` on standardised features ``z``.

    Attributes:
        weight: ``(C, D)``. bias: ``(C,)``. l2: its ``λ``.
        iterations: L-BFGS iterations used. converged: the gradient tolerance was reached.
        loss: the final objective value.
    """

    weight: Tensor
    bias: Tensor
    l2: float
    iterations: int
    converged: bool
    loss: float

    def logits(self, z: Tensor) -> Tensor:
        return z @ self.weight.T + self.bias

    def accuracy(self, z: Tensor, labels: Tensor) -> float:
        """Share of rows whose largest logit is the label (one host sync)."""
        return float((self.logits(z).argmax(dim=1) == labels.to(z.device)).double().mean())


def _check(z: Tensor, labels: Tensor, num_classes: int) -> None:
    if z.dim() != 2 or labels.dim() != 1 or len(z) != len(labels):
        raise ValueError(f"features must be (N, D) and labels (N,), got {tuple(z.shape)} and {tuple(labels.shape)}")
    if len(z) == 0:
        raise ValueError("the probe got no samples")
    if labels.dtype in (torch.float16, torch.float32, torch.float64, torch.bfloat16):
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    if not torch.isfinite(z).all():
        raise NonFiniteFeaturesError("the features contain NaN or Inf (diverged weights?); no readout can be fitted")
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes}), got [{int(labels.min())}, {int(labels.max())}]")


def fit_logistic(z: Tensor, labels: Tensor, num_classes: int, l2: float, *, tol: float = 1e-6,
                 max_iter: int = 1000, start: Optional[LogisticFit] = None) -> LogisticFit:
    """The minimiser of the L2-regularised mean cross-entropy (see the module docstring), by full-batch L-BFGS.

    Args:
        z: ``(N, D)`` standardised features (float64 recommended). labels: ``(N,)``.
        num_classes: ``C``. l2: ``λ >= 0``.
        tol: stop when the largest absolute gradient entry falls below this.
        max_iter: most L-BFGS iterations.
        start: a fit to start from (e.g. the solution for a neighbouring ``λ``: fewer iterations); default 0. With
            ``λ > 0`` the minimiser is unique, so the start changes the result only within the tolerance.
    """
    if not l2 >= 0:
        raise ValueError(f"l2 must be >= 0, got {l2!r}")
    _check(z, labels, num_classes)
    labels = labels.to(z.device)
    if start is None:
        weight = torch.zeros(num_classes, z.shape[1], dtype=z.dtype, device=z.device)
        bias = torch.zeros(num_classes, dtype=z.dtype, device=z.device)
    else:
        weight, bias = start.weight.to(z.device, z.dtype).clone(), start.bias.to(z.device, z.dtype).clone()
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, tolerance_grad=tol,
                                  tolerance_change=1e-15, history_size=20, line_search_fn="strong_wolfe")
    rows = torch.arange(len(labels), device=z.device)

    def objective() -> Tensor:
        """The objective and its gradient in closed form: dL/dW = (P - Y)^T z / N + λ W, dL/db = (P - Y)^T 1 / N."""
        with torch.no_grad():
            log_p = torch.addmm(bias, z, weight.T).log_softmax(dim=1)
            loss = -log_p[rows, labels].mean() + 0.5 * l2 * weight.pow(2).sum()
            residual = log_p.exp_()
            residual[rows, labels] -= 1.0
            residual.div_(len(labels))
            weight.grad = torch.addmm(weight, residual.T, z, beta=l2)
            bias.grad = residual.sum(dim=0)
        return loss

    with one_thread(z.device.type == "cpu" and z.numel() <= SMALL):
        optimizer.step(objective)
        loss = objective()
    grad = torch.cat([weight.grad.flatten(), bias.grad.flatten()]).abs().max()
    iterations = int(optimizer.state[optimizer._params[0]]["n_iter"])
    return LogisticFit(weight, bias, float(l2), iterations, bool(grad <= tol), float(loss))


def select_l2(train: Tuple[Tensor, Tensor], val: Tuple[Tensor, Tensor], num_classes: int,
              grid: Sequence[float] = DEFAULT_L2_GRID, *, tol: float = 1e-6, max_iter: int = 1000,
              on_fit: Optional[Callable[[LogisticFit, float], None]] = None) -> Tuple[LogisticFit, float]:
    """Fit every ``λ`` of ``grid`` on ``train`` and return the fit with the best accuracy on ``val`` and that accuracy.

    Ties go to the larger ``λ`` (the simpler readout). The fits run from the largest ``λ`` down, each starting from
    the previous solution. ``on_fit(fit, val_accuracy)`` is called after each fit.

    Raises:
        ValueError: an empty grid or a negative ``λ``.
    """
    grid = sorted((float(v) for v in grid), reverse=True)
    if not grid or grid[-1] < 0:
        raise ValueError(f"the l2 grid must hold numbers >= 0, got {list(grid)!r}")
    best: Optional[Tuple[LogisticFit, float]] = None
    fit = None
    for l2 in grid:
        fit = fit_logistic(train[0], train[1], num_classes, l2, tol=tol, max_iter=max_iter, start=fit)
        accuracy = fit.accuracy(*val)
        if on_fit is not None:
            on_fit(fit, accuracy)
        if best is None or accuracy > best[1]:
            best = (fit, accuracy)
    assert best is not None
    return best
