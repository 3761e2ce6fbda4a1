"""The ``hebbian`` command: argument parsing, dispatch, and one-line errors.

A config file's values are the defaults; ``--set key.sub=value`` and the dedicated flags (``--epochs``, ``--rule``,
``--dataset``, ...) override them, in the manner of timm's ``train.py``. Usage errors (bad config key or value, unknown
rule, missing dataset, unwritable output folder) print ``hebbian: error: ...`` and exit with code 2, no traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, List, Optional, Sequence, Tuple

from hebbian.errors import EXIT_USAGE, UsageError

#: Dedicated flags and the config keys they set: (flag, dest, key, type, help).
FLAGS: Tuple[Tuple[str, str, str, Any, str], ...] = (
    ("--epochs", "epochs", "train.epochs", int, "training epochs"),
    ("--dataset", "dataset", "data.name", str, "dataset: digits (bundled), mnist, fashion-mnist, cifar10, cifar100"),
    ("--data-root", "data_root", "data.root", str, "folder holding the datasets (default $HEBBIAN_DATA_ROOT, "
     "../shared/datasets, ./data)"),
    ("--model", "model", "model.name", str, "architecture (hebbian list models)"),
    ("--width", "width", "model.width", float, "width multiplier of the hidden layers"),
    ("--batch-size", "batch_size", "data.batch_size", int, "training batch size"),
    ("--lr", "lr", "train.lr", float, "learning rate"),
    ("--probe-epochs", "probe_epochs", "probe.epochs", int, "epochs of the linear-probe readout"),
    ("--train-limit", "train_limit", "data.train_limit", int, "use only the first N training images"),
    ("--test-limit", "test_limit", "data.test_limit", int, "use only the first N test images"),
    ("--device", "device", "device", str, "auto (default), cpu, cuda, cuda:N"),
    ("--seed", "seed", "seed", int, "seed of the initial weights and the data order"),
    ("--out", "out", "out", str, "run folder (default runs/NAME-TIMESTAMP)"),
)


def _add_run_flags(parser: argparse.ArgumentParser, *, rule_flag: bool) -> None:
    group = parser.add_argument_group("overrides (a config's values are the defaults)")
    group.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override any config key, e.g. --set train.lr=0.02 --set rule.params.p=3 (repeatable)")
    group.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                       help="import a module (a name on the path, or a path to a .py file) before the config is "
                            "resolved, so that the rules and models it registers can be named by --rule, --rules "
                            "and configs; recorded in the run's config.yaml (repeatable)")
    if rule_flag:
        group.add_argument("--rule", dest="rule", help="learning rule (hebbian list rules), backprop or random")
    for flag, dest, _, typ, help_ in FLAGS:
        group.add_argument(flag, dest=dest, type=typ, default=None, help=help_)
    group.add_argument("--download", action="store_true", default=None,
                       help="let torchvision download a missing dataset (needs internet)")
    group.add_argument("--progress", dest="progress", action="store_true", default=None,
                       help="progress bars even when stderr is not a terminal (default: bars on a terminal, one "
                            "line per training epoch otherwise)")
    group.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                       help="no progress output")
    group.add_argument("--no-tensorboard", dest="tensorboard", action="store_false", default=None,
                       help="no TensorBoard logs")


def flag_overrides(args: argparse.Namespace) -> List[Tuple[str, Any]]:
    """The ``--set`` overrides, then the dedicated flags that were given, as ``(key, value)`` pairs in that order."""
    from hebbian.config import parse_override

    pairs = [parse_override(text) for text in getattr(args, "overrides", [])]
    if getattr(args, "imports", None):
        pairs.insert(0, ("imports", list(args.imports)))
    for _, dest, key, _, _ in FLAGS:
        if getattr(args, dest, None) is not None:
            pairs.append((key, getattr(args, dest)))
    extra = {"rule": "rule.name", "download": "data.download", "progress": "log.progress",
             "tensorboard": "log.tensorboard", "seeds": "compare.seeds"}
    for dest, key in extra.items():
        if getattr(args, dest, None) is not None:
            pairs.append((key, getattr(args, dest)))
    return pairs


def _comma_list(text: str) -> List[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _method_list(text: str) -> List[str]:
    methods = _comma_list(text)
    if not methods:
        raise argparse.ArgumentTypeError(f"expected comma-separated methods, e.g. oja,krotov,backprop, got {text!r}")
    return methods


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse with the command's one-line errors: ``hebbian: error: <command>: <problem> (see --help)``, code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        where = self.prog.split(" ", 1)[1] + ": " if " " in self.prog else ""
        self.exit(EXIT_USAGE, f"hebbian: error: {where}{' '.join(message.split())} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``hebbian`` argument parser with its sub-commands."""
    from hebbian import __version__
    from hebbian import results
    from hebbian.cli import commands, compare

    parser = _Parser(
        prog="hebbian",
        description="Train, compare, evaluate and visualize Hebbian learning rules (PyTorch + Ignite).",
        epilog="Run 'hebbian compare' for the default job: every rule against its untrained control on the bundled "
               "digits data, 3 seeds, about a minute on a CPU. Configs: 'hebbian list configs'.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train one model with one rule, then a linear probe",
                       description="One run: progress bar, TensorBoard logs, checkpoints, final linear-probe "
                                   "accuracy. Writes RUN/config.yaml, RUN/metrics.json, RUN/checkpoints/, RUN/tb/.")
    p.add_argument("config", nargs="?", default=None,
                   help="config file or packaged config name (hebbian list configs); with --resume, default: the "
                        "run's config.yaml")
    run_group = p.add_argument_group("run folder, resume and processes")
    run_group.add_argument("--resume", default=None, metavar="RUN",
                           help="continue an interrupted (or finished, with more epochs) run exactly where its last "
                                "checkpoint left it, in its own folder (or, with --out, in a new one); RUN is a run "
                                "folder or a checkpoint file in RUN/checkpoints")
    run_group.add_argument("--allow-change", dest="allow_changes", action="append", default=[], metavar="KEY",
                           type=_comma_list,
                           help="with --resume: config keys that may differ from the run's config.yaml, e.g. "
                                "train.epochs (more epochs; the lr schedule is stretched over the new total), "
                                "probe.*, log.*, checkpoint.*, device, data.root (comma-separated, repeatable)")
    run_group.add_argument("--overwrite", action="store_true",
                           help="replace the run that --out already holds (its files are deleted first)")
    run_group.add_argument("--nproc", type=positive_int, default=None, metavar="N",
                           help="data-parallel training in N processes on this machine (gloo on the CPU, nccl on "
                                "GPUs), each on its share of every batch. The shares' batch sums are added in another "
                                "order than one process adds them, so each update equals one process's to float "
                                "rounding; where a rule picks by rank (krotov's winner and rank-k unit, "
                                "competitive_oja's hard WTA, softhebb's winner, swta's kwta), threshold (foldiak) or "
                                "sign (ghl), a tie within that rounding gives another update, and from there on the "
                                "runs part (README, Data-parallel training). For the same bits in one process, train "
                                "it with --set train.shares=N (a forward pass and the rules' sums per share, added "
                                "in rank order; costs more time, README), and with N >= 3 set it in this run too "
                                "(the processes then add in rank order). Under torchrun, leave it out")
    run_group.add_argument("--force", action="store_true",
                           help="with --nproc: start more processes than this machine has cores")
    _add_run_flags(p, rule_flag=True)
    p.set_defaults(func=commands.train)

    p = sub.add_parser("compare", help="several rules + backprop + random weights, each against its untrained control",
                       description="Runs each method and its untrained control with the same seeds, data and initial "
                                   "weights; writes results.csv (one row per method and seed), results.md (mean ± "
                                   "std), comparison.png and per-run TensorBoard logs with HParams.")
    p.add_argument("config", nargs="?", default="compare_digits",
                   help="config file or packaged name (default: compare_digits, the bundled digits data)")
    p.add_argument("--rules", type=_method_list, default=None,
                   help="comma-separated methods, e.g. oja,krotov,softhebb,ghl,backprop,random "
                        "(default: the config's compare.rules)")
    p.add_argument("--overwrite", action="store_true", help="replace the runs that OUT/<method> already holds")
    p.add_argument("--seeds", dest="seeds", type=int, default=None, metavar="N",
                   help="run every method and control with N seeds (seed, seed+1, ...); default: compare.seeds")
    _add_run_flags(p, rule_flag=False)
    p.set_defaults(func=compare.compare)

    p = sub.add_parser("evaluate", help="linear-probe (and network) test accuracy of a saved run")
    p.add_argument("checkpoint", help="a run folder or a checkpoint file inside RUN/checkpoints")
    p.add_argument("--data-root", dest="data_root", default=None, help="folder holding the datasets")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N")
    p.add_argument("--probe-epochs", dest="probe_epochs", type=int, default=None, help="readout epochs")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the run's config (e.g. probe.lr=0.01)")
    p.set_defaults(func=commands.evaluate)

    p = sub.add_parser("visualize", help="plot the learned filters of a saved run to a PNG (or over training: "
                                           "a strip or a GIF)")
    p.add_argument("checkpoint", help="a run folder or a checkpoint file inside RUN/checkpoints")
    p.add_argument("-o", "--output", default=None, help="PNG file (default RUN/filters.png)")
    p.add_argument("--layer", default=None, help="layer name (default: the first Hebbian layer)")
    p.add_argument("--max-filters", type=int, default=64, help="at most this many filters")
    p.add_argument("--over-training", dest="over_training", action="store_true",
                   help="the filters at every checkpoint the run kept (and before training): a strip PNG, or an "
                        "animated GIF when -o ends in .gif (default RUN/filters_over_training.png); train with "
                        "--set checkpoint.every=1 --set checkpoint.n_saved=N to keep one per epoch for N epochs")
    p.set_defaults(func=commands.visualize)

    p = sub.add_parser("results", help="render results tables (docs/results.md) from run folders")
    results.add_render_arguments(p)
    p.set_defaults(func=results.render_command)

    p = sub.add_parser("list", help="registered rules, probes, models, datasets, packaged configs or config keys")
    p.add_argument("what", nargs="?", default="all", choices=("all", "rules", "probes", "models", "datasets", "configs", "keys"))
    p.set_defaults(func=commands.list_)

    p = sub.add_parser("config", help="print the resolved config (defaults + file + overrides) as YAML")
    p.add_argument("config", nargs="?", default=None, help="config file or packaged name (default: the defaults)")
    _add_run_flags(p, rule_flag=True)
    p.set_defaults(func=commands.show_config)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``hebbian`` console script; returns the exit code (0 ok, 2 usage error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exit_:  # argparse: --help, --version, or a usage error (code 2)
        return int(exit_.code or 0)
    from hebbian.plugins import load_entry_points
    from hebbian.provenance import invoked_as

    with invoked_as(["hebbian", *(sys.argv[1:] if argv is None else argv)]):
        return run_command(lambda a: load_entry_points() or a.func(a), args)


def run_command(func: Any, args: argparse.Namespace) -> int:
    """``func(args)`` as an exit code: usage errors become one line ``hebbian: error: ...`` on stderr and code 2
    (in a data-parallel run printed by rank 0 only), Ctrl-C code 130."""
    from hebbian.data import DatasetNotFoundError

    try:
        return int(func(args) or 0)
    except (UsageError, DatasetNotFoundError) as err:
        if _is_rank_zero():
            message = " ".join(str(err).split())
            print(f"hebbian: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        if _is_rank_zero():
            print("hebbian: interrupted", file=sys.stderr)
        return 130


def _is_rank_zero() -> bool:
    import ignite.distributed as idist

    return idist.get_rank() == 0
