"""pytorch-hebbian's TensorBoard handlers (for Ignite's ``TensorboardLogger``), selected by top-level layer names.

* ``WeightsScalarHandler`` / ``WeightsHistHandler``: Ignite's handlers with ``layer_names`` (tags unchanged:
  ``weights_<reduction>/<param>``, ``weights/<param>``).
* ``NumActivationsScalarHandler``, ``ActivationsScalarHandler``, ``ActivationsHistHandler``: a layer's outputs from
  forward hooks on top-level children (tags ``num_activations_mean/<layer>``, ``activations_<reduction>/<layer>``,
  ``activations/<layer>``).
* ``WeightsImageHandler``: the filters of the first layer (and of every conv layer) as one image per layer
  (tag ``<layer>/weight``), drawn by :func:`hebbian.visualizers.filter_grid`.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from ignite.engine import Engine
from ignite.handlers.tensorboard_logger import TensorboardLogger
from ignite.handlers.tensorboard_logger import WeightsHistHandler as IgniteWeightsHistHandler
from ignite.handlers.tensorboard_logger import WeightsScalarHandler as IgniteWeightsScalarHandler
from ignite.handlers.base_logger import BaseHandler
from torch import Tensor, nn

from hebbian.visualizers.grids import filter_grid

__all__ = [
    "WeightsScalarHandler",
    "WeightsHistHandler",
    "NumActivationsScalarHandler",
    "ActivationsScalarHandler",
    "ActivationsHistHandler",
    "WeightsImageHandler",
]


def _in_layers(layer_names: Optional[Sequence[str]]) -> Optional[Callable[[str, Any], bool]]:
    """Ignite whitelist: parameters of the named top-level children (``None``: all)."""
    if layer_names is None:
        return None
    names = set(layer_names)
    return lambda name, _: name.split(".")[0] in names


def _check_logger(handler: Any, logger: Any) -> None:
    if not isinstance(logger, TensorboardLogger):
        raise RuntimeError(f"Handler '{type(handler).__name__}' works only with TensorboardLogger")


def _prefix(tag: Optional[str]) -> str:
    return f"{tag}/" if tag else ""


class WeightsScalarHandler(IgniteWeightsScalarHandler):
    """Ignite's ``WeightsScalarHandler`` with pytorch-hebbian's ``layer_names`` (top-level children to log)."""

    def __init__(self, model: nn.Module, reduction: Callable = torch.norm, layer_names: Optional[List[str]] = None,
                 tag: Optional[str] = None) -> None:
        super().__init__(model, reduction, tag=tag, whitelist=_in_layers(layer_names))
        self.layer_names = layer_names


class WeightsHistHandler(IgniteWeightsHistHandler):
    """Ignite's ``WeightsHistHandler`` with pytorch-hebbian's ``layer_names`` (top-level children to log)."""

    def __init__(self, model: nn.Module, layer_names: Optional[List[str]] = None, tag: Optional[str] = None) -> None:
        super().__init__(model, tag=tag, whitelist=_in_layers(layer_names))
        self.layer_names = layer_names


class _OutputHooks(BaseHandler):
    """Forward hooks on the named top-level children (all when ``layer_names`` is None) calling ``self._record``."""

    def __init__(self, model: nn.Module, layer_names: Optional[List[str]], tag: Optional[str]) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        children = dict(model.named_children())
        unknown = [n for n in (layer_names or []) if n not in children]
        if unknown:
            raise ValueError(f"layer_names {unknown} are not top-level children of the model {list(children)}")
        self.model, self.tag, self.layer_names = model, tag, layer_names
        names = list(children) if layer_names is None else list(layer_names)
        self.hooks = {n: children[n].register_forward_hook(partial(self._hook, layer_name=n)) for n in names}

    def _hook(self, _: nn.Module, __: Any, output: Any, layer_name: str) -> None:
        if isinstance(output, Tensor):
            self._record(layer_name, output.detach())

    def _record(self, layer_name: str, output: Tensor) -> None:
        raise NotImplementedError

    def remove(self) -> None:
        """Remove the forward hooks."""
        for handle in self.hooks.values():
            handle.remove()
        self.hooks = {}


class NumActivationsScalarHandler(_OutputHooks):
    """Logs the mean number of active units (output > 0, counted over dim 1) per sample, averaged over the forward
    passes since the last log, for each named layer (tag ``num_activations_mean/<layer>``)."""

    def __init__(self, model: nn.Module, layer_names: Optional[List[str]] = None, tag: Optional[str] = None) -> None:
        self._sums: Dict[str, Tensor] = {}
        self._counts: Dict[str, int] = {}
        super().__init__(model, layer_names, tag)

    def _record(self, layer_name: str, output: Tensor) -> None:
        active = (output > 0).sum(1).float().mean()
        self._sums[layer_name] = self._sums[layer_name] + active if layer_name in self._sums else active
        self._counts[layer_name] = self._counts.get(layer_name, 0) + 1

    def reset(self, layer_name: str) -> None:
        self._sums.pop(layer_name, None)
        self._counts.pop(layer_name, None)

    def __call__(self, engine: Engine, logger: TensorboardLogger, event_name: Any) -> None:
        _check_logger(self, logger)
        step = engine.state.get_event_attrib_value(event_name)
        for name in list(self._sums):
            value = float(self._sums[name]) / self._counts[name]
            self.reset(name)
            logger.writer.add_scalar(f"{_prefix(self.tag)}num_activations_mean/{name}", value, step)


class _LastOutputs(_OutputHooks):
    """Keeps each named layer's last output in ``activations``."""

    def __init__(self, model: nn.Module, layer_names: Optional[List[str]], tag: Optional[str]) -> None:
        self.activations: Dict[str, Tensor] = {}
        super().__init__(model, layer_names, tag)

    def _record(self, layer_name: str, output: Tensor) -> None:
        self.activations[layer_name] = output


class ActivationsScalarHandler(_LastOutputs):
    """Logs ``reduction(output)`` of each named layer's last output (tag ``activations_<reduction>/<layer>``)."""

    def __init__(self, model: nn.Module, reduction: Callable = torch.mean, layer_names: Optional[List[str]] = None,
                 tag: Optional[str] = None) -> None:
        if not callable(reduction):
            raise TypeError(f"reduction must be callable, got {type(reduction).__name__}")
        self.reduction = reduction
        super().__init__(model, layer_names, tag)

    def __call__(self, engine: Engine, logger: TensorboardLogger, event_name: Any) -> None:
        _check_logger(self, logger)
        step = engine.state.get_event_attrib_value(event_name)
        name = getattr(self.reduction, "__name__", "reduction")
        for layer_name, output in self.activations.items():
            logger.writer.add_scalar(f"{_prefix(self.tag)}activations_{name}/{layer_name}",
                                     self.reduction(output.float()), step)


class ActivationsHistHandler(_LastOutputs):
    """Logs a histogram of each named layer's last output (tag ``activations/<layer>``)."""

    def __init__(self, model: nn.Module, layer_names: Optional[List[str]] = None, tag: Optional[str] = None) -> None:
        super().__init__(model, layer_names, tag)

    def __call__(self, engine: Engine, logger: TensorboardLogger, event_name: Any) -> None:
        _check_logger(self, logger)
        step = engine.state.get_event_attrib_value(event_name)
        for layer_name, output in self.activations.items():
            logger.writer.add_histogram(tag=f"{_prefix(self.tag)}activations/{layer_name}",
                                        values=output.float().cpu().numpy(), global_step=step)


class WeightsImageHandler(BaseHandler):
    """Logs filters as images: a first ``Linear`` layer's units in ``input_shape``, and every ``Conv2d`` layer.

    One image per layer, tag ``<layer>/weight``, every unit drawn (:func:`hebbian.visualizers.filter_grid`, each tile
    scaled to [0, 1] on its own). pytorch-hebbian drew a matplotlib figure with a blue-white-red colour map instead.

    Args:
        model: the model; its top-level children are looked at in order.
        input_shape: ``(C, H, W)`` of the model's input.
    """

    def __init__(self, model: nn.Module, input_shape: Sequence[int]) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.model, self.input_shape = model, tuple(int(s) for s in input_shape)

    def layers(self) -> List[Any]:
        """``(name, module)`` of the layers drawn: a ``Linear`` only if no weight layer comes before it."""
        drawn, first = [], True
        for name, layer in self.model.named_children():
            if isinstance(layer, nn.Conv2d) or (isinstance(layer, nn.Linear) and first):
                drawn.append((name, layer))
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                first = False
        return drawn

    def __call__(self, engine: Engine, logger: TensorboardLogger, event_name: Any) -> None:
        _check_logger(self, logger)
        step = engine.state.get_event_attrib_value(event_name)
        for name, layer in self.layers():
            weight = layer.weight.detach()
            shape = self.input_shape if weight.dim() == 2 else None
            image = filter_grid(weight, shape, max_filters=weight.shape[0], max_channels=weight.shape[1])
            logger.writer.add_image(f"{name}/weight", image, step)
