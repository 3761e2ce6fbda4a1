"""Activation statistics and the armed forward hooks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hebbian.visualizers import ActivationRecorder, activation_statistics, dead_fraction, winner_usage


def test_winner_usage_is_normalised_entropy():
    assert winner_usage(torch.tensor([5.0, 5.0, 5.0, 5.0])) == pytest.approx(1.0)
    assert winner_usage(torch.tensor([0.0, 12.0, 0.0, 0.0])) == 0.0
    assert winner_usage(torch.tensor([3.0, 3.0, 0.0, 0.0])) == pytest.approx(math.log(2) / math.log(4))
    with pytest.raises(ValueError, match="wins"):
        winner_usage(torch.zeros(3))


def test_activation_statistics_hand_computed():
    u = torch.tensor([[1.0, -1.0, 0.0], [2.0, -3.0, 5.0]])  # (N=2, M=3)
    stats = activation_statistics(u, conv=False)
    assert float(stats["mean"]) == pytest.approx(4 / 6)
    assert stats["alive"].tolist() == [True, False, True]
    assert stats["wins"].tolist() == [1.0, 0.0, 1.0]
    assert dead_fraction(stats["alive"]) == pytest.approx(1 / 3)


def test_conv_statistics_count_every_position():
    u = torch.full((2, 3, 2, 2), -1.0)  # (N, M, H, W)
    u[:, 0] = 1.0
    u[0, 2, 1, 1] = 2.0
    stats = activation_statistics(u, conv=True)
    assert stats["wins"].tolist() == [7.0, 0.0, 1.0]  # 8 samples x positions
    assert stats["alive"].tolist() == [True, False, True]


def test_hooks_record_only_when_armed_and_once_per_arming():
    layer = nn.Linear(4, 3)
    model = nn.Sequential(layer, nn.ReLU())
    recorder = ActivationRecorder({"0": layer})
    model(torch.randn(5, 4))
    assert recorder.take() == {}
    recorder.arm()
    x = torch.randn(5, 4)
    model(x)
    model(torch.randn(5, 4))  # not recorded: the first pass after arming is kept
    stats = recorder.take()
    assert float(stats["0"]["mean"]) == pytest.approx(float(layer(x).detach().mean()))
    assert not recorder.armed and recorder.take() == {}
    recorder.remove()
    recorder.arm()
    model(x)
    assert recorder.take() == {}


def test_probe_runs_in_eval_mode_without_grad_and_cuts_the_forward_short():
    seen = []
    spy, layer, head = nn.Identity(), nn.Linear(4, 3), nn.Linear(3, 2)
    spy.register_forward_hook(lambda m, i, o: seen.append((m.training, torch.is_grad_enabled())))
    head.register_forward_hook(lambda *a: seen.append("head"))
    model = nn.Sequential(spy, layer, nn.Dropout(0.5), head)
    model.train()
    recorder = ActivationRecorder({"1": layer})
    x = torch.randn(6, 4)
    stats = recorder.probe(model, x)
    assert seen == [(False, False)]  # eval mode, no grad; the head is never reached
    assert model.training  # training mode restored
    assert float(stats["1"]["mean"]) == pytest.approx(float(layer(x).detach().mean()))
