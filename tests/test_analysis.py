"""hebbian.analysis (selectivity, pairwise correlation) against float64 references on hand-made responses, and
Experiment.rule_metrics on the default job: BCM's units become selective, Földiák's decorrelate, and both beat their
controls (seed 0, a few seconds each)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from hebbian.analysis import mean_abs_correlation, selectivity, unit_metrics


def test_selectivity_of_hand_made_units():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    responses = torch.tensor([[1.0, 1.0, 0.0], [1.0, 3.0, 0.0],   # unit 0: only class 0; unit 1: every class alike
                              [0.0, 2.0, 0.0], [0.0, 2.0, 0.0],   # unit 2: never responds
                              [0.0, 2.0, 0.0], [0.0, 2.0, 0.0]])
    got = selectivity(responses, labels, 3)
    # unit 0: class means (1, 0, 0): 1 - (1/3)/1 = 2/3, one class of three; unit 1: (2, 2, 2): 0, three of three
    assert got["selectivity"] == pytest.approx((2 / 3 + 0.0) / 2, abs=1e-15)
    assert got["classes_responded"] == pytest.approx((1 / 3 + 1.0) / 2, abs=1e-15)
    assert got["silent_units"] == pytest.approx(1 / 3, abs=1e-15)


def test_correlation_against_a_loop():
    gen = torch.Generator().manual_seed(0)
    r = torch.rand(40, 5, generator=gen, dtype=torch.float64)
    r[:, 3] = 2 * r[:, 1] + 1  # perfectly correlated with unit 1
    r[:, 4] = 0.5  # constant: left out
    a = r.numpy()[:, :4]
    pairs = [abs(np.corrcoef(a[:, i], a[:, j])[0, 1]) for i, j in itertools.permutations(range(4), 2)]
    assert mean_abs_correlation(r) == pytest.approx(sum(pairs) / len(pairs), rel=1e-12)
    assert math.isnan(mean_abs_correlation(r[:, 4:]))


def test_bad_responses_are_refused():
    with pytest.raises(ValueError, match="responses must be >= 0"):
        unit_metrics(-torch.ones(3, 2), torch.zeros(3, dtype=torch.long), 2)
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        unit_metrics(torch.ones(3, 2), torch.zeros(4, dtype=torch.long), 2)


@pytest.fixture(scope="module")
def default_job():
    from hebbian.config import resolve_config

    return resolve_config("compare_digits", ["log.progress=false"])


def _run(cfg, method: str):
    from hebbian.config import method_config
    from hebbian.experiment import Experiment

    exp = Experiment(method_config(cfg, method, ["seed=0"]))
    exp.fit()
    return exp, exp.probe(), exp.control(), exp.rule_metrics()


def test_bcm_units_become_selective_on_digits(default_job):
    exp, probe, control, metrics = _run(default_job, "bcm")
    assert probe["probe_test_accuracy"] > control["control_probe_test_accuracy"] + 0.02
    assert metrics["unit_selectivity"] > metrics["unit_selectivity_initial"] + 0.1
    assert metrics["unit_classes_responded"] < metrics["unit_classes_responded_initial"] - 0.08
    assert exp.trainer.bindings[0].rule.theta.shape == (20,)


def test_foldiak_units_decorrelate_on_digits(default_job):
    exp, probe, control, metrics = _run(default_job, "foldiak")
    assert probe["probe_test_accuracy"] > control["control_probe_test_accuracy"] + 0.03
    assert metrics["unit_correlation"] < metrics["unit_correlation_initial"] - 0.02
    layer = exp.model.lateral1
    rates = exp.layer_responses(exp.data.test)[0].mean(dim=0)
    assert 0.05 < float(rates.mean()) < 0.25  # towards the target firing rate p = 1/8 (from 1/2 untrained)
    assert bool((layer.lateral <= 0).all()) and float(layer.lateral.min()) < -0.5
    # the control and the "initial" metrics ran with the untrained lateral weights and thresholds, restored after
    assert torch.equal(exp.initial_buffers["lateral1.lateral"], torch.zeros(20, 20))
    assert not torch.equal(layer.lateral, torch.zeros(20, 20))
