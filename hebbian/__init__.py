"""hebbian: Hebbian (local) learning rules and trainers for PyTorch and PyTorch-Ignite."""

from hebbian import optim, rules
from hebbian.optim import Local
from hebbian.rules import create as create_rule
from hebbian.rules import list_rules

__version__ = "0.1.0"

__all__ = ["rules", "optim", "Local", "create_rule", "list_rules", "__version__"]
