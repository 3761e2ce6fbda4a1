"""Probe protocols by name: how the features of a frozen model are read out and scored.

``logistic`` is the default (scale-free, fitted to convergence, choices on a validation split). The published
protocols stay available for reproductions: ``softhebb`` (Adam, dropout 0.5, 50 epochs), ``pytorch_hebbian`` (Adam,
ReduceLROnPlateau and early stopping), and ``readout`` (the same trained readout with every setting explicit).

>>> from hebbian.probes import create_probe, list_probes
>>> probe = create_probe("logistic", model, seed=0)        # doctest: +SKIP
>>> probe.run(train_loader, test_loader)["test_accuracy"]  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping

from ignite.engine import Engine
from torch import nn

#: ``(model, **params) -> engine``; the engine's ``run(train_loader, test_loader)`` returns the metrics
#: (``train_accuracy``, ``val_accuracy`` where the protocol has a validation split, ``test_accuracy``).
ProbeFactory = Callable[..., Engine]


@dataclass(frozen=True)
class ProbeInfo:
    """One probe protocol: its factory, default parameters and where it comes from."""

    name: str
    factory: ProbeFactory = field(repr=False)
    defaults: Mapping[str, Any]
    description: str
    source: str = ""

    def params(self, **overrides: Any) -> Dict[str, Any]:
        """The defaults updated by ``overrides``.

        Raises:
            TypeError: an override the protocol does not take (the message names it and lists the accepted ones).
        """
        unknown = sorted(set(overrides) - set(self.defaults) - {"seed", "device"})
        if unknown:
            raise TypeError(f"the {self.name!r} probe does not take {', '.join(unknown)}; it takes "
                            f"{', '.join(sorted(self.defaults))}")
        return {**self.defaults, **overrides}


_PROBES: Dict[str, ProbeInfo] = {}


def register_probe(name: str, defaults: Mapping[str, Any], description: str, source: str = ""
                   ) -> Callable[[ProbeFactory], ProbeFactory]:
    """Decorator registering a probe factory under ``name`` (an existing name is refused)."""

    def add(factory: ProbeFactory) -> ProbeFactory:
        if name in _PROBES:
            raise ValueError(f"a probe named {name!r} is already registered")
        _PROBES[name] = ProbeInfo(name, factory, dict(defaults), description, source)
        return factory

    return add


def list_probes() -> List[str]:
    """Names of the registered probe protocols."""
    return sorted(_PROBES)


def get_probe_info(name: str) -> ProbeInfo:
    """The :class:`ProbeInfo` of ``name``.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    if name not in _PROBES:
        raise KeyError(f"unknown probe {name!r}; known probes: {', '.join(list_probes())}")
    return _PROBES[name]


def create_probe(name: str, model: nn.Module, **params: Any) -> Engine:
    """The probe engine of protocol ``name`` for ``model`` (its defaults updated by ``params``)."""
    info = get_probe_info(name)
    return info.factory(model, **info.params(**params))
