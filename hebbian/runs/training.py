"""One run, start to end: claim the folder, build, train, checkpoint, log, evaluate and write the results."""

from __future__ import annotations

import datetime
import json
import re
import time
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

import ignite.distributed as idist
from ignite.engine import Engine, Events

from hebbian.config import Config
from hebbian.errors import UsageError
from hebbian.experiment import Data, Experiment
from hebbian.files import write_atomic
from hebbian.trainers.guard import NonFiniteUpdateError
from hebbian.visualizers.hparams import final_metrics, log_hparams
from hebbian.runs.folder import PathLike, RunFolder, same_folder
from hebbian.runs.launch import on_rank_zero
from hebbian.runs.history import RunHistory
from hebbian.runs.attach import attach_progress, attach_tensorboard, attach_checkpoints
from hebbian.runs.resume import find_resume_source, check_resume_config, check_resume_point, resume_training
from hebbian.runs.summary import hparams_of


def run(cfg: Config, run_dir: PathLike, *, data: Optional[Data] = None, desc: Optional[str] = None,
        resume: Optional[PathLike] = None, overwrite: bool = False, allow_changes: Iterable[str] = ()
        ) -> Experiment:
    """Build, train, checkpoint, log and evaluate one experiment in ``run_dir``.

    Writes ``config.yaml``, ``metrics.json``, ``checkpoints/``, ``tb/`` (when ``log.tensorboard``) and
    ``filters.png`` (the first Hebbian layer). Returns the trained :class:`Experiment`; its ``metrics`` are also in
    ``metrics.json``. In a data-parallel run every rank trains and evaluates; rank 0 alone writes.

    Args:
        cfg: a resolved config.
        run_dir: the run folder (created; must be writable, and must not hold another run unless ``overwrite`` or
            it is the folder of ``resume``; refused while another process trains in it).
        data: the datasets, when the caller already has them (else loaded from ``cfg["data"]``).
        desc: progress-bar label.
        resume: a run folder or a checkpoint file of a run of the same config: training continues from its latest
            checkpoint (or that file) up to ``train.epochs``. Into ``run_dir`` = that run's folder (the run goes on
            in place) or into another, new folder (the run is forked).
        overwrite: replace the run ``run_dir`` holds (its files are deleted first).
        allow_changes: config keys of :data:`CHANGEABLE_ON_RESUME` that may differ from the resumed run's config.

    Raises:
        UsageError: the folder is in use or holds another run, the checkpoint is damaged or does not fit, or the
            config differs from the resumed run's (naming the keys).
    """
    from hebbian.config import dump

    start = time.perf_counter()
    run_dir = Path(run_dir)
    source = find_resume_source(resume, run_dir) if resume is not None else None
    in_place = source is not None and same_folder(source[0], run_dir)
    if overwrite and in_place:
        raise UsageError("--overwrite and --resume of the same run folder contradict each other; choose one")
    changes = check_resume_config(source[0], cfg, allow_changes) if source is not None else {}
    identity: Dict[str, Any] = {}
    if source is not None and source[1] is not None:
        identity = check_resume_point(source[1], cfg, changes, complete=(source[0] / "metrics.json").is_file(),
                                      run_dir=source[0])
    rank0 = idist.get_rank() == 0
    folder = RunFolder(run_dir)
    on_rank_zero(lambda: _claim_folder(folder, in_place, overwrite, source is not None))
    try:
        try:
            exp = Experiment(cfg, data)
        except BaseException:
            if rank0 and not in_place and not folder.existing_run():
                _remove_if_empty(folder)
            raise
        # the saved config is what ran: no folder pinned, the method's recipe already applied (so that
        # `hebbian train RUN/config.yaml` repeats the run instead of applying the recipe over its overrides again)
        saved = dump({**cfg, "out": None, "recipes": {}})
        run_id, legacy = _run_identity(folder, in_place, identity, source is not None and source[1] is not None)
        on_rank_zero(lambda: _prepare_folder(folder, in_place, overwrite, saved, cfg.get("device"), run_id, legacy))
        if rank0:
            attach_progress(exp, desc or cfg["rule"]["name"])
        logger = attach_tensorboard(exp, run_dir / "tb") if cfg["log"]["tensorboard"] and rank0 else None
        saver = attach_checkpoints(exp, run_dir / "checkpoints")
        history = RunHistory(run_id, saved)
        if exp.trainer is not None:
            exp.to_save["run"] = history
            exp.trainer.add_event_handler(Events.STARTED, history.begin)
        if source is not None:
            resume_training(exp, source[1], changes, history, saver if in_place else None)
            forked_from = history.run_id if not in_place else None
            history.run_id, history.config = run_id, saved  # this run's identity and config from here on
            if forked_from:
                history.resumes[-1]["forked_from"] = forked_from
        history.segments.append(_segment(exp))
        metrics: Dict[str, Any] = {
            "name": cfg["name"], "rule": cfg["rule"]["name"], "kind": exp.kind, "dataset": exp.data.info.name,
            "model": cfg["model"]["name"], "width": cfg["model"]["width"], "epochs": exp.epochs,
            "train_images": len(exp.data.train), "test_images": len(exp.data.test),
            "processes": idist.get_world_size(), "run_id": run_id,
        }
        if getattr(exp.trainer, "backprop_only", None):  # GHL: weight-bearing layers no rule supports
            metrics["backprop_only"] = list(exp.trainer.backprop_only)
        evaluate = _fit(exp, saver, metrics)
        if exp.trainer is None:
            saver(Engine(lambda *_: None))
        if history.resumes:
            metrics["resumes"] = history.resumes
            metrics["segments"] = history.segments
            if history.train_seconds is not None:  # the earlier processes' time and this one's (if it trained)
                metrics["total_train_seconds"] = round(history.train_seconds + exp.seconds.get("train", 0.0), 3)
        if evaluate:
            evaluated = exp.evaluate()
            metrics.update(evaluated)
            metrics.update(learning_metrics(exp, evaluated))
        metrics.update({f"{k}_seconds": round(v, 3) for k, v in exp.seconds.items()})
        metrics["wall_seconds"] = round(time.perf_counter() - start, 3)
        _write_results(exp, run_dir, metrics, logger, figure=evaluate and rank0)
        return exp
    finally:
        folder.unlock()


def _write_results(exp: Experiment, run_dir: Path, metrics: Dict[str, Any], logger: Any, figure: bool) -> None:
    """The final accuracies to TensorBoard, ``filters.png`` (when ``figure``) and ``metrics.json`` (rank 0)."""
    from hebbian.visualizers import plot_filters, save_figure

    if logger is not None:
        for key, value in metrics.items():
            if key.endswith("accuracy"):
                logger.writer.add_scalar(f"final/{key}", value, exp.epochs)
        logger.close()
        log_hparams(run_dir / "tb", hparams_of(exp.cfg, exp.kind), final_metrics(metrics))
    if figure:
        title = f"{exp.cfg['rule']['name']}: {exp.layers[0]}"
        save_figure(plot_filters(exp.first_layer_weight(), exp.data.input_shape, 100, title=title)[0],
                    run_dir / "filters.png")
    if idist.get_rank() == 0:
        write_atomic(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    exp.metrics = metrics


def learning_metrics(exp: Experiment, evaluated: Mapping[str, float]) -> Dict[str, Any]:
    """What the method learned, beyond accuracy: the control's probe (``control_probe_*``) and the gain over it
    (``probe_gain``, test accuracy points as a fraction), the median relative weight change of the first Hebbian layer
    (``weight_change``; every layer in ``weight_change_per_layer``), its ``dead_units`` on the training set, and
    its units' selectivity and pairwise correlation, trained and initial (:meth:`Experiment.rule_metrics`)."""
    out: Dict[str, Any] = {}
    if exp.cfg["probe"]["control"] and exp.kind != "random":
        out.update(exp.control())
        if "probe_test_accuracy" in evaluated and "control_probe_test_accuracy" in out:
            out["probe_gain"] = evaluated["probe_test_accuracy"] - out["control_probe_test_accuracy"]
    per_layer = exp.weight_change()
    out["weight_change"] = per_layer[exp.layers[0]]
    if len(per_layer) > 1:
        out["weight_change_per_layer"] = per_layer
    out["dead_units"] = exp.dead_units()
    out.update(exp.rule_metrics())
    return out


def _fit(exp: Experiment, saver: Any, metrics: Dict[str, Any]) -> bool:
    """Train; on divergence record it and keep (or restore) the last finite weights. Returns whether the model
    holds finite weights worth evaluating."""
    from hebbian.trainers.checkpoint import NonFiniteCheckpointError, latest_checkpoint, resume_from

    trainer = exp.trainer
    if trainer is not None and trainer.state.epoch_length and \
            trainer.state.iteration >= trainer.state.epoch_length * exp.epochs:
        metrics["epochs"] = trainer.state.epoch  # a resumed run whose training had finished: evaluate only
        return True
    try:
        exp.fit()
    except NonFiniteUpdateError as err:  # a diverging rule (e.g. plain Hebb) is a result, not a crash
        metrics["diverged"] = " ".join(str(err).split())
        metrics["epochs"] = exp.trainer.state.epoch if exp.trainer is not None else 0
        if err.weights_finite:  # the update was refused: the weights in memory are the last finite ones
            try:
                saver(exp.trainer)
            except NonFiniteCheckpointError as refused:  # e.g. a rule's state went non-finite: not saved
                metrics["not_saved"] = " ".join(str(refused).split())
            return True
        last = latest_checkpoint(Path(saver.save_handler.dirname))
        if last is None:  # nothing finite to fall back to: not evaluated
            metrics["evaluated_weights"] = "none (no checkpoint before the weights became non-finite)"
            return False
        resume_from(last, {"model": exp.model}, map_location=exp.device)
        metrics["evaluated_weights"] = f"{last.name} (the last checkpoint before the weights became non-finite)"
    else:
        if exp.trainer is not None:
            metrics["epochs"] = exp.trainer.state.epoch
    return True


def _claim_folder(folder: RunFolder, in_place: bool, overwrite: bool, resuming: bool) -> str:
    """Rank 0: lock the folder and check that it holds no other run (nothing is changed yet)."""
    folder.lock()
    try:
        folder.check_writable_entries()
        if overwrite and folder.existing_run() and not folder.is_hebbian_run():
            folder.clear()  # refuses, naming the files: nothing is deleted
    except UsageError:
        folder.unlock()
        raise
    existing = folder.existing_run()
    if existing and not (in_place or overwrite):
        folder.unlock()
        verb = "fork the resumed run into" if resuming else "write to"
        raise UsageError(f"{str(folder.path)!r} already holds a run ({', '.join(existing)}); pass --resume "
                         f"{str(folder.path)!r} to continue it, --overwrite to replace it, or another --out to "
                         f"{verb} a new folder")
    return ""


def _run_identity(folder: RunFolder, in_place: bool, identity: Mapping[str, Any], from_checkpoint: bool
                  ) -> Tuple[str, bool]:
    """``(run id, legacy)`` of the run about to start: a run resumed in place keeps its identity (its checkpoint's,
    else its marker's); a new or forked run gets a new one. ``legacy``: a run resumed in place whose checkpoints
    predate identities (they are accepted in this folder from now on)."""
    if in_place:
        if identity.get("run_id"):
            return str(identity["run_id"]), False
        marker = folder.marker() if idist.get_rank() == 0 else None
        if marker is not None and (not from_checkpoint or marker.get("legacy")):
            return str(marker["run_id"]), bool(marker.get("legacy"))
        return RunHistory().run_id or "", from_checkpoint
    return RunHistory().run_id or "", False


def _segment(exp: Experiment) -> Dict[str, Any]:
    """This process's part of the run: process count, the epoch and iteration it starts from, its start time."""
    state = exp.trainer.state if exp.trainer is not None else None
    return {"processes": idist.get_world_size(), "epoch": state.epoch if state else 0,
            "iteration": state.iteration if state else 0,
            "at": datetime.datetime.now().isoformat(timespec="seconds")}


def _prepare_folder(folder: RunFolder, in_place: bool, overwrite: bool, config_text: str,
                    device: Optional[str], run_id: str, legacy: bool) -> str:
    """Rank 0, once the experiment is built: replace (``overwrite``) or supersede (a finished run resumed for more
    epochs: its ``metrics.json``) the old results, delete partial saves of a killed process, mark the folder as the
    run ``run_id``, write ``config.yaml`` and ``provenance.json`` (:func:`hebbian.provenance.provenance`, with the
    process count and a stale lock taken over; a run resumed in place adds its resume to the list ``resumes``
    there)."""
    from hebbian.provenance import provenance
    from hebbian.trainers.checkpoint import remove_partial_saves

    if in_place:
        (folder.path / "metrics.json").unlink(missing_ok=True)
    elif overwrite:
        folder.clear()
    remove_partial_saves(folder.path / "checkpoints")
    folder.write_marker(run_id, config_text, legacy=legacy)
    write_atomic(folder.path / "config.yaml", config_text)
    made = {**provenance(device), "run_id": run_id, "processes": idist.get_world_size()}
    if folder.stale:
        made["lock_taken_over"] = _takeover(folder.stale)
    path = folder.path / "provenance.json"
    if in_place and path.is_file():
        try:
            first = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            first = {}
        made = {**first, "resumes": list(first.get("resumes", [])) + [made]} if isinstance(first, dict) else made
    write_atomic(path, json.dumps(made, indent=2) + "\n")
    return ""


def _takeover(stale: str) -> Dict[str, Any]:
    """The record of a stale lock taken over (its holder, and whether it was another machine's: a lock held on
    another host of a shared file system may not be visible here, so that takeover is also reported on stderr)."""
    import socket
    import sys

    match = re.search(r" on (\S+) since ", stale)
    host = match.group(1) if match else None
    foreign = host is not None and host != socket.gethostname()
    if foreign:
        print(f"hebbian: warning: took over the stale lock of {stale} (another machine); recorded in "
              "provenance.json", file=sys.stderr)
    return {"holder": stale, "other_host": foreign}


def _remove_if_empty(folder: RunFolder) -> None:
    folder.unlock()
    try:
        folder.path.rmdir()
    except OSError:
        pass
