"""SoftHebb's probe schedule: the readout's learning rate halves after fixed fractions of its epochs."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Events
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hebbian.probes import create_probe, get_probe_info
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


def _probe_data():
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(80, 3), torch.arange(80) % 2)
    return DataLoader(data, batch_size=80), nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))


def test_softhebb_probe_trains_its_readout_on_all_training_features():
    """SoftHebb's probe makes no choice (no early stopping, no plateau), so it holds nothing out: 80 features at
    batch 16 are 5 readout iterations per epoch (4 if 20% were held out, as before)."""
    loader, net = _probe_data()
    probe = create_probe("softhebb", net, epochs=2, batch_size=16)
    assert probe.validation_fraction == 0.0
    probe.run(loader)
    assert probe.readout_trainer.state.iteration == 2 * 5
    readout = create_probe("readout", net, epochs=1, batch_size=16)
    readout.run(loader)
    assert readout.validation_fraction == 0.0 and readout.readout_trainer.state.iteration == 5


def test_probes_that_choose_hold_out_a_share_and_a_share_without_a_choice_is_refused():
    loader, net = _probe_data()
    chooser = create_probe("pytorch_hebbian", net, epochs=1, batch_size=16)
    assert chooser.validation_fraction == 0.2
    chooser.run(loader)
    assert chooser.readout_trainer.state.iteration == 4  # 64 of the 80 train the readout, 16 drive the choice
    assert create_probe("readout", net, early_stopping_patience=3).validation_fraction == 0.2
    assert create_probe("readout", net, plateau_patience=2, validation_fraction=0.1).validation_fraction == 0.1
    with pytest.raises(ValueError, match=r"validation_fraction=0\.2 holds out training features that nothing "):
        create_probe("softhebb", net, validation_fraction=0.2)
    with pytest.raises(ValueError, match="validation_fraction"):
        LinearProbeEvaluator(net, validation_fraction=0.1)
