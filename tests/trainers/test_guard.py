"""Non-finite updates never reach the weights; training stops naming the layer and the rule."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from ignite.engine import Events
from torch import nn

from hebbian.optim import Local
from hebbian.rules import Hebb, Krotov, Oja
from hebbian.rules import create
from hebbian.trainers import HebbianTrainer, NonFiniteGuard, NonFiniteUpdateError, bind_rules
from hebbian.trainers.guard import NonFiniteWeightsError


class Exploding(Hebb):
    """Hebb whose update turns infinite from its ``fuse``-th call on (not registered: it reuses Hebb's info)."""

    def __init__(self, normalize: str = "mean", fuse: int = 3) -> None:
        super().__init__(normalize)
        self.fuse, self.calls = fuse, 0

    def finalize(self, view, stats, grad=None):
        self.calls += 1
        delta = super().finalize(view, stats, grad)
        return delta * float("inf") if self.calls >= self.fuse else delta


def model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict(h1=nn.Linear(10, 6, bias=False), act=nn.ReLU(), h2=nn.Linear(6, 4, bias=False),
                                     head=nn.Linear(4, 2)))


def data(n: int = 5, bad: int = 3) -> list:
    """``n`` batches; batch number ``bad`` (1-based) holds a NaN."""
    g = torch.Generator().manual_seed(0)
    out = [torch.randn(8, 10, generator=g) for _ in range(n)]
    out[bad - 1][2, 4] = float("nan")
    return out


def snapshots_of(trainer: HebbianTrainer, net: nn.Module) -> dict:
    def copy() -> dict:
        return {k: v.clone() for k, v in net.state_dict().items()}

    snaps = {0: copy()}
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: snaps.__setitem__(e.state.iteration, copy()))
    return snaps


def assert_weights_are(net: nn.Module, expected: dict) -> None:
    for k, v in net.state_dict().items():
        assert torch.isfinite(v).all(), k
        assert torch.equal(v, expected[k]), k


@pytest.mark.parametrize("rule", [Oja(), Krotov()], ids=["oja", "krotov"])
def test_nan_input_stops_training_and_keeps_the_weights(rule):
    net = model()
    trainer = HebbianTrainer(net, rule, Local(net.parameters(), lr=0.1))
    snaps = snapshots_of(trainer, net)
    expected = rf"iteration 3 from layer 'h1' \(rule {type(rule).__name__}\("
    with pytest.raises(NonFiniteUpdateError, match=expected) as err:
        trainer.run(data(bad=3), epochs=1)
    assert "not applied" in str(err.value)
    assert trainer.state.iteration == 3 and 3 not in snaps
    assert_weights_are(net, snaps[2])  # neither h1 nor h2 moved in the failed iteration


def test_a_rule_producing_inf_is_named_and_no_layer_moves():
    net = model()
    trainer = HebbianTrainer(net, {"h1": Oja(), "h2": Exploding(fuse=2)}, Local(net.parameters(), lr=0.1))
    snaps = snapshots_of(trainer, net)
    with pytest.raises(NonFiniteUpdateError, match=r"iteration 2 from layer 'h2' \(rule Exploding\(normalize='mean'"):
        trainer.run([torch.randn(8, 10) for _ in range(4)], epochs=1)
    assert_weights_are(net, snaps[1])  # h1's finite update of that iteration was not applied either


def test_deferred_mode_zeroes_the_update_and_raises_at_the_check():
    net = model()
    trainer = HebbianTrainer(net, Oja(), Local(net.parameters(), lr=0.1), nan_check_every=1)
    trainer.guard.deferred = True  # the accelerator path, on CPU tensors
    snaps = snapshots_of(trainer, net)
    with pytest.raises(NonFiniteUpdateError, match=r"iteration 3 from layer 'h1' \(rule Oja.*layer 'h2'"):
        trainer.run(data(bad=3), epochs=1)
    # the ITERATION_COMPLETED handlers ran in registration order: the guard's check raised before the snapshot
    assert 3 not in snaps
    assert_weights_are(net, snaps[2])  # the flagged updates were replaced by zeros
    assert not trainer.guard._flags.any()  # noqa: SLF001 - flags are cleared once raised


def test_deferred_mode_raises_at_epoch_end_at_the_latest():
    net = model()
    trainer = HebbianTrainer(net, Oja(), Local(net.parameters(), lr=0.1), nan_check_every=1000)
    trainer.guard.deferred = True
    snaps = snapshots_of(trainer, net)
    with pytest.raises(NonFiniteUpdateError, match=r"iterations 1\.\.5 from layer 'h1'"):
        trainer.run(data(n=5, bad=2), epochs=3)
    assert trainer.state.epoch == 1
    # iterations 3..5 trained on finite data: the weights moved after the bad batch but hold no NaN
    for k, v in net.state_dict().items():
        assert torch.isfinite(v).all(), k
    assert torch.equal(snaps[2]["h1.weight"], snaps[1]["h1.weight"])  # the bad update itself was zeroed
    assert not torch.equal(snaps[5]["h1.weight"], snaps[2]["h1.weight"])


def test_guard_modes_and_direct_calls():
    net = model()
    bindings = bind_rules(net, Oja(), supervised_from=-1)
    guard = NonFiniteGuard(bindings)
    assert not guard.is_deferred(torch.device("cpu")) and guard.is_deferred(torch.device("cuda"))
    good, bad = torch.ones(6, 10), torch.full((6, 10), float("inf"))
    assert guard(0, good, 1) is good
    with pytest.raises(NonFiniteUpdateError, match="layer 'h1'"):
        guard(0, bad, 1)
    deferred = NonFiniteGuard(bindings, deferred=True)
    assert torch.equal(deferred(1, bad, 7), torch.zeros(6, 10))
    assert torch.equal(deferred(0, good, 7), good)
    with pytest.raises(NonFiniteUpdateError, match=r"iterations 1\.\.9 from layer 'h2'") as err:
        deferred.raise_if_flagged(9)
    assert "'h1'" not in str(err.value)
    deferred.raise_if_flagged(10)  # cleared
    with pytest.raises(TypeError, match="deferred"):
        NonFiniteGuard(bindings, deferred="yes")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_nan_on_cuda_is_deferred_and_never_applied():
    net = model().cuda()
    trainer = HebbianTrainer(net, Oja(), Local(net.parameters(), lr=0.1), device="cuda", nan_check_every=2)
    snaps = snapshots_of(trainer, net)
    with pytest.raises(NonFiniteUpdateError, match=r"iterations 3\.\.4 from layer 'h1'"):
        trainer.run(data(n=5, bad=3), epochs=1)
    assert torch.equal(snaps[3]["h1.weight"], snaps[2]["h1.weight"])
    for v in net.state_dict().values():
        assert torch.isfinite(v).all()


# ---------------------------------------------------------------------- the weights after the step
def test_a_finite_update_that_overflows_the_weights_stops_naming_the_layer():
    """Plain Hebb with a huge lr: the update stays finite while W + lr * dW overflows to Inf (issue 10)."""
    net = model()
    with torch.no_grad():
        net.h1.weight.mul_(1e3)
    trainer = HebbianTrainer(net, {"h1": Hebb()}, Local(net.parameters(), lr=1e30), supervised_from=None)
    updates = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: updates.append(e.state.iteration))
    x = [torch.randn(8, 10, generator=torch.Generator().manual_seed(i)) * 1e3 for i in range(4)]
    with pytest.raises(NonFiniteWeightsError, match=r"weights after the optimizer step in iteration \d in layer 'h1'") as err:
        trainer.run(x, epochs=1)
    assert not err.value.weights_finite and isinstance(err.value, NonFiniteUpdateError)
    it = trainer.state.iteration
    assert it not in updates  # stopped inside the iteration whose step overflowed
    assert not torch.isfinite(net.h1.weight).all()  # the guard reports it; the checkpoint saver refuses it


def test_deferred_weight_check_raises_at_the_next_check():
    net = model()
    trainer = HebbianTrainer(net, {"h1": Hebb()}, Local(net.parameters(), lr=1e36), supervised_from=None,
                             nan_check_every=3)
    trainer.guard.deferred = True
    x = [torch.randn(8, 10, generator=torch.Generator().manual_seed(i)) * 1e3 for i in range(6)]
    with pytest.raises(NonFiniteWeightsError, match=r"iterations 1\.\.3 in layer 'h1'"):
        trainer.run(x, epochs=1)


def test_float_labels_are_refused_as_rule_update_refuses_them():
    torch.manual_seed(0)
    net = nn.Sequential(OrderedDict(h1=nn.Linear(10, 3, bias=False), head=nn.Linear(3, 2)))
    rule = create("supervised_instar")
    trainer = HebbianTrainer(net, rule, Local(net.parameters(), lr=0.1))
    x = torch.randn(8, 10)
    with pytest.raises(TypeError, match="labels must hold integer class indices, got dtype torch.float32"):
        rule.update(net.h1, x, net.h1(x), torch.full((8,), 1.7))
    before = net.h1.weight.clone()
    with pytest.raises(TypeError, match="labels must hold integer class indices, got dtype torch.float32"):
        trainer.run([(x, torch.full((8,), 1.7))], epochs=1)
    assert torch.equal(net.h1.weight, before)
    trainer = HebbianTrainer(net, rule, Local(net.parameters(), lr=0.1))
    with pytest.raises(ValueError, match=r"labels must have shape \(8,\)"):
        trainer.run([(x, torch.zeros(8, 1, dtype=torch.long))], epochs=1)
    trainer = HebbianTrainer(net, rule, Local(net.parameters(), lr=0.1))
    trainer.run([(x, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))], epochs=1)  # integer labels train
    assert not torch.equal(net.h1.weight, before)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("bad", [None, float("nan"), float("inf"), float("-inf")])
def test_finite_checks_are_exact_even_when_the_sum_overflows(dtype, bad):
    from hebbian.trainers.guard import all_finite, finite

    big = torch.finfo(dtype).max
    t = torch.full((64, 7), big, dtype=dtype)  # every element finite, the sum in t's dtype overflows
    t[5, 3] = -big / 2
    if bad is not None:
        t[17, 2] = bad
    expected = bad is None
    assert not torch.isfinite(t.sum()).item() or dtype == torch.float64 and expected  # the cheap sum alone would fail
    assert bool(finite(t)) is expected
    assert all_finite(t) is expected
    assert all_finite(t[:, 3:].t())  # a non-contiguous view without the bad column


def test_weights_at_the_largest_finite_values_are_not_reported_as_non_finite():
    guard = NonFiniteGuard([b for b in bind_rules(model(), Hebb())])
    for b in guard.bindings:
        b.weight.data.fill_(torch.finfo(torch.float32).max)
    guard.check_weights(list(range(len(guard.bindings))), 1)  # immediate mode: would raise on a false alarm
    deferred = NonFiniteGuard(guard.bindings, deferred=True)
    deferred.check_weights(list(range(len(guard.bindings))), 1)
    deferred.raise_if_flagged(1)
    guard.bindings[0].weight.data[0, 0] = float("nan")
    with pytest.raises(NonFiniteWeightsError, match="h1"):
        guard.check_weights(list(range(len(guard.bindings))), 2)


def test_a_nan_planted_in_an_untouched_row_is_found():
    net = nn.Sequential(OrderedDict(h1=nn.Linear(10, 6, bias=False), act=nn.ReLU(), head=nn.Linear(6, 2)))
    trainer = HebbianTrainer(net, {"h1": Krotov(p=3.0, k=2)}, Local(net.named_parameters(), lr=0.1))
    g = torch.Generator().manual_seed(0)
    batches = [(torch.rand(4, 10, generator=g), torch.zeros(4, dtype=torch.long)) for _ in range(2)]
    trainer.run(batches, max_epochs=1)
    with torch.no_grad():
        net.h1.weight[5, 0] = float("nan")
    with pytest.raises(NonFiniteWeightsError, match="h1"):
        trainer.guard.check_weights([0], 3)
