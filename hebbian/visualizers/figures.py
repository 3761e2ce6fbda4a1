"""Matplotlib figures of the same views as the TensorBoard handlers, for notebooks, reports and the CLI.

Every ``plot_*`` function takes an optional ``ax`` and returns ``(fig, ax)`` (torchmetrics' ``.plot`` convention);
:func:`save_figure` writes a PNG and closes the figure. Without a display (and no backend chosen by the user or a
notebook) the non-interactive Agg backend is used.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import matplotlib

if (
    sys.platform.startswith("linux")
    and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("MPLBACKEND"))
    and "matplotlib.pyplot" not in sys.modules
):
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402

from hebbian.visualizers.grids import filter_grid  # noqa: E402

History = Union[Mapping[str, Sequence[float]], Sequence[Mapping[str, float]]]


def _axes(ax: Any = None, figsize: Optional[Tuple[float, float]] = None) -> Tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def _as_series(history: History, name: str = "history") -> Dict[str, List[float]]:
    """``{series: [value per epoch]}`` from that same mapping or from a list of per-epoch ``{series: value}`` dicts."""
    if isinstance(history, Mapping):
        series = {str(k): [float(v) for v in values] for k, values in history.items()}
    elif isinstance(history, Sequence) and all(isinstance(row, Mapping) for row in history):
        series = {}
        for row in history:
            for k, v in row.items():
                series.setdefault(str(k), []).append(float(v))
    else:
        raise TypeError(
            f"{name} must be a mapping {{name: [value per epoch]}} or a list of per-epoch {{name: value}} dicts, "
            f"got {type(history).__name__}"
        )
    if not any(series.values()):
        raise ValueError(f"{name} is empty: nothing to plot")
    return series


def _plot_series(series: Dict[str, List[float]], ax: Any, ylabel: str, title: Optional[str]) -> Tuple[Any, Any]:
    fig, ax = _axes(ax)
    for label, values in series.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig, ax


def plot_filters(
    weight: Tensor,
    input_shape: Optional[Sequence[int]] = None,
    max_filters: int = 64,
    *,
    max_channels: int = 8,
    ax: Any = None,
    title: Optional[str] = None,
) -> Tuple[Any, Any]:
    """A layer's receptive fields as a grid (the image of :func:`~hebbian.visualizers.grids.filter_grid`).

    Args:
        weight: ``(M, D)`` or ``(M, C, kh, kw)``.
        input_shape, max_filters, max_channels: see :func:`~hebbian.visualizers.grids.filter_grid`.
        ax: axes to draw into (default: a new figure).
        title: axes title.
    """
    grid = filter_grid(weight, input_shape, max_filters, max_channels=max_channels, min_tile=1)  # imshow enlarges
    fig, ax = _axes(ax)
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig, ax


def plot_convergence(history: History, ax: Any = None, title: Optional[str] = "Unit convergence") -> Tuple[Any, Any]:
    """Fraction of converged units per layer over epochs.

    Args:
        history: ``{layer: [fraction per epoch]}`` (e.g. :attr:`ConvergenceHistory.history`) or a list of per-epoch
            ``{layer: fraction}`` dicts.
    """
    fig, ax = _plot_series(_as_series(history), ax, "fraction of converged units", title)
    ax.set_ylim(-0.02, 1.02)
    return fig, ax


def plot_accuracy(history: History, ax: Any = None, title: Optional[str] = "Linear-probe accuracy") -> Tuple[Any, Any]:
    """Probe accuracy over epochs.

    Args:
        history: ``{"train_accuracy": [...], "test_accuracy": [...]}`` or a list of per-epoch metric dicts (as
            returned by a probe evaluator's ``run``).
    """
    return _plot_series(_as_series(history), ax, "accuracy", title)


def plot_filter_comparison(
    weights: Mapping[str, Tensor],
    input_shape: Optional[Sequence[int]] = None,
    max_filters: int = 64,
    *,
    ncols: Optional[int] = None,
    panel_size: float = 3.0,
) -> Tuple[Any, Any]:
    """Filters learned by several rules side by side, one titled panel per rule.

    Args:
        weights: ``{rule name: weight}`` of corresponding layers.
        input_shape, max_filters: as in :func:`plot_filters`.
        ncols: panels per row (default: all in one row, at most 4).
        panel_size: inches per panel.

    Returns:
        ``(fig, axes)`` with ``axes`` a flat list, one per rule.
    """
    if not isinstance(weights, Mapping) or not weights:
        raise ValueError("weights must be a non-empty mapping {rule name: weight tensor}")
    ncols = ncols or min(len(weights), 4)
    nrows = math.ceil(len(weights) / ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows), squeeze=False)
    axes = list(grid.flat)
    for ax, (name, weight) in zip(axes, weights.items()):
        plot_filters(weight, input_shape, max_filters, ax=ax, title=name)
    for ax in axes[len(weights):]:
        ax.set_axis_off()
    return fig, axes[: len(weights)]


def _step_title(step: Any, label: str) -> str:
    return f"{label} {step}" if isinstance(step, int) else str(step)


def plot_filters_over_training(
    weights: Mapping[Any, Tensor],
    input_shape: Optional[Sequence[int]] = None,
    max_filters: int = 64,
    *,
    label: str = "epoch",
    panel_size: float = 2.4,
    ncols: Optional[int] = None,
    title: Optional[str] = None,
) -> Tuple[Any, Any]:
    """A strip of filter grids, one panel per kept step (:class:`~hebbian.visualizers.snapshots.FilterSnapshots`).

    Args:
        weights: ``{step: weight}`` (e.g. ``FilterSnapshots.weights``), drawn left to right in the mapping's order.
        input_shape, max_filters: as in :func:`plot_filters`.
        label: what the steps count (``"epoch"``, ``"iteration"``); panels are titled ``"<label> <step>"``.
        panel_size: inches per panel.
        ncols: panels per row (default: all in one row); more steps wrap onto further rows.
        title: figure title.

    Returns:
        ``(fig, axes)`` with ``axes`` a list, one per step.
    """
    from hebbian.visualizers.snapshots import snapshot_grids

    grids = snapshot_grids(weights, input_shape, max_filters)
    if ncols is not None and (isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1):
        raise ValueError(f"ncols must be a positive integer or None, got {ncols!r}")
    ncols = min(ncols or len(grids), len(grids))
    nrows = math.ceil(len(grids) / ncols)
    fig, panels = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, (panel_size + 0.4) * nrows), squeeze=False)
    axes = list(panels.flat)
    for ax, (step, grid) in zip(axes, grids.items()):
        ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(_step_title(step, label), fontsize="medium")
    for ax in axes:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig, axes[: len(grids)]


def save_filter_animation(
    weights: Mapping[Any, Tensor],
    path: Union[str, os.PathLike],
    input_shape: Optional[Sequence[int]] = None,
    max_filters: int = 64,
    *,
    label: str = "epoch",
    fps: float = 2.0,
    size: float = 4.0,
    title: Optional[str] = None,
) -> Path:
    """Write the filter grids of ``{step: weight}`` snapshots as an animated GIF, one frame per step.

    Args:
        weights, input_shape, max_filters, label: as in :func:`plot_filters_over_training`.
        path: the ``.gif`` file (folders are created; written to a new file that replaces the name).
        fps: frames per second.
        size: inches of the (square) frame, drawn at 100 dpi.
        title: a title above every frame, before the step.
    """
    from matplotlib.animation import FuncAnimation, PillowWriter

    from hebbian.files import atomic_path
    from hebbian.visualizers.snapshots import snapshot_grids

    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"path must name a .gif file, got {str(path)!r}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    grids = list(snapshot_grids(weights, input_shape, max_filters).items())
    fig, ax = plt.subplots(figsize=(size, size + 0.3))
    ax.set_axis_off()
    image = ax.imshow(grids[0][1].permute(1, 2, 0).numpy(), interpolation="nearest")
    heading = ax.set_title("")

    def frame(i: int) -> List[Any]:
        step, grid = grids[i]
        image.set_data(grid.permute(1, 2, 0).numpy())
        heading.set_text(" ".join(filter(None, [title, _step_title(step, label)])))
        return [image, heading]

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp:
            FuncAnimation(fig, frame, frames=len(grids), blit=False).save(
                str(tmp), writer=PillowWriter(fps=fps), dpi=100)
    finally:
        plt.close(fig)
    return path


def save_figure(fig: Any, path: Union[str, os.PathLike], *, dpi: int = 100, close: bool = True) -> Path:
    """Write ``fig`` to ``path`` (PNG unless the suffix says otherwise), creating folders; closes it by default.

    The figure is written to a new file that replaces the name (:func:`hebbian.files.atomic_path`)."""
    from hebbian.files import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp:  # a new file renamed onto the name: never written through a link
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    finally:
        if close:
            plt.close(fig)
    return path
