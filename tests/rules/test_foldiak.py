"""Földiák's rule (``foldiak``) against an independent float64 reference written from the paper's equations: the
feed-forward, lateral and threshold updates of one batch, and several batches of training through HebbianTrainer
(settling, capture, statistics, optimizer) against a loop that settles and learns sample by sample."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import hebbian.rules as R
from hebbian.data import in_memory_loader
from hebbian.models import FoldiakLayer
from hebbian.optim import Local
from hebbian.trainers import HebbianTrainer

M, D = 4, 5


def reference_learn(Q, W, t, x, y, alpha, gamma, p):
    """Δq_ij = mean_n y_i (x_j - q_ij); w_ij <- min(0, w_ij - alpha (mean_n y_i y_j - p^2)), w_ii = 0;
    t_i <- t_i + gamma (mean_n y_i - p). Returns (ΔQ, new W, new t)."""
    S = x.shape[0]
    dQ = np.zeros_like(Q)
    for n in range(S):
        for i in range(Q.shape[0]):
            for j in range(Q.shape[1]):
                dQ[i, j] += y[n, i] * (x[n, j] - Q[i, j]) / S
    W2 = W.copy()
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            co = sum(y[n, i] * y[n, j] for n in range(S)) / S
            W2[i, j] = 0.0 if i == j else min(0.0, W[i, j] - alpha * (co - p * p))
    t2 = np.array([t[i] + gamma * (sum(y[n, i] for n in range(S)) / S - p) for i in range(len(t))])
    return dQ, W2, t2


def reference_output(Q, W, t, x, gain, steps, rate):
    """The settled binary output y_i = [y*_i > 1/2], sample by sample (Euler steps of Földiák's equation)."""
    out = np.zeros((x.shape[0], Q.shape[0]))
    for n in range(x.shape[0]):
        y = np.zeros(Q.shape[0])
        for _ in range(steps):
            v = Q @ x[n] + W @ y - t
            y = y + rate * (1.0 / (1.0 + np.exp(-gain * v)) - y)
        out[n] = y > 0.5
    return out


def make_layer(output: str = "binary", seed: int = 0) -> FoldiakLayer:
    gen = torch.Generator().manual_seed(seed)
    layer = FoldiakLayer(D, M, gain=6.0, steps=20, rate=0.25, output=output).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(M, D, generator=gen, dtype=torch.float64) * 0.7)
        layer.lateral.copy_(torch.tensor([[0, -0.3, 0, -0.1], [-0.3, 0, -0.2, 0], [0, -0.2, 0, 0], [-0.1, 0, 0, 0]],
                                         dtype=torch.float64))
        layer.threshold.copy_(torch.tensor([0.1, -0.2, 0.0, 0.3], dtype=torch.float64))
    return layer


@pytest.mark.parametrize("output", ["binary", "rate"])
@pytest.mark.parametrize("hp", [{}, {"alpha": 0.7, "gamma": 0.3, "p": 0.3}], ids=["paper", "other"])
def test_one_batch_matches_reference(hp, output):
    ref_hp = {"alpha": 0.1, "gamma": 0.02, "p": 0.125, **hp}  # Földiák 1990's values are the defaults
    assert R.create("foldiak").hyperparameters() == {"alpha": 0.1, "gamma": 0.02, "p": 0.125}
    layer = make_layer(output)
    x = torch.randn(9, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    Q, W, t = (a.detach().numpy().copy() for a in (layer.weight, layer.lateral, layer.threshold))
    y = reference_output(Q, W, t, x.numpy(), 6.0, 20, 0.25)
    assert 0 < y.mean() < 1  # some units fire, some not
    with torch.no_grad():
        u = layer(x)
    got = R.create("foldiak", **hp).update(layer, x, u)
    dQ, W2, t2 = reference_learn(Q, W, t, x.numpy(), y, ref_hp["alpha"], ref_hp["gamma"], ref_hp["p"])
    np.testing.assert_allclose(got.numpy(), dQ, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer.lateral.numpy(), W2, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer.threshold.numpy(), t2, rtol=1e-12, atol=1e-14)
    assert torch.equal(layer.weight.detach(), torch.from_numpy(Q))  # the feed-forward step is the optimizer's


def test_training_through_the_trainer_matches_reference():
    """Three batches through HebbianTrainer (one forward pass each: settle, capture, rule, Local step with beta)
    equal the reference loop: settle every sample, learn q, w and t, then the next batch."""
    beta, hp = 0.3, {"alpha": 0.4, "gamma": 0.2, "p": 0.25}
    layer = make_layer()
    net = nn.Sequential(OrderedDict(lat=layer, head=nn.Linear(M, 3))).double()
    Q, W, t = (a.detach().numpy().copy() for a in (layer.weight, layer.lateral, layer.threshold))
    start = Q.copy(), W.copy(), t.copy()
    gen = torch.Generator().manual_seed(2)
    data = torch.utils.data.TensorDataset(torch.randn(24, D, generator=gen, dtype=torch.float64),
                                          torch.zeros(24, dtype=torch.long))
    trainer = HebbianTrainer(net, {"lat": R.create("foldiak", **hp)}, Local([layer.weight], lr=beta))
    trainer.run(in_memory_loader(data, 8, shuffle=False), max_epochs=1)
    for batch in data.tensors[0].numpy().reshape(3, 8, D):
        y = reference_output(Q, W, t, batch, 6.0, 20, 0.25)
        dQ, W, t = reference_learn(Q, W, t, batch, y, **hp)
        Q = Q + beta * dQ
    np.testing.assert_allclose(layer.weight.detach().numpy(), Q, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer.lateral.numpy(), W, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer.threshold.numpy(), t, rtol=1e-12, atol=1e-14)
    assert all(np.abs(a - b).max() > 1e-2 for a, b in zip((Q, W, t), start))  # all three learned


def test_workers_take_the_same_lateral_and_threshold_step():
    """Two workers' batch sums, added and finalized on each worker's copy of the layer, give every copy the
    one-process lateral weights and thresholds."""
    rule = R.create("foldiak", alpha=0.5, gamma=0.2)
    layers = [make_layer() for _ in range(3)]
    x = torch.randn(10, D, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    with torch.no_grad():
        u = layers[0](x)
    whole = rule.update(layers[0], x, u)
    views = [rule.check_layer(layer) for layer in layers[1:]]
    halves = [rule.statistics(views[0], *views[0].prepare(x[s], u[s])) for s in (slice(0, 4), slice(4, 10))]
    for view in views:
        delta = rule.finalize(view, {k: halves[0][k] + halves[1][k] for k in halves[0]})
        assert torch.allclose(delta, whole, rtol=1e-12, atol=1e-14)
        assert torch.allclose(view.layer.lateral, layers[0].lateral, rtol=1e-13, atol=1e-15)
        assert torch.allclose(view.layer.threshold, layers[0].threshold, rtol=1e-13, atol=1e-15)


def test_lateral_weights_stay_inhibitory_without_self_connections():
    layer = make_layer()
    x = torch.randn(50, D, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    rule = R.create("foldiak", alpha=2.0)
    for _ in range(5):
        with torch.no_grad():
            rule.update(layer, x, layer(x))
    assert bool((layer.lateral <= 0).all()) and bool((layer.lateral.diagonal() == 0).all())
    assert torch.equal(layer.lateral, layer.lateral.t())


def test_other_layers_are_refused_by_name():
    with pytest.raises(TypeError, match="rule 'foldiak' trains a hebbian.models.FoldiakLayer .*got Linear"):
        R.create("foldiak").update(nn.Linear(3, 2), torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(TypeError, match="rule 'foldiak' cannot train convolution layers"):
        R.create("foldiak").update(nn.Conv2d(1, 2, 3), torch.randn(1, 1, 4, 4), torch.randn(1, 2, 2, 2))
    with pytest.raises(TypeError, match="layer 'fc': rule 'foldiak' trains a hebbian.models.FoldiakLayer"):
        HebbianTrainer(nn.Sequential(OrderedDict(fc=nn.Linear(3, 2))), {"fc": "foldiak"},
                       Local(nn.Linear(3, 2).parameters(), lr=0.1))


@pytest.mark.parametrize("hp,param", [({"p": 1.0}, "p"), ({"p": 0.0}, "p"), ({"alpha": -1.0}, "alpha"),
                                      ({"gamma": math.nan}, "gamma")])
def test_invalid_hyperparameters(hp, param):
    with pytest.raises(ValueError, match=rf"^{param} must"):
        R.create("foldiak", **hp)
