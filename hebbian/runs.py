"""A run folder: one experiment trained, checkpointed, logged and evaluated in a folder of its own.

:func:`run` builds an :class:`~hebbian.experiment.Experiment` from a resolved config and leaves ``config.yaml``,
``metrics.json``, ``checkpoints/``, ``tb/`` and ``filters.png`` in the run folder; :func:`load_run` rebuilds a saved
run for evaluation or plotting. The ``hebbian`` command's ``train``, ``compare``, ``evaluate`` and ``visualize`` are
thin layers over this module.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from ignite.engine import Engine, Events

from hebbian.config import Config
from hebbian.errors import UsageError
from hebbian.experiment import Data, Experiment
from hebbian.trainers.guard import NonFiniteUpdateError
from hebbian.visualizers.hparams import log_hparams

def prepare_run_dir(path: Union[str, Path]) -> Path:
    """Create the run folder and check that it is writable.

    Raises:
        UsageError: it cannot be created or written (the message names the folder and the reason).
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".hebbian-write-test"
        probe.write_text("", encoding="utf-8")
        probe.unlink()
    except OSError as err:
        reason = err.strerror or str(err)
        raise UsageError(f"cannot write to the output folder {str(path)!r}: {reason}; pass a writable --out") \
            from None
    return path


def default_run_dir(cfg: Config, stem: Optional[str] = None) -> Path:
    """``cfg["out"]``, else ``runs/<stem or name>-<timestamp>``."""
    if cfg["out"]:
        return Path(cfg["out"])
    return Path("runs") / f"{stem or cfg['name']}-{time.strftime('%Y%m%d-%H%M%S')}"


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


def run(cfg: Config, run_dir: Union[str, Path], *, data: Optional[Data] = None, desc: Optional[str] = None,
        resume: Optional[Union[str, Path]] = None) -> Experiment:
    """Build, train, checkpoint, log and evaluate one experiment in ``run_dir``.

    Writes ``config.yaml``, ``metrics.json``, ``checkpoints/``, ``tb/`` (when ``log.tensorboard``) and
    ``filters.png`` (the first Hebbian layer). Returns the trained :class:`Experiment`; its ``metrics`` are also in
    ``metrics.json``.

    Args:
        cfg: a resolved config.
        run_dir: the run folder (created; must be writable).
        data: the datasets, when the caller already has them (else loaded from ``cfg["data"]``).
        desc: progress-bar label.
        resume: a checkpoint file or run folder of an earlier run of the same config: its model, optimizer,
            scheduler, rule states and trainer position are loaded, and training continues up to ``train.epochs``.
    """
    from hebbian.config import save
    from hebbian.visualizers import plot_filters, save_figure

    start = time.perf_counter()
    run_dir = prepare_run_dir(run_dir)
    save(cfg, run_dir / "config.yaml")
    exp = Experiment(cfg, data)
    if cfg["log"]["progress"]:
        attach_progress(exp, desc or cfg["rule"]["name"])
    logger = attach_tensorboard(exp, run_dir / "tb") if cfg["log"]["tensorboard"] else None
    saver = attach_checkpoints(exp, run_dir / "checkpoints")
    if resume is not None:
        resume_training(exp, resume)
    metrics: Dict[str, Any] = {
        "name": cfg["name"], "rule": cfg["rule"]["name"], "kind": exp.kind, "dataset": exp.data.info.name,
        "model": cfg["model"]["name"], "width": cfg["model"]["width"], "epochs": exp.epochs,
        "train_images": len(exp.data.train), "test_images": len(exp.data.test),
    }
    try:
        exp.fit()
    except NonFiniteUpdateError as err:  # a diverging rule (e.g. plain Hebb) is a result, not a crash
        metrics["diverged"] = " ".join(str(err).split())
        metrics["epochs"] = exp.trainer.state.epoch if exp.trainer is not None else 0
        saver(exp.trainer)
    if exp.trainer is None:
        saver(Engine(lambda *_: None))
    evaluated = exp.evaluate()
    metrics.update(evaluated)
    metrics.update(learning_metrics(exp, evaluated))
    metrics.update({f"{k}_seconds": round(v, 3) for k, v in exp.seconds.items()})
    metrics["wall_seconds"] = round(time.perf_counter() - start, 3)
    if logger is not None:
        for key, value in metrics.items():
            if key.endswith("accuracy"):
                logger.writer.add_scalar(f"final/{key}", value, exp.epochs)
        logger.close()
        log_hparams(run_dir / "tb", hparams_of(cfg, exp.kind), final_metrics(metrics))
    title = f"{cfg['rule']['name']}: {exp.layers[0]}"
    save_figure(plot_filters(exp.first_layer_weight(), exp.data.input_shape, 100, title=title)[0],
                run_dir / "filters.png")
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    exp.metrics = metrics
    return exp


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


def resume_training(exp: Experiment, path: Union[str, Path]) -> Path:
    """Load a checkpoint of the same config into ``exp.to_save`` (its training then continues where it stopped).

    Raises:
        UsageError: nothing to resume (random weights), no checkpoint there, it was finished already, or it does
            not fit this config.
    """
    from hebbian.trainers.checkpoint import latest_checkpoint, resume_from

    if exp.trainer is None:
        raise UsageError("--resume: the 'random' baseline does not train")
    path = Path(path)
    if path.is_dir() and (path / "checkpoints").is_dir():
        path = latest_checkpoint(path / "checkpoints") or path
    try:
        loaded = resume_from(path, exp.to_save, map_location=exp.device)
    except (FileNotFoundError, KeyError, RuntimeError, ValueError) as err:
        raise UsageError(f"cannot resume from {str(path)!r}: {' '.join(str(err).split())}") from None
    if exp.trainer.state.epoch >= exp.epochs:
        raise UsageError(f"--resume: {str(loaded)!r} already finished epoch {exp.trainer.state.epoch} of "
                         f"{exp.epochs}; raise --epochs to train further")
    return loaded


def summary_line(metrics: Mapping[str, Any]) -> str:
    """One line: method, dataset, accuracies, epochs, wall time."""
    parts = [f"{metrics['rule']} on {metrics['dataset']} ({metrics['model']}, {metrics['epochs']} epochs)"]
    for key, label in (("test_accuracy", "test"), ("probe_test_accuracy", "probe test"),
                       ("probe_train_accuracy", "probe train")):
        if key in metrics:
            parts.append(f"{label} {100 * metrics[key]:.2f}%")
    parts.append(f"{metrics['wall_seconds']:.1f} s")
    if metrics.get("diverged"):
        parts.append(f"DIVERGED in epoch {metrics['epochs']} (evaluated with the last finite weights)")
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
    from hebbian.trainers.checkpoint import resume_from

    run_dir, ckpt = find_run(path)
    exp = Experiment(resolve_config(run_dir / "config.yaml", overrides))
    try:
        resume_from(ckpt, {"model": exp.model}, map_location=exp.device)
    except Exception as err:  # a foreign or damaged file: say which, without a traceback
        raise UsageError(f"cannot load the model from {str(ckpt)!r}: {' '.join(str(err).split())}") from None
    return exp, run_dir, ckpt
