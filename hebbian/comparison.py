"""Several methods on the same data, seeds and initial weights, each against its own untrained control.

:func:`compare` runs every method with every seed as :func:`hebbian.runs.run` in ``OUT/<method>/seed<s>/`` (config,
metrics, checkpoint, filters, TensorBoard logs with the run's hyperparameters for the HParams dashboard; the
comparison's folder declares that dashboard's table: :func:`declare_hparams`) and leaves

* ``OUT/results.csv``: one row per method and seed (every measured value);
* ``OUT/results.md``: one row per method, mean ± standard deviation over the seeds of the probe's test accuracy, the
  control's, the gain over the control, the network's own test accuracy, the weight change and the dead units;
* ``OUT/comparison.png``: the accuracies with their spread, and the first Hebbian layer of every method (first seed).

A method's *control* is the same model with the same initial weights, not trained, read out by the same probe
(:meth:`hebbian.experiment.Experiment.control`); the *gain* is the difference of the two test accuracies, per seed.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from hebbian.config import BASELINES, Config, method_config
from hebbian.errors import ConfigError, UsageError

#: Per-seed values averaged in the summary: (metrics key, header, scale, decimals).
SUMMARY_COLUMNS: Tuple[Tuple[str, str, float, int], ...] = (
    ("probe_test_accuracy", "probe test acc. (%)", 100.0, 2),
    ("control_probe_test_accuracy", "control (%)", 100.0, 2),
    ("probe_gain", "gain (points)", 100.0, 2),
    ("test_accuracy", "network test acc. (%)", 100.0, 2),
    ("weight_change", "weight change", 1.0, 3),
    ("dead_units", "dead units (%)", 100.0, 1),
    ("train_seconds", "train time (s)", 1.0, 1),
)

#: Columns of results.csv (one row per method and seed).
CSV_COLUMNS: Tuple[str, ...] = (
    "rule", "kind", "seed", "probe_test_accuracy", "probe_val_accuracy", "probe_train_accuracy",
    "control_probe_test_accuracy", "control_probe_val_accuracy", "probe_gain", "test_accuracy", "weight_change",
    "dead_units", "epochs", "train_seconds", "probe_seconds", "wall_seconds", "diverged",
)


def check_methods(methods: Sequence[str]) -> List[str]:
    """The methods, checked against the registered rules and the baselines (an unknown one lists the known ones).

    Raises:
        UsageError: an unknown method, or none at all.
    """
    from hebbian.rules import get_rule_info, list_rules

    known = list_rules() + list(BASELINES)
    out = []
    for m in methods:
        if m in BASELINES:
            out.append(m)
            continue
        try:
            out.append(get_rule_info(m).name)
        except KeyError:
            raise UsageError(f"unknown rule {m!r} in --rules; known rules: {', '.join(known)}") from None
    if not out:
        raise UsageError("no methods to compare: give --rules or set compare.rules in the config")
    return out


def seeds_of(base: Config) -> List[int]:
    """``seed, seed + 1, ..., seed + compare.seeds - 1``."""
    return [base["seed"] + i for i in range(base["compare"]["seeds"])]


def method_configs(base: Config, methods: Sequence[str], overrides: Sequence[Tuple[str, Any]]
                   ) -> Dict[Tuple[str, int], Config]:
    """``{(method, seed): config}``, every one checked (model, rule hyperparameters, optimizer, probe) before
    anything runs.

    Raises:
        UsageError: naming the method and the config key.
    """
    from hebbian.experiment import check_config

    configs = {}
    for method in methods:
        cfg = method_config(base, method, overrides)
        try:
            check_config(cfg)
        except ConfigError as err:
            raise UsageError(f"method {method!r}: {err}") from None
        for seed in seeds_of(base):
            configs[(method, seed)] = {**cfg, "seed": seed}
    return configs


def check_comparison_folder(out: Path) -> None:
    """A comparison writes into a new or empty folder, or over an earlier comparison of hebbian's (its methods'
    folders are then refused unless ``overwrite``), never into a folder of someone else's files.

    Raises:
        UsageError: ``out`` holds files that are not a hebbian comparison (naming a few).
    """
    from hebbian.runs import RunFolder

    out = Path(out)
    if not out.is_dir() or not any(out.iterdir()) or RunFolder(out).is_hebbian_run():
        return
    names = sorted(p.name for p in out.iterdir())
    raise UsageError(f"{str(out)!r} holds files that are not a hebbian comparison ({', '.join(names[:4])}"
                     f"{', ...' if len(names) > 4 else ''}); choose another --out")


@dataclass
class Comparison:
    """What :func:`compare` produced: per-seed rows, the per-method summary and the files written."""

    out: Path
    rows: List[Dict[str, Any]]
    summary: List[Dict[str, Any]]
    files: Dict[str, Path] = field(default_factory=dict)
    markdown: str = ""


def compare(base: Config, methods: Sequence[str], out: Path, overrides: Sequence[Tuple[str, Any]] = (),
            *, echo: Any = print, overwrite: bool = False) -> Comparison:
    """Run every method with every seed of ``base`` (see the module docstring) into ``out``.

    Args:
        base: the resolved comparison config (``compare.seeds``, ``recipes``).
        methods: methods to run (:func:`check_methods`).
        out: the comparison folder (created).
        overrides: command-line overrides, applied after each method's recipe.
        echo: called with one progress line per finished run.
        overwrite: replace the runs that ``out/<method>/seed<s>`` already hold (else such a folder is refused).
    """
    from hebbian.config import dump
    from hebbian.experiment import load_data, progress_bars
    from hebbian.provenance import provenance
    from hebbian.runs import RunFolder, prepare_run_dir, run, write_atomic

    configs = method_configs(base, methods, overrides)
    seeds = seeds_of(base)
    first = load_data(base, seeds[0])  # bad data is refused before anything is written
    check_comparison_folder(out)
    out = prepare_run_dir(out)
    config_text = dump({**base, "out": None})  # not pinned: `hebbian compare OUT/config.yaml` starts anew
    RunFolder(out).write_marker(uuid.uuid4().hex, config_text)
    write_atomic(out / "config.yaml", config_text)
    write_atomic(out / "provenance.json", json.dumps(provenance(base.get("device")), indent=2) + "\n")
    if any(cfg["log"]["tensorboard"] for cfg in configs.values()):
        declare_hparams(configs, out)
    rows: List[Dict[str, Any]] = []
    weights: Dict[str, torch.Tensor] = {}
    input_shape: Sequence[int] = ()
    total, done = len(configs), 0
    for seed in seeds:
        shared = first if seed == seeds[0] else load_data(base, seed)
        input_shape = shared.input_shape
        for method in methods:
            cfg = configs[(method, seed)]
            if cfg["log"]["progress"] is None and not progress_bars(None):  # no terminal: the line per run below
                cfg = {**cfg, "log": {**cfg["log"], "progress": False}}
            done += 1
            data = shared if cfg["data"] == base["data"] else None
            exp = run(cfg, out / method / f"seed{seed}", data=data, desc=f"[{done}/{total}] {method} seed {seed}",
                      overwrite=overwrite)
            rows.append({**exp.metrics, "seed": seed})
            weights.setdefault(method, exp.first_layer_weight())
            echo(progress_line(done, total, method, seed, exp.metrics))
    summary = summarize(rows, methods)
    result = Comparison(out, rows, summary)
    result.files["csv"] = write_csv(rows, out / "results.csv")
    result.markdown = summary_markdown(summary, len(seeds_of(base)))
    result.files["md"] = out / "results.md"
    write_atomic(result.files["md"], result.markdown)
    result.files["png"] = comparison_figure(summary, weights, input_shape, out / "comparison.png",
                                            seed=seeds_of(base)[0])
    return result


def declare_hparams(configs: Mapping[Tuple[str, int], Config], out: Path) -> None:
    """TensorBoard's HParams table of the comparison, declared in ``out`` before its trials run: method and seed
    first, then what else varies across the trials; the constant settings as a text table
    (:func:`hebbian.visualizers.hparams.declare_comparison`)."""
    from hebbian.experiment import method_kind
    from hebbian.runs import hparams_of
    from hebbian.visualizers.hparams import declare_comparison

    declare_comparison(out, [hparams_of(cfg, method_kind(cfg)) for cfg in configs.values()])


def progress_line(done: int, total: int, method: str, seed: int, metrics: Mapping[str, Any]) -> str:
    """``[3/24] krotov  seed 0  probe 91.2%  control 80.1%  (1.4 s)``."""
    parts = [f"[{done}/{total}] {method:<16} seed {seed}"]
    for key, label in (("probe_test_accuracy", "probe"), ("control_probe_test_accuracy", "control"),
                       ("test_accuracy", "network")):
        if metrics.get(key) is not None:
            parts.append(f"{label} {100 * metrics[key]:.1f}%")
    parts.append(f"({metrics['wall_seconds']:.1f} s)")
    if metrics.get("diverged"):
        parts.append("DIVERGED")
    return "  ".join(parts)


def mean_std(values: Sequence[float]) -> Tuple[float, Optional[float]]:
    """Mean and sample standard deviation (``None`` for a single value)."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def summarize(rows: Sequence[Mapping[str, Any]], methods: Sequence[str]) -> List[Dict[str, Any]]:
    """One entry per method: ``{"rule", "kind", "seeds", "diverged", key: (mean, std) for SUMMARY_COLUMNS}``."""
    summary = []
    for method in methods:
        mine = [r for r in rows if r["rule"] == method]
        entry: Dict[str, Any] = {"rule": method, "kind": mine[0]["kind"], "seeds": len(mine),
                                 "diverged": sum(1 for r in mine if r.get("diverged"))}
        for key, *_ in SUMMARY_COLUMNS:
            values = [float(r[key]) for r in mine if r.get(key) is not None]
            entry[key] = mean_std(values) if values else None
        summary.append(entry)
    return summary


def _cell(value: Optional[Tuple[float, Optional[float]]], scale: float, decimals: int) -> str:
    if value is None:
        return ""
    mean, std = value
    text = f"{scale * mean:.{decimals}f}"
    return text if std is None else f"{text} ± {scale * std:.{decimals}f}"


def summary_markdown(summary: Sequence[Mapping[str, Any]], n_seeds: int) -> str:
    """The per-method table (mean ± standard deviation over ``n_seeds`` seeds)."""
    header = ["method", "kind"] + [h for _, h, _, _ in SUMMARY_COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * len(SUMMARY_COLUMNS)]
    for s in summary:
        name = s["rule"] + (f" (diverged in {s['diverged']} of {s['seeds']})" if s["diverged"] else "")
        cells = [_cell(s[k], scale, d) for k, _, scale, d in SUMMARY_COLUMNS]
        lines.append("| " + " | ".join([name, s["kind"]] + cells) + " |")
    seeds = f"{n_seeds} seed{'s' if n_seeds > 1 else ''}" + (" (mean ± standard deviation)" if n_seeds > 1 else "")
    return "\n".join(lines) + f"\n\n{seeds}; control: the same model and initial weights, untrained, same probe.\n"


def read_csv(path: Path) -> List[Dict[str, Any]]:
    """The rows :func:`write_csv` wrote: empty cells ``None``, ``seed`` an int, ``diverged`` a bool, numbers floats."""
    rows = []
    with path.open(newline="", encoding="utf-8") as f:
        for raw in csv.DictReader(f):
            row: Dict[str, Any] = {}
            for key, text in raw.items():
                if text == "" or text is None:
                    row[key] = None
                elif key in ("rule", "kind"):
                    row[key] = text
                elif key == "diverged":
                    row[key] = text == "True"
                elif key in ("seed", "epochs"):
                    row[key] = int(text)
                else:
                    row[key] = float(text)
            rows.append(row)
    return rows


def write_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """One line per method and seed with the raw values of :data:`CSV_COLUMNS`."""
    from hebbian.files import atomic_path

    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            writer.writerow(["" if r.get(k) is None else r.get(k) for k in CSV_COLUMNS])
    return path


def comparison_figure(summary: Sequence[Mapping[str, Any]], weights: Mapping[str, torch.Tensor],
                      input_shape: Sequence[int], path: Path, max_filters: int = 100, *, seed: Optional[int] = None
                      ) -> Path:
    """One PNG (:func:`comparison_plot`)."""
    from hebbian.visualizers import save_figure

    return save_figure(comparison_plot(summary, weights, input_shape, max_filters, seed=seed), path)


def comparison_plot(summary: Sequence[Mapping[str, Any]], weights: Mapping[str, torch.Tensor],
                    input_shape: Sequence[int], max_filters: int = 100, *, seed: Optional[int] = None) -> Any:
    """The figure: probe and control accuracy per method with their spread (the legend above the bars, clear of
    them), above every method's first Hebbian layer, each panel titled with the seed whose run it shows."""
    # plot_filters first: without a display its module chooses Agg; a backend the user chose (a notebook's inline
    # one) is never switched, so that figures drawn after a comparison still show
    from hebbian.visualizers import plot_filters
    import matplotlib.pyplot as plt

    ncols = min(len(weights), 6)
    nrows = -(-len(weights) // ncols)
    fig = plt.figure(figsize=(3.0 * ncols, 3.4 + 3.2 * nrows))
    grid = fig.add_gridspec(nrows + 1, ncols, height_ratios=[1.4] + [1.0] * nrows)
    ax = fig.add_subplot(grid[0, :])
    xs = list(range(len(summary)))
    bars = (("probe_test_accuracy", "probe (trained)", -0.27), ("control_probe_test_accuracy", "control (untrained)",
                                                                 0.0), ("test_accuracy", "network (end to end)", 0.27))
    for key, label, offset in bars:
        means = [100 * s[key][0] if s.get(key) else math.nan for s in summary]
        stds = [100 * (s[key][1] or 0.0) if s.get(key) else 0.0 for s in summary]
        ax.bar([x + offset for x in xs], means, width=0.27, yerr=stds, capsize=2, label=label)
    ax.set_xticks(xs, [s["rule"] for s in summary], rotation=30, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize="small", loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=len(bars), frameon=False)
    ax.set_title("Test accuracy per method: trained vs its untrained control (error bars: std over seeds)", pad=22)
    shown = "" if seed is None else f" (seed {seed})"
    for i, (name, weight) in enumerate(weights.items()):
        sub = fig.add_subplot(grid[1 + i // ncols, i % ncols])
        plot_filters(weight, input_shape if weight.dim() == 2 else None, max_filters, ax=sub, title=name + shown)
    fig.tight_layout()
    return fig
