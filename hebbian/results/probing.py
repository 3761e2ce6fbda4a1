"""Probing a run's checkpoints: a probe protocol (:mod:`hebbian.probes`) run on the model of each checkpoint,
its results appended to ``RUN/probes/<protocol>[-<tag>].json`` (one entry per checkpoint and probe setting)."""

from __future__ import annotations

import gc
import re
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from hebbian.errors import ConfigError, UsageError
from hebbian.results.records import PathLike, ResultsError, entry_key, read_probe_file, read_run, setting


def checkpoint_epochs(run_dir: Path, iterations_per_epoch: int) -> Dict[int, Path]:
    """``{epoch: file}`` of ``RUN/checkpoints/checkpoint_<iteration>.pt`` (epoch = iteration / iterations per epoch)."""
    found: Dict[int, Path] = {}
    for f in (run_dir / "checkpoints").glob("*.pt"):
        match = re.search(r"_(\d+)\.pt$", f.name)
        if match:
            found[-(-int(match.group(1)) // iterations_per_epoch)] = f
    return dict(sorted(found.items()))


def probe_checkpoints(run: PathLike, probe: str, params: Optional[Mapping[str, Any]] = None, *,
                      every: Optional[int] = None, epochs: Optional[Sequence[int]] = None,
                      overrides: Sequence = (), tag: str = "", control: bool = False,
                      log: Any = print) -> List[Dict[str, Any]]:
    """Run the probe protocol ``probe`` on checkpoints of ``run``; appends to ``RUN/probes/<probe>[-<tag>].json``.

    Each entry: ``epoch``, ``checkpoint``, the probe's metrics, ``seconds``, ``params``, ``overrides``. Checkpoints
    already in the file (same epoch, params and overrides) are skipped, so an interrupted call continues.

    Args:
        every: probe only epochs divisible by ``every`` (>= 1; and the last checkpoint); ``epochs``: only these
            epochs, each of which must have a checkpoint.
        overrides: config overrides used to rebuild the model (e.g. ``[("model.options.readout_current", "dot")]``).
        tag: suffix of the output file, to keep probes of differently rebuilt models apart.
        control: also probe the untrained model (the run's config and seed, so its initial weights), as epoch 0.

    The probe's own seed (its readout's initial weights, split and minibatch order) is the run's, unless ``params``
    sets ``seed``: repeating a probe with other seeds gives the spread of its readout on the same features.

    Raises:
        UsageError: a bad argument, a malformed run folder or probe file, an unknown probe or parameter, a damaged
            checkpoint, or one that the run being trained removed (rotated away) before it was probed (the entries
            probed until then are kept in the file).
    """
    run_dir = Path(run)
    if tag and not re.fullmatch(r"[A-Za-z0-9_.]+", tag):
        raise ResultsError(f"tag must be letters, digits, '_' or '.', got {tag!r}")
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
        raise ResultsError(f"every must be a whole number >= 1, got {every!r}")
    record = read_run(run_dir)
    if record.runs:
        shown = ", ".join(str(r.path) for r in record.runs[:4]) + (" ..." if len(record.runs) > 4 else "")
        raise ResultsError(f"{str(run_dir)!r} is a 'hebbian compare' folder, not a run; probe one of its "
                           f"{len(record.runs)} runs: {shown}")
    params = dict(params or {})
    overrides = [list(o) for o in overrides]
    out = run_dir / "probes" / f"{probe}{'-' + tag if tag else ''}.json"
    entries: List[Dict[str, Any]] = read_probe_file(out) if out.is_file() else []
    batch = _run_config(run_dir)["data"]["batch_size"]  # the run's own, not an override's
    exp = _untrained(run_dir, overrides)
    _check_probe(probe, exp, params, record.config.get("seed", 0))
    found = checkpoint_epochs(run_dir, -(-len(exp.data.train) // batch))
    chosen = _chosen_epochs(run_dir, found, every, epochs)
    if control:
        chosen = [0] + chosen

    done = {entry_key(e) for e in entries}
    for epoch in chosen:
        if (epoch, setting(params, overrides)) in done:
            continue
        if epoch == 0:  # the control: same config and seed, untrained
            exp, ckpt = _untrained(run_dir, overrides), Path("untrained (control)")
        else:
            exp, ckpt = _load_checkpoint(found[epoch], epoch, overrides, out), found[epoch]
        start = time.perf_counter()
        engine = _create(probe, exp, params, record.config.get("seed", 0))
        metrics = engine.run(exp.eval_loader(exp.data.train), exp.eval_loader(exp.data.test))
        entry = {"epoch": epoch, "checkpoint": ckpt.name, **{k: _plain(v) for k, v in metrics.items()},
                 "seconds": round(time.perf_counter() - start, 1), "params": params, "overrides": overrides}
        history = [{k: v for k, v in h.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
                   for h in getattr(engine, "history", None) or [] if isinstance(h, Mapping)]
        if any(history):
            entry["candidates"] = history  # e.g. every beta's validation accuracy
        entries = _append_entry(out, entry)
        log(f"{run_dir.name} epoch {epoch}: " + ", ".join(f"{k} {v:.4f}" for k, v in entry.items()
                                                          if k.endswith("accuracy")))
        del engine, exp  # the probe's feature cache (e.g. 16 GB for a 57,600-feature conv net) goes before the next
        gc.collect()     # checkpoint's is built: Ignite engines hold reference cycles
    return entries


def _chosen_epochs(run_dir: Path, found: Mapping[int, Path], every: Optional[int],
                   epochs: Optional[Sequence[int]]) -> List[int]:
    """The epochs to probe; every epoch asked for must have a checkpoint (none is silently left out)."""
    if not found:
        raise ResultsError(f"{str(run_dir)!r} has no checkpoints")
    missing = sorted(set(epochs or ()) - set(found))
    if missing:
        raise ResultsError(f"--epochs {','.join(map(str, missing))}: no checkpoint of that epoch in "
                           f"{str(run_dir / 'checkpoints')!r} (it has epochs {', '.join(map(str, found))})")
    last = max(found)
    return [e for e in found if (epochs is None or e in epochs) and (every is None or e % every == 0 or e == last)]


def _run_config(run_dir: Path) -> Dict[str, Any]:
    """The run's ``config.yaml`` resolved (defaults filled in); a bad key or value is an error naming the file."""
    from hebbian.config import resolve_config

    try:
        return resolve_config(run_dir / "config.yaml")
    except ConfigError as err:
        raise ResultsError(f"{str(run_dir / 'config.yaml')!r}: {err}") from None


def _untrained(run_dir: Path, overrides: Sequence) -> Any:
    """The run's experiment (config and seed, so its initial weights) rebuilt with ``overrides``, untrained. The run's
    own config is checked first (:func:`_run_config`), so a config error here is an override's."""
    from hebbian.config import resolve_config
    from hebbian.experiment import Experiment

    try:
        return Experiment(resolve_config(run_dir / "config.yaml", [tuple(o) for o in overrides]))
    except ConfigError as err:
        raise ResultsError(f"--config: {err}") from None


def _create(probe: str, exp: Any, params: Mapping[str, Any], run_seed: int) -> Any:
    """The probe engine for ``exp``'s model; an unknown probe or parameter or a bad parameter value is a one-line
    error naming it."""
    from hebbian.probes import create_probe

    seed = params.get("seed", run_seed)
    try:
        return create_probe(probe, exp.model, seed=seed, device=exp.device,
                            **{k: v for k, v in params.items() if k != "seed"})
    except KeyError as err:  # unknown probe (the message lists the known ones)
        raise ResultsError(f"--probe {probe!r}: {err.args[0] if err.args else err}") from None
    except (TypeError, ValueError) as err:  # a parameter the probe does not take, a bad value, a model it cannot read
        given = " --set " + ", ".join(f"{k}={v!r}" for k, v in params.items()) if params else ""
        raise ResultsError(f"--probe {probe}{given}: {' '.join(str(err).split())}") from None


def _check_probe(probe: str, exp: Any, params: Mapping[str, Any], run_seed: int) -> None:
    """Build the probe once before any checkpoint is probed, so a bad probe or parameter fails at once."""
    engine = _create(probe, exp, params, run_seed)
    del engine
    gc.collect()


def _load_checkpoint(path: Path, epoch: int, overrides: Sequence, out: Path) -> Any:
    """The experiment with the weights of checkpoint ``path``; a checkpoint gone since it was listed (the run being
    trained rotated it away) is a one-line error that says the entries so far are kept."""
    from hebbian.runs import load_run

    try:
        return load_run(path, [tuple(o) for o in overrides])[0]
    except UsageError:
        if path.is_file():
            raise
        raise ResultsError(f"checkpoint {str(path)!r} (epoch {epoch}) is gone: the run being trained removed it "
                           f"(checkpoint.n_saved) after it was listed; the epochs probed before it are kept in "
                           f"{str(out)!r}: probe again to continue") from None


def _append_entry(out: Path, entry: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Append ``entry`` to the probe file ``out`` and return its entries: under an ``flock`` of the probes folder, the
    file is read again (another process may have added entries since) and replaced atomically, so two probe processes
    on one run never drop each other's entries. An entry with the same key that another process added meanwhile is
    kept instead of this one."""
    import fcntl
    import json

    from hebbian.files import write_atomic

    try:
        out.parent.mkdir(exist_ok=True)
        with open(out.parent / ".lock", "a", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            entries: List[Dict[str, Any]] = read_probe_file(out) if out.is_file() else []
            if all(entry_key(e) != entry_key(entry) for e in entries):
                entries.append(entry)
                write_atomic(out, json.dumps(entries, indent=2) + "\n")
    except OSError as err:
        raise ResultsError(f"cannot write {str(out)!r}: {err.strerror or err}") from None
    return entries


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
