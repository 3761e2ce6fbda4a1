"""Applying Hebbian updates with optimizers.

A rule's update :math:`\\Delta W` is written into ``weight.grad`` as :math:`-\\Delta W`, so that any ``torch.optim``
optimizer (with its schedulers, weight decay, momentum and checkpointable state) moves the weight *along*
:math:`\\Delta W`. :class:`Local` is the plain :math:`W \\leftarrow W + \\eta \\Delta W` of pytorch-hebbian.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

import torch
from torch import Tensor

from hebbian.rules.buffers import nonzero_rows, note_nonzero_rows, note_row_write, noted_rows


def write_update(param: Tensor, delta: Tensor, rows: Optional[Tensor] = None) -> None:
    """Store :math:`-\\Delta W` in ``param.grad`` (reusing its buffer), ready for ``optimizer.step()``.

    ``rows`` (unique indices of the first dimension, e.g. :meth:`~hebbian.rules.LearningRule.support`) says that
    ``delta`` is zero outside them: then only those rows and the rows of the previous such write are touched, and
    the gradient notes its rows, so that :class:`Local` steps only them. The gradient holds the same values either way.
    """
    delta = delta.detach()
    grad = param.grad
    if grad is None or grad.shape != delta.shape or grad.dtype != delta.dtype or grad.device != delta.device:
        param.grad = grad = torch.empty_like(param, memory_format=torch.contiguous_format)
        rows = None  # a fresh buffer is written whole
    if rows is None or not grad.is_contiguous():
        torch.neg(delta, out=grad)
        return
    before = nonzero_rows(grad)
    if before is None:
        grad.zero_()
    else:
        grad.index_fill_(0, before, 0)  # only these rows held non-zeros
    part = noted_rows(delta, rows).neg()
    grad.index_copy_(0, rows, part)
    note_nonzero_rows(grad, rows, part)


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
            dense = []
            for p in group["params"]:
                if p.grad is None:
                    continue
                rows = nonzero_rows(p.grad)
                if rows is None:
                    dense.append(p)
                else:  # a row-sparse update (write_update with rows): step those rows only, and say so (with
                    # the stepped rows' values, which the NaN guard and the p-metric weights cache read next)
                    before = p._version
                    stepped = p.detach().index_select(0, rows).add_(noted_rows(p.grad, rows), alpha=-group["lr"])
                    p.index_copy_(0, rows, stepped)
                    note_row_write(p, before, rows, stepped)
            if dense:
                torch._foreach_add_(dense, [p.grad for p in dense], alpha=-group["lr"])
        return loss
