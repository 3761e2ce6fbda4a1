"""The krotov_hopfield probe: the top layer's equations against float64 loops, and the protocol's behaviour."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hebbian.models.layers import RePU
from hebbian.probes import KrotovHopfieldProbe, create_probe, get_probe_info
from hebbian.probes.krotov_hopfield import hidden_cut, top_layer_loss, top_layer_output


def test_top_layer_output_and_loss_match_float64_loops():
    g = torch.Generator().manual_seed(0)
    a, s = torch.rand(4, 5, generator=g, dtype=torch.float64), torch.randn(3, 5, generator=g, dtype=torch.float64)
    labels, beta, m = torch.tensor([0, 2, 1, 2]), 0.7, 6.0
    c = top_layer_output(a, s, beta)
    total = 0.0
    for i in range(4):
        for alpha in range(3):
            expected = math.tanh(beta * sum(float(s[alpha, mu]) * float(a[i, mu]) for mu in range(5)))
            assert abs(float(c[i, alpha]) - expected) < 1e-12
            t = 1.0 if alpha == int(labels[i]) else -1.0
            total += abs(expected - t) ** m
    assert abs(float(top_layer_loss(c, labels, m)) - total) < 1e-9


class CountingLoader:
    """A loader that counts how often it is iterated (the test split must be read once)."""

    def __init__(self, dataset, batch_size):
        self.loader, self.passes = DataLoader(dataset, batch_size=batch_size), 0

    def __iter__(self):
        self.passes += 1
        return iter(self.loader)

    def __len__(self):
        return len(self.loader)


def clusters(n, seed):
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[3.0, 0, 0, 0], [0, 3.0, 0, 0], [0, 0, 3.0, 0]])
    y = torch.randint(0, 3, (n,), generator=g)
    return TensorDataset(centres[y] + 0.5 * torch.randn(n, 4, generator=g), y)


def model():
    torch.manual_seed(0)
    hidden = nn.Linear(4, 30, bias=False)
    with torch.no_grad():
        hidden.weight.copy_(torch.cat([torch.eye(4)] * 7 + [torch.zeros(2, 4)]))
    return nn.Sequential(nn.Flatten(), hidden, RePU(3.0), nn.Linear(30, 3))


def test_probe_learns_chooses_on_validation_and_reads_the_test_split_once():
    net = model()
    test = CountingLoader(clusters(300, 1), 100)
    probe = KrotovHopfieldProbe(net, n=3.0, m=4.0, beta_grid=[0.1, 1.0], epochs=15, lr=0.05, batch_size=50)
    metrics = probe.run(DataLoader(clusters(600, 0), batch_size=100), test)
    assert test.passes == 1
    assert metrics["test_accuracy"] > 0.95 and metrics["val_accuracy"] > 0.95
    assert [h["beta"] for h in probe.history] == [0.1, 1.0] and all(len(h["val_curve"]) == 15 for h in probe.history)
    chosen = max(probe.history, key=lambda h: h["val_accuracy"])
    assert metrics["val_accuracy"] == chosen["val_accuracy"]
    assert metrics["readout_epoch"] == chosen["val_curve"].index(chosen["val_accuracy"]) + 1
    assert hidden_cut(net) == 2  # the RePU child: the probe applies its own power to the currents before it


def test_registered_with_its_defaults_and_refuses_bad_parameters():
    info = get_probe_info("krotov_hopfield")
    assert {"n", "m", "beta_grid", "epochs", "lr", "batch_size", "validation_fraction"} <= set(info.defaults)
    assert isinstance(create_probe("krotov_hopfield", model(), epochs=1), KrotovHopfieldProbe)
    with pytest.raises(TypeError, match="does not take"):
        create_probe("krotov_hopfield", model(), l2_grid=[1.0])
    for bad, match in [({"n": 0}, "n must"), ({"m": 0.5}, "m must"), ({"beta_grid": []}, "beta_grid"),
                       ({"beta_grid": [-1.0]}, "beta_grid"), ({"epochs": 0}, "epochs"),
                       ({"validation_fraction": 1.0}, "validation_fraction"), ({"lr": 0}, "lr")]:
        with pytest.raises(ValueError, match=match):
            KrotovHopfieldProbe(model(), **bad)
    with pytest.raises(TypeError, match="nn.Sequential"):
        KrotovHopfieldProbe(nn.Linear(2, 2))
