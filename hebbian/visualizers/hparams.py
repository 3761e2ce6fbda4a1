"""Runs side by side in TensorBoard's HParams dashboard: each run's settings and final metrics, and the declaration
of what a comparison's trials differ in.

How TensorBoard (2.x) builds the HParams table: it takes the hyperparameters and metrics *declared* in an experiment
summary (``hparams_config``) found in the log folder (else it infers them from the runs), orders the
hyperparameters by ``differs`` (true first), then by name, and shows the first five of them, and the first five
metrics, checked by default. So

* :func:`declare_comparison` (called by :func:`hebbian.comparison.compare` before its trials run) declares, in the
  comparison's folder, ``method`` and ``seed`` with ``differs`` set (always shown first), then the other
  hyperparameters that vary across the trials (a method's recipe: ``lr``, ``schedule``, the rule's parameters ...,
  shown next, by name), and not the constant ones, which it writes as a text table ``comparison/constant_settings``
  instead; metrics in the order of :data:`HPARAM_METRICS` (the probe's test accuracy, the control's, the gain, the
  network's, ...), each with a readable name;
* :func:`log_hparams` (called by every run) writes the run's values and final metrics, and declares the run's own
  experiment only when no enclosing folder (a comparison) declares one, so that TensorBoard never picks one trial's
  declaration for the whole comparison.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

HParamValue = Union[str, int, float, bool]

#: Final metrics of the HParams table, in the order of its columns (the first five are shown by default), with the
#: names it shows; logged as the scalars ``final/<key>`` (:func:`final_metrics`).
HPARAM_METRICS: Tuple[Tuple[str, str], ...] = (
    ("probe_test_accuracy", "probe test accuracy"),
    ("control_probe_test_accuracy", "control test accuracy"),
    ("probe_gain", "gain over control"),
    ("test_accuracy", "network test accuracy"),
    ("weight_change", "weight change"),
    ("dead_units", "dead units"),
    ("probe_val_accuracy", "probe validation accuracy"),
)

#: Hyperparameters always declared first: what tells the trials of a comparison apart.
KEY_HPARAMS: Tuple[str, ...] = ("method", "seed")

#: Suffix of the events file that holds a declaration (how :func:`log_hparams` finds an enclosing one).
DECLARATION_SUFFIX = ".hparams"


def flatten_hparams(values: Mapping[str, Any], prefix: str = "") -> Dict[str, HParamValue]:
    """Nested settings as ``{"a.b": value}`` with the types the HParams plugin takes (others as text; ``None`` as
    ``"none"``)."""
    out: Dict[str, HParamValue] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_hparams(value, name + "."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = "none" if value is None else str(value)
    return out


def final_metrics(metrics: Mapping[str, Any]) -> Dict[str, float]:
    """The metrics of :data:`HPARAM_METRICS` that the run has, under ``final/`` tags."""
    return {f"final/{k}": float(metrics[k]) for k, _ in HPARAM_METRICS if metrics.get(k) is not None}


# ---------------------------------------------------------------------- what varies
def varying_hparams(trials: Sequence[Mapping[str, Any]]) -> List[str]:
    """Names (flattened) of the hyperparameters whose value is not the same in every trial (a name missing from a
    trial counts as a value of its own), sorted."""
    flat = [flatten_hparams(t) for t in trials]
    names = sorted({n for f in flat for n in f})
    return [n for n in names if len({json.dumps(f.get(n), sort_keys=True) for f in flat}) > 1]


def constant_hparams(trials: Sequence[Mapping[str, Any]]) -> Dict[str, HParamValue]:
    """``{name: value}`` of the hyperparameters every trial has with the same value."""
    flat = [flatten_hparams(t) for t in trials]
    varying = set(varying_hparams(trials))
    return {n: v for n, v in sorted(flat[0].items()) if n not in varying} if flat else {}


def comparison_experiment(trials: Sequence[Mapping[str, Any]]) -> Any:
    """The HParams ``Experiment`` of a comparison's trials (their :func:`hebbian.runs.hparams_of` mappings):
    :data:`KEY_HPARAMS` with ``differs`` set, the other varying hyperparameters without it (TensorBoard lists the
    former first and checks the first five), and :data:`HPARAM_METRICS`."""
    flat = [flatten_hparams(t) for t in trials]
    varying = varying_hparams(trials)
    names = [n for n in KEY_HPARAMS if any(n in f for f in flat)] + [n for n in varying if n not in KEY_HPARAMS]
    infos = [_hparam_info(n, [f[n] for f in flat if n in f], differs=n in KEY_HPARAMS) for n in names]
    return _experiment(infos)


def run_experiment(hparams: Mapping[str, Any], metrics: Iterable[str]) -> Any:
    """The HParams ``Experiment`` of one run on its own: its hyperparameters (:data:`KEY_HPARAMS` first) and the
    final metrics it has (``final/<key>`` tags of :data:`HPARAM_METRICS`)."""
    flat = flatten_hparams(hparams)
    infos = [_hparam_info(n, [v], differs=n in KEY_HPARAMS) for n, v in flat.items()]
    tags = set(metrics)
    return _experiment(infos, [k for k, _ in HPARAM_METRICS if f"final/{k}" in tags])


def _hparam_info(name: str, values: Sequence[HParamValue], differs: bool) -> Any:
    """As TensorBoard infers it from values: numbers -> an interval, booleans -> true/false, anything else (or a
    mixture) -> the distinct values as text."""
    from tensorboard.plugins.hparams import api_pb2

    info = api_pb2.HParamInfo(name=name, differs=differs)
    if all(isinstance(v, bool) for v in values):
        info.type = api_pb2.DATA_TYPE_BOOL
        info.domain_discrete.extend(sorted(set(values)))
    elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        info.type = api_pb2.DATA_TYPE_FLOAT64
        info.domain_interval.min_value, info.domain_interval.max_value = float(min(values)), float(max(values))
    else:
        info.type = api_pb2.DATA_TYPE_STRING
        texts = sorted({v if isinstance(v, str) else json.dumps(v if isinstance(v, bool) else float(v))
                        for v in values})
        info.domain_discrete.extend(texts)
    return info


def _experiment(hparam_infos: List[Any], metric_keys: Optional[Sequence[str]] = None) -> Any:
    from tensorboard.plugins.hparams import api_pb2

    labels = dict(HPARAM_METRICS)
    keys = [k for k, _ in HPARAM_METRICS] if metric_keys is None else list(metric_keys)
    metrics = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=f"final/{k}"), display_name=labels[k]) for k in keys]
    return api_pb2.Experiment(hparam_infos=hparam_infos, metric_infos=metrics, time_created_secs=time.time())


def _experiment_summary(experiment: Any) -> Any:
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    summary = summary_pb2.Summary()
    content = metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(experiment=experiment))
    summary.value.add(tag=metadata.EXPERIMENT_TAG, metadata=content, tensor=metadata.NULL_TENSOR)
    return summary


# ---------------------------------------------------------------------- writing
def declare_comparison(log_dir: Union[str, Path], trials: Sequence[Mapping[str, Any]]) -> None:
    """Write :func:`comparison_experiment` of ``trials`` into ``log_dir`` (the comparison's folder, above its runs),
    and the settings every trial shares as the text ``comparison/constant_settings``."""
    from torch.utils.tensorboard import SummaryWriter

    constant = constant_hparams(trials)
    with SummaryWriter(str(log_dir), filename_suffix=DECLARATION_SUFFIX) as writer:
        writer.file_writer.add_summary(_experiment_summary(comparison_experiment(trials)))
        if constant:
            rows = "\n".join(f"| {n} | {v} |" for n, v in constant.items())
            writer.add_text("comparison/constant_settings",
                            f"Settings shared by all {len(trials)} trials (not columns of the HParams table):\n\n"
                            f"| setting | value |\n|---|---|\n{rows}")


def declared_above(log_dir: Union[str, Path]) -> Optional[Path]:
    """The nearest enclosing folder of ``log_dir`` that holds a :func:`declare_comparison` declaration, or ``None``."""
    for folder in Path(log_dir).resolve().parents:
        if any(folder.glob(f"events.out.tfevents.*{DECLARATION_SUFFIX}")):
            return folder
    return None


def log_hparams(log_dir: Union[str, Path], hparams: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
    """Write the run's ``hparams`` (flattened) and final ``metrics`` (``final/<key>`` scalars, :func:`final_metrics`)
    into the TensorBoard run at ``log_dir``: TensorBoard's HParams dashboard lists the run with its settings and
    metrics. The run declares its own experiment (:func:`run_experiment`) only when no enclosing folder declares one
    (:func:`declared_above`: the trials of a comparison share the comparison's declaration)."""
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams as hparams_summaries

    flat = flatten_hparams(hparams)
    numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    _, start, end = hparams_summaries(flat, numbers)  # torch's session start / end (its experiment is not used)
    with SummaryWriter(str(log_dir)) as writer:
        if declared_above(log_dir) is None:
            writer.file_writer.add_summary(_experiment_summary(run_experiment(hparams, numbers)))
        writer.file_writer.add_summary(start)
        writer.file_writer.add_summary(end)
        for tag, value in numbers.items():
            writer.add_scalar(tag, value)
