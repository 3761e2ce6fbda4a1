"""hebbian.comparison: the summary statistics, and the default job (compare_digits) where the rules visibly learn."""

import math

import pytest
import torch

from hebbian.comparison import comparison_plot, mean_std, summarize, summary_markdown
from hebbian.config import method_config, resolve_config
from hebbian.experiment import Experiment, load_data

pytestmark = pytest.mark.usefixtures("single_thread")


def test_summary_gives_mean_and_sample_std_per_method():
    rows = [{"rule": "a", "kind": "hebbian", "probe_test_accuracy": v, "probe_gain": g}
            for v, g in ((0.90, 0.05), (0.94, 0.07))] + [{"rule": "b", "kind": "random", "probe_test_accuracy": 0.8}]
    a, b = summarize(rows, ["a", "b"])
    assert a["probe_test_accuracy"][0] == pytest.approx(0.92)
    assert a["probe_test_accuracy"][1] == pytest.approx(math.sqrt(((0.02 ** 2) * 2) / 1))
    assert a["control_probe_test_accuracy"] is None and b["probe_test_accuracy"] == (0.8, None)
    md = summary_markdown([a, b], 2)
    assert "| a | hebbian | 92.00 ± 2.83 |" in md and "| b | random | 80.00 |" in md
    assert mean_std([1.0]) == (1.0, None)


def test_comparison_plot_keeps_the_legend_off_the_bars_and_names_the_seed_of_the_filters():
    import matplotlib.pyplot as plt

    rows = [{"rule": m, "kind": k, "probe_test_accuracy": p, "control_probe_test_accuracy": c, "test_accuracy": t}
            for m, k, p, c, t in (("krotov", "hebbian", 0.95, 0.85, None), ("ghl", "ghl", 0.92, 0.85, 0.88),
                                  ("backprop", "backprop", 0.96, 0.85, 0.95), ("random", "random", 0.85, None, None))]
    summary = summarize(rows, ["krotov", "ghl", "backprop", "random"])
    weights = {m: torch.randn(20, 64) for m in ("krotov", "ghl", "backprop", "random")}
    fig = comparison_plot(summary, weights, (1, 8, 8), seed=3)
    try:
        fig.canvas.draw()
        bars_ax = fig.axes[0]
        legend = bars_ax.get_legend().get_window_extent()
        bars = [p.get_window_extent() for p in bars_ax.patches if math.isfinite(p.get_height())]
        assert len(bars) == 4 + 3 + 2  # probe of every method, control of three, network of two
        assert not any(legend.overlaps(b) for b in bars)  # was: lower right, over the random bar
        assert [ax.get_title() for ax in fig.axes[1:]] == [f"{m} (seed 3)" for m in weights]
    finally:
        plt.close(fig)


@pytest.fixture(scope="module")
def default_job():
    base = resolve_config("compare_digits", ["log.progress=false", "log.tensorboard=false"])
    return base, load_data(base, base["seed"])


def _trained(default_job, method):
    base, data = default_job
    exp = Experiment(method_config(base, method), data)
    exp.fit()
    return exp


@pytest.mark.parametrize("method", ["krotov", "softhebb", "competitive_oja", "instar", "swta", "hpca"])
def test_competitive_rules_move_most_units_in_the_default_job(default_job, method):
    exp = _trained(default_job, method)
    assert exp.weight_change()["linear1"] > 0.2, "the units hardly moved from their initial weights"
    assert exp.dead_units() <= 0.3, "most units should win on some training images"


def _leading_components(data, k):
    x = data.train.tensors[0].flatten(1).double()
    return torch.linalg.svd(x - x.mean(0), full_matrices=False).Vh[:k]  # the digits are centred: PCA directions


def _cosines(weight, directions):
    w = torch.nn.functional.normalize(weight.detach().flatten(1).double(), dim=1)
    return w @ directions.T


def test_oja_units_find_the_first_principal_component_in_the_default_job(default_job):
    exp = _trained(default_job, "oja")
    cos = _cosines(exp.first_layer_weight(), _leading_components(default_job[1], 1)).abs().squeeze(1)
    assert cos.median() > 0.95 and cos.min() > 0.8


def test_sanger_units_find_the_leading_components_in_order_in_the_default_job(default_job):
    exp = _trained(default_job, "sanger")
    cos = _cosines(exp.first_layer_weight()[:5], _leading_components(default_job[1], 5)).abs()
    assert torch.diagonal(cos).min() > 0.95  # unit i ~ the i-th principal component (SVD), up to sign
    assert (cos - torch.diag(torch.diagonal(cos))).max() < 0.2
