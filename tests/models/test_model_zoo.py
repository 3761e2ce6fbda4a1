"""hebbian.models: the registry, the published architectures, width scaling, tiny inputs, recipes."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hebbian.models import (
    HebbianNet,
    PMetricLinear,
    RePU,
    Triangle,
    create_model,
    get_model_info,
    list_models,
)
from hebbian.rules import GHL, Krotov, LayerView, SoftHebb
from hebbian.rules.krotov import p_current
from hebbian.trainers import HebbianTrainer

pytestmark = pytest.mark.usefixtures("single_thread")

NAMES = ["deephebb", "fasthebb", "foldiak_fc", "hebbian_conv", "krotov_fc"]
#: today's architectures, for GHL and every rule beyond convnets (tests/trainers/test_capture_by_weight.py)
MODERN = ["conv1d_rows", "mobilenetv3", "resnet18", "resnet_cifar", "transformer_rows", "vit"]


def test_registry_lists_the_published_networks():
    assert list_models() == sorted(NAMES + MODERN)
    assert list_models("*hebb") == ["deephebb", "fasthebb"]
    assert get_model_info("DeepHebb").name == "deephebb"
    with pytest.raises(KeyError, match="unknown model 'resnet'.*deephebb"):
        create_model("resnet")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("channels,size", [(1, 8), (1, 28), (3, 32)])
def test_every_network_runs_at_reduced_width_on_small_and_large_inputs(name, channels, size):
    net = create_model(name, in_channels=channels, input_size=size, num_classes=7, width=0.05)
    assert isinstance(net, nn.Sequential) and isinstance(net[-1], nn.Linear)
    assert net[-1].out_features == 7
    out = net(torch.rand(3, channels, size, size))
    assert out.shape == (3, 7) and torch.isfinite(out).all()
    features = net[:-1](torch.rand(2, channels, size, size))  # the frozen part feeds the readout
    assert features.shape == (2, net[-1].in_features)


def test_deephebb_softhebb_architecture_as_published():
    net = create_model("deephebb", in_channels=3, input_size=32)
    convs = [net.conv1, net.conv2, net.conv3]
    assert [c.out_channels for c in convs] == [96, 384, 1536]
    assert [c.kernel_size for c in convs] == [(5, 5), (3, 3), (3, 3)]
    assert [c.padding for c in convs] == [(2, 2), (1, 1), (1, 1)]
    assert all(c.bias is None and c.padding_mode == "reflect" for c in convs)
    assert all(not getattr(net, f"bn{i}").affine for i in (1, 2, 3))
    assert [getattr(net, f"act{i}").power for i in (1, 2, 3)] == [0.7, 1.4, 1.0]
    assert isinstance(net.pool1, nn.MaxPool2d) and net.pool1.kernel_size == 4 and net.pool1.stride == 2
    assert isinstance(net.pool3, nn.AvgPool2d) and net.pool3.kernel_size == 2
    assert net.dropout.p == 0.5 and net.classifier.in_features == 24576
    # SoftHebb's radius-25 init: every kernel has norm ~ 25
    norms = net.conv2.weight.flatten(1).norm(dim=1)
    assert (norms - 25).abs().max() < 3


def test_deephebb_ghl_variant_relu_zero_padding_kaiming():
    net = create_model("deephebb", in_channels=3, input_size=32, variant="ghl")
    assert all(isinstance(getattr(net, f"act{i}"), nn.ReLU) for i in (1, 2, 3))
    assert all(getattr(net, f"conv{i}").padding_mode == "zeros" for i in (1, 2, 3))
    norms = net.conv3.weight.flatten(1).norm(dim=1)  # Kaiming fan_in: E||w||^2 = 2
    assert abs(norms.pow(2).mean().item() - 2.0) < 0.1
    with pytest.raises(ValueError, match="variant must be one of"):
        create_model("deephebb", variant="relu")


def test_fasthebb_architecture_as_in_ghl():
    net = create_model("fasthebb", in_channels=3, input_size=32)
    assert [getattr(net, f"conv{i}").out_channels for i in range(1, 5)] == [96, 128, 192, 256]
    assert net.fc5.in_features == 2304 and net.fc5.out_features == 4096
    assert isinstance(net.bn5, nn.BatchNorm1d) and net.bn5.affine
    assert not net.bn1.affine and net.dropout5.p == 0.5 and net.fc6.in_features == 4096
    names = [n for n, _ in net.named_children()]
    assert names.index("pool1") < names.index("bn1") and "pool2" not in names


def test_krotov_networks_as_in_pytorch_hebbian():
    fc = create_model("krotov_fc")
    assert [n for n, _ in fc.named_children()] == ["flatten", "linear1", "repu", "linear2"]
    assert fc.linear1.in_features == 784 and fc.linear1.out_features == 2000 and fc.linear1.bias is None
    assert abs(fc.linear1.weight.std().item() - 1.0) < 0.01  # N(0, 1) init
    conv = create_model("hebbian_conv")
    assert conv.conv1.out_channels == 400 and conv.conv1.kernel_size == (5, 5) and conv.conv1.bias is None
    assert isinstance(conv.bn1, nn.BatchNorm2d) and conv.repu1.n == 1.0
    assert conv.linear1.in_features == 400 * 12 * 12


def test_width_multiplier_scales_counts_with_a_minimum_of_one():
    net = create_model("deephebb", in_channels=3, input_size=32, width=0.5)
    assert [getattr(net, f"conv{i}").out_channels for i in (1, 2, 3)] == [48, 192, 768]
    tiny = create_model("fasthebb", width=1e-6, input_size=28)
    assert all(getattr(tiny, f"conv{i}").out_channels == 1 for i in range(1, 5)) and tiny.fc5.out_features == 1
    for bad in (0, -1.0, "1", True):
        with pytest.raises(ValueError, match="width"):
            create_model("krotov_fc", width=bad)
    with pytest.raises(ValueError, match="input_size"):
        create_model("deephebb", input_size=(8,))
    with pytest.raises(ValueError, match="in_channels"):
        create_model("hebbian_conv", in_channels=0)
    with pytest.raises(ValueError, match="num_classes"):
        create_model("fasthebb", num_classes=0)


def test_tiny_inputs_shrink_kernels_and_skip_pools():
    net = create_model("fasthebb", input_size=8, width=0.1)  # 8 -> conv5 4 -> pool 2 -> conv2 shrinks to 2x2
    assert net.conv2.kernel_size == (2, 2) and net.conv3.kernel_size == (1, 1)
    assert isinstance(net.pool3, nn.Identity)
    assert create_model("deephebb", input_size=8, width=0.1).conv1.padding_mode == "reflect"
    deep = create_model("deephebb", input_size=2, width=0.1)  # reflect pad 2 on a 2x2 map falls back to zeros
    assert deep.conv1.padding_mode == "zeros" and deep.conv2.padding_mode == "zeros"
    assert isinstance(deep.pool2, nn.Identity) and isinstance(deep.pool3, nn.Identity)
    assert deep(torch.rand(2, 1, 2, 2)).shape == (2, 10)


def test_activations():
    u = torch.tensor([[-1.0, 0.5, 2.0]])
    assert torch.equal(RePU(1)(u), torch.tensor([[0.0, 0.5, 2.0]]))
    assert torch.allclose(RePU(3)(u), torch.tensor([[0.0, 0.125, 8.0]]))
    x = torch.randn(2, 5, 3, 3, requires_grad=True)
    out = Triangle(2.0)(x)
    mean = x.detach().mean(dim=1, keepdim=True)
    assert torch.allclose(out, (x.detach() - mean).clamp_min(0).pow(2))
    out.sum().backward()  # the channel mean is a constant for autograd
    assert torch.allclose(x.grad, 2 * (x.detach() - mean).clamp_min(0))
    with pytest.raises(ValueError, match="power"):
        Triangle(0)


def test_p_metric_readout_current():
    layer = PMetricLinear(6, 4, bias=False, p=3.0)
    x = torch.randn(5, 6)
    w = layer.weight.detach()
    assert torch.allclose(layer(x), x @ (w.sign() * w.abs() ** 2).t(), atol=1e-6)
    plain = PMetricLinear(6, 4, p=2.0)
    assert torch.allclose(plain(x), x @ plain.weight.t() + plain.bias)
    net = create_model("krotov_fc", input_size=8, width=0.01, readout_current="p")
    assert isinstance(net.linear1, PMetricLinear) and net.linear1.p == 3.0
    dot = create_model("krotov_fc", input_size=8, width=0.01)
    assert type(dot.linear1) is nn.Linear
    with pytest.raises(ValueError, match="readout_current"):
        create_model("krotov_fc", readout_current="cosine")
    with pytest.raises(ValueError, match="p must be"):
        PMetricLinear(3, 2, p=0.5)


def test_p_metric_layer_matches_the_krotov_rule_current():
    layer = PMetricLinear(6, 4, bias=False, p=3.0).double()
    x = torch.rand(5, 6, dtype=torch.float64)
    w = layer.weight.detach()
    expected = x @ (torch.sign(w) * w.abs() ** 2).t()  # float64 reference: sum_i sign(w)|w|^2 x_i
    assert torch.allclose(layer(x), expected, atol=1e-12)
    with torch.no_grad():  # cached p-metric weights: same values, refreshed after an in-place weight change
        assert torch.allclose(layer(x), expected, atol=1e-12)
        layer.weight.mul_(-0.5)
        assert torch.allclose(layer(x), -0.25 * expected, atol=1e-12)
    # the rule reuses the layer's output as the current (same p), and computes it for a plain layer
    u = layer(x).detach()
    assert p_current(LayerView(layer), x, u, 3.0) is u
    plain = nn.Linear(6, 4, bias=False).double()
    with torch.no_grad():
        plain.weight.copy_(layer.weight)
    assert torch.allclose(p_current(LayerView(plain), x, x @ plain.weight.t(), 3.0), u, atol=1e-12)


def test_recipes_give_the_published_rules_and_rates():
    soft = create_model("deephebb", in_channels=3, input_size=32, width=0.1)
    rules = soft.default_rules()
    assert list(rules) == ["conv1", "conv2", "conv3"]
    assert all(isinstance(r, SoftHebb) for r in rules.values())
    assert [r.t_inv for r in rules.values()] == [1.0, 0.65, 0.25]
    groups = soft.param_groups()
    assert [g["lr"] for g in groups] == [0.08, 0.005, 0.01]
    assert groups[1]["params"][0] is soft.conv2.weight
    ghl = create_model("deephebb", variant="ghl", width=0.1)
    assert ghl.default_recipe == "ghl"
    assert [r.t_inv for r in ghl.default_rules().values()] == [1.0, 0.65, 0.25]
    assert all(isinstance(r, GHL) for r in ghl.default_rules().values())
    recipe = ghl.recipe()
    assert (recipe.settings["lr_conv"], recipe.settings["wd_conv"], recipe.settings["lr"]) == (1e-2, 5e-2, 5e-3)
    fast = create_model("fasthebb", width=0.1).recipe()
    assert (fast.settings["lr_conv"], fast.settings["wd_conv"], fast.settings["lr"]) == (5e-2, 1e-2, 1e-4)
    assert set(fast.layers) == {"conv1", "conv2", "conv3", "conv4"}
    assert "fc5" in get_model_info("fasthebb").recipe("hpca").layers
    krotov = create_model("krotov_fc", width=0.01).default_rules()["linear1"]
    assert isinstance(krotov, Krotov) and (krotov.p, krotov.k, krotov.delta) == (3.0, 7, 0.4)
    with pytest.raises(KeyError, match="no recipe 'bp'"):
        soft.recipe("bp")
    with pytest.raises(ValueError, match="no registry metadata"):
        soft[:-1].default_rules()


def test_slicing_keeps_a_plain_sequential_and_the_readout_property():
    net = create_model("hebbian_conv", input_size=8, width=0.05)
    assert isinstance(net[:-1], HebbianNet) and net[:-1].info is None
    assert net.readout is net[-1] is net.linear1


def test_softhebb_recipe_trains_deephebb_with_the_hebbian_trainer():
    torch.manual_seed(0)
    net = create_model("deephebb", in_channels=1, input_size=8, width=0.05)
    before = [getattr(net, f"conv{i}").weight.detach().clone() for i in (1, 2, 3)]
    optimizer = torch.optim.SGD(net.param_groups(), lr=0.0)
    trainer = HebbianTrainer(net, net.default_rules(), optimizer)
    trainer.run([(torch.rand(10, 1, 8, 8), torch.zeros(10, dtype=torch.long))], max_epochs=1)
    for i, w0 in enumerate(before, 1):
        step = (getattr(net, f"conv{i}").weight.detach() - w0).abs().max().item()
        rate = optimizer.param_groups[i - 1]["lr"]
        norm = w0.flatten(1).norm(dim=1)
        # SoftHebb: largest element step = eta0 * (|norm - 1|)^0.5 of the neuron holding the max of D
        assert 0 < step <= rate * ((norm - 1).abs().max().item() + 1e-10) ** 0.5 + 1e-6
    assert math.isfinite(step)


@pytest.mark.parametrize("name,options", [
    ("vit", {"patch_size": 4}), ("transformer_rows", {}), ("resnet18", {}), ("mobilenetv3", {}), ("conv1d_rows", {}),
    ("resnet_cifar", {}),
])
@pytest.mark.parametrize("channels,size", [(1, 8), (3, 16)])
def test_modern_networks_are_body_plus_readout(name, options, channels, size):
    net = create_model(name, in_channels=channels, input_size=size, num_classes=7, width=0.25, **options)
    assert isinstance(net.readout, nn.Linear) and net.readout.out_features == 7 and len(net) == 2
    assert net(torch.randn(2, channels, size, size)).shape == (2, 7)
    assert net.info.name == name and net.default_rules() == {}  # Hebbian weights found by discovery, not declared


def test_vit_refuses_a_size_its_patches_do_not_tile():
    with pytest.raises(ValueError, match="input_size must be square and a multiple of patch_size=7"):
        create_model("vit", input_size=8)


@pytest.mark.parametrize("depth,millions", [(20, "0.27"), (32, "0.46"), (44, "0.66"), (56, "0.85"), (110, "1.7"),
                                            (1202, "19.4")])
def test_resnet_cifar_has_he_et_al_s_parameter_counts(depth, millions):
    """He et al. 2016, Table 6 (CIFAR-10): ResNet-20 0.27M ... ResNet-1202 19.4M parameters; 6n + 1 convs, all 3x3."""
    net = create_model("resnet_cifar", depth=depth, in_channels=3, input_size=32)
    params = sum(p.numel() for p in net.parameters())
    decimals = len(millions.split(".")[1])  # the paper's precision
    assert f"{params / 1e6:.{decimals}f}" == millions, params
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == depth - 1 and all(c.kernel_size == (3, 3) for c in convs)


def test_resnet_cifar_stages_and_identity_shortcuts():
    net = create_model("resnet_cifar", depth=20, in_channels=3, input_size=32)
    stages = [m for m in net[0] if isinstance(m, nn.Sequential)]
    x = torch.randn(2, 16, 32, 32)
    shapes = []
    for stage in stages:
        x = stage(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]
    block = stages[1][0]  # 16 -> 32 channels, stride 2: the input subsampled, 8 zero channels on each side
    z = torch.randn(1, 16, 8, 8)
    expected = torch.cat([torch.zeros(1, 8, 4, 4), z[:, :, ::2, ::2], torch.zeros(1, 8, 4, 4)], dim=1)
    torch.testing.assert_close(block.shortcut(z), expected)
    for bad in (21, 2, 0, 20.0, True):
        with pytest.raises(ValueError, match="depth must be 6 n \\+ 2"):
            create_model("resnet_cifar", depth=bad)
