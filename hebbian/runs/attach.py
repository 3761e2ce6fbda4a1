"""What a run attaches to its engines: a progress bar, TensorBoard logs with the visualizers, checkpoints."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Dict, Mapping

from ignite.engine import Engine, Events

from hebbian.experiment import Experiment
from hebbian.visualizers.probe_table import attach_probe_table


def attach_progress(exp: Experiment, desc: str) -> None:
    """Progress of the training: an Ignite ``ProgressBar`` over the iterations where bars are wanted
    (:func:`~hebbian.experiment.progress_bars`), else (``log.progress`` unset, stderr not a terminal) one line per
    epoch on stderr. Nothing with ``log.progress: false``."""
    from ignite.handlers import ProgressBar

    from hebbian.experiment import progress_bars

    setting = exp.cfg["log"]["progress"]
    if exp.trainer is None or setting is False:
        return
    if progress_bars(setting):
        ProgressBar(persist=False, desc=desc).attach(exp.trainer)
        return
    start = time.perf_counter()

    def epoch_line(engine: Engine) -> None:
        print(f"{desc}: epoch {engine.state.epoch}/{engine.state.max_epochs} ({time.perf_counter() - start:.1f} s)",
              file=sys.stderr, flush=True)

    exp.trainer.add_event_handler(Events.EPOCH_COMPLETED, epoch_line)


def attach_tensorboard(exp: Experiment, log_dir: Path) -> Any:
    """A ``TensorboardLogger`` in ``log_dir`` with the visualizers (filters, convergence, update norms, ...) and,
    for backprop and GHL, the training loss. Returns the logger (close it when done)."""
    from ignite.handlers import TensorboardLogger

    from hebbian.visualizers import attach_visualizers

    log = exp.cfg["log"]
    logger = TensorboardLogger(log_dir=str(log_dir))
    exp.probe_handlers.append(lambda probe, tag: attach_probe_table(
        logger.writer, probe, tag, step=lambda: exp.trainer.state.epoch if exp.trainer is not None else 0))
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
