"""pytorch-hebbian's trainers: objects holding an Ignite engine in ``.engine``, run with ``run(train_loader, epochs)``.

* :class:`HebbianTrainer`: :class:`hebbian.trainers.HebbianTrainer` (one forward pass per batch, all Hebbian layers
  updated from it) with pytorch-hebbian's arguments; the engine's output is ``0`` as before, so Ignite metrics with
  the default ``output_transform`` attach to it.
* :class:`SupervisedTrainer`: :class:`hebbian.trainers.SupervisedTrainer` plus a running-average ``loss`` metric.
"""

from __future__ import annotations

import logging
from abc import ABC
from collections import namedtuple
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Union

import torch
from ignite.engine import Engine
from ignite.metrics import RunningAverage
from torch import nn

from hebbian.compat.pytorch_hebbian.checks import attach_data_checks, check_epochs
from hebbian.compat.pytorch_hebbian.compat_warnings import logger_name, warn_once
from hebbian.compat.pytorch_hebbian.learning_rules.learning_rule import LearningRule
from hebbian.models.discovery import candidate_layers, supervised_layer_names
from hebbian.rules import LearningRule as NativeRule
from hebbian.trainers import HebbianTrainer as NativeHebbianTrainer
from hebbian.trainers import SupervisedTrainer as NativeSupervisedTrainer
from hebbian.trainers import hebbian_training_step
from hebbian.trainers.evaluators import model_device

__all__ = ["Trainer", "SupervisedTrainer", "HebbianTrainer", "Layer"]

Device = Optional[Union[str, torch.device]]

#: A Hebbian layer as pytorch-hebbian listed it: top-level child index, qualified name, module.
Layer = namedtuple("Layer", ["idx", "name", "layer"])


class Trainer(ABC):
    """Base of the trainers: an Ignite engine in :attr:`engine`, the model, the device and a logger.

    :meth:`run` checks ``epochs``; the trainers of this module also check the data before any training
    (:mod:`hebbian.compat.pytorch_hebbian.checks`): labels must be class indices of the model's classes, and the first
    batch of each run must go through the model. (An engine of your own prepares its batches its own way, so its
    data is not checked.)
    """

    def __init__(self, engine: Engine, model: nn.Module, device: Device = None) -> None:
        self.engine = engine
        self.model = model
        self.device = device
        self.logger = logging.getLogger(logger_name(__name__, type(self).__name__))

    def run(self, train_loader: Iterable, epochs: int = 10) -> Any:
        """Train for ``epochs`` epochs over ``train_loader`` (``engine.run(train_loader, max_epochs=epochs)``).

        Raises:
            TypeError / ValueError: ``epochs`` is not a positive integer; the labels are not class indices of the
                model's classes, or the images do not fit the model (raised before any training).
        """
        return self.engine.run(train_loader, max_epochs=check_epochs(epochs))


class SupervisedTrainer(Trainer):
    """Backprop training; ``engine.state.metrics["loss"]`` is the running average of the batch losses.

    Args:
        model: the model (already on ``device``).
        optimizer: its optimizer.
        criterion: the loss.
        device: where batches go (default: the model's device; pytorch-hebbian picked CUDA when available).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, criterion: Callable,
                 device: Device = None) -> None:
        engine = NativeSupervisedTrainer(model, optimizer, criterion, device=device)
        RunningAverage(output_transform=lambda loss: loss).attach(engine, "loss")
        super().__init__(engine, model, device if device is not None else model_device(model))
        attach_data_checks(engine, model, self.device, "train_loader")


class _HebbianEngine(NativeHebbianTrainer):
    """The native trainer with pytorch-hebbian's step contract: output ``0``; only the Hebbian weights move.

    ``Local`` holds every parameter of the model, and pytorch-hebbian's evaluator trains the readout in place with
    backprop, leaving gradients on it; they are cleared before each Hebbian step so that ``optimizer.step()`` moves
    the Hebbian layers only, as the old per-layer ``local_step`` did.
    """

    def __init__(self, *args: Any, stop_early: bool = True, **kwargs: Any) -> None:
        self._stop_early = stop_early
        super().__init__(*args, **kwargs)

    def _make_step(self, device, non_blocking, prepare_batch) -> Callable[[Engine, Any], int]:
        step = hebbian_training_step(self.model, self.bindings, self.optimizer, device, non_blocking, prepare_batch,
                                     self.guard, stop_early=self._stop_early)
        bound = {id(b.weight) for b in self.bindings}
        others = [p for group in self.optimizer.param_groups for p in group["params"] if id(p) not in bound]

        def update(engine: Engine, batch: Any) -> int:
            for p in others:
                p.grad = None
            step(engine, batch)
            return 0

        update.capture = step.capture  # type: ignore[attr-defined]
        return update


RuleArg = Union[LearningRule, NativeRule, Mapping[str, Union[LearningRule, NativeRule]]]


class HebbianTrainer(Trainer):
    """Hebbian training of a model's ``Linear``/``Conv2d`` layers, with pytorch-hebbian's arguments.

    Args:
        model: the model (pytorch-hebbian: an ``nn.Sequential``; any module works).
        learning_rule: a rule (old-style or of :mod:`hebbian.rules`), or ``{layer name: rule}``; every Hebbian layer
            needs a rule.
        optimizer: the optimizer over the model's parameters, e.g. ``Local(named_params=model.named_parameters())``.
        supervised_from: index (or name) of the first top-level child that is not Hebbian (default -1: the last).
        freeze_layers: names of layers that must not learn.
        complete_forward: run the whole model in each step (e.g. to update BatchNorm statistics after the last
            Hebbian layer); default: stop once the last Hebbian layer has run.
        single_forward: accepted and ignored: every step is one forward pass (see below).
        device: where batches go (default: the model's device; pytorch-hebbian picked CUDA when available).

    Differences (warned once where results change): all Hebbian layers are updated from ONE forward pass per batch
    (pytorch-hebbian made one forward pass per layer, each through the already-updated earlier layers), and conv
    layers learn from true image patches.

    Attributes:
        engine: the Ignite engine (:class:`hebbian.trainers.HebbianTrainer`); its output is ``0``, the updates are in
            ``engine.state.hebbian_updates``.
        layers: the Hebbian layers as ``Layer(idx, name, layer)``.
    """

    def __init__(self, model: nn.Module, learning_rule: RuleArg, optimizer: torch.optim.Optimizer,
                 supervised_from: Optional[Union[int, str]] = -1, freeze_layers: Optional[List[str]] = None,
                 complete_forward: bool = False, single_forward: bool = False, device: Device = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.supervised_from = supervised_from
        self.freeze_layers = list(freeze_layers) if freeze_layers is not None else []
        self.complete_forward, self.single_forward = bool(complete_forward), bool(single_forward)
        self.learning_rule = learning_rule
        engine = _HebbianEngine(
            model, self._native_rules(learning_rule), optimizer, supervised_from=supervised_from,
            freeze=self.freeze_layers, device=device, stop_early=not self.complete_forward,
        )
        children = [name for name, _ in model.named_children()]
        self.layers = [Layer(children.index(b.name.split(".")[0]), b.name, b.layer) for b in engine.bindings]
        if isinstance(learning_rule, Mapping):
            try:
                self._check_all_mapped(model, learning_rule)
            except KeyError:
                engine.remove_hooks()
                raise
        super().__init__(engine, model, device if device is not None else model_device(model))
        attach_data_checks(engine, model, self.device, "train_loader",
                           labels=any(b.rule.info.needs_labels for b in engine.bindings))
        self._init_layers()
        self._warn_differences()
        self.logger.info("Received %d trainable layer(s): %s.", len(self.layers), [lyr.name for lyr in self.layers])

    @staticmethod
    def _native(rule: Any) -> NativeRule:
        if isinstance(rule, LearningRule):
            return rule.to_rule()
        if isinstance(rule, NativeRule):
            return rule
        raise TypeError(f"learning_rule must be a LearningRule (pytorch-hebbian or hebbian.rules) or a dict of them, "
                        f"got {type(rule).__name__}")

    def _native_rules(self, learning_rule: RuleArg) -> Union[NativeRule, Dict[str, NativeRule]]:
        if isinstance(learning_rule, Mapping):
            return {name: self._native(rule) for name, rule in learning_rule.items()}
        return self._native(learning_rule)

    def _check_all_mapped(self, model: nn.Module, rules: Mapping[str, Any]) -> None:
        supervised = supervised_layer_names(model, self.supervised_from)
        bound = {lyr.name for lyr in self.layers}
        for name, _ in candidate_layers(model):
            if name not in supervised and name not in self.freeze_layers and name not in bound:
                raise KeyError(f"No learning rule was specified for layer {name!r} (learning_rule has "
                               f"{sorted(rules)}); map it to a rule or list it in freeze_layers")

    def _init_layers(self) -> None:
        rules = self.learning_rule
        if isinstance(rules, Mapping):
            for name, rule in rules.items():
                if isinstance(rule, LearningRule):
                    rule.init_layers([lyr for lyr in self.layers if lyr.name == name])
        elif isinstance(rules, LearningRule):
            rules.init_layers(self.layers)

    def _warn_differences(self) -> None:
        if any(isinstance(lyr.layer, nn.Conv2d) for lyr in self.layers):
            warn_once("conv", "pytorch-hebbian compat: conv layers learn from true image patches; pytorch-hebbian's "
                              "patch extraction was wrong, so its conv results are not reproduced "
                              "(docs/migrating.md)", stacklevel=4)
        if len(self.layers) > 1:
            warn_once("simultaneous", "pytorch-hebbian compat: all Hebbian layers are updated from one forward pass "
                                      "per batch; pytorch-hebbian updated them one after another, each after a "
                                      "forward pass through the already-updated layers (docs/migrating.md)",
                      stacklevel=4)
