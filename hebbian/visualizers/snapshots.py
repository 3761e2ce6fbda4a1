"""Filters over training: copies of a layer's weights kept at chosen steps, to draw as a strip or an animation.

:class:`FilterSnapshots` is an Ignite event handler: attached to a trainer, it copies one layer's weights (to the
CPU) at the epochs (or iterations) you choose::

    snapshots = FilterSnapshots(model[0], steps=[0, 1, 2, 5, 10])
    snapshots.attach(trainer)                       # Events.EPOCH_COMPLETED; step 0 is the initial weights
    trainer.run(loader, max_epochs=10)
    plot_filters_over_training(snapshots.weights)   # a strip of filter grids, one per kept step

The snapshots are plain ``{step: weight}`` mappings, so the same figures draw weights loaded from a run's
checkpoints (what ``hebbian visualize RUN --over-training`` does). Copying happens only at the chosen steps, never
in the per-batch update.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import torch
from ignite.engine import Engine, Events
from torch import Tensor, nn

from hebbian.visualizers.grids import filter_grid


def _check_steps(steps: Optional[Iterable[int]]) -> Optional[List[int]]:
    if steps is None:
        return None
    chosen = list(steps)
    if not chosen or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in chosen):
        raise ValueError(f"steps must be a non-empty list of non-negative integers (or None: every step), "
                         f"got {steps!r}")
    return sorted(set(chosen))


class FilterSnapshots:
    """Keeps copies of a layer's weights at chosen training steps.

    Args:
        layer: the module whose ``weight`` is kept (``nn.Linear``, ``nn.Conv*d``), or the weight tensor itself.
        steps: the epochs (or iterations, see :meth:`attach`) at which to keep a copy; ``0`` is the weights before
            training (kept by :meth:`attach`). ``None``: every step the handler fires.

    Attributes:
        weights: ``{step: weight}``, CPU copies in the order they were taken.
    """

    def __init__(self, layer: Any, steps: Optional[Iterable[int]] = None) -> None:
        weight = layer.weight if isinstance(layer, nn.Module) else layer
        if not isinstance(weight, Tensor):
            raise TypeError(f"layer must be a module with a weight or a weight tensor, got {type(layer).__name__}")
        self.weight = weight
        self.steps = _check_steps(steps)
        self.weights: Dict[int, Tensor] = {}

    def keep(self, step: int) -> None:
        """Copy the weights now, as step ``step`` (if it is one of the chosen steps)."""
        if self.steps is None or step in self.steps:
            self.weights[step] = self.weight.detach().to("cpu", copy=True)

    def __call__(self, engine: Engine, event: Any = Events.EPOCH_COMPLETED) -> None:
        self.keep(engine.state.get_event_attrib_value(event))

    def attach(self, engine: Engine, event: Any = Events.EPOCH_COMPLETED) -> "FilterSnapshots":
        """Keep the current weights as step 0 and a copy after every chosen ``event`` (epochs or iterations)."""
        if event not in (Events.EPOCH_COMPLETED, Events.ITERATION_COMPLETED):
            raise ValueError(f"event must be Events.EPOCH_COMPLETED or Events.ITERATION_COMPLETED, got {event!r}")
        self.keep(0)
        engine.add_event_handler(event, self, event)
        return self

    def grids(self, input_shape: Optional[Sequence[int]] = None, max_filters: int = 64) -> Dict[int, Tensor]:
        """``{step: (3, H, W) image}``: the :func:`~hebbian.visualizers.grids.filter_grid` of every kept step."""
        return snapshot_grids(self.weights, input_shape, max_filters)


def snapshot_grids(
    weights: Mapping[Any, Tensor], input_shape: Optional[Sequence[int]] = None, max_filters: int = 64,
) -> Dict[Any, Tensor]:
    """``{step: filter_grid(weight)}`` of ``{step: weight}`` snapshots (tiles at their natural size).

    Raises:
        ValueError: no snapshots, or snapshots of different shapes.
    """
    if not isinstance(weights, Mapping) or not weights:
        raise ValueError("weights must be a non-empty mapping {step: weight tensor}; nothing was kept")
    shapes = {tuple(w.shape) for w in weights.values()}
    if len(shapes) > 1:
        raise ValueError(f"the snapshots must all have one shape, got {sorted(shapes)}")
    return {step: filter_grid(torch.as_tensor(w), input_shape, max_filters, min_tile=1) for step, w in weights.items()}
