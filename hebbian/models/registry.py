"""The model registry (``create_model``, ``list_models``) and the published training recipes of each network."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional

from torch import nn

from hebbian.rules.base import LearningRule
from hebbian.rules.registry import create as create_rule


@dataclass(frozen=True)
class LayerRecipe:
    """How one Hebbian layer was trained in a published experiment.

    Attributes:
        rule: rule registry name (see :func:`hebbian.rules.list_rules`).
        hyperparameters: the rule's keyword arguments, e.g. ``{"t_inv": 0.65}``.
        lr: the layer's learning rate (SoftHebb's :math:`\\eta_0`, Krotov's :math:`\\epsilon_0`, GHL's ``lr_conv``).
        weight_decay: L2 weight decay of the layer's optimizer group.
    """

    rule: str
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    lr: float = 0.01
    weight_decay: float = 0.0

    def create_rule(self) -> LearningRule:
        return create_rule(self.rule, **dict(self.hyperparameters))


@dataclass(frozen=True)
class Recipe:
    """A published training recipe of a network: a rule per Hebbian layer plus the remaining settings.

    Attributes:
        name: recipe name, e.g. ``"softhebb"``, ``"ghl"``, ``"krotov"``.
        layers: Hebbian layer name -> :class:`LayerRecipe`.
        settings: everything else as published (epochs, batch size, GHL's ``lr`` of the backprop group, probe ...).
        source: where the numbers come from.
    """

    name: str
    layers: Mapping[str, LayerRecipe]
    settings: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def rules(self) -> Dict[str, LearningRule]:
        """A fresh rule per Hebbian layer, ready for ``HebbianTrainer`` / ``GHLTrainer`` (``{layer name: rule}``)."""
        return {name: layer.create_rule() for name, layer in self.layers.items()}

    def param_groups(self, model: nn.Module) -> List[Dict[str, Any]]:
        """One optimizer group per Hebbian layer weight, with the layer's ``lr`` and ``weight_decay``."""
        modules = dict(model.named_modules())
        missing = [n for n in self.layers if n not in modules]
        if missing:
            raise ValueError(f"recipe {self.name!r}: the model has no layers named {missing}")
        return [
            {"params": [modules[n].weight], "lr": r.lr, "weight_decay": r.weight_decay}
            for n, r in self.layers.items()
        ]


@dataclass(frozen=True)
class ModelInfo:
    """Metadata of a registered network.

    Attributes:
        name: registry name.
        fn: the builder ``fn(*, in_channels, input_size, num_classes, width, **kw) -> HebbianNet``.
        description: one line.
        hebbian_layers: names of the layers the published experiments trained with a local rule.
        recipes: recipe name -> :class:`Recipe`; the first one is the default.
        source: the publication / code the architecture comes from.
    """

    name: str
    fn: Callable[..., "HebbianNet"]
    description: str
    hebbian_layers: tuple
    recipes: Mapping[str, Recipe]
    source: str = ""

    def recipe(self, name: Optional[str] = None) -> Recipe:
        """A recipe by name (default: the first registered)."""
        if name is None:
            return next(iter(self.recipes.values()))
        if name not in self.recipes:
            raise KeyError(f"model {self.name!r} has no recipe {name!r}; recipes: {', '.join(self.recipes)}")
        return self.recipes[name]


class HebbianNet(nn.Sequential):
    """An ``nn.Sequential`` whose last child is the supervised linear readout, plus its published recipes.

    Slicing (``net[:-1]``) gives a plain ``HebbianNet`` without metadata, as ``nn.Sequential`` does.

    Attributes:
        info: the :class:`ModelInfo` of the registered network (``None`` for a slice).
        default_recipe: the recipe that fits this variant (e.g. ``"ghl"`` for DeepHebb's GHL variant); ``None``: the
            first registered recipe.
    """

    info: Optional[ModelInfo]

    def __init__(self, *args: Any, info: Optional[ModelInfo] = None, default_recipe: Optional[str] = None) -> None:
        super().__init__(*args)
        self.info = info
        self.default_recipe = default_recipe

    @property
    def readout(self) -> nn.Module:
        """The last child, the supervised linear readout."""
        return self[-1]

    def recipe(self, name: Optional[str] = None) -> Recipe:
        if self.info is None:
            raise ValueError("this network has no registry metadata (was it sliced or built by hand?)")
        return self.info.recipe(name if name is not None else self.default_recipe)

    def default_rules(self, recipe: Optional[str] = None) -> Dict[str, LearningRule]:
        """``{layer name: rule}`` as published (see :meth:`ModelInfo.recipe`)."""
        return self.recipe(recipe).rules()

    def param_groups(self, recipe: Optional[str] = None) -> List[Dict[str, Any]]:
        """Optimizer groups of the Hebbian layers with the published per-layer learning rates."""
        return self.recipe(recipe).param_groups(self)


_MODELS: Dict[str, ModelInfo] = {}


def register_model(
    name: str, *, description: str, hebbian_layers: tuple, recipes: Mapping[str, Recipe], source: str = ""
) -> Callable[[Callable[..., HebbianNet]], Callable[..., HebbianNet]]:
    """Decorator that registers a network builder under ``name`` with its metadata."""

    def decorator(fn: Callable[..., HebbianNet]) -> Callable[..., HebbianNet]:
        if name in _MODELS:
            raise ValueError(f"a model named {name!r} is already registered")
        _MODELS[name] = ModelInfo(name, fn, description, tuple(hebbian_layers), dict(recipes), source)
        return fn

    return decorator


def get_model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered network."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    if key not in _MODELS:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(list_models())}")
    return _MODELS[key]


def list_models(pattern: str = "*") -> List[str]:
    """Sorted names of the registered networks matching a wildcard ``pattern``."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern.strip().lower().replace("-", "_")))


def create_model(
    name: str, *, in_channels: int = 1, input_size: Any = 28, num_classes: int = 10, width: float = 1.0, **kwargs: Any
) -> HebbianNet:
    """Build a registered network, e.g. ``create_model("deephebb", in_channels=3, input_size=32, width=0.25)``.

    Args:
        name: one of :func:`list_models`.
        in_channels: input channels (1 for MNIST / digits, 3 for CIFAR).
        input_size: input height = width, or an ``(H, W)`` pair.
        num_classes: outputs of the readout.
        width: multiplier of every channel / unit count (rounded, at least 1).
        **kwargs: model-specific options (see each builder).
    """
    info = get_model_info(name)
    net = info.fn(in_channels=in_channels, input_size=input_size, num_classes=num_classes, width=width, **kwargs)
    net.info = info
    return net
