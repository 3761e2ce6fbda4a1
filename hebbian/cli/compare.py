"""``hebbian compare``: several methods on the same data, seeds and initial weights, each with its untrained control.

The work is :func:`hebbian.comparison.compare`; this module parses the command line and prints the table.
"""

from __future__ import annotations

import argparse

from hebbian.cli.main import flag_overrides
from hebbian.config import resolve_config


def compare(args: argparse.Namespace) -> int:
    """``hebbian compare [CONFIG] [--rules a,b,...] [--seeds N]``."""
    from hebbian.comparison import check_methods, compare as run_comparison
    from hebbian.runs import default_run_dir

    overrides = flag_overrides(args)
    base = resolve_config(args.config, overrides)
    methods = check_methods(args.rules or base["compare"]["rules"] or [base["rule"]["name"]])
    out = default_run_dir(base, stem=f"compare-{base['data']['name']}")  # a new, empty folder unless --out
    try:
        result = run_comparison(base, methods, out, overrides, echo=lambda line: print(line, flush=True),
                                overwrite=args.overwrite)
    except BaseException:
        if base["out"] is None:  # refused before anything was written: leave no empty folder behind
            try:
                out.rmdir()
            except OSError:
                pass
        raise
    print()
    print(result.markdown, end="")
    files = ", ".join(p.name for p in result.files.values())
    board = f" (tensorboard --logdir {result.out}: runs, HParams)" if base["log"]["tensorboard"] else ""
    print(f"\n{result.out}: {files}, <method>/seed<s>/{board}")
    return 0
