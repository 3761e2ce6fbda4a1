"""How much do the visualizers slow training down? Times HebbianTrainer epochs with and without them.

Run ``python -m hebbian.visualizers.overhead --dataset digits --epochs 3`` (or ``--dataset mnist --limit 10000``).
The model is a Krotov-style fully-connected layer (``Flatten -> Linear(D, hidden, bias=False) -> ReLU -> readout``);
the visualizers are attached with :func:`~hebbian.visualizers.attach_visualizers` at the given rates, logging to a
temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Dict, Optional

import torch
from ignite.handlers.tensorboard_logger import TensorboardLogger
from torch import nn
from torch.utils.data import TensorDataset

from hebbian.data import in_memory_loader, load_dataset
from hebbian.optim import Local
from hebbian.rules import create
from hebbian.trainers import HebbianTrainer
from hebbian.visualizers.attach import attach_visualizers


def _timed_run(
    dataset, rule: str, hidden: int, batch_size: int, epochs: int, logdir: Optional[str], rates: Dict[str, int],
    device: str = "cpu",
) -> float:
    torch.manual_seed(0)
    x = dataset.tensors[0]
    model = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), hidden, bias=False), nn.ReLU(), nn.Linear(hidden, 10))
    model.to(device)
    trainer = HebbianTrainer(model, create(rule), Local(model.named_parameters(), lr=0.01), device=device)
    loader = in_memory_loader(dataset, batch_size, generator=torch.Generator().manual_seed(0))
    logger = None
    if logdir is not None:
        logger = TensorboardLogger(log_dir=logdir)
        attach_visualizers(logger, trainer, model, input_shape=tuple(x.shape[1:]), **rates)
    _sync(device)
    start = time.perf_counter()
    trainer.run(loader, epochs=epochs)
    _sync(device)
    elapsed = time.perf_counter() - start
    if logger is not None:
        logger.close()
    return elapsed


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def measure_overhead(
    dataset: str = "digits",
    *,
    rule: str = "krotov",
    hidden: int = 100,
    batch_size: int = 64,
    epochs: int = 1,
    repeats: int = 3,
    limit: Optional[int] = None,
    every_iters: int = 100,
    every_epochs: int = 1,
    device: str = "cpu",
) -> Dict[str, float]:
    """Best-of-``repeats`` wall time of ``epochs`` epochs without (``base_s``) and with (``visual_s``) visualizers.

    Args:
        dataset: a :func:`~hebbian.data.load_dataset` name (``limit`` images of it), held on ``device``.
        rule: registry name of the rule of the hidden layer (``hidden`` units).
        batch_size, epochs, repeats: the runs.
        every_iters, every_epochs: the rates given to :func:`~hebbian.visualizers.attach_visualizers`.
        device: where model and data live.

    Returns:
        ``{"base_s", "visual_s", "ratio"}`` with ``ratio = visual_s / base_s``.
    """
    data = load_dataset(dataset, limit=limit)
    data = TensorDataset(*(t.to(device) for t in data.tensors))
    rates = {"every_iters": every_iters, "every_epochs": every_epochs}
    base, visual = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            base.append(_timed_run(data, rule, hidden, batch_size, epochs, None, rates, device))
            visual.append(_timed_run(data, rule, hidden, batch_size, epochs, f"{tmp}/{i}", rates, device))
    return {"base_s": min(base), "visual_s": min(visual), "ratio": min(visual) / min(base)}


def main(argv: Optional[list] = None) -> Dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--rule", default="krotov")
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--every-iters", type=int, default=100)
    parser.add_argument("--every-epochs", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (less timing noise)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = measure_overhead(
        args.dataset, rule=args.rule, hidden=args.hidden, batch_size=args.batch_size, epochs=args.epochs,
        repeats=args.repeats, limit=args.limit, every_iters=args.every_iters, every_epochs=args.every_epochs,
        device=args.device,
    )
    print(
        f"{args.dataset}, {args.epochs} epoch(s), batch {args.batch_size}, {args.device}: "
        f"without {result['base_s']:.3f} s, with visualizers {result['visual_s']:.3f} s, ratio {result['ratio']:.3f}"
    )
    return result


if __name__ == "__main__":  # pragma: no cover
    main()
