"""Finding the weights of any model that a local rule can train, and the model inside its parallel wrappers.

Trainers (which weights to bind) and visualizers (which weights to show) both use this; it knows nothing of either.

A *candidate* is a weight used by a linear map or a convolution (:class:`WeightSite`): the ``weight`` of every
``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` / ``nn.Conv3d`` (wherever it is used: ``nn.MultiheadAttention`` calls its
``out_proj`` functionally) and the input projection of every ``nn.MultiheadAttention`` (``<name>.in_proj``: the packed
query/key/value weight ``in_proj_weight``, three competition groups of units, or ``<name>.q_proj`` / ``.k_proj`` /
``.v_proj`` when the embedding sizes differ). Modules that hold such a weight but that no rule supports
(:data:`UNSUPPORTED_LAYERS`) are listed by :func:`unsupported_layers`, so that binders refuse them by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple, Union

from torch import Tensor, nn

from hebbian.rules.layers import SUPPORTED_LAYERS, Geometry, LayerView, layer_kind

#: Module types with a weight used as a linear map or convolution that no rule can train (refused by name).
UNSUPPORTED_LAYERS: Tuple[type, ...] = (
    nn.modules.conv._ConvTransposeNd, nn.Bilinear, nn.Embedding, nn.EmbeddingBag, nn.RNNBase, nn.RNNCellBase,
)


@dataclass(frozen=True)
class WeightSite:
    """One trainable weight of a model.

    Attributes:
        name: the qualified name a rule binds to: the module's name (``"features.0"``), or
            ``"<attention>.in_proj"`` / ``".q_proj"`` / ``".k_proj"`` / ``".v_proj"`` for attention projections.
        module: the module that owns the weight (the ``Linear``/``Conv``, or the ``nn.MultiheadAttention``).
        weight: the Parameter.
        kind: ``"linear"``, ``"conv1d"``, ``"conv2d"`` or ``"conv3d"``.
        competition_groups: groups of units that compete separately (3 for a packed q/k/v projection, the
            ``groups`` of a grouped convolution, else 1).
    """

    name: str
    module: nn.Module
    weight: nn.Parameter
    kind: str
    competition_groups: int = 1

    def view(self) -> LayerView:
        """The rule's view of the weight, with the module's own geometry (or a plain linear map); its
        ``exact_drive`` says whether what the trainers capture is exactly ``W x`` (+ bias)."""
        if isinstance(self.module, SUPPORTED_LAYERS):
            view = LayerView(self.module)
            view.exact_drive = stock_forward(self.module)
            return view
        view = LayerView(weight=self.weight, geometry=Geometry(), bias=None,
                         competition_groups=self.competition_groups)
        view.exact_drive = True  # captured from the product itself
        return view

    @property
    def kernel_size(self) -> Tuple[int, ...]:
        return tuple(self.weight.shape[2:])


def stock_forward(module: nn.Module) -> bool:
    """Whether the module's ``forward`` is PyTorch's own ``Linear`` / ``Conv`` one (its output is ``W x + b``), not a
    subclass's custom forward (e.g. :class:`~hebbian.models.PMetricLinear`'s p-metric current)."""
    return type(module).forward in (nn.Linear.forward, nn.Conv1d.forward, nn.Conv2d.forward, nn.Conv3d.forward)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare model inside ``DistributedDataParallel`` / ``DataParallel`` wrappers."""
    while isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    return model


def candidate_weights(model: nn.Module) -> List[WeightSite]:
    """Every weight a rule can train, in registration order (see the module docstring)."""
    sites: List[WeightSite] = []
    for name, module in unwrap_model(model).named_modules():
        if isinstance(module, SUPPORTED_LAYERS) and isinstance(module.weight, nn.Parameter):
            groups = module.groups if layer_kind(module) != "linear" else 1
            sites.append(WeightSite(name, module, module.weight, layer_kind(module), groups))
        elif isinstance(module, nn.MultiheadAttention):
            prefix = f"{name}." if name else ""
            if module.in_proj_weight is not None:
                sites.append(WeightSite(prefix + "in_proj", module, module.in_proj_weight, "linear", 3))
            else:
                for part in ("q", "k", "v"):
                    sites.append(WeightSite(f"{prefix}{part}_proj", module, getattr(module, f"{part}_proj_weight"),
                                            "linear", 1))
    return sites


def candidate_layers(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """Every ``nn.Linear`` and ``nn.Conv1d/2d/3d`` module of ``model`` with its qualified name, in registration
    order (the module front end of :func:`candidate_weights`, without attention input projections)."""
    return [(n, m) for n, m in unwrap_model(model).named_modules() if isinstance(m, SUPPORTED_LAYERS)]


def unsupported_layers(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """Modules with a linear/convolution-like weight that no rule supports (``ConvTranspose``, ``Bilinear``,
    ``Embedding``, recurrent layers), with their qualified names."""
    return [(n, m) for n, m in unwrap_model(model).named_modules() if isinstance(m, UNSUPPORTED_LAYERS)]


def site_weight(model: nn.Module, name: str) -> Tensor:
    """The weight of the candidate named ``name`` (a module name or an attention projection's name)."""
    for site in candidate_weights(model):
        if site.name == name:
            return site.weight
    raise ValueError(f"the model has no Linear/Conv layer or attention projection named {name!r}")


def supervised_layer_names(model: nn.Module, supervised_from: Optional[Union[int, str]]) -> set:
    """Names of the layers that belong to the supervised part of the model.

    ``supervised_from`` as in pytorch-hebbian: an index into the model's top-level children (negative counts from the
    end; ``-1`` = the last child, e.g. a readout) or a module name; that module and everything registered after it is
    supervised. ``None``: nothing is. Attention projections (``<attention>.in_proj``) go with their module.
    """
    if supervised_from is None:
        return set()
    bare = unwrap_model(model)
    names = [n for n, _ in bare.named_modules() if n]
    if isinstance(supervised_from, bool) or not isinstance(supervised_from, (int, str)):
        raise TypeError(f"supervised_from must be an int, a module name or None, got {supervised_from!r}")
    if isinstance(supervised_from, int):
        children = [n for n, _ in bare.named_children()]
        if not -len(children) <= supervised_from < len(children):
            raise ValueError(
                f"supervised_from={supervised_from} is out of range for a model with {len(children)} top-level children"
            )
        start = children[supervised_from]
    else:
        if supervised_from not in names:
            raise ValueError(f"supervised_from={supervised_from!r} is not a module of the model")
        start = supervised_from
    supervised = set(names[names.index(start):])
    modules = dict(bare.named_modules())
    for site in candidate_weights(bare):
        if site.module is not modules.get(site.name) and any(site.module is modules[n] for n in supervised):
            supervised.add(site.name)
    return supervised
