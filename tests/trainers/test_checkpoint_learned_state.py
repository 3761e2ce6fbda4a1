"""State beyond the weights survives a checkpoint bit for bit: BCM's thresholds (rule state) and a FoldiakLayer's
lateral weights and thresholds (model buffers), in a run interrupted mid-epoch and resumed from its file."""

from __future__ import annotations

from collections import OrderedDict

import torch
from ignite.engine import Events
from torch import nn
from torch.utils.data import TensorDataset

import hebbian.rules as R
from hebbian.data import in_memory_loader, load_dataset
from hebbian.models import FoldiakLayer
from hebbian.optim import Local
from hebbian.trainers import DeterministicHebbianTrainer
from hebbian.trainers.checkpoint import checkpoint_objects, resume_from, setup_checkpointing

EPOCHS, BATCH = 2, 128


def build(seed: int = 0):
    torch.manual_seed(seed)
    net = nn.Sequential(OrderedDict(flat=nn.Flatten(), h1=nn.Linear(64, 16, bias=False), act=nn.ReLU(),
                                    lat=FoldiakLayer(16, 12, steps=10), head=nn.Linear(12, 10)))
    with torch.no_grad():
        net.h1.weight.div_(net.h1.weight.norm(dim=1, keepdim=True))
    opt = Local([net.h1.weight, net.lat.weight], lr=0.01)
    rules = {"h1": R.create("bcm", tau=3.0), "lat": R.create("foldiak", alpha=0.3, gamma=0.1)}
    return net, DeterministicHebbianTrainer(net, rules, opt)


def loader():
    x, y = load_dataset("digits").tensors
    return in_memory_loader(TensorDataset(x - x.mean(0), y), BATCH, shuffle=True)


def state(net, trainer):
    return {**{k: v.clone() for k, v in net.state_dict().items()}, "theta": trainer.bindings[0].rule.theta.clone()}


def test_interrupted_run_resumes_bit_for_bit(tmp_path):
    net, trainer = build()
    torch.manual_seed(5)
    trainer.run(loader(), epochs=EPOCHS)
    expected = state(net, trainer)
    assert not torch.equal(expected["lat.lateral"], torch.zeros(12, 12))

    net, trainer = build()
    setup_checkpointing(trainer, checkpoint_objects(trainer), tmp_path, every=4, n_saved=1)
    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=15), lambda e: e.terminate())  # mid epoch 2
    torch.manual_seed(5)
    trainer.run(loader(), epochs=EPOCHS)

    net, trainer = build(seed=99)  # other initial weights: everything must come from the file
    resume_from(tmp_path, checkpoint_objects(trainer))
    torch.manual_seed(5)
    trainer.run(loader())
    got = state(net, trainer)
    assert got.keys() == expected.keys()
    for key in expected:
        assert torch.equal(got[key], expected[key]), key
