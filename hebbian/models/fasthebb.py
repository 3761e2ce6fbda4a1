"""FastHebb: Lagani's 6-layer network (96/128/192/256 conv, 4096 FC) in the version trained by GHL."""

from __future__ import annotations

from typing import Any

from torch import nn

from hebbian.models.builder import SequentialBuilder, check_count, check_dropout, check_width
from hebbian.models.layers import scaled
from hebbian.models.registry import HebbianNet, LayerRecipe, Recipe, register_model

#: (channels, kernel, max-pool after the ReLU)
FASTHEBB_CONVS = ((96, 5, True), (128, 3, False), (192, 3, True), (256, 3, False))
FASTHEBB_HIDDEN = 4096
CONV_NAMES = tuple(f"conv{i}" for i in range(1, len(FASTHEBB_CONVS) + 1))

_LAGANI = {"epochs": 20, "batch_size": 64, "optimizer": "SGD, momentum 0, L2 0",
           "probe": {"optimizer": "SGD", "lr": 1e-3, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
                     "epochs": 20, "dropout": 0.5}}

FASTHEBB_RECIPES = {
    "ghl": Recipe(
        "ghl",
        {name: LayerRecipe("ghl", {"t_inv": 1.0}, lr=5e-2, weight_decay=1e-2) for name in CONV_NAMES},
        {"lr_conv": 5e-2, "wd_conv": 1e-2, "lr": 1e-4, "momentum": 0.0, "epochs": 100, "batch_size": 64,
         "lr_schedule": "cosine to 0 per iteration over all epochs", "init": "kaiming_normal_ fan_in relu",
         "normalize": {"mean": 0.5, "std": 0.5}, "published_accuracy": {"cifar10": 0.8396, "cifar100": 0.5723}},
        "huawjcn/GHL FastHebb.py, train.py, README (S-GHL); fc5/bn5/fc6 are trained by backprop (group B)",
    ),
    "hpca": Recipe(
        "hpca",
        {name: LayerRecipe("hpca", {}, lr=1e-2) for name in CONV_NAMES + ("fc5",)},
        {**_LAGANI, "published_accuracy": {"cifar10": 0.6773, "cifar100": 0.3747}},
        "GabrieleLagani/HebbianLearning configs/vision (S-LHL); accuracies as re-run by GHL (HPCA-FH)",
    ),
    "swta": Recipe(
        "swta",
        {name: LayerRecipe("swta", {"competition": "exp", "temperature": 0.02}, lr=1e-2)
         for name in CONV_NAMES + ("fc5",)},
        {**_LAGANI, "input_whitening": "ZCA, smoothing 1e-2", "published_accuracy": {"cifar10": 0.5523,
                                                                                     "cifar100": 0.2104}},
        "GabrieleLagani/HebbianLearning configs/vision (S-LHL); accuracies as re-run by GHL (SWTA-FH)",
    ),
}


@register_model(
    "fasthebb",
    description="FastHebb (GHL version): 4 conv blocks 96/128/192/256 -> fc5 4096 + BN1d + dropout -> fc6.",
    hebbian_layers=CONV_NAMES,
    recipes=FASTHEBB_RECIPES,
    source="Lagani et al., SISAP 2022 (model_6l.py); Hua et al., ICASSP 2026 (GHL's FastHebb.py)",
)
def fasthebb(
    *,
    in_channels: int = 3,
    input_size: Any = 32,
    num_classes: int = 10,
    width: float = 1.0,
    hidden: int = FASTHEBB_HIDDEN,
    dropout: float = 0.5,
) -> HebbianNet:
    """The 6-layer FastHebb network as GHL trains it.

    Blocks: ``conv{i}`` (no bias, no padding, Kaiming init) -> ``relu{i}`` [-> ``pool{i}``, max 2] -> ``bn{i}``
    (BatchNorm2d, affine=False), for 96 (k5, pool), 128 (k3), 192 (k3, pool), 256 (k3) channels; then ``flatten``,
    ``fc5`` (Linear to 4096) -> ``relu5`` -> ``bn5`` (BatchNorm1d, affine) -> ``dropout5`` -> ``fc6`` (readout).
    On 32x32 inputs the conv stack ends at 256x3x3 (2,304 features).

    Args:
        hidden: units of ``fc5`` before the width multiplier.
        dropout: dropout probability after ``bn5``.
    """
    dropout = check_dropout(dropout)
    width = check_width(width)
    b = SequentialBuilder(in_channels, input_size)
    for i, (channels, kernel, pool) in enumerate(FASTHEBB_CONVS, 1):
        conv = b.conv(f"conv{i}", scaled(channels, width), kernel)
        nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
        b.add(f"relu{i}", nn.ReLU())
        if pool:
            b.pool(f"pool{i}", "max", 2)
        b.add(f"bn{i}", nn.BatchNorm2d(b.channels, affine=False))
    features = b.flatten()
    units = scaled(check_count("hidden", hidden), width)
    b.add("fc5", nn.Linear(features, units))
    b.add("relu5", nn.ReLU())
    b.add("bn5", nn.BatchNorm1d(units))
    b.add("dropout5", nn.Dropout(dropout))
    b.add("fc6", nn.Linear(units, check_count("num_classes", num_classes)))
    return HebbianNet(b.layers, default_recipe="ghl")
