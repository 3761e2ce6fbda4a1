"""The generated blocks of a results page: the runs table, a probe's curve over checkpoints, a comparison's table,
each with the exact commands that made its numbers."""

from __future__ import annotations

import json
import shlex
import statistics
from typing import Any, Dict, List, Mapping, Optional, Sequence

from hebbian.config import BASELINES
from hebbian.results.cells import DIVERGED, finite, minutes, number, pct, seconds, share
from hebbian.results.records import ResultsError, RunRecord, setting


def settings(config: Mapping[str, Any]) -> str:
    """One cell summarising what was run: model, width, rule and its parameters, epochs, batch, data limit."""
    model, rule, train, data = (config.get(k) or {} for k in ("model", "rule", "train", "data"))
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
        command = f"`{made.get('command', '(no provenance.json)')}`"
        return command + (f" ({describe_machine(machine)})" if machine else "")

    resumes = [r for r in record.provenance.get("resumes") or [] if isinstance(r, Mapping)]
    return one(record.provenance) + "".join(
        f"; resumed with {one(r)} at commit {str(r.get('commit', '–'))[:7]}{'+' if r.get('dirty') else ''}"
        for r in resumes)


def _times(m: Mapping[str, Any]) -> str:
    """The train-time and wall-time cells. A resumed run trained in segments (its first start and each resume):
    the train time is of all segments together when the checkpoints carried the earlier segments' time
    (``total_train_seconds``), else of the last segment, saying which epochs it ran; the wall time is the last
    segment's. A data-parallel run (``processes`` > 1) says in how many processes it trained."""
    resumes, processes = m.get("resumes") or [], m.get("processes") or 1
    train, wall = minutes(m.get("train_seconds")), minutes(m.get("wall_seconds"))
    notes = []
    if resumes and "total_train_seconds" in m:
        train = minutes(m["total_train_seconds"])
        notes.append(f"{len(resumes) + 1} segments: resumed {_times_word(len(resumes))}")
    elif resumes:
        notes.append(f"epochs {resumes[-1].get('epoch', 0) + 1}-{m.get('epochs', '?')}, after a resume")
    if processes > 1:
        notes.append(f"{'the last segment ' if resumes else ''}in {processes} processes")
    train += f" ({'; '.join(notes)})" if notes else ""
    return f"{train} | {wall}{' (the last segment)' if resumes else ''}"


def _times_word(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _row_names(records: Sequence[RunRecord]) -> List[str]:
    """Each row's name: the run's name, with as many parent folders as it takes to tell apart runs of the same name
    (e.g. two comparisons' ``krotov/seed0``)."""
    names = [r.name for r in records]
    depth = [name.count("/") + 1 for name in names]
    while True:
        clash = [i for i, name in enumerate(names) if names.count(name) > 1 and depth[i] < len(records[i].path.parts)]
        if not clash:  # all told apart (or the same folder given twice)
            break
        for i in clash:
            depth[i] += 1
            names[i] = "/".join(records[i].path.parts[-depth[i]:])
    return names


def table_rows(records: Sequence[RunRecord]) -> List[RunRecord]:
    """The runs of the table: each run, and for a comparison folder each of its runs (method and seed)."""
    return [row for r in records for row in (r.runs or [r])]


def _results(r: RunRecord) -> str:
    """The result cell: every test accuracy of metrics.json, and each probe's at the last probed checkpoint."""
    results = [f"{k.replace('_accuracy', '').replace('_', ' ')} **{pct(v)}**" for k, v in r.metrics.items()
               if k.endswith("test_accuracy")]
    for protocol, entries in sorted(r.probes.items()):
        last = final_probe(r, protocol)
        if last and last["epoch"] and "test_accuracy" in last:
            control = [e for e in entries if e["epoch"] == 0 and "test_accuracy" in e]
            results.append(f"{protocol} (epoch {last['epoch']}) **{pct(last['test_accuracy'])}**" + (
                f" (untrained control {pct(control[-1]['test_accuracy'])})" if control else ""))
    return "; ".join(results) or "–"


def _status(m: Mapping[str, Any]) -> str:
    """What the run cell says besides the name: not finished, or diverged."""
    if not m:
        return " (no metrics.json: not finished)"
    return f" ({DIVERGED} in epoch {m.get('epochs', '?')})" if m.get("diverged") else ""


def runs_table(records: Sequence[RunRecord]) -> str:
    """Markdown table, one row per run (a comparison folder: one per method and seed), and the exact command of each
    row under it."""
    head = ("| run | what was run | train images | result (test accuracy) | dead units | train time | wall time "
            "| commit |\n|---|---|---:|---|---:|---:|---:|---|")
    rows, commands = [head], []
    runs = table_rows(records)
    for r, name in zip(runs, _row_names(runs)):
        m = r.metrics
        rows.append(f"| `{name}`{_status(m)} | {settings(r.config)} | {m.get('train_images', '–')} | "
                    f"{_results(r)} | {share(m.get('dead_units'))} | {_times(m)} | {commit_of(r)} |")
        commands.append(f"- `{name}`: {command_note(r)}")
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
                     + f" {pct(e.get('train_accuracy'))} | {pct(e.get('val_accuracy'))} | "
                     f"{pct(e.get('test_accuracy'))} | {_choice(e)} | {seconds(e.get('seconds', 0))} |")
    text = "\n".join(lines) + _seed_spread(entries, seeds)
    groups: Dict[str, List[Dict[str, Any]]] = {}
    for e in entries:  # one command per probe setting (params and overrides), in the order first made
        groups.setdefault(setting(e.get("params"), e.get("overrides")), []).append(e)
    commands = [probe_command_of(record, protocol, group) for group in groups.values()]
    label = "Probe command" if len(commands) == 1 else "Probe commands"
    return text + f"\n\n{label}: " + "; ".join(commands)


def _seed_spread(entries: Sequence[Mapping[str, Any]], seeds: Sequence[Any]) -> str:
    """A line per epoch probed with several seeds (the first entry of each seed): the finite test accuracies' mean,
    sample standard deviation and range, and how many seeds diverged."""
    out = []
    for epoch in sorted({e["epoch"] for e in entries}):
        by_seed: Dict[Any, Any] = {}
        for e, seed in zip(entries, seeds):
            if e["epoch"] == epoch and e.get("test_accuracy") is not None:
                by_seed.setdefault(seed, e["test_accuracy"])
        accs = [a for a in by_seed.values() if finite(a) is not None]
        diverged = len(by_seed) - len(accs)
        if len(by_seed) < 2:
            continue
        line = f"Epoch {epoch or '0 (control)'}, {len(by_seed)} probe seeds: "
        if len(accs) > 1:
            line += (f"test accuracy {pct(statistics.mean(accs))} ± {100 * statistics.stdev(accs):.2f} points "
                     f"(sample sd), from {pct(min(accs))} to {pct(max(accs))}")
        else:
            line += f"test accuracy {pct(accs[0]) if accs else DIVERGED}"
        out.append(line + (f"; {diverged} {DIVERGED}." if diverged else "."))
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
    try:
        rows = read_csv(csv_path)
    except (OSError, ValueError, TypeError) as err:  # a damaged file: a number that is not one, binary data
        raise ResultsError(f"cannot read {str(csv_path)!r}: {' '.join(str(err).split())}") from None
    if not rows:
        raise ResultsError(f"{str(csv_path)!r} has no rows")
    if any(r.get("rule") is None or r.get("seed") is None for r in rows):
        raise ResultsError(f"{str(csv_path)!r}: every row must name its 'rule' and 'seed' (written by hebbian compare)")
    methods = list(dict.fromkeys(r["rule"] for r in rows))
    table = summary_markdown(summarize(rows, methods), len({r["seed"] for r in rows})).rstrip("\n")
    return table + f"\n\nRun `{record.name}` at commit {commit_of(record)}: {command_note(record)}"


def _choice(entry: Mapping[str, Any]) -> str:
    """What the protocol chose (e.g. ``beta 10 at readout epoch 28``) and every candidate's validation accuracy."""
    chosen = ", ".join(f"{k.replace('_', ' ')} {number(entry[k])}" for k in ("beta", "l2", "readout_epoch")
                       if entry.get(k) is not None)
    candidates = entry.get("candidates") or []
    if len(candidates) > 1:
        chosen += " (" + ", ".join(f"{next((f'{k} {number(c[k])}' for k in ('beta', 'l2') if k in c), '?')}: "
                                   f"{pct(c.get('val_accuracy'))}" for c in candidates) + ")"
    return chosen or "–"
