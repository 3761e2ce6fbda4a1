"""The compat layer's warning (given once per process where results differ from pytorch-hebbian's); logger names."""

from __future__ import annotations

import warnings
from typing import Set


class PytorchHebbianCompatWarning(UserWarning):
    """Results will differ from pytorch-hebbian's here, because its behaviour was a bug (see docs/migrating.md)."""


_WARNED: Set[str] = set()


def warn_once(key: str, message: str, stacklevel: int = 3) -> None:
    """Warn with :class:`PytorchHebbianCompatWarning` the first time ``key`` is seen in this process."""
    if key in _WARNED:
        return
    _WARNED.add(key)
    warnings.warn(message, PytorchHebbianCompatWarning, stacklevel=stacklevel)


def logger_name(module: str, *parts: str) -> str:
    """pytorch-hebbian's logger name for a compat module (``pytorch_hebbian.trainers.HebbianTrainer``), so that
    ``logging.getLogger("pytorch_hebbian").setLevel(...)`` in old scripts still applies."""
    return ".".join([module.replace("hebbian.compat.", "", 1), *parts])


def reset_warnings() -> None:
    """Forget which warnings were given (for tests)."""
    _WARNED.clear()
