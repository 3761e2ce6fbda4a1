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
(:meth:`ReusableZeros.rows`).
"""

from __future__ import annotations

import sys
from typing import Optional, Tuple

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
        self._rows: Optional[Tuple[Tensor, int]] = None  # (rows that may be non-zero, the buffer's version then)

    def zeros_like(self, w: Tensor) -> Tensor:
        """A contiguous zero tensor of ``w``'s shape, dtype and device."""
        if self._buf is not None and self._reusable(w):
            rows = self.rows(self._buf)
            self._rows = None
            return self._buf.zero_() if rows is None else self._buf.index_fill_(0, rows, 0)
        self._buf = torch.zeros_like(w, memory_format=torch.contiguous_format)
        self._rows = None
        return self._buf

    def set_rows(self, t: Tensor, rows: Tensor) -> None:
        """Note that, as ``t`` is now, only its rows ``rows`` (1-d indices, repeats allowed) can be non-zero.

        Only for the tensor last returned by :meth:`zeros_like`; any later in-place change of it voids the note."""
        if t is not self._buf:
            raise ValueError("set_rows: t must be the tensor last returned by zeros_like")
        self._rows = (rows, t._version)

    def rows(self, t: Tensor) -> Optional[Tensor]:
        """The rows noted for ``t`` by :meth:`set_rows` if ``t`` is this buffer and unchanged since; else ``None``."""
        if self._rows is None or t is not self._buf or t._version != self._rows[1]:
            return None
        return self._rows[0]

    def _reusable(self, w: Tensor) -> bool:
        buf = self._buf
        if buf is None or buf.shape != w.shape or buf.dtype != w.dtype or buf.device != w.device:
            return False
        # references: self._buf, the local name ``buf`` and getrefcount's argument; anything more is a caller's
        return sys.getrefcount(buf) <= 3 and _storage_users(buf) == 1

    def __deepcopy__(self, memo: dict) -> "ReusableZeros":
        return ReusableZeros()
