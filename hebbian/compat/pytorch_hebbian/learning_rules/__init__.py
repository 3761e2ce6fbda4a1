"""pytorch-hebbian's ``learning_rules``: ``LearningRule``, ``KrotovsRule``, ``HebbsRule``, ``OjasRule``."""

from hebbian.compat.pytorch_hebbian.learning_rules.hebb import HebbsRule
from hebbian.compat.pytorch_hebbian.learning_rules.krotov import KrotovsRule
from hebbian.compat.pytorch_hebbian.learning_rules.learning_rule import LearningRule, OldStyleRule
from hebbian.compat.pytorch_hebbian.learning_rules.oja import OjasRule

__all__ = ["LearningRule", "OldStyleRule", "KrotovsRule", "HebbsRule", "OjasRule"]
