"""Finding the layers of any model that a local rule can train, and the model inside its parallel wrappers.

Trainers (which layers to bind) and visualizers (which weights to show) both use this; it knows nothing of either.
"""

from __future__ import annotations

from typing import List, Optional, Tuple, Union

from torch import nn

from hebbian.rules.layers import SUPPORTED_LAYERS


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare model inside ``DistributedDataParallel`` / ``DataParallel`` wrappers."""
    while isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    return model


def candidate_layers(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """Every ``nn.Linear`` and ``nn.Conv2d`` of ``model`` with its qualified name, in registration order."""
    return [(n, m) for n, m in unwrap_model(model).named_modules() if isinstance(m, SUPPORTED_LAYERS)]


def supervised_layer_names(model: nn.Module, supervised_from: Optional[Union[int, str]]) -> set:
    """Names of the layers that belong to the supervised part of the model.

    ``supervised_from`` as in pytorch-hebbian: an index into the model's top-level children (negative counts from the
    end; ``-1`` = the last child, e.g. a readout) or a module name; that module and everything registered after it is
    supervised. ``None``: nothing is.
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
    return set(names[names.index(start):])
