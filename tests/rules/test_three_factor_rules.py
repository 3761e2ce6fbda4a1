"""Three-factor rules and their modulators against naive float64 references written from the equations.

The references loop over samples and conv positions in numpy (their own padding and patches), compute the reward,
its running prediction, the output error, the feedback, the post-synaptic terms and the eligibility trace per
sample as docs/rules.md states them, and never call the library's LayerView, modulators or activations.
"""

from __future__ import annotations

import io
import math
from typing import Dict, List, Optional, Tuple

import numpy as np
import pytest
import torch
from torch import nn

import hebbian.rules as R
from hebbian.rules.modulation import Broadcast

C = 4  # classes of the network output


# ------------------------------------------------------------------------------------------------ reference helpers
def _patches(x: np.ndarray, k: int, pad: int) -> List[List[np.ndarray]]:
    """Per sample, the flattened ``k x k`` windows of a zero-padded ``(N, C, H, W)`` input (stride 1), row-major."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    h, w = xp.shape[2] - k + 1, xp.shape[3] - k + 1
    return [[xp[n, :, i:i + k, j:j + k].reshape(-1) for i in range(h) for j in range(w)] for n in range(len(x))]


def _log_softmax(o: np.ndarray) -> np.ndarray:
    z = o - o.max()
    return z - math.log(np.exp(z).sum())


def _f(a: float, name: str) -> float:
    return {"identity": a, "relu": max(a, 0.0), "tanh": math.tanh(a), "sigmoid": 1 / (1 + math.exp(-a))}[name]


def _df(a: float, name: str) -> float:
    s = 1 / (1 + math.exp(-a))
    return {"identity": 1.0, "relu": float(a > 0), "tanh": 1 - math.tanh(a) ** 2, "sigmoid": s * (1 - s)}[name]


def _reward(o: np.ndarray, t: int, kind: str) -> float:
    lp = _log_softmax(o)[t]
    return {"log_prob": lp, "prob": math.exp(lp), "correct": float(int(np.argmax(o)) == t)}[kind]


class RewardReference:
    """Reward-modulated Hebb with its running per-class (or global) reward prediction and eligibility trace."""

    def __init__(self, reward="log_prob", baseline="class", baseline_decay=0.9, exploration=0.0, post="activity",
                 activation="identity", trace_decay=0.0):
        self.hp = dict(reward=reward, baseline=baseline, d=baseline_decay, sigma=exploration, post=post,
                       act=activation, lam=trace_decay)
        self.pred: Dict[int, Tuple[float, float]] = {}  # key -> (b, z)
        self.trace: Optional[np.ndarray] = None

    def step(self, W, bias, samples, outputs, labels) -> np.ndarray:
        """``samples[n] = [(P, u_row), ...]`` per position: the patch and the layer's (perturbed) output with bias."""
        hp = self.hp
        m, count, msum = np.zeros(W.shape[0]), 0, 0.0
        acc, hebb = np.zeros_like(W), np.zeros_like(W)
        rewards = {}
        for n, positions in enumerate(samples):
            key = int(labels[n]) if hp["baseline"] == "class" else 0
            r = _reward(outputs[n], int(labels[n]), hp["reward"])
            rewards.setdefault(key, []).append(r)
            mod = r - self.pred.get(key, (0.0, 0.0))[0]
            for P, urow in positions:
                count += 1
                msum += mod
                for k in range(W.shape[0]):
                    if hp["post"] == "noise":
                        h = (urow[k] - (W[k] @ P + bias[k])) / hp["sigma"] ** 2
                    else:
                        h = _f(urow[k], hp["act"])
                    acc[k] += mod * h * P
                    hebb[k] += h * P
        delta = acc / count
        if hp["lam"] > 0:
            previous = np.zeros_like(W) if self.trace is None else self.trace
            delta = delta + previous * (msum / count)
            self.trace = hp["lam"] * (previous + hebb / count)
        for key, rs in rewards.items():
            b, z = self.pred.get(key, (0.0, 0.0))
            z_new = hp["d"] * z + (1 - hp["d"])
            self.pred[key] = ((hp["d"] * z * b + (1 - hp["d"]) * float(np.mean(rs))) / z_new, z_new)
        return delta


def feedback_reference(W, bias, samples, outputs, labels, B: np.ndarray, at_output: bool, act: str) -> np.ndarray:
    """Direct random feedback: ``ΔW_k = (1/S) Σ -(B e_n)_k f'(a_nk) P`` (``f' = 1``, ``B = I`` at the output)."""
    acc, count = np.zeros_like(W), 0
    for n, positions in enumerate(samples):
        e = np.exp(_log_softmax(outputs[n]))
        e[int(labels[n])] -= 1.0
        mod = -(B @ e)
        for P, urow in positions:
            count += 1
            for k in range(W.shape[0]):
                gain = 1.0 if at_output else _df(urow[k], act)
                acc[k] += mod[k] * gain * P
    return acc / count


# ------------------------------------------------------------------------------------------------ library side
def make(kind: str, seed: int = 0):
    torch.manual_seed(seed)
    if kind == "linear":
        return nn.Linear(6, 5).double()
    return nn.Conv2d(2, 5, 3, padding=1).double()


def batch(layer, n: int = 7, seed: int = 1, noise: float = 0.0):
    g = torch.Generator().manual_seed(seed)
    shape = (n, 6) if isinstance(layer, nn.Linear) else (n, 2, 4, 4)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    with torch.no_grad():
        u = layer(x)
    u = u + noise * torch.randn(u.shape, generator=g, dtype=torch.float64)
    out = torch.randn(n, C, generator=g, dtype=torch.float64) * 2
    labels = torch.randint(0, C, (n,), generator=g)
    return x, u, out, labels


def ref_samples(layer, x: torch.Tensor, u: torch.Tensor) -> List[List[Tuple[np.ndarray, np.ndarray]]]:
    xs, us = x.numpy(), u.numpy()
    if isinstance(layer, nn.Linear):
        return [[(xs[n], us[n])] for n in range(len(xs))]
    patches = _patches(xs, 3, 1)
    flat = us.reshape(us.shape[0], us.shape[1], -1)
    return [[(P, flat[n, :, p]) for p, P in enumerate(patches[n])] for n in range(len(xs))]


def ref_weight(layer) -> Tuple[np.ndarray, np.ndarray]:
    return layer.weight.detach().numpy().reshape(layer.weight.shape[0], -1), layer.bias.detach().numpy()


def hidden_update(rule, layer, x, u, out, labels, name: str = "h1") -> torch.Tensor:
    """The update of a hidden layer that received the network's output (as a trainer sends it)."""
    view = rule.check_layer(layer)
    rule.receive(Broadcast(out, labels, name, False))
    try:
        return rule.finalize(view, rule.statistics(view, *view.prepare(x, u), labels))
    finally:
        rule.receive(None)


def _close(a: torch.Tensor, b: np.ndarray) -> None:
    got = a.detach().numpy().reshape(b.shape)
    assert np.abs(got - b).max() <= 1e-11 * max(np.abs(b).max(), 1.0), np.abs(got - b).max()


REWARD_CASES = [
    {},
    {"reward": "prob", "baseline": "global", "baseline_decay": 0.5},
    {"reward": "correct", "activation": "relu"},
    {"exploration": 0.3, "post": "noise"},
    {"exploration": 0.2, "post": "activity", "activation": "tanh", "trace_decay": 0.6},
    {"exploration": 0.4, "post": "noise", "trace_decay": 0.8, "baseline": "global"},
]


@pytest.mark.parametrize("kind", ["linear", "conv"])
@pytest.mark.parametrize("hp", REWARD_CASES, ids=[",".join(f"{k}={v}" for k, v in c.items()) or "defaults"
                                                   for c in REWARD_CASES])
def test_reward_modulated_matches_reference_over_batches(hp, kind):
    """Three consecutive batches: the per-sample reward-prediction error, the running prediction, the trace."""
    layer = make(kind)
    rule, ref = R.create("reward_modulated", **hp), RewardReference(**hp)
    W, bias = ref_weight(layer)
    for step in range(3):
        x, u, out, labels = batch(layer, seed=10 + step, noise=hp.get("exploration", 0.0))
        got = hidden_update(rule, layer, x, u, out, labels)
        _close(got, ref.step(W, bias, ref_samples(layer, x, u), out.numpy(), labels.numpy()))
    keys = sorted(ref.pred)
    assert torch.allclose(rule.prediction[keys], torch.tensor([ref.pred[k][0] for k in keys], dtype=torch.float64), rtol=1e-12)
    assert torch.allclose(rule.prediction_weight[keys], torch.tensor([ref.pred[k][1] for k in keys], dtype=torch.float64), rtol=1e-12)
    if hp.get("trace_decay"):
        _close(rule.trace, ref.trace)
    else:
        assert not bool(rule.trace.any())


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_reward_modulated_alone_is_the_output_layer(kind):
    """update() on one layer: its own output (plus bias, conv: averaged over positions) is the network's output."""
    layer = make(kind)
    x, u, _, labels = batch(layer)
    labels = labels % 5
    own = u.numpy() if kind == "linear" else u.numpy().reshape(u.shape[0], u.shape[1], -1).mean(axis=2)
    W, bias = ref_weight(layer)
    rule, ref = R.create("reward_modulated", reward="prob"), RewardReference(reward="prob")
    for _ in range(2):
        _close(rule.update(layer, x, u, labels=labels), ref.step(W, bias, ref_samples(layer, x, u), own, labels.numpy()))


@pytest.mark.parametrize("kind", ["linear", "conv"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "identity"])
def test_random_feedback_hidden_layer_matches_reference(activation, kind):
    layer = make(kind)
    rule = R.create("random_feedback", activation=activation, seed=5)
    x, u, out, labels = batch(layer)
    got = hidden_update(rule, layer, x, u, out, labels)
    B = rule.feedback.numpy()
    assert B.shape == (5, C)
    W, bias = ref_weight(layer)
    _close(got, feedback_reference(W, bias, ref_samples(layer, x, u), out.numpy(), labels.numpy(), B, False,
                                   activation))


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_random_feedback_output_layer_takes_its_own_error(kind):
    """At the output layer (update() on one layer) B = I and f' = 1: the gradient step of the cross-entropy."""
    layer = make(kind)
    x, u, _, labels = batch(layer)
    labels = labels % 5
    rule = R.create("random_feedback")
    got = rule.update(layer, x, u, labels=labels)
    assert torch.equal(rule.feedback, torch.eye(5, dtype=torch.float64))
    W, bias = ref_weight(layer)
    own = u.numpy() if kind == "linear" else u.numpy().reshape(u.shape[0], u.shape[1], -1).mean(axis=2)
    _close(got, feedback_reference(W, bias, ref_samples(layer, x, u), own, labels.numpy(), np.eye(5), True, "relu"))
    if kind == "linear":  # and it is minus the autograd gradient of the mean cross-entropy
        w = layer.weight.detach().clone().requires_grad_()
        loss = nn.functional.cross_entropy(x @ w.t() + layer.bias.detach(), labels)
        loss.backward()
        assert torch.allclose(got, -w.grad, rtol=1e-12, atol=1e-15)


def test_feedback_matrices_are_seeded_per_layer_and_fixed():
    layer = make("linear")
    x, u, out, labels = batch(layer)
    a, b, c = (R.create("random_feedback", seed=s) for s in (1, 1, 2))
    hidden_update(a, layer, x, u, out, labels, "h1")
    hidden_update(b, layer, x, u, out, labels, "h1")
    hidden_update(c, layer, x, u, out, labels, "h1")
    assert torch.equal(a.feedback, b.feedback) and not torch.equal(a.feedback, c.feedback)
    other = R.create("random_feedback", seed=1)
    hidden_update(other, layer, x, u, out, labels, "h2")
    assert not torch.equal(other.feedback, a.feedback)  # another layer, another matrix
    first = a.feedback.clone()
    hidden_update(a, layer, *batch(layer, seed=9)[:2], out, labels, "h1")
    assert torch.equal(a.feedback, first)  # drawn once
    # B ~ N(0, 1/C): the entries of a large draw have about that variance
    big = R.create("random_feedback", seed=0)
    wide = nn.Linear(6, 400).double()
    xw, uw = x, wide(x).detach()
    hidden_update(big, wide, xw, uw, out, labels, "wide")
    assert abs(float(big.feedback.var()) * C - 1.0) < 0.1


def test_exploration_noise_and_perturb():
    rule = R.create("reward_modulated", exploration=0.5, post="noise")
    assert rule.explores and not R.create("reward_modulated").explores
    torch.manual_seed(0)
    out = torch.zeros(20000, 3)
    noisy = rule.perturb(out)
    assert noisy.shape == out.shape and abs(float(noisy.std()) - 0.5) < 0.01 and abs(float(noisy.mean())) < 0.01
    with pytest.raises(ValueError, match="post='noise' needs exploration > 0"):
        R.create("reward_modulated", post="noise")


@pytest.mark.parametrize("name,hp,param", [
    ("reward_modulated", {"baseline_decay": 1.0}, "baseline_decay"),
    ("reward_modulated", {"trace_decay": -0.1}, "trace_decay"),
    ("reward_modulated", {"exploration": -1.0}, "exploration"),
    ("reward_modulated", {"reward": "loss"}, "reward"),
    ("random_feedback", {"seed": -1}, "seed"),
    ("random_feedback", {"seed": 1.5}, "seed"),
    ("random_feedback", {"activation": "gelu"}, "activation"),
])
def test_bad_hyperparameters_are_named(name, hp, param):
    with pytest.raises(ValueError, match=rf"^{param} must"):
        R.create(name, **hp)


def test_labels_outside_the_output_layer_are_refused():
    layer = make("linear")
    x, u, _, labels = batch(layer)
    labels[0] = 5
    for name in ("reward_modulated", "random_feedback"):
        with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\)"):
            R.create(name).update(layer, x, u, labels=labels)


def test_a_broadcast_of_another_batch_is_refused():
    layer = make("linear")
    x, u, out, labels = batch(layer)
    rule = R.create("random_feedback")
    with pytest.raises(ValueError, match="not a multiple"):
        hidden_update(rule, layer, x, u, out[:4], labels[:4])


# ------------------------------------------------------------------------------------------------ state
def _roundtrip(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("name,hp", [("reward_modulated", {"trace_decay": 0.5, "reward": "prob"}),
                                     ("random_feedback", {"seed": 4})])
def test_state_round_trip_continues_exactly(name, hp):
    """A rule restored from its state_dict (through torch.save) continues exactly as the original."""
    layer = make("conv")
    rule = R.create(name, **hp)
    for step in range(2):
        x, u, out, labels = batch(layer, seed=step)
        hidden_update(rule, layer, x, u, out, labels)
    fresh = R.create(name)
    fresh.load_state_dict(_roundtrip(rule.state_dict()))
    assert repr(fresh) == repr(rule)
    for key in type(rule).state_tensors:
        assert torch.equal(getattr(fresh, key), getattr(rule, key)), key
    x, u, out, labels = batch(layer, seed=7)
    assert torch.equal(hidden_update(fresh, layer, x, u, out, labels), hidden_update(rule, layer, x, u, out, labels))
    assert all(torch.equal(getattr(fresh, k), getattr(rule, k)) for k in type(rule).state_tensors)


# ------------------------------------------------------------------------------------------------ modulators
def test_modulator_registry_and_metadata():
    assert R.list_modulators() == ["gradient_sign", "random_feedback", "reward_prediction_error"]
    assert R.list_modulators(scope="sample") == ["reward_prediction_error"]
    assert R.list_modulators("r*") == ["random_feedback", "reward_prediction_error"]
    info = R.get_modulator_info("Gradient-Sign")
    assert info.cls is R.GradientSign and info.scope == "synapse" and info.needs_global_grad and not info.stateful
    rpe = R.get_modulator_info("reward_prediction_error")
    assert rpe.needs_output and rpe.stateful and rpe.defaults() == {"reward": "log_prob", "baseline": "class",
                                                                    "baseline_decay": 0.9}
    fb = R.get_modulator_info("random_feedback")
    assert fb.scope == "unit" and fb.needs_output and fb.source.startswith("Nøkland")
    assert all(i.description and i.source for i in R.modulator_infos())
    assert isinstance(R.create_modulator("random_feedback", seed=2), R.RandomFeedback)
    with pytest.raises(KeyError, match="unknown modulator 'nope'; registered modulators: gradient_sign"):
        R.create_modulator("nope")
    with pytest.raises(ValueError, match="'gradient_sign' is already registered"):
        R.register_modulator("gradient_sign", description="again", scope="synapse")(type("X", (R.Modulator,), {}))
    with pytest.raises(ValueError, match="scope must be one of"):
        R.register_modulator("other", description="x", scope="layer")
    assert R.list_modulators() == ["gradient_sign", "random_feedback", "reward_prediction_error"]
    assert R.list_rules(needs_output=True) == ["random_feedback", "reward_modulated"]


def test_rules_use_their_modulators():
    assert isinstance(R.create("ghl").modulator, R.GradientSign)
    assert isinstance(R.create("reward_modulated").modulator, R.RewardPredictionError)
    assert isinstance(R.create("random_feedback").modulator, R.RandomFeedback)
    rule = R.create("reward_modulated", reward="correct", baseline="global", baseline_decay=0.3)
    assert rule.modulator.hyperparameters() == {"reward": "correct", "baseline": "global", "baseline_decay": 0.3}
    assert repr(rule.modulator) == "RewardPredictionError(reward='correct', baseline='global', baseline_decay=0.3)"


def test_gradient_sign_is_ghls_third_factor():
    """M = -sign(g); GHL's update is M * |local step| (float64, against numpy)."""
    g = torch.tensor([[0.5, -2.0, 0.0], [-1e-9, 3.0, 7.0]], dtype=torch.float64)
    local = torch.tensor([[0.2, 0.3, -0.4], [-1.0, 0.0, 0.5]], dtype=torch.float64)
    mod = R.create_modulator("gradient_sign")
    assert torch.equal(mod.factor(g, torch.float64), torch.from_numpy(-np.sign(g.numpy())))
    assert torch.equal(mod.gate(local, g), torch.from_numpy(-np.sign(g.numpy()) * np.abs(local.numpy())))


def test_reward_prediction_round_trip():
    mod = R.create_modulator("reward_prediction_error", baseline_decay=0.5)
    out = torch.randn(6, C, dtype=torch.float64)
    labels = torch.tensor([0, 1, 1, 3, 3, 3])
    b = Broadcast(out, labels)
    stats = mod.statistics(b, torch.float64)
    mod.update(stats["reward"], stats["reward_count"])
    fresh = R.create_modulator("reward_prediction_error")
    fresh.load_state_dict(_roundtrip(mod.state_dict()))
    assert fresh.baseline_decay == 0.5 and torch.equal(fresh.factor(b), mod.factor(b))
    assert float(fresh.prediction_weight[2]) == 0.0  # class 2 not seen: no prediction yet


def test_a_three_factor_rule_must_declare_what_it_needs(monkeypatch):
    from hebbian.rules import registry

    saved = dict(registry._REGISTRY)
    try:
        cls = R.register_rule("quiet_feedback", description="x", needs_labels=True)(type("Quiet", (R.DFA,), {}))
        with pytest.raises(TypeError, match="register it with needs_output=True and needs_labels=True"):
            cls().update(make("linear"), *batch(make("linear"))[:2], labels=torch.zeros(7, dtype=torch.long))
    finally:
        registry._REGISTRY.clear()
        registry._REGISTRY.update(saved)


@pytest.mark.parametrize("trace_decay", [0.0, 0.7])
def test_a_delayed_reward_reaches_earlier_activity_through_the_trace(trace_decay):
    """Batch 1: activity, reward as predicted (M = 0). Batch 2: no activity (x = 0), a reward above the prediction.
    With a trace the synapses active in batch 1 are credited, ``ΔW = M̄ λ (c + H̄₁)``; without, the reward is lost."""
    layer = nn.Linear(6, 5, bias=False).double()
    rule = R.create("reward_modulated", reward="prob", baseline="global", baseline_decay=0.0,
                    trace_decay=trace_decay)
    x, _, _, labels = batch(layer)
    u = layer(x).detach()
    flat = torch.zeros(len(x), C, dtype=torch.float64)  # p(label) = 1/C for every sample
    hidden_update(rule, layer, x, u, flat, labels)  # sets the prediction to 1/C (d = 0)
    trace_before = rule.trace.clone()
    assert not bool(hidden_update(rule, layer, x, u, flat, labels).any())  # M = 0: nothing now
    sure = torch.full((len(x), C), -30.0, dtype=torch.float64).scatter_(1, labels[:, None], 30.0)  # p(label) = 1
    zero = torch.zeros_like(x)
    late = hidden_update(rule, layer, zero, torch.zeros_like(u), sure, labels)
    if trace_decay == 0:
        assert not bool(late.any())
    else:
        hebb = (u.t() @ x / len(x)).numpy()  # H̄ of batch 1, post = activity (identity)
        expected = (1.0 - 1.0 / C) * trace_decay * (trace_before.numpy() + hebb)
        _close(late, expected)
