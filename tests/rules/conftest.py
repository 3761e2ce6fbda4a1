"""Fixtures of the rule tests: they work on tiny tensors, where intra-op threads only add overhead."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def _single_thread():
    """Run the rule tests with one intra-op thread (tiny tensors; several x faster on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
