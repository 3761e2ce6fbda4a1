"""Running small CPU tensor work on one intra-op thread."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def one_thread(enabled: bool = True) -> Iterator[None]:
    """Run the enclosed CPU tensor operations on one intra-op thread (restored afterwards).

    Small operations (tiny strided copies, products of a few thousand elements, the many short steps of an L-BFGS
    fit) are split over the OpenMP threads too; where the cores are busy (a shared or oversubscribed machine) every
    split waits for descheduled threads and such work gets 10-100x slower. ``enabled=False`` leaves the threads as
    they are (for work large enough to gain from them).
    """
    if not enabled:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
