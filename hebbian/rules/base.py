"""The learning-rule interface.

A rule turns what a layer saw and did on one batch into a weight update :math:`\\Delta W` with the weight's shape.
It is computed in two stages, so that data-parallel training can reduce between them:

1. :meth:`LearningRule.statistics` returns a dict of tensors, each a *sum over the batch* (and over conv positions).
   Summing these dicts over workers gives exactly the statistics of the global batch.
2. :meth:`LearningRule.finalize` turns (globally reduced) statistics into :math:`\\Delta W`: division by the sample
   count, max-abs normalisation, adaptive per-neuron rates, the sign of a global gradient, etc.

``update`` chains both for one process and validates its inputs. Rules know nothing of engines or optimizers: the
trainer writes :math:`-\\Delta W` into ``weight.grad`` so that any ``torch.optim`` optimizer applies
``W <- W + lr * dW`` (see :func:`hebbian.optim.write_update`).
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Dict, Mapping, Optional, Union

import torch
from torch import Tensor, nn

from hebbian.rules.layers import LayerView
from hebbian.rules.registry import RuleInfo

Statistics = Dict[str, Tensor]

NORMALIZATIONS = ("mean", "max_abs", "sum")
_TINY = 1e-30


class LearningRule(ABC):
    """Base class of every Hebbian learning rule.

    Subclasses implement :meth:`statistics` (batch sums) and usually :meth:`finalize` (post-processing). They
    declare their hyperparameters as keyword arguments of ``__init__`` and store them as attributes of the same
    name; :meth:`hyperparameters`, :meth:`state_dict` and ``repr`` are derived from that.
    """

    info: ClassVar[RuleInfo]
    #: Names of per-layer tensors kept across batches (saved by :meth:`state_dict`).
    state_tensors: ClassVar[tuple] = ()

    # ------------------------------------------------------------------ the rule
    def check_layer(self, layer: Union[nn.Module, LayerView]) -> LayerView:
        """Return the rule's view of ``layer`` (a module or a ready :class:`LayerView` of a weight); raise
        ``TypeError``/``ValueError`` if the rule cannot train it."""
        view = layer if isinstance(layer, LayerView) else LayerView(layer)
        if view.is_conv and not self.info.supports_conv:
            raise TypeError(f"rule {self.info.name!r} cannot train convolution layers")
        return view

    @abstractmethod
    def statistics(self, view: LayerView, x: Tensor, u: Tensor, labels: Optional[Tensor] = None) -> Statistics:
        """Batch sums from the prepared input ``x`` and bare drive ``u`` (see :meth:`LayerView.prepare`)."""

    def finalize(self, view: LayerView, stats: Statistics, grad: Optional[Tensor] = None) -> Tensor:
        """Turn reduced statistics into :math:`\\Delta W`. Default: ``stats["delta"]`` normalised by ``self.normalize``.

        The statistics are consumed: implementations may overwrite their tensors in place (so call
        :meth:`statistics` again rather than finalizing the same dict twice).
        """
        return normalize_delta(stats["delta"], stats.get("count"), getattr(self, "normalize", "mean"))

    def support(self, delta: Tensor) -> Optional[Tensor]:
        """The rows (first dimension, unique indices) outside of which the update ``delta`` that :meth:`finalize` just
        returned is exactly zero, or ``None`` (default: not known, any element may be non-zero).

        A trainer may then restrict its passes over the update (finiteness check, optimizer step) to these rows."""
        return None

    def update(
        self,
        layer: nn.Module,
        x: Tensor,
        u: Tensor,
        labels: Optional[Tensor] = None,
        grad: Optional[Tensor] = None,
        *,
        check_finite: bool = True,
    ) -> Tensor:
        """Compute :math:`\\Delta W` for one batch in one process.

        Args:
            layer: the ``nn.Linear`` or ``nn.Conv2d`` being trained.
            x: the layer's input, ``(N, *, D)`` or ``(N, C, H, W)``.
            u: the layer's output (pre-activation), ``(N, *, M)`` or ``(N, M, OH, OW)``.
            labels: class indices ``(N,)``, for rules with ``info.needs_labels``.
            grad: ``dL/dW`` with the weight's shape, for rules with ``info.needs_global_grad``.
            check_finite: raise on NaN/Inf in ``x``, ``u``, the weight or ``grad`` (one host sync each; trainers
                check the result instead).

        Returns:
            :math:`\\Delta W`, same shape, dtype and device as ``layer.weight``.
        """
        view = self.check_layer(layer)
        view.check_shapes(x, u)
        self.check_extras(view, x, labels, grad)
        if check_finite:
            checked = [("x", x), ("u", u), ("layer.weight", view.weight)]
            if grad is not None:
                checked.append(("grad", grad))
            for name, t in checked:
                if not bool(torch.isfinite(t).all()):
                    raise ValueError(f"{name} contains NaN or Inf; rule {self.info.name!r} refuses to update")
        with torch.no_grad():
            xp, up = view.prepare(x.to(view.weight.dtype), u.to(view.weight.dtype))
            return self.finalize(view, self.statistics(view, xp, up, labels), grad)

    def check_extras(
        self, view: LayerView, x: Tensor, labels: Optional[Tensor], grad: Optional[Tensor]
    ) -> None:
        """Check labels and global gradient against the rule's needs (shape checks only, no host sync)."""
        if self.info.needs_labels:
            check_labels(self.info.name, labels, x.shape[0])
        if self.info.needs_global_grad:
            if grad is None:
                raise ValueError(f"rule {self.info.name!r} needs the layer's gradient dL/dW, got grad=None")
            if grad.shape != view.weight.shape:
                raise ValueError(
                    f"grad must have the weight's shape {tuple(view.weight.shape)}, got {tuple(grad.shape)}"
                )

    # ------------------------------------------------------------------ hyperparameters and state
    def hyperparameters(self) -> Dict[str, Any]:
        """The rule's hyperparameters as a dict (constructor keyword -> current value)."""
        return {name: getattr(self, name) for name in self.info.defaults()}

    def state_dict(self) -> Dict[str, Any]:
        """Hyperparameters and state tensors; what :meth:`load_state_dict` restores."""
        state: Dict[str, Any] = {"hyperparameters": _plain(self.hyperparameters())}
        for name in self.state_tensors:
            value = getattr(self, name)
            state[name] = None if value is None else value.detach().clone()
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (hyperparameters are re-validated)."""
        if "hyperparameters" not in state_dict:
            raise KeyError("state_dict has no 'hyperparameters' entry; was it saved by LearningRule.state_dict()?")
        restored = type(self)(**_unplain(self, state_dict["hyperparameters"]))
        for name in self.info.defaults():
            setattr(self, name, getattr(restored, name))
        for name in self.state_tensors:
            value = state_dict.get(name)
            setattr(self, name, None if value is None else value.clone())

    def clone(self) -> "LearningRule":
        """An independent copy (same hyperparameters, separate state): one per layer when a rule is shared."""
        return copy.deepcopy(self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"


def _plain(hp: Dict[str, Any]) -> Dict[str, Any]:
    """Hyperparameters in a form ``torch.load(weights_only=True)`` accepts: nested rules become dicts."""
    out: Dict[str, Any] = {}
    for k, v in hp.items():
        out[k] = {"rule": v.info.name, **v.state_dict()} if isinstance(v, LearningRule) else v
    return out


def _unplain(rule: LearningRule, hp: Mapping[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in hp.items():
        if isinstance(v, Mapping) and "rule" in v:
            from hebbian.rules.registry import create

            nested = create(v["rule"])
            nested.load_state_dict(v)
            v = nested
        out[k] = v
    return out


# ---------------------------------------------------------------------- shared validation and post-processing
def check_labels(rule: str, labels: Optional[Tensor], batch: int) -> None:
    """Labels of a rule with ``needs_labels``: integer class indices of shape ``(batch,)`` (no host sync)."""
    if labels is None:
        raise ValueError(f"rule {rule!r} needs labels, got labels=None")
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
        raise TypeError(f"labels must hold integer class indices, got dtype {labels.dtype}")
    if labels.dim() != 1 or labels.shape[0] != batch:
        raise ValueError(f"labels must have shape ({batch},), got {tuple(labels.shape)}")


def check_positive(name: str, value: float, *, strict: bool = True) -> float:
    """Validate a (strictly) positive finite number and return it as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (strict and value == 0):
        raise ValueError(f"{name} must be {'> 0' if strict else '>= 0'}, got {value!r}")
    return float(value)


def check_choice(name: str, value: str, choices: tuple) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def normalize_delta(delta: Tensor, count: Optional[Tensor], mode: str) -> Tensor:
    """Post-process a summed update.

    * ``"mean"``: divide by the number of (sample, position) pairs, so the step is batch-size independent;
    * ``"max_abs"``: divide by the layer's largest absolute element, :math:`\\hat\\Delta = \\Delta/(\\max|\\Delta| + 10^{-30})`,
      so the largest element step equals the learning rate (Krotov, SoftHebb, GHL);
    * ``"sum"``: leave the batch sum as it is.

    ``delta`` is divided in place (it is a batch sum that :meth:`LearningRule.finalize` consumes): no weight-sized
    allocation on the hot path.
    """
    if mode == "mean":
        return delta.div_(count.clamp_min(1))
    if mode == "max_abs":
        return delta.div_(max_abs(delta) + _TINY)
    return delta


def max_abs(t: Tensor) -> Tensor:
    """:math:`\\max_i |t_i|` as a 0-d tensor, in one pass without an ``abs`` temporary (NaN propagates)."""
    low, high = torch.aminmax(t)
    return torch.maximum(high, -low)
