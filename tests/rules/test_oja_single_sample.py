"""Oja, Oja's subspace rule and Sanger's GHA at batch size 1: the library's step is the published per-sample rule
(against an independent float64 reference), and their divergence on the centred digits at the comparison's rate
(0.05) is the rate's, not the rule's: a single image's step overshoots once lr * y^2 > 2, which a batch mean of y^2
avoids. A run with batch size 1 at such a rate is refused before training, naming the bound."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import hebbian.rules as R
from hebbian.config import method_config, resolve_config
from hebbian.errors import ConfigError
from hebbian.experiment import Experiment, load_data
from hebbian.rules.oja import overshoot_lr

RULES = ("oja", "oja_subspace", "sanger")


def reference_step(rule: str, w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """One sample's update, from the equations: dw_i = y_i (x - sum_k c_ik y_k w_k), y = W x, with c_ik = [k = i]
    (Oja), 1 (subspace) or [k <= i] (Sanger)."""
    y = w @ x
    dw = np.zeros_like(w)
    for i in range(w.shape[0]):
        back = np.zeros_like(x)
        for k in range(w.shape[0]):
            if (rule == "oja" and k == i) or rule == "oja_subspace" or (rule == "sanger" and k <= i):
                back += y[k] * w[k]
        dw[i] = y[i] * (x - back)
    return dw


def reference_run(rule: str, x: np.ndarray, w: np.ndarray, lr: float, batch: int = 1) -> np.ndarray:
    """Mean of the per-sample updates of each batch, applied in order; stops at the first row norm above 1e3."""
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch]
        w = w + lr * np.mean([reference_step(rule, w, s) for s in chunk], axis=0)
        if not np.isfinite(w).all() or np.abs(w).max() > 1e3:
            break
    return w


def unit_rows(m: int, d: int, seed: int) -> np.ndarray:
    w = np.random.default_rng(seed).standard_normal((m, d))
    return w / np.linalg.norm(w, axis=1, keepdims=True)


@pytest.mark.parametrize("rule", RULES)
def test_the_batch_one_step_is_the_published_per_sample_rule(rule):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 6)) * np.array([3.0, 2.0, 1.5, 1.0, 0.5, 0.2])
    layer = nn.Linear(6, 4, bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(unit_rows(4, 6, 2)))
    w, lr, learner = layer.weight.detach().numpy().copy(), 0.02, R.create(rule)
    for sample in x:  # 40 steps of batch size 1, through the library and through the reference
        xt = torch.from_numpy(sample[None])
        with torch.no_grad():
            layer.weight.add_(lr * learner.update(layer, xt, layer(xt)))
        w = w + lr * reference_step(rule, w, sample)
        np.testing.assert_allclose(layer.weight.detach().numpy(), w, rtol=1e-12, atol=1e-12)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """The comparison's centred training images, flattened, in a seeded order."""
    x = load_data(resolve_config("compare_digits")).train.tensors[0].flatten(1).double().numpy()
    return x[np.random.default_rng(0).permutation(len(x))]


@pytest.mark.parametrize("rule", RULES)
def test_the_comparison_rate_diverges_on_single_images_only_and_the_bound_holds(rule, digits):
    w0 = unit_rows(20, 64, 0)
    bound = overshoot_lr(float((digits ** 2).sum(1).max()), 1.0)
    assert 0.015 < bound < 0.017  # 2 / 123.1
    single = reference_run(rule, digits, w0, 0.05)
    assert not (np.isfinite(single).all() and np.abs(single).max() < 1e3)  # the published rule itself diverges
    batched = reference_run(rule, digits, w0, 0.05, batch=64)  # the same rate on the comparison's batches
    safe = reference_run(rule, digits, w0, 0.99 * bound)  # and on single images below the bound
    for w in (batched, safe):
        assert np.isfinite(w).all() and np.linalg.norm(w, axis=1).max() < 1.5


def test_a_batch_one_run_above_the_bound_is_refused_before_training():
    base = resolve_config("compare_digits")
    cfg = method_config(base, "sanger", ["data.batch_size=1"])  # the comparison's recipe: lr 0.05, unit rows
    with pytest.raises(ConfigError) as info:
        Experiment(cfg)
    message = str(info.value)
    assert info.value.key == "train.lr" and "use lr < 0.0162" in message and "data.batch_size" in message
    exp = Experiment(method_config(base, "sanger", ["data.batch_size=1", "train.lr=0.016", "train.epochs=1",
                                                     "probe.epochs=0"]))
    exp.fit()
    assert torch.isfinite(exp.weights["linear1"]).all() and exp.trainer.state.iteration == len(exp.data.train)
    Experiment(method_config(base, "sanger", ["data.batch_size=2"]))  # batches are not refused
