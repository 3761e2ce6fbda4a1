"""Shared fixtures of the visualizer tests: two short HebbianTrainer runs on digits, logged to TensorBoard."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import pytest
import torch
from ignite.engine import Events
from ignite.handlers import TensorboardLogger
from ignite.handlers.tensorboard_logger import WeightsHistHandler
from viz_helpers import EPOCH_LENGTH, EPOCHS, EVERY_ITERS, conv_model, digits_loader, fc_model

from hebbian.data import load_dataset
from hebbian.optim import Local
from hebbian.rules import create
from hebbian.trainers import HebbianTrainer
from hebbian.visualizers import (
    ActivationStatsHandler,
    FilterGridHandler,
    UnitConvergenceHandler,
    UpdateHistHandler,
    UpdateNormHandler,
    attach_visualizers,
)


@pytest.fixture(scope="session")
def tb_runs(tmp_path_factory) -> Dict[str, object]:
    """Logdir with runs ``fc`` (Krotov, every handler attached by hand) and ``conv`` (SoftHebb, attach_visualizers
    with a probe batch). Returns the logdir, the trained models and their trainers."""
    logdir: Path = tmp_path_factory.mktemp("tb")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convs: several OpenMP threads on a busy 2-core machine are ~100x slower
    try:
        return _train_and_log(logdir)
    finally:
        torch.set_num_threads(threads)


def _train_and_log(logdir: Path) -> Dict[str, object]:
    torch.manual_seed(0)

    fc = fc_model()
    fc_trainer = HebbianTrainer(fc, create("krotov", p=3.0), Local(fc.named_parameters(), lr=0.02))
    fc_logger = TensorboardLogger(log_dir=str(logdir / "fc"))
    epoch, iteration = Events.EPOCH_COMPLETED(every=1), Events.ITERATION_COMPLETED(every=EVERY_ITERS)
    fc_logger.attach(fc_trainer, FilterGridHandler(fc, whitelist=["1"]), event_name=epoch)
    fc_logger.attach(fc_trainer, UnitConvergenceHandler(fc), event_name=epoch)
    fc_logger.attach(fc_trainer, WeightsHistHandler(fc, whitelist=["1.weight"]), event_name=epoch)
    fc_logger.attach(fc_trainer, UpdateHistHandler(), event_name=epoch)
    fc_logger.attach(fc_trainer, UpdateNormHandler(), event_name=iteration)
    activations = ActivationStatsHandler(fc, whitelist=["1"])
    fc_trainer.add_event_handler(Events.ITERATION_STARTED(every=EVERY_ITERS), activations.arm)
    fc_logger.attach(fc_trainer, activations, event_name=iteration)
    fc_trainer.run(digits_loader(), epochs=EPOCHS, epoch_length=EPOCH_LENGTH)
    fc_logger.close()

    conv = conv_model()
    conv_trainer = HebbianTrainer(conv, create("softhebb"), Local(conv.named_parameters(), lr=0.01))
    conv_logger = TensorboardLogger(log_dir=str(logdir / "conv"))
    probe = load_dataset("digits", limit=128).tensors
    handlers = attach_visualizers(conv_logger, conv_trainer, every_iters=EVERY_ITERS, probe=probe)
    conv_trainer.run(digits_loader(), epochs=EPOCHS, epoch_length=EPOCH_LENGTH)
    conv_logger.close()
    return {
        "logdir": logdir, "fc": fc, "fc_trainer": fc_trainer, "conv": conv, "conv_trainer": conv_trainer,
        "conv_handlers": handlers, "probe": probe[0],
    }
