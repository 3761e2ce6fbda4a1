"""GHL step against the plain backprop step, same model and batch (random CIFAR-shaped inputs, batch 64).

* **ghl**: :class:`~hebbian.trainers.GHLTrainer` with the model's GHL recipe (``model.default_rules()``, SGD on
  :func:`~hebbian.trainers.ghl.ghl_param_groups`): forward with capture, the Hebbian statistics of every conv
  layer, backward, sign combination, step. The ViT (no published recipe) has every ``Linear``/``Conv`` of its body
  and the packed q/k/v projections Hebbian (``GHL()``, ``hebbian_layers="conv+linear"``), captured by weight.
* **backprop**: Ignite's ``create_supervised_trainer`` with the same optimizer groups and cross-entropy.
* **kernel floor**: the backprop step plus the Hebbian correlations alone (:meth:`LayerView.correlate` of every
  recorded use of every Hebbian weight, with a post-synaptic factor of ``u``'s shape and layout), each repetition's
  two times added. GHL needs at least these two products, so no implementation built on the same PyTorch kernels
  can be faster; the issue's FLOP bound (docs/performance.md) assumes the correlation runs as fast per FLOP as the
  forward convolution, which the weight-gradient kernels do not on every CPU.

Both engines run ``steps`` iterations over the same batch per repetition (Ignite overhead included for both).
"""

from __future__ import annotations

import copy
from typing import Callable, Dict, List, Tuple

import torch
from ignite.engine import Engine, create_supervised_trainer
from torch import nn

from benchmarks.report import Config, Row, time_row
from benchmarks.timing import Timings, interleaved
from hebbian.models import create_model
from hebbian.rules import GHL
from hebbian.rules.layers import post_synaptic_format
from hebbian.trainers.capture import LayerCapture
from hebbian.trainers.ghl import GHLTrainer, ghl_param_groups, select_hebbian_layers

#: model name -> (create_model kwargs, (lr_conv, wd_conv, lr)) as in GHL's README (the ViT's rates as DeepHebb's)
MODELS: Dict[str, Tuple[dict, Tuple[float, float, float]]] = {
    "deephebb": ({"variant": "ghl"}, (1e-2, 5e-2, 5e-3)),
    "fasthebb": ({}, (5e-2, 1e-2, 1e-4)),
    # ViT-Ti/4 with 6 layers: 64 patches + class token, 192 features, 3 heads, MLP 768
    "vit": ({"patch_size": 4, "num_layers": 6, "num_heads": 3, "hidden_dim": 192, "mlp_dim": 768}, (1e-2, 5e-2, 5e-3)),
}


#: issue 11's target: by FLOP count the Hebbian correlation adds about a third to backprop (docs/performance.md)
TARGET = 1.35


def _optimizer(model: nn.Module, names: List[str], rates: Tuple[float, float, float]) -> torch.optim.Optimizer:
    lr_conv, wd_conv, lr = rates
    return torch.optim.SGD(ghl_param_groups(model, names, lr_conv, wd_conv, lr), lr=lr, momentum=0.0)


def engines(name: str, width: float, device: torch.device) -> Tuple[Engine, Engine]:
    """(GHL trainer, backprop trainer) on two copies of the same freshly initialised model."""
    kwargs, rates = MODELS[name]
    torch.manual_seed(0)
    model = create_model(name, in_channels=3, input_size=32, width=width, **kwargs).to(device)
    return engines_for(model, rates)


def engines_for(model: nn.Module, rates: Tuple[float, float, float]) -> Tuple[Engine, Engine]:
    """(GHL trainer, backprop trainer) on ``model`` and a copy of it, on the model's device: the model's GHL recipe
    (else every Linear/Conv of its body Hebbian), SGD groups with ``rates = (lr_conv, wd_conv, lr)``."""
    device = next(model.parameters()).device
    bp_model = copy.deepcopy(model)
    rules = model.default_rules()
    if not rules:  # no published recipe: every Linear/Conv weight of the body and the attention projections
        rules = {n: GHL() for n in select_hebbian_layers(model, "conv+linear")}
    names = list(rules)
    ghl = GHLTrainer(model, rules, _optimizer(model, names, rates), device=device)
    bp = create_supervised_trainer(bp_model, _optimizer(bp_model, names, rates), nn.CrossEntropyLoss(), device=device)
    bp.model = bp_model  # as GHLTrainer.model: both engines name the model they train
    return ghl, bp


def batches(steps: int, batch_size: int, device: torch.device) -> list:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 3, 32, 32, generator=g).to(device)
    y = torch.randint(0, 10, (batch_size,), generator=g).to(device)
    return [(x, y)] * steps


def runner(engine: Engine, data: list) -> Callable[[], None]:
    return lambda: engine.run(data, max_epochs=1)


def correlations(trainer: GHLTrainer, x: torch.Tensor) -> Callable[[], None]:
    """The Hebbian correlations of one batch alone: ``correlate(x, y)`` for every recorded use of every Hebbian weight,
    with ``y`` shaped and laid out as the rules' post-synaptic factors (the values do not change the cost)."""
    capture = LayerCapture(trainer.bindings)
    try:
        with torch.no_grad(), capture.record({b.name for b in trainer.bindings}) as records:
            trainer.model(x)
        work = []
        for b in trainer.bindings:
            for use in records[b.name]:
                view = b.view.for_call(use.geometry, use.bias, use.exact)
                px, u = view.prepare(use.x, use.u)
                work.append((view, px, u.contiguous(memory_format=post_synaptic_format(u))))
    finally:
        capture.remove()
    return lambda: [view.correlate(px, y) for view, px, y in work]


def with_floor(t: Timings) -> Timings:
    """Adds the variant ``floor``: each repetition's backprop time plus its correlations time."""
    t.runs["floor"] = [a + b for a, b in zip(t.runs["backprop"], t.runs["correlations"])]
    return t


def kernel_row(cfg: Config, width: float, batch: int) -> Row:
    """DeepHebb conv3's weight-gradient product (as GHL's correlation and backprop's dL/dW run it) against its forward
    convolution: the same FLOPs, so a ratio above 1 is what the FLOP-count bound does not see."""
    model = create_model("deephebb", variant="ghl", in_channels=3, input_size=32, width=width).to(cfg.device)
    conv = model.conv3
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, conv.in_channels, 8, 8, generator=g).to(cfg.device)
    y = torch.randn(batch, conv.out_channels, 8, 8, generator=g).to(cfg.device)
    if cfg.device.type == "cpu":
        x, y = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)
    weight = conv.weight.detach()
    t = interleaved({
        "weight gradient": lambda: torch.nn.grad.conv2d_weight(x, weight.shape, y, padding=conv.padding),
        "forward": lambda: torch.nn.functional.conv2d(x, weight, padding=conv.padding),
    }, cfg.device, reps=cfg.reps)
    return time_row("Conv weight-gradient kernel vs forward (deephebb conv3)", t, "weight gradient", "forward", None,
                    f"{conv.in_channels} -> {conv.out_channels}, 3x3, 8x8, batch {batch}: the same FLOPs")


def run(cfg: Config) -> List[Row]:
    width = 0.05 if cfg.quick else 1.0
    batch = 8 if cfg.quick else 64
    steps = 20 if cfg.is_cuda else 1
    data = batches(steps, batch, cfg.device)
    rows = [kernel_row(cfg, width, batch)]
    for name in MODELS:
        ghl, bp = engines(name, width, cfg.device)
        corr = correlations(ghl, data[0][0])
        t = with_floor(interleaved({"ghl": runner(ghl, data), "backprop": runner(bp, data),
                                    "correlations": lambda: [corr() for _ in range(steps)]}, cfg.device, reps=cfg.reps))
        what = f"width {width}, batch {batch}, 32x32 random, {steps} step(s) per repetition"
        rows.append(time_row(f"GHL step vs backprop ({name})", t, "ghl", "backprop", TARGET, what))
        rows.append(time_row(f"GHL kernel floor vs backprop ({name})", t, "floor", "backprop", None,
                             "backprop + the Hebbian correlations alone, same kernels"))
        rows.append(time_row(f"GHL step vs kernel floor ({name})", t, "ghl", "floor", None,
                             "the rest: soft-WTA, sign combination, capture"))
    return rows
