"""Shared pytest helpers for the whole test suite.

* ``DEVICES``: ``["cpu"]`` plus ``"cuda"`` when ``torch.cuda.is_available()``.
* ``device_params()``: the same list as ``pytest.param`` objects, the CUDA one marked ``cuda`` (see ``pytest.ini``),
  for ``@pytest.mark.parametrize("device", device_params())``.
* ``device`` fixture: parametrised over ``DEVICES``; a test that takes ``device`` runs once per available device.
"""

from __future__ import annotations

from typing import List

import pytest
import torch

DEVICES: List[str] = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def device_params() -> list:
    """``DEVICES`` as ``pytest.param`` objects with readable ids; CUDA carries the ``cuda`` marker."""
    return [pytest.param(d, id=d, marks=(pytest.mark.cuda,) if d.startswith("cuda") else ()) for d in DEVICES]


@pytest.fixture(params=device_params())
def device(request) -> torch.device:
    """Every available device: ``cpu`` always, ``cuda`` when a GPU is present."""
    return torch.device(request.param)


@pytest.fixture
def single_thread():
    """Run the test with one torch thread (restored afterwards): small tensors gain nothing from threads, and on a
    shared 2-core machine thread contention costs several times the work. Use with
    ``pytestmark = pytest.mark.usefixtures("single_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
