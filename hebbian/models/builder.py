"""Building ``nn.Sequential`` networks that still work on tiny inputs (8x8 digits) and at reduced width."""

from __future__ import annotations

from collections import OrderedDict
from typing import Optional, Tuple, Union

import torch
from torch import nn

Size = Union[int, Tuple[int, int]]


def as_hw(input_size: Size) -> Tuple[int, int]:
    """``input_size`` as ``(H, W)``; raises ``ValueError`` for anything but positive integers."""
    hw = (input_size, input_size) if isinstance(input_size, int) and not isinstance(input_size, bool) else input_size
    if (not isinstance(hw, (tuple, list)) or len(hw) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in hw)):
        raise ValueError(f"input_size must be a positive integer or an (H, W) pair, got {input_size!r}")
    return int(hw[0]), int(hw[1])


def check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_width(width: float) -> float:
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ValueError(f"width must be a positive number (a width multiplier), got {width!r}")
    return float(width)


def check_dropout(dropout: float) -> float:
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
    return float(dropout)


class SequentialBuilder:
    """Collects named layers while tracking the feature-map shape, and fits kernels and pools to small maps.

    Guards (so that 8x8 inputs run through networks designed for 32x32):

    * a conv kernel larger than the padded map shrinks to the padded map's size;
    * reflect padding at least as wide as the map falls back to zero padding;
    * a pooling window larger than the padded map is left out (``nn.Identity``).
    """

    def __init__(self, in_channels: int, input_size: Size) -> None:
        self.in_channels = check_count("in_channels", in_channels)
        self.input_hw = as_hw(input_size)
        self.channels = in_channels
        self.hw = self.input_hw
        self.layers: "OrderedDict[str, nn.Module]" = OrderedDict()

    def add(self, name: str, module: nn.Module) -> nn.Module:
        if name in self.layers:
            raise ValueError(f"duplicate layer name {name!r}")
        self.layers[name] = module
        return module

    def conv(self, name: str, out_channels: int, kernel_size: int, padding: int = 0,
             padding_mode: str = "zeros", bias: bool = False) -> nn.Conv2d:
        if padding_mode != "zeros" and padding >= min(self.hw):
            padding_mode = "zeros"
        kernel = tuple(min(kernel_size, n + 2 * padding) for n in self.hw)
        conv = nn.Conv2d(self.channels, out_channels, kernel, padding=padding, padding_mode=padding_mode, bias=bias)
        self.channels = out_channels
        self.hw = tuple(n + 2 * padding - k + 1 for n, k in zip(self.hw, kernel))  # type: ignore[assignment]
        return self.add(name, conv)  # type: ignore[return-value]

    def pool(self, name: str, kind: str, kernel_size: int, stride: Optional[int] = None, padding: int = 0) -> nn.Module:
        stride = kernel_size if stride is None else stride
        if any(n + 2 * padding < kernel_size for n in self.hw):
            return self.add(name, nn.Identity())
        cls = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}[kind]
        self.hw = tuple((n + 2 * padding - kernel_size) // stride + 1 for n in self.hw)  # type: ignore[assignment]
        return self.add(name, cls(kernel_size, stride, padding))

    def flatten(self, name: str = "flatten") -> int:
        """Append ``nn.Flatten`` and return the flattened feature count, measured by a dummy forward pass."""
        features = nn.Sequential(OrderedDict(self.layers))
        was_training = features.training
        features.eval()
        with torch.no_grad():
            size = features(torch.zeros(1, self.in_channels, *self.input_hw)).numel()
        features.train(was_training)
        self.add(name, nn.Flatten())
        return size
