"""Scaling sweeps: where an epoch's time goes as the layer and the batch grow.

* Krotov FC (784 -> M): seconds per MNIST epoch of our trainer and of the floor (the forward products alone) against
  the hidden units M (batch 1024) and against the batch size (M = 2000). On the CPU each point runs a subset of the
  epoch (``SUBSET`` samples) and is scaled to 60,000 samples; on CUDA full epochs.
* DeepHebb (32x32x3, batch 64): seconds per step against the width multiplier, for Hebbian training (SoftHebb recipe,
  :class:`~hebbian.trainers.HebbianTrainer`), the GHL step and the plain backprop step; a few steps per point.

Plots go to ``<plots_dir>/scaling_krotov[_cuda].png`` and ``scaling_deephebb[_cuda].png`` (matplotlib, Agg backend).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

import torch
from torch.utils.data import TensorDataset

from benchmarks import ghl as ghl_bench
from benchmarks.krotov import MNIST_SHAPE, floor_epoch, trainer_epoch
from benchmarks.report import Config
from benchmarks.timing import interleaved
from hebbian.data import in_memory_loader
from hebbian.models import create_model
from hebbian.optim import Local
from hebbian.trainers import HebbianTrainer

SUBSET = 8192
HIDDEN = (500, 1000, 2000, 4000, 8000)
BATCHES = (64, 128, 256, 512, 1024, 2048, 4096)
WIDTHS = (0.125, 0.25, 0.5, 1.0)


def _random_mnist(n: int, device: torch.device) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.rand((n,) + MNIST_SHAPE[1:], generator=g)
    return TensorDataset(x.to(device), torch.zeros(n, dtype=torch.long, device=device))


def krotov_samples(cfg: Config) -> int:
    """Samples per sweep point: a full epoch on CUDA, a subset on the CPU."""
    return MNIST_SHAPE[0] if cfg.is_cuda else (2048 if cfg.quick else SUBSET)


def krotov_sweep(cfg: Config) -> Dict[str, Dict[str, List[float]]]:
    """Seconds per 60,000-image epoch (ours, floor) for each hidden size and each batch size."""
    n = krotov_samples(cfg)
    data = _random_mnist(n, cfg.device)
    scale = MNIST_SHAPE[0] / n
    hidden = HIDDEN[:2] if cfg.quick else HIDDEN
    batches = BATCHES[:2] if cfg.quick else BATCHES
    out: Dict[str, Dict[str, List[float]]] = {"hidden": {"x": list(hidden), "ours": [], "floor": []},
                                              "batch": {"x": list(batches), "ours": [], "floor": []}}
    points = [("hidden", m, 1024) for m in hidden] + [("batch", 2000, b) for b in batches]
    for axis, m, b in points:
        t = interleaved({"ours": trainer_epoch(data, m, b, cfg.device), "floor": floor_epoch(data, m, b, cfg.device)},
                        cfg.device, reps=cfg.reps)
        out[axis]["ours"].append(t.median("ours") * scale)
        out[axis]["floor"].append(t.median("floor") * scale)
    return out


def deephebb_sweep(cfg: Config) -> Dict[str, List[float]]:
    """Seconds per step (batch 64) of SoftHebb training, the GHL step and the backprop step, per width."""
    widths = (0.05, 0.1) if cfg.quick else WIDTHS
    steps = 10 if cfg.is_cuda else 1
    batch = 8 if cfg.quick else 64
    data = ghl_bench.batches(steps, batch, cfg.device)
    out: Dict[str, List[float]] = {"x": list(widths), "softhebb": [], "ghl": [], "backprop": []}
    for width in widths:
        torch.manual_seed(0)
        model = create_model("deephebb", in_channels=3, input_size=32, width=width).to(cfg.device)
        hebb = HebbianTrainer(model, model.default_rules(), Local(model.parameters(), lr=0.01), device=cfg.device)
        ghl, bp = ghl_bench.engines("deephebb", width, cfg.device)
        t = interleaved({"softhebb": ghl_bench.runner(hebb, data), "ghl": ghl_bench.runner(ghl, data),
                         "backprop": ghl_bench.runner(bp, data)}, cfg.device, reps=cfg.reps)
        for name in ("softhebb", "ghl", "backprop"):
            out[name].append(t.median(name) / steps)
    return out


def plot(krotov: Dict, deephebb: Dict, plots_dir: Path, device: torch.device) -> List[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suffix = "" if device.type == "cpu" else f"_{device.type}"
    plots_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, axis, label in ((axes[0], "hidden", "hidden units M (batch 1024)"),
                            (axes[1], "batch", "batch size (M = 2000)")):
        d = krotov[axis]
        ax.plot(d["x"], d["ours"], "o-", label="HebbianTrainer epoch (all included)")
        ax.plot(d["x"], d["floor"], "s--", label="floor: forward products x @ W.T")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(d["x"], [str(v) for v in d["x"]])
        ax.set_xlabel(label)
        ax.set_ylabel("seconds per 60,000-image epoch")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Krotov FC on MNIST-shaped data ({device.type})")
    fig.tight_layout()
    paths.append(plots_dir / f"scaling_krotov{suffix}.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, style in (("softhebb", "o-"), ("ghl", "s-"), ("backprop", "^--")):
        ax.plot(deephebb["x"], deephebb[name], style, label=name)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(deephebb["x"], [str(v) for v in deephebb["x"]])
    ax.set_xlabel("width multiplier (1 = 96/384/1536 channels)")
    ax.set_ylabel("seconds per step (batch 64, 32x32x3)")
    ax.set_title(f"DeepHebb ({device.type})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(plots_dir / f"scaling_deephebb{suffix}.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths


def replot(numbers: Path, plots_dir: Path, device: str = "cpu") -> List[Path]:
    """Redraw the plots from a JSON written by :func:`run` (``python -c "from benchmarks.scaling import replot; ..."``)."""
    data = json.loads(Path(numbers).read_text())
    return plot(data["krotov"], data["deephebb"], Path(plots_dir), torch.device(device))


def run(cfg: Config, plots_dir: Path) -> List[str]:
    """Run both sweeps, write the plots and a JSON of the numbers; return notes for the report."""
    krotov = krotov_sweep(cfg)
    deephebb = deephebb_sweep(cfg)
    paths = plot(krotov, deephebb, plots_dir, cfg.device)
    numbers = plots_dir / f"scaling_{cfg.device.type}.json"
    numbers.write_text(json.dumps({"krotov": krotov, "deephebb": deephebb}, indent=1))
    n = krotov_samples(cfg)
    subset = "full epochs" if n == MNIST_SHAPE[0] else f"Krotov points on {n}-sample subsets scaled to 60,000"
    return [f"scaling plots: {', '.join(str(p) for p in paths)} ({subset}; numbers in {numbers})"]
