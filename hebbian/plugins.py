"""Your own rules and models, from a file, a module or an installed package.

* :func:`import_plugins` imports modules by name (``my_rules``) or by path (``rules/my_rule.py``), as the command's
  ``--import`` and a config's ``imports:`` ask, so that every rule and model they register can be named by
  ``--rule``, ``--rules`` and configs.
* :func:`load_entry_points` imports what installed packages declare in the entry-point groups ``hebbian.rules`` and
  ``hebbian.models`` (``pip install my-rules`` makes its rules appear in ``hebbian list rules``).

A plug-in is checked as it is imported: a module that fails to import, registers a name that is already taken, or
registers a rule that breaks the rule contract (not a :class:`~hebbian.rules.base.LearningRule`, abstract
``statistics``, an update of the wrong shape or dtype, or not finite on a small batch) is refused with one line naming
the rule and the module, and nothing of it stays registered.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Iterator, List, Sequence, Set, Tuple

import torch
from torch import nn

from hebbian.errors import UsageError

#: Entry-point groups read by :func:`load_entry_points`.
ENTRY_POINT_GROUPS = ("hebbian.rules", "hebbian.models")

_IMPORTED: Dict[str, ModuleType] = {}
_ENTRY_POINTS_LOADED = False


def is_path(spec: str) -> bool:
    """Whether an import spec names a file (``.py``, or a path with a separator) rather than a module."""
    return spec.endswith(".py") or "/" in spec or "\\" in spec


def normalise_spec(spec: str, relative_to: Path = Path(".")) -> str:
    """A module name as it is; a file path made absolute (relative to ``relative_to``), so that a run folder's
    config imports the same file from wherever it is run."""
    if not isinstance(spec, str) or not spec.strip():
        raise UsageError(f"--import / imports: expected a module name or a path to a .py file, got {spec!r}")
    spec = spec.strip()
    return str((relative_to / spec).resolve()) if is_path(spec) else spec


def import_plugins(specs: Sequence[str]) -> List[ModuleType]:
    """Import every module of ``specs`` (names or ``.py`` paths) once, checking what each registers.

    Raises:
        UsageError: a spec cannot be imported or registers something that breaks the contract (one line naming
            the module and the rule; nothing of that module stays registered).
    """
    return [_import_one(spec) for spec in specs]


def load_entry_points() -> None:
    """Import the modules of the installed packages' ``hebbian.rules`` / ``hebbian.models`` entry points (once).

    Raises:
        UsageError: an entry point cannot be loaded or breaks the contract (naming the package's entry point).
    """
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    from importlib.metadata import entry_points

    for group in ENTRY_POINT_GROUPS:
        for ep in entry_points(group=group):
            where = f"entry point {ep.name!r} ({ep.value}) of group {group!r}"
            with _registering(where):
                ep.load()


def _import_one(spec: str) -> ModuleType:
    key = normalise_spec(spec)
    if key in _IMPORTED:
        return _IMPORTED[key]
    with _registering(f"--import {spec}"):
        module = _load_file(Path(key)) if is_path(key) else importlib.import_module(key)
    _IMPORTED[key] = module
    return module


def _load_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise FileNotFoundError(f"no such file {str(path)!r}")
    name = f"hebbian_plugin_{path.stem}_{abs(hash(str(path))) % 10**8}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{str(path)!r} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


@contextlib.contextmanager
def _registering(where: str) -> Iterator[None]:
    """Run an import; check every rule it registered; on any failure restore the registries as they were."""
    from hebbian.models import registry as models
    from hebbian.rules import registry as rules

    saved = (dict(rules._REGISTRY), dict(rules._ALIASES), dict(models._MODELS))  # noqa: SLF001
    try:
        yield
        for name in sorted(set(rules._REGISTRY) - set(saved[0])):  # noqa: SLF001
            check_rule_contract(rules._REGISTRY[name])  # noqa: SLF001
    except BaseException as err:
        for registry, before in zip((rules._REGISTRY, rules._ALIASES, models._MODELS), saved):  # noqa: SLF001
            registry.clear()
            registry.update(before)
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        raise UsageError(f"{where}: {message}; nothing of it was registered") from None


def check_rule_contract(info: Any) -> None:
    """A registered rule is a :class:`~hebbian.rules.base.LearningRule` whose update, on a small fully connected
    layer (and a convolution, if it claims to support them), has the weight's shape and dtype and is finite.

    Rules whose constructor needs arguments are checked for their class only (they cannot be built without them).

    Raises:
        TypeError / ValueError: naming the rule and what is wrong.
    """
    from hebbian.rules.base import LearningRule

    cls, name = info.cls, info.name
    if not (isinstance(cls, type) and issubclass(cls, LearningRule)):
        raise TypeError(f"rule {name!r}: {cls!r} is not a subclass of hebbian.rules.LearningRule")
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        raise TypeError(f"rule {name!r} ({cls.__name__}) does not implement {', '.join(missing)}")
    try:
        rule = cls()
    except TypeError:
        return  # needs hyperparameters: checked when it is created
    if info.needs_global_grad or info.needs_output or info.needs_labels:
        return  # needs what only a trainer provides
    torch.manual_seed(0)
    layers: List[Tuple[str, nn.Module, torch.Tensor]] = [("nn.Linear(6, 4)", nn.Linear(6, 4), torch.randn(8, 6))]
    if info.supports_conv:
        layers.append(("nn.Conv2d(2, 3, 3)", nn.Conv2d(2, 3, 3), torch.randn(4, 2, 5, 5)))
    for what, layer, x in layers:
        try:
            delta = rule.update(layer, x, layer(x).detach())
        except Exception as err:  # noqa: BLE001 - any failure of a plug-in is reported as its own
            raise ValueError(f"rule {name!r} fails on {what} with a batch of {x.shape[0]}: "
                             f"{type(err).__name__}: {err}") from None
        if not isinstance(delta, torch.Tensor) or delta.shape != layer.weight.shape:
            got = tuple(delta.shape) if isinstance(delta, torch.Tensor) else type(delta).__name__
            raise ValueError(f"rule {name!r} returns an update of shape {got} for {what}, whose weight has shape "
                             f"{tuple(layer.weight.shape)}")
        if delta.dtype != layer.weight.dtype:
            raise ValueError(f"rule {name!r} returns an update of dtype {delta.dtype} for {what}, whose weight is "
                             f"{layer.weight.dtype}")
        if not bool(torch.isfinite(delta).all()):
            raise ValueError(f"rule {name!r} returns non-finite (NaN/Inf) values for {what} on a random batch")


def imported() -> Set[str]:
    """The specs imported so far (normalised)."""
    return set(_IMPORTED)
