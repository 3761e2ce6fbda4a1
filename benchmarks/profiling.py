"""Profiles of one Krotov FC trainer epoch: where the time goes (``docs/performance.md`` quotes them).

    python -m benchmarks.profiling [--device cuda] [--samples 20480] [--threads 1]

Prints the torch.profiler operator table (self time) and the cProfile table (Python functions, internal time).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
from typing import List, Optional

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.krotov import mnist_or_random, trainer_epoch
from benchmarks.report import Config
from benchmarks.timing import synchronize


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--samples", type=int, default=20480)
    parser.add_argument("--hidden", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rows", type=int, default=20)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = Config(torch.device(args.device), reps=1)
    epoch = trainer_epoch(mnist_or_random(cfg, args.samples), args.hidden, args.batch_size, cfg.device)
    epoch()
    synchronize(cfg.device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cfg.is_cuda else [])
    with profile(activities=activities) as prof:
        epoch()
        synchronize(cfg.device)
    sort = "self_cuda_time_total" if cfg.is_cuda else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=args.rows))
    profiler = cProfile.Profile()
    profiler.enable()
    epoch()
    synchronize(cfg.device)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(args.rows)
    print(text.getvalue())


if __name__ == "__main__":
    main()
