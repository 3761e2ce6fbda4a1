"""Conv Hebbian update: SoftHebb on DeepHebb's second layer (96 -> 384, 3x3, padding 1, 16x16 maps, batch 64).

* **ours**: ``rule.update(layer, x, u, check_finite=False)`` (validation, ``LayerView.prepare``, ``statistics``,
  ``finalize``): the post/pre correlation is a convolution weight gradient (``LayerView.correlate``), no patches.
* **unfold**: the straightforward implementation of SoftHebb's ``hebbconv.py`` / FastHebb: ``F.unfold`` the padded
  input into patches ``P`` (N*L, C*k*k), flatten the post-synaptic factor to (N*L, M) and multiply.

Peak extra memory is measured per variant in a fresh process (see :func:`benchmarks.timing.peak_rss_delta`) on the
CPU, and with ``torch.cuda.max_memory_allocated`` on CUDA: memory the update needs beyond its inputs ``x``, ``u`` and
the weight.
"""

from __future__ import annotations

from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmarks.report import Config, Row, time_row
from benchmarks.timing import cuda_peak_delta, interleaved, peak_rss_delta
from hebbian.rules import create
from hebbian.rules.softhebb import softhebb_init_

T_INV, Q = 0.65, 0.5


def shapes(quick: bool) -> Tuple[int, int, int, int]:
    """(batch, in channels, out channels, map size)."""
    return (8, 16, 64, 16) if quick else (64, 96, 384, 16)


def setup(quick: bool, device: torch.device) -> Tuple[nn.Conv2d, Tensor, Tensor]:
    """DeepHebb's conv2 (SoftHebb variant: reflect padding, radius-25 init), an input batch and the layer's output."""
    n, c, m, size = shapes(quick)
    torch.manual_seed(0)
    layer = nn.Conv2d(c, m, 3, padding=1, padding_mode="reflect", bias=False).to(device)
    softhebb_init_(layer.weight)
    x = torch.randn(n, c, size, size, device=device)
    with torch.no_grad():
        u = layer(x)
    return layer, x, u


def ours(layer: nn.Conv2d, x: Tensor, u: Tensor) -> Tensor:
    return create("softhebb", t_inv=T_INV, q=Q).update(layer, x, u, check_finite=False)


def unfold_update(layer: nn.Conv2d, x: Tensor, u: Tensor) -> Tensor:
    """SoftHebb's update through explicit patches: ``y^T P - (sum y u) w``, max-abs, times ``(|‖w‖ - 1| + 1e-10)^q``."""
    with torch.no_grad():
        w = layer.weight
        m = w.shape[0]
        patches = F.unfold(F.pad(x, (1, 1, 1, 1), mode="reflect"), w.shape[2:])  # (N, C*k*k, L)
        patches = patches.transpose(1, 2).reshape(-1, patches.shape[1])  # (N*L, C*k*k)
        uf = u.permute(0, 2, 3, 1).reshape(-1, m)  # (N*L, M)
        y = torch.softmax(T_INV * uf, dim=1)
        winner = torch.zeros_like(y).scatter_(1, uf.argmax(dim=1, keepdim=True), 1.0)
        y = y * (2.0 * winner - 1.0)
        delta = y.t() @ patches - (y * uf).sum(0).unsqueeze(1) * w.reshape(m, -1)
        delta = delta / (delta.abs().amax() + 1e-30)
        rates = ((w.reshape(m, -1).norm(dim=1) - 1.0).abs() + 1e-10).pow(Q)
        return (delta * rates.unsqueeze(1)).reshape(w.shape)


_SETUP = """
import torch
from benchmarks.conv import setup, ours, unfold_update
torch.set_num_threads({threads})
layer, x, u = setup({quick}, torch.device("cpu"))
fn = {fn}
fn(layer, x, u)
"""


def cpu_peak(fn_name: str, quick: bool) -> int:
    """Peak extra RSS of one call of ``fn_name`` (``ours`` or ``unfold_update``) in a fresh process."""
    setup_code = _SETUP.format(threads=torch.get_num_threads(), quick=quick, fn=fn_name)
    return peak_rss_delta("delta = fn(layer, x, u)", setup_code)


def run(cfg: Config) -> List[Row]:
    layer, x, u = setup(cfg.quick, cfg.device)
    a, b = ours(layer, x, u), unfold_update(layer, x, u)
    if not torch.allclose(a, b, rtol=1e-3, atol=1e-4):
        raise AssertionError(f"unfold reference and softhebb rule disagree: max diff {(a - b).abs().max():.3g}")
    del a, b
    t = interleaved(
        {"ours": lambda: ours(layer, x, u), "unfold": lambda: unfold_update(layer, x, u)},
        cfg.device, reps=cfg.reps * 3, warmup=2,
    )
    n, c, m, size = shapes(cfg.quick)
    what = f"SoftHebb, {c} -> {m}, 3x3, {size}x{size}, batch {n}, reflect padding"
    if cfg.is_cuda:
        mem = {name: cuda_peak_delta(lambda: fn(layer, x, u), cfg.device) for name, fn in
               (("ours", ours), ("unfold", unfold_update))}
        how = "torch.cuda.max_memory_allocated delta"
    else:
        mem = {"ours": cpu_peak("ours", cfg.quick), "unfold": cpu_peak("unfold_update", cfg.quick)}
        how = "VmHWM delta in a fresh process"
    return [
        time_row("Conv SoftHebb update time vs unfold", t, "ours", "unfold", 1.0, what),
        Row("Conv SoftHebb update peak memory vs unfold", float(mem["ours"]), float(mem["unfold"]), "unfold", 0.25,
            kind="memory", note=how),
    ]
