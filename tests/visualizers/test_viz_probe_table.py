"""A probe's candidate settings and its choice go to TensorBoard's Text tab (not scalars over the grid index)."""

from __future__ import annotations

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from hebbian.data import in_memory_loader, load_dataset
from hebbian.probes import LogisticProbe
from hebbian.visualizers.probe_table import attach_probe_table, selection_table


def test_the_l2_grid_is_one_table_per_probe_run_at_the_training_epoch(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10))
    data = load_dataset("digits", limit=400)
    probe = LogisticProbe(model, l2_grid=[1e-3, 1e-1, 10.0], max_iter=50)
    with SummaryWriter(str(tmp_path)) as writer:
        attach_probe_table(writer, probe, "control_probe", step=lambda: 7)
        metrics = probe.run(in_memory_loader(data, 200, shuffle=False), in_memory_loader(data, 200, shuffle=False))
    acc = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0, "scalars": 0})
    acc.Reload()
    assert acc.Tags()["scalars"] == []  # no probe/* scalars over the grid index 1, 2, 3
    [event] = acc.Tensors("control_probe/selection/text_summary")
    assert event.step == 7
    text = event.tensor_proto.string_val[0].decode()
    lines = text.splitlines()
    assert lines[0].startswith("| L2 strength λ | validation acc. (%) |")
    rows = [line.split(" | ") for line in lines[2:5]]
    assert [r[0] for r in rows] == ["| 10", "| 0.1", "| 0.001"]  # strongest first, as fitted
    for row, fit in zip(rows, probe.history):
        assert row[1] == f"{100 * fit['val_accuracy']:.2f}"
    chosen = [r[0][2:] for r in rows if r[-1].startswith("✔")]
    assert chosen == [f"{metrics['l2']:g}"]
    assert f"test accuracy {100 * metrics['test_accuracy']:.2f}%" in text


def test_a_probe_without_a_grid_gives_its_one_row_unmarked():
    text = selection_table([{"train_accuracy": 0.5, "test_accuracy": 0.4}], {"test_accuracy": 0.4})
    assert text.splitlines()[2] == "| 50.00 |" and "chosen" not in text
    assert selection_table([], {}) == ""
