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
  continues with the same batches and the same RNG states, and ends with the same weights bit for bit. With any
  engine, checkpointing the loader's data order (``in_memory_loader(...).batch_sampler``) and :class:`RNGStates`
  does the same (what ``hebbian train --resume`` relies on).
* **finite**: a checkpoint holding NaN/Inf is neither written (:class:`KeepPreviousDiskSaver` refuses it) nor loaded
  (:func:`resume_from` refuses it).
* **recognisable**: a file that is truncated, empty or not a checkpoint of this package raises
  :class:`InvalidCheckpointError` ("not a valid checkpoint (truncated or not written by hebbian)").

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

import os
import pickle
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver

from hebbian.models.discovery import unwrap_model
from hebbian.trainers.binding import RuleBinding
from hebbian.trainers.guard import NonFiniteUpdateError
from hebbian.trainers.hebbian_trainer import get_rng_states, set_rng_states

PathLike = Union[str, Path]

#: Suffix of a checkpoint being written (renamed onto its final name when complete; see :func:`remove_partial_saves`).
PARTIAL_SUFFIX = ".partial"


class InvalidCheckpointError(ValueError):
    """A file that cannot be a checkpoint of this package: truncated, empty, not a torch file, or holding objects
    other than tensors and plain Python values (which are never unpickled)."""


class NonFiniteCheckpointError(NonFiniteUpdateError):
    """A checkpoint would hold (or holds) NaN/Inf values; it is not written (or not loaded)."""


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


class RNGStates:
    """The Python, NumPy, torch (and CUDA) global RNG states as one checkpointable object.

    ``state_dict()`` holds tensors and plain Python values only (loads with ``weights_only=True``). Checkpoint it with
    a plain (non-deterministic) engine so that a resumed run draws the same random numbers (dropout, noise) as an
    uninterrupted one; :class:`~hebbian.trainers.DeterministicHebbianTrainer` saves them in its own state.
    """

    def state_dict(self) -> Dict[str, Any]:
        return get_rng_states()

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        set_rng_states(state_dict)


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
    """An atomic ``DiskSaver`` that deletes an outdated checkpoint only after the next one is safely written, and
    refuses to write a checkpoint holding NaN/Inf.

    ``Checkpoint`` calls ``remove`` for the checkpoint that falls out of ``n_saved`` *before* it saves the new one;
    here that deletion waits until the save has succeeded, so that a crash while saving leaves the previous
    checkpoint in place. The write goes to ``.<name>.<random>.partial`` in the same folder, is flushed to disk and
    renamed onto ``<name>`` (atomic); a process killed mid-save leaves only that partial file, which
    :func:`remove_partial_saves` deletes.

    Raises (when called):
        NonFiniteCheckpointError: a floating-point tensor of the checkpoint holds NaN/Inf (nothing is written).
    """

    def __init__(self, dirname: PathLike, **kwargs: Any) -> None:
        if kwargs.pop("atomic", True) is not True:
            raise ValueError("KeepPreviousDiskSaver always writes atomically; do not pass atomic=False")
        super().__init__(dirname, atomic=True, **kwargs)
        self._pending_removals: List[str] = []

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Optional[Mapping] = None) -> None:
        bad = non_finite_entries(checkpoint)
        if bad:
            self._pending_removals = []
            raise NonFiniteCheckpointError(f"refusing to save checkpoint {filename!r}: non-finite (NaN/Inf) values "
                                           f"in {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}")
        super().__call__(checkpoint, filename, metadata)
        pending, self._pending_removals = self._pending_removals, []
        for name in pending:
            if name != filename and (self.dirname / name).exists():
                super().remove(name)

    def _save_func(self, checkpoint: Mapping, path: Path, func: Any) -> None:
        tmp = tempfile.NamedTemporaryFile(delete=False, dir=self.dirname, prefix=f".{path.name}.",
                                          suffix=PARTIAL_SUFFIX)
        try:
            func(checkpoint, tmp.file, **self.kwargs)
            tmp.file.flush()
            os.fsync(tmp.file.fileno())
        except BaseException:
            tmp.close()
            os.remove(tmp.name)
            raise
        tmp.close()
        os.replace(tmp.name, path)
        os.chmod(path, 0o644)

    def remove(self, filename: str) -> None:
        self._pending_removals.append(filename)


_IGNITE_TEMP = re.compile(r"^tmp[a-z0-9_]{8}$")


def remove_partial_saves(dirname: PathLike) -> List[Path]:
    """Delete the partial files that a process killed while saving left in ``dirname``; returns them.

    Only call it while no other process saves there (``hebbian train`` holds the run folder's lock). Also removes
    the ``tmpXXXXXXXX`` files that Ignite's own atomic ``DiskSaver`` leaves in the same situation.
    """
    removed = []
    folder = Path(dirname)
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        partial = path.name.startswith(".") and path.name.endswith(PARTIAL_SUFFIX)
        if path.is_file() and (partial or _IGNITE_TEMP.match(path.name)):
            path.unlink()
            removed.append(path)
    return removed


def non_finite_entries(obj: Any, prefix: str = "") -> List[str]:
    """Dotted names of the floating-point tensors inside ``obj`` (nested dicts, lists, tuples) that hold NaN/Inf.

    One reduction per tensor (its float64 sum, which is non-finite exactly when an element is NaN/Inf or, for
    finite float32 values, never).
    """
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() or obj.is_complex():
            return [] if bool(torch.isfinite(obj.detach().sum(dtype=torch.float64 if obj.is_floating_point()
                                                                 else torch.complex128))) else [prefix or "tensor"]
        return []
    if isinstance(obj, Mapping):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return []
    out: List[str] = []
    for key, value in items:
        out += non_finite_entries(value, f"{prefix}.{key}" if prefix else str(key))
    return out


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
        InvalidCheckpointError: the file is truncated, empty, not a torch file, not a dict of entries, or holds
            other objects (which could run code when unpickled: refused, never unpickled).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    invalid = f"{str(path)!r} is not a valid checkpoint (truncated or not written by hebbian)"
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:  # objects other than tensors and plain values: refused before anything ran
        raise InvalidCheckpointError(f"{invalid}: it holds objects other than tensors and plain Python values, "
                                     "which are never loaded") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, zipfile.BadZipFile):
        raise InvalidCheckpointError(invalid) from None
    if not isinstance(checkpoint, dict):
        raise InvalidCheckpointError(f"{invalid}: it holds a {type(checkpoint).__name__}, not a dict of entries")
    return checkpoint


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

    Raises:
        FileNotFoundError: no such file, or no checkpoint in the directory.
        InvalidCheckpointError: see :func:`load_checkpoint`.
        KeyError: entries of ``to_load`` are missing from the checkpoint.
        NonFiniteCheckpointError: it holds NaN/Inf (nothing is loaded).
    """
    path = Path(path)
    if path.is_dir():
        latest = latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(f"no checkpoint (*_<step>.pt) in directory {str(path)!r}")
        path = latest
    checkpoint = load_checkpoint(path, map_location)
    bad = non_finite_entries({k: checkpoint[k] for k in to_load if k in checkpoint})
    if bad:
        raise NonFiniteCheckpointError(f"checkpoint {str(path)!r} holds non-finite (NaN/Inf) values in "
                                       f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}; refusing to load it")
    missing = sorted(set(to_load) - set(checkpoint)) if len(to_load) > 1 else []
    if missing:
        raise KeyError(f"checkpoint {str(path)!r} has no entries {missing}; it holds {sorted(checkpoint)}")
    Checkpoint.load_objects(to_load, checkpoint, **kwargs)
    return path


__all__ = [
    "InvalidCheckpointError", "NonFiniteCheckpointError", "RNGStates", "remove_partial_saves", "non_finite_entries",
    "RuleStates", "checkpoint_objects", "KeepPreviousDiskSaver", "setup_checkpointing", "latest_checkpoint",
    "load_checkpoint", "resume_from",
]
