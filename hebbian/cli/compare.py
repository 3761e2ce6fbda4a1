"""``hebbian compare``: several methods on the same data, seed and data order; a table and one comparison figure.

Each method runs as :func:`hebbian.runs.run` in ``OUT/<method>/`` (its config, metrics, checkpoint, filters
and TensorBoard logs; ``tensorboard --logdir OUT`` shows them side by side). ``OUT/results.csv`` and
``OUT/results.md`` hold the table, ``OUT/comparison.png`` the accuracy per method and the learned filters of each.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from hebbian.config import method_config, resolve_config, save
from hebbian.errors import ConfigError, UsageError
from hebbian.cli.main import flag_overrides

#: Columns of the results table: (key in the metrics, header).
COLUMNS: Tuple[Tuple[str, str], ...] = (
    ("rule", "method"),
    ("kind", "kind"),
    ("probe_test_accuracy", "probe test acc. (%)"),
    ("test_accuracy", "network test acc. (%)"),
    ("epochs", "epochs"),
    ("train_seconds", "train time (s)"),
    ("wall_seconds", "wall time (s)"),
    ("note", "note"),
)


def check_methods(methods: Sequence[str]) -> List[str]:
    """The methods, checked against the registered rules and the baselines (an unknown one lists the known ones)."""
    from hebbian.config import BASELINES
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


def _cell(key: str, value: Any) -> str:
    if value is None or value == "":
        return ""
    if key.endswith("accuracy"):
        return f"{100 * value:.2f}"
    if key.endswith("seconds"):
        return f"{value:.1f}"
    return str(value)


def write_tables(rows: Sequence[Mapping[str, Any]], out: Path) -> Tuple[Path, Path, str]:
    """``results.csv`` (raw values) and ``results.md`` (percent, seconds); returns both paths and the Markdown."""
    csv_path, md_path = out / "results.csv", out / "results.md"
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([k for k, _ in COLUMNS])
        for r in rows:
            writer.writerow(["" if r.get(k) is None else r.get(k) for k, _ in COLUMNS])
    header = "| " + " | ".join(h for _, h in COLUMNS) + " |"
    rule = "|" + "|".join("---:" if k.endswith(("accuracy", "seconds", "epochs")) else "---" for k, _ in COLUMNS) + "|"
    lines = [header, rule] + ["| " + " | ".join(_cell(k, r.get(k)) for k, _ in COLUMNS) + " |" for r in rows]
    markdown = "\n".join(lines) + "\n"
    md_path.write_text(markdown, encoding="utf-8")
    return csv_path, md_path, markdown


def comparison_figure(rows: Sequence[Mapping[str, Any]], weights: Mapping[str, Any], input_shape: Sequence[int],
                      path: Path, max_filters: int = 100) -> Path:
    """One PNG: accuracy per method (bars) above the learned filters of every method side by side."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from hebbian.visualizers import plot_filters, save_figure

    ncols = min(len(weights), 6)
    nrows = -(-len(weights) // ncols)
    fig = plt.figure(figsize=(3.0 * ncols, 3.2 + 3.2 * nrows))
    grid = fig.add_gridspec(nrows + 1, ncols, height_ratios=[1.3] + [1.0] * nrows)
    ax = fig.add_subplot(grid[0, :])
    names = [r["rule"] for r in rows]
    probe = [100 * (r.get("probe_test_accuracy") or 0.0) for r in rows]
    network = [100 * r["test_accuracy"] if r.get("test_accuracy") is not None else 0.0 for r in rows]
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], probe, width=0.4, label="linear probe")
    ax.bar([x + 0.2 for x in xs], network, width=0.4, label="network (end to end)")
    for x, value in zip(xs, probe):
        ax.text(x - 0.2, value + 1, f"{value:.1f}", ha="center", fontsize=7)
    ax.set_xticks(list(xs), names, rotation=30, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize="small", loc="lower right")
    ax.set_title("Test accuracy per method (same data, seed and data order)")
    for i, (name, weight) in enumerate(weights.items()):
        sub = fig.add_subplot(grid[1 + i // ncols, i % ncols])
        shape = input_shape if weight.dim() == 2 else None
        plot_filters(weight, shape, max_filters, ax=sub, title=name)
    fig.tight_layout()
    return save_figure(fig, path)


def compare(args: argparse.Namespace) -> int:
    """``hebbian compare [CONFIG] [--rules a,b,...]``."""
    from hebbian.experiment import check_config, load_data
    from hebbian.runs import default_run_dir, prepare_run_dir, run

    overrides = flag_overrides(args)
    base = resolve_config(args.config, overrides)
    methods = check_methods(args.rules or base["compare"]["rules"] or [base["rule"]["name"]])
    configs = {m: method_config(base, m, overrides) for m in methods}
    for method, cfg in configs.items():  # every method is checked before anything runs
        try:
            check_config(cfg)
        except ConfigError as err:
            raise UsageError(f"method {method!r}: {err}") from None
    out = prepare_run_dir(default_run_dir(base, stem=f"compare-{base['data']['name']}"))
    save({**base, "out": None}, out / "config.yaml")  # not pinned: `hebbian compare OUT/config.yaml` starts anew
    shared = load_data(base)
    rows: List[Dict[str, Any]] = []
    weights: Dict[str, Any] = {}
    for i, method in enumerate(methods, 1):
        cfg = configs[method]
        cfg["out"] = str(out / method)
        data = shared if cfg["data"] == base["data"] else None
        exp = run(cfg, out / method, data=data, desc=f"[{i}/{len(methods)}] {method}",
                  overwrite=getattr(args, "overwrite", False))
        row = dict(exp.metrics)
        if row.get("diverged"):
            row["note"] = f"diverged in epoch {row['epochs']} (non-finite update); last finite weights evaluated"
        rows.append(row)
        weights[method] = exp.first_layer_weight()
        acc = exp.metrics.get("probe_test_accuracy", exp.metrics.get("test_accuracy"))
        shown = "" if acc is None else f"{100 * acc:.2f}%"
        print(f"[{i}/{len(methods)}] {method:<16} {shown:>7}  ({exp.metrics['wall_seconds']:.1f} s)", flush=True)
    csv_path, md_path, markdown = write_tables(rows, out)
    figure = comparison_figure(rows, weights, shared.input_shape, out / "comparison.png")
    print()
    print(markdown, end="")
    print(f"\n{out}: {csv_path.name}, {md_path.name}, {figure.name}, <method>/tb (tensorboard --logdir {out})")
    return 0
