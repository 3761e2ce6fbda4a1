"""Behaviour of HebbianTrainer: binding, one forward per batch, simultaneous updates, greedy mode, control, events."""

from __future__ import annotations

import copy
from collections import OrderedDict
from unittest.mock import MagicMock

import pytest
import torch
from ignite.engine import Events
from ignite.handlers import LRScheduler
from ignite.handlers.tensorboard_logger import OutputHandler, TensorboardLogger
from torch import nn

from hebbian.optim import Local
from hebbian.rules import GHL, Hebb, Krotov, Oja, Sanger, SoftHebb, create
from hebbian.trainers import HebbianEvents, HebbianTrainer, create_hebbian_trainer, DeterministicHebbianTrainer

IN, H1, H2, OUT = 12, 8, 6, 3


def mlp(seed: int = 0) -> nn.Sequential:
    """flat -> h1 -> act1 -> h2 -> act2 -> head (the last child is the supervised readout)."""
    torch.manual_seed(seed)
    return nn.Sequential(OrderedDict(
        flat=nn.Flatten(), h1=nn.Linear(IN, H1, bias=False), act1=nn.ReLU(),
        h2=nn.Linear(H1, H2, bias=False), act2=nn.ReLU(), head=nn.Linear(H2, OUT),
    ))


def batches(n: int = 6, size: int = 10, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, IN, generator=g), torch.randint(0, OUT, (size,), generator=g)) for _ in range(n)]


def weights(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def layer_io(model: nn.Module, x: torch.Tensor, names) -> dict:
    """(input, output) of the named layers in one plain forward pass."""
    seen, handles = {}, []
    def hook(name):
        def record(module, inputs, output):
            seen.setdefault(name, (inputs[0], output))
        return record

    for name in names:
        handles.append(model.get_submodule(name).register_forward_hook(hook(name)))
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return seen


# ---------------------------------------------------------------------- binding rules to layers
def test_one_rule_is_cloned_for_every_hebbian_layer():
    model, rule = mlp(), Oja()
    trainer = HebbianTrainer(model, rule, Local(model.parameters(), lr=0.01))
    assert trainer.layer_names == ["h1", "h2"]  # the head (last child) is supervised by default
    rules = [b.rule for b in trainer.bindings]
    assert all(isinstance(r, Oja) and r is not rule for r in rules) and rules[0] is not rules[1]
    assert [b.layer for b in trainer.bindings] == [model.h1, model.h2]


def test_mapping_by_name_pattern_type_and_predicate():
    model = mlp()
    opt = Local(model.parameters(), lr=0.01)
    by_name = HebbianTrainer(model, {"h1": Oja(), "h[0-9]": "hebb"}, opt)  # first matching key wins
    assert [type(b.rule) for b in by_name.bindings] == [Oja, Hebb]
    model = mlp()
    by_pred = HebbianTrainer(model, {lambda n, m: m.out_features == H2: Sanger()}, Local(model.parameters(), 0.01))
    assert by_pred.layer_names == ["h2"] and isinstance(by_pred.bindings[0].rule, Sanger)
    excluded = HebbianTrainer(model, {"h2": None, nn.Linear: Krotov()}, Local(model.parameters(), 0.01))
    assert excluded.layer_names == ["h1", "head"]  # a mapping binds only what it maps; None excludes


def test_different_rules_on_conv_and_linear_layers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 5), nn.Linear(5, 2))
    trainer = HebbianTrainer(model, {nn.Conv2d: Krotov(), nn.Linear: Oja()}, Local(model.parameters(), 0.01),
                             supervised_from=-1)
    assert trainer.layer_names == ["0", "3"]
    assert [type(b.rule) for b in trainer.bindings] == [Krotov, Oja]
    before = weights(model)
    trainer.run([torch.randn(3, 1, 6, 6) for _ in range(2)], epochs=1)
    after = weights(model)
    assert not torch.equal(before["0.weight"], after["0.weight"])
    assert not torch.equal(before["3.weight"], after["3.weight"])
    assert torch.equal(before["4.weight"], after["4.weight"])


# ---------------------------------------------------------------------- the per-batch step
def test_one_forward_pass_per_batch_and_the_head_is_skipped():
    model = mlp()
    calls = {"model": 0, "head": 0}
    model.register_forward_pre_hook(lambda *_: calls.__setitem__("model", calls["model"] + 1))
    model.head.register_forward_pre_hook(lambda *_: calls.__setitem__("head", calls["head"] + 1))
    trainer = HebbianTrainer(model, Oja(), Local(model.parameters(), lr=0.01))
    trainer.run(batches(5), epochs=2)
    # one forward per batch for both layers; the first runs to the end (it counts every weight's uses), stop_early
    # cuts the head from all others
    assert calls == {"model": 10, "head": 1}


def test_all_layers_are_updated_from_the_same_forward_pass():
    model, lr = mlp(), 0.05
    x, y = batches(1)[0]
    pre = copy.deepcopy(model)
    trainer = HebbianTrainer(model, {"h1": Oja(), "h2": Krotov(k=3)}, Local(model.parameters(), lr=lr))
    trainer.run([(x, y)], epochs=1)
    io = layer_io(pre, x, ["h1", "h2"])
    expected_h1 = pre.h1.weight + lr * Oja().update(pre.h1, *io["h1"])
    expected_h2 = pre.h2.weight + lr * Krotov(k=3).update(pre.h2, *io["h2"])
    torch.testing.assert_close(model.h1.weight, expected_h1, rtol=0, atol=1e-6)
    torch.testing.assert_close(model.h2.weight, expected_h2, rtol=0, atol=1e-6)
    torch.testing.assert_close(trainer.state.hebbian_updates["h2"], Krotov(k=3).update(pre.h2, *io["h2"]))
    # sequential training (h2 fed by the already updated h1) would give something else
    seq = copy.deepcopy(pre)
    seq.h1.weight.data.copy_(expected_h1)
    seq_h2 = pre.h2.weight + lr * Krotov(k=3).update(pre.h2, *layer_io(seq, x, ["h2"])["h2"])
    assert not torch.allclose(seq_h2, expected_h2, atol=1e-6)
    assert torch.equal(model.head.weight, pre.head.weight)


def test_labels_reach_rules_that_need_them():
    model = mlp()
    trainer = HebbianTrainer(model, {"head": "supervised_instar"}, Local(model.parameters(), lr=0.5))
    x, y = batches(1)[0]
    pre = copy.deepcopy(model)
    trainer.run([(x, y)], epochs=1)
    delta = create("supervised_instar").update(pre.head, *layer_io(pre, x, ["head"])["head"], y)
    expected = pre.head.weight + 0.5 * delta
    torch.testing.assert_close(model.head.weight, expected)
    with pytest.raises(ValueError, match="no labels"):
        trainer.run([x], epochs=2)


# ---------------------------------------------------------------------- greedy layer-wise training
def test_greedy_mode_trains_one_layer_after_the_other():
    model = mlp()
    trainer = HebbianTrainer(model, Oja(), Local(model.parameters(), lr=0.05), greedy_epochs=2)
    snapshots, completed = [weights(model)], []
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: snapshots.append(weights(model)))
    trainer.add_event_handler(HebbianEvents.GREEDY_LAYER_COMPLETED,
                              lambda e: completed.append((e.state.epoch, e.state.greedy_layer)))
    trainer.run(batches(3), epochs=5)
    changed = [[not torch.equal(a[k], b[k]) for k in ("h1.weight", "h2.weight")]
               for a, b in zip(snapshots, snapshots[1:])]
    assert changed == [[True, False], [True, False], [False, True], [False, True], [False, True]]
    assert completed == [(2, 1)]
    assert trainer.state_dict()["greedy_layer"] == 1
    # a fresh run starts the schedule again from the first layer
    before = weights(model)
    trainer.state.max_epochs = None  # Ignite's way of asking for a fresh run
    trainer.run(batches(3), epochs=1)
    assert not torch.equal(before["h1.weight"], model.h1.weight) and torch.equal(before["h2.weight"], model.h2.weight)


def test_greedy_layer_is_restored_from_state_dict():
    model = mlp()
    trainer = HebbianTrainer(model, Oja(), Local(model.parameters(), lr=0.05), greedy_epochs=2)
    trainer.load_state_dict({"epoch": 2, "epoch_length": 3, "max_epochs": 4, "greedy_layer": 1,
                             "disabled_layers": [], "layer_updates": 6})
    before = weights(model)
    trainer.run(batches(3))
    assert trainer.state.epoch == 4
    assert torch.equal(before["h1.weight"], model.h1.weight) and not torch.equal(before["h2.weight"], model.h2.weight)


# ---------------------------------------------------------------------- supervised_from and freeze
@pytest.mark.parametrize("supervised_from", [3, "h2", -3])
def test_supervised_from_index_or_name(supervised_from):
    model = mlp()
    trainer = HebbianTrainer(model, Oja(), Local(model.parameters(), lr=0.01), supervised_from=supervised_from)
    assert trainer.layer_names == ["h1"]


def test_supervised_from_none_binds_every_layer_and_freeze_excludes():
    model = mlp()
    assert HebbianTrainer(model, Oja(), Local(model.parameters(), 0.01), supervised_from=None).layer_names == [
        "h1", "h2", "head"]
    frozen = HebbianTrainer(model, Oja(), Local(model.parameters(), 0.01), freeze=["h1"])
    assert frozen.layer_names == ["h2"]
    before = weights(model)
    frozen.run(batches(2), epochs=1)
    assert torch.equal(before["h1.weight"], model.h1.weight) and not torch.equal(before["h2.weight"], model.h2.weight)


# ---------------------------------------------------------------------- learning switched at run time
def test_enable_and_disable_learning_at_run_time():
    model = mlp()
    trainer = HebbianTrainer(model, Oja(), Local(model.parameters(), lr=0.05))
    snapshots = {}
    trainer.add_event_handler(Events.ITERATION_COMPLETED,
                              lambda e: snapshots.__setitem__(e.state.iteration, weights(model)))
    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=2), lambda e: e.disable_learning("h1"))
    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=4), lambda e: e.enable_learning())
    trainer.run(batches(6), epochs=1)
    h1 = [snapshots[i]["h1.weight"] for i in range(1, 7)]
    assert torch.equal(h1[1], h1[2]) and torch.equal(h1[2], h1[3])  # iterations 3 and 4: h1 frozen
    assert not torch.equal(h1[3], h1[4])                            # learning again from iteration 5
    assert not torch.equal(snapshots[3]["h2.weight"], snapshots[2]["h2.weight"])  # h2 kept learning
    trainer.disable_learning()
    assert trainer.state_dict()["disabled_layers"] == ["h1", "h2"]
    with pytest.raises(ValueError, match="unknown Hebbian layers.*nope"):
        trainer.disable_learning("nope")


# ---------------------------------------------------------------------- events and loggers
def test_layer_updated_event_with_every_filter():
    model = mlp()
    trainer = HebbianTrainer(model, Oja(), Local(model.parameters(), lr=0.01))
    fired = []
    trainer.add_event_handler(HebbianEvents.LAYER_UPDATED(every=3),
                              lambda e: fired.append((e.state.layer_updates, e.state.layer_name)))
    trainer.run(batches(6), epochs=1)  # 2 layers x 6 batches = 12 updates
    assert fired == [(3, "h1"), (6, "h2"), (9, "h1"), (12, "h2")]
    assert trainer.state.layer_updates == 12


def test_tensorboard_output_handler_on_layer_updated(tmp_path):
    model = mlp()
    trainer = HebbianTrainer(model, Oja(), Local(model.parameters(), lr=0.01))
    logger = TensorboardLogger(log_dir=str(tmp_path))
    logger.writer.close()
    logger.writer = MagicMock()
    handler = OutputHandler(tag="hebb", output_transform=lambda _: {"layer": float(trainer.layer_names.index(
        trainer.state.layer_name))})
    logger.attach(trainer, handler, HebbianEvents.LAYER_UPDATED)
    trainer.run(batches(2), epochs=1)
    calls = [c.args for c in logger.writer.add_scalar.call_args_list]
    # global step = the event's own counter, found through the event_to_attr registration
    assert calls == [("hebb/layer", 0.0, 1), ("hebb/layer", 1.0, 2), ("hebb/layer", 0.0, 3), ("hebb/layer", 1.0, 4)]
    logger.close()


def test_run_takes_epochs_like_pytorch_hebbian():
    model = mlp()
    trainer = HebbianTrainer(model, Oja(), Local(model.parameters(), lr=0.01))
    state = trainer.run(batches(4), epochs=3)
    assert (state.epoch, state.iteration) == (3, 12)
    with pytest.raises(ValueError, match="either epochs or max_epochs"):
        trainer.run(batches(4), max_epochs=2, epochs=2)


# ---------------------------------------------------------------------- optimizers and schedulers
def test_sgd_weight_decay_moves_along_the_update():
    model, lr, wd = mlp(), 0.1, 0.01
    x, y = batches(1)[0]
    pre = copy.deepcopy(model)
    trainer = HebbianTrainer(model, Oja(), torch.optim.SGD(model.parameters(), lr=lr, weight_decay=wd))
    trainer.run([(x, y)], epochs=1)
    io = layer_io(pre, x, ["h1", "h2"])
    for name in ("h1", "h2"):
        w = pre.get_submodule(name).weight
        expected = w + lr * Oja().update(pre.get_submodule(name), *io[name]) - lr * wd * w
        torch.testing.assert_close(model.get_submodule(name).weight, expected, rtol=0, atol=1e-6)
    assert torch.equal(model.head.weight, pre.head.weight)  # no .grad on the head: SGD leaves it alone


def test_adam_over_named_and_unnamed_parameters_trains():
    model = mlp()
    trainer = HebbianTrainer(model, SoftHebb(), torch.optim.Adam(model.parameters(), lr=1e-3))
    before = weights(model)
    trainer.run(batches(2), epochs=1)
    assert not torch.equal(before["h1.weight"], model.h1.weight)
    assert torch.equal(before["head.weight"], model.head.weight)


def test_krotov_linear_anneal_with_lambda_lr():
    """Krotov's max-abs step: the largest element change of each layer equals the current learning rate."""
    model, lr0, total = mlp(), 0.02, 8
    opt = Local(model.named_parameters(), lr=lr0)
    trainer = HebbianTrainer(model, Krotov(k=3), opt)
    scheduler = LRScheduler(torch.optim.lr_scheduler.LambdaLR(opt, lambda it: 1 - it / total))
    trainer.add_event_handler(Events.ITERATION_STARTED, scheduler)
    steps, last = [], [weights(model)]

    @trainer.on(Events.ITERATION_COMPLETED)
    def _record(_):
        now = weights(model)
        steps.append((now["h1.weight"] - last[-1]["h1.weight"]).abs().max().item())
        last.append(now)

    trainer.run(batches(4), epochs=2)
    expected = [lr0 * (1 - t / total) for t in range(total)]
    assert steps == pytest.approx(expected, rel=1e-4)


# ---------------------------------------------------------------------- wrappers
def test_data_parallel_wrapper_is_looked_through():
    model = mlp()
    wrapped = nn.DataParallel(model)  # CPU: calls the module directly, as DDP does on one device
    trainer = HebbianTrainer(wrapped, Oja(), Local(wrapped.parameters(), lr=0.01), freeze="h2")
    assert trainer.layer_names == ["h1"]
    before = weights(model)
    trainer.run(batches(2), epochs=1)
    assert not torch.equal(before["h1.weight"], model.h1.weight)


def test_create_hebbian_trainer_deterministic():
    model = mlp()
    assert type(create_hebbian_trainer(model, Oja(), Local(model.parameters()), deterministic=True)) is \
        DeterministicHebbianTrainer
    assert type(create_hebbian_trainer(model, Oja(), Local(model.parameters()))) is HebbianTrainer


# ---------------------------------------------------------------------- construction-time errors
def test_rule_that_cannot_train_its_layer_names_it():
    model = mlp()
    with pytest.raises(ValueError, match=r"layer 'h2'.*k=7"):
        HebbianTrainer(model, Krotov(k=7), Local(model.parameters()))


def test_rule_needing_labels_without_labels():
    model = mlp()
    with pytest.raises(ValueError, match=r"'head'.*needs labels.*use_labels=False"):
        HebbianTrainer(model, {"head": "supervised_instar"}, Local(model.parameters()), use_labels=False)


def test_ghl_is_refused():
    model = mlp()
    with pytest.raises(ValueError, match="GHLTrainer"):
        HebbianTrainer(model, GHL(), Local(model.parameters()))
    # GHL's local-only ablation needs no gradient and is a plain local rule
    assert HebbianTrainer(model, GHL(mode="local_only"), Local(model.parameters())).layer_names == ["h1", "h2"]


def test_optimizer_must_hold_the_hebbian_weights():
    model = mlp()
    with pytest.raises(ValueError, match=r"optimizer does not hold .*'h2'"):
        HebbianTrainer(model, Oja(), Local([model.h1.weight]))
    with pytest.raises(TypeError, match="torch.optim.Optimizer"):
        HebbianTrainer(model, Oja(), object())


def test_unknown_freeze_name_and_nothing_bound():
    model = mlp()
    with pytest.raises(ValueError, match="freeze.*'h9'"):
        HebbianTrainer(model, Oja(), Local(model.parameters()), freeze=["h9"])
    with pytest.raises(ValueError, match="no layer of the model is bound"):
        HebbianTrainer(model, {"nothing*": Oja()}, Local(model.parameters()))
    with pytest.raises(ValueError, match="greedy_epochs"):
        HebbianTrainer(model, Oja(), Local(model.parameters()), greedy_epochs=0)


def test_only_the_bound_weights_move_although_the_optimizer_holds_every_parameter():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4, bias=False), nn.ReLU(), nn.Linear(4, 2))
    readout = [p.detach().clone() for p in model[2].parameters()]
    for p in model[2].parameters():  # a stale gradient, e.g. from an earlier supervised phase
        p.grad = torch.ones_like(p)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    trainer = HebbianTrainer(model, create("oja"), optimizer)
    before = model[0].weight.detach().clone()
    trainer.run([(torch.rand(8, 6), torch.zeros(8, dtype=torch.long))] * 3, max_epochs=1)
    assert all(torch.equal(p, q) for p, q in zip(model[2].parameters(), readout))
    assert not torch.equal(model[0].weight, before)
