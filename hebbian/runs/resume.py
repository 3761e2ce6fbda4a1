"""Resuming a run: finding what to resume, checking that the checkpoint and config are the run's own and
unchanged, and loading the checkpoint into a freshly built experiment."""

from __future__ import annotations

import datetime
import fnmatch
import json
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

from hebbian.config import Config
from hebbian.errors import UsageError
from hebbian.experiment import Experiment
from hebbian.runs.folder import PathLike, same_folder
from hebbian.runs.history import RunHistory
from hebbian.runs.load import find_run


#: Config keys that :func:`check_resume_config` ignores: they do not change what this run trains.
IGNORED_ON_RESUME = ("out", "base", "name", "description", "recipes", "compare")


#: Config keys that may change freely when a run is resumed (they do not change what is trained; recorded).
FREE_ON_RESUME = ("probe.*", "log.*", "checkpoint.*", "device", "data.root", "data.download", "data.eval_batch_size",
                  "imports")


#: Config keys that may change when a run is resumed if the caller allows them by name (``--allow-change``).
CHANGEABLE_ON_RESUME = ("train.epochs",)


def find_resume_source(path: PathLike, run_dir: Optional[PathLike] = None) -> Tuple[Path, Optional[Path]]:
    """``(run folder, checkpoint or None)`` to resume: a run folder's latest checkpoint (``None`` when it was killed
    before its first one: the run starts over in it), or a checkpoint file inside ``RUN/checkpoints``.

    Raises:
        UsageError: no such run; a run that finished (``metrics.json``) or diverged; a checkpoint that is not the
            run's latest, resumed into the same folder (its later checkpoints would be overwritten).
    """
    from hebbian.trainers.checkpoint import latest_checkpoint

    path = Path(path)
    if not path.exists():
        raise UsageError(f"--resume {str(path)!r}: no such run folder or checkpoint file")
    if path.is_dir():
        folder = path.parent if path.name == "checkpoints" else path
        if not (folder / "config.yaml").is_file():
            raise UsageError(f"--resume {str(path)!r}: no run started there (no config.yaml; a run killed while "
                             f"starting leaves none): start it anew with --out {str(folder)!r}")
        ckpt = latest_checkpoint(folder / "checkpoints") if (folder / "checkpoints").is_dir() else None
    else:
        folder, ckpt = find_run(path)
        latest = latest_checkpoint(ckpt.parent)
        if run_dir is not None and same_folder(folder, Path(run_dir)) and latest is not None and latest != ckpt:
            raise UsageError(f"--resume {str(path)!r} is not the run's latest checkpoint ({latest.name}); resuming "
                             "from it in the same folder would overwrite the later ones: pass --out NEW_FOLDER")
    metrics = folder / "metrics.json"
    if metrics.is_file():
        try:
            recorded = json.loads(metrics.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            recorded = None
        diverged = recorded.get("diverged") if isinstance(recorded, dict) else None
        if diverged:
            raise UsageError(f"--resume {str(path)!r}: that run diverged (see its metrics.json); resuming would "
                             "diverge again; start a new run with other settings")
    return folder, ckpt


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> Dict[str, Tuple[Any, Any]]:
    """``{dotted key: (old value, new value)}`` of every key that differs (nested mappings compared key by key;
    :data:`IGNORED_ON_RESUME` skipped)."""
    def flat(cfg: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for key, value in cfg.items():
            dotted = f"{prefix}{key}"
            if not prefix and key in IGNORED_ON_RESUME:
                continue
            if isinstance(value, Mapping) and value:
                out.update(flat(value, dotted + "."))
            else:
                out[dotted] = value
        return out

    a, b = flat(old), flat(new)
    missing = object()
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k, missing) != b.get(k, missing)}


def _matches(key: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)


def check_resume_config(run_dir: PathLike, cfg: Config, allow_changes: Iterable[str] = ()
                        ) -> Dict[str, Tuple[Any, Any]]:
    """The differences between the config of the run in ``run_dir`` and ``cfg``, if all of them are allowed:
    :data:`FREE_ON_RESUME` keys always, :data:`CHANGEABLE_ON_RESUME` keys when named in ``allow_changes``.

    Raises:
        UsageError: a key that cannot change in a resumed run differs (the model, rule, data, optimizer, seed ...:
            what was trained would no longer be what the config says), a changeable key differs without being
            allowed, or an allowed key is not changeable. The message names the keys with both values.
    """
    from hebbian.config import resolve_config

    allowed = [a.strip() for a in allow_changes if a.strip()]
    for key in allowed:
        if not _matches(key, CHANGEABLE_ON_RESUME + FREE_ON_RESUME):
            raise UsageError(f"--allow-change {key}: this key cannot change in a resumed run (what was trained "
                             f"depends on it); keys that can: {', '.join(CHANGEABLE_ON_RESUME + FREE_ON_RESUME)}")
    saved = resolve_config(Path(run_dir) / "config.yaml")
    changes = config_changes(saved, cfg)
    where = f"the config of the run in {str(run_dir)!r}"
    fixed = {k: v for k, v in changes.items() if not _matches(k, CHANGEABLE_ON_RESUME + FREE_ON_RESUME)}
    if fixed:
        raise UsageError(f"--resume: the config differs from {where} in {_describe(fixed)}; a resumed run keeps what "
                         "it was trained with: start a new run (another --out) to change these")
    unasked = {k: v for k, v in changes.items() if _matches(k, CHANGEABLE_ON_RESUME) and not _matches(k, allowed)}
    if unasked:
        raise UsageError(f"--resume: the config differs from {where} in {_describe(unasked)}; to change them in the "
                         f"resumed run pass --allow-change {','.join(unasked)}")
    return changes


def check_resume_point(checkpoint: PathLike, cfg: Config, changes: Mapping[str, Any], complete: bool,
                       run_dir: Optional[PathLike] = None) -> Dict[str, Any]:
    """Check, before the run folder is touched, that the checkpoint is valid and finite, that it is the run's own
    (:func:`check_identity`, when ``run_dir`` is given) and that there is training left to do: more than it holds
    already (a finished run, ``complete``, needs more epochs), and no fewer epochs than it trained.

    Returns:
        The checkpoint's run record (``run_id``, ``config``, ...; empty for a checkpoint that predates it).

    Raises:
        UsageError: naming the checkpoint and what to do.
    """
    from hebbian.trainers.checkpoint import load_checkpoint, non_finite_entries

    try:
        state = load_checkpoint(checkpoint)
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(f"cannot resume: {' '.join(str(err).split())}") from None
    bad = non_finite_entries(state)
    if bad:
        raise UsageError(f"cannot resume from {str(checkpoint)!r}: it holds non-finite (NaN/Inf) values in "
                         f"{', '.join(bad[:3])}")
    trainer = state.get("trainer")
    if not isinstance(trainer, Mapping) or not {"iteration", "epoch_length"} <= set(trainer):
        raise UsageError(f"cannot resume from {str(checkpoint)!r}: it holds no training position (trainer state)")
    done, length, epochs = trainer["iteration"], trainer["epoch_length"] or 1, cfg["train"]["epochs"]
    if done > length * epochs:
        raise UsageError(f"--resume: {str(checkpoint)!r} already trained {done / length:g} epochs, more than "
                         f"train.epochs = {epochs}")
    if complete and done >= length * epochs:
        hint = "to train further raise train.epochs" if "train.epochs" in changes else \
            "to train further pass --epochs N --allow-change train.epochs"
        raise UsageError(f"--resume: the run of {str(checkpoint)!r} is finished ({done // length} of {epochs} epochs, "
                         f"metrics.json); {hint}")
    record = state.get("run") if isinstance(state.get("run"), Mapping) else {}
    if run_dir is not None:
        check_identity(Path(run_dir), Path(checkpoint), record)
    return dict(record)


def check_identity(run_dir: Path, checkpoint: Path, record: Mapping[str, Any]) -> None:
    """A checkpoint is resumed only by its own run, and only with the config it was trained with.

    * The folder's marker names its run; a checkpoint of another run (or one that holds no identity, in a folder
      whose checkpoints all do) is refused, naming the config keys in which the two runs differ.
    * A ``config.yaml`` that is not the one hebbian last wrote (its hash differs from the marker's) was edited by
      hand: it is refused if it differs from the checkpoint's config in a key that changes what is trained (what
      would run is the checkpoint's state, not what the file says), naming the keys.

    Raises:
        UsageError: naming the checkpoint, the folder and the keys.
    """
    from hebbian.runs.folder import RunFolder, text_sha256

    folder = RunFolder(run_dir)
    marker = folder.marker()
    ckpt_id = record.get("run_id") if isinstance(record.get("run_id"), str) else None
    saved = record.get("config") if isinstance(record.get("config"), str) else None
    try:
        text = (run_dir / "config.yaml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"--resume: cannot read {str(run_dir / 'config.yaml')!r}: {err}") from None
    if marker is not None and ckpt_id != marker["run_id"] and not (ckpt_id is None and marker.get("legacy")):
        whose = f"run {ckpt_id[:12]}" if ckpt_id else "no run (it holds no run identity)"
        differs = _config_differences(saved, text)
        raise UsageError(f"--resume: {str(checkpoint)!r} belongs to {whose}, not to the run in {str(run_dir)!r} "
                         f"(run {marker['run_id'][:12]}){'; their configs differ in ' + differs if differs else ''}"
                         "; a checkpoint is resumed only in its own run's folder")
    if saved is None or (marker is not None and text_sha256(text) == marker.get("config_sha256")):
        return
    fixed = {k: v for k, v in _config_differences_map(saved, text).items()
             if not _matches(k, FREE_ON_RESUME)}
    if fixed:
        raise UsageError(f"--resume: {str(run_dir / 'config.yaml')!r} was edited after {checkpoint.name} was written "
                         f"(checkpoint -> file: {_describe(fixed)}); the checkpoint was trained with the former "
                         "values: restore them, or start a new run with the new ones (another --out)")


def _config_differences_map(saved: Optional[str], text: str) -> Dict[str, Tuple[Any, Any]]:
    """The keys in which the config text ``saved`` (a checkpoint's) and ``text`` (a config.yaml) differ."""
    import yaml

    try:
        old, new = yaml.safe_load(saved or ""), yaml.safe_load(text)
    except yaml.YAMLError:
        return {"config.yaml": ("(the checkpoint's)", "(not valid YAML)")}
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return {} if saved is None else {"config.yaml": ("(the checkpoint's)", "(not a mapping)")}
    return config_changes(old, new)


def _config_differences(saved: Optional[str], text: str) -> str:
    return _describe(_config_differences_map(saved, text)) if saved is not None else ""


def _describe(changes: Mapping[str, Tuple[Any, Any]]) -> str:
    return ", ".join(f"{k} ({old!r} -> {new!r})" for k, (old, new) in changes.items())


def resume_training(exp: Experiment, path: Optional[PathLike], changes: Optional[Mapping[str, Any]] = None,
                    history: Optional[RunHistory] = None, saver: Any = None) -> Optional[Path]:
    """Load a checkpoint of the same config into ``exp.to_save`` (its training then continues where it stopped).

    Args:
        exp: the freshly built experiment.
        path: a checkpoint file or run folder (its latest checkpoint); ``None``: the run had no checkpoint yet, it
            starts over.
        changes: the allowed config changes (:func:`check_resume_config`); a new ``train.epochs`` stretches the
            epoch-wise learning-rate schedule over the new total from the current epoch on.
        history: the run's :class:`RunHistory`; this resume is appended to it.
        saver: the run's ``Checkpoint`` handler, when resuming in place: it then counts the folder's existing
            checkpoints for ``n_saved``.

    Raises:
        UsageError: nothing to resume (random weights), or the checkpoint is damaged, non-finite or does not fit.
    """
    from hebbian.trainers.checkpoint import latest_checkpoint, resume_from

    if exp.trainer is None:
        raise UsageError("--resume: the 'random' baseline does not train")
    changes = dict(changes or {})
    loaded = None
    if path is not None:
        path = Path(path)
        if path.is_dir():
            path = latest_checkpoint(path / "checkpoints" if (path / "checkpoints").is_dir() else path) or path
        try:
            loaded = resume_from(path, exp.to_save, map_location=exp.device)
        except (FileNotFoundError, KeyError, RuntimeError, ValueError) as err:
            raise UsageError(f"cannot resume from {str(path)!r}: {' '.join(str(err).split())}") from None
    state = exp.trainer.state
    if "train.epochs" in changes:
        _stretch_schedule(exp)
    if saver is not None and loaded is not None:
        _count_existing_checkpoints(saver, loaded.parent)
    if history is not None:
        record: Dict[str, Any] = {"at": datetime.datetime.now().isoformat(timespec="seconds"),
                                  "checkpoint": loaded.name if loaded is not None else None,
                                  "epoch": state.epoch, "iteration": state.iteration}
        if changes:
            record["changed"] = {k: [old, new] for k, (old, new) in changes.items()}
        history.resumes.append(record)
    return loaded


def _stretch_schedule(exp: Experiment) -> None:
    """After a change of ``train.epochs``: the epoch-wise (linear) schedule restarts from the current epoch as if
    the new total had been the plan (``lr = lr0 (1 - e / E_new)``), instead of keeping the finished run's last rate
    (0 at its end). The per-iteration cosine schedule reads the new total on its own."""
    scheduler = exp.scheduler
    lambdas = getattr(scheduler, "lr_lambdas", None)
    if lambdas is None:
        return
    rates = [base * fn(scheduler.last_epoch) for base, fn in zip(scheduler.base_lrs, lambdas)]
    for group, lr in zip(scheduler.optimizer.param_groups, rates):
        group["lr"] = lr
    scheduler._last_lr = rates  # noqa: SLF001 - what get_last_lr() reports


def _count_existing_checkpoints(saver: Any, folder: Path) -> None:
    """Let the ``Checkpoint`` handler know the checkpoints already in ``folder``, so that ``n_saved`` applies to
    them (otherwise every resume would leave its predecessor's last checkpoints behind for good)."""
    import re

    items = []
    for path in folder.glob("*_*.pt"):
        match = re.search(r"_(\d+)\.pt$", path.name)
        if match:
            items.append((int(match.group(1)), path.name))
    saver.load_state_dict({"_saved": sorted(items)})
