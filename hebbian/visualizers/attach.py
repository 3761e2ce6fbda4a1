"""One call that attaches every visualizer to a trainer at sensible rates."""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Union

from ignite.engine import Engine, Events
from ignite.handlers.tensorboard_logger import TensorboardLogger, WeightsHistHandler
from torch import Tensor, nn

from hebbian.models.discovery import unwrap_model
from hebbian.visualizers.handlers import (
    ActivationStatsHandler,
    FilterGridHandler,
    InputShape,
    OnRankZero,
    UnitConvergenceHandler,
    UpdateHistHandler,
    UpdateNormHandler,
)


def _check_rate(name: str, value: Optional[int]) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")


def attach_visualizers(
    tb_logger: TensorboardLogger,
    trainer: Engine,
    model: Optional[nn.Module] = None,
    *,
    every_iters: Optional[int] = 100,
    every_epochs: Optional[int] = 1,
    probe: Optional[Union[Tensor, Sequence[Tensor]]] = None,
    input_shape: InputShape = None,
    max_filters: int = 64,
    tag: Optional[str] = None,
) -> Dict[str, Any]:
    """Attach all visualizers of the trainer's Hebbian layers to ``tb_logger``.

    Every ``every_epochs`` epochs: filter grids, unit convergence and unit-norm histograms, weight histograms
    (Ignite's ``WeightsHistHandler``) and update histograms. Every ``every_iters`` iterations: update norms and
    activation statistics (hooks armed at that iteration's start, or a forward pass on ``probe``). ``None`` switches
    a rate off. Only the layers bound in ``trainer.bindings`` are shown (all ``Linear``/``Conv2d`` layers of ``model``
    on an engine without bindings). Everything writes on rank 0 only.

    Args:
        tb_logger: the logger.
        trainer: e.g. a :class:`~hebbian.trainers.HebbianTrainer`.
        model: the model (default ``trainer.model``).
        every_iters: rate of the per-iteration scalars.
        every_epochs: rate of the images and histograms.
        probe: fixed batch for the activation statistics (default: the training batches).
        input_shape: image shape of fully-connected inputs, see :class:`FilterGridHandler`.
        max_filters: units per filter grid.
        tag: prefix of all tags.

    Returns:
        ``{name: handler}`` for ``filters``, ``convergence``, ``weights``, ``update_hist``, ``update_norm`` and
        ``activations`` (those whose rate is not ``None``).
    """
    _check_rate("every_iters", every_iters)
    _check_rate("every_epochs", every_epochs)
    model = model if model is not None else getattr(trainer, "model", None)
    if not isinstance(model, nn.Module):
        raise TypeError("model must be given (an nn.Module) when the trainer has no .model")
    model = unwrap_model(model)
    bindings = getattr(trainer, "bindings", None)
    layers = None if bindings is None else {b.name for b in bindings}
    weights = None if layers is None else (lambda name, _: name.rsplit(".", 1)[0] in layers and name.endswith("weight"))
    modules = None if layers is None else (lambda name, _: name in layers)
    handlers: Dict[str, Any] = {}
    if every_epochs is not None:
        epoch = Events.EPOCH_COMPLETED(every=every_epochs)
        handlers["filters"] = FilterGridHandler(model, input_shape, max_filters, tag=tag, whitelist=weights)
        handlers["convergence"] = UnitConvergenceHandler(model, tag=tag, whitelist=weights)
        handlers["weights"] = OnRankZero(WeightsHistHandler(model, tag=tag, whitelist=weights))
        handlers["update_hist"] = UpdateHistHandler(tag=tag)
        for handler in handlers.values():
            tb_logger.attach(trainer, handler, event_name=epoch)
    if every_iters is not None:
        iteration = Events.ITERATION_COMPLETED(every=every_iters)
        handlers["update_norm"] = UpdateNormHandler(tag=tag)
        handlers["activations"] = ActivationStatsHandler(model, probe, whitelist=modules, tag=tag)
        if probe is None:
            trainer.add_event_handler(Events.ITERATION_STARTED(every=every_iters), handlers["activations"].arm)
        tb_logger.attach(trainer, handlers["update_norm"], event_name=iteration)
        tb_logger.attach(trainer, handlers["activations"], event_name=iteration)
    return handlers
