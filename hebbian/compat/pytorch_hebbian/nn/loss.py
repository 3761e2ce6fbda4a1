"""pytorch-hebbian's ``SPELoss``: the loss of Krotov & Hopfield's supervised readout."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SPELoss", "spe_loss"]


def spe_loss(output: Tensor, target: Tensor, m: float = 1, beta: float = 0.1) -> Tensor:
    """:math:`\\sum_{n,c} |\\tanh(\\beta\\, o_{nc}) - t_{nc}|^m` with :math:`t_{nc} = +1` for the true class, else -1.

    Args:
        output: ``(N, C)`` scores.
        target: ``(N,)`` class indices in ``[0, C)``.
        m: the power (> 0).
        beta: the tanh slope (> 0).

    Returns:
        The sum over samples and classes (a 0-d tensor), as pytorch-hebbian returned it.
    """
    if output.dim() != 2:
        raise ValueError(f"output must have shape (N, C), got {tuple(output.shape)}")
    if target.dim() != 1 or target.shape[0] != output.shape[0]:
        raise ValueError(f"target must have shape ({output.shape[0]},), got {tuple(target.shape)}")
    signs = F.one_hot(target, num_classes=output.shape[1]).to(output.dtype) * 2 - 1
    return (torch.tanh(beta * output) - signs).abs().pow(m).sum()


class SPELoss(nn.Module):
    """:func:`spe_loss` as a module: ``SPELoss(m=1, beta=0.1)(output, target)``."""

    def __init__(self, m: float = 1, beta: float = 0.1) -> None:
        super().__init__()
        for name, value in (("m", m), ("beta", beta)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        self.m, self.beta = m, beta

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        return spe_loss(output, target, self.m, self.beta)

    def extra_repr(self) -> str:
        return f"m={self.m}, beta={self.beta}"
