"""The handlers' output, read back from the event files with TensorBoard's own event reader."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hebbian.visualizers import unit_convergence, unit_norms

from viz_helpers import EPOCH_LENGTH, EPOCHS, EVERY_ITERS

ITERS = EPOCHS * EPOCH_LENGTH


def _events(tb_runs, run: str) -> EventAccumulator:
    acc = EventAccumulator(str(tb_runs["logdir"] / run), size_guidance={"images": 0, "histograms": 0, "scalars": 0})
    acc.Reload()
    return acc


def _png(event) -> np.ndarray:
    image = Image.open(io.BytesIO(event.encoded_image_string))
    assert image.format == "PNG" and image.size == (event.width, event.height)
    return np.asarray(image.convert("RGB"))


def test_fc_tags_are_those_of_the_bound_layer(tb_runs):
    tags = _events(tb_runs, "fc").Tags()
    assert tags["images"] == ["filters/1"]
    assert set(tags["histograms"]) == {"unit_norm/1", "weights/1/weight", "updates/1"}
    assert set(tags["scalars"]) == {
        "unit_convergence/1", "update_norm/1", "activation/mean/1", "activation/dead_fraction/1",
        "activation/winner_usage/1",
    }


def test_fc_filter_grid_is_a_grid_of_8x8_receptive_fields(tb_runs):
    images = _events(tb_runs, "fc").Images("filters/1")
    assert [e.step for e in images] == list(range(1, EPOCHS + 1))
    pixels = _png(images[-1])
    assert pixels.shape == (4 * 25 + 1, 4 * 25 + 1, 3)  # 16 units, 4 per row, 8x8 tiles enlarged to 24x24, padding 1
    big = pixels[1:25, 1:25]
    assert (big == big[::3, ::3].repeat(3, axis=0).repeat(3, axis=1)).all()  # each weight a 3x3 block, no smoothing
    tile = big[::3, ::3]
    assert (tile[..., 0] == tile[..., 1]).all()  # grey
    assert tile.min() == 0 and tile.max() == 255  # normalised per filter
    w = tb_runs["fc"][1].weight.detach()[0].reshape(8, 8)
    expected = ((w - w.min()) / (w.max() - w.min()) * 255).numpy()
    assert np.abs(tile[..., 0].astype(float) - expected).max() <= 1.0


def test_fc_unit_convergence_matches_the_final_weights(tb_runs):
    acc = _events(tb_runs, "fc")
    values = acc.Scalars("unit_convergence/1")
    assert [e.step for e in values] == list(range(1, EPOCHS + 1))
    assert all(0.0 <= e.value <= 1.0 for e in values)
    weight = tb_runs["fc"][1].weight
    assert values[-1].value == pytest.approx(unit_convergence(weight, p=3.0, tol=0.1))  # the rule's p=3
    hist = acc.Histograms("unit_norm/1")[-1].histogram_value
    norms = unit_norms(weight, 3.0)
    assert hist.num == 16
    assert hist.min == pytest.approx(float(norms.min()), rel=1e-5)
    assert hist.max == pytest.approx(float(norms.max()), rel=1e-5)


def test_fc_weight_and_update_histograms(tb_runs):
    acc = _events(tb_runs, "fc")
    weights = acc.Histograms("weights/1/weight")[-1].histogram_value
    w = tb_runs["fc"][1].weight.detach()
    assert weights.num == w.numel()
    assert weights.min == pytest.approx(float(w.min()), rel=1e-5)
    updates = acc.Histograms("updates/1")
    assert [e.step for e in updates] == list(range(1, EPOCHS + 1))
    delta = tb_runs["fc_trainer"].state.hebbian_updates["1"]
    assert updates[-1].histogram_value.num == delta.numel()
    assert updates[-1].histogram_value.max == pytest.approx(float(delta.max()), rel=1e-5)


def test_fc_iteration_scalars_are_rate_limited_and_sensible(tb_runs):
    acc = _events(tb_runs, "fc")
    steps = list(range(EVERY_ITERS, ITERS + 1, EVERY_ITERS))
    norms = acc.Scalars("update_norm/1")
    assert [e.step for e in norms] == steps
    assert all(e.value > 0 for e in norms)
    for key in ("dead_fraction", "winner_usage"):
        values = acc.Scalars(f"activation/{key}/1")
        assert [e.step for e in values] == steps  # recorded although the trainer cuts its forward pass short
        assert all(0.0 <= e.value <= 1.0 for e in values)
    assert all(math.isfinite(e.value) for e in acc.Scalars("activation/mean/1"))


def test_conv_run_with_attach_visualizers(tb_runs):
    acc = _events(tb_runs, "conv")
    tags = acc.Tags()
    assert tags["images"] == ["filters/0"]  # the readout (layer 3) is not a Hebbian layer
    assert {"unit_norm/0", "weights/0/weight", "updates/0"} <= set(tags["histograms"])
    assert "weights/3/weight" not in tags["histograms"]
    pixels = _png(acc.Images("filters/0")[-1])
    assert pixels.shape == (3 * 25 + 1, 3 * 25 + 1, 3)  # 8 filters 3x3 (enlarged 8x to 24x24) on a 3x3 grid
    usage = acc.Scalars("activation/winner_usage/0")  # SoftHebb is competitive
    assert len(usage) == ITERS // EVERY_ITERS and all(0.0 <= e.value <= 1.0 for e in usage)
    assert all(0.0 <= e.value <= 1.0 for e in acc.Scalars("unit_convergence/0"))


def test_conv_probe_statistics_are_those_of_the_probe_batch(tb_runs):
    """With a probe, the last logged mean activation is the conv layer's mean output on the probe at that time."""
    acc = _events(tb_runs, "conv")
    means = acc.Scalars("activation/mean/0")
    assert [e.step for e in means] == list(range(EVERY_ITERS, ITERS + 1, EVERY_ITERS))
    handler = tb_runs["conv_handlers"]["activations"]
    stats = handler.recorder.probe(tb_runs["conv"], tb_runs["probe"])
    with torch.no_grad():
        expected = tb_runs["conv"][0](tb_runs["probe"]).mean()
    assert float(stats["0"]["mean"]) == pytest.approx(float(expected), rel=1e-5)
