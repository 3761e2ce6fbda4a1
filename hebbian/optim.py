"""Applying Hebbian updates with optimizers.

A rule's update :math:`\\Delta W` is written into ``weight.grad`` as :math:`-\\Delta W`, so that any ``torch.optim``
optimizer (with its schedulers, weight decay, momentum and checkpointable state) moves the weight *along*
:math:`\\Delta W`. :class:`Local` is the plain :math:`W \\leftarrow W + \\eta \\Delta W` of pytorch-hebbian.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

import torch
from torch import Tensor


def write_update(param: Tensor, delta: Tensor) -> None:
    """Store :math:`-\\Delta W` in ``param.grad`` (reusing its buffer), ready for ``optimizer.step()``."""
    if param.grad is None:
        param.grad = delta.detach().neg()
    else:
        torch.neg(delta.detach(), out=param.grad)


class Local(torch.optim.Optimizer):
    """The local-learning optimizer: :math:`W \\leftarrow W - \\eta\\,\\mathrm{grad} = W + \\eta \\Delta W`.

    Accepts parameters, parameter groups, or named parameters (``model.named_parameters()``), as pytorch-hebbian's
    ``Local`` did. Parameters without a ``.grad`` are left alone.

    Args:
        params: what to optimize.
        lr: learning rate (>= 0).
    """

    def __init__(self, params: Iterable[Any], lr: float = 0.01) -> None:
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr >= 0.0:
            raise ValueError(f"lr must be a non-negative number, got {lr!r}")
        super().__init__(params, {"lr": float(lr)})

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], float]] = None) -> Optional[float]:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            grads = [p for p in group["params"] if p.grad is not None]
            if grads:
                torch._foreach_add_(grads, [p.grad for p in grads], alpha=-group["lr"])
        return loss
