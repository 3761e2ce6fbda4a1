"""Model tests run single-threaded: tiny tensors gain nothing from threads, and a shared machine loses a lot."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
