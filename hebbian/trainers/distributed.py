"""Data-parallel support for local rules: reduce the rules' batch sums, broadcast and check the weights."""

from __future__ import annotations

from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import ignite.distributed as idist
import torch
from torch import Tensor

from hebbian.rules.base import Statistics
from hebbian.rules.buffers import nonzero_rows, note_nonzero_rows, noted_rows


def all_reduce_statistics(stats: Sequence[Statistics], ordered: bool = False) -> List[Statistics]:
    """Sum every layer's statistics over all workers with one ``all_reduce`` (identity in a single process).

    All tensors are packed into one flat buffer (in at least float32), reduced with ``SUM``, and unpacked, so every
    rank ends with the statistics of the global batch and then applies the same non-linear post-processing. They
    equal one process's sums over the global batch to float rounding, not bit for bit: the ranks' sums are added in
    another order (two ranks get exactly ``a + b``; more get the backend's order). A rule that then ranks units
    (Krotov's top-k, WTA) can turn that rounding into another update where two units tie within it (README,
    Data-parallel training).

    ``ordered=True`` (``train.shares`` in a run of 3 or more processes) adds the ranks' sums in rank order instead,
    ``((s_0 + s_1) + s_2) + ...`` as :func:`add_in_rank_order`, which is what one process with ``train.shares`` = R
    computes, bit for bit: every rank ``all_gather``-s the R buffers (R times the memory and traffic of the sums, where
    the all-reduce moves about 2 buffers' worth per rank) and adds them itself. With two ranks the all-reduce is
    already ``a + b`` and is kept.
    """
    world = idist.get_world_size()
    if world <= 1:
        return list(stats)
    keys, flat = _pack(stats)
    if ordered and world > 2:
        ranks = idist.all_gather(flat.unsqueeze(0))  # (R, n): every rank's buffer, in rank order
        parts = [_unpack(ranks[r], stats, keys, cast=False) for r in range(world)]
        return [{k: v.to(s[k].dtype) for k, v in total.items()} for total, s in zip(add_in_rank_order(parts), stats)]
    return _unpack(idist.all_reduce(flat, op="SUM"), stats, keys, cast=True)


class RowSparse(NamedTuple):
    """A share's sum that is zero outside ``rows`` (1-d, unique): its ``values`` there, ``(len(rows), ...)``, and the
    whole tensor's ``shape`` (:func:`compact`)."""

    rows: Tensor
    values: Tensor
    shape: torch.Size

    def dense(self) -> Tensor:
        return self.values.new_zeros(self.shape).index_copy_(0, self.rows, self.values)


def compact(stats: Sequence[Statistics]) -> List[Dict[str, Union[Tensor, RowSparse]]]:
    """``stats`` with every tensor that notes the only rows it wrote (:func:`~hebbian.rules.buffers.note_nonzero_rows`:
    Krotov's fully connected update) replaced by its :class:`RowSparse` rows, so that the rule may reuse the tensor's
    memory for the next share's sums (:class:`~hebbian.rules.buffers.ReusableZeros`) while these are kept."""
    out = []
    for s in stats:
        layer: Dict[str, Union[Tensor, RowSparse]] = {}
        for k, t in s.items():
            rows = nonzero_rows(t) if t.dim() > 0 else None
            layer[k] = t if rows is None else RowSparse(rows, noted_rows(t, rows), t.shape)
        out.append(layer)
    return out


def add_in_rank_order(parts: Sequence[Sequence[Mapping[str, Union[Tensor, RowSparse]]]]) -> List[Statistics]:
    """The statistics of R shares of a batch (``parts[r]``: share r's, one dict per layer) added as R data-parallel
    processes add them in rank order: ``((s_0 + s_1) + s_2) + ...`` per tensor, in at least float32 (the
    all-reduce's buffer), returned in each sum's own dtype.

    New tensors, the parts left as they were; except a row-sparse sum (share 0's tensor notes the only rows it wrote,
    :func:`~hebbian.rules.buffers.note_nonzero_rows`, and the other shares' are noted too or :class:`RowSparse`:
    Krotov's fully connected update), which is added into share 0's tensor on the union of the rows and noted so, and
    so stays the rule's row-sparse update: the same values as the dense sum, whose other rows are zero in every share.
    """
    totals: List[Statistics] = []
    for layer in zip(*parts):
        total: Statistics = {}
        for k, first in layer[0].items():
            assert isinstance(first, Tensor), "share 0's sums are tensors"
            acc = torch.promote_types(first.dtype, torch.float32)
            sparse = [_row_sparse(part[k]) for part in layer]
            if acc == first.dtype and all(r is not None for r in sparse):
                total[k] = _add_rows_into_first(first, sparse)  # type: ignore[arg-type]
                continue
            dense = [t.dense() if isinstance(t, RowSparse) else t for t in (part[k] for part in layer)]
            t = dense[0].to(acc) + dense[1].to(acc) if len(dense) > 1 else dense[0].to(acc, copy=True)
            for other in dense[2:]:
                t.add_(other.to(acc))
            total[k] = t.to(first.dtype)
        totals.append(total)
    return totals


def _row_sparse(t: Union[Tensor, RowSparse]) -> Optional[RowSparse]:
    if isinstance(t, RowSparse):
        return t
    rows = nonzero_rows(t) if t.dim() > 0 else None
    return None if rows is None else RowSparse(rows, noted_rows(t, rows), t.shape)


def _add_rows_into_first(first: Tensor, parts: Sequence[RowSparse]) -> Tensor:
    """``((t_0 + t_1) + t_2) + ...`` of tensors zero outside their rows, ``t_0`` being ``first``: on the union of the
    rows (each share's values added where its rows lie in it), written into ``first`` and noted on it."""
    union = torch.unique(torch.cat([p.rows for p in parts]))
    values = first.index_select(0, union)
    for p in parts[1:]:
        values.index_add_(0, torch.searchsorted(union, p.rows), p.values)
    first.index_copy_(0, union, values)
    note_nonzero_rows(first, union, values)
    return first


def _pack(stats: Sequence[Statistics]) -> Tuple[List[List[str]], Tensor]:
    """Every layer's sums in one flat buffer (keys sorted; in at least float32), with the keys of each layer."""
    keys = [sorted(s) for s in stats]
    flat = [s[k].reshape(-1) for s, ks in zip(stats, keys) for k in ks]
    dtype = torch.promote_types(flat[0].dtype, torch.float32) if flat else torch.float32
    return keys, torch.cat([t.to(dtype) for t in flat]) if flat else torch.zeros(0)


def _unpack(buffer: Tensor, stats: Sequence[Statistics], keys: Sequence[Sequence[str]], cast: bool
            ) -> List[Statistics]:
    """The inverse of :func:`_pack`: views of ``buffer`` in the shapes of ``stats`` (and their dtypes with ``cast``)."""
    out: List[Statistics] = []
    offset = 0
    for s, ks in zip(stats, keys):
        reduced: Statistics = {}
        for k in ks:
            n = s[k].numel()
            part = buffer[offset:offset + n].view_as(s[k])
            reduced[k] = part.to(s[k].dtype) if cast else part
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
