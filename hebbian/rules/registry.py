"""The rule registry: ``register_rule``, ``create``, ``list_rules`` and per-rule metadata (:class:`RuleInfo`)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Type, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from hebbian.rules.base import LearningRule

R = TypeVar("R", bound=type)


@dataclass(frozen=True)
class RuleInfo:
    """Metadata of a registered rule.

    Attributes:
        name: registry name, e.g. ``"krotov"``.
        cls: the rule class.
        description: one line.
        supports_conv: the rule can train ``nn.Conv2d`` layers (all built-in rules can).
        needs_labels: the update depends on the batch's labels.
        needs_global_grad: the update needs the layer's backprop gradient ``dL/dW`` (GHL).
        needs_output: the update needs the network's output on the batch, from which a third factor is broadcast to
            every layer (three-factor rules, :mod:`hebbian.rules.three_factor`).
        stateful: the rule keeps state beyond its hyperparameters (saved by ``state_dict``).
        aliases: other names that resolve to this entry.
    """

    name: str
    cls: type
    description: str
    supports_conv: bool = True
    needs_labels: bool = False
    needs_global_grad: bool = False
    stateful: bool = False
    aliases: tuple = field(default=())
    needs_output: bool = False

    def defaults(self) -> Dict[str, Any]:
        """The constructor's default hyperparameters."""
        import inspect

        sig = inspect.signature(self.cls.__init__)
        return {k: v.default for k, v in sig.parameters.items() if v.default is not inspect.Parameter.empty}


_REGISTRY: Dict[str, RuleInfo] = {}
_ALIASES: Dict[str, str] = {}


def register_rule(
    name: str,
    *,
    description: str,
    supports_conv: bool = True,
    needs_labels: bool = False,
    needs_global_grad: bool = False,
    stateful: bool = False,
    aliases: tuple = (),
    needs_output: bool = False,
) -> Callable[[R], R]:
    """Class decorator that registers a :class:`~hebbian.rules.base.LearningRule` subclass under ``name``."""

    def decorator(cls: R) -> R:
        key = _normalise(name)
        # Check every name before registering any: an alias must not shadow (or be shadowed by) another rule.
        keys = [key] + [_normalise(alias) for alias in aliases]
        for given, k in zip((name,) + tuple(aliases), keys):
            if k in _REGISTRY or k in _ALIASES or keys.count(k) > 1:
                raise ValueError(f"a rule named {given!r} is already registered")
        info = RuleInfo(name, cls, description, supports_conv, needs_labels, needs_global_grad, stateful, aliases,
                        needs_output)
        _REGISTRY[key] = info
        for alias in aliases:
            _ALIASES[_normalise(alias)] = key
        cls.info = info  # type: ignore[attr-defined]
        return cls

    return decorator


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def get_rule_info(name: str) -> RuleInfo:
    """The :class:`RuleInfo` of a registered rule (name or alias, case-insensitive, ``-`` and ``_`` alike)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    key = _normalise(name)
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise KeyError(f"unknown rule {name!r}; registered rules: {', '.join(list_rules())}")
    return _REGISTRY[key]


def create(name: str, **hyperparameters: Any) -> "LearningRule":
    """Create a registered rule by name, e.g. ``create("krotov", p=3.0, k=7, delta=0.4)``."""
    return get_rule_info(name).cls(**hyperparameters)


def list_rules(
    pattern: str = "*",
    *,
    supports_conv: Optional[bool] = None,
    needs_labels: Optional[bool] = None,
    needs_global_grad: Optional[bool] = None,
    stateful: Optional[bool] = None,
    needs_output: Optional[bool] = None,
) -> List[str]:
    """Sorted names of the registered rules matching a wildcard ``pattern`` and the given metadata filters."""
    filters = {
        "supports_conv": supports_conv,
        "needs_labels": needs_labels,
        "needs_global_grad": needs_global_grad,
        "stateful": stateful,
        "needs_output": needs_output,
    }
    names = []
    for key, info in _REGISTRY.items():
        if not fnmatch.fnmatch(key, _normalise(pattern)):
            continue
        if any(v is not None and getattr(info, k) != v for k, v in filters.items()):
            continue
        names.append(info.name)
    return sorted(names)


def rule_infos() -> List[RuleInfo]:
    """Every registered :class:`RuleInfo`, sorted by name."""
    return [get_rule_info(n) for n in list_rules()]
