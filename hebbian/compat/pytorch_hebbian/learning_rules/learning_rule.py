"""pytorch-hebbian's rule interface, ``update(inputs, weights) -> dW``, adapted to :class:`hebbian.rules.LearningRule`.

An old-style rule sees two matrices per layer and batch and returns the finished update:

* ``nn.Linear``: ``inputs (S, D)`` (the layer's input, leading dimensions flattened), ``weights (M, D)``;
* ``nn.Conv2d``: ``inputs (N*OH*OW, C*kh*kw)``, one row per image patch (correct for any ``C``, stride, padding and
  dilation; pytorch-hebbian's rows were not image patches), ``weights (M, C*kh*kw)``.

:class:`OldStyleRule` wraps such a rule as a :class:`hebbian.rules.LearningRule` so that this package's trainers run
it: ``statistics`` calls ``update`` and ``finalize`` returns its result. The built-in rules of this module
(``KrotovsRule``, ``HebbsRule``, ``OjasRule``) run as native rules instead (:meth:`LearningRule.to_rule`), with no
patches materialised; a subclass that overrides ``update`` runs through :class:`OldStyleRule`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any, Iterable, Optional

import ignite.distributed as idist
import torch
from torch import Tensor, nn

from hebbian.compat.pytorch_hebbian.compat_warnings import logger_name
from hebbian.rules import LayerView, RuleInfo
from hebbian.rules import LearningRule as NativeRule
from hebbian.rules.base import Statistics

__all__ = ["LearningRule", "OldStyleRule"]


class LearningRule(ABC):
    """Base class of pytorch-hebbian rules: implement ``update(inputs, weights)`` returning ``dW`` (``weights``' shape).

    ``init_layers(layers)`` is called once by :class:`~hebbian.compat.pytorch_hebbian.trainers.HebbianTrainer` with the
    layers the rule trains (items with ``.idx``, ``.name``, ``.layer``); the default does nothing.
    """

    def __init__(self) -> None:
        self.logger = logging.getLogger(logger_name(__name__, type(self).__name__))

    def init_layers(self, layers: Iterable[Any]) -> None:
        """Initialise the weights of the layers this rule will train (default: leave them)."""

    @abstractmethod
    def update(self, inputs: Tensor, weights: Tensor) -> Tensor:
        """The weight update for one batch: ``inputs (S, D)``, ``weights (M, D)`` -> ``dW (M, D)``."""

    def to_rule(self) -> NativeRule:
        """This rule as a :class:`hebbian.rules.LearningRule` (what the trainers of :mod:`hebbian` run)."""
        return OldStyleRule(self)


class OldStyleRule(NativeRule):
    """Runs an old-style rule (``update(inputs, weights)``) as a :class:`hebbian.rules.LearningRule`.

    ``statistics`` builds the old inputs (for ``nn.Conv2d`` the patches, ``(N*OH*OW, C*kh*kw)``, by a convolution with
    one-hot kernels, so stride, padding and dilation are the layer's) and returns ``{"delta": rule.update(...)}``;
    ``finalize`` returns it, averaged over the workers in data-parallel training (an old-style update is finished
    per batch, not a batch sum).

    Args:
        rule: an object with ``update(inputs, weights) -> dW``.
    """


    def __init__(self, rule: LearningRule) -> None:
        if not callable(getattr(rule, "update", None)):
            raise TypeError(f"rule must have an update(inputs, weights) method, got {type(rule).__name__}")
        self.rule = rule

    def statistics(self, view: LayerView, x: Tensor, u: Tensor, labels: Optional[Tensor] = None) -> Statistics:
        weight = view.weight
        weights = weight.detach().reshape(weight.shape[0], -1)
        inputs = image_patches(view, x) if view.is_conv else x
        delta = self.rule.update(inputs, weights)
        if not isinstance(delta, Tensor) or delta.numel() != weight.numel():
            raise ValueError(
                f"{type(self.rule).__name__}.update must return a tensor with the weights' {weights.numel()} elements "
                f"(shape {tuple(weights.shape)}), got "
                f"{tuple(delta.shape) if isinstance(delta, Tensor) else type(delta).__name__}"
            )
        return {"delta": delta.reshape(weight.shape).to(weight.dtype)}

    def finalize(self, view: LayerView, stats: Statistics, grad: Optional[Tensor] = None) -> Tensor:
        world = idist.get_world_size()
        return stats["delta"] / world if world > 1 else stats["delta"]

    def hyperparameters(self) -> dict:
        return {}

    def load_state_dict(self, state_dict: Any) -> None:
        if "hyperparameters" not in state_dict:
            raise KeyError("state_dict has no 'hyperparameters' entry; was it saved by LearningRule.state_dict()?")

    def __repr__(self) -> str:
        return f"OldStyleRule({type(self.rule).__name__})"


OldStyleRule.info = RuleInfo(  # type: ignore[misc]
    "pytorch_hebbian_rule", OldStyleRule, "a pytorch-hebbian rule: update(inputs, weights) -> dW"
)


def image_patches(view: LayerView, x: Tensor) -> Tensor:
    """The conv layer's input patches of a prepared ``x``: ``(N*OH*OW, C*kh*kw)``, rows in (sample, position) order."""
    weight = view.weight
    fan_in = weight[0].numel()
    one_hot = torch.eye(fan_in, dtype=x.dtype, device=x.device).reshape(fan_in, *weight.shape[1:])
    return view.respond(x, one_hot).permute(0, 2, 3, 1).reshape(-1, fan_in)


def matrix_layer(weights: Tensor) -> nn.Linear:
    """An ``nn.Linear`` (no bias) whose weight is ``weights (M, D)`` itself (shared storage, no copy)."""
    if not isinstance(weights, Tensor) or weights.dim() != 2:
        raise ValueError(f"weights must be a matrix (M, D), got "
                         f"{tuple(weights.shape) if isinstance(weights, Tensor) else type(weights).__name__}")
    layer = nn.utils.skip_init(nn.Linear, weights.shape[1], weights.shape[0], bias=False,
                               device=weights.device, dtype=weights.dtype)
    layer.weight = nn.Parameter(weights.detach(), requires_grad=False)
    return layer


class NativeBackedRule(LearningRule):
    """An old-style rule computed by a rule of :mod:`hebbian.rules` (:meth:`native`).

    ``update(inputs, weights)`` runs the native rule on the matrices; the trainer runs the native rule directly,
    unless a subclass overrides ``update`` (then its ``update`` is what trains, through :class:`OldStyleRule`).
    """

    def native(self) -> NativeRule:
        raise NotImplementedError

    def update(self, inputs: Tensor, weights: Tensor) -> Tensor:
        """``dW (M, D)`` for ``inputs (S, D)`` and ``weights (M, D)``."""
        layer = matrix_layer(weights)
        if not isinstance(inputs, Tensor) or inputs.dim() != 2 or inputs.shape[1] != weights.shape[1]:
            raise ValueError(f"inputs must be a matrix (S, {weights.shape[1]}) matching weights "
                             f"{tuple(weights.shape)}, got "
                             f"{tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__}")
        with torch.no_grad():
            u = inputs.to(weights.dtype) @ weights.t()
        return self.native().update(layer, inputs.to(weights.dtype), u)

    def to_rule(self) -> NativeRule:
        if type(self).update is not NativeBackedRule.update:
            return OldStyleRule(self)
        return self.native()
