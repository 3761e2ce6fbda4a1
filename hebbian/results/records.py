"""Reading a run folder for the results tables, and checking every file before a number of it is rendered.

A run folder: ``config.yaml`` (a mapping), an optional ``metrics.json`` (an object; a run still training has none),
``provenance.json`` (an object) and ``probes/<protocol>.json`` (a list of entries, each with its ``epoch``). A
``hebbian compare`` folder also holds its runs in ``<method>/seed<s>/``: they are read along with it
(:attr:`RunRecord.runs`) and named ``<method>/seed<s>``. A file that is not what it should be raises
:class:`ResultsError`, one line naming the file, the entry or key, and what was expected.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import yaml

from hebbian.errors import UsageError

PathLike = Union[str, Path]
SEED_FOLDER = re.compile(r"seed\d+")
#: metrics.json keys (by ending) and probe-entry keys whose values are rendered as numbers.
NUMBER_ENDINGS = ("_accuracy", "_seconds", "dead_units", "_gain", "weight_change")
PROBE_NUMBERS = ("seconds", "beta", "l2", "readout_epoch")


class ResultsError(UsageError):
    """A run folder or template that cannot be rendered (one line, naming the file or directive)."""


@dataclass
class RunRecord:
    """What a run folder says about its run (``runs``: a comparison folder's runs, one per method and seed)."""

    path: Path
    config: Dict[str, Any]
    metrics: Dict[str, Any]
    provenance: Dict[str, Any] = field(default_factory=dict)
    probes: Dict[str, List[Dict[str, Any]]] = field(default_factory=dict)
    runs: List["RunRecord"] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The folder's name; ``<method>/seed<s>`` for a run of a ``hebbian compare`` folder."""
        return member_name(self.path) or self.path.name


def member_name(path: Path) -> Optional[str]:
    """``<method>/seed<s>`` when ``path`` is a run of a comparison folder (``COMPARE/<method>/seed<s>``)."""
    if SEED_FOLDER.fullmatch(path.name) and (path.parent.parent / "config.yaml").is_file():
        return f"{path.parent.name}/{path.name}"
    return None


def comparison_runs(folder: Path) -> List[Path]:
    """The run folders ``<method>/seed<s>`` of a ``hebbian compare`` folder, in the order of its ``results.csv``
    (else of the methods' names), seeds in order; ``[]`` for a folder that is not a comparison."""
    from hebbian.runs.load import runs_inside

    found = runs_inside(folder)
    order: Dict[str, int] = {}
    csv_path = folder / "results.csv"
    if csv_path.is_file():
        from hebbian.comparison import read_csv

        try:
            order = {m: i for i, m in enumerate(dict.fromkeys(str(r.get("rule")) for r in read_csv(csv_path)))}
        except (OSError, ValueError, KeyError, TypeError):
            order = {}  # the compare directive reports a damaged results.csv; the runs are ordered by name
    return sorted(found, key=lambda p: (order.get(p.parent.name, len(order)), p.parent.name, int(p.name[4:])))


def read_run(path: PathLike) -> RunRecord:
    """Read and check a run folder (and, for a comparison folder, its runs). Needs ``config.yaml``."""
    run = Path(path)
    if not (run / "config.yaml").is_file():
        raise ResultsError(f"{str(run)!r} is not a run folder (no config.yaml)")
    config = check_config(_read(run / "config.yaml", _yaml), run / "config.yaml")
    metrics = check_metrics(_read(run / "metrics.json", json.loads), run / "metrics.json") \
        if (run / "metrics.json").is_file() else {}
    provenance = check_provenance(_read(run / "provenance.json", json.loads), run / "provenance.json") \
        if (run / "provenance.json").is_file() else {}
    probes = {p.stem: read_probe_file(p) for p in sorted((run / "probes").glob("*.json"))} \
        if (run / "probes").is_dir() else {}
    return RunRecord(run, config, metrics, provenance, probes, [read_run(r) for r in comparison_runs(run)])


def read_probe_file(path: Path) -> List[Dict[str, Any]]:
    """The checked entries of a probe file ``RUN/probes/<protocol>.json`` (see :func:`check_probe_entries`)."""
    return check_probe_entries(_read(path, json.loads), path)


# ---------------------------------------------------------------------------------------------- reading
def _yaml(text: str) -> Any:
    return yaml.safe_load(text)


def _read(path: Path, parse: Any) -> Any:
    """``parse`` of the UTF-8 text of ``path``; any failure is a one-line error naming the file."""
    try:
        return parse(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ResultsError(f"cannot read {str(path)!r}: {' '.join(str(err).split())}") from None


def _fail(path: Path, where: str, expected: str, value: Any) -> None:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise ResultsError(f"{str(path)!r}: {where} must be {expected}, got {shown}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value: Any, least: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _mapping(value: Any, path: Path, where: str, empty_ok: bool = True) -> Dict[str, Any]:
    if value is None and empty_ok:
        return {}
    if not isinstance(value, dict):
        _fail(path, where, "a mapping" if path.suffix == ".yaml" else "a JSON object", value)
    return value


def _numbers(values: Mapping[str, Any], keys: Iterable[str], path: Path, where: str) -> None:
    """Every key of ``values`` among ``keys`` (exact names) holds a number or null."""
    for key in keys:
        if key in values and values[key] is not None and not _is_number(values[key]):
            _fail(path, f"{where}{key!r}", "a number or null", values[key])


# ---------------------------------------------------------------------------------------------- checks
def check_config(config: Any, path: Path) -> Dict[str, Any]:
    """A run's ``config.yaml``: a mapping whose sections (``model``, ``rule``, ``train``, ``data``, ``probe``) and
    ``rule.params`` are mappings, and whose ``seed`` is a whole number."""
    config = _mapping(config, path, "the file")
    for section in ("model", "rule", "train", "data", "probe", "compare"):
        _mapping(config.get(section), path, f"{section!r}")
    _mapping((config.get("rule") or {}).get("params"), path, "'rule.params'")
    if "seed" in config and not _is_count(config["seed"]):
        _fail(path, "'seed'", "a whole number >= 0", config["seed"])
    return config


def check_metrics(metrics: Any, path: Path) -> Dict[str, Any]:
    """A run's ``metrics.json``: an object whose accuracies, times, shares and gains are numbers (or null; NaN and
    Infinity are numbers: the run diverged), whose ``resumes`` is a list of objects and ``processes`` a count."""
    metrics = _mapping(metrics, path, "the file", empty_ok=False)
    _numbers(metrics, [k for k in metrics if k.endswith(NUMBER_ENDINGS)], path, "")
    for key in ("epochs", "train_images", "processes"):
        if key in metrics and not _is_count(metrics[key], 1 if key == "processes" else 0):
            _fail(path, repr(key), "a whole number" + (" >= 1" if key == "processes" else " >= 0"), metrics[key])
    resumes = metrics.get("resumes", [])
    if not isinstance(resumes, list):
        _fail(path, "'resumes'", "a list of objects", resumes)
    for i, resume in enumerate(resumes):
        _mapping(resume, path, f"'resumes' entry {i}", empty_ok=False)
        if "epoch" in resume and not _is_count(resume["epoch"]):
            _fail(path, f"'resumes' entry {i} 'epoch'", "a whole number >= 0", resume["epoch"])
    return metrics


def check_provenance(provenance: Any, path: Path) -> Dict[str, Any]:
    """A run's ``provenance.json``: an object (``command``, ``commit``, ``dirty``, ``machine``) whose ``resumes`` is a
    list of such objects."""
    provenance = _check_made(provenance, path, "the file")
    resumes = provenance.get("resumes", [])
    if not isinstance(resumes, list):
        _fail(path, "'resumes'", "a list of objects", resumes)
    for i, resume in enumerate(resumes):
        _check_made(resume, path, f"'resumes' entry {i}")
    return provenance


def _check_made(made: Any, path: Path, where: str) -> Dict[str, Any]:
    """One provenance record: how a run (or one of its resumes) was made."""
    made = _mapping(made, path, where, empty_ok=False)
    prefix = "" if where == "the file" else f"{where} "
    for key in ("command", "commit"):
        if key in made and not isinstance(made[key], str):
            _fail(path, f"{prefix}{key!r}", "a string", made[key])
    if "dirty" in made and not isinstance(made["dirty"], bool):
        _fail(path, f"{prefix}'dirty'", "true or false", made["dirty"])
    machine = made.get("machine")
    if machine is not None and not isinstance(machine, (dict, str)):
        _fail(path, f"{prefix}'machine'", "an object or a string", machine)
    if isinstance(machine, dict):
        load = machine.get("load_average")
        if load is not None and not (isinstance(load, list) and all(_is_number(v) for v in load)):
            _fail(path, f"{prefix}'machine.load_average'", "a list of numbers", load)
    return made


def check_probe_entries(entries: Any, path: Path) -> List[Dict[str, Any]]:
    """A probe file: a list of objects, each with an ``epoch`` (a whole number, 0 for the untrained control),
    ``params`` (an object), ``overrides`` (a list of ``[key, value]``), numeric accuracies, ``seconds`` and choices,
    and ``candidates`` (a list of objects with numeric values)."""
    if not isinstance(entries, list):
        _fail(path, "the file", "a JSON list of probe entries", entries)
    for i, entry in enumerate(entries):
        where = f"entry {i}"
        _mapping(entry, path, where, empty_ok=False)
        if not _is_count(entry.get("epoch")):
            _fail(path, f"{where} 'epoch'", "a whole number >= 0", entry.get("epoch", "(missing)"))
        _mapping(entry.get("params"), path, f"{where} 'params'")
        overrides = entry.get("overrides") or []
        if not (isinstance(overrides, list) and all(_is_pair(o) for o in overrides)):
            _fail(path, f"{where} 'overrides'", "a list of [key, value] pairs", overrides)
        _numbers(entry, [k for k in entry if k.endswith("_accuracy")] + list(PROBE_NUMBERS), path, f"{where} ")
        candidates = entry.get("candidates") or []
        if not isinstance(candidates, list):
            _fail(path, f"{where} 'candidates'", "a list of objects", candidates)
        for j, candidate in enumerate(candidates):
            _mapping(candidate, path, f"{where} candidate {j}", empty_ok=False)
            _numbers(candidate, ("beta", "l2", "val_accuracy", "train_accuracy"), path, f"{where} candidate {j} ")
    return entries


def _is_pair(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], str)


def entry_key(entry: Mapping[str, Any]) -> Tuple[int, str]:
    """What makes a probe entry: its epoch and setting (a second entry with the same key is a repeat)."""
    return entry["epoch"], setting(entry.get("params"), entry.get("overrides"))


def setting(params: Optional[Mapping[str, Any]], overrides: Optional[Iterable]) -> str:
    """A probe setting (its parameters and config overrides) as a comparable string."""
    return json.dumps([params or {}, [list(o) for o in overrides or []]], sort_keys=True)
