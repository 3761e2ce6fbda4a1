"""Smoke run of the benchmark code paths at minimal sizes. No wall-clock assertions: only that every path runs, the
baselines compute what they claim (they are checked against the library inside the run), and the table is written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import conv, ghl, ghl_depth, krotov  # noqa: E402
from benchmarks.report import Config, Row, format_table  # noqa: E402
from benchmarks.timing import interleaved, peak_rss_delta  # noqa: E402

EXPECTED_ROWS = [
    "Krotov FC epoch vs dense", "Krotov FC epoch vs floor", "Krotov FC published setting vs floor",
    "Krotov FC published setting, p-current layer vs floor", "in_memory_loader epoch", "Conv SoftHebb update time",
    "Conv SoftHebb update peak memory", "GHL step vs backprop (deephebb)", "GHL step vs backprop (fasthebb)",
    "GHL step vs backprop (vit)", "GHL kernel floor vs backprop (deephebb)", "GHL step vs kernel floor (fasthebb)",
    "Conv weight-gradient kernel vs forward (deephebb conv3)",
    "HebbianTrainer epoch vs bare loop", "with TensorBoard visualizers",
    "GHL step vs backprop (ResNet-20)", "GHL peak memory vs backprop (ResNet-56)",
    "GHL time ratio growth, ResNet-56 vs ResNet-20",
]


def test_quick_run_prints_and_writes_the_table_and_plots(tmp_path):
    out = tmp_path / "table.md"
    done = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--threads", "1", "--out", str(out), "--scaling",
         "--plots-dir", str(tmp_path / "plots")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name in EXPECTED_ROWS:
        assert name in done.stdout
    table = out.read_text()
    assert "Machine:" in table and "| benchmark |" in table
    ratios = [float(r) for r in re.findall(r"\| ([0-9.]+)x \|", table)]
    assert len(ratios) >= len(EXPECTED_ROWS) - 1  # the loader's absolute row has no ratio
    assert all(r > 0 for r in ratios)
    numbers = json.loads((tmp_path / "plots" / "scaling_cpu.json").read_text())
    assert len(numbers["krotov"]["hidden"]["ours"]) == len(numbers["krotov"]["hidden"]["x"]) >= 2
    assert all(t > 0 for t in numbers["deephebb"]["ghl"])
    assert (tmp_path / "plots" / "scaling_krotov.png").stat().st_size > 0


def test_interleaved_rotates_the_order_and_times_every_variant():
    calls = []
    t = interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, torch.device("cpu"), reps=3,
                    warmup=1)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert len(t.runs["a"]) == len(t.runs["b"]) == 3 and t.median("a") >= 0


def test_rows_judge_their_targets():
    assert Row("x", 1.0, 4.0, "base", target=0.5).met is True
    assert Row("x", 3.0, 4.0, "base", target=0.5).met is False
    assert Row("x", 0.05, target=0.1, kind="absolute").met is True
    text = format_table([Row("mem", 2.0 * 2**20, 8.0 * 2**20, "unfold", 0.25, kind="memory")], markdown=True)
    assert "2.0 MiB" in text and "0.25x" in text and "yes" in text


def test_dense_reference_matches_the_rule_and_a_wrong_one_is_caught(monkeypatch):
    cfg = Config(torch.device("cpu"), quick=True, reps=1)
    data = krotov.mnist_or_random(cfg, 512)
    krotov.check_same_update(data, 32, cfg.device)
    monkeypatch.setattr(krotov, "dense_step", lambda x, w, *args: torch.zeros_like(w))
    with pytest.raises(AssertionError, match="disagree"):
        krotov.check_same_update(data, 32, cfg.device)


def test_unfold_reference_equals_the_softhebb_rule():
    layer, x, u = conv.setup(True, torch.device("cpu"))
    torch.testing.assert_close(conv.ours(layer, x, u), conv.unfold_update(layer, x, u), rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_peak_rss_delta_sees_an_allocation():
    grown = peak_rss_delta("t = torch.ones(16 * 2**20 // 4)", "import torch")
    assert 15 * 2**20 <= grown <= 40 * 2**20


def test_ghl_kernel_floor_times_one_correlation_per_hebbian_weight_with_the_weights_shape():
    trainer, _ = ghl.engines("deephebb", 0.05, torch.device("cpu"))
    x = ghl.batches(1, 4, torch.device("cpu"))[0][0]
    results = ghl.correlations(trainer, x)()
    weights = [b.weight for b in trainer.bindings]
    assert len(results) == len(weights) == 3
    assert [r.shape for r in results] == [w.shape for w in weights]
    # each correlation with y = u is conv2d_weight(x, W, u) of the layer's own input and output
    seen = {}
    def keep(name):
        def hook(module, inputs, output):
            seen[name] = (inputs[0], output)
        return hook

    hooks = [getattr(trainer.model, n).register_forward_hook(keep(n)) for n in ("conv1", "conv2", "conv3")]
    with torch.no_grad():
        trainer.model(x)
    for h in hooks:
        h.remove()
    for name, result in zip(("conv1", "conv2", "conv3"), results):
        conv, (inp, out) = getattr(trainer.model, name), seen[name]
        expected = torch.nn.grad.conv2d_weight(inp, conv.weight.shape, out, padding=conv.padding)
        torch.testing.assert_close(result, expected, rtol=1e-4, atol=1e-3 * expected.abs().max().item())


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_ghl_depth_computes_the_smallest_depth_s_ratios():
    cfg = Config(torch.device("cpu"), quick=True, reps=1)
    (time_row, memory_row), ratio = ghl_depth.depth_rows(cfg, ghl_depth.DEPTHS[0], 0.25, 2)
    assert time_row.name == "GHL step vs backprop (ResNet-20)" and time_row.kind == "time"
    assert memory_row.kind == "memory" and memory_row.target == 1.15
    for row in (time_row, memory_row):
        assert row.ours > 0 and row.baseline > 0 and 0 < row.ratio < float("inf")
    assert ratio == pytest.approx(time_row.ratio)


def test_ghl_binds_every_conv_of_resnet_1202():
    net = ghl_depth.model(ghl_depth.DEPTHS[-1], 1.0, torch.device("cpu"))
    convs = {name: m.weight for name, m in net.named_modules() if isinstance(m, nn.Conv2d)}
    assert len(convs) == 6 * 200 + 1
    trainer, backprop = ghl.engines_for(net, ghl_depth.RATES)
    assert {b.name: b.weight for b in trainer.bindings}.keys() == convs.keys()
    assert all(b.weight is convs[b.name] for b in trainer.bindings)
    assert backprop.model is not net and trainer.model is net
