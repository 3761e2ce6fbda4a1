"""SoftHebb's probe schedule: the readout's learning rate halves after fixed fractions of its epochs."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Events
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hebbian.probes import get_probe_info
from hebbian.trainers.evaluators import LinearProbeEvaluator


def test_lr_halves_after_the_milestone_epochs():
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(64, 3), torch.randint(0, 2, (64,)))
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    probe = LinearProbeEvaluator(net, epochs=10, lr=0.1, batch_size=16, lr_milestones=(0.2, 0.5, 0.55))
    seen = []
    original = probe._probe

    def spy(frozen, train, test):  # record the lr at the start of every readout epoch
        import hebbian.trainers.evaluators as ev

        real = ev.SupervisedTrainer

        class Recording(real):
            def __init__(self, net, optimizer, *a, **k):
                super().__init__(net, optimizer, *a, **k)
                self.add_event_handler(Events.EPOCH_STARTED, lambda _: seen.append(optimizer.param_groups[0]["lr"]))

        ev.SupervisedTrainer = Recording
        try:
            return original(frozen, train, test)
        finally:
            ev.SupervisedTrainer = real

    probe._probe = spy
    probe.run(DataLoader(data, batch_size=16))
    # milestones int(10 * f) = 2, 5, 5: halved after epoch 2, then twice after epoch 5
    assert seen == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.05, 0.0125, 0.0125, 0.0125, 0.0125, 0.0125])


def test_softhebb_preset_uses_the_published_milestones_and_bad_ones_are_refused():
    assert get_probe_info("softhebb").defaults["lr_milestones"] == (0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9)
    assert {int(50 * f) for f in get_probe_info("softhebb").defaults["lr_milestones"]} == {10, 17, 25, 30, 35, 40, 45}
    with pytest.raises(ValueError, match="lr_milestones"):
        LinearProbeEvaluator(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), lr_milestones=(1.5,))
