"""Capture by weight: attention projections, functional uses, weights used twice, refusals by name, and every rule
and GHL training today's architectures (ViT, nn.TransformerEncoder, MobileNetV3, a Conv1d network) end to end."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from ignite.engine import Events
from torch import nn

import hebbian.rules as R
from hebbian.models import create_model
from hebbian.optim import Local
from hebbian.trainers import GHLTrainer, HebbianTrainer, LayerCapture, bind_rules
from hebbian.trainers.ghl import ghl_param_groups, select_hebbian_layers


@pytest.fixture(autouse=True)
def one_thread():
    """Many tiny kernels: one intra-op thread (a spinning second thread costs 10x on a shared, loaded machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class AttentionBlock(nn.Module):
    def __init__(self, e: int = 4) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(e, 2, batch_first=True)
        self.head = nn.Linear(e, 3)

    def forward(self, x):
        return self.head(self.attn(x, x, x, need_weights=False)[0].mean(1))


def test_attention_projections_are_candidates_and_captured_with_their_inputs():
    torch.manual_seed(0)
    model = AttentionBlock()
    bindings = bind_rules(model, R.Oja(), supervised_from="head")
    assert [b.name for b in bindings] == ["attn.in_proj", "attn.out_proj"]
    assert bindings[0].weight is model.attn.in_proj_weight and bindings[0].view.groups == 3
    capture = LayerCapture(bindings)
    x = torch.randn(2, 5, 4)
    with torch.no_grad(), capture.record({"attn.in_proj", "attn.out_proj"}) as records:
        model(x)
    [use_in] = records["attn.in_proj"]
    tokens = x.transpose(0, 1).reshape(10, 4)  # batch_first attention works sequence-first inside
    torch.testing.assert_close(use_in.x, tokens)  # the query
    drive = tokens @ model.attn.in_proj_weight.detach().t()
    if use_in.bias is None:  # PyTorch adds the bias after the product: u is the bare drive
        torch.testing.assert_close(use_in.u, drive)
    else:
        assert use_in.bias is model.attn.in_proj_bias
        torch.testing.assert_close(use_in.u, drive + use_in.bias.detach())
    # out_proj's input is the attention output before the projection: an identical block whose out_proj is the
    # identity returns exactly that
    probe = copy.deepcopy(model.attn)
    with torch.no_grad():
        probe.out_proj.weight.copy_(torch.eye(4))
        probe.out_proj.bias.zero_()
        pre = probe(x, x, x, need_weights=False)[0]
    [use_out] = records["attn.out_proj"]
    torch.testing.assert_close(use_out.x, pre.transpose(0, 1).reshape(10, 4))
    out = model.attn(x, x, x, need_weights=False)[0].detach()
    torch.testing.assert_close(use_out.u, out.transpose(0, 1).reshape(10, 4))


def test_a_weight_used_twice_gets_both_uses_summed():
    torch.manual_seed(0)
    shared = nn.Linear(3, 4, bias=False)

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.shared, self.head = shared, nn.Linear(4, 2)

        def forward(self, x):
            h = torch.tanh(self.shared(x))
            return self.head(F.linear(torch.cat([h[:, :3]], 1), self.shared.weight))  # a functional second use

    model = Twice()
    trainer = HebbianTrainer(model, {"shared": R.Hebb(normalize="sum")}, Local([shared.weight], lr=0.0))
    x = torch.randn(5, 3)
    trainer.run([(x, torch.zeros(5, dtype=torch.long))], epochs=1)
    with torch.no_grad():
        first_x = x
        first_u = shared(x)
        second_x = torch.tanh(first_u)[:, :3]
        second_u = F.linear(second_x, shared.weight)
    expected = first_u.t() @ first_x + second_u.t() @ second_x  # Hebb, summed: sum_uses y^T x
    torch.testing.assert_close(trainer.state.hebbian_updates["shared"], expected)


def test_two_modules_sharing_a_weight_bind_it_once_with_both_uses_summed():
    torch.manual_seed(0)
    first, second = nn.Linear(3, 3, bias=False), nn.Linear(3, 3)
    second.weight = first.weight
    model = nn.Sequential(first, nn.Tanh(), second, nn.Linear(3, 2))
    trainer = HebbianTrainer(model, R.Hebb(normalize="sum"), Local(model.parameters(), lr=0.0), supervised_from=-1)
    assert trainer.layer_names == ["0"]  # one binding, not one per module (the second overwrote the first's update)
    x = torch.randn(5, 3)
    trainer.run([(x, torch.zeros(5, dtype=torch.long))], epochs=1)
    with torch.no_grad():
        h = torch.tanh(first(x))
        expected = first(x).t() @ x + (h @ first.weight.t()).t() @ h  # sum over the two uses of y^T x
    assert list(trainer.state.hebbian_updates) == ["0"]
    torch.testing.assert_close(trainer.state.hebbian_updates["0"], expected)


def test_a_weight_used_through_a_slice_or_another_product_is_refused_by_name():
    torch.manual_seed(0)

    class Columns(nn.Module):  # a slice of the inputs' weights: no unit sees its whole input
        def __init__(self):
            super().__init__()
            self.fc, self.head = nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, x):
            return self.head(F.linear(x[:, :2], self.fc.weight[:, :2]))

    model = Columns()
    trainer = HebbianTrainer(model, {"fc": R.Oja()}, Local([model.fc.weight], lr=0.01))
    with pytest.raises(RuntimeError, match="the weight of 'fc' is used in a way that cannot be captured"):
        trainer.run([(torch.randn(2, 4), torch.zeros(2, dtype=torch.long))], epochs=1)

    class HalfGroup(nn.Module):  # rows that split a competition group of the packed q/k/v projection
        def __init__(self):
            super().__init__()
            self.attn, self.head = nn.MultiheadAttention(4, 2), nn.Linear(2, 2)

        def forward(self, x):
            return self.head(F.linear(x, self.attn.in_proj_weight[:2]))

    model = HalfGroup()
    trainer = HebbianTrainer(model, {"attn.in_proj": R.Oja()}, Local([model.attn.in_proj_weight], lr=0.01))
    with pytest.raises(RuntimeError, match="rows 0..1, which are not whole competition groups of 4 units"):
        trainer.run([(torch.randn(2, 4), torch.zeros(2, dtype=torch.long))], epochs=1)

    class MatMul(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.head = nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, x):
            return self.head(x @ self.fc.weight)  # not x @ W.T: no layer map a rule could train

    model = MatMul()
    trainer = HebbianTrainer(model, {"fc": R.Oja()}, Local([model.fc.weight], lr=0.01))
    with pytest.raises(RuntimeError, match="the weight of 'fc' is used in a way that cannot be captured"):
        trainer.run([(torch.randn(2, 4), torch.zeros(2, dtype=torch.long))], epochs=1)


class CrossAttention(nn.Module):
    """Cross-attention: the query from one sequence, key and value from another (the same tensor, or two)."""

    def __init__(self, separate_value: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.attn, self.head = nn.MultiheadAttention(4, 2, batch_first=True), nn.Linear(4, 3)
        self.separate_value = separate_value

    def forward(self, x):
        query, memory = x[:, :3], x[:, 3:] * 2.0  # 3 query tokens, 4 memory tokens
        value = memory + 1.0 if self.separate_value else memory  # k is v: PyTorch splits the weight [E, 2E]
        return self.head(self.attn(query, memory, value, need_weights=False)[0].mean(1))


def soft_oja_block(x, w, groups):
    """float64 reference: sum_n y_k (x - u_k w_k), y = softmax(u) within each group of units, u = x w^T."""
    u = x @ w.t()
    y = torch.cat([torch.softmax(part, dim=1) for part in u.chunk(groups, dim=1)], dim=1)
    return y.t() @ x - (y * u).sum(0)[:, None] * w


@pytest.mark.parametrize("separate_value", [False, True])
@pytest.mark.parametrize("normalize", ["max_abs", "mean"])
def test_cross_attention_trains_q_k_v_each_on_its_own_input(separate_value, normalize):
    model = CrossAttention(separate_value).double()
    trainer = HebbianTrainer(model, {"attn.in_proj": R.create("competitive_oja", normalize=normalize)},
                             Local([model.attn.in_proj_weight], lr=0.0))
    x = torch.randn(2, 7, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    trainer.run([(x, torch.zeros(2, dtype=torch.long))], epochs=1)
    w = model.attn.in_proj_weight.detach()
    query, memory = x[:, :3].reshape(-1, 4), x[:, 3:].reshape(-1, 4) * 2.0
    value = memory + 1.0 if separate_value else memory
    parts = [soft_oja_block(query, w[:4], 1), soft_oja_block(memory, w[4:8], 1), soft_oja_block(value, w[8:], 1)]
    delta = torch.cat(parts)  # each projection its own competition group over its own input
    if normalize == "max_abs":
        expected = delta / delta.abs().max()
    else:  # per sample: each block counts its samples by its share of the units (1/3 each)
        expected = delta / (6 / 3 + 8 / 3 + 8 / 3)
    torch.testing.assert_close(trainer.state.hebbian_updates["attn.in_proj"], expected, rtol=1e-12, atol=1e-14)


def test_ghl_trains_an_encoder_decoder_transformer():
    torch.manual_seed(0)

    class Seq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(3, 8)
            self.transformer = nn.Transformer(8, 2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16,
                                              dropout=0.0, batch_first=True)
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            h = self.embed(x)
            return self.head(self.transformer(h, h[:, :3]).mean(1))

    model = Seq2Seq()
    cross = "transformer.decoder.layers.0.multihead_attn.in_proj"
    names = select_hebbian_layers(model, "conv+linear")
    assert cross in names
    optimizer = torch.optim.SGD(ghl_param_groups(model, names, 0.02, 0.0, 0.05), lr=0.05)
    trainer = GHLTrainer(model, None, optimizer, hebbian_layers="conv+linear")
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 5, 3, generator=g), torch.randint(0, 3, (8,), generator=g)
    reference = copy.deepcopy(model)
    nn.functional.cross_entropy(reference(x), y).backward()
    grad = dict(reference.named_parameters())["transformer.decoder.layers.0.multihead_attn.in_proj_weight"].grad
    losses = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(float(e.state.output)))
    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=1), lambda e: first.update(e.state.hebbian_updates))
    first: dict = {}
    trainer.run([(x, y)] * 8, epochs=1)
    assert set(first) == set(names) and max(losses[-2:]) < losses[0]
    delta = first[cross]  # GHL: |local| with the sign of -dL/dW, at most 1, every projection learning
    torch.testing.assert_close(delta, -delta.abs() * grad.sign())
    assert delta.abs().max() == pytest.approx(1.0) and all(part.abs().max() > 0 for part in delta.chunk(3))


def test_unsupported_layers_are_refused_by_name_never_skipped():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ConvTranspose2d(4, 2, 3), nn.Flatten(), nn.Linear(2 * 8 * 8, 2))
    with pytest.raises(TypeError, match="layer '1': ConvTranspose2d is not supported by Hebbian rules"):
        bind_rules(model, R.Oja(), supervised_from=-1)
    assert [b.name for b in bind_rules(model, R.Oja(), supervised_from=-1, freeze=["1"])] == ["0"]
    assert [b.name for b in bind_rules(model, {"0": R.Oja()})] == ["0"]
    with pytest.raises(TypeError, match="layer '1': ConvTranspose2d is not supported"):
        bind_rules(model, {nn.Module: R.Oja()})


def test_stop_early_waits_for_every_use_of_a_weight():
    torch.manual_seed(0)
    layer = nn.Linear(3, 3)
    model = nn.Sequential(layer, nn.Tanh(), layer, nn.Linear(3, 2))  # the same layer twice
    bindings = bind_rules(model, R.Oja(), supervised_from=-1)
    assert [b.name for b in bindings] == ["0"]  # one weight (named once)
    capture = LayerCapture(bindings)
    x = torch.randn(4, 3)
    for _ in range(2):  # the first pass counts the uses, the second may stop early after both
        with torch.no_grad(), capture.record({"0"}, stop_early=True) as records:
            model(x)
        assert len(records["0"]) == 2


# ------------------------------------------------------------------------------------------- end to end, tiny sizes
ARCHITECTURES = {
    "vit": dict(input_size=8, patch_size=4, num_layers=1, num_heads=2, hidden_dim=8, mlp_dim=16),
    "transformer_rows": dict(input_size=8, d_model=8, nhead=2, num_layers=1, dim_feedforward=16),
    "mobilenetv3": dict(input_size=16, width=0.25),
    "conv1d_rows": dict(input_size=8, channels=8, groups=2),
}


def _model(name: str) -> nn.Module:
    torch.manual_seed(0)
    return create_model(name, in_channels=1, num_classes=3, **ARCHITECTURES[name])


def _data(name: str, n: int = 16):
    g = torch.Generator().manual_seed(1)
    size = ARCHITECTURES[name]["input_size"]
    x = torch.randn(n, 1, size, size, generator=g)
    return x, torch.randint(0, 3, (n,), generator=g)


def _not_depthwise(name: str, module: nn.Module) -> bool:
    return not (isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.out_channels)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("rule", ["softhebb", "krotov", "oja"])
def test_rules_train_modern_architectures(arch, rule):
    model = _model(arch)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    # Krotov's rank-2 unlearning needs two competing units: depthwise convs (one unit per group) are refused
    spec = {_not_depthwise: rule} if rule == "krotov" else {(lambda n, m: True): rule}
    trainer = HebbianTrainer(model, spec, Local(model.parameters(), lr=0.01), supervised_from=-1)
    names = trainer.layer_names
    if arch in ("vit", "transformer_rows"):
        assert any(n.endswith("in_proj") for n in names) and any(n.endswith("out_proj") for n in names)
    if arch == "mobilenetv3":
        assert any(b.view.groups > 1 for b in trainer.bindings) == (rule != "krotov")
    x, y = _data(arch)
    trainer.run([(x[:8], y[:8]), (x[8:], y[8:])], epochs=1)
    for b in trainer.bindings:
        assert torch.isfinite(b.weight).all()
        assert not torch.equal(b.weight, before[_param_name(model, b.weight)]), b.name
    if rule == "krotov" and arch == "mobilenetv3":
        with pytest.raises(ValueError, match="k=2 needs at least k competing units, got 1"):
            HebbianTrainer(_model(arch), "krotov", Local(model.parameters(), lr=0.01))


def _param_name(model: nn.Module, weight: torch.Tensor) -> str:
    return next(n for n, p in model.named_parameters() if p is weight)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_ghl_trains_modern_architectures(arch):
    model = _model(arch)
    names = select_hebbian_layers(model, "conv+linear")
    optimizer = torch.optim.SGD(ghl_param_groups(model, names, 0.02, 0.0, 0.05), lr=0.05, momentum=0.9)
    trainer = GHLTrainer(model, None, optimizer, hebbian_layers="conv+linear")
    assert trainer.layer_names == names and "1" not in names  # the readout is trained by backprop
    x, y = _data(arch)
    losses = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(float(e.state.output)))
    trainer.run([(x, y)] * 8, epochs=1)
    assert max(losses[-2:]) < losses[0]  # the network learns the batch (train-mode loss of the step itself)
    for b in trainer.bindings:
        assert torch.isfinite(b.weight).all()
    updates = trainer.state.hebbian_updates
    assert set(updates) == set(names)
    for name, delta in updates.items():  # |dW| <= 1 and the direction is -sign(dL/dW) (GHL), never a silent zero
        assert delta.abs().max() <= 1.0 + 1e-6 and delta.abs().max() > 0, name


@pytest.mark.parametrize("name,hp", [("competitive_oja", {}), ("competitive_oja", {"competition": "hard"}),
                                     ("ghl", {"mode": "local_only"}), ("softhebb", {})])
@pytest.mark.parametrize("kind", ["linear", "conv", "grouped"])
def test_drive_identity_matches_the_direct_sum(name, hp, kind):
    """sum_{n,p} y_k u_k taken as <w_k, C_k> (captured uses, u = W x exactly) equals the direct sum (float64)."""
    torch.manual_seed(0)
    layer = {"linear": lambda: nn.Linear(5, 4, bias=True), "conv": lambda: nn.Conv2d(2, 4, 3, padding=1),
             "grouped": lambda: nn.Conv2d(4, 4, 3, groups=2, padding_mode="reflect", padding=1)}[kind]().double()
    x = torch.randn((6, 5) if kind == "linear" else (2, layer.in_channels, 5, 5), dtype=torch.float64)
    with torch.no_grad():
        u = layer(x)
    from hebbian.models.discovery import candidate_weights

    [site] = candidate_weights(nn.Sequential(layer))
    exact = site.view()
    assert exact.exact_drive
    direct = R.create(name, **hp).update(layer, x, u)  # the public update: the direct sum
    via_identity = R.create(name, **hp).update(exact, x, u)
    torch.testing.assert_close(via_identity, direct, rtol=1e-12, atol=1e-12)


def test_a_custom_forward_is_not_taken_as_the_exact_drive():
    from hebbian.models import PMetricLinear
    from hebbian.models.discovery import candidate_weights

    model = nn.Sequential(PMetricLinear(4, 3, p=3.0), nn.Linear(3, 2), nn.Linear(2, 2))
    views = {s.name: s.view() for s in candidate_weights(model)}
    assert not views["0"].exact_drive and views["1"].exact_drive
