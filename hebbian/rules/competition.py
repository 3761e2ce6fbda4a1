"""Competition between the neurons of a layer, computed independently at every (sample, position).

Pure functions on ``u``-shaped tensors (neuron axis 1): ``(S, M)`` for ``Linear``, ``(N, M, OH, OW)`` for ``Conv2d``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def hard_wta(u: Tensor) -> Tensor:
    """One-hot indicator of the winner :math:`k^* = \\arg\\max_k u_k`, same shape and dtype as ``u``."""
    return torch.zeros_like(u).scatter_(1, u.argmax(dim=1, keepdim=True), 1.0)


def soft_wta(u: Tensor, t_inv: float) -> Tensor:
    """Soft winner-take-all :math:`y_k = e^{t_{inv} u_k} / \\sum_j e^{t_{inv} u_j}` (sums to 1 over neurons)."""
    return torch.softmax(u * t_inv, dim=1)


def anti_hebbian_losers(y: Tensor, u: Tensor) -> Tensor:
    """SoftHebb's signed post-synaptic factor: :math:`\\tilde y_{k^*} = y_{k^*}`, :math:`\\tilde y_k = -y_k` otherwise."""
    winner = hard_wta(u)
    return y * (2.0 * winner - 1.0)


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
