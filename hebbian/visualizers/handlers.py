"""Handlers for Ignite's ``TensorboardLogger`` that show what Hebbian layers learn.

All handlers only read the model and the trainer's state, write on rank 0 only, and are rate-limited by the event
filter they are attached with::

    tb_logger = TensorboardLogger(log_dir="runs/krotov")
    tb_logger.attach(trainer, FilterGridHandler(model), event_name=Events.EPOCH_COMPLETED(every=1))
    tb_logger.attach(trainer, UpdateNormHandler(), event_name=Events.ITERATION_COMPLETED(every=100))

or all at once with :func:`hebbian.visualizers.attach_visualizers`. The global step is the event's counter
(iteration or epoch), as in Ignite's own handlers, unless ``global_step_transform`` says otherwise.

Tags (``<layer>`` is the layer's qualified name with ``/`` for ``.``; an optional ``tag`` is prepended):

* ``filters/<layer>`` (image): :class:`FilterGridHandler`;
* ``unit_convergence/<layer>`` (scalar) and ``unit_norm/<layer>`` (histogram of :math:`\\sum_i |w_{ki}|^p`):
  :class:`UnitConvergenceHandler`;
* ``update_norm/<layer>`` (scalar :math:`\\|\\Delta W\\|_F`): :class:`UpdateNormHandler`;
  ``updates/<layer>`` (histogram of :math:`\\Delta W`): :class:`UpdateHistHandler`;
* ``activation/{mean,dead_fraction,winner_usage}/<layer>`` (scalars): :class:`ActivationStatsHandler`;
* ``weights/<param>`` (histogram): Ignite's ``WeightsHistHandler``, wrapped in :class:`OnRankZero`.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import ignite.distributed as idist
import torch
from ignite.engine import Engine
from ignite.handlers.base_logger import BaseHandler, BaseWeightsHandler
from ignite.handlers.tensorboard_logger import TensorboardLogger
from torch import Tensor, nn

from hebbian.models.discovery import candidate_layers, unwrap_model
from hebbian.visualizers.activations import COMPETITIVE_RULES, ActivationRecorder, summarize
from hebbian.rules.base import check_positive
from hebbian.visualizers.convergence import converged_fraction, convergence_targets, unit_norms
from hebbian.visualizers.grids import filter_grid, receptive_field_shape

Whitelist = Optional[Union[Sequence[str], Callable[[str, Any], bool]]]
StepTransform = Callable[[Engine, Any], int]
InputShape = Optional[Union[Sequence[int], Mapping[str, Sequence[int]]]]


def _global_step(handler: Any, engine: Engine, logger: Any, event_name: Any) -> Optional[int]:
    """The step to log at, or ``None`` on ranks other than 0 (where nothing is written)."""
    if idist.get_rank() != 0:
        return None
    if not isinstance(logger, TensorboardLogger):
        raise RuntimeError(f"Handler {type(handler).__name__!r} works only with TensorboardLogger")
    transform = getattr(handler, "global_step_transform", None)
    if transform is not None:
        return int(transform(engine, event_name))
    return engine.state.get_event_attrib_value(event_name)


def _tag(prefix: Optional[str], *parts: str) -> str:
    return "/".join(([prefix] if prefix else []) + [p.replace(".", "/") for p in parts])


def _selected(name: str, module: Any, whitelist: Whitelist) -> bool:
    """Ignite's whitelist semantics on layer names: ``None`` all, a sequence of prefixes, or a predicate."""
    if whitelist is None:
        return True
    if callable(whitelist):
        return bool(whitelist(name, module))
    if isinstance(whitelist, str):
        raise TypeError(f"whitelist must be a list of layer names or a callable, got the string {whitelist!r}")
    return name.startswith(tuple(whitelist))


def _layer_weights(handler: BaseWeightsHandler) -> Dict[str, str]:
    """``{param name: layer name}`` for the whitelisted ``weight`` parameters of ``Linear``/``Conv2d`` layers."""
    layers = {f"{n}.weight": n for n, _ in candidate_layers(handler.model)}
    return {p: layers[p] for p, _ in handler.weights if p in layers}


class OnRankZero(BaseHandler):
    """Runs any logger handler (e.g. Ignite's ``WeightsHistHandler``) on rank 0 only."""

    def __init__(self, handler: Callable[[Engine, Any, Any], None]) -> None:
        self.handler = handler

    def __call__(self, engine: Engine, logger: Any, event_name: Any) -> None:
        if idist.get_rank() == 0:
            self.handler(engine, logger, event_name)


class FilterGridHandler(BaseWeightsHandler):
    """Logs every selected layer's weights as a filter-grid image (:func:`~hebbian.visualizers.grids.filter_grid`).

    First-layer conv filters are drawn as images (RGB when the layer has 3 input channels), fully-connected units
    as receptive fields in the input's shape, deeper conv layers as their strongest units, one row of input-channel
    kernels each. Every tile is normalised on its own. Layers whose image shape cannot be resolved are skipped with
    a warning.

    Args:
        model: the model (DDP wrappers are looked through).
        input_shape: ``(C, H, W)`` of the input of fully-connected layers whose fan-in it matches (others are
            inferred), or ``{layer name: (C, H, W)}``.
        max_filters: at most this many units per image.
        max_channels: deeper conv layers: at most this many input channels per unit.
        tag: prefix of the image tags.
        whitelist: layer (or parameter) names / prefixes, or a predicate ``(param name, param) -> bool``.
        global_step_transform: ``(engine, event_name) -> step``.

    Raises:
        ValueError: if no selected layer can be drawn, or a layer's entry in an ``input_shape`` mapping does not fit.
    """

    def __init__(
        self,
        model: nn.Module,
        input_shape: InputShape = None,
        max_filters: int = 64,
        max_channels: int = 8,
        tag: Optional[str] = None,
        whitelist: Whitelist = None,
        global_step_transform: Optional[StepTransform] = None,
    ) -> None:
        super().__init__(unwrap_model(model), tag, whitelist)
        self.max_filters, self.max_channels = max_filters, max_channels
        self.global_step_transform = global_step_transform
        self.shapes: Dict[str, Optional[Tuple[int, int, int]]] = {}
        params = dict(self.weights)
        for pname, layer in _layer_weights(self).items():
            shape = self._image_shape(layer, params[pname], input_shape)
            if shape is not False:
                self.shapes[pname] = shape
        if not self.shapes:
            raise ValueError("FilterGridHandler: no selected Linear/Conv2d layer can be drawn (check whitelist)")

    @staticmethod
    def _image_shape(layer: str, weight: Tensor, input_shape: InputShape) -> Any:
        """The Linear layer's input shape, ``None`` for conv layers, ``False`` (with a warning) if unknown."""
        if weight.dim() != 2:
            return None
        if isinstance(input_shape, Mapping):
            if layer in input_shape:
                return receptive_field_shape(weight.shape[1], input_shape[layer])
            hint = None
        else:
            hint = input_shape
            if hint is not None and math.prod(hint) != weight.shape[1]:
                hint = None
        try:
            return receptive_field_shape(weight.shape[1], hint)
        except ValueError as err:
            warnings.warn(f"FilterGridHandler skips layer {layer!r}: {err}", stacklevel=3)
            return False

    def __call__(self, engine: Engine, logger: TensorboardLogger, event_name: Any) -> None:
        step = _global_step(self, engine, logger, event_name)
        if step is None:
            return
        for pname, p in self.weights:
            if pname in self.shapes:
                image = filter_grid(p.data, self.shapes[pname], self.max_filters, max_channels=self.max_channels)
                logger.writer.add_image(_tag(self.tag, "filters", pname[: -len(".weight")]), image, step)


class UnitConvergenceHandler(BaseWeightsHandler):
    """Logs the fraction of units at their rule's fixed-point norm and a histogram of the units' norms.

    See :mod:`hebbian.visualizers.convergence`. With ``p=None`` each layer's exponent comes from the rule bound to it
    in ``engine.bindings`` (layers whose rule has no fixed norm, and unbound layers, are skipped); on an engine
    without ``bindings`` every selected layer is measured with ``p = 2``.

    Args:
        model: the model.
        p: exponent for every layer (overrides the rules').
        tol: tolerance around 1.
        histogram: also log ``unit_norm/<layer>`` histograms of :math:`r_k = \\sum_i |w_{ki}|^p`.
        tag, whitelist, global_step_transform: as in :class:`FilterGridHandler`.
    """

    def __init__(
        self,
        model: nn.Module,
        p: Optional[float] = None,
        tol: float = 0.1,
        histogram: bool = True,
        tag: Optional[str] = None,
        whitelist: Whitelist = None,
        global_step_transform: Optional[StepTransform] = None,
    ) -> None:
        super().__init__(unwrap_model(model), tag, whitelist)
        self.p, self.tol, self.histogram = p, check_positive("tol", tol), histogram
        self.global_step_transform = global_step_transform
        self.layers = _layer_weights(self)

    def targets(self, engine: Engine) -> Dict[str, float]:
        """``{param name: p}`` of the layers measured on ``engine``."""
        bindings = getattr(engine, "bindings", None)
        if bindings is None:
            return {pname: 2.0 if self.p is None else self.p for pname in self.layers}
        by_layer = convergence_targets(bindings, self.p)
        return {pname: by_layer[layer] for pname, layer in self.layers.items() if layer in by_layer}

    def __call__(self, engine: Engine, logger: TensorboardLogger, event_name: Any) -> None:
        step = _global_step(self, engine, logger, event_name)
        if step is None:
            return
        params = dict(self.weights)
        for pname, p in self.targets(engine).items():
            norms = unit_norms(params[pname], p)
            layer = self.layers[pname]
            fraction = converged_fraction(norms, self.tol)
            logger.writer.add_scalar(_tag(self.tag, "unit_convergence", layer), fraction, step)
            if self.histogram:
                add_finite_histogram(logger.writer, _tag(self.tag, "unit_norm", layer), norms, step)


def add_finite_histogram(writer: Any, tag: str, values: Tensor, step: int) -> None:
    """A TensorBoard histogram of the finite elements of ``values`` (as float64, so that extreme finite values of a
    diverging rule are binned, not overflowed); nothing is logged when none is finite (TensorBoard refuses an empty
    histogram)."""
    flat = values.detach().reshape(-1).to(torch.float64)
    flat = flat[torch.isfinite(flat)]
    if flat.numel():
        writer.add_histogram(tag, flat.cpu().numpy(), step)


class _UpdatesHandler(BaseHandler):
    """Reads the last batch's updates ``engine.state.hebbian_updates = {layer: ΔW}`` (nothing before the first)."""

    def __init__(
        self, tag: Optional[str] = None, whitelist: Whitelist = None,
        global_step_transform: Optional[StepTransform] = None,
    ) -> None:
        self.tag, self.whitelist, self.global_step_transform = tag, whitelist, global_step_transform

    def updates(self, engine: Engine) -> Dict[str, Tensor]:
        updates = getattr(engine.state, "hebbian_updates", None) or {}
        return {n: d for n, d in updates.items() if _selected(n, d, self.whitelist)}


class UpdateNormHandler(_UpdatesHandler):
    """Logs :math:`\\|\\Delta W\\|_F` of every updated layer (``update_norm/<layer>``), one host sync per call.

    Args:
        tag: prefix of the tags.
        whitelist: layer names / prefixes, or a predicate ``(layer name, ΔW) -> bool``.
        global_step_transform: ``(engine, event_name) -> step``.
    """

    def __call__(self, engine: Engine, logger: TensorboardLogger, event_name: Any) -> None:
        step = _global_step(self, engine, logger, event_name)
        updates = self.updates(engine) if step is not None else {}
        if not updates:
            return
        norms = torch.stack([d.detach().float().norm() for d in updates.values()]).tolist()
        for name, norm in zip(updates, norms):
            logger.writer.add_scalar(_tag(self.tag, "update_norm", name), norm, step)


class UpdateHistHandler(_UpdatesHandler):
    """Logs a histogram of the elements of every updated layer's :math:`\\Delta W` (``updates/<layer>``).

    Args: as :class:`UpdateNormHandler`.
    """

    def __call__(self, engine: Engine, logger: TensorboardLogger, event_name: Any) -> None:
        step = _global_step(self, engine, logger, event_name)
        if step is None:
            return
        for name, delta in self.updates(engine).items():
            add_finite_histogram(logger.writer, _tag(self.tag, "updates", name), delta, step)


class ActivationStatsHandler(BaseHandler):
    """Logs mean activation, dead-unit fraction and winner usage of layers (:mod:`~hebbian.visualizers.activations`).

    The activations come from forward hooks on the layers that record only when armed, so the training step is not
    touched and not slowed:

    * with a ``probe`` batch, each call runs one no-grad, eval-mode forward pass on it (exact and reproducible);
    * without, each call logs the forward pass recorded since the previous call and re-arms the hooks; or arm them
      at ``ITERATION_STARTED`` with :meth:`arm` (as :func:`~hebbian.visualizers.attach_visualizers` does) to log the
      current iteration's batch (calls then stop re-arming).

    Winner usage is logged for layers bound to competitive rules (``winners=None`` and an engine with
    ``bindings``), for all layers (``winners=True``, or no ``bindings``) or none (``winners=False``).

    Args:
        model: the model.
        probe: a batch ``x`` or ``(x, y)`` to run the model on.
        whitelist: layer names / prefixes, or a predicate ``(layer name, module) -> bool``.
        threshold: a unit is active where its output exceeds this.
        winners: see above.
        tag, global_step_transform: as in :class:`FilterGridHandler`.
    """

    def __init__(
        self,
        model: nn.Module,
        probe: Optional[Union[Tensor, Sequence[Tensor]]] = None,
        whitelist: Whitelist = None,
        threshold: float = 0.0,
        winners: Optional[bool] = None,
        tag: Optional[str] = None,
        global_step_transform: Optional[StepTransform] = None,
    ) -> None:
        self.model = unwrap_model(model)
        layers = {n: m for n, m in candidate_layers(self.model) if _selected(n, m, whitelist)}
        if not layers:
            raise ValueError("ActivationStatsHandler: whitelist selects no Linear/Conv2d layer of the model")
        if probe is not None and not isinstance(probe, Tensor):
            probe = probe[0]
        if probe is not None and not isinstance(probe, Tensor):
            raise TypeError(f"probe must be a tensor or an (x, y) batch, got {type(probe).__name__}")
        self.probe = probe
        self.winners, self.tag, self.global_step_transform = winners, tag, global_step_transform
        self.recorder = ActivationRecorder(layers, threshold)
        self.rearm = True

    def arm(self, _: Optional[Engine] = None) -> None:
        """Record the next forward pass (rank 0 only; no-op with a probe). Once called, calls no longer re-arm."""
        self.rearm = False
        if idist.get_rank() == 0 and self.probe is None:
            self.recorder.arm()

    def winner_layers(self, engine: Engine) -> List[str]:
        bindings = getattr(engine, "bindings", None)
        if self.winners is False:
            return []
        if self.winners or bindings is None:
            return list(self.recorder.layers)
        return [b.name for b in bindings if b.rule.info.name in COMPETITIVE_RULES]

    def __call__(self, engine: Engine, logger: TensorboardLogger, event_name: Any) -> None:
        step = _global_step(self, engine, logger, event_name)
        if step is None:
            return
        if self.probe is not None:
            device = next(self.model.parameters()).device
            stats = self.recorder.probe(self.model, self.probe.to(device))
        else:
            stats = self.recorder.take()
            if self.rearm:
                self.recorder.arm()
        competitive = set(self.winner_layers(engine))
        for name, layer_stats in stats.items():
            values = summarize(layer_stats, winners=name in competitive)
            for key, value in values.items():
                logger.writer.add_scalar(_tag(self.tag, "activation", key, name), value, step)

    def remove(self) -> None:
        """Remove the forward hooks."""
        self.recorder.remove()
