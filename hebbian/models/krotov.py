"""Krotov & Hopfield's fully connected network and pytorch-hebbian's 400-filter conv net."""

from __future__ import annotations

from typing import Any, Optional

from torch import nn

from hebbian.models.builder import SequentialBuilder, as_hw, check_count, check_width
from hebbian.models.layers import PMetricLinear, RePU, scaled
from hebbian.models.registry import HebbianNet, LayerRecipe, Recipe, register_model

READOUT_CURRENTS = ("dot", "p")

KROTOV_FC_RECIPES = {
    "krotov": Recipe(
        "krotov",
        {"linear1": LayerRecipe("krotov", {"p": 3.0, "k": 7, "delta": 0.4}, lr=0.04)},
        {"batch_size": 100, "epochs": 1000, "lr_schedule": "linear anneal to 0 (LambdaLR 1 - epoch/epochs)",
         "init": "N(0, 1)", "repu_n": 4.5},
        "pytorch-hebbian examples/params/mnist.json @ 595ec79 (S-PH); n = 4.5 is this project's RePU power for the "
        "top layer (the PNAS value could not be verified, docs/results.md)",
    ),
    "krotov_notebook": Recipe(
        "krotov_notebook",
        {"linear1": LayerRecipe("krotov", {"p": 2.0, "k": 2, "delta": 0.4}, lr=0.02)},
        {"batch_size": 100, "epochs": 200, "hidden": 100, "lr_schedule": "linear anneal to 0", "init": "N(0, 1)"},
        "DimaKrotov/Biological_Learning Unsupervised_learning_algorithm_MNIST.ipynb (S-KH)",
    ),
}


@register_model(
    "krotov_fc",
    description="Krotov-Hopfield: Flatten -> Linear(D, 2000, no bias) -> RePU(n) -> Linear(2000, classes).",
    hebbian_layers=("linear1",),
    recipes=KROTOV_FC_RECIPES,
    source="Krotov & Hopfield, PNAS 2019; pytorch-hebbian examples/models.py create_fc1_model",
)
def krotov_fc(
    *,
    in_channels: int = 1,
    input_size: Any = 28,
    num_classes: int = 10,
    width: float = 1.0,
    hidden: int = 2000,
    n: float = 1.0,
    readout_current: str = "dot",
    p: Optional[float] = None,
) -> HebbianNet:
    """Krotov & Hopfield's network: one Hebbian hidden layer of ``hidden`` units, a RePU and a linear readout.

    Children: ``flatten``, ``linear1`` (Hebbian, no bias, ``N(0, 1)`` init), ``repu``, ``linear2`` (readout).

    Args:
        hidden: hidden units before the width multiplier (2000 as published).
        n: RePU power (pytorch-hebbian default 1; krotov_mnist uses 4.5, the PNAS value is unverified).
        readout_current: ``"dot"``: the hidden layer computes :math:`W x`; ``"p"``: it computes the p-metric current
            :math:`\\sum_i \\mathrm{sign}(w_{ki})|w_{ki}|^{p-1} x_i` (a :class:`~hebbian.models.PMetricLinear`), as
            some re-implementations feed the classifier. The publications are ambiguous; both are offered.
        p: Lebesgue exponent of the p-metric current (default: the recipe's 3).
    """
    if readout_current not in READOUT_CURRENTS:
        raise ValueError(f"readout_current must be one of {READOUT_CURRENTS}, got {readout_current!r}")
    h, w = as_hw(input_size)
    features = check_count("in_channels", in_channels) * h * w
    units = scaled(check_count("hidden", hidden), check_width(width))
    if readout_current == "p":
        p = KROTOV_FC_RECIPES["krotov"].layers["linear1"].hyperparameters["p"] if p is None else p
        linear1: nn.Linear = PMetricLinear(features, units, bias=False, p=p)
    else:
        if p is not None:
            raise ValueError("p is only used with readout_current='p'")
        linear1 = nn.Linear(features, units, bias=False)
    nn.init.normal_(linear1.weight, 0.0, 1.0)
    net = HebbianNet()
    net.add_module("flatten", nn.Flatten())
    net.add_module("linear1", linear1)
    net.add_module("repu", RePU(n))
    net.add_module("linear2", nn.Linear(units, check_count("num_classes", num_classes)))
    return net


HEBBIAN_CONV_RECIPES = {
    "krotov": Recipe(
        "krotov",
        {"conv1": LayerRecipe("krotov", {"p": 4.0, "k": 4, "delta": 0.4}, lr=0.04)},
        {"batch_size": 2, "epochs": 100, "lr_schedule": "linear anneal to 0", "init": "N(0, 1)",
         "probe": {"optimizer": "Adam", "lr": 1e-3, "plateau": {"factor": 0.5, "patience": 5},
                   "early_stopping_patience": 15, "max_epochs": 500, "every_hebbian_epochs": 100},
         "published_accuracy": None},  # arXiv 2102.00428: figure not verified (docs/results.md)
        "pytorch-hebbian examples/params/mnist-fashion-conv.json, examples/hebbian.py (S-PH); arXiv 2102.00428",
    ),
}


@register_model(
    "hebbian_conv",
    description="pytorch-hebbian: Conv(C, 400, k5, no bias) -> BN -> RePU(1) -> MaxPool2 -> Flatten -> Linear.",
    hebbian_layers=("conv1",),
    recipes=HEBBIAN_CONV_RECIPES,
    source="pytorch-hebbian examples/models.py / examples/hebbian.py (400 Krotov-trained filters)",
)
def hebbian_conv(
    *,
    in_channels: int = 1,
    input_size: Any = 28,
    num_classes: int = 10,
    width: float = 1.0,
    filters: int = 400,
    kernel_size: int = 5,
    n: float = 1.0,
) -> HebbianNet:
    """pytorch-hebbian's conv net (400 Krotov-trained filters; its Fashion-MNIST figure is unverified, docs/results.md).

    Children: ``conv1`` (Hebbian, no bias, ``N(0, 1)`` init), ``bn1``, ``repu1``, ``pool1``, ``flatten``, ``linear1``
    (readout). On 28x28 inputs the readout has 400 * 12 * 12 = 57,600 inputs.
    """
    b = SequentialBuilder(in_channels, input_size)
    conv = b.conv("conv1", scaled(check_count("filters", filters), check_width(width)), check_count(
        "kernel_size", kernel_size))
    nn.init.normal_(conv.weight, 0.0, 1.0)
    b.add("bn1", nn.BatchNorm2d(b.channels))
    b.add("repu1", RePU(n))
    b.pool("pool1", "max", 2)
    features = b.flatten()
    b.add("linear1", nn.Linear(features, check_count("num_classes", num_classes)))
    return HebbianNet(b.layers)
