"""Data-parallel support for local rules: reduce the rules' batch sums, broadcast and check the weights."""

from __future__ import annotations

from typing import List, Optional, Sequence, Union

import ignite.distributed as idist
import torch
from torch import Tensor

from hebbian.rules.base import Statistics


def all_reduce_statistics(stats: Sequence[Statistics]) -> List[Statistics]:
    """Sum every layer's statistics over all workers with one ``all_reduce`` (identity in a single process).

    All tensors are packed into one flat buffer, reduced with ``SUM``, and unpacked, so every rank ends with the
    statistics of the global batch and then applies the same non-linear post-processing. They equal one process's
    sums over the global batch to float rounding, not bit for bit: the ranks' sums are added in another order (two
    ranks get exactly ``a + b``; more get the backend's order). A rule that then ranks units (Krotov's top-k, WTA) can
    turn that rounding into another update where two units tie within it (README, Data-parallel training).
    """
    if idist.get_world_size() <= 1:
        return list(stats)
    keys = [sorted(s) for s in stats]
    flat = [s[k].reshape(-1) for s, ks in zip(stats, keys) for k in ks]
    dtype = torch.promote_types(flat[0].dtype, torch.float32) if flat else torch.float32
    buffer = idist.all_reduce(torch.cat([t.to(dtype) for t in flat]), op="SUM")
    out: List[Statistics] = []
    offset = 0
    for s, ks in zip(stats, keys):
        reduced: Statistics = {}
        for k in ks:
            n = s[k].numel()
            reduced[k] = buffer[offset:offset + n].view_as(s[k]).to(s[k].dtype)
            offset += n
        out.append(reduced)
    return out


def batch_share(local_size: int, device: Union[str, torch.device] = "cpu") -> Optional[Tensor]:
    """This worker's share :math:`n_r / N` of the global batch (a 0-d tensor on ``device``; one ``all_reduce``), or
    ``None`` in a single process. An uneven last batch (e.g. 17 and 16 samples) gets unequal shares."""
    if idist.get_world_size() <= 1:
        return None
    local = torch.tensor(float(local_size), dtype=torch.float64, device=device)
    return local / idist.all_reduce(local.clone(), op="SUM")


def all_reduce_gradients(model: torch.nn.Module, share: Optional[Tensor] = None) -> None:
    """Combine ``.grad`` of every parameter over all workers into the gradient of the global batch.

    With ``share`` (this worker's :func:`batch_share` :math:`n_r/N`) the result is :math:`\\sum_r (n_r/N)\\,g_r`,
    the gradient of the global batch's mean loss when each :math:`g_r` is of its local mean loss, for uneven
    batches too; without it the plain average :math:`\\frac1R \\sum_r g_r` (what DDP does during ``backward``).
    For data-parallel runs whose model is not wrapped in ``DistributedDataParallel``; a no-op in a single process.
    """
    if idist.get_world_size() <= 1:
        return
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    if share is None:
        buffer = idist.all_reduce(flat, op="SUM") / idist.get_world_size()
    else:
        buffer = idist.all_reduce(flat.mul_(share.to(flat.dtype)), op="SUM")
    offset = 0
    for g in grads:
        g.copy_(buffer[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_parameters(tensors: Sequence[Tensor], src: int = 0) -> None:
    """Copy rank ``src``'s values of ``tensors`` to every rank (no-op in a single process)."""
    if idist.get_world_size() <= 1:
        return
    for t in tensors:
        t.data.copy_(idist.broadcast(t.data, src=src))


def weight_checksums(tensors: Sequence[Tensor]) -> Tensor:
    """A cheap fingerprint of each tensor (sum and L2 norm, in float64), shape ``(len(tensors), 2)``."""
    return torch.stack([torch.stack([t.detach().double().sum(), t.detach().double().norm()]) for t in tensors])


def check_replicas_in_sync(tensors: Sequence[Tensor], names: Sequence[str], rtol: float = 1e-5) -> None:
    """Raise ``RuntimeError`` if the weights differ between ranks (compares gathered checksums)."""
    if idist.get_world_size() <= 1:
        return
    local = weight_checksums(tensors)
    gathered = idist.all_gather(local.unsqueeze(0))
    reference = gathered[0]
    tol = rtol * reference.abs().clamp_min(1.0)
    drift = ((gathered - reference).abs() > tol).any(dim=0).any(dim=1)
    if bool(drift.any()):
        bad = [n for n, d in zip(names, drift.tolist()) if d]
        raise RuntimeError(f"data-parallel replicas drifted apart: weights of {bad} differ between ranks")
