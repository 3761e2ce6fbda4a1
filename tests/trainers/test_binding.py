"""bind_rules, supervised parts, forward capture and batch preparation."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from hebbian.rules import Hebb, Krotov, Oja, SoftHebb
from hebbian.trainers import LayerCapture, bind_rules, candidate_layers, prepare_batch, unwrap_model
from hebbian.trainers.binding import supervised_layer_names


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(self.conv(x).mean(dim=(2, 3)))


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict(block=Block(), act=nn.ReLU(), hidden=nn.Linear(4, 5), out=nn.Linear(5, 2)))


def test_candidates_are_linear_and_conv_in_registration_order():
    assert [n for n, _ in candidate_layers(net())] == ["block.conv", "block.fc", "hidden", "out"]


def test_registry_names_fnmatch_types_predicates_and_none():
    model = net()
    spec = {
        "block.*": None,                                # excluded
        nn.Conv2d: Krotov(),                            # never reached: block.conv matched the pattern first
        lambda name, m: m.out_features == 5: "softhebb",
        "o?t": Oja(),
    }
    bindings = bind_rules(model, spec)
    assert [(b.name, type(b.rule)) for b in bindings] == [("hidden", SoftHebb), ("out", Oja)]
    assert bindings[1].layer is model.out and bindings[1].weight is model.out.weight and bindings[1].enabled
    with pytest.raises(TypeError, match="rule mapping keys"):
        bind_rules(model, {3: Oja()})
    with pytest.raises(TypeError, match="LearningRule objects or registry names"):
        bind_rules(model, {"hidden": 3.0})
    with pytest.raises(KeyError, match="unknown rule 'nope'"):
        bind_rules(model, "nope")


def test_shared_rule_objects_are_cloned_with_independent_state():
    rule = SoftHebb(t_inv=4.0)
    bindings = bind_rules(net(), rule, supervised_from="out")
    assert [b.name for b in bindings] == ["block.conv", "block.fc", "hidden"]
    assert len({id(b.rule) for b in bindings} | {id(rule)}) == 4
    assert all(b.rule.t_inv == 4.0 for b in bindings)


def test_supervised_from_counts_top_level_children():
    model = net()
    assert supervised_layer_names(model, None) == set()
    assert supervised_layer_names(model, -1) == {"out"}
    assert supervised_layer_names(model, 2) == {"hidden", "out"}
    assert supervised_layer_names(model, "block.fc") == {"block.fc", "act", "hidden", "out"}
    with pytest.raises(ValueError, match="out of range.*4 top-level children"):
        supervised_layer_names(model, 4)
    with pytest.raises(ValueError, match="'head' is not a module"):
        supervised_layer_names(model, "head")
    with pytest.raises(TypeError, match="supervised_from must be"):
        supervised_layer_names(model, True)


def test_freeze_patterns_and_errors():
    model = net()
    assert [b.name for b in bind_rules(model, Hebb(), freeze="block.*")] == ["hidden", "out"]
    with pytest.raises(ValueError, match="freeze: no Linear/Conv layer or attention projection named 'act'"):
        bind_rules(model, Hebb(), freeze=["act"])
    with pytest.raises(ValueError, match="no layer of the model is bound"):
        bind_rules(model, Hebb(), supervised_from=0)


def test_rule_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"layer 'out': k=3 needs at least k competing units, got 2"):
        bind_rules(net(), Krotov(k=3))


def test_wrappers_are_looked_through():
    model = net()
    wrapped = nn.DataParallel(nn.DataParallel(model))
    assert unwrap_model(wrapped) is model
    assert [b.name for b in bind_rules(wrapped, Hebb(), supervised_from=-1)] == ["block.conv", "block.fc", "hidden"]


def test_capture_records_every_use_and_stops_early_once_the_uses_are_known():
    model = net()
    bindings = bind_rules(model, Hebb(), supervised_from=-1)
    capture = LayerCapture(bindings)
    calls = []
    model.out.register_forward_pre_hook(lambda *_: calls.append("out"))
    x = torch.randn(3, 1, 5, 5)
    with capture.record({"block.fc", "hidden"}, stop_early=True) as records:
        model(x)  # the first pass runs to the end: it counts the uses of every weight
    assert set(records) == {"block.fc", "hidden"} and calls == ["out"]
    with capture.record({"block.fc", "hidden"}, stop_early=True) as records:
        model(x)
    assert set(records) == {"block.fc", "hidden"} and calls == ["out"]  # cut short before the head
    [use] = records["hidden"]
    torch.testing.assert_close(use.u, model.hidden(use.x))
    assert use.bias is model.hidden.bias.detach() or torch.equal(use.bias, model.hidden.bias)
    assert not use.u.requires_grad
    with capture.record({"hidden"}) as records:
        out = model(x)
    assert calls == ["out", "out"] and out.shape == (3, 2)
    with capture.record({"block.conv"}) as records:
        pass
    assert capture.missing() == set()  # the recording context is closed: nothing is wanted any more
    capture.remove()
    with capture.record({"hidden"}) as records:
        model(x)
    assert records == {}


@pytest.mark.parametrize("batch, has_y", [
    ((torch.ones(2, 3), torch.zeros(2)), True),
    ([torch.ones(2, 3), torch.zeros(2), "extra"], True),
    ({"image": torch.ones(2, 3), "label": torch.zeros(2)}, True),
    ({"x": torch.ones(2, 3)}, False),
    (torch.ones(2, 3), False),
    ((torch.ones(2, 3),), False),
])
def test_prepare_batch_forms(batch, has_y):
    x, y = prepare_batch(batch, "cpu")
    assert torch.equal(x, torch.ones(2, 3)) and (y is not None) == has_y


def test_prepare_batch_errors():
    with pytest.raises(TypeError, match="batch must be"):
        prepare_batch(3)
    with pytest.raises(TypeError, match="batch inputs must be a tensor"):
        prepare_batch(("a", torch.zeros(2)))
