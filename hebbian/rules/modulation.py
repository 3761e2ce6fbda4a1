"""The third factor of three-factor learning: modulators, their registry and what they hear about the network.

A three-factor rule changes a weight by a local Hebbian term gated by a third, global factor (Frémaux & Gerstner
2016, "Neuromodulated spike-timing-dependent plasticity, and theory of three-factor learning rules", Front. Neural
Circuits 9:85):

.. math:: \\Delta W = \\eta \\; M \\odot H(\\mathrm{pre}, \\mathrm{post})

A :class:`Modulator` computes :math:`M`. Its ``info.scope`` says where :math:`M` acts:

* ``"synapse"``: one value per weight element, applied to the batch's aggregated Hebbian step (GHL's
  :math:`M = -\\mathrm{sign}(\\partial L/\\partial W)`, :class:`hebbian.rules.ghl.GradientSign`);
* ``"sample"``: one value per sample, broadcast to every unit (a reward-prediction error,
  :class:`hebbian.rules.reward_modulated.RewardPredictionError`);
* ``"unit"``: one value per sample and unit (an output error sent through fixed random feedback weights,
  :class:`hebbian.rules.random_feedback.RandomFeedback`).

Per-sample and per-unit factors multiply the post-synaptic term *before* the batch sum,
:math:`\\Delta W_k = \\frac1S \\sum_{n,p} M_{n,k}\\, \\mathrm{post}_{n,k,p}\\, P_{n,p}`, so they are computed from a
:class:`Broadcast`: what the network as a whole did on the batch (its output, the labels), sent to every layer.

Modulators are registered like rules (:func:`register_modulator`, :func:`create_modulator`, :func:`list_modulators`,
:func:`get_modulator_info`); like rules they declare their hyperparameters as keyword arguments of ``__init__``, keep
state tensors listed in ``state_tensors`` and round-trip through ``state_dict``.
"""

from __future__ import annotations

import copy
import fnmatch
import inspect
from abc import ABC
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Dict, List, Mapping, Optional, TypeVar

from torch import Tensor

from hebbian.rules.registry import _normalise

SCOPES = ("synapse", "sample", "unit")
M_ = TypeVar("M_", bound=type)


@dataclass(frozen=True)
class ModulatorInfo:
    """Metadata of a registered modulator.

    Attributes:
        name: registry name, e.g. ``"reward_prediction_error"``.
        cls: the modulator class.
        description: one line.
        scope: ``"synapse"``, ``"sample"`` or ``"unit"`` (see the module docstring).
        needs_global_grad: computed from the layer's backprop gradient ``dL/dW``.
        needs_output: computed from the network's output and the labels (a :class:`Broadcast`).
        stateful: keeps state tensors across batches (saved by ``state_dict``).
        source: the publication it follows.
    """

    name: str
    cls: type
    description: str
    scope: str
    needs_global_grad: bool = False
    needs_output: bool = False
    stateful: bool = False
    source: str = ""

    def defaults(self) -> Dict[str, Any]:
        """The constructor's default hyperparameters."""
        sig = inspect.signature(self.cls.__init__)
        return {k: v.default for k, v in sig.parameters.items() if v.default is not inspect.Parameter.empty}


_MODULATORS: Dict[str, ModulatorInfo] = {}


def register_modulator(
    name: str,
    *,
    description: str,
    scope: str,
    needs_global_grad: bool = False,
    needs_output: bool = False,
    stateful: bool = False,
    source: str = "",
) -> Callable[[M_], M_]:
    """Class decorator that registers a :class:`Modulator` subclass under ``name``."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(map(repr, SCOPES))}, got {scope!r}")

    def decorator(cls: M_) -> M_:
        key = _normalise(name)
        if key in _MODULATORS:
            raise ValueError(f"a modulator named {name!r} is already registered")
        info = ModulatorInfo(name, cls, description, scope, needs_global_grad, needs_output, stateful, source)
        _MODULATORS[key] = info
        cls.info = info  # type: ignore[attr-defined]
        return cls

    return decorator


def get_modulator_info(name: str) -> ModulatorInfo:
    """The :class:`ModulatorInfo` of a registered modulator (case-insensitive, ``-`` and ``_`` alike)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    key = _normalise(name)
    if key not in _MODULATORS:
        raise KeyError(f"unknown modulator {name!r}; registered modulators: {', '.join(list_modulators())}")
    return _MODULATORS[key]


def create_modulator(name: str, **hyperparameters: Any) -> "Modulator":
    """Create a registered modulator by name, e.g. ``create_modulator("random_feedback", seed=3)``."""
    return get_modulator_info(name).cls(**hyperparameters)


def list_modulators(pattern: str = "*", *, scope: Optional[str] = None) -> List[str]:
    """Sorted names of the registered modulators matching a wildcard ``pattern`` (and ``scope``, when given)."""
    return sorted(info.name for key, info in _MODULATORS.items()
                  if fnmatch.fnmatch(key, _normalise(pattern)) and (scope is None or info.scope == scope))


def modulator_infos() -> List[ModulatorInfo]:
    """Every registered :class:`ModulatorInfo`, sorted by name."""
    return [get_modulator_info(n) for n in list_modulators()]


@dataclass(frozen=True)
class Broadcast:
    """What the network did on one batch, sent to a layer's modulator.

    Attributes:
        output: the network's output (logits), ``(N, C)``, detached.
        labels: the class indices ``(N,)``.
        layer: the receiving layer's name (per-layer random draws are seeded with it).
        at_output: the receiving layer computes ``output`` itself (its error is not sent through feedback weights).
    """

    output: Tensor
    labels: Tensor
    layer: str = ""
    at_output: bool = False

    def to(self, layer: str, at_output: bool) -> "Broadcast":
        """The same broadcast addressed to another layer."""
        return Broadcast(self.output, self.labels, layer, at_output)


class Modulator(ABC):
    """Base class of the third factors. Subclasses compute :math:`M` (see :data:`SCOPES`) and declare their
    hyperparameters as keyword arguments of ``__init__``, stored as attributes of the same name."""

    info: ClassVar[ModulatorInfo]
    #: Names of tensors kept across batches (saved by :meth:`state_dict`).
    state_tensors: ClassVar[tuple] = ()

    def hyperparameters(self) -> Dict[str, Any]:
        """Constructor keyword -> current value."""
        return {name: getattr(self, name) for name in self.info.defaults()}

    def state_dict(self) -> Dict[str, Any]:
        """Hyperparameters and state tensors (copies)."""
        state: Dict[str, Any] = {"hyperparameters": self.hyperparameters()}
        for name in self.state_tensors:
            value = getattr(self, name)
            state[name] = None if value is None else value.detach().clone()
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (hyperparameters are re-validated)."""
        restored = type(self)(**state_dict.get("hyperparameters", {}))
        for name in self.info.defaults():
            setattr(self, name, getattr(restored, name))
        for name in self.state_tensors:
            value = state_dict.get(name)
            setattr(self, name, None if value is None else value.clone())

    def clone(self) -> "Modulator":
        return copy.deepcopy(self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"
