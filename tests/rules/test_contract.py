"""The contract every registered rule must honour (a kornia-style suite parametrised over ``list_rules()``).

A rule added to the registry is picked up automatically: smoke, shapes, dtypes and devices, reducibility of the
statistics across workers, state_dict round trips, metadata, repr, and clear errors for bad input.
"""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
from torch import nn

import hebbian.rules as R
from hebbian.models import FoldiakLayer
from hebbian.optim import Local, write_update

RULES = R.list_rules()
M = 5  # output units / channels: enough for every rule's k

#: Rules that train a layer of their own (fully connected): how to build it (bias-free; the rule learns its buffers).
OWN_LAYERS = {"foldiak": lambda: FoldiakLayer(6, M, output="rate")}


def make_layer(kind: str, dtype=torch.float64, device="cpu", bias: bool = True, seed: int = 0,
               rule: str = "") -> nn.Module:
    """The layer of the contract cases: ``nn.Linear(6, M)`` or ``nn.Conv2d(2, M, 3)``, or the layer ``rule`` trains.
    A conv case of a rule without conv support is skipped, with the reason."""
    if rule and kind == "conv" and not R.get_rule_info(rule).supports_conv:
        pytest.skip(f"{rule!r} trains fully connected layers only (supports_conv=False): its lateral weights couple "
                    "the units of one sample, and it has no conv form")
    torch.manual_seed(seed)
    if rule in OWN_LAYERS:
        layer = OWN_LAYERS[rule]()
    else:
        layer = nn.Linear(6, M, bias=bias) if kind == "linear" else nn.Conv2d(2, M, 3, padding=1, bias=bias)
    return layer.to(device=device, dtype=dtype)


def generic_kind(name: str) -> str:
    """The layer kind of the cases that need any layer: conv where the rule supports it, else linear."""
    return "conv" if R.get_rule_info(name).supports_conv else "linear"


def make_batch(layer: nn.Module, n: int = 6, seed: int = 1):
    """Input, output, labels and a global gradient for ``layer`` (on its device and dtype)."""
    w = layer.weight
    g = torch.Generator().manual_seed(seed)
    shape = (n, layer.in_features) if isinstance(layer, nn.Linear) else (n, layer.in_channels, 5, 5)
    x = torch.randn(shape, generator=g, dtype=torch.float64).to(device=w.device, dtype=w.dtype)
    with torch.no_grad():
        u = layer(x)
    labels = torch.randint(0, M, (n,), generator=g).to(w.device)
    grad = torch.randn(w.shape, generator=g, dtype=torch.float64).to(device=w.device, dtype=w.dtype)
    return x, u, labels, grad


def extras(name: str, labels, grad) -> dict:
    info = R.get_rule_info(name)
    return {"labels": labels if info.needs_labels else None, "grad": grad if info.needs_global_grad else None}


def run(name: str, layer: nn.Module, rule=None, **batch_kwargs):
    rule = rule or R.create(name)
    x, u, labels, grad = make_batch(layer, **batch_kwargs)
    return rule.update(layer, x, u, **extras(name, labels, grad))


#: Non-default hyperparameters of every rule (for round trips); a new rule gets {} until added here.
NON_DEFAULT = {
    "hebb": {"normalize": "sum"},
    "oja": {"normalize": "max_abs"},
    "oja_subspace": {"normalize": "sum"},
    "sanger": {"activation": "relu", "normalize": "max_abs"},
    "competitive_oja": {"competition": "hard", "t_inv": 0.3, "normalize": "sum"},
    "instar": {"competition": "soft", "t_inv": 2.5, "normalize": "max_abs"},
    "supervised_instar": {"normalize": "sum"},
    "krotov": {"p": 3.0, "k": 4, "delta": 0.25, "prec": 1e-20},
    "softhebb": {"t_inv": 0.65, "q": 0.75, "p": 3.0},
    "swta": {"competition": "poly", "temperature": 0.1, "power": 7.0, "k": 2},
    "hpca": {"fan_in_scaling": False, "activation": "identity"},
    "ghl": {"t_inv": 0.25, "mode": "sign_only"},
    "reward_modulated": {"reward": "correct", "baseline": "global", "baseline_decay": 0.5, "exploration": 0.1,
                         "post": "noise", "activation": "tanh", "trace_decay": 0.5},
    "random_feedback": {"activation": "tanh", "seed": 3},
    "bcm": {"tau": 3.0, "activation": "identity", "normalize": "sum"},
    "foldiak": {"alpha": 0.3, "gamma": 0.05, "p": 0.2},
}


# ------------------------------------------------------------------------------------------------ smoke, shape, dtype
def test_registry_lists_every_rule_once():
    assert RULES == sorted(set(RULES)) and len(RULES) >= 12
    assert set(NON_DEFAULT) == set(RULES), "add the new rule's non-default hyperparameters to NON_DEFAULT"
    for name in RULES:
        info = R.get_rule_info(name)
        assert info.name == name and R.create(name).info is info
        for alias in info.aliases:
            assert R.get_rule_info(alias) is info
        assert R.get_rule_info(name.upper().replace("_", "-")) is info  # case- and dash-insensitive


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kind", ["linear", "conv"])
@pytest.mark.parametrize("name", RULES)
def test_update_shape_dtype_device(name, kind, dtype, device):
    layer = make_layer(kind, dtype, device, rule=name)
    weight_before = layer.weight.detach().clone()
    x, u, labels, grad = make_batch(layer)
    x_before = x.clone()
    delta = R.create(name).update(layer, x, u, **extras(name, labels, grad))
    assert delta.shape == layer.weight.shape
    assert delta.dtype == dtype and delta.device == layer.weight.device
    assert not delta.requires_grad
    assert bool(torch.isfinite(delta).all()) and bool((delta != 0).any())
    assert torch.equal(layer.weight.detach(), weight_before) and torch.equal(x, x_before)  # a pure function


@pytest.mark.parametrize("name", RULES)
def test_update_is_outside_autograd_and_casts_inputs(name):
    """u straight from the forward pass (requiring grad) is fine and its graph survives; x, u and grad in another
    floating dtype are cast: the result always has the weight's dtype."""
    layer = make_layer(generic_kind(name), torch.float64, rule=name)
    x, _, labels, grad = make_batch(layer)
    u = layer(x)
    assert u.requires_grad
    kw = extras(name, labels, grad)
    delta = R.create(name).update(layer, x, u, **kw)
    assert not delta.requires_grad
    u.sum().backward()  # the update did not touch the graph
    layer32 = make_layer(generic_kind(name), torch.float32, rule=name)
    x32, u32, labels, grad32 = make_batch(layer32)
    plain = R.create(name).update(layer32, x32, u32, **extras(name, labels, grad32))
    mixed = R.create(name).update(layer32, x32.double(), u32.double(), **extras(name, labels, grad32.double()))
    assert mixed.dtype == torch.float32
    assert torch.allclose(mixed, plain, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", RULES)
def test_update_applies_through_optimizers(name, device):
    layer = make_layer(generic_kind(name), torch.float32, device, rule=name)
    delta = run(name, layer)
    before = layer.weight.detach().clone()
    write_update(layer.weight, delta)
    Local(layer.parameters(), lr=0.1).step()
    assert torch.allclose(layer.weight.detach(), before + 0.1 * delta, atol=1e-6)


@pytest.mark.parametrize("name", RULES)
def test_input_layouts(name):
    """Linear takes (N, *, D) inputs (leading dims flattened) and unbatched (D,); Conv2d takes unbatched (C, H, W)."""
    if R.get_rule_info(name).needs_labels:
        layer = make_layer("linear")
        x, u, labels, _ = make_batch(layer)
        with pytest.raises(ValueError, match=r"supervised_instar|\bx\b"):
            R.create(name).update(layer, x.view(2, 3, -1), u.view(2, 3, -1), labels=labels[:2])
        return
    lin = make_layer("linear", rule=name)
    x, u, _, grad = make_batch(lin)
    rule = R.create  # a fresh rule per update: a stateful rule's (BCM's) update depends on the batches before
    flat = rule(name).update(lin, x, u, grad=grad)
    assert torch.allclose(rule(name).update(lin, x.view(2, 3, -1), u.view(2, 3, -1), grad=grad), flat, rtol=1e-12,
                          atol=1e-14)
    assert rule(name).update(lin, x[0], u[0], grad=grad).shape == lin.weight.shape
    conv = make_layer("conv", rule=name)
    x, u, _, grad = make_batch(conv, n=1)
    assert torch.allclose(rule(name).update(conv, x[0], u[0], grad=grad), rule(name).update(conv, x, u, grad=grad),
                          rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------------------------------------ reducibility
@pytest.mark.parametrize("kind", ["linear", "conv"])
@pytest.mark.parametrize("name", RULES)
def test_statistics_are_reducible(name, kind, device):
    """finalize(stats(A) + stats(B)) == update(A u B): what data-parallel training relies on."""
    layer = make_layer(kind, torch.float64, device, rule=name)
    x, u, labels, grad = make_batch(layer, n=8)
    rule = R.create(name)
    whole = rule.clone().update(layer, x, u, **extras(name, labels, grad))  # from the same state as the halves

    view = rule.check_layer(layer)
    stats = []
    for part in (slice(0, 3), slice(3, 8)):
        xp, up = view.prepare(x[part], u[part])
        stats.append(rule.statistics(view, xp, up, labels[part] if R.get_rule_info(name).needs_labels else None))
    assert stats[0].keys() == stats[1].keys()
    summed = {k: stats[0][k] + stats[1][k] for k in stats[0]}
    xp, up = view.prepare(x, u)
    full = rule.statistics(view, xp, up, labels if R.get_rule_info(name).needs_labels else None)
    for k in full:
        assert torch.allclose(summed[k], full[k], rtol=1e-12, atol=1e-12), k
    reduced = rule.finalize(view, summed, grad if R.get_rule_info(name).needs_global_grad else None)
    assert torch.allclose(reduced, whole, rtol=1e-10, atol=1e-13)


# ------------------------------------------------------------------------------------------------ state
def _roundtrip(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("name", RULES)
def test_state_dict_roundtrip(name):
    rule = R.create(name, **NON_DEFAULT[name])
    layer = make_layer(generic_kind(name), rule=name)
    run(name, layer, rule)  # stateful rules now hold state (SoftHebb: rates)
    now = copy.deepcopy(layer)  # the layer as it is now (a FoldiakLayer's learned buffers included)
    before = run(name, layer, rule.clone())  # the update that follows from this state
    state = _roundtrip(rule.state_dict())
    assert set(state) == {"hyperparameters", *type(rule).state_tensors}

    fresh = R.create(name)
    fresh.load_state_dict(state)
    assert repr(fresh) == repr(rule)
    assert fresh.state_dict().keys() == rule.state_dict().keys()
    for key in type(rule).state_tensors:
        assert torch.equal(getattr(fresh, key), getattr(rule, key)), key
    for key, value in NON_DEFAULT[name].items():
        assert getattr(fresh, key) == value
    assert torch.equal(run(name, now, fresh), before)
    if R.get_rule_info(name).stateful:
        assert type(rule).state_tensors and all(getattr(fresh, k) is not None for k in type(rule).state_tensors)
    else:
        assert type(rule).state_tensors == ()


def test_softhebb_rates_survive_roundtrip():
    rule = R.create("softhebb", t_inv=0.5)
    assert rule.rates is None and rule.state_dict()["rates"] is None
    run("softhebb", make_layer("linear"), rule)
    state = _roundtrip(rule.state_dict())
    assert state["rates"].shape == (M,)
    fresh = R.create("softhebb")
    fresh.load_state_dict(state)
    assert fresh.t_inv == 0.5 and torch.equal(fresh.rates, rule.rates)
    state["rates"].zero_()  # restored state is a copy
    assert bool((fresh.rates != 0).all())


def test_ghl_nested_local_rule_roundtrip():
    rule = R.create("ghl", local=R.create("instar", competition="soft", t_inv=0.3, normalize="max_abs"))
    state = _roundtrip(rule.state_dict())
    fresh = R.create("ghl")
    fresh.load_state_dict(state)
    assert isinstance(fresh.local, R.Instar)
    assert fresh.local.hyperparameters() == {"competition": "soft", "t_inv": 0.3, "normalize": "max_abs"}
    layer = make_layer("conv")
    assert torch.equal(run("ghl", layer, fresh), run("ghl", layer, rule))
    # a stateful local rule keeps its state
    rule = R.create("ghl", local="softhebb")
    run("ghl", layer, rule)
    fresh = R.create("ghl")
    fresh.load_state_dict(_roundtrip(rule.state_dict()))
    assert isinstance(fresh.local, R.SoftHebb) and torch.equal(fresh.local.rates, rule.local.rates)


def test_load_state_dict_rejects_foreign_dicts():
    with pytest.raises(KeyError, match="hyperparameters"):
        R.create("oja").load_state_dict({"weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="t_inv"):
        R.create("softhebb").load_state_dict({"hyperparameters": {"t_inv": -1.0, "q": 0.5, "p": 2.0}})


@pytest.mark.parametrize("name", RULES)
def test_clone_is_independent(name):
    rule = R.create(name, **NON_DEFAULT[name])
    twin = rule.clone()
    assert twin is not rule and repr(twin) == repr(rule)
    assert torch.equal(run(name, make_layer("linear", rule=name), twin), run(name, make_layer("linear", rule=name), rule))


# ------------------------------------------------------------------------------------------------ metadata, repr
@pytest.mark.parametrize("name", RULES)
def test_metadata_matches_behaviour(name):
    info = R.get_rule_info(name)
    layer = make_layer(generic_kind(name), rule=name)
    x, u, labels, grad = make_batch(layer)
    rule = R.create(name)
    if info.needs_labels:
        with pytest.raises(ValueError, match="labels"):
            rule.update(layer, x, u, grad=grad)
        assert name in R.list_rules(needs_labels=True)
    else:
        rule.update(layer, x, u, grad=grad)  # labels are not needed
        assert name in R.list_rules(needs_labels=False)
    if info.needs_global_grad:
        with pytest.raises(ValueError, match="grad"):
            rule.update(layer, x, u, labels=labels)
        assert name in R.list_rules(needs_global_grad=True)
    else:
        rule.update(layer, x, u, labels=labels)  # the gradient is not needed
    assert (name in R.list_rules(stateful=True)) == info.stateful == bool(type(rule).state_tensors)
    assert info.supports_conv or name in OWN_LAYERS  # every built-in rule trains Conv2d, but for its own layer
    assert info.description and name in R.list_rules(name[:3] + "*")


@pytest.mark.parametrize("name", RULES)
def test_repr_shows_class_and_hyperparameters(name):
    rule = R.create(name, **NON_DEFAULT[name])
    text = repr(rule)
    assert text.startswith(type(rule).__name__ + "(")
    for key in rule.hyperparameters():
        assert f"{key}=" in text
    namespace = {cls.__name__: cls for cls in (info.cls for info in R.rule_infos())}
    assert repr(eval(text, namespace)) == text  # the repr is a valid constructor call


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("name", RULES)
@pytest.mark.parametrize(
    "layer,x",
    [
        (nn.Bilinear(3, 3, M), torch.randn(4, 3)),
        (nn.Sequential(nn.Linear(3, M)), torch.randn(4, 3)),
        (nn.ConvTranspose2d(2, M, 3), torch.randn(2, 2, 4, 4)),
    ],
    ids=["bilinear", "sequential", "conv_transpose"],
)
def test_unsupported_layer_types(name, layer, x):
    u = torch.randn(4, M)
    with pytest.raises(TypeError, match=f"layer must be an nn.Linear or nn.Conv1d/Conv2d/Conv3d .*got {type(layer).__name__}"):
        R.create(name).update(layer, x, u, labels=torch.zeros(4, dtype=torch.long), grad=torch.zeros(1))


@pytest.mark.parametrize("name", RULES)
def test_grouped_conv_inconsistent_shapes_are_rejected(name):
    make_layer("conv", rule=name)  # skips rules without conv support
    layer = nn.Conv2d(4, 6, 3, groups=2)
    x = torch.randn(2, 6, 5, 5)  # 6 input channels for a layer with 4
    with pytest.raises(ValueError, match=r"x must have shape \(N, 4, H, W\)"):
        R.create(name).update(layer, x, torch.zeros(2, 6, 3, 3), labels=torch.zeros(2, dtype=torch.long), grad=torch.zeros(6, 2, 3, 3))


@pytest.mark.parametrize("name", RULES)
def test_mismatched_shapes(name):
    rule = R.create(name)
    lin = make_layer("linear", rule=name)
    x, u, labels, grad = make_batch(lin)
    kw = extras(name, labels, grad)
    with pytest.raises(ValueError, match=r"^x must have 6 features"):
        rule.update(lin, x[:, :5], u, **kw)
    with pytest.raises(ValueError, match=r"^u must have shape"):
        rule.update(lin, x, u[:, :4], **kw)
    with pytest.raises(ValueError, match=r"^u must have shape"):
        rule.update(lin, x, u[:4], **kw)
    conv = make_layer("conv", rule=name)
    x, u, labels, grad = make_batch(conv)
    kw = extras(name, labels, grad)
    with pytest.raises(ValueError, match=r"^x must have shape \(N, 2, H, W\)"):
        rule.update(conv, x.repeat(1, 2, 1, 1), u, **kw)
    with pytest.raises(ValueError, match=r"^x must have shape"):
        rule.update(conv, x.flatten(2), u, **kw)
    with pytest.raises(ValueError, match=r"^u must have shape"):
        rule.update(conv, x, u[..., :4], **kw)
    with pytest.raises(ValueError, match=r"^u must have shape"):
        rule.update(conv, x, u[:, :3], **kw)
    with pytest.raises(ValueError, match=r"^u must have 4 dimensions"):
        rule.update(conv, x, u.flatten(2), **kw)
    if R.get_rule_info(name).needs_global_grad:
        with pytest.raises(ValueError, match="grad must have the weight's shape"):
            rule.update(conv, x, u, grad=grad[:2])


@pytest.mark.parametrize("name", RULES)
@pytest.mark.parametrize("which", ["x", "u"])
def test_integer_inputs_are_rejected(name, which):
    layer = make_layer("linear", rule=name)
    x, u, labels, grad = make_batch(layer)
    args = {"x": x, "u": u}
    args[which] = args[which].round().to(torch.int64)
    with pytest.raises(TypeError, match=rf"^{which} must have a floating-point dtype"):
        R.create(name).update(layer, args["x"], args["u"], **extras(name, labels, grad))


NON_FINITE_CASES = [
    (name, which)
    for name in RULES
    for which in ("x", "u", "layer.weight") + (("grad",) if R.get_rule_info(name).needs_global_grad else ())
]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name,which", NON_FINITE_CASES, ids=[f"{n}-{w}" for n, w in NON_FINITE_CASES])
def test_non_finite_values_are_refused(name, which, bad):
    """Never a silent NaN update: NaN/Inf in x, u, the weight (or GHL's gradient) raises, naming the culprit."""
    layer = make_layer(generic_kind(name), rule=name)
    x, u, labels, grad = make_batch(layer)
    kw = extras(name, labels, grad)
    at = (0, 1, 2, 2) if x.dim() == 4 else (0, 1)
    if which == "grad":
        kw["grad"][0, 0, 1, 1] = bad
    elif which == "layer.weight":
        with torch.no_grad():
            layer.weight[(1, 0, 0, 0)[:layer.weight.dim()]] = bad
    else:
        {"x": x, "u": u}[which][at] = bad
    with pytest.raises(ValueError, match=rf"^{which} contains NaN or Inf"):
        R.create(name).update(layer, x, u, **kw)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.cuda
def test_device_mismatch_is_rejected():
    for name in RULES:
        layer = make_layer("linear", device="cuda")
        x, u, labels, grad = make_batch(layer)
        with pytest.raises(ValueError, match="must be on the layer's device"):
            R.create(name).update(layer, x.cpu(), u, **extras(name, labels, grad))


def test_bad_labels():
    rule = R.create("supervised_instar")
    layer = make_layer("linear")
    x, u, labels, _ = make_batch(layer)
    with pytest.raises(TypeError, match="labels must hold integer class indices"):
        rule.update(layer, x, u, labels=labels.double())
    with pytest.raises(ValueError, match=r"labels must have shape \(6,\)"):
        rule.update(layer, x, u, labels=labels[:4])
    with pytest.raises(ValueError, match=r"labels must have shape \(6,\)"):
        rule.update(layer, x, u, labels=labels.view(2, 3))
    for bad in (M, -1):
        wrong = labels.clone()
        wrong[2] = bad
        with pytest.raises(ValueError, match=rf"labels must lie in \[0, {M}\)"):
            rule.update(layer, x, u, labels=wrong)


def test_k_larger_than_the_layer_is_rejected():
    layer = make_layer("conv")
    x, u, _, _ = make_batch(layer)
    with pytest.raises(ValueError, match=r"k=6 needs at least k competing units, got 5"):
        R.create("krotov", k=6).update(layer, x, u)
    with pytest.raises(ValueError, match=r"k=6 needs at least k competing units, got 5"):
        R.create("swta", competition="kwta", k=6).update(layer, x, u)
    R.create("swta", competition="exp", k=6).update(layer, x, u)  # k is unused unless competition="kwta"


INVALID_HYPERPARAMETERS = [
    ("krotov", {"k": 1}, "k"),
    ("krotov", {"k": 0}, "k"),
    ("krotov", {"k": 2.5}, "k"),
    ("krotov", {"k": True}, "k"),
    ("krotov", {"k": "3"}, "k"),
    ("krotov", {"p": 0.5}, "p"),
    ("krotov", {"p": 0.0}, "p"),
    ("krotov", {"p": math.nan}, "p"),
    ("krotov", {"delta": -0.1}, "delta"),
    ("krotov", {"prec": 0.0}, "prec"),
    ("softhebb", {"q": -0.5}, "q"),
    ("softhebb", {"p": 0.9}, "p"),
    ("softhebb", {"t_inv": math.inf}, "t_inv"),
    ("swta", {"power": 0.0}, "power"),
    ("swta", {"k": 0}, "k"),
    ("swta", {"k": 1.0}, "k"),
    ("hpca", {"fan_in_scaling": "yes"}, "fan_in_scaling"),
    ("ghl", {"local": 5}, "local"),
    ("ghl", {"local": "ghl"}, "local"),
    ("ghl", {"t_inv": "1"}, "t_inv"),
]


@pytest.mark.parametrize("name,hp,param", INVALID_HYPERPARAMETERS, ids=[f"{n}-{p}-{hp[p]!r}" for n, hp, p in INVALID_HYPERPARAMETERS])
def test_invalid_hyperparameters(name, hp, param):
    with pytest.raises((ValueError, TypeError), match=rf"^{param} must"):
        R.create(name, **hp)


TEMPERATURES = [(n, p) for n in RULES for p in ("t_inv", "temperature") if p in R.get_rule_info(n).defaults()]
CHOICES = [(n, p) for n in RULES for p, v in R.get_rule_info(n).defaults().items() if isinstance(v, str)]


def test_parameter_tables_cover_the_known_rules():
    assert {("competitive_oja", "t_inv"), ("instar", "t_inv"), ("softhebb", "t_inv"), ("ghl", "t_inv"),
            ("swta", "temperature")} <= set(TEMPERATURES)
    assert {("hebb", "normalize"), ("competitive_oja", "competition"), ("sanger", "activation"),
            ("ghl", "mode"), ("swta", "competition"), ("hpca", "activation")} <= set(CHOICES)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan])
@pytest.mark.parametrize("name,param", TEMPERATURES, ids=[f"{n}-{p}" for n, p in TEMPERATURES])
def test_temperatures_must_be_positive(name, param, bad):
    """Every rule with an (inverse) temperature refuses t_inv/temperature <= 0."""
    with pytest.raises(ValueError, match=rf"^{param} must"):
        R.create(name, **{param: bad})


@pytest.mark.parametrize("name,param", CHOICES, ids=[f"{n}-{p}" for n, p in CHOICES])
def test_bad_choice_strings(name, param):
    """Every string-valued hyperparameter (normalize, competition, activation, mode) is checked against its choices."""
    with pytest.raises(ValueError, match=rf"^{param} must be one of"):
        R.create(name, **{param: "no-such-choice"})


def test_unknown_rule_name():
    with pytest.raises(KeyError, match="unknown rule 'no_such_rule'"):
        R.create("no_such_rule")
    with pytest.raises(KeyError, match="unknown rule"):
        R.create("ghl", local="no_such_rule")
    with pytest.raises(TypeError, match="name must be a string"):
        R.get_rule_info(3)
    with pytest.raises(TypeError):
        R.create("oja", t_inv=1.0)  # a hyperparameter the rule does not have


def test_duplicate_registration_is_rejected():
    before = {n: R.get_rule_info(n) for n in RULES}
    with pytest.raises(ValueError, match="'oja' is already registered"):
        R.register_rule("oja", description="again")(type("Again", (R.Oja,), {}))
    with pytest.raises(ValueError, match="'GHA' is already registered"):  # an alias of sanger
        R.register_rule("GHA", description="again")(type("Again", (R.Oja,), {}))
    # an alias must not shadow another rule's name either, and a refused rule leaves no trace
    with pytest.raises(ValueError, match="'Oja' is already registered"):
        R.register_rule("new_rule", description="again", aliases=("Oja",))(type("Again", (R.Oja,), {}))
    with pytest.raises(ValueError, match="'b' is already registered"):
        R.register_rule("new_rule", description="again", aliases=("b", "B"))(type("Again", (R.Oja,), {}))
    assert R.list_rules() == RULES and all(R.get_rule_info(n) is before[n] for n in RULES)
    assert R.get_rule_info("oja").cls is R.Oja
    with pytest.raises(KeyError, match="unknown rule"):
        R.get_rule_info("new_rule")


@pytest.mark.parametrize("lr", [-0.1, math.nan, "0.1", True])
def test_local_rejects_bad_learning_rates(lr):
    with pytest.raises(ValueError, match="^lr must be"):
        Local(nn.Linear(2, 2).parameters(), lr=lr)
