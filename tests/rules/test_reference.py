"""Every registered rule against a naive, independent float64 reference.

The reference below is written from the equations of ``shared/reference/rules.md`` only. It never calls the library's
``LayerView``/``correlate``/competition helpers: it pads the input itself (numpy), slices every ``k x k`` window with
explicit Python loops over samples ``n`` and output positions ``(i, j)``, computes the response, the softmax, the winner,
the ranks, ... per (sample, position), accumulates the per-sample updates, and post-processes them (mean, max-abs,
adaptive rates, the GHL sign) as the equations say. Its own table of default hyperparameters (``REF_DEFAULTS``) is
taken from rules.md as well, so a changed library default is caught too.
"""

from __future__ import annotations

import itertools
import math
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import pytest
import torch
from torch import nn

import hebbian.rules as R

# ---------------------------------------------------------------------------------------------------------- the rules
#: Default hyperparameters as rules.md gives them (independent of the library's signatures).
REF_DEFAULTS: Dict[str, dict] = {
    "hebb": {"normalize": "mean"},
    "oja": {"normalize": "mean"},
    "oja_subspace": {"normalize": "mean"},
    "sanger": {"activation": "identity", "normalize": "mean"},
    "competitive_oja": {"competition": "soft", "t_inv": 1.0, "normalize": "mean"},
    "instar": {"competition": "hard", "t_inv": 1.0, "normalize": "mean"},
    "supervised_instar": {"normalize": "mean"},
    "krotov": {"p": 2.0, "k": 2, "delta": 0.4, "prec": 1e-30},  # S-PH KrotovsRule defaults
    "softhebb": {"t_inv": 1.0, "q": 0.5, "p": 2.0},  # CIFAR preset: power_lr 0.5, lebesgue_p 2
    "swta": {"competition": "exp", "temperature": 0.02, "power": 20.0, "k": 1},  # S-LHL eswta T = 0.02, pswta 1/0.05
    "hpca": {"fan_in_scaling": True, "activation": "relu"},
    "ghl": {"t_inv": 1.0, "mode": "ghl"},
}

#: (registry name, hyperparameters) pairs checked against the reference: every rule, plus its main variants.
VARIANTS: List[Tuple[str, dict]] = [
    ("hebb", {}),
    ("hebb", {"normalize": "sum"}),
    ("hebb", {"normalize": "max_abs"}),
    ("oja", {}),
    ("oja", {"normalize": "sum"}),
    ("oja_subspace", {}),
    ("sanger", {}),
    ("sanger", {"activation": "relu", "normalize": "max_abs"}),
    ("competitive_oja", {}),
    ("competitive_oja", {"competition": "soft", "t_inv": 0.7, "normalize": "max_abs"}),
    ("competitive_oja", {"competition": "hard"}),
    ("instar", {}),
    ("instar", {"competition": "soft", "t_inv": 2.0, "normalize": "sum"}),
    ("supervised_instar", {}),
    ("krotov", {}),
    ("krotov", {"p": 3.0, "k": 3, "delta": 0.2}),
    ("softhebb", {}),
    ("softhebb", {"t_inv": 0.5, "q": 0.75, "p": 3.0}),
    ("swta", {}),
    ("swta", {"competition": "poly", "power": 5.0}),
    ("swta", {"competition": "kwta", "k": 2}),
    ("hpca", {}),
    ("hpca", {"fan_in_scaling": False, "activation": "identity"}),
    ("ghl", {}),
    ("ghl", {"t_inv": 0.4}),
    ("ghl", {"mode": "local_only"}),
    ("ghl", {"mode": "sign_only"}),
]

M = 4  # output units / channels (>= every k used above)
GAP = 1e-9  # minimum gap between ranked values: the data must be tie-free for argmax / top-k


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max())
    return e / e.sum()


def _order(a: np.ndarray) -> np.ndarray:
    """Indices of ``a`` from the largest to the smallest value; asserts that the data is tie-free."""
    order = sorted(range(len(a)), key=lambda i: -a[i])
    vals = [a[i] for i in order]
    assert all(vals[i] - vals[i + 1] > GAP for i in range(len(vals) - 1)), "test data has (near) ties"
    return np.array(order)


def reference_update(
    name: str,
    hp: dict,
    W: np.ndarray,
    samples: List[Tuple[int, List[np.ndarray]]],
    labels: Optional[np.ndarray] = None,
    grad: Optional[np.ndarray] = None,
    groups: int = 1,
) -> np.ndarray:
    """Naive Delta W for rule ``name`` from per-(sample, position) patches ``samples = [(n, [P_1, .., P_G]), ...]``.

    The ``M`` units form ``groups`` consecutive blocks; block ``g`` sees the patch ``P_g`` (its own input channels in a
    grouped convolution, the same input for every block of a packed q/k/v projection) and its units compete only among
    themselves. Post-processing (mean, max-abs, rates, sign) is over the whole layer.
    """
    hp = {**REF_DEFAULTS[name], **hp}
    shape = W.shape
    Wf = W.reshape(W.shape[0], -1)
    m, d = Wf.shape
    mg = m // groups
    acc = np.zeros_like(Wf)
    zsum = np.zeros(m)
    count = 0
    for n, parts in samples:
        count += 1
        assert len(parts) == groups
        for g in range(groups):
            block = slice(g * mg, (g + 1) * mg)
            _accumulate(name, hp, Wf[block], parts[g], acc[block], zsum[block], labels, n)

    # ---- post-processing
    def normalise(a: np.ndarray, mode: str) -> np.ndarray:
        if mode == "mean":
            return a / count
        if mode == "max_abs":
            return a / np.abs(a).max()
        assert mode == "sum"
        return a

    if name in ("hebb", "oja", "oja_subspace", "sanger", "competitive_oja", "instar", "supervised_instar"):
        out = normalise(acc, hp["normalize"])
    elif name == "hpca":
        out = acc / count
        if hp["fan_in_scaling"]:
            out = out / math.sqrt(d)
    elif name == "krotov":
        out = acc / max(np.abs(acc).max(), hp["prec"])
    elif name == "softhebb":
        dhat = acc / np.abs(acc).max()
        rates = [(abs(np.sum(np.abs(Wf[k]) ** hp["p"]) ** (1.0 / hp["p"]) - 1.0) + 1e-10) ** hp["q"] for k in range(m)]
        out = dhat * np.array(rates)[:, None]
    elif name == "swta":
        out = acc / zsum[:, None]
    elif name == "ghl":
        dhat = acc / np.abs(acc).max()
        g = grad.reshape(m, -1)
        if hp["mode"] == "local_only":
            out = dhat
        elif hp["mode"] == "sign_only":
            out = -np.sign(g)
        else:
            out = -np.abs(dhat) * np.sign(g)
    return out.reshape(shape)


def _accumulate(name: str, hp: dict, Wf: np.ndarray, P: np.ndarray, acc: np.ndarray, zsum: np.ndarray,
                labels: Optional[np.ndarray], n: int) -> None:
    """Add one (sample, position)'s update of one competition group (``Wf``, ``acc``, ``zsum``: that group's rows)."""
    m = Wf.shape[0]
    u = Wf @ P  # the bare drive w_k . x of this (sample, position)
    if name == "hebb":
        for k in range(m):
            acc[k] += u[k] * P
    elif name == "oja":
        for k in range(m):
            acc[k] += u[k] * (P - u[k] * Wf[k])
    elif name in ("oja_subspace", "sanger", "hpca"):
        y = np.maximum(u, 0.0) if hp.get("activation") == "relu" else u
        for i in range(m):
            upto = m if name == "oja_subspace" else i + 1
            recon = sum(y[k] * Wf[k] for k in range(upto))
            acc[i] += y[i] * (P - recon)
    elif name in ("competitive_oja", "ghl"):
        if name == "ghl" or hp["competition"] == "soft":
            y = _softmax(hp["t_inv"] * u)
            for k in range(m):
                acc[k] += y[k] * (P - u[k] * Wf[k])
        else:
            win = _order(u)[0]
            acc[win] += u[win] * (P - u[win] * Wf[win])
    elif name == "instar":
        if hp["competition"] == "soft":
            y = _softmax(hp["t_inv"] * u)
        else:
            y = np.zeros(m)
            y[_order(u)[0]] = 1.0
        for k in range(m):
            acc[k] += y[k] * (P - Wf[k])
    elif name == "supervised_instar":
        t = int(labels[n])
        acc[t] += P - Wf[t]
    elif name == "krotov":
        p = hp["p"]
        current = np.array([np.sum(np.sign(Wf[k]) * np.abs(Wf[k]) ** (p - 1.0) * P) for k in range(m)])
        order = _order(current)
        g = np.zeros(m)
        g[order[0]] = 1.0
        g[order[hp["k"] - 1]] = -hp["delta"]
        for k in range(m):
            acc[k] += g[k] * (P - current[k] * Wf[k])
    elif name == "softhebb":
        p = hp["p"]
        current = np.array([np.sum(np.sign(Wf[k]) * np.abs(Wf[k]) ** (p - 1.0) * P) for k in range(m)])
        y = _softmax(hp["t_inv"] * current)
        win = _order(current)[0]
        ytilde = np.array([y[k] if k == win else -y[k] for k in range(m)])
        for k in range(m):
            acc[k] += ytilde[k] * (P - current[k] * Wf[k])
    elif name == "swta":
        s = np.array([((1.0 + u[k] / (np.linalg.norm(Wf[k]) * np.linalg.norm(P))) / 2.0) ** 2 for k in range(m)])
        if hp["competition"] == "exp":
            z = _softmax(s / hp["temperature"])
        elif hp["competition"] == "poly":
            z = s ** hp["power"] / np.sum(s ** hp["power"])
        else:
            z = np.zeros(m)
            z[_order(s)[: hp["k"]]] = 1.0
        for k in range(m):
            acc[k] += z[k] ** 2 * (P - Wf[k])
            zsum[k] += z[k]
    else:  # pragma: no cover
        raise AssertionError(f"no reference for rule {name!r}")


# ---------------------------------------------------------------------------------------------------------- the layers
def conv_patches(conv: nn.Conv2d, x: np.ndarray) -> Iterator[Tuple[int, int, int, np.ndarray]]:
    """Every (n, i, j, window) of the padded input, by explicit slicing."""
    kh, kw = conv.kernel_size
    sh, sw = conv.stride
    dh, dw = conv.dilation
    if isinstance(conv.padding, str):
        if conv.padding == "valid":
            top = bottom = left = right = 0
        else:  # "same": the extra element (odd total) goes to the bottom / right, as in torch
            th, tw = dh * (kh - 1), dw * (kw - 1)
            top, left = th // 2, tw // 2
            bottom, right = th - top, tw - left
    else:
        top = bottom = conv.padding[0]
        left = right = conv.padding[1]
    mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}[conv.padding_mode]
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), mode=mode)
    n_, c, hp_, wp_ = xp.shape
    oh = (hp_ - dh * (kh - 1) - 1) // sh + 1
    ow = (wp_ - dw * (kw - 1) - 1) // sw + 1
    for n in range(n_):
        for i in range(oh):
            for j in range(ow):
                win = xp[n, :, i * sh : i * sh + dh * (kh - 1) + 1 : dh, j * sw : j * sw + dw * (kw - 1) + 1 : dw]
                assert win.shape == (c, kh, kw)
                yield n, i, j, win.reshape(-1).copy()


CONV_CONFIGS: Dict[str, dict] = {
    "k3": dict(in_channels=2, kernel_size=3),
    "stride2": dict(in_channels=2, kernel_size=3, stride=2),
    "pad1_zeros": dict(in_channels=2, kernel_size=3, padding=1),
    "pad1_reflect": dict(in_channels=2, kernel_size=3, padding=1, padding_mode="reflect"),
    "pad_circular_rect": dict(in_channels=2, kernel_size=3, padding=(1, 2), padding_mode="circular"),
    "pad_replicate": dict(in_channels=2, kernel_size=3, padding=2, padding_mode="replicate", stride=2),
    "dilation2": dict(in_channels=2, kernel_size=3, dilation=2),
    "in3": dict(in_channels=3, kernel_size=3),
    "nonsquare": dict(in_channels=2, kernel_size=(2, 3), stride=(1, 2)),
    "same_even": dict(in_channels=2, kernel_size=(2, 3), padding="same"),
    "bias_pad1": dict(in_channels=2, kernel_size=3, padding=1, bias=True),
}
LINEAR_CONFIGS: Dict[str, dict] = {
    "plain": dict(x_shape=(7, 5), bias=False),
    "bias": dict(x_shape=(7, 5), bias=True),
    "leading_dims": dict(x_shape=(3, 2, 5), bias=False),
}


pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")


def _seed_for(*parts: str) -> int:
    return sum((i + 1) * ord(ch) for i, ch in enumerate("/".join(parts))) % (2**31)


def make_case(kind: str, config: str, name: str, hp: dict, dtype=torch.float64):
    """Layer, input, output, labels, grad and the reference patches for one (layer config, rule) pair."""
    gen = torch.Generator().manual_seed(_seed_for(kind, config, name, repr(sorted(hp.items()))))
    if kind == "conv":
        cfg = dict(CONV_CONFIGS[config])
        bias = cfg.pop("bias", False)
        layer = nn.Conv2d(out_channels=M, bias=bias, **cfg).to(torch.float64)
        x_shape = (2, cfg["in_channels"], 6, 6)
    else:
        cfg = LINEAR_CONFIGS[config]
        x_shape = cfg["x_shape"]
        layer = nn.Linear(x_shape[-1], M, bias=cfg["bias"]).to(torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen, dtype=torch.float64) * 0.6)
        if layer.bias is not None:
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen, dtype=torch.float64))
    x = torch.randn(x_shape, generator=gen, dtype=torch.float64)
    if name == "swta":  # raised cosine: a positive offset makes the similarities spread out
        x = x + 0.3
    labels = torch.randint(0, M, (x_shape[0],), generator=gen)
    grad = torch.randn(layer.weight.shape, generator=gen, dtype=torch.float64)
    grad[torch.rand(grad.shape, generator=gen) < 0.2] = 0.0  # exact zeros: GHL must give 0 there

    W = layer.weight.detach().numpy().copy()
    xn = x.numpy()
    if kind == "conv":
        samples = [(n, [P]) for n, _, _, P in conv_patches(layer, xn)]
    else:
        flat = xn.reshape(-1, xn.shape[-1])
        per_n = flat.shape[0] // x_shape[0]
        samples = [(s // per_n, [flat[s].copy()]) for s in range(flat.shape[0])]
    with torch.no_grad():
        u = layer(x)
    # The reference's own patches reproduce the layer's output (validates the windows, padding and bias).
    bias = layer.bias.detach().numpy() if layer.bias is not None else np.zeros(M)
    u_ref = np.stack([W.reshape(M, -1) @ P + bias for _, (P,) in samples])
    u_lib = u.numpy().transpose(0, 2, 3, 1).reshape(-1, M) if kind == "conv" else u.numpy().reshape(-1, M)
    np.testing.assert_allclose(u_lib, u_ref, rtol=0, atol=1e-12)

    layer = layer.to(dtype)
    return layer, x.to(dtype), u.to(dtype), labels, grad.to(dtype), (W, samples, labels.numpy(), grad.numpy())


def _extras(name: str, labels, grad) -> dict:
    info = R.get_rule_info(name)
    return {"labels": labels if info.needs_labels else None, "grad": grad if info.needs_global_grad else None}


def _variant_id(v: Tuple[str, dict]) -> str:
    name, hp = v
    return name + ("" if not hp else "[" + ",".join(f"{k}={val}" for k, val in hp.items()) + "]")


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


# ---------------------------------------------------------------------------------------------------------- the tests
#: Rules whose float64 reference lives in a test module of its own.
REFERENCED_ELSEWHERE = {
    "reward_modulated": "tests/rules/test_three_factor_rules.py",
    "random_feedback": "tests/rules/test_three_factor_rules.py",
    "bcm": "tests/rules/test_bcm.py",  # stateful over batches (the running threshold)
    "foldiak": "tests/rules/test_foldiak.py",  # trains its own layer (FoldiakLayer)
}


def test_every_registered_rule_has_a_reference():
    assert sorted({name for name, _ in VARIANTS} | set(REFERENCED_ELSEWHERE)) == R.list_rules()
    assert sorted(set(REF_DEFAULTS) | set(REFERENCED_ELSEWHERE)) == R.list_rules()


@pytest.mark.parametrize("name", sorted(REF_DEFAULTS))
def test_library_defaults_match_rules_md(name):
    hp = R.create(name).hyperparameters()
    for key, value in REF_DEFAULTS[name].items():
        assert hp[key] == value, (name, key)


# supervised_instar takes (N, D) Linear inputs only (its refusal of other layouts is checked in test_contract)
LINEAR_CASES = [(v, c) for v in VARIANTS for c in LINEAR_CONFIGS if not (v[0] == "supervised_instar" and c == "leading_dims")]


@pytest.mark.parametrize("variant,config", LINEAR_CASES, ids=[f"{_variant_id(v)}-{c}" for v, c in LINEAR_CASES])
def test_linear_matches_reference(variant, config):
    name, hp = variant
    layer, x, u, labels, grad, (W, samples, labels_np, grad_np) = make_case("linear", config, name, hp)
    got = R.create(name, **hp).update(layer, x, u, **_extras(name, labels, grad))
    ref = reference_update(name, hp, W, samples, labels_np, grad_np)
    assert got.shape == layer.weight.shape and got.dtype == torch.float64
    assert _rel_err(got.numpy(), ref) < 1e-10


@pytest.mark.parametrize("config", list(CONV_CONFIGS))
@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
def test_conv_matches_reference(variant, config):
    name, hp = variant
    layer, x, u, labels, grad, (W, samples, labels_np, grad_np) = make_case("conv", config, name, hp)
    got = R.create(name, **hp).update(layer, x, u, **_extras(name, labels, grad))
    ref = reference_update(name, hp, W, samples, labels_np, grad_np)
    assert got.shape == layer.weight.shape and got.dtype == torch.float64
    assert _rel_err(got.numpy(), ref) < 1e-10


@pytest.mark.parametrize("kind,config", [("linear", "bias"), ("conv", "pad1_reflect"), ("conv", "stride2")])
@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
def test_float32_matches_reference(variant, kind, config):
    """The batched float32 path agrees with the float64 loop to float32 precision (rules.md 6.5.1)."""
    name, hp = variant
    layer, x, u, labels, grad, (W, samples, labels_np, grad_np) = make_case(kind, config, name, hp, torch.float32)
    W32 = layer.weight.detach().double().numpy()  # the reference sees the weights the float32 layer has
    got = R.create(name, **hp).update(layer, x, u, **_extras(name, labels, grad))
    assert got.dtype == torch.float32
    samples32 = [(n, [P.astype(np.float32).astype(np.float64) for P in parts]) for n, parts in samples]
    ref = reference_update(name, hp, W32, samples32, labels_np, grad_np)
    assert _rel_err(got.double().numpy(), ref) < 2e-5


def test_ghl_combination_elementwise():
    """GHL = -|Dhat| * sign(g), element by element, with Dhat the max-abs normalised soft-WTA Oja sum (rules.md 1.2-1.3)."""
    layer, x, u, _, grad, (W, samples, _, grad_np) = make_case("conv", "pad1_zeros", "ghl", {"t_inv": 0.65})
    got = R.create("ghl", t_inv=0.65).update(layer, x, u, grad=grad).numpy()
    # independent pieces: the raw soft-WTA Oja sum, its max-abs normalisation, then the sign of the gradient
    raw = reference_update("competitive_oja", {"t_inv": 0.65, "normalize": "sum"}, W, samples)
    dhat = raw / np.abs(raw).max()
    assert np.abs(dhat).max() == 1.0
    expected = -np.abs(dhat) * np.sign(grad_np)
    assert _rel_err(got, expected) < 1e-10
    zero = grad_np == 0
    assert zero.any() and np.all(got[zero] == 0)
    nz = ~zero
    assert np.all(np.sign(got[nz]) == -np.sign(grad_np[nz]))
    assert np.abs(got).max() <= 1.0 + 1e-12


# ------------------------------------------------------------------------- more layer kinds: Conv1d, Conv3d, groups
def convnd_patches(conv: nn.Module, x: np.ndarray) -> Iterator[Tuple[int, List[np.ndarray]]]:
    """Every (n, [window of group 1, .., group G]) of the padded input of a Conv1d/2d/3d, by explicit slicing."""
    d = x.ndim - 2
    k, st, dil, groups = conv.kernel_size, conv.stride, conv.dilation, conv.groups
    if isinstance(conv.padding, str):
        pads = []
        for i in range(d):
            total = 0 if conv.padding == "valid" else dil[i] * (k[i] - 1)
            pads.append((total // 2, total - total // 2))
    else:
        pads = [(p, p) for p in conv.padding]
    mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}[conv.padding_mode]
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(pads), mode=mode)
    out = [(xp.shape[2 + i] - dil[i] * (k[i] - 1) - 1) // st[i] + 1 for i in range(d)]
    cg = x.shape[1] // groups
    for n in range(x.shape[0]):
        for pos in itertools.product(*[range(o) for o in out]):
            index = tuple(slice(pos[i] * st[i], pos[i] * st[i] + dil[i] * (k[i] - 1) + 1, dil[i]) for i in range(d))
            win = xp[(n, slice(None)) + index]
            assert win.shape == (x.shape[1],) + tuple(k)
            yield n, [win[g * cg:(g + 1) * cg].reshape(-1).copy() for g in range(groups)]


#: (module class, constructor kwargs, input shape)
ND_CONFIGS: Dict[str, Tuple[type, dict, tuple]] = {
    "conv1d_k3": (nn.Conv1d, dict(in_channels=2, kernel_size=3), (2, 2, 7)),
    "conv1d_stride2_reflect": (nn.Conv1d, dict(in_channels=2, kernel_size=3, stride=2, padding=1,
                                               padding_mode="reflect"), (2, 2, 8)),
    "conv1d_dilation2_same": (nn.Conv1d, dict(in_channels=2, kernel_size=3, dilation=2, padding="same"), (2, 2, 7)),
    "conv1d_groups2_bias": (nn.Conv1d, dict(in_channels=4, kernel_size=3, groups=2, padding=1, bias=True), (2, 4, 6)),
    "conv3d_k2": (nn.Conv3d, dict(in_channels=2, kernel_size=2), (2, 2, 3, 4, 4)),
    "conv3d_stride_pad": (nn.Conv3d, dict(in_channels=2, kernel_size=(2, 3, 3), stride=(1, 2, 2), padding=1,
                                          bias=True), (2, 2, 3, 4, 4)),
    "conv3d_groups2_replicate": (nn.Conv3d, dict(in_channels=4, kernel_size=2, groups=2, padding=1,
                                                 padding_mode="replicate"), (2, 4, 2, 3, 3)),
    "conv2d_groups2": (nn.Conv2d, dict(in_channels=4, kernel_size=3, groups=2, padding=1), (2, 4, 5, 5)),
    "conv2d_depthwise_x2_circular": (nn.Conv2d, dict(in_channels=2, kernel_size=3, groups=2, padding=1,
                                                     padding_mode="circular"), (2, 2, 4, 4)),
    "conv2d_depthwise": (nn.Conv2d, dict(in_channels=M, kernel_size=3, groups=M, stride=2), (2, M, 5, 5)),
}


def _refusal(name: str, hp: dict, units_per_group: int, groups: int) -> Optional[str]:
    """The error a rule must raise for competition groups it cannot train (None: it trains them)."""
    hp = {**REF_DEFAULTS[name], **hp}
    if name == "supervised_instar" and groups > 1:
        return "supervised_instar needs one group of units"
    if name == "krotov" and units_per_group < hp["k"]:
        return f"k={hp['k']} needs at least k competing units, got {units_per_group}"
    if name == "swta" and hp["competition"] == "kwta" and units_per_group < hp["k"]:
        return f"k={hp['k']} needs at least k competing units, got {units_per_group}"
    return None


def make_nd_case(config: str, name: str, hp: dict):
    cls, kwargs, x_shape = ND_CONFIGS[config]
    gen = torch.Generator().manual_seed(_seed_for("nd", config, name, repr(sorted(hp.items()))))
    kwargs = dict(kwargs)
    bias = kwargs.pop("bias", False)
    layer = cls(out_channels=M, bias=bias, **kwargs).to(torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen, dtype=torch.float64) * 0.6)
        if layer.bias is not None:
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen, dtype=torch.float64))
    x = torch.randn(x_shape, generator=gen, dtype=torch.float64)
    if name == "swta":
        x = x + 0.3
    labels = torch.randint(0, M, (x_shape[0],), generator=gen)
    grad = torch.randn(layer.weight.shape, generator=gen, dtype=torch.float64)
    grad[torch.rand(grad.shape, generator=gen) < 0.2] = 0.0
    W = layer.weight.detach().numpy().copy()
    samples = list(convnd_patches(layer, x.numpy()))
    with torch.no_grad():
        u = layer(x)
    # the reference's own windows reproduce the layer's output: unit k sees its group's channels only
    mg = M // layer.groups
    bias_np = layer.bias.detach().numpy() if layer.bias is not None else np.zeros(M)
    u_ref = np.stack([[W[k].reshape(-1) @ parts[k // mg] + bias_np[k] for k in range(M)] for _, parts in samples])
    u_lib = np.moveaxis(u.numpy(), 1, -1).reshape(-1, M)
    np.testing.assert_allclose(u_lib, u_ref, rtol=0, atol=1e-12)
    return layer, x, u, labels, grad, (W, samples, labels.numpy(), grad.numpy())


@pytest.mark.parametrize("config", list(ND_CONFIGS))
@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
def test_conv1d_conv3d_and_grouped_match_reference(variant, config):
    """Conv1d / Conv3d and grouped / depthwise convolutions: every group of units competes on its own channels."""
    name, hp = variant
    layer, x, u, labels, grad, (W, samples, labels_np, grad_np) = make_nd_case(config, name, hp)
    rule = R.create(name, **hp)
    refusal = _refusal(name, hp, M // layer.groups, layer.groups)
    if refusal is not None:
        with pytest.raises(ValueError, match=refusal):
            rule.update(layer, x, u, **_extras(name, labels, grad))
        return
    got = rule.update(layer, x, u, **_extras(name, labels, grad))
    ref = reference_update(name, hp, W, samples, labels_np, grad_np, groups=layer.groups)
    assert got.shape == layer.weight.shape and got.dtype == torch.float64
    assert _rel_err(got.numpy(), ref) < 1e-10


@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
def test_attention_in_proj_matches_reference(variant):
    """nn.MultiheadAttention's packed in_proj_weight: q, k and v are three groups of units of one weight, each
    competing on its own, all three seeing the same input."""
    from hebbian.models.discovery import candidate_weights
    from hebbian.rules.layers import Geometry

    name, hp = variant
    gen = torch.Generator().manual_seed(_seed_for("attention", name, repr(sorted(hp.items()))))
    mha = nn.MultiheadAttention(embed_dim=M, num_heads=2, dtype=torch.float64)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.randn(mha.in_proj_weight.shape, generator=gen, dtype=torch.float64) * 0.6)
        mha.in_proj_bias.copy_(torch.randn(mha.in_proj_bias.shape, generator=gen, dtype=torch.float64))
    [site] = [s for s in candidate_weights(mha) if s.name == "in_proj"]
    assert site.weight is mha.in_proj_weight and site.competition_groups == 3
    view = site.view().for_call(Geometry(), mha.in_proj_bias)  # as the capture sees it: F.linear(x, W, b)
    x = torch.randn(2, 6, M, generator=gen, dtype=torch.float64)  # 12 samples: every unit wins a k-WTA somewhere
    if name == "swta":
        x = x + 0.3
    with torch.no_grad():
        u = torch.nn.functional.linear(x, mha.in_proj_weight, mha.in_proj_bias)
    labels = torch.randint(0, M, (2,), generator=gen)
    grad = torch.randn(mha.in_proj_weight.shape, generator=gen, dtype=torch.float64)
    grad[torch.rand(grad.shape, generator=gen) < 0.2] = 0.0
    rule = R.create(name, **hp)
    refusal = _refusal(name, hp, M, 3)
    if refusal is not None:
        with pytest.raises(ValueError, match=refusal):
            rule.update(view, x, u, **_extras(name, labels, grad))
        return
    got = rule.update(view, x, u, **_extras(name, labels, grad))
    flat = x.numpy().reshape(-1, M)
    samples = [(s // 6, [flat[s].copy()] * 3) for s in range(flat.shape[0])]
    ref = reference_update(name, hp, mha.in_proj_weight.detach().numpy(), samples, labels.numpy(), grad.numpy(),
                           groups=3)
    assert _rel_err(got.numpy(), ref) < 1e-10
