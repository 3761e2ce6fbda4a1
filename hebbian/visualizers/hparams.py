"""Runs side by side in TensorBoard's HParams dashboard: a run's settings and final metrics in its own log folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Union

HParamValue = Union[str, int, float, bool]


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


def log_hparams(log_dir: Union[str, Path], hparams: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
    """Write ``hparams`` (flattened) and the final ``metrics`` into the TensorBoard run at ``log_dir``.

    TensorBoard's HParams dashboard then lists this run with its settings and metrics, so the runs under a common
    ``--logdir`` (e.g. every method and seed of ``hebbian compare``) can be sorted and filtered.
    """
    from torch.utils.tensorboard import SummaryWriter

    numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    with SummaryWriter(str(log_dir)) as writer:
        writer.add_hparams(flatten_hparams(hparams), numbers, run_name=".")
