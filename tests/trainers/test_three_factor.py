"""Three-factor rules in the HebbianTrainer: the broadcast of the output, exploration noise, exact resume, learning.

The step is checked against a float64 computation by hand (forward pass, output error, feedback matrices, noise drawn
from the same RNG), resume against an uninterrupted run, and learning on the bundled digits with the recipes of
``compare_digits`` (the whole network, no backprop).
"""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

import hebbian.rules as R
from hebbian.optim import Local
from hebbian.trainers import HebbianTrainer
from hebbian.trainers.checkpoint import RNGStates, checkpoint_objects

LR = 0.1


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(OrderedDict(h1=nn.Linear(6, 5, bias=False), act=nn.ReLU(), out=nn.Linear(5, 3))).double()


def batches(n: int = 4, size: int = 8, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (size,), generator=g))
            for _ in range(n)]


def trainer_for(model: nn.Module, rule) -> HebbianTrainer:
    return HebbianTrainer(model, rule, Local(model.parameters(), lr=LR), supervised_from=None)


def test_random_feedback_step_is_direct_feedback_alignment():
    model = mlp()
    w1, w2, b2 = (p.detach().clone() for p in (model.h1.weight, model.out.weight, model.out.bias))
    trainer = trainer_for(model, "random_feedback")
    x, y = batches(1)[0]
    trainer.run([(x, y)], max_epochs=1)
    B = trainer.bindings[0].rule.feedback  # the hidden layer's fixed random matrix
    assert B.shape == (5, 3) and torch.equal(trainer.bindings[1].rule.feedback, torch.eye(3, dtype=torch.float64))
    a1 = x @ w1.t()
    h = torch.relu(a1)
    e = torch.softmax(h @ w2.t() + b2, dim=1) - nn.functional.one_hot(y, 3).double()
    dw2 = -e.t() @ h / len(x)
    dw1 = -((e @ B.t()) * (a1 > 0).double()).t() @ x / len(x)
    assert torch.allclose(model.out.weight, w2 + LR * dw2, rtol=1e-12, atol=1e-14)
    assert torch.allclose(model.h1.weight, w1 + LR * dw1, rtol=1e-12, atol=1e-14)
    assert torch.equal(model.out.bias, b2)  # biases are not trained
    assert all(b.rule._received is None for b in trainer.bindings)  # the broadcast is gone after the step


def test_reward_modulated_step_with_exploration_noise():
    """Every layer adds its noise in the forward pass (downstream layers and the output see it); the update is the
    per-sample reward-prediction error times the noise; evaluation afterwards is noise-free."""
    sigma = 0.3
    model = mlp()
    w1, w2, b2 = (p.detach().clone() for p in (model.h1.weight, model.out.weight, model.out.bias))
    rule = R.create("reward_modulated", exploration=sigma, post="noise")
    trainer = trainer_for(model, rule)
    x, y = batches(1)[0]
    torch.manual_seed(123)
    trainer.run([(x, y)], max_epochs=1)
    torch.manual_seed(123)  # the same draws, in the order of the forward pass
    u1 = x @ w1.t()
    xi1 = torch.randn_like(u1) * sigma
    h = torch.relu(u1 + xi1)
    o = h @ w2.t() + b2
    xi2 = torch.randn_like(o) * sigma
    reward = torch.log_softmax(o + xi2, dim=1).gather(1, y[:, None])  # no prediction yet: M = R
    dw1 = (reward * xi1 / sigma**2).t() @ x / len(x)
    dw2 = (reward * xi2 / sigma**2).t() @ h / len(x)
    assert torch.allclose(model.h1.weight, w1 + LR * dw1, rtol=1e-10, atol=1e-12)
    assert torch.allclose(model.out.weight, w2 + LR * dw2, rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))  # no hook left: evaluation is deterministic
    assert not model.h1._forward_hooks or all("perturb" not in repr(h) for h in model.h1._forward_hooks.values())


def _state(model, trainer):
    out = {f"w.{k}": v.detach().clone() for k, v in model.state_dict().items()}
    for b in trainer.bindings:
        for k in type(b.rule).state_tensors:
            out[f"{b.name}.{k}"] = getattr(b.rule, k).clone()
    return out


@pytest.mark.parametrize("rule", [
    lambda: R.create("reward_modulated", exploration=0.2, post="noise", trace_decay=0.5),
    lambda: R.create("random_feedback", seed=3),
], ids=["reward_modulated", "random_feedback"])
def test_resume_from_checkpoint_objects_is_bit_for_bit(rule):
    data = batches(6)
    torch.manual_seed(0)
    model = mlp()
    trainer = trainer_for(model, rule())
    trainer.run(data, max_epochs=2)
    expected = _state(model, trainer)

    torch.manual_seed(0)
    model = mlp()
    trainer = trainer_for(model, rule())
    objects = {**checkpoint_objects(trainer), "rng": RNGStates()}
    trainer.run(data, max_epochs=1)
    saved = {k: o.state_dict() for k, o in objects.items()}
    buffer = __import__("io").BytesIO()
    torch.save(saved, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    model = mlp(seed=99)  # a new process: other weights, other rule state, other RNG state
    trainer = trainer_for(model, rule())
    torch.manual_seed(7)
    objects = {**checkpoint_objects(trainer), "rng": RNGStates()}
    for k, o in objects.items():
        o.load_state_dict(saved[k])
    trainer.run(data, max_epochs=2)
    got = _state(model, trainer)
    assert got.keys() == expected.keys()
    for k in expected:
        assert torch.equal(got[k], expected[k]), k


def test_three_factor_rules_are_refused_by_the_ghl_trainer():
    from hebbian.trainers.ghl import GHLTrainer

    model = mlp()
    with pytest.raises(ValueError, match="needs the network's output broadcast to it; train it with "
                                         "hebbian.trainers.HebbianTrainer"):
        GHLTrainer(model, {"h1": "random_feedback"}, torch.optim.SGD(model.parameters(), lr=0.1))


def test_unlabelled_batches_are_refused():
    model = mlp()
    trainer = trainer_for(model, "random_feedback")
    with pytest.raises(ValueError, match="the batch has no labels"):
        trainer.run([batches(1)[0][0]], max_epochs=1)


@pytest.mark.parametrize("method,target", [("random_feedback", 0.9), ("reward_modulated", 0.8)])
def test_learns_digits_with_the_compare_recipe(method, target):
    """The default job's recipe trains krotov_fc (64 -> 20 -> 10) on the bundled digits, no backprop (seed 0)."""
    from hebbian.config import method_config, resolve_config
    from hebbian.experiment import Experiment

    cfg = method_config(resolve_config("compare_digits"), method, [("log.progress", False)])
    exp = Experiment(cfg)
    assert exp.kind == "three_factor"
    assert [b.name for b in exp.trainer.bindings] == ["linear1", "linear2"]  # the readout learns too
    exp.fit()
    accuracy = exp.test()["test_accuracy"]
    assert accuracy >= target, accuracy


def test_each_process_explores_with_its_own_draw_and_the_rngs_stay_in_step(monkeypatch):
    """Data-parallel: rank r keeps the r-th of R draws; every rank consumes the same random numbers."""
    import ignite.distributed as idist

    from hebbian.trainers.modulation import perturbed

    rule = R.create("reward_modulated", exploration=1.0, post="noise")
    out = torch.zeros(4, 3)
    torch.manual_seed(0)
    draws = [torch.randn(4, 3) for _ in range(3)]
    after = torch.randn(1)
    monkeypatch.setattr(idist, "get_world_size", lambda: 3)
    for rank in range(3):
        monkeypatch.setattr(idist, "get_rank", lambda rank=rank: rank)
        torch.manual_seed(0)
        assert torch.equal(perturbed(rule, out), draws[rank])
        assert torch.equal(torch.randn(1), after)
