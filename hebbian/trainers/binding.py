"""Which rule trains which layer: resolving a rule specification against any ``nn.Module``."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from torch import nn

from hebbian.rules.base import LearningRule
from hebbian.models.discovery import candidate_weights, supervised_layer_names, unsupported_layers
from hebbian.rules.layers import LayerView
from hebbian.rules.registry import create

LayerKey = Union[str, type, Callable[[str, nn.Module], bool]]
RuleLike = Union[LearningRule, str]
RuleSpec = Union[RuleLike, Mapping[LayerKey, Optional[RuleLike]]]


@dataclass
class RuleBinding:
    """One layer bound to its own rule instance.

    Attributes:
        name: the weight's name (:class:`~hebbian.models.discovery.WeightSite`): the layer's qualified name in the
            model (``model.named_modules()``), or ``"<attention>.in_proj"`` for an attention input projection.
        layer: the module that owns the weight (the ``nn.Linear`` / ``nn.Conv{1,2,3}d``, or the attention module).
        rule: the rule (a private instance: shared rules are cloned per layer).
        view: the rule's :class:`~hebbian.rules.layers.LayerView` of the layer.
        enabled: whether the layer learns; switch at run time with the trainer's ``enable_learning`` / ``disable_learning``.
    """

    name: str
    layer: nn.Module
    rule: LearningRule
    view: LayerView = field(repr=False)
    enabled: bool = True

    @property
    def weight(self) -> nn.Parameter:
        return self.view.weight  # type: ignore[return-value]


def _matches(key: LayerKey, name: str, module: nn.Module) -> bool:
    if isinstance(key, str):
        return name == key or fnmatch.fnmatchcase(name, key)
    if isinstance(key, type):
        return isinstance(module, key)
    if callable(key):
        return bool(key(name, module))
    raise TypeError(f"rule mapping keys must be layer names/patterns, module types or predicates, got {key!r}")


def _as_rule(rule: RuleLike) -> LearningRule:
    if isinstance(rule, str):
        return create(rule)
    if not isinstance(rule, LearningRule):
        raise TypeError(f"rules must be LearningRule objects or registry names, got {type(rule).__name__}")
    return rule.clone()


def bind_rules(
    model: nn.Module,
    rules: RuleSpec,
    *,
    supervised_from: Optional[Union[int, str]] = None,
    freeze: Iterable[str] = (),
) -> List[RuleBinding]:
    """Bind rules to the layers of ``model``.

    Args:
        model: any module (DDP/DataParallel wrappers are looked through).
        rules: one rule (object or registry name) for every ``Linear``/``Conv`` weight and attention projection
            (:func:`~hebbian.models.discovery.candidate_weights`) outside the supervised part, or a
            mapping from layer name (or ``fnmatch`` pattern), module type, or predicate ``(name, module) -> bool`` to a
            rule; the first matching key wins and a ``None`` value excludes the layer.
        supervised_from: see :func:`supervised_layer_names`.
        freeze: names (or patterns) of layers that must not learn.

    Returns:
        The bindings in the model's registration order (each with its own rule instance), one per weight: a
        Parameter shared by several modules is bound once, under the first name the specification selects, and
        every use of it (through any of the modules) is captured and summed (:mod:`hebbian.trainers.capture`).

    Raises:
        ValueError: if no layer is bound or a name in ``freeze`` matches nothing; ``TypeError``/``ValueError`` from a
            rule that cannot train its layer; ``TypeError`` for a layer no rule supports (``ConvTranspose``,
            ``Bilinear``, ``Embedding``, recurrent) that the specification would train.
    """
    supervised = supervised_layer_names(model, supervised_from)
    freeze = list(freeze) if not isinstance(freeze, str) else [freeze]
    sites = candidate_weights(model)
    unsupported = unsupported_layers(model)
    for pattern in freeze:
        if not any(_matches(pattern, s.name, s.module) for s in sites) and \
                not any(_matches(pattern, n, m) for n, m in unsupported):
            raise ValueError(f"freeze: no Linear/Conv layer or attention projection named {pattern!r} in the model")
    _refuse_unsupported(unsupported, rules, supervised, freeze)
    bindings: List[RuleBinding] = []
    bound = set()  # ids of the bound weights
    for site in sites:
        name, layer = site.name, site.module
        if name in supervised or any(_matches(p, name, layer) for p in freeze) or id(site.weight) in bound:
            continue
        rule = _select(rules, name, layer)
        if rule is None:
            continue
        bound.add(id(site.weight))
        try:
            view = rule.check_layer(site.view())
        except (TypeError, ValueError) as err:
            raise type(err)(f"layer {name!r}: {err}") from err
        bindings.append(RuleBinding(name, layer, rule, view))
    if not bindings:
        raise ValueError("no layer of the model is bound to a rule (check `rules`, `supervised_from` and `freeze`)")
    return bindings


def _refuse_unsupported(unsupported: Sequence, rules: RuleSpec, supervised: set, freeze: Sequence[str]) -> None:
    """A layer no rule supports that the specification would train (one rule for all, or a matching key) is refused
    by name, never silently skipped."""
    for name, module in unsupported:
        if name in supervised or any(_matches(p, name, module) for p in freeze):
            continue
        if not isinstance(rules, Mapping) or any(rules[k] is not None and _matches(k, name, module) for k in rules):
            raise TypeError(
                f"layer {name!r}: {type(module).__name__} is not supported by Hebbian rules (supported: nn.Linear, "
                "nn.Conv1d/2d/3d and nn.MultiheadAttention projections); exclude it with `freeze`, `supervised_from` "
                "or a rule mapping"
            )


def _select(rules: RuleSpec, name: str, layer: nn.Module) -> Optional[LearningRule]:
    if not isinstance(rules, Mapping):
        return _as_rule(rules)
    for key, rule in rules.items():
        if _matches(key, name, layer):
            return None if rule is None else _as_rule(rule)
    return None


def bindings_by_name(bindings: Sequence[RuleBinding]) -> Dict[str, RuleBinding]:
    return {b.name: b for b in bindings}
