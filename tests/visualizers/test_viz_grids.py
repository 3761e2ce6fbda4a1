"""filter_grid and receptive_field_shape: shapes, colour, reshaping, per-filter normalisation."""

from __future__ import annotations

import pytest
import torch

from hebbian.visualizers import filter_grid, receptive_field_shape
from hebbian.visualizers.grids import filter_tiles


def _tile(grid: torch.Tensor, row: int, col: int, h: int, w: int, pad: int = 1) -> torch.Tensor:
    top, left = pad + row * (h + pad), pad + col * (w + pad)
    return grid[:, top:top + h, left:left + w]


def test_rgb_conv_filters_keep_their_colour():
    weight = torch.zeros(5, 3, 4, 4)
    weight[0, 0] = 1.0  # pure red
    weight[1, 2] = -1.0  # blue channel negative: everything else is the maximum
    weight[2] = torch.randn(3, 4, 4)
    grid = filter_grid(weight, min_tile=1)
    assert grid.shape == (3, 2 * 5 + 1, 3 * 5 + 1)  # 5 filters on a 3-wide grid
    red = _tile(grid, 0, 0, 4, 4)
    assert torch.equal(red[0], torch.ones(4, 4)) and red[1:].abs().max() == 0
    yellow = _tile(grid, 0, 1, 4, 4)
    assert torch.equal(yellow[:2], torch.ones(2, 4, 4)) and yellow[2].abs().max() == 0


def test_grey_conv_filters_become_three_equal_channels():
    grid = filter_grid(torch.randn(4, 1, 3, 3), min_tile=1)
    assert grid.shape == (3, 2 * 4 + 1, 2 * 4 + 1)
    assert torch.equal(grid[0], grid[1]) and torch.equal(grid[1], grid[2])


def test_each_filter_is_normalised_on_its_own():
    base = torch.randn(1, 1, 5, 5)
    weight = torch.cat([base, 1000 * base + 7, -base])
    grid = filter_grid(weight, nrow=3, min_tile=1)
    tiles = [_tile(grid, 0, c, 5, 5) for c in range(3)]
    for tile in tiles:
        assert tile.min() == 0 and tile.max() == pytest.approx(1.0)
    assert torch.allclose(tiles[0], tiles[1], atol=1e-5)  # scale and offset do not matter
    assert torch.allclose(tiles[2], 1 - tiles[0], atol=1e-5)  # sign does


def test_fully_connected_units_are_reshaped_to_the_input_image():
    weight = torch.arange(64.0).repeat(6, 1)
    weight[1] = -weight[1]
    grid = filter_grid(weight, min_tile=1)  # 64 = 8 x 8 inferred
    assert grid.shape == (3, 2 * 9 + 1, 3 * 9 + 1)
    expected = torch.arange(64.0).reshape(8, 8) / 63
    assert torch.allclose(_tile(grid, 0, 0, 8, 8)[0], expected)
    assert torch.allclose(_tile(grid, 0, 1, 8, 8)[0], 1 - expected)


def test_fully_connected_rgb_and_explicit_shapes():
    assert receptive_field_shape(3 * 32 * 32) == (3, 32, 32)
    assert receptive_field_shape(784) == (1, 28, 28)
    assert receptive_field_shape(12, (3, 4)) == (1, 3, 4)
    assert receptive_field_shape(24, (2, 3, 4)) == (2, 3, 4)
    grid = filter_grid(torch.randn(4, 48), min_tile=1)  # 48 = 3 x 4 x 4 -> colour
    assert grid.shape == (3, 2 * 5 + 1, 2 * 5 + 1)
    assert not torch.equal(grid[0], grid[1])
    assert filter_grid(torch.randn(2, 12), input_shape=(3, 4), min_tile=1).shape == (3, 3 + 2, 2 * 4 + 3)


def test_bad_shapes_are_refused_with_the_parameter_named():
    with pytest.raises(ValueError, match="input_shape"):
        receptive_field_shape(64, (3, 8, 8))
    with pytest.raises(ValueError, match="input_shape"):
        filter_grid(torch.randn(4, 10), min_tile=1)  # 10 is neither s^2 nor 3 s^2
    with pytest.raises(ValueError, match="weight"):
        filter_grid(torch.randn(4, 2, 3), min_tile=1)
    with pytest.raises(ValueError, match="max_filters"):
        filter_grid(torch.randn(4, 1, 3, 3), max_filters=0, min_tile=1)


def test_max_filters_limits_the_first_layer_grid():
    grid = filter_grid(torch.randn(100, 1, 2, 2), max_filters=9, min_tile=1)
    assert grid.shape == (3, 3 * 3 + 1, 3 * 3 + 1)


def test_deeper_conv_layers_show_the_strongest_units_per_input_channel():
    weight = 0.01 * torch.randn(10, 16, 3, 3)
    strong_units, strong_channels = [2, 5, 7, 9], [1, 4, 8]
    for u in strong_units:
        weight[u, strong_channels] *= 100 * (u + 1)
    tiles, per_row = filter_tiles(weight, max_filters=4, max_channels=3)
    assert per_row == 3
    expected = weight[strong_units][:, strong_channels].reshape(12, 1, 3, 3)
    assert torch.equal(tiles, expected)
    grid = filter_grid(weight, max_filters=4, max_channels=3, min_tile=1)
    assert grid.shape == (3, 4 * 4 + 1, 3 * 4 + 1)  # one row per unit, one column per channel


def test_filter_grid_leaves_the_thread_count_as_it_was():
    before = torch.get_num_threads()
    filter_grid(torch.randn(8, 1, 3, 3), min_tile=1)
    assert torch.get_num_threads() == before


def test_small_filters_are_enlarged_to_at_least_min_tile_pixels_without_smoothing():
    weight = torch.randn(4, 1, 5, 5)
    grid = filter_grid(weight, min_tile=24, padding=0, nrow=2)
    assert grid.shape == (3, 2 * 25, 2 * 25)  # factor ceil(24 / 5) = 5
    assert torch.equal(grid[:, :25:5, :25:5], filter_grid(weight, min_tile=1, padding=0, nrow=2)[:, :5, :5])
    assert filter_grid(torch.randn(2, 1, 28, 28), min_tile=24).shape[-1] == 2 * 28 + 3  # large enough: unchanged
    with pytest.raises(ValueError, match="min_tile"):
        filter_grid(weight, min_tile=0)
