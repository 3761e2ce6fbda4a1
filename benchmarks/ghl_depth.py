"""GHL with depth: a GHL step against a backprop step on He et al.'s CIFAR ResNets (20, 56, 110 and 1202 layers).

GHL's paper claims it scales to very deep networks (ResNet-1202). Per depth, on 32x32 random inputs, one batch size
for every depth (so that only the depth changes):

* **time**: :class:`~hebbian.trainers.GHLTrainer` (every conv Hebbian, ``GHL()``, SGD on
  :func:`~hebbian.trainers.ghl.ghl_param_groups`) against Ignite's ``create_supervised_trainer`` on a copy of the same
  model, interleaved, one step per repetition (:func:`benchmarks.ghl.engines_for`);
* **peak memory**: the peak extra resident memory of two steps in a fresh process (:func:`benchmarks.timing.
  peak_rss_delta`), after a warm-up step whose leftovers (gradients, GHL's last updates) were released: the second
  step runs beside what the first keeps alive, as in training, so that counts too; on CUDA
  ``torch.cuda.max_memory_allocated`` beyond the model;
* **growth**: the deepest model's time ratio over the shallowest one's (target: no growth beyond the run's noise).
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch
from torch import nn

from benchmarks.ghl import batches, engines_for, runner
from benchmarks.report import Config, Row, time_row
from benchmarks.timing import cuda_peak_delta, interleaved, peak_rss_delta
from hebbian.models import create_model

#: He et al.'s depths (ResNet-20, -56, -110, -1202); the quick smoke run uses the two smallest
DEPTHS = (20, 56, 110, 1202)
QUICK_DEPTHS = (20, 56)
#: GHL's DeepHebb rates (lr_conv, wd_conv, lr): the values do not change the cost
RATES = (1e-2, 5e-2, 5e-3)
#: targets of issue 21: peak memory at most 1.15x backprop's; the time ratio no more than 10% higher at 1202 layers
MEMORY_TARGET = 1.15
GROWTH_TARGET = 1.10


def sizes(cfg: Config) -> Tuple[Tuple[int, ...], int, float]:
    """(depths, batch size, width) of a run."""
    if cfg.quick:
        return QUICK_DEPTHS, 2, 0.25
    return DEPTHS, 8, 1.0


def model(depth: int, width: float, device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    return create_model("resnet_cifar", depth=depth, in_channels=3, input_size=32, width=width).to(device)


def conv_names(net: nn.Module) -> List[str]:
    """The names of every convolution of ``net`` (what GHL must bind)."""
    return [n for n, m in net.named_modules() if isinstance(m, nn.modules.conv._ConvNd)]


def release(ghl, bp) -> None:
    """Drop what a step leaves alive (gradients, GHL's last updates), as before the first step."""
    ghl.model.zero_grad(set_to_none=True)
    bp.model.zero_grad(set_to_none=True)
    ghl.state.hebbian_updates = None


_SETUP = """
import torch
from benchmarks.ghl import batches, engines_for
from benchmarks.ghl_depth import model, release, RATES
torch.set_num_threads({threads})
ghl, bp = engines_for(model({depth}, {width}, torch.device("cpu")), RATES)
engine = {{"ghl": ghl, "backprop": bp}}[{variant!r}]
data = batches(1, {batch}, torch.device("cpu"))
engine.run(data, max_epochs=1)
release(ghl, bp)
"""


def cpu_peak(variant: str, depth: int, width: float, batch: int) -> int:
    """Peak extra RSS (bytes) of two steps of ``variant`` (``ghl`` or ``backprop``) in a fresh process: the second
    step runs beside what the first left alive, as every step of a training run does."""
    setup = _SETUP.format(threads=torch.get_num_threads(), depth=depth, width=width, batch=batch, variant=variant)
    return peak_rss_delta("engine.run(data * 2, max_epochs=1)", setup, timeout=1800.0)


def peaks(cfg: Config, depth: int, width: float, batch: int) -> Tuple[Dict[str, float], str]:
    """``{"ghl": bytes, "backprop": bytes}`` of one step at ``depth`` and how they were measured."""
    if not cfg.is_cuda:
        return ({v: float(cpu_peak(v, depth, width, batch)) for v in ("ghl", "backprop")},
                "VmHWM delta of two steps in a fresh process")
    out = {}
    for variant in ("ghl", "backprop"):
        ghl, bp = engines_for(model(depth, width, cfg.device), RATES)
        engine, data = (ghl if variant == "ghl" else bp), batches(1, batch, cfg.device)
        engine.run(data, max_epochs=1)
        release(ghl, bp)
        out[variant] = float(cuda_peak_delta(lambda: engine.run(data * 2, max_epochs=1), cfg.device))
        del ghl, bp, engine
    return out, "torch.cuda.max_memory_allocated delta of two steps"


def depth_rows(cfg: Config, depth: int, width: float, batch: int) -> Tuple[List[Row], float]:
    """The time and memory rows of one depth, and its time ratio."""
    ghl, bp = engines_for(model(depth, width, cfg.device), RATES)
    bound = {b.name for b in ghl.bindings}
    if bound != set(conv_names(ghl.model)):
        raise AssertionError(f"GHL binds {len(bound)} layers of ResNet-{depth}, not its {len(conv_names(ghl.model))} "
                             "convs")
    data = batches(1, batch, cfg.device)
    t = interleaved({"ghl": runner(ghl, data), "backprop": runner(bp, data)}, cfg.device, reps=cfg.reps)
    del ghl, bp
    what = f"ResNet-{depth}: {len(bound)} Hebbian convs, width {width}, batch {batch}, 32x32 random, 1 step"
    mem, how = peaks(cfg, depth, width, batch)
    rows = [time_row(f"GHL step vs backprop (ResNet-{depth})", t, "ghl", "backprop", None, what),
            Row(f"GHL peak memory vs backprop (ResNet-{depth})", mem["ghl"], mem["backprop"], "backprop",
                MEMORY_TARGET, kind="memory", note=how)]
    return rows, t.ratio("ghl", "backprop")


def run(cfg: Config) -> List[Row]:
    depths, batch, width = sizes(cfg)
    rows: List[Row] = []
    ratios: Dict[int, float] = {}
    for depth in depths:
        depth_rows_, ratios[depth] = depth_rows(cfg, depth, width, batch)
        rows.extend(depth_rows_)
    first, last = depths[0], depths[-1]
    rows.append(Row(f"GHL time ratio growth, ResNet-{last} vs ResNet-{first}", ratios[last], ratios[first],
                    f"ResNet-{first}", GROWTH_TARGET, kind="ratio",
                    note="the deeper net's GHL/backprop time ratio over the shallower one's"))
    return rows
