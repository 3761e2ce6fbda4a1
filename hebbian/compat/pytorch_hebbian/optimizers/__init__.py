"""pytorch-hebbian's ``optimizers``: ``Local``."""

from hebbian.compat.pytorch_hebbian.optimizers.local import Local

__all__ = ["Local"]
