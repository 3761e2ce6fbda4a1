"""pytorch-hebbian's ``UnitConvergence``: an Ignite metric of how many units of a layer reached the unit p-sphere."""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

import torch
from ignite.engine import Engine
from ignite.metrics import Metric
from torch import nn

from hebbian.visualizers.convergence import unit_norms

__all__ = ["UnitConvergence"]


class UnitConvergence(Metric):
    """Fraction of the layer's units with :math:`\\sum_i |w_{ki}|^{p} < 1 + \\text{tolerance}` (``p = norm``).

    The one-sided criterion is pytorch-hebbian's (:func:`hebbian.visualizers.unit_convergence` counts
    :math:`|r_k - 1| < \\text{tol}` instead). A unit is a row of a ``Linear`` weight or an output channel of a
    ``Conv2d`` weight (pytorch-hebbian counted each (channel, input channel) kernel separately; the same for one
    input channel). The metric reads the layer's weights when computed (at ``EPOCH_COMPLETED`` once attached) and
    ignores the engine's output, so it attaches to any engine.

    Args:
        layer: the ``nn.Linear`` or ``nn.Conv2d``.
        norm: the exponent p (> 0), e.g. ``KrotovsRule.norm``.
        tolerance: how far above 1 still counts as converged.
    """

    def __init__(self, layer: nn.Module, norm: float, tolerance: float = 0.1,
                 output_transform: Callable = lambda x: x, device: Optional[Union[str, torch.device]] = None
                 ) -> None:
        if not isinstance(layer, (nn.Linear, nn.Conv2d)):
            raise TypeError(f"layer must be an nn.Linear or nn.Conv2d, got {type(layer).__name__}")
        if isinstance(norm, bool) or not isinstance(norm, (int, float)) or not norm > 0:
            raise ValueError(f"norm must be a positive number, got {norm!r}")
        self.layer, self.norm, self.tolerance = layer, float(norm), tolerance
        kwargs: Any = {} if device is None else {"device": device}
        super().__init__(output_transform=output_transform, **kwargs)

    def reset(self) -> None:
        pass

    def update(self, output: Any) -> None:
        pass

    def iteration_completed(self, engine: Engine) -> None:
        """Nothing to accumulate: the value depends on the weights only (any engine output is accepted)."""

    def compute(self) -> float:
        norms = unit_norms(self.layer.weight, self.norm)
        return float((norms < 1 + self.tolerance).float().mean())
