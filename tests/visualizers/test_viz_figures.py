"""The matplotlib figures are real, non-blank PNG images."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest
import torch

from hebbian.visualizers import (
    filter_grid,
    plot_accuracy,
    plot_convergence,
    plot_filter_comparison,
    plot_filters,
    save_figure,
)


def _png(path) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] > 0 and pixels.shape[1] > 0
    assert pixels[..., :3].std() > 0.01  # not blank
    return pixels


def test_matplotlib_uses_agg_without_a_display():
    import os

    import matplotlib

    if any(os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")):
        pytest.skip("a display or an explicit backend is configured")
    assert matplotlib.get_backend().lower() == "agg"


def test_plot_filters_draws_the_filter_grid(tmp_path):
    torch.manual_seed(0)
    weight = torch.randn(16, 3, 5, 5)
    fig, ax = plot_filters(weight, title="conv1")
    image = ax.get_images()[0].get_array()
    assert image.shape == (4 * 6 + 1, 4 * 6 + 1, 3)
    assert np.allclose(image, filter_grid(weight, min_tile=1).permute(1, 2, 0).numpy())
    assert ax.get_title() == "conv1"
    path = save_figure(fig, tmp_path / "sub" / "filters.png")
    _png(path)


def test_filter_comparison_has_one_panel_per_rule(tmp_path):
    weights = {"krotov": torch.randn(9, 64), "softhebb": torch.randn(9, 64), "oja": torch.randn(9, 64)}
    fig, axes = plot_filter_comparison(weights, ncols=2)
    assert [ax.get_title() for ax in axes] == list(weights)
    assert len(fig.axes) == 4  # 2 x 2 grid, the last panel left empty
    _png(save_figure(fig, tmp_path / "compare.png"))
    with pytest.raises(ValueError, match="weights"):
        plot_filter_comparison({})


def test_convergence_and_accuracy_curves(tmp_path):
    fig, ax = plot_convergence({"conv1": [0.1, 0.5, 0.9], "conv2": [0.0, 0.2, 0.4]})
    assert [line.get_label() for line in ax.get_lines()] == ["conv1", "conv2"]
    assert list(ax.get_lines()[0].get_xdata()) == [1, 2, 3]
    _png(save_figure(fig, tmp_path / "convergence.png"))
    rows = [{"train_accuracy": 0.8, "test_accuracy": 0.7}, {"train_accuracy": 0.9, "test_accuracy": 0.75}]
    fig, ax = plot_accuracy(rows)
    assert list(ax.get_lines()[1].get_ydata()) == [0.7, 0.75]
    _png(save_figure(fig, tmp_path / "accuracy.png"))


def test_figures_draw_into_given_axes_and_reject_bad_histories():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert plot_accuracy({"test_accuracy": [0.5]}, ax=ax) == (fig, ax)
    plt.close(fig)
    with pytest.raises(TypeError, match="history"):
        plot_convergence(0.5)
    with pytest.raises(ValueError, match="empty"):
        plot_convergence({"a": []})
