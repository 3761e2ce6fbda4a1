"""Trainers: Ignite engines that apply learning rules to ordinary PyTorch models."""

from hebbian.trainers.batch import prepare_batch
from hebbian.models.discovery import WeightSite, candidate_layers, candidate_weights, unwrap_model
from hebbian.trainers.binding import RuleBinding, bind_rules
from hebbian.trainers.capture import LayerCapture
from hebbian.trainers.events import HebbianEvents
from hebbian.trainers.guard import NonFiniteGuard, NonFiniteUpdateError
from hebbian.trainers.hebbian_trainer import (
    DeterministicHebbianTrainer,
    HebbianTrainer,
    create_hebbian_trainer,
    hebbian_training_step,
)

__all__ = [
    "prepare_batch", "RuleBinding", "bind_rules", "candidate_layers", "candidate_weights", "WeightSite", "unwrap_model",
    "LayerCapture",
    "HebbianEvents", "NonFiniteGuard", "NonFiniteUpdateError", "HebbianTrainer", "DeterministicHebbianTrainer",
    "create_hebbian_trainer", "hebbian_training_step",
]

from hebbian.trainers.evaluators import (  # noqa: E402
    HebbianEvaluator,
    LinearProbeEvaluator,
    SupervisedEvaluator,
    SupervisedTrainer,
)
from hebbian.trainers.ghl import (  # noqa: E402
    BackpropOnlyWarning,
    DeterministicGHLTrainer,
    GHLTrainer,
    backprop_only_layers,
    create_ghl_trainer,
    ghl_lr_scheduler,
    ghl_param_groups,
    ghl_training_step,
    select_hebbian_layers,
)

__all__ += [
    "SupervisedTrainer", "SupervisedEvaluator", "LinearProbeEvaluator", "HebbianEvaluator",
    "GHLTrainer", "DeterministicGHLTrainer", "create_ghl_trainer", "ghl_training_step", "ghl_param_groups",
    "ghl_lr_scheduler", "select_hebbian_layers", "backprop_only_layers", "BackpropOnlyWarning",
]

from hebbian.trainers.checkpoint import (  # noqa: E402
    KeepPreviousDiskSaver,
    RuleStates,
    checkpoint_objects,
    latest_checkpoint,
    load_checkpoint,
    resume_from,
    setup_checkpointing,
)

__all__ += [
    "RuleStates", "checkpoint_objects", "KeepPreviousDiskSaver", "setup_checkpointing", "latest_checkpoint",
    "load_checkpoint", "resume_from",
]
