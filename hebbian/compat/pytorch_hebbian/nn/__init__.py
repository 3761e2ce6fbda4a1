"""pytorch-hebbian's ``nn``: ``Flatten``, ``RePU``, ``SPELoss``."""

from hebbian.compat.pytorch_hebbian.nn.layers import Flatten, RePU
from hebbian.compat.pytorch_hebbian.nn.loss import SPELoss, spe_loss

__all__ = ["Flatten", "RePU", "SPELoss", "spe_loss"]
