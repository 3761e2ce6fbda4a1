"""Run the benchmarks and print the table of ratios.

    python -m benchmarks                      # CPU, full sizes, 5 interleaved repetitions
    python -m benchmarks --device cuda --out results/h100.md
    python -m benchmarks --quick              # tiny sizes (the smoke test)
    python -m benchmarks --scaling            # also the scaling sweeps and their plots (docs/scaling_*.png)
    python benchmarks/run.py --only krotov,conv

Every comparison runs its variants side by side in this one process, interleaved, and reports medians (see
:mod:`benchmarks.timing`). Nothing is downloaded: MNIST is read from the data root when present, else random data of
its shape is used (noted under the table).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, Dict, List, Optional

if __package__ in (None, ""):  # ``python benchmarks/run.py``: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from benchmarks import conv, ghl, ghl_depth, krotov, overhead  # noqa: E402
from benchmarks.report import Config, Row, format_machine, format_table  # noqa: E402
from benchmarks.timing import machine_description  # noqa: E402

SUITES: Dict[str, Callable[[Config], List[Row]]] = {
    "krotov": krotov.run,
    "conv": conv.run,
    "ghl": ghl.run,
    "ghl_depth": ghl_depth.run,
    "overhead": overhead.run,
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i] (default cpu)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repetition: a smoke run")
    parser.add_argument("--reps", type=int, default=None, help="interleaved repetitions per comparison (default 5)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(SUITES)}")
    parser.add_argument("--scaling", action="store_true", help="also run the scaling sweeps and write their plots")
    parser.add_argument("--plots-dir", default="docs", help="where --scaling writes its PNGs (default docs)")
    parser.add_argument("--out", default=None, help="also write the table (Markdown) to this file")
    parser.add_argument("--data-root", default=None, help="folder holding MNIST (default: hebbian's data root)")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> List[Row]:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available on this machine")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    reps = args.reps if args.reps is not None else (1 if args.quick else 5)
    cfg = Config(device, quick=args.quick, reps=reps, data_root=args.data_root)
    names = list(SUITES) if args.only is None else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise SystemExit(f"--only: unknown benchmarks {unknown}; choose from {list(SUITES)}")
    machine = machine_description(device)
    print(format_machine(machine), flush=True)
    rows: List[Row] = []
    started = time.perf_counter()
    failed = []
    for name in names:
        t0 = time.perf_counter()
        try:
            rows.extend(SUITES[name](cfg))
        except Exception as err:  # one broken suite must not cost the others' figures
            traceback.print_exc()
            failed.append(name)
            cfg.notes.append(f"benchmark {name!r} FAILED: {type(err).__name__}: {err}")
        print(f"[{name}: {time.perf_counter() - t0:.1f} s]", file=sys.stderr, flush=True)
    if args.scaling:
        from benchmarks import scaling

        try:
            cfg.notes.extend(scaling.run(cfg, Path(args.plots_dir)))
        except Exception as err:
            traceback.print_exc()
            failed.append("scaling")
            cfg.notes.append(f"scaling sweeps FAILED: {type(err).__name__}: {err}")
    machine["load after"] = "%.2f %.2f %.2f" % os.getloadavg()
    print()
    print(format_table(rows))
    for note in dict.fromkeys(cfg.notes):
        print(f"note: {note}")
    print(f"total {time.perf_counter() - started:.0f} s, {reps} repetition(s) per comparison")
    if args.out:
        write_markdown(Path(args.out), args, machine, rows, cfg.notes, reps)
    if failed:
        raise SystemExit(f"benchmarks failed: {', '.join(failed)} (the table above lacks their rows)")
    return rows


def write_markdown(path: Path, args: argparse.Namespace, machine: Dict[str, str], rows: List[Row],
                   notes: List[str], reps: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks " + " ".join(sys.argv[1:]) if sys.argv[1:] else "python -m benchmarks"
    lines = [
        f"Command: `{command}`",
        "",
        f"Machine: {format_machine(machine)}",
        "",
        f"Medians of {reps} interleaved repetition(s); ratio = ours / baseline.",
        "",
        format_table(rows, markdown=True),
        "",
    ]
    lines += [f"- note: {n}" for n in dict.fromkeys(notes)]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
