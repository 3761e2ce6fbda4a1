"""ReusableZeros: last batch's tensor is reused only when nobody else can see it, and row notes are exact."""

from __future__ import annotations

import copy

import pytest
import torch

from hebbian.rules.buffers import ReusableZeros


def test_an_unheld_buffer_is_reused_and_comes_back_zero():
    zeros, w = ReusableZeros(), torch.randn(5, 3)
    first = zeros.zeros_like(w)
    ptr = first.data_ptr()
    first.add_(1.0)
    del first
    again = zeros.zeros_like(w)
    assert again.data_ptr() == ptr and again.is_contiguous()
    assert torch.equal(again, torch.zeros(5, 3))


@pytest.mark.parametrize("hold", ["reference", "view", "detached", "dict"])
def test_a_held_buffer_keeps_its_values(hold):
    zeros, w = ReusableZeros(), torch.randn(5, 3)
    t = zeros.zeros_like(w).add_(2.0)
    kept = {"reference": lambda: t, "view": lambda: t[1:], "detached": lambda: t.detach(),
            "dict": lambda: {"layer": t}}[hold]()
    del t
    fresh = zeros.zeros_like(w)
    values = kept["layer"] if hold == "dict" else kept
    assert torch.all(values == 2.0) and torch.equal(fresh, torch.zeros(5, 3))


def test_a_new_shape_dtype_or_device_gets_a_new_tensor():
    zeros = ReusableZeros()
    a = zeros.zeros_like(torch.randn(5, 3))
    ptr = a.data_ptr()
    del a
    b = zeros.zeros_like(torch.randn(3, 5))
    assert b.shape == (3, 5)
    del b
    c = zeros.zeros_like(torch.randn(3, 5, dtype=torch.float64))
    assert c.dtype == torch.float64 and c.data_ptr() != ptr


def test_noted_rows_clear_only_those_rows_while_the_tensor_is_unchanged():
    zeros, w = ReusableZeros(), torch.randn(6, 4)
    t = zeros.zeros_like(w)
    rows = torch.tensor([1, 4, 1])
    t[[1, 4]] = 3.0
    zeros.set_rows(t, rows)
    assert zeros.rows(t) is rows
    assert zeros.rows(torch.zeros(6, 4)) is None  # another tensor
    del t
    assert torch.equal(zeros.zeros_like(w), torch.zeros(6, 4))


def test_an_in_place_change_after_the_note_voids_it():
    zeros, w = ReusableZeros(), torch.randn(6, 4)
    t = zeros.zeros_like(w)
    t[2] = 1.0
    zeros.set_rows(t, torch.tensor([2]))
    t[5] = 7.0  # written after the note: the note no longer says where the non-zeros are
    assert zeros.rows(t) is None
    del t
    assert torch.equal(zeros.zeros_like(w), torch.zeros(6, 4))  # cleared entirely


def test_set_rows_refuses_a_foreign_tensor_and_copies_start_empty():
    zeros = ReusableZeros()
    zeros.zeros_like(torch.randn(2, 2))
    with pytest.raises(ValueError, match="zeros_like"):
        zeros.set_rows(torch.zeros(2, 2), torch.tensor([0]))
    assert copy.deepcopy(zeros)._buf is None


def test_noted_values_are_handed_out_only_for_the_same_rows_of_the_unchanged_tensor():
    from hebbian.rules.buffers import note_nonzero_rows, noted_rows

    t, rows = torch.zeros(4, 3), torch.tensor([1, 3])
    values = torch.randn(2, 3)
    t.index_copy_(0, rows, values)
    note_nonzero_rows(t, rows, values)
    assert noted_rows(t, rows) is values  # no second gather
    equal_rows = torch.tensor([1, 3])
    assert noted_rows(t, equal_rows) is not values and torch.equal(noted_rows(t, equal_rows), values)
    t[1, 0] = 7.0  # any in-place change voids the note: the rows are gathered from the tensor as it is now
    assert noted_rows(t, rows) is not values and noted_rows(t, rows)[0, 0] == 7.0


def test_noted_values_of_the_wrong_shape_are_refused():
    from hebbian.rules.buffers import note_nonzero_rows

    with pytest.raises(ValueError, match=r"values must have shape \(2, 3\)"):
        note_nonzero_rows(torch.zeros(4, 3), torch.tensor([0, 1]), torch.zeros(3, 3))
