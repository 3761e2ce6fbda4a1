"""What ``train.shares`` costs: one epoch of the Hebbian trainer with the batch in N shares against the whole batch.

``train.shares = N`` makes one process compute each batch's statistics as N data-parallel processes do (a forward
pass and the rules' sums per share, added in rank order), so that it equals an N-process run bit for bit (README,
Data-parallel training). This times one epoch of :class:`~hebbian.trainers.HebbianTrainer` on ``krotov_fc`` with the
published Krotov-Hopfield MNIST setting (p 3, k 7, delta 0.4, batch 100) at a few widths, with ``shares=None`` and
``shares=N`` side by side in one process (interleaved repetitions, medians; :mod:`benchmarks.timing`), on MNIST's
first ``--samples`` training images (random data of MNIST's shape when MNIST is not there). With one thread
(``--threads 1``) it also gives the CPU time of that thread (``time.thread_time``), which other processes on a busy
machine do not inflate as they do the wall-clock time; its ratio is the cost.

Usage::

    python -m benchmarks.shares [--hidden 400 2000] [--shares 2] [--samples 10000] [--reps 5] [--threads 1]
                                [--device cpu] [--out docs/benchmarks/shares_cpu_1thread.md]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch.utils.data import TensorDataset

from benchmarks.timing import Timings, format_seconds, interleaved, machine_description
from hebbian.data import DatasetNotFoundError, in_memory_loader, load_dataset
from hebbian.models import create_model
from hebbian.optim import Local
from hebbian.rules import create
from hebbian.trainers import HebbianTrainer

#: the published MNIST setting (pytorch-hebbian examples/params/mnist.json)
P, K, DELTA, LR, BATCH = 3.0, 7, 0.4, 0.04, 100


def dataset(samples: int, device: torch.device, notes: List[str]) -> TensorDataset:
    """MNIST's first ``samples`` training images, else random data of that shape (noted)."""
    try:
        data = load_dataset("mnist", limit=samples)
    except (DatasetNotFoundError, OSError, RuntimeError) as err:
        notes.append(f"MNIST not found ({type(err).__name__}): random data of MNIST's shape")
        g = torch.Generator().manual_seed(0)
        data = TensorDataset(torch.rand(samples, 1, 28, 28, generator=g), torch.randint(0, 10, (samples,), generator=g))
    return TensorDataset(*(t.to(device) for t in data.tensors))


def epoch(data: TensorDataset, hidden: int, shares: Optional[int], device: torch.device) -> Callable[[], None]:
    """One epoch of the trainer (shuffled in-memory loader) with ``shares``; every call continues training."""
    torch.manual_seed(0)
    model = create_model("krotov_fc", hidden=hidden).to(device)
    trainer = HebbianTrainer(model, create("krotov", p=P, k=K, delta=DELTA), Local(model.named_parameters(), lr=LR),
                             device=device, shares=shares)
    loader = in_memory_loader(data, BATCH, shuffle=True, generator=torch.Generator().manual_seed(0))
    return lambda: trainer.run(loader, epochs=1)


def cpu_timed(fn: Callable[[], None], seconds: List[float]) -> Callable[[], None]:
    """``fn``, appending the CPU time of the calling thread that each call took to ``seconds``."""
    def run() -> None:
        start = time.thread_time()
        fn()
        seconds.append(time.thread_time() - start)
    return run


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shares", description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[400, 2000], help="widths of the Krotov layer")
    parser.add_argument("--shares", type=int, default=2, help="N of train.shares (>= 2)")
    parser.add_argument("--samples", type=int, default=10000, help="training images per epoch")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions of each variant")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None, help="also write the table as Markdown to this file")
    args = parser.parse_args(argv)
    if args.shares < 2:
        parser.error(f"--shares: expected an integer >= 2, got {args.shares}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    notes: List[str] = []
    data = dataset(args.samples, device, notes)
    lines = [
        "Command: `python -m benchmarks.shares " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])) + "`",
        "",
        "Machine: " + ", ".join(f"{k}: {v}" for k, v in machine_description(device).items()),
        "",
        f"One epoch of {len(data)} images, krotov_fc, krotov p {P:g} k {K} delta {DELTA}, batch {BATCH}; medians of "
        f"{args.reps} interleaved repetitions; ratio = shares={args.shares} / whole batch.",
        "",
        f"| hidden units | clock | whole batch (median) | shares={args.shares} (median) | ratio | spread |",
        "|---|---|---|---|---|---|",
    ]
    cpu_clock = torch.get_num_threads() == 1 and device.type == "cpu"
    for hidden in args.hidden:
        cpu: Dict[str, List[float]] = {"whole": [], "shares": []}
        variants = {"whole": epoch(data, hidden, None, device), "shares": epoch(data, hidden, args.shares, device)}
        t = interleaved({k: cpu_timed(v, cpu[k]) for k, v in variants.items()}, device, reps=args.reps)
        clocks = [("wall", t)]
        if cpu_clock:  # (the warm-up call's time dropped)
            clocks.insert(0, ("thread CPU", Timings({k: v[-args.reps:] for k, v in cpu.items()})))
        for clock, times in clocks:
            spread = max(times.spread("whole"), times.spread("shares"))
            lines.append(f"| {hidden} | {clock} | {format_seconds(times.median('whole'))} | "
                         f"{format_seconds(times.median('shares'))} | {times.ratio('shares', 'whole'):.2f}x | "
                         f"{spread:.0%} |")
    lines += [""] + [f"Note: {n}" for n in notes]
    text = "\n".join(lines).rstrip() + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
