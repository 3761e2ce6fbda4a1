"""Trainer overhead: a full HebbianTrainer epoch against the bare rule-update loop over the same batches.

* **bare loop**: for each batch of the same in-memory loader: the layer's forward, ``rule.statistics`` /
  ``rule.finalize``, :func:`~hebbian.optim.write_update`, ``optimizer.step()`` (no engine, no hooks, no guard).
* **trainer**: :class:`~hebbian.trainers.HebbianTrainer` with its default handlers (NaN guard every 100 iterations,
  replica check), plus a ``ProgressBar`` (to ``os.devnull``) as a typical logging handler.
* **trainer + visualizers**: the same, with :func:`hebbian.visualizers.attach_visualizers` at its default rates
  (every 100 iterations, every epoch) writing to a temporary TensorBoard folder.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import ExitStack
from typing import Callable, List

import torch
from ignite.handlers import ProgressBar
from torch.utils.data import TensorDataset

from benchmarks.krotov import make_trainer, mnist_or_random, sizes
from benchmarks.report import Config, Row, time_row
from benchmarks.timing import interleaved
from hebbian.data import in_memory_loader
from hebbian.optim import Local, write_update


def bare_epoch(dataset: TensorDataset, hidden: int, batch_size: int, device: torch.device) -> Callable[[], None]:
    trainer = make_trainer(dataset, hidden, device)  # same model, rule and initial weights as the trainer's
    trainer.remove_hooks()
    layer, rule = trainer.model.linear1, trainer.bindings[0].rule
    view = rule.check_layer(layer)
    optimizer = Local([layer.weight], lr=0.01)
    loader = in_memory_loader(dataset, batch_size)

    def run() -> None:
        with torch.no_grad():
            for x, _ in loader:
                x = x.flatten(1)
                delta = rule.finalize(view, rule.statistics(view, x, layer(x)))
                write_update(layer.weight, delta)
                optimizer.step()

    return run


def trainer_epoch(
    dataset: TensorDataset, hidden: int, batch_size: int, device: torch.device, stack: ExitStack, visualizers: bool
) -> Callable[[], None]:
    trainer = make_trainer(dataset, hidden, device)
    ProgressBar(file=stack.enter_context(open(os.devnull, "w"))).attach(trainer)
    if visualizers:
        from ignite.handlers.tensorboard_logger import TensorboardLogger

        from hebbian.visualizers import attach_visualizers

        logdir = stack.enter_context(tempfile.TemporaryDirectory())
        logger = TensorboardLogger(log_dir=logdir)
        stack.callback(logger.close)
        attach_visualizers(logger, trainer, trainer.model, input_shape=tuple(dataset.tensors[0].shape[1:]))
    loader = in_memory_loader(dataset, batch_size)
    return lambda: trainer.run(loader, epochs=1)


def run(cfg: Config) -> List[Row]:
    samples, hidden, batch = sizes(cfg)
    dataset = mnist_or_random(cfg, samples)
    with ExitStack() as stack:
        variants = {
            "bare loop": bare_epoch(dataset, hidden, batch, cfg.device),
            "trainer": trainer_epoch(dataset, hidden, batch, cfg.device, stack, visualizers=False),
            "trainer+viz": trainer_epoch(dataset, hidden, batch, cfg.device, stack, visualizers=True),
        }
        t = interleaved(variants, cfg.device, reps=cfg.reps)
    what = f"Krotov FC, {samples} x 784 -> {hidden}, batch {batch}"
    return [
        time_row("HebbianTrainer epoch vs bare loop", t, "trainer", "bare loop", 1.1, what + ", ProgressBar"),
        time_row(
            "... with TensorBoard visualizers", t, "trainer+viz", "bare loop", 1.2,
            "attach_visualizers at default rates (every 100 iterations / every epoch)",
        ),
    ]
