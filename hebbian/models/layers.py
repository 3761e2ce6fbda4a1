"""Activations and layers of the published Hebbian networks: RePU, Triangle and the p-metric linear layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hebbian.rules.krotov import PWeightCache


def _check_power(power: float) -> float:
    if isinstance(power, bool) or not isinstance(power, (int, float)) or not power > 0:
        raise ValueError(f"power must be a positive number, got {power!r}")
    return float(power)


class RePU(nn.Module):
    """Rectified power unit (Krotov & Hopfield): :math:`f(u) = \\max(u, 0)^n`; ``n = 1`` is the ReLU.

    Args:
        n: the power (> 0). pytorch-hebbian's default 1 (the PNAS classifier's value could not be verified here).

    Shape: any; element-wise.
    """

    def __init__(self, n: float = 1.0) -> None:
        super().__init__()
        self.n = _check_power(n)

    def forward(self, u: Tensor) -> Tensor:
        out = F.relu(u)
        return out if self.n == 1.0 else out.pow(self.n)

    def extra_repr(self) -> str:
        return f"n={self.n}"


class Triangle(nn.Module):
    """SoftHebb's Triangle activation: :math:`f(u)_k = \\mathrm{ReLU}(u_k - \\overline{u})^{power}`.

    :math:`\\overline{u}` is the mean over the channel axis (1) at every sample and position, computed on detached data
    (a constant for autograd), as in SoftHebb's ``activation.py``.

    Args:
        power: the exponent (> 0). DeepHebb: 0.7, 1.4, 1.0.

    Shape: ``(N, C, *)`` -> same.
    """

    def __init__(self, power: float = 1.0) -> None:
        super().__init__()
        self.power = _check_power(power)

    def forward(self, u: Tensor) -> Tensor:
        out = F.relu(u - u.detach().mean(dim=1, keepdim=True))
        return out if self.power == 1.0 else out.pow(self.power)

    def extra_repr(self) -> str:
        return f"power={self.power}"


class PMetricLinear(nn.Linear):
    """A ``Linear`` layer whose output is the Krotov-Hopfield p-metric current instead of the dot product.

    .. math:: I_k = \\sum_i \\mathrm{sign}(w_{ki})\\,|w_{ki}|^{p-1} x_i \\; (+ b_k)

    For ``p = 2`` this is the ordinary :math:`W x`. It is still an ``nn.Linear``, so Hebbian rules bind to it; the
    recorded output ``u`` is then the current :math:`I` (which is what the Krotov rule competes on anyway).

    Args:
        in_features, out_features, bias: as ``nn.Linear``.
        p: Lebesgue exponent (>= 1).

    Shape: ``(N, *, in_features)`` -> ``(N, *, out_features)``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, p: float = 2.0, **kwargs) -> None:
        super().__init__(in_features, out_features, bias=bias, **kwargs)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not p >= 1:
            raise ValueError(f"p must be a number >= 1, got {p!r}")
        self.p = float(p)

    @property
    def current_p(self) -> float:
        """The exponent of the current this layer outputs (rules read it to reuse the output as the current)."""
        return self.p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 2.0:
            w = self.weight
        elif torch.is_grad_enabled() and self.weight.requires_grad:
            w = self.weight.sign() * self.weight.abs().pow(self.p - 1.0)  # differentiable
        else:
            cache = self.__dict__.setdefault("_p_weight_cache", PWeightCache())  # recomputed when the weight changes
            w = cache(self.weight, self.p)
        return F.linear(x, w, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"


def scaled(channels: int, width: float) -> int:
    """A channel or unit count scaled by a width multiplier, rounded, at least 1."""
    return max(1, int(round(channels * width)))


__all__ = ["RePU", "Triangle", "PMetricLinear", "scaled"]
