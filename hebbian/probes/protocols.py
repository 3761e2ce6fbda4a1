"""The registered probe protocols (see :mod:`hebbian.probes.registry`)."""

from __future__ import annotations

from typing import Any, Dict

from ignite.engine import Engine
from torch import nn

from hebbian.probes.logistic import DEFAULT_L2_GRID
from hebbian.probes.probe import LogisticProbe
from hebbian.probes.registry import register_probe
from hebbian.trainers.evaluators import LinearProbeEvaluator

register_probe(
    "logistic",
    {"l2_grid": DEFAULT_L2_GRID, "validation_fraction": 0.2},
    "standardised features, multinomial logistic regression by L-BFGS to convergence, L2 chosen on a stratified "
    "validation split of the training data, refitted on all of it, test split used once",
)(LogisticProbe)

#: share of the training features the trained readouts hold out when they choose on them (early stopping, plateau)
HOLD_OUT = 0.2

#: ``validation_fraction`` None: :data:`HOLD_OUT` when a patience chooses on the held-out part, else 0 (all the
#: training features train the readout; nothing is held out for no choice)
_READOUT = {"epochs": 20, "lr": 1e-3, "batch_size": 64, "dropout": 0.0, "early_stopping_patience": None,
            "plateau_patience": None, "validation_fraction": None, "lr_milestones": ()}


def readout_params(params: Dict[str, Any]) -> Dict[str, Any]:
    """``params`` of a trained-readout protocol with ``validation_fraction`` None resolved: :data:`HOLD_OUT` when
    ``early_stopping_patience`` or ``plateau_patience`` is set (the choice is made on the held-out part), else 0."""
    if params.get("validation_fraction") is not None:
        return dict(params)
    chooses = params.get("early_stopping_patience") is not None or params.get("plateau_patience") is not None
    return {**params, "validation_fraction": HOLD_OUT if chooses else 0.0}


def _trained_readout(model: nn.Module, **params: Any) -> Engine:
    return LinearProbeEvaluator(model, **readout_params(params))


register_probe(
    "readout", _READOUT,
    "a fresh copy of the model's readout trained with Adam and cross-entropy on the frozen features (optionally "
    "dropout, ReduceLROnPlateau and early stopping driven by a validation split of the training data, held out "
    "only when one of them chooses on it)",
)(_trained_readout)

register_probe(
    "softhebb", {**_READOUT, "epochs": 50, "dropout": 0.5, "lr_milestones": (0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9)},
    "SoftHebb's probe: Adam 1e-3, batch 64, 50 epochs, dropout 0.5 before the readout, lr halved after epochs "
    "10, 17, 25, 30, 35, 40, 45 (CustomStepLR), trained on all the training features (no choice, nothing held out)",
    "Journe et al. 2023, demo.py (CIFAR10_50); docs: ../shared/reference/rules.md section 2.3",
)(_trained_readout)

register_probe(
    "pytorch_hebbian", {**_READOUT, "epochs": 500, "early_stopping_patience": 15, "plateau_patience": 5},
    "pytorch-hebbian's HebbianEvaluator: Adam 1e-3, ReduceLROnPlateau (0.5, patience 5), early stopping after 15 "
    "epochs, at most 500 epochs; here monitored on a validation split of the training data instead of the test set",
    "Talloen et al. 2020, pytorch-hebbian evaluators.py",
)(_trained_readout)
