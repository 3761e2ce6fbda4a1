"""Inputs of another dtype than the model's parameters (float64 images into a float32 model, uint8 images) are one
clear TypeError naming both dtypes and how to convert, from every engine; never cast silently (float64 -> float32
is not exact), as in PyTorch itself. Matching dtypes (a float64 model on float64 data) train as usual."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from hebbian import Local, create_rule
from hebbian.data import in_memory_loader
from hebbian.trainers import (GHLTrainer, HebbianTrainer, LinearProbeEvaluator, SupervisedEvaluator,
                              SupervisedTrainer, create_hebbian_trainer)


def model(dtype=torch.float32) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 12), nn.ReLU(), nn.Linear(12, 10)).to(dtype)


def data(dtype) -> object:
    x = torch.rand(24, 1, 8, 8)
    x = (x * 255).to(dtype) if dtype == torch.uint8 else x.to(dtype)
    return in_memory_loader(TensorDataset(x, torch.arange(24) % 10), 8, shuffle=False)


ENGINES = {
    "HebbianTrainer": lambda m: HebbianTrainer(m, create_rule("oja"), Local(m.parameters(), lr=0.01)),
    "create_hebbian_trainer": lambda m: create_hebbian_trainer(m, create_rule("krotov", k=2),
                                                               Local(m.parameters(), lr=0.01), deterministic=True),
    "GHLTrainer": lambda m: GHLTrainer(m, {"1": create_rule("ghl")}, torch.optim.SGD(m.parameters(), lr=0.01)),
    "SupervisedTrainer": lambda m: SupervisedTrainer(m, torch.optim.SGD(m.parameters(), lr=0.1),
                                                     nn.CrossEntropyLoss()),
    "SupervisedEvaluator": lambda m: SupervisedEvaluator(m),
}


def run(name, m, loader):
    engine = ENGINES[name](m)
    return engine.run(loader, max_epochs=1) if "Trainer" in name or "create" in name else engine.run(loader)


@pytest.mark.parametrize("name", sorted(ENGINES))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.uint8])
def test_inputs_of_another_dtype_are_one_clear_type_error(name, dtype):
    m = model()
    before = [p.detach().clone() for p in m.parameters()]
    with pytest.raises(TypeError) as info:
        run(name, m, data(dtype))
    message = str(info.value)
    assert "\n" not in message and f"inputs are {dtype}" in message and "parameters are torch.float32" in message
    assert "x.to(torch.float32)" in message and f"model.to({dtype})" in message
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))  # nothing was updated


def test_the_probe_refuses_them_too():
    m = model()
    probe = LinearProbeEvaluator(m, epochs=1)
    with pytest.raises(TypeError, match="inputs are torch.float64 but the model's parameters are torch.float32"):
        probe.run(data(torch.float64), data(torch.float64))


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_a_float64_model_trains_on_float64_data(name):
    m = model(torch.float64)
    run(name, m, data(torch.float64))
    assert all(p.dtype == torch.float64 for p in m.parameters())


def test_other_errors_are_not_mistaken_for_a_dtype_mismatch():
    m = model()
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):  # wrong shape, right dtype: torch's own
        run("HebbianTrainer", m, in_memory_loader(TensorDataset(torch.rand(8, 1, 7, 7), torch.zeros(8).long()), 8))
    ids = nn.Sequential(nn.Embedding(10, 64), nn.Linear(64, 12), nn.Linear(12, 10))  # takes int64 token ids
    with pytest.raises(IndexError):  # an id out of range is not a dtype problem
        run("SupervisedEvaluator", ids, [(torch.full((4,), 99), torch.zeros(4).long())])
