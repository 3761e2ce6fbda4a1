"""Results generated from run folders: the tables of docs/results.md are rendered, never typed.

A run folder (written by ``hebbian train``, see :mod:`hebbian.runs`) holds ``config.yaml`` and ``metrics.json``; an
optional ``provenance.json`` (``commit``, ``command``, ``machine``, ``started``) says how it was made, and
``probes/<protocol>.json`` holds probe results per checkpoint (written by :func:`probe_checkpoints`). A
``hebbian compare`` folder holds one run folder per method and seed (``<method>/seed<s>/``) and ``results.csv``.

Two steps::

    python -m hebbian.results probe RUN --probe krotov_hopfield [--every 30] [--set epochs=100]
    python -m hebbian.results render RUN... --template docs/results.template.md --out docs/results.md
    hebbian results RUN... --template docs/results.template.md --out docs/results.md   # the same render

The template is Markdown with directive lines, each replaced by a generated block:

* ``<!-- runs: NAME NAME... -->``: one table row per run folder (by folder name; a comparison's runs by
  ``method/seed<s>``, and a comparison folder's name stands for all its runs): settings, accuracies, times, commit,
  machine; and under the table the exact command of each row;
* ``<!-- curve: NAME PROTOCOL -->``: the probe's accuracies over the checkpoints of run ``NAME``;
* ``<!-- compare: NAME -->``: the per-method table of a ``hebbian compare`` folder (its ``results.csv``, summarised
  as ``results.md`` is), with its command, commit and machine;
* ``<!-- include: PATH -->``: a generated Markdown file, e.g. a benchmark table written by
  ``python -m benchmarks --out PATH`` (relative to the template's folder; it must lie inside the template's
  project, i.e. its git checkout or else its folder, or inside a run folder given).

A directive naming a run folder that was not given is an error (no silently missing rows). Every file read is
checked before a number of it is rendered: a malformed file is a one-line :class:`ResultsError` naming the file
and what was expected; a non-finite value is rendered as what it is (``diverged``, ``unknown``), never ``nan%``.

One concern a module: :mod:`~hebbian.results.records` (reading and checking run folders),
:mod:`~hebbian.results.cells` (one number as a table cell), :mod:`~hebbian.results.tables` (the generated
blocks), :mod:`~hebbian.results.template` (directives and includes), :mod:`~hebbian.results.probing` (probes of a
run's checkpoints) and :mod:`~hebbian.results.cli` (``python -m hebbian.results``).
"""

from hebbian.results.cli import add_render_arguments, main, render_command
from hebbian.results.probing import checkpoint_epochs, probe_checkpoints
from hebbian.results.records import ResultsError, RunRecord, read_run
from hebbian.results.tables import (
    command_note,
    commit_of,
    compare_table,
    curve_table,
    final_probe,
    probe_command_of,
    runs_table,
    settings,
)
from hebbian.results.template import render

__all__ = [
    "ResultsError", "RunRecord", "add_render_arguments", "checkpoint_epochs", "command_note", "commit_of",
    "compare_table", "curve_table", "final_probe", "main", "probe_checkpoints", "probe_command_of", "read_run",
    "render", "render_command", "runs_table", "settings",
]
