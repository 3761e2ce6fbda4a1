"""A layer with learned lateral (anti-Hebbian) connections between its units: Földiák's (1990) network.

The layer holds three learned tensors: the feed-forward weight ``weight`` (Földiák's :math:`q`, an ``nn.Parameter``
that rules update through the optimizer like any ``nn.Linear`` weight), the lateral weights ``lateral``
(:math:`w_{ij}`, the connection from unit ``j`` to unit ``i``, a buffer) and the thresholds ``threshold``
(:math:`t_i`, a buffer). Its response is found by settling the lateral dynamics (:func:`settle`); the ``foldiak``
rule (:class:`hebbian.rules.foldiak.Foldiak`) learns all three. Buffers are saved with the model's ``state_dict``,
so checkpoints and resumes carry them.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hebbian.models.builder import as_hw, check_count, check_width
from hebbian.models.layers import scaled
from hebbian.models.registry import HebbianNet, LayerRecipe, Recipe, register_model

LATERAL_OUTPUTS = ("binary", "rate")


def settle(drive: Tensor, lateral: Tensor, threshold: Tensor, gain: float, steps: int, rate: float) -> Tensor:
    """Settle Földiák's lateral dynamics from :math:`y^* = 0` by ``steps`` Euler steps of size ``rate``.

    .. math::
        \\frac{dy^*_i}{dt} = f\\Big(\\sum_j q_{ij} x_j + \\sum_j w_{ij} y^*_j - t_i\\Big) - y^*_i,
        \\qquad f(v) = \\frac{1}{1 + e^{-\\lambda v}}

        y^*_{s+1} = y^*_s + r\\,\\big(f(\\text{drive} + y^*_s W^\\top - t) - y^*_s\\big),
        \\quad s = 0 .. \\text{steps}-1

    Args:
        drive: the feed-forward drive :math:`q x`, ``(..., M)``.
        lateral: :math:`W`, ``(M, M)`` (row ``i``: the connections into unit ``i``).
        threshold: :math:`t`, ``(M,)``.
        gain: the sigmoid's slope :math:`\\lambda`.
        steps: number of Euler steps (a fixed number, so the whole batch settles as tensor operations).
        rate: Euler step size :math:`r` in (0, 1].

    Returns:
        :math:`y^*` with ``drive``'s shape, values in (0, 1).
    """
    flat = drive.reshape(-1, drive.shape[-1])
    bias = flat - threshold
    y = torch.zeros_like(flat)
    for _ in range(steps):
        target = torch.sigmoid(torch.addmm(bias, y, lateral.t()).mul(gain))
        y = y + rate * (target - y)
    return y.reshape(drive.shape)


class FoldiakLayer(nn.Linear):
    """Földiák's (1990) layer: Hebbian feed-forward weights, anti-Hebbian lateral weights, adaptive thresholds.

    The forward pass computes the drive :math:`q x` (no bias: the thresholds play its part), settles the lateral
    dynamics (:func:`settle`) and returns Földiák's binary output :math:`y_i = [y^*_i > 1/2]` (``output="binary"``)
    or the settled rates :math:`y^*` (``output="rate"``). It is an ``nn.Linear``, so rules bind to it and trainers
    capture its input and output like any layer's; the ``foldiak`` rule reads the binary :math:`y` from either. The
    binary output passes no gradient: to backpropagate through the layer (e.g. a supervised head), use ``"rate"``.

    Args:
        in_features, out_features: as ``nn.Linear``.
        gain: the sigmoid's slope :math:`\\lambda` (> 0; 10 in the paper).
        steps: Euler steps of the settling (>= 1).
        rate: Euler step size (0 < rate <= 1).
        output: ``"binary"`` (the paper's output) or ``"rate"``.

    Buffers: ``lateral`` ``(M, M)`` (zero diagonal, entries <= 0 once learned; starts at 0), ``threshold`` ``(M,)``
    (starts at 0).

    Shape: ``(N, *, in_features)`` -> ``(N, *, out_features)``.
    """

    def __init__(self, in_features: int, out_features: int, *, gain: float = 10.0, steps: int = 30,
                 rate: float = 0.2, output: str = "binary", device=None, dtype=None) -> None:
        super().__init__(in_features, out_features, bias=False, device=device, dtype=dtype)
        if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not gain > 0:
            raise ValueError(f"gain must be a positive number, got {gain!r}")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1:
            raise ValueError(f"rate must be a number in (0, 1], got {rate!r}")
        if output not in LATERAL_OUTPUTS:
            raise ValueError(f"output must be one of {LATERAL_OUTPUTS}, got {output!r}")
        self.gain, self.steps, self.rate, self.output = float(gain), steps, float(rate), output
        factory = {"device": device, "dtype": dtype}
        self.register_buffer("lateral", torch.zeros(out_features, out_features, **factory))
        self.register_buffer("threshold", torch.zeros(out_features, **factory))

    def settled(self, x: Tensor) -> Tensor:
        """The settled rates :math:`y^*` for input ``x``."""
        drive = F.linear(x, self.weight)
        return settle(drive, self.lateral.to(drive.dtype), self.threshold.to(drive.dtype), self.gain, self.steps,
                      self.rate)

    def forward(self, x: Tensor) -> Tensor:
        y = self.settled(x)
        return (y > 0.5).to(y.dtype) if self.output == "binary" else y

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, gain={self.gain}, "
                f"steps={self.steps}, rate={self.rate}, output={self.output!r}")


FOLDIAK_FC_RECIPES = {
    "foldiak": Recipe(
        "foldiak",
        {"lateral1": LayerRecipe("foldiak", {"alpha": 0.1, "gamma": 0.02, "p": 0.125}, lr=0.02)},
        {"batch_size": 1, "init": "random, unit-norm rows", "gain": 10.0, "units": 16},
        "Földiák, Biol. Cybern. 64:165-170 (1990): alpha = 0.1, beta = 0.02, gamma = 0.02, lambda = 10, p = 1/8, "
        "one pattern at a time",
    ),
}


@register_model(
    "foldiak_fc",
    description="Földiák 1990: Flatten -> FoldiakLayer(D, 2000; lateral weights, thresholds) -> Linear(2000, "
                "classes).",
    hebbian_layers=("lateral1",),
    recipes=FOLDIAK_FC_RECIPES,
    source="Földiák, Forming sparse representations by local anti-Hebbian learning, Biol. Cybern. 64 (1990)",
)
def foldiak_fc(
    *,
    in_channels: int = 1,
    input_size: Any = 28,
    num_classes: int = 10,
    width: float = 1.0,
    hidden: int = 2000,
    gain: float = 10.0,
    steps: int = 30,
    rate: float = 0.2,
    output: str = "binary",
) -> HebbianNet:
    """Földiák's network with a linear readout: one :class:`FoldiakLayer` of ``hidden`` units (times ``width``).

    Children: ``flatten``, ``lateral1`` (Hebbian feed-forward, lateral weights and thresholds; ``N(0, 1)`` init),
    ``linear1`` (readout). ``gain``, ``steps``, ``rate`` and ``output`` are the layer's (see :class:`FoldiakLayer`).
    """
    h, w = as_hw(input_size)
    features = check_count("in_channels", in_channels) * h * w
    units = scaled(check_count("hidden", hidden), check_width(width))
    layer = FoldiakLayer(features, units, gain=gain, steps=steps, rate=rate, output=output)
    nn.init.normal_(layer.weight, 0.0, 1.0)
    net = HebbianNet()
    net.add_module("flatten", nn.Flatten())
    net.add_module("lateral1", layer)
    net.add_module("linear1", nn.Linear(units, check_count("num_classes", num_classes)))
    return net


__all__ = ["FoldiakLayer", "settle", "foldiak_fc", "LATERAL_OUTPUTS"]
