"""SupervisedTrainer / SupervisedEvaluator (pytorch-hebbian calls) and the linear probe with cached features."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine, Events
from torch import nn

from hebbian.data import in_memory_loader, load_dataset
from hebbian.models import create_model
from hebbian.optim import Local
from hebbian.rules import KrotovsRule
from hebbian.trainers import (
    HebbianEvaluator,
    HebbianTrainer,
    LinearProbeEvaluator,
    SupervisedEvaluator,
    SupervisedTrainer,
)


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def digits():
    train, test = load_dataset("digits", train=True), load_dataset("digits", train=False)
    # in order, so that every probe sees the same data order (the probe shuffles its cached features itself)
    return in_memory_loader(train, 64, shuffle=False), in_memory_loader(test, 256, shuffle=False), train, test


def random_features_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return create_model("krotov_fc", input_size=8, width=0.05)  # 100 random N(0, 1) RePU units + readout


def manual_accuracy(model: nn.Module, dataset) -> float:
    x, y = dataset.tensors
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


# ---------------------------------------------------------------------- supervised pair
def test_pytorch_hebbian_evaluator_listing_runs_on_each_epoch(digits):
    train_loader, val_loader, _, test = digits
    model = random_features_net()
    criterion = nn.CrossEntropyLoss()
    trainer = HebbianTrainer(model, KrotovsRule(), Local(model.named_parameters(), lr=0.01))
    evaluator = SupervisedEvaluator(model, criterion)
    assert evaluator.attach(trainer, Events.EPOCH_COMPLETED, val_loader) is evaluator
    trainer.run(train_loader, max_epochs=2)
    assert len(evaluator.history) == 2
    assert set(evaluator.metrics) == {"accuracy", "loss"}
    assert evaluator.metrics["accuracy"] == pytest.approx(manual_accuracy(model, test))
    x, y = test.tensors
    with torch.no_grad():
        assert evaluator.metrics["loss"] == pytest.approx(criterion(model(x), y).item(), rel=1e-5)


def test_supervised_evaluator_restores_the_mode_and_checks_arguments(digits):
    model = random_features_net()
    model.train()
    evaluator = SupervisedEvaluator(model, None)
    evaluator.run(digits[1])
    assert model.training and set(evaluator.metrics) == {"accuracy"}
    with pytest.raises(ValueError, match="needs the data"):
        evaluator.attach(Engine(lambda e, b: None), Events.EPOCH_COMPLETED)
    with pytest.raises(TypeError, match="metrics must be a dict"):
        SupervisedEvaluator(model, None, metrics={"acc": "accuracy"})
    with pytest.raises(ValueError, match="amp_mode"):
        SupervisedEvaluator(model, None, amp_mode="apex")


def test_supervised_trainer_trains_by_backprop_and_outputs_the_loss_tensor(digits):
    train_loader, _, train, _ = digits
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    trainer = SupervisedTrainer(model, torch.optim.SGD(model.parameters(), lr=0.5), nn.CrossEntropyLoss())
    losses = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(e.state.output))
    trainer.run(train_loader, max_epochs=3)
    assert isinstance(losses[0], torch.Tensor) and losses[0].dim() == 0 and not losses[0].requires_grad
    assert losses[-1].item() < 0.5 * losses[0].item()
    assert manual_accuracy(model, train) > 0.9


# ---------------------------------------------------------------------- linear probe
def counting_hook(module: nn.Module) -> list:
    calls = [0]
    module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_probe_computes_frozen_features_once_per_dataset_pass(digits):
    train_loader, test_loader, _, _ = digits
    model = random_features_net()
    calls = counting_hook(model.linear1)
    probe = LinearProbeEvaluator(model, epochs=5, batch_size=128)
    probe.run(train_loader, test_loader)
    assert calls[0] == len(train_loader) + len(test_loader)  # one pass each, not 5
    assert probe.readout_trainer.state.epoch == 5
    calls[0] = 0
    LinearProbeEvaluator(model, epochs=5, batch_size=128, cache=False).run(train_loader, test_loader)
    assert calls[0] == 5 * len(train_loader) + len(train_loader) + len(test_loader)  # uncached: every epoch


def test_probe_trains_a_fresh_readout_and_leaves_the_model_alone(digits):
    train_loader, test_loader, _, test = digits
    model = random_features_net()
    other = random_features_net()
    with torch.no_grad():
        other.linear2.weight.fill_(1e3)  # a useless readout must not matter: the probe starts afresh
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    metrics = LinearProbeEvaluator(model, epochs=10, batch_size=128).run(train_loader, test_loader)
    assert set(metrics) == {"train_accuracy", "train_loss", "test_accuracy", "test_loss"}
    assert metrics["test_accuracy"] > 0.75 and metrics["train_accuracy"] > 0.75
    assert metrics == LinearProbeEvaluator(other, epochs=10, batch_size=128).run(train_loader, test_loader)
    assert model.training
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert manual_accuracy(model, test) < 0.5  # the model's own (untrained) readout was not touched


def test_probe_copy_back_installs_the_trained_readout(digits):
    train_loader, test_loader, _, test = digits
    model = random_features_net()
    probe = LinearProbeEvaluator(model, epochs=10, batch_size=128, copy_back=True)
    metrics = probe.run(train_loader, test_loader)
    assert torch.equal(model.linear2.weight, probe.readout.weight)
    assert manual_accuracy(model, test) == pytest.approx(metrics["test_accuracy"])


def test_probe_readout_of_several_children(digits):
    train_loader, test_loader, _, test = digits
    model = random_features_net()  # flatten, linear1, repu, linear2: the readout is [repu, linear2]
    probe = LinearProbeEvaluator(model, epochs=5, batch_size=128, supervised_from=-2, copy_back=True)
    metrics = probe.run(train_loader, test_loader)
    assert [n for n, _ in probe.readout.named_children()] == ["repu", "linear2"]
    assert manual_accuracy(model, test) == pytest.approx(metrics["test_accuracy"])


def test_probe_keeps_the_best_score_by_value_and_history(digits):
    train_loader, test_loader, _, _ = digits
    model = random_features_net()
    probe = HebbianEvaluator(model, epochs=5, batch_size=128)
    assert HebbianEvaluator is LinearProbeEvaluator
    good = probe.run(train_loader, test_loader)
    with torch.no_grad():
        model.linear1.weight.zero_()  # features collapse: the next evaluation is at chance
    bad = probe.run(train_loader, test_loader)
    assert bad["test_accuracy"] < 0.3 < good["test_accuracy"]
    assert probe.best_score == good["test_accuracy"] and probe.best_metrics == good
    assert probe.history == [good, bad] and probe.state.metrics == bad
    restored = LinearProbeEvaluator(model)
    restored.load_state_dict(probe.state_dict())
    assert restored.best_score == probe.best_score and restored.best_metrics == good


def test_probe_is_seeded_and_does_not_touch_the_global_rng(digits):
    train_loader, test_loader, _, _ = digits
    model = random_features_net()
    torch.manual_seed(123)
    first = LinearProbeEvaluator(model, epochs=3, dropout=0.5).run(train_loader, test_loader)
    after_probe = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(torch.rand(3), after_probe)
    assert LinearProbeEvaluator(model, epochs=3, dropout=0.5).run(train_loader, test_loader) == first
    assert LinearProbeEvaluator(model, epochs=3, dropout=0.5, seed=1).run(train_loader, test_loader) != first


def test_probe_attaches_every_n_epochs(digits):
    train_loader, test_loader, _, _ = digits
    model = random_features_net()
    trainer = HebbianTrainer(model, KrotovsRule(), Local(model.named_parameters(), lr=0.01))
    probe = LinearProbeEvaluator(model, epochs=2, batch_size=256)
    completed = []
    probe.add_event_handler(Events.COMPLETED, lambda e: completed.append(trainer.state.epoch))
    assert probe.attach(trainer, Events.EPOCH_COMPLETED(every=2), train_loader, test_loader) is probe
    trainer.run(train_loader, max_epochs=4)
    assert completed == [2, 4] and len(probe.history) == 2


def test_probe_early_stopping_and_plateau(digits):
    train_loader, test_loader, _, _ = digits
    model = random_features_net()
    probe = LinearProbeEvaluator(model, epochs=60, batch_size=64, early_stopping_patience=2, plateau_patience=1)
    metrics = probe.run(train_loader, test_loader)
    assert probe.readout_trainer.state.epoch < 60  # stopped early
    assert probe.readout_optimizer.param_groups[0]["lr"] < 1e-3  # halved on plateaus
    assert metrics["test_accuracy"] > 0.85


def test_probe_selects_on_a_held_out_split_not_on_the_test_set(digits):
    train_loader, test_loader, train, _ = digits
    model = random_features_net()
    probe = LinearProbeEvaluator(model, epochs=8, early_stopping_patience=3, validation_fraction=0.25)
    monitored = []
    original = probe._monitor
    probe._monitor = lambda trainer, readout, opt, data: (monitored.append(data), original(trainer, readout, opt, data))[1]
    metrics = probe.run(train_loader, test_loader)
    held_out = torch.cat([x for x, _ in monitored[0]])
    assert len(held_out) == round(0.25 * len(train))  # a quarter of the training set, not the test loader
    with torch.no_grad():
        train_features = model[:-1](train.tensors[0])
    d = torch.cdist(held_out, train_features, compute_mode="donot_use_mm_for_euclid_dist").min(dim=1).values
    assert float(d.max()) < 1e-3, d.max()  # training images only
    assert metrics["train_accuracy"] > 0.8 and metrics["test_accuracy"] > 0.8
    with pytest.raises(ValueError, match="validation_fraction"):
        LinearProbeEvaluator(model, validation_fraction=1.0)
    with pytest.raises(ValueError, match="cache=True"):
        LinearProbeEvaluator(model, validation_fraction=0.1, cache=False)


def test_probe_without_test_data_scores_on_train(digits):
    model = random_features_net()
    probe = LinearProbeEvaluator(model, epochs=2)
    metrics = probe.run(digits[0])
    assert set(metrics) == {"train_accuracy", "train_loss"} and probe.best_score == metrics["train_accuracy"]


def test_probe_rejects_bad_arguments(digits):
    model = random_features_net()
    with pytest.raises(TypeError, match="nn.Sequential"):
        LinearProbeEvaluator(nn.Linear(3, 2))
    with pytest.raises(ValueError, match="supervised_from"):
        LinearProbeEvaluator(model, supervised_from=0)
    for name in ("epochs", "batch_size", "early_stopping_patience"):
        with pytest.raises(ValueError, match=name):
            LinearProbeEvaluator(model, **{name: 0})
    with pytest.raises(ValueError, match="dropout"):
        LinearProbeEvaluator(model, dropout=1.0)
    with pytest.raises(ValueError, match="labelled batches"):
        LinearProbeEvaluator(model, epochs=1).run([torch.rand(4, 1, 8, 8)])
    with pytest.raises(KeyError, match="score_name"):
        LinearProbeEvaluator(model, epochs=1, score_name="f1").run(digits[1])


def test_frozen_features_fill_one_tensor_and_equal_the_concatenated_batches():
    from torch.utils.data import DataLoader, TensorDataset

    from hebbian.trainers.evaluators import frozen_features

    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(23, 5, generator=g), torch.randint(0, 3, (23,), generator=g))
    layer = torch.nn.Linear(5, 4)
    expected = layer(data.tensors[0]).detach()
    for loader in (DataLoader(data, batch_size=4), list(DataLoader(data, batch_size=4))):  # sized dataset, plain list
        x, y = frozen_features(layer, loader, torch.device("cpu")).tensors
        torch.testing.assert_close(x, expected)
        assert torch.equal(y, data.tensors[1])
    x, y = frozen_features(layer, DataLoader(data, batch_size=4, drop_last=True), torch.device("cpu")).tensors
    assert x.shape == (20, 4) and torch.equal(y, data.tensors[1][:20])
    with pytest.raises(ValueError, match="empty data loader"):
        frozen_features(layer, DataLoader(TensorDataset(torch.zeros(0, 5), torch.zeros(0)), batch_size=4),
                        torch.device("cpu"))
