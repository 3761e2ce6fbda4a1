"""pytorch-hebbian's trainers and evaluators refuse bad epochs and bad data with one clear line, before any training
(epochs=-1 trained 0 iterations and 1.5 two epochs silently; float, (N, 1) and out-of-range labels and images of
the wrong shape or dtype were torch's RuntimeError/IndexError from inside the step, after the Hebbian epochs)."""

from __future__ import annotations

import warnings

import pytest
import torch
from ignite.engine import Events
from torch import nn
from torch.utils.data import DataLoader, Subset, TensorDataset

from hebbian.compat.pytorch_hebbian.evaluators import HebbianEvaluator, SupervisedEvaluator
from hebbian.compat.pytorch_hebbian.learning_rules import KrotovsRule
from hebbian.compat.pytorch_hebbian.optimizers import Local
from hebbian.compat.pytorch_hebbian.trainers import HebbianTrainer, SupervisedTrainer

N = 32


def model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 20), nn.ReLU(), nn.Linear(20, 10))


def loader(x=None, y=None, subset=False) -> DataLoader:
    x = torch.rand(N, 1, 8, 8) if x is None else x
    y = torch.arange(N) % 10 if y is None else y
    data = TensorDataset(x, y)
    return DataLoader(Subset(data, range(0, N, 2)) if subset else data, batch_size=8)


def hebbian(m, data, epochs=1):
    HebbianTrainer(m, KrotovsRule(), Local(m.named_parameters(), lr=0.01)).run(data, epochs=epochs)


def supervised(m, data, epochs=1):
    SupervisedTrainer(m, torch.optim.SGD(m.parameters(), lr=0.1), nn.CrossEntropyLoss()).run(data, epochs=epochs)


def hebbian_evaluator(m, data):
    HebbianEvaluator(m, "accuracy", lambda e: e.state.metrics["accuracy"], epochs=1).run(data, data)


def supervised_evaluator(m, data):
    SupervisedEvaluator(m, nn.CrossEntropyLoss()).run(data)


def hebbian_then_evaluator(m, data):
    """pytorch-hebbian's scripts: an evaluator attached to the Hebbian trainer with the labelled data."""
    trainer = HebbianTrainer(m, KrotovsRule(), Local(m.named_parameters(), lr=0.01))
    HebbianEvaluator(m, "accuracy", lambda e: e.state.metrics["accuracy"], epochs=1).attach(
        trainer.engine, Events.EPOCH_COMPLETED, data, data)
    trainer.run(loader(), epochs=1)


TRAINERS = [hebbian, supervised]
EVERYTHING = [hebbian, supervised, hebbian_evaluator, supervised_evaluator]
LABELLED = [supervised, hebbian_evaluator, supervised_evaluator, hebbian_then_evaluator]

# (case, entry points, call, error type, words of the message)
CASES = [
    *[(f"epochs={e!r}", TRAINERS, lambda f, m, e=e: f(m, loader(), epochs=e), err, ["epochs", "positive integer"])
      for e, err in [(-1, ValueError), (0, ValueError), (1.5, TypeError), ("2", TypeError), (True, TypeError)]],
    ("float labels", LABELLED, lambda f, m: f(m, loader(y=(torch.arange(N) % 10).float())), TypeError,
     ["labels", "integer class indices", "float32"]),
    ("labels (N, 1)", LABELLED, lambda f, m: f(m, loader(y=(torch.arange(N) % 10).view(-1, 1))), ValueError,
     ["labels", "shape", "(32, 1)"]),
    ("label 10", LABELLED, lambda f, m: f(m, loader(y=torch.full((N,), 10))), ValueError, ["[0, 9]", "10"]),
    ("label -1 in a Subset", LABELLED, lambda f, m: f(m, loader(y=torch.full((N,), -1), subset=True)), ValueError,
     ["[0, 9]", "-1"]),
    # a plain list has no dataset to read the labels from up front: refused at its first batch (so an evaluator
    # attached to a Hebbian trainer refuses it only when it first runs, after the trainer's first epoch)
    ("label 200 in a plain list", LABELLED[:-1],
     lambda f, m: f(m, [(torch.rand(8, 1, 8, 8), torch.full((8,), 200))]), ValueError, ["[0, 9]", "200"]),
    ("28x28 images", EVERYTHING, lambda f, m: f(m, loader(x=torch.rand(N, 1, 28, 28))), ValueError,
     ["cannot take images of shape (8, 1, 28, 28)"]),
    ("float64 images", EVERYTHING, lambda f, m: f(m, loader(x=torch.rand(N, 1, 8, 8, dtype=torch.float64))),
     TypeError, ["torch.float64", "torch.float32", "model.to("]),
    ("uint8 images", EVERYTHING, lambda f, m: f(m, loader(x=torch.randint(0, 256, (N, 1, 8, 8), dtype=torch.uint8))),
     TypeError, ["torch.uint8", "ToTensor"]),
]


@pytest.mark.parametrize("call,entry,error,words", [
    pytest.param(call, entry, error, words, id=f"{case}-{entry.__name__}")
    for case, entries, call, error, words in CASES for entry in entries])
def test_bad_epochs_and_data_are_one_line_before_any_training(call, entry, error, words, monkeypatch):
    steps = count_optimizer_steps(monkeypatch)
    with warnings.catch_warnings(), pytest.raises(error) as info:
        warnings.simplefilter("ignore")
        call(entry, model())
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, (word, message)
    assert steps == []  # refused before any training step


def count_optimizer_steps(monkeypatch) -> list:
    """Patch the optimizers' ``step`` to note every call in the returned list."""
    steps: list = []
    for cls in (Local, torch.optim.SGD, torch.optim.Adam):
        def step(self, *args, _original=cls.step, **kwargs):
            steps.append(type(self).__name__)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(cls, "step", step)
    return steps


def test_the_unsupervised_trainer_ignores_labels_as_pytorch_hebbian_did():
    m = model()
    trainer = HebbianTrainer(m, KrotovsRule(), Local(m.named_parameters(), lr=0.01))
    trainer.run(loader(y=torch.zeros(N)), epochs=2)  # dummy float labels
    assert trainer.engine.state.iteration == 8


def test_good_data_trains_every_entry_point(monkeypatch):
    steps = count_optimizer_steps(monkeypatch)
    for entry in EVERYTHING:
        entry(model(), loader())
    supervised(model(), loader(subset=True), epochs=2)
    assert steps.count("Local") == 4 and steps.count("SGD") == 4 + 4 and steps.count("Adam") == 4
