"""Hebbian learning rules: pluggable objects that turn a layer's input and output into a weight update.

>>> import torch, hebbian.rules as R
>>> layer = torch.nn.Linear(4, 3, bias=False)
>>> x = torch.randn(8, 4)
>>> R.create("oja").update(layer, x, layer(x)).shape
torch.Size([3, 4])
"""

from hebbian.rules.base import LearningRule, Statistics, normalize_delta
from hebbian.rules.bcm import BCM
from hebbian.rules.competition import anti_hebbian_losers, hard_wta, k_wta, rank_gates, soft_wta
from hebbian.rules.competitive import CompetitiveOja, Instar, SupervisedInstar
from hebbian.rules.fasthebb import HPCA, SWTA
from hebbian.rules.foldiak import Foldiak
from hebbian.rules.ghl import GHL, GradientSign
from hebbian.rules.hebb import Hebb
from hebbian.rules.krotov import Krotov
from hebbian.rules.layers import LayerView
from hebbian.rules.modulation import (Broadcast, Modulator, ModulatorInfo, create_modulator, get_modulator_info,
                                      list_modulators, modulator_infos, register_modulator)
from hebbian.rules.oja import Oja, OjaSubspace, Sanger
from hebbian.rules.random_feedback import DFA, RandomFeedback
from hebbian.rules.registry import RuleInfo, create, get_rule_info, list_rules, register_rule, rule_infos
from hebbian.rules.reward_modulated import RewardModulated, RewardPredictionError
from hebbian.rules.softhebb import SoftHebb, softhebb_init_
from hebbian.rules.three_factor import ThreeFactorRule

#: pytorch-hebbian's name for the Krotov-Hopfield rule.
KrotovsRule = Krotov

__all__ = [
    "LearningRule", "Statistics", "normalize_delta", "LayerView",
    "RuleInfo", "create", "get_rule_info", "list_rules", "register_rule", "rule_infos",
    "Hebb", "Oja", "OjaSubspace", "Sanger", "CompetitiveOja", "Instar", "SupervisedInstar",
    "Krotov", "KrotovsRule", "SoftHebb", "softhebb_init_", "SWTA", "HPCA", "GHL", "BCM", "Foldiak",
    "hard_wta", "soft_wta", "anti_hebbian_losers", "k_wta", "rank_gates",
    "RewardModulated", "DFA", "ThreeFactorRule",
    "Modulator", "ModulatorInfo", "Broadcast", "create_modulator", "get_modulator_info", "list_modulators",
    "modulator_infos", "register_modulator", "GradientSign", "RewardPredictionError", "RandomFeedback",
]
