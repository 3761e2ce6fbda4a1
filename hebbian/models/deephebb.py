"""DeepHebb: SoftHebb's 3-layer CIFAR-10 network (96/384/1536 channels), and its GHL variant."""

from __future__ import annotations

from typing import Any

from torch import nn

from hebbian.models.builder import SequentialBuilder, check_count, check_dropout, check_width
from hebbian.models.layers import Triangle, scaled
from hebbian.models.registry import HebbianNet, LayerRecipe, Recipe, register_model
from hebbian.rules.softhebb import softhebb_init_

VARIANTS = ("softhebb", "ghl")

#: (channels, kernel, padding, t_inv, SoftHebb eta0, Triangle power, pool kind, pool kernel, stride, padding)
DEEPHEBB_BLOCKS = (
    (96, 5, 2, 1.0, 0.08, 0.7, "max", 4, 2, 1),
    (384, 3, 1, 0.65, 0.005, 1.4, "max", 4, 2, 1),
    (1536, 3, 1, 0.25, 0.01, 1.0, "avg", 2, 2, 0),
)

DEEPHEBB_RECIPES = {
    "softhebb": Recipe(
        "softhebb",
        {f"conv{i}": LayerRecipe("softhebb", {"t_inv": t, "q": 0.5}, lr=eta)
         for i, (_, _, _, t, eta, *_rest) in enumerate(DEEPHEBB_BLOCKS, 1)},
        {"epochs": 1, "batch_size": 10, "init": "softhebb_init_ radius 25", "optimizer": "SGD (W += eta0 r_k D)",
         "probe": {"optimizer": "Adam", "lr": 1e-3, "batch_size": 64, "epochs": 50, "dropout": 0.5,
                   "lr_halved_at": (0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9)},
         "published_accuracy": {"cifar10": 0.803, "mnist": 0.994}},
        "SoftHebb presets.json 4SoftHebbCnnCIFAR, demo.py (S-SH); ICLR 2023",
    ),
    "ghl": Recipe(
        "ghl",
        {f"conv{i}": LayerRecipe("ghl", {"t_inv": t}, lr=1e-2, weight_decay=5e-2)
         for i, (_, _, _, t, *_rest) in enumerate(DEEPHEBB_BLOCKS, 1)},
        {"lr_conv": 1e-2, "wd_conv": 5e-2, "lr": 5e-3, "momentum": 0.0, "epochs": 100, "batch_size": 64,
         "lr_schedule": "cosine to 0 per iteration over all epochs", "init": "kaiming_normal_ fan_in relu",
         "normalize": {"mean": 0.5, "std": 0.5}, "published_accuracy": {"cifar10": 0.8641, "cifar100": 0.6240}},
        "huawjcn/GHL DeepHebb.py, train.py, README (S-GHL); ICASSP 2026",
    ),
}


@register_model(
    "deephebb",
    description="SoftHebb's DeepHebb: 3 x [BN(affine=False) -> conv -> Triangle -> pool], 96/384/1536, dropout head.",
    hebbian_layers=("conv1", "conv2", "conv3"),
    recipes=DEEPHEBB_RECIPES,
    source="Journé et al., ICLR 2023 (SoftHebb); Hua et al., ICASSP 2026 (GHL's version)",
)
def deephebb(
    *,
    in_channels: int = 3,
    input_size: Any = 32,
    num_classes: int = 10,
    width: float = 1.0,
    variant: str = "softhebb",
    dropout: float = 0.5,
) -> HebbianNet:
    """DeepHebb, as in SoftHebb's ``4SoftHebbCnnCIFAR`` preset or GHL's ``DeepHebb.py``.

    Block ``i`` (i = 1, 2, 3) is ``bn{i}`` (BatchNorm2d, affine=False) -> ``conv{i}`` (no bias) -> ``act{i}`` ->
    ``pool{i}``; then ``flatten``, ``dropout`` and the readout ``classifier``. On 32x32 inputs the maps are
    96x16x16, 384x8x8 and 1536x4x4 (24,576 features).

    * ``variant="softhebb"``: Triangle activations (powers 0.7, 1.4, 1.0), reflect padding, SoftHebb's radius-25
      Gaussian init (:func:`~hebbian.rules.softhebb_init_`).
    * ``variant="ghl"``: ReLU, zero padding, Kaiming-normal init (fan_in, ReLU gain).

    Args:
        variant: ``"softhebb"`` or ``"ghl"``; also selects the default recipe.
        dropout: dropout probability before the readout (0.5 as published).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    dropout = check_dropout(dropout)
    width = check_width(width)
    b = SequentialBuilder(in_channels, input_size)
    for i, (channels, kernel, pad, _, _, power, pool, pk, ps, pp) in enumerate(DEEPHEBB_BLOCKS, 1):
        b.add(f"bn{i}", nn.BatchNorm2d(b.channels, affine=False))
        mode = "reflect" if variant == "softhebb" else "zeros"
        conv = b.conv(f"conv{i}", scaled(channels, width), kernel, padding=pad, padding_mode=mode)
        if variant == "softhebb":
            softhebb_init_(conv.weight, radius=25.0)
            b.add(f"act{i}", Triangle(power))
        else:
            nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
            b.add(f"act{i}", nn.ReLU())
        b.pool(f"pool{i}", pool, pk, ps, pp)
    features = b.flatten()
    b.add("dropout", nn.Dropout(dropout))
    b.add("classifier", nn.Linear(features, check_count("num_classes", num_classes)))
    return HebbianNet(b.layers, default_recipe=variant)
