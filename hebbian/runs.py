"""A run folder: one experiment trained, checkpointed, logged and evaluated in a folder of its own.

:func:`run` builds an :class:`~hebbian.experiment.Experiment` from a resolved config and leaves ``config.yaml``,
``metrics.json``, ``checkpoints/``, ``tb/`` and ``filters.png`` in the run folder; :func:`load_run` rebuilds a saved
run for evaluation or plotting. The ``hebbian`` command's ``train``, ``compare``, ``evaluate`` and ``visualize`` are
thin layers over this module.

A run folder belongs to one run (:class:`RunFolder`):

* while a process trains in it, it holds the folder's lock (``.hebbian.lock``, an ``flock`` that the system releases
  when the process ends however it ends; a lock file left by a killed process is stale and taken over);
* a folder that already holds a run is refused unless the run is resumed (``resume=``) or replaced
  (``overwrite=True``, which deletes the old run's files first); default folders (:func:`default_run_dir`) are new
  folders created atomically, so two runs never share one;
* ``config.yaml`` does not pin the folder (``out: null``): ``hebbian train RUN/config.yaml`` starts a new run.

Resuming (``resume=RUN`` into the same folder) is exact: the checkpoints hold the model, optimizer, scheduler, rule
states, trainer position, data order and RNG states, so a run killed at any moment (``kill -9`` included) and resumed
ends with the weights of an uninterrupted run, bit for bit. The config must be the run's own, except for the keys the
caller explicitly allows to change (:data:`CHANGEABLE_ON_RESUME`: ``train.epochs``, which stretches the
learning-rate schedule over the new total) and those that do not change what is trained (:data:`FREE_ON_RESUME`:
logging, probe, device ...); each resume and its changes are recorded in ``metrics.json`` (``resumes``).

Data-parallel runs (``torchrun``, or :func:`run_parallel`, which spawns the processes through
``ignite.distributed.Parallel``) train on all processes, each on its share of every global batch; only rank 0 locks
the folder and writes to it.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import ignite.distributed as idist
from ignite.engine import Engine, Events

from hebbian.config import Config
from hebbian.errors import UsageError
from hebbian.experiment import Data, Experiment
from hebbian.trainers.guard import NonFiniteUpdateError
from hebbian.visualizers.hparams import log_hparams

#: The lock file of a run folder (held by the process that trains in it).
LOCK_FILE = ".hebbian.lock"

#: What a run leaves in its folder: a folder holding any of them holds a run.
RUN_ENTRIES = ("config.yaml", "provenance.json", "metrics.json", "evaluation.json", "filters.png", "checkpoints", "tb")

#: Config keys that :func:`check_resume_config` ignores: they do not change what this run trains.
IGNORED_ON_RESUME = ("out", "base", "name", "description", "recipes", "compare")

#: Config keys that may change freely when a run is resumed (they do not change what is trained; recorded).
FREE_ON_RESUME = ("probe.*", "log.*", "checkpoint.*", "device", "data.root", "data.download", "data.eval_batch_size")

#: Config keys that may change when a run is resumed if the caller allows them by name (``--allow-change``).
CHANGEABLE_ON_RESUME = ("train.epochs",)

PathLike = Union[str, Path]


def prepare_run_dir(path: PathLike) -> Path:
    """Create the folder and check that it is writable.

    Raises:
        UsageError: it cannot be created or written (the message names the folder and the reason).
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".hebbian-write-test-{os.getpid()}"
        probe.write_text("", encoding="utf-8")
        probe.unlink()
    except OSError as err:
        reason = err.strerror or str(err)
        raise UsageError(f"cannot write to the output folder {str(path)!r}: {reason}; pass a writable --out") \
            from None
    return path


def default_run_dir(cfg: Config, stem: Optional[str] = None) -> Path:
    """``cfg["out"]``, else a NEW folder ``runs/<stem or name>-<timestamp>`` (``-2``, ``-3``, ... when that exists),
    created atomically so that runs started in the same second never share it. In a data-parallel run rank 0
    chooses it for every rank."""
    if cfg["out"]:
        return Path(cfg["out"])
    return Path(on_rank_zero(lambda: str(new_run_dir(Path("runs") / f"{stem or cfg['name']}"))))


def new_run_dir(prefix: PathLike) -> Path:
    """A folder ``<prefix>-<YYYYmmdd-HHMMSS>[-N]`` that did not exist before (``mkdir`` is atomic)."""
    prefix = Path(prefix)
    base = f"{prefix.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1, 10_000):
        path = prefix.parent / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            continue
        except OSError as err:
            raise UsageError(f"cannot create the run folder {str(path)!r}: {err.strerror or err}; pass --out") \
                from None
    raise UsageError(f"no free run folder name {base}-N under {str(prefix.parent)!r}; pass --out")


# ---------------------------------------------------------------------- one run per folder
class RunFolder:
    """Exclusive use of a run folder by one live process.

    :meth:`lock` takes the folder's lock file (``.hebbian.lock``) with ``flock``: a second process is refused at
    once, naming the holder (pid, host, start time). The system releases an ``flock`` when its process ends, however
    it ends, so a lock file left behind by a killed process is *stale*: it is detected (nobody holds it) and taken
    over. :meth:`unlock` (also on ``with`` exit) deletes the lock file.

    Example::

        with RunFolder("runs/a").lock() as folder:
            if folder.existing_run():
                ...
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self._fd: Optional[int] = None
        self.stale: Optional[str] = None  #: the holder named in a stale lock file that was taken over

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_FILE

    def lock(self) -> "RunFolder":
        """Create the folder if needed and take its lock.

        Raises:
            UsageError: the folder cannot be written, or another live process holds it.
        """
        import fcntl

        prepare_run_dir(self.path)
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_fd(fd)
                os.close(fd)
                raise UsageError(f"the run folder {str(self.path)!r} is in use by another hebbian run "
                                 f"({holder or 'holder unknown'}); wait for it to end, or choose another --out") \
                    from None
            try:
                same = os.stat(self.lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:  # else its last holder deleted the file between our open and our lock: take the new one
                break
            os.close(fd)
        self.stale = _read_fd(fd) or None
        me = f"pid {os.getpid()} on {socket.gethostname()} since {datetime.datetime.now().isoformat(timespec='seconds')}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, me.encode(), 0)
        self._fd = fd
        return self

    def unlock(self) -> None:
        """Delete the lock file and release the lock (no-op when not held)."""
        if self._fd is None:
            return
        try:
            self.lock_path.unlink()
        except FileNotFoundError:
            pass
        os.close(self._fd)  # closing releases the flock
        self._fd = None

    def __enter__(self) -> "RunFolder":
        return self if self._fd is not None else self.lock()

    def __exit__(self, *exc: Any) -> None:
        self.unlock()

    def existing_run(self) -> List[str]:
        """The entries of :data:`RUN_ENTRIES` present in the folder (empty: it holds no run)."""
        return [name for name in RUN_ENTRIES if (self.path / name).exists()]

    def clear(self) -> None:
        """Delete the files of the run the folder holds (:data:`RUN_ENTRIES` only; nothing else is touched)."""
        for name in self.existing_run():
            target = self.path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()


def _read_fd(fd: int) -> str:
    try:
        return os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def write_atomic(path: PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename (never half-written)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def on_rank_zero(fn: Callable[[], str]) -> str:
    """``fn()`` on rank 0 only, its result (a string) or its :class:`UsageError` shared with every rank.

    In one process simply ``fn()``. In a data-parallel run the other ranks wait for rank 0 and then return its
    result, or raise the same error, so that all ranks stop together.
    """
    if idist.get_world_size() <= 1:
        return fn()
    reply = ""
    if idist.get_rank() == 0:
        try:
            reply = "ok:" + fn()
        except UsageError as err:
            reply = "error:" + str(err)
    reply = str(idist.broadcast(reply, src=0, safe_mode=True))
    if reply.startswith("error:"):
        raise UsageError(reply[len("error:"):])
    return reply[len("ok:"):]


def attach_progress(exp: Experiment, desc: str) -> None:
    """An Ignite ``ProgressBar`` over the training iterations."""
    from ignite.handlers import ProgressBar

    if exp.trainer is not None:
        ProgressBar(persist=False, desc=desc).attach(exp.trainer)


def attach_tensorboard(exp: Experiment, log_dir: Path) -> Any:
    """A ``TensorboardLogger`` in ``log_dir`` with the visualizers (filters, convergence, update norms, ...) and,
    for backprop and GHL, the training loss. Returns the logger (close it when done)."""
    from ignite.handlers import TensorboardLogger

    from hebbian.visualizers import attach_visualizers

    log = exp.cfg["log"]
    logger = TensorboardLogger(log_dir=str(log_dir))
    exp.probe_handlers.append(lambda probe, tag: logger.attach_output_handler(
        probe, Events.ITERATION_COMPLETED, tag=tag, output_transform=_numbers,
        global_step_transform=lambda engine, _: engine.state.iteration))
    if exp.trainer is not None:
        every_epochs = log["filters_every"] or None
        if exp.kind == "backprop":  # no rule bindings: show the layers a rule would train
            from ignite.handlers.tensorboard_logger import WeightsHistHandler

            from hebbian.visualizers import FilterGridHandler

            weights = [f"{name}.weight" for name in exp.layers]
            if every_epochs:
                for handler in (FilterGridHandler(exp.model, exp.data.input_shape, whitelist=weights),
                                WeightsHistHandler(exp.model, whitelist=weights)):
                    logger.attach(exp.trainer, handler, Events.EPOCH_COMPLETED(every=every_epochs))
        else:
            attach_visualizers(logger, exp.trainer, exp.model, every_iters=log["every"], every_epochs=every_epochs,
                               input_shape=exp.data.input_shape)
        if exp.kind in ("backprop", "ghl"):
            logger.attach_output_handler(exp.trainer, Events.ITERATION_COMPLETED(every=log["every"]), tag="train",
                                         output_transform=_loss_of)
    return logger


def _numbers(output: Any) -> Dict[str, float]:
    """The numeric entries of a probe step's output (e.g. ``l2``, ``val_accuracy``)."""
    if not isinstance(output, Mapping):
        return {}
    return {k: float(v) for k, v in output.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _loss_of(output: Any) -> Dict[str, Any]:
    if isinstance(output, Mapping):
        return {k: v for k, v in output.items() if k == "loss"}
    return {"loss": output}


def attach_checkpoints(exp: Experiment, dirname: Path) -> Any:
    """Checkpoints every ``checkpoint.every`` epochs and at the end (``RUN/checkpoints/checkpoint_<iter>.pt``)."""
    from ignite.handlers import Checkpoint

    from hebbian.trainers.checkpoint import KeepPreviousDiskSaver, setup_checkpointing

    c = exp.cfg["checkpoint"]
    if exp.trainer is None:  # random weights: save them once, as "iteration 0"
        return Checkpoint(exp.to_save, KeepPreviousDiskSaver(dirname), n_saved=1,
                          global_step_transform=lambda *_: 0)
    every = c["every"] or exp.epochs + 1
    handler = setup_checkpointing(exp.trainer, exp.to_save, dirname, every=every, event=Events.EPOCH_COMPLETED,
                                  n_saved=c["n_saved"])

    def final(engine: Engine) -> None:
        if engine.state.epoch % every:
            handler(engine)

    exp.trainer.add_event_handler(Events.COMPLETED, final)
    return handler


class RunHistory:
    """The resumes of a run and its training time so far, as a checkpointable object (``to_save["run"]``): each
    resumed run appends a record, and its checkpoints carry the whole list on, so ``metrics.json`` can report every
    resume (``resumes``) and the training time of all processes together (``total_train_seconds``).

    ``train_seconds`` is the training time of the earlier processes up to the checkpoint this one resumed from
    (``None`` when that checkpoint predates this record); :meth:`begin` starts this process's clock.
    """

    def __init__(self) -> None:
        self.resumes: List[Dict[str, Any]] = []
        self.train_seconds: Optional[float] = 0.0
        self._since: Optional[float] = None

    def begin(self, _: Any = None) -> None:
        """Start this process's training clock (once; an Ignite ``STARTED`` handler)."""
        if self._since is None:
            self._since = time.perf_counter()

    def elapsed(self) -> Optional[float]:
        """Training seconds of every process so far (``None`` if an earlier process's time is unknown)."""
        if self.train_seconds is None:
            return None
        return self.train_seconds + (time.perf_counter() - self._since if self._since is not None else 0.0)

    def state_dict(self) -> Dict[str, Any]:
        return {"resumes": [dict(r) for r in self.resumes], "train_seconds": self.elapsed()}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self.resumes = [dict(r) for r in state_dict.get("resumes", [])]
        seconds = state_dict.get("train_seconds")
        self.train_seconds = float(seconds) if isinstance(seconds, (int, float)) else None


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
    in_place = source is not None and _same_folder(source[0], run_dir)
    if overwrite and in_place:
        raise UsageError("--overwrite and --resume of the same run folder contradict each other; choose one")
    changes = check_resume_config(source[0], cfg, allow_changes) if source is not None else {}
    if source is not None and source[1] is not None:
        check_resume_point(source[1], cfg, changes, complete=(source[0] / "metrics.json").is_file())
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
        on_rank_zero(lambda: _prepare_folder(folder, in_place, overwrite, saved, cfg.get("device")))
        if cfg["log"]["progress"] and rank0:
            attach_progress(exp, desc or cfg["rule"]["name"])
        logger = attach_tensorboard(exp, run_dir / "tb") if cfg["log"]["tensorboard"] and rank0 else None
        saver = attach_checkpoints(exp, run_dir / "checkpoints")
        history = RunHistory()
        if exp.trainer is not None:
            exp.to_save["run"] = history
            exp.trainer.add_event_handler(Events.STARTED, history.begin)
        if source is not None:
            resume_training(exp, source[1], changes, history, saver if in_place else None)
        metrics: Dict[str, Any] = {
            "name": cfg["name"], "rule": cfg["rule"]["name"], "kind": exp.kind, "dataset": exp.data.info.name,
            "model": cfg["model"]["name"], "width": cfg["model"]["width"], "epochs": exp.epochs,
            "train_images": len(exp.data.train), "test_images": len(exp.data.test),
        }
        if idist.get_world_size() > 1:
            metrics["processes"] = idist.get_world_size()
        evaluate = _fit(exp, saver, metrics)
        if exp.trainer is None:
            saver(Engine(lambda *_: None))
        if history.resumes:
            metrics["resumes"] = history.resumes
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
    (``weight_change``; every layer in ``weight_change_per_layer``) and its ``dead_units`` on the training set."""
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
    return out


#: Final metrics shown in TensorBoard's HParams dashboard.
HPARAM_METRICS = ("probe_test_accuracy", "probe_val_accuracy", "control_probe_test_accuracy", "probe_gain",
                  "test_accuracy", "weight_change", "dead_units")


def final_metrics(metrics: Mapping[str, Any]) -> Dict[str, float]:
    """The metrics of :data:`HPARAM_METRICS` that the run has, under ``final/`` tags."""
    return {f"final/{k}": float(metrics[k]) for k in HPARAM_METRICS if metrics.get(k) is not None}


def hparams_of(cfg: Config, kind: str) -> Dict[str, Any]:
    """The settings that tell runs apart: method, seed, data, model, optimizer, schedule, init and the rule's
    hyperparameters."""
    t = cfg["train"]
    return {"method": cfg["rule"]["name"], "kind": kind, "seed": cfg["seed"], "dataset": cfg["data"]["name"],
            "model": cfg["model"]["name"], "width": cfg["model"]["width"], "epochs": t["epochs"], "lr": t["lr"],
            "optimizer": t["optimizer"], "schedule": t["schedule"], "init": t["init"],
            "batch_size": cfg["data"]["batch_size"], "probe": cfg["probe"]["protocol"],
            "rule": dict(cfg["rule"]["params"])}


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


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _claim_folder(folder: RunFolder, in_place: bool, overwrite: bool, resuming: bool) -> str:
    """Rank 0: lock the folder and check that it holds no other run (nothing is changed yet)."""
    folder.lock()
    existing = folder.existing_run()
    if existing and not (in_place or overwrite):
        folder.unlock()
        verb = "fork the resumed run into" if resuming else "write to"
        raise UsageError(f"{str(folder.path)!r} already holds a run ({', '.join(existing)}); pass --resume "
                         f"{str(folder.path)!r} to continue it, --overwrite to replace it, or another --out to "
                         f"{verb} a new folder")
    return ""


def _prepare_folder(folder: RunFolder, in_place: bool, overwrite: bool, config_text: str,
                    device: Optional[str] = None) -> str:
    """Rank 0, once the experiment is built: replace (``overwrite``) or supersede (a finished run resumed for more
    epochs: its ``metrics.json``) the old results, delete partial saves of a killed process, write ``config.yaml``
    and ``provenance.json`` (:func:`hebbian.provenance.provenance`; a run resumed in place adds its resume to the
    list ``resumes`` there)."""
    from hebbian.provenance import provenance
    from hebbian.trainers.checkpoint import remove_partial_saves

    if in_place:
        (folder.path / "metrics.json").unlink(missing_ok=True)
    elif overwrite:
        folder.clear()
    remove_partial_saves(folder.path / "checkpoints")
    write_atomic(folder.path / "config.yaml", config_text)
    made = provenance(device)
    path = folder.path / "provenance.json"
    if in_place and path.is_file():
        try:
            first = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            first = {}
        made = {**first, "resumes": list(first.get("resumes", [])) + [made]} if isinstance(first, dict) else made
    write_atomic(path, json.dumps(made, indent=2) + "\n")
    return ""


def _remove_if_empty(folder: RunFolder) -> None:
    folder.unlock()
    try:
        folder.path.rmdir()
    except OSError:
        pass


# ---------------------------------------------------------------------- resume
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
        if run_dir is not None and _same_folder(folder, Path(run_dir)) and latest is not None and latest != ckpt:
            raise UsageError(f"--resume {str(path)!r} is not the run's latest checkpoint ({latest.name}); resuming "
                             "from it in the same folder would overwrite the later ones: pass --out NEW_FOLDER")
    metrics = folder / "metrics.json"
    if metrics.is_file():
        try:
            diverged = json.loads(metrics.read_text(encoding="utf-8")).get("diverged")
        except (OSError, ValueError):
            diverged = None
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


def check_resume_point(checkpoint: PathLike, cfg: Config, changes: Mapping[str, Any], complete: bool) -> None:
    """Check, before the run folder is touched, that the checkpoint is valid and finite and that there is training
    left to do: more than it holds already (a finished run, ``complete``, needs more epochs), and no fewer epochs
    than it trained.

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


def launched_by_torchrun() -> bool:
    """Whether this process is one of several that ``torchrun`` (or another launcher setting ``WORLD_SIZE``,
    ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``) started."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ
    except ValueError:
        return False


def run_parallel(fn: Callable[..., int], *args: Any, nproc: Optional[int], backend: str = "gloo") -> int:
    """``fn(*args) -> exit code`` in every process of a data-parallel run, through ``ignite.distributed.Parallel``.

    Args:
        fn: a module-level function (the spawned processes import it).
        args: its arguments (picklable).
        nproc: processes to spawn on this machine; ``None``: this process is one that ``torchrun`` started.
        backend: ``"gloo"`` (CPU; CUDA is hidden from the spawned processes) or ``"nccl"`` (one GPU per process).

    Returns:
        Rank 0's exit code (the spawning process), or this process's (under ``torchrun``).
    """
    import logging

    logging.getLogger("ignite.distributed.launcher.Parallel").setLevel(logging.WARNING)
    codes = Path(tempfile.mkdtemp(prefix="hebbian-ranks-"))
    hide_cuda = backend == "gloo" and nproc is not None
    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        if hide_cuda:  # with CUDA visible, Ignite binds each gloo process to cuda:<rank>
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
        kwargs: Dict[str, Any] = {} if nproc is None else {"nproc_per_node": nproc, "master_port": _free_port()}
        with idist.Parallel(backend=backend, **kwargs) as parallel:
            parallel.run(_rank_main, fn, args, str(codes))
        mine = codes / ("0" if nproc is not None else str(idist.get_rank()))
        files = sorted(codes.iterdir())
        if not mine.is_file():
            mine = files[0] if files else mine
        return int(mine.read_text()) if mine.is_file() else 1
    finally:
        if hide_cuda:
            if saved is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = saved
        shutil.rmtree(codes, ignore_errors=True)


def _rank_main(local_rank: int, fn: Callable[..., int], args: Sequence[Any], codes: str) -> None:
    rank = idist.get_rank()
    code = fn(*args)
    Path(codes, str(rank)).write_text(str(int(code or 0)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summary_line(metrics: Mapping[str, Any]) -> str:
    """One line: method, dataset, accuracies (and the untrained control's, with the gain), epochs, wall time."""
    parts = [f"{metrics['rule']} on {metrics['dataset']} ({metrics['model']}, {metrics['epochs']} epochs)"]
    for key, label in (("test_accuracy", "test"), ("probe_test_accuracy", "probe test"),
                       ("control_probe_test_accuracy", "untrained control"), ("probe_train_accuracy", "probe train")):
        if key in metrics:
            parts.append(f"{label} {100 * metrics[key]:.2f}%")
    if metrics.get("probe_gain") is not None:
        parts.append(f"gain {100 * metrics['probe_gain']:+.2f} points")
    parts.append(f"{metrics['wall_seconds']:.1f} s")
    if metrics.get("diverged"):
        evaluated = str(metrics.get("evaluated_weights", ""))
        if evaluated.startswith("none"):
            note = "the weights became non-finite before the first checkpoint: not evaluated"
        elif evaluated:
            note = f"evaluated with the last finite checkpoint, {evaluated.split()[0]}"
        else:
            note = "evaluated with the last finite weights"
        parts.append(f"DIVERGED in epoch {metrics['epochs']} ({note})")
    return " | ".join(parts)


def find_run(path: Union[str, Path]) -> Tuple[Path, Path]:
    """``(run folder, checkpoint file)`` of a run folder or a checkpoint file inside ``RUN/checkpoints``.

    Raises:
        UsageError: no such run, no ``config.yaml`` beside it, or no checkpoint.
    """
    from hebbian.trainers.checkpoint import latest_checkpoint

    path = Path(path)
    if not path.exists():
        raise UsageError(f"{str(path)!r} does not exist; give a run folder or a checkpoint file")
    if path.is_dir():
        run_dir = path.parent if path.name == "checkpoints" and (path.parent / "config.yaml").is_file() else path
        ckpt = latest_checkpoint(run_dir / "checkpoints") if (run_dir / "checkpoints").is_dir() else None
        ckpt = ckpt or latest_checkpoint(path)
        if ckpt is None:
            raise UsageError(f"no checkpoint (checkpoints/*_<step>.pt) in {str(path)!r}")
    else:
        ckpt = path
        run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    if not (run_dir / "config.yaml").is_file():
        raise UsageError(f"no config.yaml in {str(run_dir)!r}; is {str(path)!r} from a 'hebbian train' run?")
    return run_dir, ckpt


def load_run(path: Union[str, Path], overrides: Any = ()) -> Tuple[Experiment, Path, Path]:
    """Rebuild a saved run's :class:`Experiment` with its checkpointed model weights.

    Args:
        path: a run folder or checkpoint file.
        overrides: config overrides (e.g. ``[("data.root", ...)]``).

    Returns:
        ``(experiment, run folder, checkpoint file)``.
    """
    from hebbian.config import resolve_config
    from hebbian.trainers.checkpoint import InvalidCheckpointError, NonFiniteCheckpointError, resume_from

    run_dir, ckpt = find_run(path)
    exp = Experiment(resolve_config(run_dir / "config.yaml", overrides))
    try:
        resume_from(ckpt, {"model": exp.model}, map_location=exp.device)
    except (InvalidCheckpointError, NonFiniteCheckpointError) as err:
        raise UsageError(" ".join(str(err).split())) from None
    except Exception as err:  # a foreign or damaged file: say which, without a traceback
        raise UsageError(f"cannot load the model from {str(ckpt)!r}: {' '.join(str(err).split())}") from None
    return exp, run_dir, ckpt
