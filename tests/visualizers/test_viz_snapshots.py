"""Filters over training: FilterSnapshots keeps the weights at the chosen epochs during a real HebbianTrainer run;
the strip and the GIF hold one panel / frame per kept step, in order."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Events
from PIL import Image
from viz_helpers import digits_loader, fc_model

from hebbian.optim import Local
from hebbian.rules import create
from hebbian.trainers import HebbianTrainer
from hebbian.visualizers import (
    FilterSnapshots,
    filter_grid,
    plot_filters_over_training,
    save_filter_animation,
    snapshot_grids,
)


def _train(steps, epochs=3, event=Events.EPOCH_COMPLETED):
    torch.manual_seed(0)
    model = fc_model()
    trainer = HebbianTrainer(model, {"1": create("oja")}, Local(model.parameters(), lr=0.01))
    history = {}
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: history.__setitem__(e.state.epoch,
                                                                                   model[1].weight.detach().clone()))
    initial = model[1].weight.detach().clone()
    snapshots = FilterSnapshots(model[1], steps=steps).attach(trainer, event)
    trainer.run(digits_loader(), max_epochs=epochs, epoch_length=5)
    return snapshots, initial, history


def test_snapshots_hold_the_weights_at_the_chosen_epochs_only():
    snapshots, initial, history = _train([0, 1, 3])
    assert list(snapshots.weights) == [0, 1, 3]
    assert torch.equal(snapshots.weights[0], initial)
    for epoch in (1, 3):
        assert torch.equal(snapshots.weights[epoch], history[epoch])
    assert not torch.equal(snapshots.weights[1], snapshots.weights[3])  # copies, not views of the live weight


def test_every_step_with_steps_none_and_iterations():
    snapshots, _, _ = _train(None, epochs=2, event=Events.ITERATION_COMPLETED)
    assert list(snapshots.weights) == list(range(0, 11))


def test_grids_are_the_filter_grids_of_the_kept_weights():
    snapshots, _, _ = _train([0, 2], epochs=2)
    grids = snapshots.grids(max_filters=16)
    for step, grid in grids.items():
        assert torch.equal(grid, filter_grid(snapshots.weights[step], None, 16, min_tile=1))


def test_strip_has_one_titled_panel_per_step():
    snapshots, _, _ = _train([0, 1, 2], epochs=2)
    fig, axes = plot_filters_over_training(snapshots.weights, label="epoch", title="oja")
    assert [ax.get_title() for ax in axes] == ["epoch 0", "epoch 1", "epoch 2"]
    assert torch.allclose(torch.as_tensor(axes[2].images[0].get_array()),
                          snapshots.grids()[2].permute(1, 2, 0), atol=1e-6)


def test_strip_wraps_onto_rows_of_ncols_panels():
    snapshots, _, _ = _train([0, 1, 2], epochs=2)
    fig, axes = plot_filters_over_training(snapshots.weights, ncols=2)
    assert len(axes) == 3 and len(fig.axes) == 4  # 2 rows of 2, the fourth panel empty
    assert [round(ax.get_position().y0, 2) for ax in axes][0] > round(axes[2].get_position().y0, 2)
    with pytest.raises(ValueError, match="ncols"):
        plot_filters_over_training(snapshots.weights, ncols=0)


def test_animation_is_a_gif_with_one_frame_per_step(tmp_path):
    snapshots, _, _ = _train([0, 1, 2], epochs=2)
    path = save_filter_animation(snapshots.weights, tmp_path / "anim" / "filters.gif", fps=4)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 3


def test_bad_input_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="steps must be"):
        FilterSnapshots(torch.nn.Linear(4, 2), steps=[-1])
    with pytest.raises(TypeError, match="layer must be"):
        FilterSnapshots("linear1")
    with pytest.raises(ValueError, match="nothing was kept"):
        snapshot_grids({})
    with pytest.raises(ValueError, match="one shape"):
        snapshot_grids({0: torch.zeros(4, 64), 1: torch.zeros(5, 64)})
    with pytest.raises(ValueError, match=r"\.gif"):
        save_filter_animation({0: torch.zeros(4, 64)}, tmp_path / "x.png")
