"""Models, data and constants shared by the visualizer tests (imported by conftest and the test modules)."""

from __future__ import annotations

import torch
from torch import nn

from hebbian.data import in_memory_loader, load_dataset

EPOCHS = 2
EPOCH_LENGTH = 10  # iterations per epoch (digits has 23 batches of 64)
EVERY_ITERS = 5
BATCH = 64


def fc_model() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16, bias=False), nn.ReLU(), nn.Linear(16, 10))


def conv_model() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 8, 3, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))


def digits_loader():
    return in_memory_loader(load_dataset("digits"), BATCH, generator=torch.Generator().manual_seed(0))
