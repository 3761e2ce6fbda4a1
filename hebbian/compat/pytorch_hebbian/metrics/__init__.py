"""pytorch-hebbian's ``metrics``: ``UnitConvergence``."""

from hebbian.compat.pytorch_hebbian.metrics.unit_convergence import UnitConvergence

__all__ = ["UnitConvergence"]
