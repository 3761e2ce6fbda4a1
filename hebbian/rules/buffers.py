"""Weight-sized scratch tensors that a rule reuses from one batch to the next.

On a CPU a fresh weight-sized tensor costs far more than its zero fill: allocations of megabytes are mapped anew by
the C library, and every page faults on its first write (measured for 2000 x 784 float32: 2.8 ms for ``zeros_like``
against 0.2 ms to zero a reused buffer, with the batch's product itself about 5 ms). A rule whose update is a fresh
tensor pays that every batch. :class:`ReusableZeros` hands back last batch's tensor, zeroed, but only when nothing
outside it can still see that tensor's memory (no other reference, view or detached alias), so a caller that keeps an
update (``engine.state.hebbian_updates``, a handler's list) keeps exactly the values it got.

A row-sparse update (Krotov's fully connected form writes only the rows of each batch's winners and rank-k units) can
also say which rows it wrote (:meth:`ReusableZeros.set_rows`): while the tensor is unchanged since (same in-place
version), only those rows are cleared for the next batch and a caller may restrict its passes to them
(:meth:`ReusableZeros.rows`); a note may also carry those rows' values, which a reader then takes instead of gathering
them again (:func:`noted_rows`). Whoever then writes only those rows of another tensor in place (the optimizer step of
the weight) records it with :func:`note_row_write`, and a cache of a function of that tensor (the p-metric weights)
refreshes only those rows (:func:`rows_written_since`).
"""

from __future__ import annotations

import sys
from typing import Optional

import torch
from torch import Tensor


def _storage_users(t: Tensor) -> int:
    """How many tensors share ``t``'s storage (``t`` itself included), or 1 where PyTorch does not expose the count."""
    use_count = getattr(torch._C, "_storage_Use_Count", None)
    if use_count is None:  # pragma: no cover - every supported PyTorch has it
        return 1
    return use_count(t.untyped_storage()._cdata) - 1  # minus the temporary storage object made here


class ReusableZeros:
    """``zeros_like(w)`` that reuses the tensor it returned last time when nobody else holds it.

    Transient: not part of any state_dict, and copies of the owner start without a buffer.
    """

    def __init__(self) -> None:
        self._buf: Optional[Tensor] = None

    def zeros_like(self, w: Tensor) -> Tensor:
        """A contiguous zero tensor of ``w``'s shape, dtype and device."""
        if self._buf is not None and self._reusable(w):
            rows = nonzero_rows(self._buf)
            return self._buf.zero_() if rows is None else self._buf.index_fill_(0, rows, 0)
        self._buf = torch.zeros_like(w, memory_format=torch.contiguous_format)
        return self._buf

    def set_rows(self, t: Tensor, rows: Tensor, values: Optional[Tensor] = None) -> None:
        """:func:`note_nonzero_rows` for the tensor last returned by :meth:`zeros_like` (refuses any other)."""
        if t is not self._buf:
            raise ValueError("set_rows: t must be the tensor last returned by zeros_like")
        note_nonzero_rows(t, rows, values)

    def rows(self, t: Tensor) -> Optional[Tensor]:
        """:func:`nonzero_rows` of ``t`` if ``t`` is this buffer; else ``None``."""
        return nonzero_rows(t) if t is self._buf else None

    def _reusable(self, w: Tensor) -> bool:  # self._buf is not None
        buf = self._buf
        if buf.shape != w.shape or buf.dtype != w.dtype or buf.device != w.device:
            return False
        # references: self._buf, the local name ``buf`` and getrefcount's argument; anything more is a caller's
        return sys.getrefcount(buf) <= 3 and _storage_users(buf) == 1

    def __deepcopy__(self, memo: dict) -> "ReusableZeros":
        return ReusableZeros()


# -- row notes, kept on the tensor and voided by any later in-place write (its version moves) -------------------------

_NONZERO_ROWS = "_hebbian_nonzero_rows"
_ROW_WRITE = "_hebbian_row_write"


def note_nonzero_rows(t: Tensor, rows: Tensor, values: Optional[Tensor] = None) -> None:
    """Record that, as ``t`` is now, only its rows ``rows`` (1-d, unique indices) can be non-zero.

    ``values``, if given, must equal ``t.index_select(0, rows)`` now and must not be changed afterwards (the note
    owns it): :func:`noted_rows` hands it out instead of gathering the rows again."""
    if values is not None and (values.shape[0] != rows.shape[0] or values.shape[1:] != t.shape[1:]):
        raise ValueError(f"values must have shape {(rows.shape[0],) + tuple(t.shape[1:])} (the noted rows of t), "
                         f"got {tuple(values.shape)}")
    setattr(t, _NONZERO_ROWS, (t._version, rows, values))


def nonzero_rows(t: Tensor) -> Optional[Tensor]:
    """The rows recorded by :func:`note_nonzero_rows` if ``t`` is unchanged since; else ``None``."""
    note = getattr(t, _NONZERO_ROWS, None)
    return note[1] if note is not None and note[0] == t._version else None


def noted_rows(t: Tensor, rows: Tensor) -> Tensor:
    """``t.index_select(0, rows)``: the values noted with exactly these rows (:func:`note_nonzero_rows`) while ``t``
    is unchanged since, else gathered. Read-only: the result may be the note's own tensor."""
    return _noted_values(t, _NONZERO_ROWS, rows)


def note_row_write(t: Tensor, before: int, rows: Tensor, values: Optional[Tensor] = None) -> None:
    """Record that the in-place write that took ``t`` from version ``before`` to its current version changed only
    ``rows`` (1-d, unique). Read back by :func:`rows_written_since`; ``values``, if given, must equal
    ``t.index_select(0, rows)`` now and is handed out by :func:`written_rows` (the note owns it)."""
    setattr(t, _ROW_WRITE, (before, t._version, rows, values))


def rows_written_since(t: Tensor, version: int) -> Optional[Tensor]:
    """The rows of ``t`` that can differ from what ``t`` held at ``version``, when the only in-place write since then
    is one recorded by :func:`note_row_write`; ``None`` when that is not known (then anything may have changed).

    Exact by construction: the version counter moves with every in-place write, so a record whose versions do not
    bracket exactly ``version .. t._version`` is never used."""
    note = getattr(t, _ROW_WRITE, None)
    if note is None or note[0] != version or note[1] != t._version:
        return None
    return note[2]


def written_rows(t: Tensor, rows: Tensor) -> Tensor:
    """``t.index_select(0, rows)``: the values noted by :func:`note_row_write` with exactly these rows while ``t`` is
    unchanged since, else gathered. Read-only: the result may be the note's own tensor."""
    return _noted_values(t, _ROW_WRITE, rows)


def _noted_values(t: Tensor, attr: str, rows: Tensor) -> Tensor:
    """The values of the note ``attr`` on ``t`` (both kinds end with: ``t``'s version when noted, the rows, their
    values) if it is current and for exactly ``rows``; else the rows gathered from ``t``."""
    note = getattr(t, attr, None)
    if note is not None and note[-3] == t._version and note[-2] is rows and note[-1] is not None:
        return note[-1]
    return t.detach().index_select(0, rows)
