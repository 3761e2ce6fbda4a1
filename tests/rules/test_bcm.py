"""BCM (``bcm``) against an independent float64 reference written from Intrator & Cooper's equations, over several
batches (the running-average threshold), for a fully connected and a convolution layer.

The reference never calls the library's helpers: it slices every input window with explicit loops, computes each
unit's response y = f(w . P), steps the threshold theta <- theta + (mean y^2 - theta) / tau (theta = mean y^2 at the
first batch) and accumulates y (y - theta) P sample by sample.
"""

from __future__ import annotations

import io
from typing import List, Optional, Tuple

import numpy as np
import pytest
import torch
from torch import nn

import hebbian.rules as R

M = 4


def windows(x: np.ndarray, kernel: int, stride: int, padding: int) -> List[List[np.ndarray]]:
    """Per sample, the flattened (C, k, k) windows of a zero-padded Conv2d input, by explicit slicing."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out = (xp.shape[2] - kernel) // stride + 1, (xp.shape[3] - kernel) // stride + 1
    return [[xp[n, :, i * stride:i * stride + kernel, j * stride:j * stride + kernel].reshape(-1).copy()
             for i in range(out[0]) for j in range(out[1])] for n in range(x.shape[0])]


def reference_bcm(W: np.ndarray, patches: List[np.ndarray], theta: Optional[np.ndarray], tau: float,
                  activation: str, normalize: str) -> Tuple[np.ndarray, np.ndarray]:
    """One batch: (Delta W, the new theta) from the (sample, position) patches."""
    Wf = W.reshape(M, -1)
    f = (lambda v: max(v, 0.0)) if activation == "relu" else (lambda v: v)
    ys = [[f(float(Wf[k] @ P)) for k in range(M)] for P in patches]
    S = len(patches)
    mean_y2 = np.array([sum(y[k] ** 2 for y in ys) / S for k in range(M)])
    theta = mean_y2 if theta is None else np.array([theta[k] + (mean_y2[k] - theta[k]) / tau for k in range(M)])
    acc = np.zeros_like(Wf)
    for P, y in zip(patches, ys):
        for k in range(M):
            acc[k] += y[k] * (y[k] - theta[k]) * P
    if normalize == "mean":
        acc = acc / S
    elif normalize == "max_abs":
        acc = acc / np.abs(acc).max()
    return acc.reshape(W.shape), theta


VARIANTS = [{}, {"tau": 3.0, "activation": "identity", "normalize": "sum"}, {"tau": 1.0, "normalize": "max_abs"}]


def make(kind: str, seed: int):
    gen = torch.Generator().manual_seed(seed)
    layer = (nn.Linear(5, M, bias=True) if kind == "linear" else nn.Conv2d(2, M, 3, stride=2, padding=1, bias=True))
    layer = layer.double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen, dtype=torch.float64) * 0.6)
        layer.bias.copy_(torch.randn(M, generator=gen, dtype=torch.float64))  # subtracted: y = f(w . x)
    shape = (7, 5) if kind == "linear" else (2, 2, 5, 5)
    batches = [torch.randn(shape, generator=gen, dtype=torch.float64) + 0.2 for _ in range(3)]
    return layer, batches


def patches_of(kind: str, x: torch.Tensor) -> List[np.ndarray]:
    if kind == "linear":
        return [row.copy() for row in x.numpy()]
    return [p for per_sample in windows(x.numpy(), 3, 2, 1) for p in per_sample]


@pytest.mark.parametrize("kind", ["linear", "conv"])
@pytest.mark.parametrize("hp", VARIANTS, ids=lambda hp: ",".join(f"{k}={v}" for k, v in hp.items()) or "defaults")
def test_matches_reference_over_batches(kind, hp):
    """Three batches with a weight step in between: Delta W and the running threshold agree at every batch."""
    defaults = {"tau": 20.0, "activation": "relu", "normalize": "mean"}  # as documented in docs/rules.md
    assert R.create("bcm").hyperparameters() == defaults
    ref_hp = {**defaults, **hp}
    layer, batches = make(kind, seed=len(hp) + (kind == "conv"))
    rule = R.create("bcm", **hp)
    assert rule.theta is None
    theta = None
    for x in batches:
        W = layer.weight.detach().numpy().copy()
        with torch.no_grad():
            u = layer(x)
        got = rule.update(layer, x, u)
        ref, theta = reference_bcm(W, patches_of(kind, x), theta, ref_hp["tau"], ref_hp["activation"],
                                   ref_hp["normalize"])
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(rule.theta.numpy(), theta, rtol=1e-12, atol=1e-14)
        with torch.no_grad():
            layer.weight.add_(0.1 * got)


def test_threshold_is_the_same_on_every_worker():
    """Two workers' batch sums, added, give the one-process update and threshold (data-parallel exactness)."""
    layer, batches = make("linear", seed=5)
    one, workers = R.create("bcm", tau=4.0), [R.create("bcm", tau=4.0) for _ in range(2)]
    view = one.check_layer(layer)
    for x in batches:
        with torch.no_grad():
            u = layer(x)
        whole = one.update(layer, x, u)
        halves = [w.statistics(view, *view.prepare(x[s], u[s])) for w, s in zip(workers, (slice(0, 3), slice(3, 7)))]
        reduced = [{k: halves[0][k] + halves[1][k] for k in halves[0]} for _ in workers]  # each rank's all-reduce
        deltas = [w.finalize(view, r) for w, r in zip(workers, reduced)]
        for d, w in zip(deltas, workers):
            assert torch.allclose(d, whole, rtol=1e-12, atol=1e-14)
            assert torch.allclose(w.theta, one.theta, rtol=1e-13, atol=0)


def test_state_round_trip_resumes_exactly():
    """Stopping after two batches, saving the rule (torch.save, weights_only load) and continuing in a fresh rule
    gives bit for bit the updates and thresholds of the uninterrupted sequence."""
    layer, batches = make("conv", seed=7)
    batches = batches + [b.flip(0) for b in batches]
    us = []
    with torch.no_grad():
        us = [layer(x) for x in batches]
    straight = R.create("bcm", tau=3.0)
    expected = [straight.update(layer, x, u) for x, u in zip(batches, us)]
    first = R.create("bcm", tau=3.0)
    for x, u in zip(batches[:2], us[:2]):
        first.update(layer, x, u)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    resumed = R.create("bcm")
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert resumed.tau == 3.0 and torch.equal(resumed.theta, first.theta)
    for x, u, want in zip(batches[2:], us[2:], expected[2:]):
        assert torch.equal(resumed.update(layer, x, u), want)
    assert torch.equal(resumed.theta, straight.theta)


def test_a_rule_holds_one_layer_s_thresholds():
    rule = R.create("bcm")
    rule.update(nn.Linear(3, 4), torch.randn(5, 3), torch.randn(5, 4))
    with pytest.raises(ValueError, match="thresholds theta for 4 units, but the layer has 6"):
        rule.update(nn.Linear(3, 6), torch.randn(5, 3), torch.randn(5, 6))


@pytest.mark.parametrize("hp,param", [({"tau": 0.5}, "tau"), ({"tau": 0.0}, "tau"), ({"activation": "tanh"},
                                                                                       "activation")])
def test_invalid_hyperparameters(hp, param):
    with pytest.raises(ValueError, match=rf"^{param} must"):
        R.create("bcm", **hp)
