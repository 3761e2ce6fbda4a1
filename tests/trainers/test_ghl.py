"""GHLTrainer: the per-batch step against an independent reference, parameter groups, ablations, schedules,
mixed precision, determinism, and torchvision VGG / ResNet."""

from __future__ import annotations

import copy
import math
import warnings
from types import SimpleNamespace

import pytest
import torch
from ignite.engine import Events
from ignite.metrics import RunningAverage
from torch import nn

from hebbian.models import create_model
from hebbian.rules import GHL, SoftHebb
from hebbian.trainers import (
    BackpropOnlyWarning,
    DeterministicGHLTrainer,
    GHLTrainer,
    HebbianEvents,
    HebbianTrainer,
    backprop_only_layers,
    create_ghl_trainer,
    ghl_lr_scheduler,
    ghl_param_groups,
    select_hebbian_layers,
)

torchvision = pytest.importorskip("torchvision")
pytestmark = pytest.mark.usefixtures("single_thread")


def small_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 5, 3, padding=1, bias=False), nn.ReLU(), nn.BatchNorm2d(5),
        nn.Conv2d(5, 6, 3, bias=False), nn.ReLU(), nn.Flatten(),
        nn.Linear(6 * 6 * 6, 16), nn.ReLU(), nn.Linear(16, 10),
    )


def batch(n: int = 8, size: int = 8, channels: int = 1, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size, generator=g), torch.randint(0, 10, (n,), generator=g)


def reference_step(model: nn.Module, x, y, conv_names, rules):
    """Independently: backprop gradients of every parameter and each conv's local Dhat from its (input, output)."""
    model = copy.deepcopy(model).train()
    modules = dict(model.named_modules())
    seen = {}
    handles = [modules[n].register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, (i[0].detach(),
                                                                                          o.detach())))
               for n in conv_names]
    nn.functional.cross_entropy(model(x), y).backward()
    for h in handles:
        h.remove()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    dhat = {n: rules[n].local.update(modules[n], *seen[n]) for n in conv_names}
    return grads, dhat


def weights(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def one_step(spec, reference_rules, lr_conv=0.1, wd_conv=0.0, lr=0.05):
    """One GHLTrainer step of ``small_net`` on a batch, with the independent reference of the same step."""
    model = small_net()
    x, y = batch()
    names = list(reference_rules)
    grads, dhat = reference_step(model, x, y, names, reference_rules)
    optimizer = torch.optim.SGD(ghl_param_groups(model, names, lr_conv, wd_conv, lr), lr=lr, momentum=0.0)
    before = weights(model)
    trainer = GHLTrainer(model, spec, optimizer)
    fired = []
    trainer.add_event_handler(HebbianEvents.LAYER_UPDATED, lambda e: fired.append(e.state.layer_name))
    trainer.run([(x, y)], max_epochs=1)
    steps = {n: w - before[n] for n, w in weights(model).items()}
    return SimpleNamespace(trainer=trainer, steps=steps, before=before, grads=grads, dhat=dhat, fired=fired)


@pytest.mark.parametrize("t_inv", [1.0, 0.25])
def test_ghl_step_is_lr_times_dhat_magnitude_against_the_backprop_sign(t_inv):
    rules = {n: GHL(t_inv=t_inv) for n in ("0", "3")}
    lr_conv, lr = 0.1, 0.05
    r = one_step(rules, rules, lr_conv, 0.0, lr)
    for n in rules:
        step, g, d = r.steps[f"{n}.weight"], r.grads[f"{n}.weight"], r.dhat[n]
        assert torch.allclose(step, -lr_conv * d.abs() * g.sign(), atol=1e-7)
        live = (d.abs() > 0) & (g != 0)
        assert live.float().mean() > 0.9
        assert torch.equal(step.sign()[live], -g.sign()[live])
        assert torch.allclose(step.abs()[live], lr_conv * d.abs()[live], atol=1e-7)
        assert step.abs().max().item() == pytest.approx(lr_conv, rel=1e-5)  # max |Dhat| = 1
        assert torch.allclose(r.trainer.state.hebbian_updates[n], -d.abs() * g.sign(), atol=1e-7)
    for n in ("2.weight", "2.bias", "6.weight", "6.bias", "8.weight", "8.bias"):  # BN, hidden FC, head: plain BP
        assert torch.allclose(r.steps[n], -lr * r.grads[n], atol=1e-7), n
    assert r.trainer.state.layer_updates == 2


def test_ghl_default_selection_weight_decay_and_events():
    assert select_hebbian_layers(small_net()) == ["0", "3"]
    r = one_step("ghl", {n: GHL() for n in ("0", "3")}, lr_conv=0.1, wd_conv=0.5, lr=0.05)
    assert r.fired == ["0", "3"]
    w0 = r.before["0.weight"]
    expected = -0.1 * (r.dhat["0"].abs() * r.grads["0.weight"].sign() + 0.5 * w0)  # coupled L2 in group A only
    assert torch.allclose(r.steps["0.weight"], expected, atol=1e-7)
    assert torch.allclose(r.steps["8.weight"], -0.05 * r.grads["8.weight"], atol=1e-7)


@pytest.mark.parametrize("mode", ["local_only", "sign_only"])
def test_ablations(mode):
    rules = {n: GHL(mode=mode) for n in ("0", "3")}
    r = one_step(rules, rules)
    for n in rules:
        if mode == "local_only":  # the soft-WTA Oja rule alone: W += lr * Dhat
            assert torch.allclose(r.steps[f"{n}.weight"], 0.1 * r.dhat[n], atol=1e-7)
        else:  # sign-SGD: |Dhat| = 1
            assert torch.allclose(r.steps[f"{n}.weight"], -0.1 * r.grads[f"{n}.weight"].sign(), atol=1e-7)
    assert torch.allclose(r.steps["8.bias"], -0.05 * r.grads["8.bias"], atol=1e-7)


def test_local_rules_without_global_gradient_can_train_layers_in_the_ghl_loop():
    model = small_net()
    x, y = batch()
    grads, _ = reference_step(model, x, y, [], {})
    optimizer = torch.optim.SGD(ghl_param_groups(model, ["0"], 0.01, 0.0, 0.05), lr=0.05)
    before = weights(model)
    trainer = GHLTrainer(model, {"0": SoftHebb()}, optimizer)
    trainer.run([(x, y)], max_epochs=1)
    assert trainer.layer_names == ["0"]
    step = weights(model)["0.weight"] - before["0.weight"]
    assert torch.allclose(step, 0.01 * trainer.state.hebbian_updates["0"], atol=1e-7)
    assert torch.allclose(weights(model)["3.weight"] - before["3.weight"], -0.05 * grads["3.weight"], atol=1e-7)


def test_fasthebb_grouping_puts_fc5_and_bn5_in_the_backprop_group():
    model = create_model("fasthebb", in_channels=3, input_size=32, width=0.05)
    names = select_hebbian_layers(model)
    assert names == ["conv1", "conv2", "conv3", "conv4"] == list(model.recipe("ghl").layers)
    settings = model.recipe("ghl").settings
    group_a, group_b = ghl_param_groups(model, names, settings["lr_conv"], settings["wd_conv"], settings["lr"])
    params = dict(model.named_parameters())
    ids_a, ids_b = {id(p) for p in group_a["params"]}, {id(p) for p in group_b["params"]}
    assert ids_a == {id(params[f"{n}.weight"]) for n in names}
    assert (group_a["lr"], group_a["weight_decay"]) == (5e-2, 1e-2) and (group_b["lr"], group_b["weight_decay"]) == (
        1e-4, 0.0)
    for n in ("fc5.weight", "fc5.bias", "bn5.weight", "bn5.bias", "fc6.weight", "fc6.bias"):
        assert id(params[n]) in ids_b
    assert ids_a.isdisjoint(ids_b) and ids_a | ids_b == {id(p) for p in params.values()}
    assert select_hebbian_layers(model, "conv+linear") == names + ["fc5"]
    with pytest.raises(ValueError, match="no layers named"):
        ghl_param_groups(model, ["conv9"], 0.1, 0.0, 0.1)


def test_deephebb_ghl_recipe_trains_end_to_end():
    torch.manual_seed(0)
    model = create_model("deephebb", variant="ghl", in_channels=1, input_size=8, width=0.1)
    s = model.recipe().settings
    optimizer = torch.optim.SGD(ghl_param_groups(model, list(model.default_rules()), s["lr_conv"], s["wd_conv"],
                                                 s["lr"]), lr=s["lr"], momentum=0.0)
    trainer = GHLTrainer(model, model.default_rules(), optimizer)
    assert [b.rule.t_inv for b in trainer.bindings] == [1.0, 0.65, 0.25]
    x, y = batch(16)
    RunningAverage(output_transform=lambda out: out).attach(trainer, "loss")
    trainer.run([(x, y)] * 3, max_epochs=2)
    assert isinstance(trainer.state.output, torch.Tensor) and trainer.state.output.dim() == 0
    assert not trainer.state.output.requires_grad and math.isfinite(trainer.state.metrics["loss"])


def test_cosine_schedule_per_iteration_scales_both_groups():
    model = small_net()
    optimizer = torch.optim.SGD(ghl_param_groups(model, ["0", "3"], 0.1, 0.0, 0.01), lr=0.01)
    trainer = GHLTrainer(model, None, optimizer)
    trainer.add_event_handler(Events.ITERATION_STARTED, ghl_lr_scheduler(optimizer, epochs=2, epoch_length=3))
    seen = []
    trainer.add_event_handler(Events.ITERATION_STARTED, lambda _: seen.append([g["lr"] for g in
                                                                               optimizer.param_groups]))
    trainer.run([batch(4)] * 3, max_epochs=2)
    expected = [0.5 * (1 + math.cos(math.pi * t / 6)) for t in range(6)]
    assert [a for a, _ in seen] == pytest.approx([0.1 * e for e in expected])
    assert [b for _, b in seen] == pytest.approx([0.01 * e for e in expected])
    with pytest.raises(ValueError, match="epoch_length"):
        ghl_lr_scheduler(optimizer, 2, 0)


def test_disabled_layers_do_not_move():
    model = small_net()
    optimizer = torch.optim.SGD(ghl_param_groups(model, ["0", "3"], 0.1, 0.0, 0.05), lr=0.05)
    trainer = GHLTrainer(model, None, optimizer)
    trainer.disable_learning("0")
    before = weights(model)
    trainer.run([batch()], max_epochs=1)
    after = weights(model)
    assert torch.equal(after["0.weight"], before["0.weight"])
    assert not torch.equal(after["3.weight"], before["3.weight"])


def test_mixed_precision_on_cpu_gives_float32_updates():
    model = small_net()
    optimizer = torch.optim.SGD(ghl_param_groups(model, ["0", "3"], 0.1, 0.0, 0.05), lr=0.05)
    trainer = GHLTrainer(model, None, optimizer, amp=True)
    assert trainer.amp_dtype == torch.bfloat16 and trainer.scaler is None
    trainer.run([batch()], max_epochs=1)
    updates = trainer.state.hebbian_updates
    assert all(d.dtype == torch.float32 and torch.isfinite(d).all() for d in updates.values())
    assert all(d.abs().max().item() == pytest.approx(1.0) for d in updates.values())  # |Dhat| max 1, sign +-1
    with pytest.raises(ValueError, match="amp=True"):
        GHLTrainer(small_net(), None, optimizer, amp_dtype=torch.float16)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_float16_with_grad_scaler_matches_float32_signs():
    model = small_net().cuda()
    x, y = batch(32)
    x, y = x.cuda(), y.cuda()
    names = ["0", "3"]
    grads, dhat = reference_step(model, x, y, names, {n: GHL() for n in names})
    optimizer = torch.optim.SGD(ghl_param_groups(model, names, 0.1, 0.0, 0.05), lr=0.05)
    before = weights(model)
    trainer = GHLTrainer(model, None, optimizer, device="cuda", amp=True)
    assert trainer.amp_dtype == torch.float16 and isinstance(trainer.scaler, torch.amp.GradScaler)
    trainer.run([(x, y)], max_epochs=1)
    step = weights(model)["0.weight"] - before["0.weight"]
    g = grads["0.weight"]
    # the float16 forward changes the gradient a little, so only clear signs must agree
    strong = g.abs() > 0.1 * g.abs().max()
    assert (step.sign()[strong] == -g.sign()[strong]).float().mean() > 0.9
    assert step.abs().max().item() == pytest.approx(0.1, rel=1e-3)


def test_deterministic_variant_reproduces_runs():
    def run():
        torch.manual_seed(0)
        model = create_model("deephebb", variant="ghl", in_channels=1, input_size=8, width=0.05)
        optimizer = torch.optim.SGD(ghl_param_groups(model, ["conv1", "conv2", "conv3"], 0.01, 0.05, 0.005),
                                    lr=0.005)
        trainer = create_ghl_trainer(model, model.default_rules(), optimizer, deterministic=True)
        assert isinstance(trainer, DeterministicGHLTrainer)
        data = [batch(8, seed=s) for s in range(3)]
        trainer.run(data, max_epochs=2)  # dropout draws from the seeded RNG
        return weights(model)

    first, second = run(), run()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_torchvision_resnet18_every_conv_is_hebbian_and_fc_is_backprop():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10, weights=None)
    names = select_hebbian_layers(model)
    assert len(names) == 20 and "fc" not in names and "layer2.0.downsample.0" in names
    assert len(select_hebbian_layers(model, include_downsample=False)) == 17
    assert len(select_hebbian_layers(model, include_1x1=False)) == 17
    optimizer = torch.optim.SGD(ghl_param_groups(model, names, 0.01, 0.0, 0.001), lr=0.001)
    before = weights(model)
    trainer = GHLTrainer(model, None, optimizer)
    trainer.run([batch(4, size=32, channels=3)], max_epochs=1)
    after = weights(model)
    for n in names:
        step = (after[f"{n}.weight"] - before[f"{n}.weight"]).abs().max().item()
        assert 0.005 < step <= 0.01 * (1 + 1e-5), n  # every element step is lr |Dhat| <= lr
    assert not torch.equal(after["fc.weight"], before["fc.weight"])
    assert not torch.equal(after["bn1.weight"], before["bn1.weight"])  # BN affine: backprop group


def light_vgg11() -> nn.Module:
    """torchvision's VGG11 conv trunk (8 convs) with a narrower classifier, to keep the test light."""
    with torch.device("meta"):
        model = torchvision.models.vgg11(num_classes=10, weights=None)
    model.features = model.features.to_empty(device="cpu")
    for module in model.features.modules():
        if isinstance(module, nn.Conv2d):
            module.reset_parameters()
    model.avgpool = nn.AdaptiveAvgPool2d(1)
    model.classifier = nn.Sequential(nn.Linear(512, 32), nn.ReLU(True), nn.Dropout(), nn.Linear(32, 32),
                                     nn.ReLU(True), nn.Dropout(), nn.Linear(32, 10))
    return model


def test_torchvision_vgg11_with_hidden_linear_layers():
    torch.manual_seed(0)
    model = light_vgg11()
    names = select_hebbian_layers(model, "conv+linear")
    assert names[-2:] == ["classifier.0", "classifier.3"] and len(names) == 10 and "classifier.6" not in names
    optimizer = torch.optim.SGD(ghl_param_groups(model, names, 0.01, 0.0, 0.001), lr=0.001)
    before = weights(model)
    trainer = GHLTrainer(model, None, optimizer, hebbian_layers="conv+linear")
    assert trainer.layer_names == names
    trainer.run([batch(4, size=32, channels=3)], max_epochs=1)
    after = weights(model)
    for n in names:
        step = (after[f"{n}.weight"] - before[f"{n}.weight"]).abs().max().item()
        assert 0.005 < step <= 0.01 * (1 + 1e-5), n
    assert not torch.equal(after["classifier.6.weight"], before["classifier.6.weight"])


@pytest.mark.slow
def test_torchvision_vgg11_unmodified():
    torch.manual_seed(0)
    model = torchvision.models.vgg11(num_classes=10, weights=None)
    names = select_hebbian_layers(model)
    assert len(names) == 8
    optimizer = torch.optim.SGD(ghl_param_groups(model, names, 0.01, 0.0, 0.001), lr=0.001)
    trainer = GHLTrainer(model, None, optimizer)
    trainer.run([batch(2, size=32, channels=3)], max_epochs=1)
    assert math.isfinite(trainer.state.output.item())


def test_bad_arguments_are_named():
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="final classifier '8' cannot be Hebbian"):
        GHLTrainer(model, {"*": GHL()}, optimizer)
    assert all(len(m._forward_hooks) == 0 for m in model.modules())  # the failed trainer left no hooks behind
    with pytest.raises(ValueError, match="hebbian_layers must be one of"):
        GHLTrainer(model, None, optimizer, hebbian_layers="all")
    with pytest.raises(TypeError, match="hebbian_layers must be a string or a callable"):
        select_hebbian_layers(model, 3)
    with pytest.raises(ValueError, match="optimizer does not hold"):
        GHLTrainer(model, None, torch.optim.SGD(model[-1].parameters(), lr=0.1))
    trainer = GHLTrainer(model, None, optimizer)
    with pytest.raises(ValueError, match="labelled batches"):
        trainer.run([torch.rand(4, 1, 8, 8)], max_epochs=1)
    other = small_net()
    with pytest.raises(ValueError, match="needs the backprop gradient"):
        HebbianTrainer(other, GHL(), torch.optim.SGD(other.parameters(), lr=0.1))


def test_predicate_selection_and_explicit_classifier():
    model = small_net()
    names = select_hebbian_layers(model, lambda name, m: m.out_channels == 6 if isinstance(m, nn.Conv2d) else False)
    assert names == ["3"]
    assert select_hebbian_layers(model, "conv+linear", classifier="6") == ["0", "3", "8"]


# ---------------------------------------------------------------------- a weight shared by two layers (issue 20)
def shared_net() -> nn.Sequential:
    torch.manual_seed(0)
    first, second = nn.Linear(5, 5, bias=False), nn.Linear(5, 5)
    second.weight = first.weight  # one Parameter, two modules
    return nn.Sequential(first, nn.Tanh(), second, nn.Tanh(), nn.Linear(5, 3)).double()


def soft_wta_oja_dhat(uses, w):
    """float64 reference of GHL's local term over several uses: sum_uses sum_n y_k (x - u_k w_k), y = softmax(u),
    divided by its largest absolute element."""
    delta = torch.zeros_like(w)
    for x, u in uses:
        y = torch.softmax(u, dim=1)
        delta += y.t() @ x - (y * u).sum(0)[:, None] * w
    return delta / delta.abs().max()


def test_a_shared_weight_is_one_parameter_of_one_group_and_moves_once_by_the_sum_over_its_uses():
    model = shared_net()
    names = select_hebbian_layers(model, "conv+linear")
    assert names == ["0"]  # named once, by its first module
    groups = ghl_param_groups(model, ["0", "2"], 0.1, 0.0, 0.05)  # both names given: the weight is still listed once
    listed = [id(p) for g in groups for p in g["params"]]
    assert len(listed) == len(set(listed)) == len(list(model.parameters()))
    x = torch.randn(7, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    # the reference: both uses of the weight (inputs x and tanh(first(x))) and the backprop gradient (summed over both)
    ref = copy.deepcopy(model)
    w = ref[0].weight
    h = torch.tanh(ref[0](x))
    nn.functional.cross_entropy(ref(x), y).backward()
    uses = [(x, x @ w.detach().t()), (h.detach(), h.detach() @ w.detach().t())]
    expected = -0.1 * soft_wta_oja_dhat(uses, w.detach()).abs() * w.grad.sign()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # was: "optimizer contains a parameter group with duplicate parameters"
        optimizer = torch.optim.SGD(groups, lr=0.05, momentum=0.0)
    before = model[0].weight.detach().clone()
    trainer = GHLTrainer(model, None, optimizer, hebbian_layers="conv+linear")
    assert trainer.layer_names == ["0"]
    trainer.run([(x, y)], max_epochs=1)
    step = model[0].weight.detach() - before
    torch.testing.assert_close(step, expected, rtol=1e-12, atol=1e-14)  # once, not twice
    assert step.abs().max().item() == pytest.approx(0.1, rel=1e-12)


# ---------------------------------------------------------------------- layers no Hebbian rule supports (issue 20)
class Mixed(nn.Module):
    """A conv, a transposed conv, an LSTM and a GRU before the classifier."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.up = nn.Conv2d(1, 2, 3, padding=1), nn.ConvTranspose2d(2, 2, 2, stride=2)
        self.lstm, self.gru = nn.LSTM(2, 3, batch_first=True), nn.GRU(3, 3, batch_first=True)
        self.head = nn.Linear(3, 10)

    def forward(self, x):
        h = self.up(torch.relu(self.conv(x))).flatten(2).transpose(1, 2)  # (N, 64 positions, 2 channels)
        return self.head(self.gru(self.lstm(h)[0])[0][:, -1])


@pytest.mark.parametrize("selection,expected", [("conv+linear", ["up", "lstm", "gru"]), ("conv", ["up"])])
def test_layers_no_rule_supports_are_named_in_one_warning_and_recorded(selection, expected):
    model = Mixed()
    names = select_hebbian_layers(model, selection)
    optimizer = torch.optim.SGD(ghl_param_groups(model, names, 0.1, 0.0, 0.05), lr=0.05)
    with pytest.warns(BackpropOnlyWarning) as caught:
        trainer = GHLTrainer(model, None, optimizer, hebbian_layers=selection)
    assert len(caught) == 1
    message = str(caught[0].message)
    types = {"up": "ConvTranspose2d", "lstm": "LSTM", "gru": "GRU"}
    assert ", ".join(f"'{n}' ({types[n]})" for n in expected) in message and "trainer.backprop_only" in message
    assert trainer.backprop_only == expected == backprop_only_layers(model, selection)
    x, y = batch(4, size=4)
    grads, _ = reference_step(model, x, y, [], {})
    before = weights(model)
    trainer.run([(x, y)], max_epochs=1)
    for name in ("up.weight", "lstm.weight_ih_l0", "gru.weight_hh_l0"):  # what the warning says: plain backprop
        torch.testing.assert_close(weights(model)[name] - before[name], -0.05 * grads[name], rtol=1e-4, atol=1e-7)


def test_a_rule_mapping_names_its_layers_itself_and_records_nothing():
    model = Mixed()
    optimizer = torch.optim.SGD(ghl_param_groups(model, ["conv"], 0.1, 0.0, 0.05), lr=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BackpropOnlyWarning)
        trainer = GHLTrainer(model, {"conv": GHL()}, optimizer)
    assert trainer.backprop_only == []
    with pytest.raises(TypeError, match="layer 'lstm': LSTM is not supported by Hebbian rules"):
        GHLTrainer(Mixed(), {"lstm": GHL()}, optimizer)


def test_the_last_batch_s_updates_are_not_alive_during_the_next_forward_and_backward():
    """GHL's updates are weight-sized, one per Hebbian layer: kept through the next batch's passes they would add a
    second set of gradients to the peak memory (docs/performance.md, GHL with depth). A handler's reference keeps
    its values."""
    model = small_net()
    trainer = GHLTrainer(model, GHL(), torch.optim.SGD(model.parameters(), lr=0.01))
    during, kept = [], []
    model[0].register_forward_hook(lambda m, i, o: during.append(dict(trainer.state.hebbian_updates)))
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: kept.append(e.state.hebbian_updates))
    trainer.run([batch(seed=1), batch(seed=2)], max_epochs=1)
    assert during == [{}, {}]
    assert [sorted(k) for k in kept] == [["0", "3"]] * 2 and kept[0]["0"] is not kept[1]["0"]
    assert not torch.equal(kept[0]["0"], kept[1]["0"])


class _NoSearch(list):
    """A bindings list that refuses to be searched: a step that looks its layers up by list search costs O(L^2)."""

    def index(self, *args, **kwargs):  # type: ignore[override]
        raise AssertionError("the step searched the guard's bindings list")


@pytest.mark.parametrize("kind", ["ghl", "hebbian"])
def test_a_step_finds_each_layer_s_guard_entry_without_searching(kind):
    """ResNet-1202's GHL step spent most of its time in ``guard.bindings.index(b)`` (docs/performance.md)."""
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    trainer = (GHLTrainer(model, GHL(), optimizer) if kind == "ghl"
               else HebbianTrainer(model, {"0": SoftHebb(), "3": SoftHebb()}, optimizer, supervised_from=-1))
    guard = trainer.guard
    assert [guard.index_of(b) for b in guard.bindings] == list(range(len(guard.bindings))) == [0, 1]
    guard.bindings = _NoSearch(guard.bindings)
    trainer.run([batch(seed=1), batch(seed=2)], max_epochs=1)
    assert trainer.state.iteration == 2
