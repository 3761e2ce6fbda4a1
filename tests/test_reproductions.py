"""Reduced versions of the reproduction pipelines of docs/results.md (slow: ``pytest -m slow tests/test_reproductions.py``).

Each runs the packaged config end to end through ``hebbian train`` with a few hundred images and a handful of units,
then the probe step and the results generator, and checks that the features carry information about the labels
(well above chance), so that the full-size command in docs/results.md runs the same code path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hebbian.cli.main import main as hebbian_main
from hebbian.results import probe_checkpoints, read_run, render

pytestmark = [pytest.mark.slow, pytest.mark.data]
SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"


def root() -> str:
    path = os.environ.get("HEBBIAN_DATA_ROOT") or str(SHARED)
    if not Path(path).is_dir():
        pytest.skip("MNIST / Fashion-MNIST are not available offline (../shared/datasets or $HEBBIAN_DATA_ROOT)")
    return path


def train(tmp_path: Path, config: str, *extra: str) -> Path:
    out = tmp_path / config
    assert hebbian_main(["train", config, "--data-root", root(), "--out", str(out), "--no-progress",
                         "--no-tensorboard", *extra]) == 0
    return out


def test_krotov_mnist_2core_reduced_with_the_krotov_hopfield_top_layer(tmp_path):
    run = train(tmp_path, "krotov_mnist_2core", "--width", "0.05", "--epochs", "2", "--train-limit", "2000",
                "--test-limit", "1000", "--set", "checkpoint.every=1", "--probe-epochs", "0")
    params = {"epochs": 60, "beta_grid": [3.0, 10.0], "lr": 0.01}
    entries = probe_checkpoints(run, "krotov_hopfield", params, log=lambda *_: None)
    assert [e["epoch"] for e in entries] == [1, 2] and entries[-1]["test_accuracy"] > 0.4  # chance: 0.1
    dot = probe_checkpoints(run, "krotov_hopfield", params, epochs=[2], tag="dot",
                            overrides=[("model.options.readout_current", "dot")], log=lambda *_: None)
    assert dot[-1]["test_accuracy"] > 0.4
    text = render(f"<!-- runs: {run.name} -->\n<!-- curve: {run.name} krotov_hopfield-dot -->", [read_run(run)])
    assert "krotov_hopfield-dot (epoch 2)" in text and "--tag dot" in text


def test_krotov_fashion_conv_reduced(tmp_path):
    run = train(tmp_path, "krotov_fashion_conv", "--width", "0.05", "--epochs", "1", "--batch-size", "64",
                "--train-limit", "1000", "--test-limit", "500", "--probe-epochs", "3")
    assert json.loads((run / "metrics.json").read_text())["probe_test_accuracy"] > 0.5


def test_deephebb_fashion_cpu_reduced(tmp_path):
    run = train(tmp_path, "deephebb_fashion_cpu", "--train-limit", "2000", "--test-limit", "500",
                "--probe-epochs", "10")
    assert json.loads((run / "metrics.json").read_text())["probe_test_accuracy"] > 0.4


@pytest.mark.parametrize("config", ["krotov_fashion_conv_2core", "krotov_fashion_conv_centered"])
def test_krotov_fashion_conv_reduced_with_checkpoint_probes(tmp_path, config):
    run = train(tmp_path, config, "--width", "0.05", "--epochs", "2", "--train-limit", "400",
                "--test-limit", "300", "--set", "checkpoint.every=1")
    entries = probe_checkpoints(run, "pytorch_hebbian", {"epochs": 3}, control=True,
                                overrides=[("data.eval_batch_size", 100)], log=lambda *_: None)
    assert [e["epoch"] for e in entries] == [0, 1, 2] and entries[-1]["test_accuracy"] > 0.3  # chance: 0.1
    made = json.loads((run / "provenance.json").read_text())
    text = render(f"<!-- runs: {run.name} -->\n<!-- curve: {run.name} pytorch_hebbian -->", [read_run(run)])
    assert made["command"] in text and "--config data.eval_batch_size=100" in text


def test_deephebb_fashion_quarter_reduced_through_compare(tmp_path):
    out = tmp_path / "deephebb_fashion_quarter"
    assert hebbian_main(["compare", "deephebb_fashion_quarter", "--data-root", root(), "--train-limit", "300",
                         "--test-limit", "200", "--epochs", "1", "--probe-epochs", "2", "--width", "0.0625",
                         "--no-progress", "--no-tensorboard", "--out", str(out)]) == 0
    text = render("<!-- compare: deephebb_fashion_quarter -->", [read_run(out)])
    assert "| softhebb |" in text and "| ghl |" in text and "| backprop |" in text
