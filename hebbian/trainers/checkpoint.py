"""Checkpoints that are written atomically, loaded safely, and resume a Hebbian run exactly.

Built on Ignite's ``Checkpoint`` and ``DiskSaver``:

* **atomic**: ``DiskSaver(atomic=True)`` writes to a temporary file in the same directory and ``os.replace``-s it
  onto the final name, so a crash while saving never leaves a truncated checkpoint. :class:`KeepPreviousDiskSaver`
  also defers the deletion of the checkpoint that falls out of ``n_saved`` until the new one is on disk
  (``Checkpoint`` asks for the deletion *before* writing), so a crash mid-save keeps the previous checkpoint.
* **safe**: :func:`resume_from` reads with ``torch.load(weights_only=True)``; a file holding arbitrary pickled
  objects is refused. Everything saved (weights, optimizer and scheduler state, engine state with its RNG states,
  rule hyperparameters and state tensors) is tensors and plain Python values.
* **exact**: with :class:`~hebbian.trainers.DeterministicHebbianTrainer`, a run resumed from a mid-epoch checkpoint
  continues with the same batches and the same RNG states, and ends with the same weights bit for bit.

Example::

    to_save = checkpoint_objects(trainer, lr_scheduler=scheduler)
    setup_checkpointing(trainer, to_save, "runs/ckpt", every=100, n_saved=2)
    ...
    # later, in a fresh process, after building the same objects:
    resume_from("runs/ckpt", to_save)      # the directory (its latest checkpoint) or one file
    ignite.utils.manual_seed(seed)         # same seed as the original run (DeterministicEngine draws from it)
    trainer.run(train_loader)
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver

from hebbian.models.discovery import unwrap_model
from hebbian.trainers.binding import RuleBinding

PathLike = Union[str, Path]


class RuleStates:
    """The state of every bound rule, as one checkpointable object.

    ``state_dict()`` is ``{layer name: rule.state_dict()}`` (hyperparameters as plain Python values, state tensors
    such as SoftHebb's ``rates``); ``load_state_dict`` restores each rule and refuses a different set of layers.

    Args:
        trainer_or_bindings: a :class:`~hebbian.trainers.HebbianTrainer` (anything with ``.bindings``) or the list
            of :class:`~hebbian.trainers.binding.RuleBinding`.
    """

    def __init__(self, trainer_or_bindings: Union[Any, Sequence[RuleBinding]]) -> None:
        bindings = getattr(trainer_or_bindings, "bindings", trainer_or_bindings)
        self.bindings: List[RuleBinding] = list(bindings)
        if not all(isinstance(b, RuleBinding) for b in self.bindings):
            raise TypeError("RuleStates needs a trainer with .bindings or a sequence of RuleBinding")

    def state_dict(self) -> Dict[str, Dict[str, Any]]:
        return {b.name: b.rule.state_dict() for b in self.bindings}

    def load_state_dict(self, state_dict: Mapping[str, Mapping[str, Any]]) -> None:
        names = [b.name for b in self.bindings]
        if sorted(state_dict) != sorted(names):
            raise ValueError(
                f"rule states are for layers {sorted(state_dict)}, but the bound layers are {sorted(names)}"
            )
        for b in self.bindings:
            b.rule.load_state_dict(state_dict[b.name])


def checkpoint_objects(trainer: Any, **extra: Any) -> Dict[str, Any]:
    """What a Hebbian run needs to resume: ``model`` (unwrapped from DDP), ``optimizer``, ``trainer``, ``rules``.

    Args:
        trainer: a :class:`~hebbian.trainers.HebbianTrainer` (with ``.model``, ``.optimizer`` and ``.bindings``).
        extra: more objects with ``state_dict``/``load_state_dict``, e.g. ``lr_scheduler=scheduler``.
    """
    objects: Dict[str, Any] = {
        "model": unwrap_model(trainer.model),
        "optimizer": trainer.optimizer,
        "trainer": trainer,
        "rules": RuleStates(trainer),
    }
    clash = sorted(set(objects) & set(extra))
    if clash:
        raise ValueError(f"checkpoint_objects: {clash} are already included; give the extra objects other names")
    objects.update(extra)
    return objects


class KeepPreviousDiskSaver(DiskSaver):
    """An atomic ``DiskSaver`` that deletes an outdated checkpoint only after the next one is safely written.

    ``Checkpoint`` calls ``remove`` for the checkpoint that falls out of ``n_saved`` *before* it saves the new one;
    here that deletion waits until the save has succeeded, so that a crash while saving leaves the previous
    checkpoint in place. (The write itself is atomic: ``DiskSaver`` saves to a temporary file and renames it.)
    """

    def __init__(self, dirname: PathLike, **kwargs: Any) -> None:
        if kwargs.pop("atomic", True) is not True:
            raise ValueError("KeepPreviousDiskSaver always writes atomically; do not pass atomic=False")
        super().__init__(dirname, atomic=True, **kwargs)
        self._pending_removals: List[str] = []

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Optional[Mapping] = None) -> None:
        super().__call__(checkpoint, filename, metadata)
        pending, self._pending_removals = self._pending_removals, []
        for name in pending:
            if name != filename and (self.dirname / name).exists():
                super().remove(name)

    def remove(self, filename: str) -> None:
        self._pending_removals.append(filename)


def setup_checkpointing(
    trainer: Engine,
    to_save: Mapping[str, Any],
    dirname: PathLike,
    *,
    every: int = 1,
    event: Any = Events.ITERATION_COMPLETED,
    n_saved: Optional[int] = 2,
    filename_prefix: str = "",
    save_on_terminate: bool = True,
    require_empty: bool = False,
) -> Checkpoint:
    """Save ``to_save`` every ``every`` ``event``-s into ``dirname`` (atomically, keeping the last ``n_saved``).

    File names are ``{filename_prefix}_checkpoint_{iteration}.pt`` (see :func:`latest_checkpoint`).

    Args:
        trainer: the engine to attach to (its iteration count names the files).
        to_save: objects with ``state_dict`` (e.g. :func:`checkpoint_objects`).
        dirname: directory, created if missing.
        every: save every this many ``event``-s (>= 1).
        event: ``Events.ITERATION_COMPLETED`` (default) or ``Events.EPOCH_COMPLETED``.
        n_saved: how many checkpoints to keep (``None``: all).
        filename_prefix: prefix of the file names.
        save_on_terminate: also save when the run is terminated (``trainer.terminate()``), so that it can resume
            from exactly where it stopped.
        require_empty: refuse a directory that already holds ``.pt`` files.

    Returns:
        The attached ``Checkpoint`` handler (``.last_checkpoint`` is the latest file name).
    """
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive integer, got {every!r}")
    if n_saved is not None and (isinstance(n_saved, bool) or not isinstance(n_saved, int) or n_saved < 1):
        raise ValueError(f"n_saved must be a positive integer or None, got {n_saved!r}")
    saver = KeepPreviousDiskSaver(dirname, require_empty=require_empty)
    handler = Checkpoint(
        to_save, saver, filename_prefix=filename_prefix, n_saved=n_saved,
        global_step_transform=lambda engine, _: engine.state.iteration,
    )
    trainer.add_event_handler(event(every=every), handler)
    if save_on_terminate:
        trainer.add_event_handler(Events.TERMINATE, handler)
    return handler


_STEP = re.compile(r"_(\d+)\.pt$")


def latest_checkpoint(dirname: PathLike, filename_prefix: str = "") -> Optional[Path]:
    """The checkpoint in ``dirname`` with the highest step number (``..._<step>.pt``), or ``None``."""
    candidates = []
    for path in Path(dirname).glob(f"{filename_prefix}*.pt"):
        match = _STEP.search(path.name)
        if match:
            candidates.append((int(match.group(1)), path.stat().st_mtime_ns, path))
    return max(candidates)[2] if candidates else None


def load_checkpoint(path: PathLike, map_location: Any = "cpu") -> Dict[str, Any]:
    """``torch.load(path, weights_only=True)``: tensors and plain Python values only.

    Raises:
        FileNotFoundError: no such file.
        pickle.UnpicklingError: the file holds other objects (it could run code when unpickled); it is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise pickle.UnpicklingError(
            f"refusing to load checkpoint {str(path)!r}: it holds objects other than tensors and plain Python "
            f"values (loaded with weights_only=True). Details: {err}"
        ) from err


def resume_from(path: PathLike, to_load: Mapping[str, Any], map_location: Any = "cpu", **kwargs: Any) -> Path:
    """Load a checkpoint (a file, or a directory's :func:`latest_checkpoint`) into ``to_load``.

    Thin wrapper over :func:`load_checkpoint` and ``Checkpoint.load_objects`` (which unwraps DDP models).
    For an exact resume, load into freshly built objects of the same configuration, then seed the global RNG as in
    the original run before ``trainer.run(data)``.

    Args:
        path: a checkpoint file or a directory of checkpoints.
        to_load: ``{name: object}`` as given to :func:`setup_checkpointing`.
        map_location: where tensors are loaded (``"cpu"``; the objects then copy them to their devices).
        kwargs: passed to ``nn.Module.load_state_dict`` (e.g. ``strict=False``).

    Returns:
        The file that was loaded.
    """
    path = Path(path)
    if path.is_dir():
        latest = latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(f"no checkpoint (*_<step>.pt) in directory {str(path)!r}")
        path = latest
    checkpoint = load_checkpoint(path, map_location)
    missing = sorted(set(to_load) - set(checkpoint)) if len(to_load) > 1 else []
    if missing:
        raise KeyError(f"checkpoint {str(path)!r} has no entries {missing}; it holds {sorted(checkpoint)}")
    Checkpoint.load_objects(to_load, checkpoint, **kwargs)
    return path


__all__ = [
    "RuleStates", "checkpoint_objects", "KeepPreviousDiskSaver", "setup_checkpointing", "latest_checkpoint",
    "load_checkpoint", "resume_from",
]
