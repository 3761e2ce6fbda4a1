"""A probe's choice among its candidate settings, as a table in TensorBoard's Text tab.

A probe such as :class:`~hebbian.probes.LogisticProbe` runs one engine iteration per candidate setting (the L2
strengths of its grid, strongest first; :class:`~hebbian.probes.KrotovHopfieldProbe`'s ``beta`` values) and keeps the
best on validation. Plotted as scalars, those iterations put the grid index (1, 2, ...) on TensorBoard's step axis,
where a reader expects training time. :func:`attach_probe_table` writes them instead as one Markdown table per probe
run (tag ``<tag>/selection``, step = the training epoch whose weights were probed): one row per candidate with its
validation accuracy (and its accuracy on the part of the training data it was fitted on), the chosen one marked, and
the chosen setting's test accuracy.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Union

from ignite.engine import Engine, Events

#: How a probe's candidate setting is named in the table: output key -> column title.
SETTING_NAMES: Dict[str, str] = {"l2": "L2 strength λ", "beta": "β"}

#: Columns after the setting: output key -> title (those the probe reports).
COLUMNS: Dict[str, str] = {"val_accuracy": "validation acc. (%)", "train_accuracy": "fit-part acc. (%)",
                           "epoch": "best readout epoch", "iterations": "L-BFGS iterations", "converged": "converged"}


def selection_table(rows: List[Mapping[str, Any]], chosen: Mapping[str, Any]) -> str:
    """Markdown: one row per candidate of ``rows`` (each probe iteration's output), the one equal to ``chosen``'s
    setting (the probe's final metrics) marked, then the chosen setting's test accuracy when ``chosen`` has it."""
    if not rows:
        return ""
    setting = next((k for k in SETTING_NAMES if k in rows[0]), None)
    columns = [k for k in COLUMNS if any(k in r for r in rows)]
    header = ([SETTING_NAMES[setting]] if setting else []) + [COLUMNS[k] for k in columns] + \
        (["chosen"] if setting else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for row in rows:
        cells = [f"{row[setting]:g}"] if setting else []
        cells += [_cell(k, row.get(k)) for k in columns]
        if setting:
            cells.append("✔" if chosen.get(setting) == row[setting] else "")
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    if setting and chosen.get(setting) is not None:
        text += f"\n\nchosen on the validation split: {SETTING_NAMES[setting]} = {chosen[setting]:g}"
        if chosen.get("test_accuracy") is not None:
            text += f"; its test accuracy {100 * chosen['test_accuracy']:.2f}%"
    return text


def _cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key.endswith("accuracy"):
        return f"{100 * float(value):.2f}"
    return str(value)


def attach_probe_table(writer: Any, probe: Engine, tag: str, step: Union[int, Callable[[], int]]) -> None:
    """Write ``probe``'s candidate settings and its choice as the text ``<tag>/selection`` when it completes.

    Args:
        writer: a ``SummaryWriter`` (e.g. an Ignite ``TensorboardLogger``'s ``.writer``).
        probe: the probe engine (one iteration per candidate, its output a mapping).
        tag: e.g. ``"probe"`` or ``"control_probe"``.
        step: the training epoch whose weights are probed (or a function returning it when the probe completes).
    """
    rows: List[Mapping[str, Any]] = []

    def keep(engine: Engine) -> None:
        if isinstance(engine.state.output, Mapping):
            rows.append(dict(engine.state.output))

    def write(engine: Engine) -> None:
        text = selection_table(rows, engine.state.metrics)
        if text:
            writer.add_text(f"{tag}/selection", text, step() if callable(step) else step)
        rows.clear()

    probe.add_event_handler(Events.STARTED, lambda _: rows.clear())
    probe.add_event_handler(Events.ITERATION_COMPLETED, keep)
    probe.add_event_handler(Events.COMPLETED, write)
