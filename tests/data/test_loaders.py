"""in_memory_loader over a TensorRows view: the same batches as over the copied rows, nothing copied up front."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from hebbian.data.loaders import TensorRows, in_memory_loader


def _data(n=50, d=7):
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(n, d, generator=g), torch.randint(0, 3, (n,), generator=g))


@pytest.mark.parametrize("shuffle", [True, False])
def test_rows_view_yields_the_batches_of_the_copied_rows(shuffle):
    data = _data()
    rows = torch.randperm(50, generator=torch.Generator().manual_seed(1))[:37]
    copied = TensorDataset(*(t[rows] for t in data.tensors))
    view = TensorRows(data, rows)
    assert len(view) == 37
    a = in_memory_loader(view, 8, shuffle=shuffle, generator=torch.Generator().manual_seed(2))
    b = in_memory_loader(copied, 8, shuffle=shuffle, generator=torch.Generator().manual_seed(2))
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    x5, y5 = view[5]
    assert torch.equal(x5, data.tensors[0][rows[5]]) and y5 == data.tensors[1][rows[5]]


def test_rows_view_shares_the_storage_and_refuses_bad_input():
    data = _data()
    view = TensorRows(data, torch.arange(10))
    assert view.source[0].data_ptr() == data.tensors[0].data_ptr()
    with pytest.raises(TypeError, match="rows must be"):
        TensorRows(data, torch.arange(10).float())
    with pytest.raises(TypeError, match="dataset must be"):
        TensorRows([1, 2], torch.arange(2))
