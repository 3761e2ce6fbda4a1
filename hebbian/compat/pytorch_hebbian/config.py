"""pytorch-hebbian's ``config``: where data and outputs live, and two format strings.

The folders are computed when read (so setting ``$HEBBIAN_DATA_ROOT`` or changing directory after the import
counts), and a value assigned by the user sticks:

* ``DATASETS_DIR``: the library's data root (:func:`hebbian.data.default_data_root`): ``$HEBBIAN_DATA_ROOT``, else
  ``../shared/datasets`` or ``./data`` when they exist, else ``./data``. (pytorch-hebbian: ``<its repo>/datasets``.)
* ``ROOT``: the current directory; ``OUTPUT_DIR`` = ``ROOT/output``, with ``MODELS_DIR`` (``output/models``),
  ``PARAMS_DIR``, ``VIDEOS_DIR`` and ``TENSORBOARD_DIR`` (``output/tensorboard/runs``). pytorch-hebbian put
  ``output/`` next to its installed package, which is the current directory when its examples are run from the
  repository root.
* ``PATH``: the folder of this package.
"""

from __future__ import annotations

import os
from typing import Callable, Dict

from hebbian.data import default_data_root

PATH = os.path.dirname(os.path.abspath(__file__))

IGNITE_BAR_FORMAT = "{desc}[{n_fmt}/{total_fmt}] {percentage:3.0f}%|{bar}|{postfix} [{elapsed}<{remaining}]"
LOGGING_FORMAT = "[%(levelname)s] %(name)s:%(message)s"


def _datasets_dir() -> str:
    root = default_data_root()
    return str(root) if root is not None else os.path.abspath("data")


def _output(*parts: str) -> Callable[[], str]:
    return lambda: os.path.join(os.getcwd(), "output", *parts)


_FOLDERS: Dict[str, Callable[[], str]] = {
    "ROOT": os.getcwd,
    "DATASETS_DIR": _datasets_dir,
    "OUTPUT_DIR": _output(),
    "MODELS_DIR": _output("models"),
    "PARAMS_DIR": _output("params"),
    "VIDEOS_DIR": _output("videos"),
    "TENSORBOARD_DIR": _output("tensorboard", "runs"),
}

__all__ = ["PATH", "IGNITE_BAR_FORMAT", "LOGGING_FORMAT", *_FOLDERS]


def __getattr__(name: str) -> str:
    if name in _FOLDERS:
        return _FOLDERS[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
