"""Visualizers: TensorBoard handlers and matplotlib figures of what Hebbian layers learn. They only read.

* Pure functions: :func:`filter_grid`, :func:`unit_convergence`, :func:`unit_norms`, :func:`winner_usage`.
* Ignite ``TensorboardLogger`` handlers: :class:`FilterGridHandler`, :class:`UnitConvergenceHandler`,
  :class:`UpdateNormHandler`, :class:`UpdateHistHandler`, :class:`ActivationStatsHandler`, :class:`OnRankZero`, and
  :func:`attach_visualizers` for all of them at once.
* Figures (imported on first use, they need matplotlib): :func:`plot_filters`, :func:`plot_convergence`,
  :func:`plot_accuracy`, :func:`plot_filter_comparison`, :func:`save_figure`; :class:`ConvergenceHistory` records
  curves to plot.
* Filters over training: :class:`FilterSnapshots` keeps a layer's weights at chosen steps;
  :func:`plot_filters_over_training` draws them as a strip, :func:`save_filter_animation` as an animated GIF.
"""

from typing import Any

from hebbian.visualizers.activations import ActivationRecorder, activation_statistics, dead_fraction, winner_usage
from hebbian.visualizers.attach import attach_visualizers
from hebbian.visualizers.convergence import ConvergenceHistory, fixed_point_p, unit_convergence, unit_norms
from hebbian.visualizers.grids import filter_grid, receptive_field_shape
from hebbian.visualizers.snapshots import FilterSnapshots, snapshot_grids
from hebbian.visualizers.handlers import (
    ActivationStatsHandler,
    FilterGridHandler,
    OnRankZero,
    UnitConvergenceHandler,
    UpdateHistHandler,
    UpdateNormHandler,
)

_FIGURES = ("plot_filters", "plot_convergence", "plot_accuracy", "plot_filter_comparison", "plot_filters_over_training",
            "save_filter_animation", "save_figure")

__all__ = [
    "filter_grid", "receptive_field_shape", "unit_convergence", "unit_norms", "fixed_point_p", "ConvergenceHistory",
    "ActivationRecorder", "activation_statistics", "dead_fraction", "winner_usage",
    "FilterGridHandler", "UnitConvergenceHandler", "UpdateNormHandler", "UpdateHistHandler", "ActivationStatsHandler",
    "OnRankZero", "attach_visualizers", "FilterSnapshots", "snapshot_grids", *_FIGURES,
]


def __getattr__(name: str) -> Any:
    if name in _FIGURES:
        from hebbian.visualizers import figures

        return getattr(figures, name)
    raise AttributeError(f"module 'hebbian.visualizers' has no attribute {name!r}")
