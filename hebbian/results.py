"""Results generated from run folders: the tables of docs/results.md are rendered, never typed.

A run folder (written by ``hebbian train``, see :mod:`hebbian.runs`) holds ``config.yaml`` and ``metrics.json``; an
optional ``provenance.json`` (``commit``, ``command``, ``machine``, ``started``) says how it was made, and
``probes/<protocol>.json`` holds probe results per checkpoint (written by :func:`probe_checkpoints`).

Two steps::

    python -m hebbian.results probe RUN --probe krotov_hopfield [--every 30] [--set epochs=100]
    python -m hebbian.results render RUN... --template docs/results.template.md --out docs/results.md
    hebbian results RUN... --template docs/results.template.md --out docs/results.md   # the same render

The template is Markdown with directive lines, each replaced by a generated block:

* ``<!-- runs: NAME NAME... -->``: one table row per run folder (by folder name): settings, accuracies, times,
  commit, machine; and under the table the exact command of each row;
* ``<!-- curve: NAME PROTOCOL -->``: the probe's accuracies over the checkpoints of run ``NAME``;
* ``<!-- compare: NAME -->``: the per-method table of a ``hebbian compare`` folder (its ``results.csv``, summarised
  as ``results.md`` is), with its command, commit and machine;
* ``<!-- include: PATH -->``: a generated Markdown file, e.g. a benchmark table written by
  ``python -m benchmarks --out PATH`` (relative to the template's folder).

A directive naming a run folder that was not given is an error (no silently missing rows).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import yaml

from hebbian.config import BASELINES

from hebbian.errors import UsageError

PathLike = Union[str, Path]
DIRECTIVE = re.compile(r"^<!--\s*(runs|curve|compare|include):\s*(.*?)\s*-->\s*$")


class ResultsError(UsageError):
    """A run folder or template that cannot be rendered (one line, naming the file or directive)."""


@dataclass
class RunRecord:
    """What a run folder says about its run."""

    path: Path
    config: Dict[str, Any]
    metrics: Dict[str, Any]
    provenance: Dict[str, Any] = field(default_factory=dict)
    probes: Dict[str, List[Dict[str, Any]]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ResultsError(f"cannot read {str(path)!r}: {' '.join(str(err).split())}") from None


def read_run(path: PathLike) -> RunRecord:
    """Read a run folder. Needs ``config.yaml``; ``metrics.json`` is optional (a run still training has none)."""
    run = Path(path)
    if not (run / "config.yaml").is_file():
        raise ResultsError(f"{str(run)!r} is not a run folder (no config.yaml)")
    try:
        config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ResultsError(f"cannot read {str(run / 'config.yaml')!r}: {' '.join(str(err).split())}") from None
    metrics = _read_json(run / "metrics.json") if (run / "metrics.json").is_file() else {}
    provenance = _read_json(run / "provenance.json") if (run / "provenance.json").is_file() else {}
    probes = {p.stem: _read_json(p) for p in sorted((run / "probes").glob("*.json"))} if (run / "probes").is_dir() \
        else {}
    return RunRecord(run, config, metrics, provenance, probes)


# ---------------------------------------------------------------------------------------------- probing checkpoints
def checkpoint_epochs(run_dir: Path, iterations_per_epoch: int) -> Dict[int, Path]:
    """``{epoch: file}`` of ``RUN/checkpoints/checkpoint_<iteration>.pt`` (epoch = iteration / iterations per epoch)."""
    found: Dict[int, Path] = {}
    for f in (run_dir / "checkpoints").glob("*.pt"):
        match = re.search(r"_(\d+)\.pt$", f.name)
        if match:
            found[-(-int(match.group(1)) // iterations_per_epoch)] = f
    return dict(sorted(found.items()))


def probe_checkpoints(run: PathLike, probe: str, params: Optional[Mapping[str, Any]] = None, *,
                      every: Optional[int] = None, epochs: Optional[Sequence[int]] = None,
                      overrides: Sequence = (), tag: str = "", control: bool = False,
                      log: Any = print) -> List[Dict[str, Any]]:
    """Run the probe protocol ``probe`` on checkpoints of ``run``; appends to ``RUN/probes/<probe>[-<tag>].json``.

    Each entry: ``epoch``, ``checkpoint``, the probe's metrics, ``seconds``, ``params``, ``overrides``. Checkpoints
    already in the file (same epoch, params and overrides) are skipped, so an interrupted call continues.

    Args:
        every: probe only epochs divisible by ``every`` (and the last checkpoint); ``epochs``: only these epochs.
        overrides: config overrides used to rebuild the model (e.g. ``[("model.options.readout_current", "dot")]``).
        tag: suffix of the output file, to keep probes of differently rebuilt models apart.
        control: also probe the untrained model (the run's config and seed, so its initial weights), as epoch 0.

    The probe's own seed (its readout's initial weights, split and minibatch order) is the run's, unless ``params``
    sets ``seed``: repeating a probe with other seeds gives the spread of its readout on the same features.
    """
    from hebbian.probes import create_probe
    from hebbian.runs import load_run

    run_dir = Path(run)
    record = read_run(run_dir)
    params = dict(params or {})
    overrides = [list(o) for o in overrides]
    if tag and not re.fullmatch(r"[A-Za-z0-9_.]+", tag):
        raise ResultsError(f"tag must be letters, digits, '_' or '.', got {tag!r}")
    batch = record.config["data"]["batch_size"]
    exp, _, _ = load_run(run_dir, [tuple(o) for o in overrides])
    per_epoch = -(-len(exp.data.train) // batch)
    found = checkpoint_epochs(run_dir, per_epoch)
    if not found:
        raise ResultsError(f"{str(run_dir)!r} has no checkpoints")
    last = max(found)
    chosen = [e for e in found if (epochs is None or e in epochs) and (every is None or e % every == 0 or e == last)]
    if control:
        chosen = [0] + chosen
    out = run_dir / "probes" / f"{probe}{'-' + tag if tag else ''}.json"
    entries: List[Dict[str, Any]] = _read_json(out) if out.is_file() else []

    done = {_entry_key(e) for e in entries}
    out.parent.mkdir(exist_ok=True)
    for epoch in chosen:
        if (epoch, _setting(params, overrides)) in done:
            continue
        if epoch == 0:  # the control: same config and seed, untrained
            from hebbian.config import resolve_config
            from hebbian.experiment import Experiment

            exp, ckpt = Experiment(resolve_config(run_dir / "config.yaml", [tuple(o) for o in overrides])), \
                Path("untrained (control)")
        else:
            exp, _, ckpt = load_run(found[epoch], [tuple(o) for o in overrides])
        start = time.perf_counter()
        seed = params.get("seed", record.config.get("seed", 0))
        engine = create_probe(probe, exp.model, seed=seed, device=exp.device,
                              **{k: v for k, v in params.items() if k != "seed"})
        metrics = engine.run(exp.eval_loader(exp.data.train), exp.eval_loader(exp.data.test))
        entry = {"epoch": epoch, "checkpoint": ckpt.name, **{k: _plain(v) for k, v in metrics.items()},
                 "seconds": round(time.perf_counter() - start, 1), "params": params, "overrides": overrides}
        history = [{k: v for k, v in h.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
                   for h in getattr(engine, "history", None) or [] if isinstance(h, Mapping)]
        if any(history):
            entry["candidates"] = history  # e.g. every beta's validation accuracy
        entries = _append_entry(out, entry)
        log(f"{run_dir.name} epoch {epoch}: " + ", ".join(f"{k} {v:.4f}" for k, v in entry.items()
                                                          if k.endswith("accuracy")))
        del engine, exp  # the probe's feature cache (e.g. 16 GB for a 57,600-feature conv net) goes before the next
        gc.collect()     # checkpoint's is built: Ignite engines hold reference cycles
    return entries


def _setting(params: Optional[Mapping[str, Any]], overrides: Optional[Sequence]) -> str:
    """A probe setting (its parameters and config overrides) as a comparable string."""
    return json.dumps([params or {}, overrides or []], sort_keys=True)


def _entry_key(entry: Mapping[str, Any]) -> Tuple[int, str]:
    """What makes a probe entry: its epoch and setting (a second entry with the same key is a repeat)."""
    return entry["epoch"], _setting(entry.get("params"), entry.get("overrides"))


def _append_entry(out: Path, entry: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Append ``entry`` to the probe file ``out`` and return its entries: under an ``flock`` of the probes folder, the
    file is read again (another process may have added entries since) and replaced atomically, so two probe processes
    on one run never drop each other's entries. An entry with the same key that another process added meanwhile is
    kept instead of this one."""
    import fcntl

    with open(out.parent / ".lock", "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        entries: List[Dict[str, Any]] = _read_json(out) if out.is_file() else []
        if all(_entry_key(e) != _entry_key(entry) for e in entries):
            entries.append(entry)
            tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
            tmp.replace(out)
    return entries


def _share(value: Any) -> str:
    """A fraction as a percentage with no decimals (``dead_units``), ``–`` when not measured."""
    return "–" if value is None else f"{100 * float(value):.0f}%"


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


# ---------------------------------------------------------------------------------------------- rendering
def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * float(value):.2f}%"


def _minutes(seconds: Any) -> str:
    if seconds is None:
        return "–"
    seconds = float(seconds)
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.2f} h"


def settings(config: Mapping[str, Any]) -> str:
    """One cell summarising what was run: model, width, rule and its parameters, epochs, batch, data limit."""
    model, rule, train, data = config.get("model", {}), config.get("rule", {}), config.get("train", {}), \
        config.get("data", {})
    baseline = rule.get("name") in BASELINES  # backprop / random weights: a rule's parameters do not apply
    params = "" if baseline else ", ".join(f"{k}={v}" for k, v in (rule.get("params") or {}).items())
    epochs = train.get("epochs")
    parts = [f"{model.get('name')} ×{model.get('width')}", f"{rule.get('name')}({params})" if params else
             str(rule.get("name")), f"{epochs} epoch{'' if epochs == 1 else 's'}, batch {data.get('batch_size')}, "
             f"lr {train.get('lr')} {train.get('schedule') or ''}".rstrip()]
    if data.get("train_limit"):
        parts.append(f"first {data['train_limit']} images")
    return "; ".join(parts)


def final_probe(record: RunRecord, protocol: str) -> Optional[Dict[str, Any]]:
    """The probe entry of the run's last probed checkpoint (the first made with the run's own seed, if any was)."""
    entries = record.probes.get(protocol) or []
    return max(entries, key=lambda e: (e["epoch"], "seed" not in (e.get("params") or {}))) if entries else None


def commit_of(record: RunRecord) -> str:
    """The short commit the run was made at, ``+`` when tracked files had uncommitted changes, ``–`` if unknown."""
    commit = str(record.provenance.get("commit", "–"))[:7]
    return commit + ("+" if record.provenance.get("dirty") else "")


def command_note(record: RunRecord) -> str:
    """```command``` (machine) of a run from its provenance.json, and the command, commit and machine of each resume."""
    from hebbian.provenance import describe_machine

    def one(made: Mapping[str, Any]) -> str:
        machine = made.get("machine")
        return f"`{made.get('command', '(no provenance.json)')}`" + (f" ({describe_machine(machine)})" if machine else "")

    resumes = [r for r in record.provenance.get("resumes") or [] if isinstance(r, Mapping)]
    return one(record.provenance) + "".join(
        f"; resumed with {one(r)} at commit {str(r.get('commit', '–'))[:7]}{'+' if r.get('dirty') else ''}"
        for r in resumes)


def _times(m: Mapping[str, Any]) -> str:
    """The train-time and wall-time cells: of every process together for a resumed run when the checkpoints carried
    the earlier processes' time (``total_train_seconds``), else of the last process, saying which epochs it ran."""
    train, wall = _minutes(m.get("train_seconds")), _minutes(m.get("wall_seconds"))
    resumes = m.get("resumes") or []
    if not resumes:
        return f"{train} | {wall}"
    if "total_train_seconds" in m:
        return f"{_minutes(m['total_train_seconds'])} (all {len(resumes) + 1} processes) | {wall} (the last process)"
    since = f"epochs {resumes[-1].get('epoch', 0) + 1}-{m.get('epochs', '?')}, after a resume"
    return f"{train} ({since}) | {wall} (the last process)"


def runs_table(records: Sequence[RunRecord]) -> str:
    """Markdown table, one row per run, and the exact command of each row under it."""
    head = ("| run | what was run | train images | result (test accuracy) | dead units | train time | wall time "
            "| commit |\n|---|---|---:|---|---:|---:|---:|---|")
    rows, commands = [head], []
    for r in records:
        m = r.metrics
        results = [f"{k.replace('_accuracy', '').replace('_', ' ')} **{_pct(v)}**" for k, v in m.items()
                   if k.endswith("test_accuracy")]
        for protocol, entries in sorted(r.probes.items()):
            last = final_probe(r, protocol)
            if last and last["epoch"] and "test_accuracy" in last:
                control = [e for e in entries if e["epoch"] == 0 and "test_accuracy" in e]
                results.append(f"{protocol} (epoch {last['epoch']}) **{_pct(last['test_accuracy'])}**" + (
                    f" (untrained control {_pct(control[-1]['test_accuracy'])})" if control else ""))
        status = "" if m else " (no metrics.json: not finished)"
        rows.append(f"| `{r.name}`{status} | {settings(r.config)} | {m.get('train_images', '–')} | "
                    f"{'; '.join(results) or '–'} | {_share(m.get('dead_units'))} | "
                    f"{_times(m)} | {commit_of(r)} |")
        commands.append(f"- `{r.name}`: {command_note(r)}")
    return "\n".join(rows) + "\n\nCommands:\n\n" + "\n".join(commands)


def curve_table(record: RunRecord, protocol: str) -> str:
    """The probe's accuracies at every probed checkpoint of one run, with the probe command(s) that made them.

    Entries made with other probe seeds (``--set seed=N``) get a seed column, and every epoch probed with several
    seeds a line with the mean, standard deviation and range of its test accuracies."""
    entries = sorted(record.probes.get(protocol) or [], key=lambda e: e["epoch"])
    if not entries:
        raise ResultsError(f"run {record.name!r} has no probes/{protocol}.json (run `python -m hebbian.results probe`)")
    run_seed = record.config.get("seed", 0)
    seeds = [(e.get("params") or {}).get("seed", run_seed) for e in entries]
    seeded = any("seed" in (e.get("params") or {}) for e in entries)
    head = "| epoch |" + (" probe seed |" if seeded else "")
    lines = [head + " train acc. | validation acc. | test acc. | choice on the validation split | probe time |",
             "|---:|" + ("---:|" if seeded else "") + "---:|---:|---:|---|---:|"]
    for e, seed in zip(entries, seeds):
        lines.append(f"| {e['epoch'] or '0 (untrained control)'} |" + (f" {seed} |" if seeded else "")
                     + f" {_pct(e.get('train_accuracy'))} | {_pct(e.get('val_accuracy'))} | "
                     f"{_pct(e.get('test_accuracy'))} | {_choice(e)} | {e.get('seconds', 0):.0f} s |")
    text = "\n".join(lines) + _seed_spread(entries, seeds)
    groups: Dict[str, List[Dict[str, Any]]] = {}
    for e in entries:  # one command per probe setting (params and overrides), in the order first made
        groups.setdefault(_setting(e.get("params"), e.get("overrides")), []).append(e)
    commands = [probe_command_of(record, protocol, group) for group in groups.values()]
    label = "Probe command" if len(commands) == 1 else "Probe commands"
    return text + f"\n\n{label}: " + "; ".join(commands)


def _seed_spread(entries: Sequence[Mapping[str, Any]], seeds: Sequence[Any]) -> str:
    """A line per epoch probed with several seeds (the first entry of each seed): the test accuracies' mean, sample
    standard deviation and range."""
    out = []
    for epoch in sorted({e["epoch"] for e in entries}):
        by_seed: Dict[Any, float] = {}
        for e, seed in zip(entries, seeds):
            if e["epoch"] == epoch and "test_accuracy" in e:
                by_seed.setdefault(seed, e["test_accuracy"])
        accs = list(by_seed.values())
        if len(accs) > 1:
            out.append(f"Epoch {epoch or '0 (control)'}, {len(accs)} probe seeds: test accuracy "
                       f"{_pct(statistics.mean(accs))} ± {100 * statistics.stdev(accs):.2f} points (sample sd), "
                       f"from {_pct(min(accs))} to {_pct(max(accs))}.")
    return ("\n\n" + "\n".join(out)) if out else ""


def probe_command_of(record: RunRecord, protocol: str, entries: Sequence[Mapping[str, Any]]) -> str:
    """The ``hebbian.results probe`` command that makes ``entries`` (one probe setting)."""
    params, overrides = entries[-1].get("params") or {}, entries[-1].get("overrides") or []
    args = [f"--set {shlex.quote(k + '=' + json.dumps(v).replace(' ', ''))}" for k, v in params.items()]
    args += [f"--config {k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in overrides]  # None -> null
    name, _, tag = protocol.partition("-")
    args += [f"--tag {tag}"] if tag else []
    args += ["--control"] if any(e["epoch"] == 0 for e in entries) else []
    probed = [e["epoch"] for e in entries if e["epoch"]]
    args += [f"--epochs {','.join(map(str, probed))}"] if probed else []
    return f"`python -m hebbian.results probe runs/{record.name} --probe {name}{' ' + ' '.join(args) if args else ''}`"


def compare_table(record: RunRecord) -> str:
    """The per-method table of a ``hebbian compare`` folder, with its command, commit and machine."""
    from hebbian.comparison import read_csv, summarize, summary_markdown

    csv_path = record.path / "results.csv"
    if not csv_path.is_file():
        raise ResultsError(f"{str(record.path)!r} is not a finished comparison (no results.csv)")
    rows = read_csv(csv_path)
    if not rows:
        raise ResultsError(f"{str(csv_path)!r} has no rows")
    methods = list(dict.fromkeys(r["rule"] for r in rows))
    seeds = len({r["seed"] for r in rows})
    return (summary_markdown(summarize(rows, methods), seeds).rstrip("\n")
            + f"\n\nRun `{record.name}` at commit {commit_of(record)}: {command_note(record)}")


def _choice(entry: Mapping[str, Any]) -> str:
    """What the protocol chose (e.g. ``beta 10 at readout epoch 28``) and every candidate's validation accuracy."""
    chosen = ", ".join(f"{k.replace('_', ' ')} {entry[k]:g}" for k in ("beta", "l2", "readout_epoch") if k in entry)
    candidates = entry.get("candidates") or []
    if len(candidates) > 1:
        chosen += " (" + ", ".join(f"{next((f'{k} {c[k]:g}' for k in ('beta', 'l2') if k in c), '?')}: "
                                   f"{_pct(c.get('val_accuracy'))}" for c in candidates) + ")"
    return chosen or "–"


def render(template: str, records: Sequence[RunRecord], source: str = "", base: Optional[Path] = None) -> str:
    """Replace every directive line of ``template`` by its generated block (``include`` paths relative to
    ``base``, default the current folder)."""
    by_name = {r.name: r for r in records}

    def get(name: str, line: int) -> RunRecord:
        if name not in by_name:
            raise ResultsError(f"template line {line}: run folder {name!r} was not given (have: "
                               f"{', '.join(sorted(by_name)) or 'none'})")
        return by_name[name]

    out = []
    for i, line in enumerate(template.splitlines(), 1):
        match = DIRECTIVE.match(line.strip())
        if not match:
            out.append(line)
            continue
        kind, args = match.group(1), match.group(2).split()
        if kind == "runs":
            out.append(runs_table([get(a, i) for a in args]))
        elif kind == "include":
            path = (base or Path(".")) / match.group(2)
            if not path.is_file():
                raise ResultsError(f"template line {i}: cannot include {str(path)!r}: no such file")
            out.append(path.read_text(encoding="utf-8").rstrip("\n"))
        elif kind == "compare":
            if len(args) != 1:
                raise ResultsError(f"template line {i}: 'compare:' takes one comparison folder name, got {args}")
            out.append(compare_table(get(args[0], i)))
        else:
            if len(args) != 2:
                raise ResultsError(f"template line {i}: 'curve:' takes a run name and a probe protocol, got {args}")
            out.append(curve_table(get(args[0], i), args[1]))
    header = f"<!-- generated by {source or 'hebbian.results'}; edit the template, not this file -->\n"
    return header + "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------- command line
def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def add_render_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", help="run folders")
    p.add_argument("--template", default=None, help="Markdown template with <!-- runs: ... --> / <!-- curve: ... -->"
                   " directives (default: one table of all runs)")
    p.add_argument("--out", default=None, help="write here (default: print)")


def render_command(args: argparse.Namespace) -> int:
    records = [read_run(r) for r in args.runs]
    if args.template:
        template = Path(args.template).read_text(encoding="utf-8")
        text = render(template, records, f"hebbian results ... --template {args.template}",
                      base=Path(args.template).parent)
    else:
        text = runs_table(records) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hebbian.results", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("render", help="render tables from run folders")
    add_render_arguments(p)
    p.set_defaults(func=render_command)
    p = sub.add_parser("probe", help="run a probe protocol on a run's checkpoints (RUN/probes/PROTOCOL.json)")
    p.add_argument("run")
    p.add_argument("--probe", required=True, help="probe protocol (hebbian.probes.list_probes())")
    p.add_argument("--every", type=int, default=None, help="only epochs divisible by this (and the last)")
    p.add_argument("--epochs", default=None, help="only these epochs, comma-separated")
    p.add_argument("--set", dest="params", action="append", default=[], metavar="KEY=VALUE",
                   help="probe parameter (JSON value), repeatable")
    p.add_argument("--config", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="run-config override used to rebuild the model, repeatable")
    p.add_argument("--tag", default="", help="output file suffix: RUN/probes/PROTOCOL-TAG.json")
    p.add_argument("--control", action="store_true", help="also probe the untrained model (epoch 0)")
    p.set_defaults(func=_probe_command)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ResultsError as err:
        print(f"hebbian.results: error: {err}", file=sys.stderr)
        return 2


def _pairs(items: Sequence[str]) -> Dict[str, Any]:
    out = {}
    for item in items:
        if "=" not in item:
            raise ResultsError(f"expected KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key] = _parse_value(value)
    return out


def _probe_command(args: argparse.Namespace) -> int:
    epochs = [int(e) for e in args.epochs.split(",")] if args.epochs else None
    probe_checkpoints(args.run, args.probe, _pairs(args.params), every=args.every, epochs=epochs,
                      overrides=list(_pairs(args.overrides).items()), tag=args.tag, control=args.control)
    return 0


if __name__ == "__main__":
    sys.exit(main())
