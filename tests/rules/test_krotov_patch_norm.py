"""Krotov's rule on normalised patches (``patch_norm``): against a float64 reference built from explicit patches."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hebbian.rules import create


def reference(patches: torch.Tensor, w: torch.Tensor, p: float, k: int, delta: float, mode: str) -> torch.Tensor:
    """Written from the equations, one row per patch: normalise, p-current, rank gates, ds, max-abs."""
    if mode == "centered":
        patches = patches - patches.mean(dim=1, keepdim=True)
    norms = patches.norm(dim=1, keepdim=True)
    keep = (norms > 1e-9 * (1 + patches.abs().max())).squeeze(1)
    patches = patches[keep] / norms[keep]
    weights = torch.sign(w) * w.abs() ** (p - 1)
    current = patches @ weights.t()  # (S, M)
    order = current.argsort(dim=1, descending=True)
    g = torch.zeros_like(current)
    rows = torch.arange(len(g))
    g[rows, order[:, 0]] = 1.0
    g[rows, order[:, k - 1]] = -delta
    ds = g.t() @ patches - (g * current).sum(dim=0).unsqueeze(1) * w
    return ds / ds.abs().max()


def conv_patches(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    cols = F.unfold(x, conv.kernel_size, padding=conv.padding, stride=conv.stride)  # (N, D, L)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


@pytest.mark.parametrize("mode", ["unit", "centered"])
@pytest.mark.parametrize("p", [2.0, 3.0, 4.0])
def test_conv_update_equals_the_explicit_patch_reference(mode, p):
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 7, 3, stride=2, padding=1, bias=False).double()
    x = torch.rand(3, 2, 9, 9, dtype=torch.float64)
    x[0, :, :4, :4] = 0.0  # empty patches: left out
    x[1, :, 4:, 4:] = 0.7  # constant patches: no centred direction
    with torch.no_grad():
        u = conv(x)
    rule = create("krotov", p=p, k=3, delta=0.3, patch_norm=mode)
    expected = reference(conv_patches(x, conv), conv.weight.detach().reshape(7, -1), p, 3, 0.3, mode)
    torch.testing.assert_close(rule.update(conv, x, u).reshape(7, -1), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("mode", ["unit", "centered"])
def test_linear_update_equals_the_reference(mode):
    torch.manual_seed(1)
    layer = nn.Linear(12, 6, bias=False).double()
    x = torch.randn(40, 12, dtype=torch.float64) + 0.5
    x[3] = 0.0
    with torch.no_grad():
        u = layer(x)
    rule = create("krotov", p=3.0, k=2, delta=0.4, patch_norm=mode)
    expected = reference(x, layer.weight.detach(), 3.0, 2, 0.4, mode)
    torch.testing.assert_close(rule.update(layer, x, u), expected, rtol=1e-9, atol=1e-12)


def test_normalised_patches_ignore_the_scale_and_offset_of_each_image():
    """With ``centered`` every patch counts by its shape alone: scaling and shifting whole images changes nothing."""
    torch.manual_seed(2)
    conv = nn.Conv2d(1, 8, 5, bias=False).double()
    x = torch.rand(4, 1, 12, 12, dtype=torch.float64)
    gain = torch.tensor([1.0, 3.0, 0.2, 10.0], dtype=torch.float64).view(4, 1, 1, 1)
    offset = torch.tensor([0.0, 1.0, -2.0, 5.0], dtype=torch.float64).view(4, 1, 1, 1)
    scaled = x * gain + offset
    rule = create("krotov", p=2.0, k=2, delta=0.4, patch_norm="centered")
    with torch.no_grad():
        a = rule.update(conv, x, conv(x))
        b = rule.update(conv, scaled, conv(scaled))
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    default = create("krotov", p=2.0, k=2, delta=0.4)
    with torch.no_grad():
        assert not torch.allclose(default.update(conv, x, conv(x)), default.update(conv, scaled, conv(scaled)),
                                  atol=1e-3)


def test_bad_patch_norm_and_grouped_layers_are_refused():
    with pytest.raises(ValueError, match="patch_norm must be one of 'none', 'unit', 'centered', got 'l2'"):
        create("krotov", patch_norm="l2")
    rule = create("krotov", patch_norm="unit")
    grouped = nn.Conv2d(4, 8, 3, groups=2, bias=False)
    x = torch.rand(1, 4, 6, 6)
    with pytest.raises(ValueError, match="patch_norm='unit' needs an ungrouped layer, got groups=2"):
        rule.update(grouped, x, grouped(x).detach())
