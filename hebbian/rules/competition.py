"""Competition between the neurons of a layer, computed independently at every (sample, position).

Pure functions on ``u``-shaped tensors (neuron axis 1): ``(S, M)`` for ``Linear``, ``(N, M, OH, OW)`` for ``Conv2d``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hebbian.rules.layers import post_synaptic_format


def hard_wta(u: Tensor) -> Tensor:
    """One-hot indicator of the winner :math:`k^* = \\arg\\max_k u_k`, same shape and dtype as ``u``."""
    return torch.zeros_like(u).scatter_(1, u.argmax(dim=1, keepdim=True), 1.0)


def soft_wta(u: Tensor, t_inv: float) -> Tensor:
    """Soft winner-take-all :math:`y_k = e^{t_{inv} u_k} / \\sum_j e^{t_{inv} u_j}` (sums to 1 over neurons).

    Computed as ``exp(t u - max) / sum`` in ONE new tensor (``torch.softmax(u * t_inv)`` would hold two), and
    probabilities below the smallest normal float are flushed to 0: sharp competitions (SoftHebb's radius-25 init,
    SWTA's T = 0.02) otherwise leave subnormal numbers in ``y``, which slow the CPU's correlation products down
    30-fold and change the update by less than one part in :math:`10^{30}`. Conv outputs on the CPU come back
    channels-last (:func:`~hebbian.rules.layers.post_synaptic_format`), the layout ``LayerView.correlate`` prefers.
    """
    layout = post_synaptic_format(u)
    if u.requires_grad and torch.is_grad_enabled():  # differentiable (out-of-place) form
        y = torch.softmax(u * t_inv, dim=1)
        return torch.nn.functional.threshold(y, torch.finfo(y.dtype).tiny, 0.0)
    if t_inv == 1.0 and layout == torch.preserve_format:
        y = torch.softmax(u, dim=1)
    else:
        y = torch.mul(u, t_inv, out=torch.empty_like(u, memory_format=layout))
        y.sub_(y.amax(dim=1, keepdim=True)).exp_()
        y.div_(y.sum(dim=1, keepdim=True))
    return flush_subnormal_(y)


def flush_subnormal_(y: Tensor) -> Tensor:
    """Set the entries of a non-negative ``y`` that are below the smallest normal number to 0, in place."""
    return torch.nn.functional.threshold_(y, torch.finfo(y.dtype).tiny, 0.0)


def anti_hebbian_losers(y: Tensor, u: Tensor, *, inplace: bool = False) -> Tensor:
    """SoftHebb's signed post-synaptic factor: :math:`\\tilde y_{k^*} = y_{k^*}`, :math:`\\tilde y_k = -y_k` otherwise.

    The winner :math:`k^* = \\arg\\max_k u_k`; ``inplace=True`` overwrites ``y`` (no temporary of ``y``'s size).
    """
    winner = u.argmax(dim=1, keepdim=True)
    kept = y.gather(1, winner)
    out = y.neg_() if inplace else y.neg()
    return out.scatter_(1, winner, kept)


def k_wta(u: Tensor, k: int) -> Tensor:
    """Indicator of the ``k`` largest ``u_k`` at each (sample, position)."""
    return torch.zeros_like(u).scatter_(1, u.topk(k, dim=1).indices, 1.0)


def rank_gates(u: Tensor, k: int, delta: float) -> Tensor:
    """Krotov-Hopfield's learning activation: ``1`` for the top unit, ``-delta`` for the k-th ranked, ``0`` else."""
    top = u.topk(k, dim=1).indices
    g = torch.zeros_like(u)
    g.scatter_(1, top.narrow(1, 0, 1), 1.0)
    g.scatter_(1, top.narrow(1, k - 1, 1), -delta)
    return g
