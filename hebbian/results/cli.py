"""``python -m hebbian.results probe|render`` and the ``hebbian results`` render: arguments, files, one-line errors.

Every problem with what was asked (a bad argument, a malformed run folder, probe file or template, an unwritable
``--out``) is one line ``hebbian.results: error: ...`` on stderr and exit code 2 (``hebbian results``: the
``hebbian`` command's own error line), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from hebbian.errors import EXIT_USAGE, UsageError
from hebbian.results.probing import probe_checkpoints
from hebbian.results.records import ResultsError, read_run
from hebbian.results.tables import runs_table
from hebbian.results.template import render
from hebbian.cli.main import positive_int

PROG = "python -m hebbian.results"


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line: ``hebbian.results: error: <problem> (see --help)``, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"hebbian.results: error: {' '.join(message.split())} (see '{self.prog} --help')\n")


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _epoch_list(text: str) -> List[int]:
    try:
        epochs = [int(e) for e in text.split(",")]
    except ValueError:
        epochs = []
    if not epochs or min(epochs) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated epochs >= 1 (e.g. 10,20,30; the untrained "
                                         f"model: --control), got {text!r}")
    return epochs


def add_render_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", help="run folders (a 'hebbian compare' folder: each of its runs)")
    p.add_argument("--template", default=None, help="Markdown template with <!-- runs: ... --> / <!-- curve: ... -->"
                   " directives (default: one table of all runs)")
    p.add_argument("--out", default=None, help="write here (default: print)")


def render_command(args: argparse.Namespace) -> int:
    """Render the template (or one table of all runs) from the run folders given; print it or write ``--out``."""
    records = [read_run(r) for r in args.runs]
    if args.template:
        template = _read_template(Path(args.template))
        text = render(template, records, f"hebbian results ... --template {args.template}",
                      base=Path(args.template).parent)
    else:
        text = runs_table(records) + "\n"
    if args.out:
        _write_out(Path(args.out), text, args.template)
    else:
        sys.stdout.write(text)
    return 0


def _read_template(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, ValueError) as err:  # missing, a folder, unreadable, not UTF-8 text
        reason = err.strerror if isinstance(err, OSError) and err.strerror else " ".join(str(err).split())
        raise ResultsError(f"--template {str(path)!r}: cannot read it: {reason}") from None


def _write_out(path: Path, text: str, template: Optional[str]) -> None:
    """Write the page atomically (an existing ``--out`` is the page generated before: it is replaced whole, never
    half-written); the template itself is never overwritten."""
    from hebbian.files import write_atomic

    if template and path.resolve() == Path(template).resolve():
        raise ResultsError(f"--out {str(path)!r} is the template itself; write the page to another file")
    try:
        write_atomic(path, text)
    except OSError as err:
        reason = err.strerror or " ".join(str(err).split())
        raise ResultsError(f"--out {str(path)!r}: cannot write it: {reason}") from None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m hebbian.results``; returns the exit code (0 done, 2 a one-line usage error, 130 interrupted)."""
    from hebbian import results

    parser = _Parser(prog=PROG, description=(results.__doc__ or "").split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("render", help="render tables from run folders")
    add_render_arguments(p)
    p.set_defaults(func=render_command)
    p = sub.add_parser("probe", help="run a probe protocol on a run's checkpoints (RUN/probes/PROTOCOL.json)")
    p.add_argument("run")
    p.add_argument("--probe", required=True, help="probe protocol (hebbian.probes.list_probes())")
    p.add_argument("--every", type=positive_int, default=None, help="only epochs divisible by this (and the last)")
    p.add_argument("--epochs", type=_epoch_list, default=None, help="only these epochs, comma-separated")
    p.add_argument("--set", dest="params", action="append", default=[], metavar="KEY=VALUE",
                   help="probe parameter (JSON value), repeatable")
    p.add_argument("--config", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="run-config override used to rebuild the model, repeatable")
    p.add_argument("--tag", default="", help="output file suffix: RUN/probes/PROTOCOL-TAG.json")
    p.add_argument("--control", action="store_true", help="also probe the untrained model (epoch 0)")
    p.set_defaults(func=_probe_command)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error already printed as one line
        return int(exit_.code or 0)
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    from hebbian.data import DatasetNotFoundError

    try:
        return args.func(args)
    except (UsageError, DatasetNotFoundError) as err:
        print(f"hebbian.results: error: {' '.join(str(err).split())}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("hebbian.results: interrupted", file=sys.stderr)
        return 130


def _pairs(items: Sequence[str], flag: str) -> Dict[str, Any]:
    out = {}
    for item in items:
        if "=" not in item:
            raise ResultsError(f"{flag}: expected KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key] = _parse_value(value)
    return out


def _probe_command(args: argparse.Namespace) -> int:
    probe_checkpoints(args.run, args.probe, _pairs(args.params, "--set"), every=args.every, epochs=args.epochs,
                      overrides=list(_pairs(args.overrides, "--config").items()), tag=args.tag,
                      control=args.control)
    return 0
