"""pytorch-hebbian's evaluators: objects holding an Ignite engine in ``.engine``, attachable to a trainer's engine.

* :class:`SupervisedEvaluator`: :class:`hebbian.trainers.SupervisedEvaluator` (metrics ``accuracy`` and ``loss``).
* :class:`HebbianEvaluator`: pytorch-hebbian's evaluation of Hebbian features: freeze the Hebbian part of the model,
  re-initialise the supervised part and train it in place with the trainer and evaluators that ``init_function``
  builds; ``engine.state.metrics`` holds the validation metrics of the best epoch (by ``score_function``). For the
  cached, seeded linear probe of :mod:`hebbian` see :class:`hebbian.trainers.LinearProbeEvaluator`.
"""

from __future__ import annotations

import logging
from abc import ABC
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch
from ignite.engine import Engine, Events
from ignite.handlers import EarlyStopping
from ignite.metrics import Metric
from torch import nn

from hebbian.compat.pytorch_hebbian.checks import attach_data_checks, check_loader_labels
from hebbian.compat.pytorch_hebbian.compat_warnings import logger_name
from hebbian.compat.pytorch_hebbian.trainers import SupervisedTrainer, Trainer
from hebbian.trainers import SupervisedEvaluator as NativeSupervisedEvaluator
from hebbian.trainers.evaluators import model_device

__all__ = ["SimpleEngine", "Evaluator", "HebbianEvaluator", "SupervisedEvaluator"]

Device = Optional[Union[str, torch.device]]


class SimpleEngine(Engine):
    """An engine whose ``run(*args, **kwargs)`` calls ``run_function`` between ``STARTED`` and ``COMPLETED``."""

    def __init__(self, run_function: Callable[..., Any]) -> None:
        super().__init__(lambda engine, batch: None)
        self._run_function = run_function

    def run(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.fire_event(Events.STARTED)
        self._run_function(*args, **kwargs)
        self.fire_event(Events.COMPLETED)
        return self.state


class Evaluator(ABC):
    """Base of the evaluators: an engine in :attr:`engine`; ``attach(engine, event, *data)`` runs it on ``event``."""

    def __init__(self) -> None:
        self.engine: Engine = None  # type: ignore[assignment]
        self.logger = logging.getLogger(logger_name(__name__, type(self).__name__))

    def attach(self, engine: Engine, event_name: Any, *args: Any, **kwargs: Any) -> Any:
        """Run this evaluator with ``*args, **kwargs`` (e.g. the data) whenever ``engine`` fires ``event_name``.

        The labels of the data loaders given are checked now, before ``engine`` trains (see
        :mod:`hebbian.compat.pytorch_hebbian.checks`)."""
        model = getattr(self, "model", None)
        if isinstance(model, nn.Module):
            for i, loader in enumerate([*args, *kwargs.values()]):
                check_loader_labels(loader, model, f"the data given to attach (argument {i + 1})")
        return engine.add_event_handler(event_name, self, *args, **kwargs)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        return self.engine.run(*args, **kwargs)

    def __call__(self, engine: Engine, *args: Any, **kwargs: Any) -> None:
        self.run(*args, **kwargs)

    @property
    def metrics(self) -> Dict[str, Any]:
        """The metrics of the last run (``engine.state.metrics``)."""
        return dict(self.engine.state.metrics)


class SupervisedEvaluator(Evaluator):
    """Evaluates a model with Ignite metrics (default ``accuracy`` and, with a criterion, ``loss``).

    Args:
        model: the model; it is put in eval mode while evaluating and restored afterwards.
        criterion: the loss behind the ``loss`` metric.
        metrics: ``{name: Metric}`` instead of the defaults.
        device: where batches go (default: the model's device; pytorch-hebbian picked CUDA when available).
    """

    def __init__(self, model: nn.Module, criterion: Optional[Callable] = None,
                 metrics: Optional[Dict[str, Metric]] = None, device: Device = None) -> None:
        super().__init__()
        self.engine = NativeSupervisedEvaluator(model, criterion, device=device, metrics=metrics)
        self.model, self.device = model, device
        attach_data_checks(self.engine, model, device if device is not None else model_device(model), "data")


InitFunction = Callable[[nn.Module], Tuple[Trainer, Evaluator, Evaluator]]


class HebbianEvaluator(Evaluator):
    """Evaluates Hebbian features by training the supervised part of the model (pytorch-hebbian's evaluator).

    Each run (``run(train_loader, val_loader)``, or on the event it is attached to):

    1. ``init_function(model)`` returns ``(trainer, train_evaluator, evaluator)`` (default: Adam, cross-entropy,
       early stopping after 5 epochs without a lower validation loss);
    2. the evaluators run on ``train_loader`` / ``val_loader`` after every epoch of ``trainer``;
    3. the top-level children before ``supervised_from`` stop requiring gradients (they stay so), those from it on
       are re-initialised (``reset_parameters``), and ``trainer`` trains for ``epochs`` epochs, in place;
    4. ``engine.state.metrics`` is a copy of the validation metrics of the epoch with the best
       ``score_function(evaluator.engine)`` (higher is better); ``best_score`` is that score.

    Args:
        model: an ``nn.Sequential`` (or any module whose top-level children run in order).
        score_name: the score's name, for the log.
        score_function: ``evaluator engine -> score``, e.g. ``lambda engine: engine.state.metrics["accuracy"]``.
        init_function: ``model -> (trainer, train_evaluator, evaluator)``.
        epochs: supervised epochs per evaluation.
        supervised_from: index of the first supervised top-level child (default ``None``: the last child, -1;
            pytorch-hebbian's ``None`` froze and reset every layer, and training then failed).
    """

    def __init__(self, model: nn.Module, score_name: str, score_function: Callable[[Engine], float],
                 init_function: Optional[InitFunction] = None, epochs: int = 100,
                 supervised_from: Optional[int] = None) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if not callable(score_function):
            raise TypeError(f"score_function must be callable (engine -> score), got {type(score_function).__name__}")
        if init_function is not None and not callable(init_function):
            raise TypeError(f"init_function must be callable (model -> (trainer, train_evaluator, evaluator)), "
                            f"got {type(init_function).__name__}")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        n = len(list(model.children()))
        supervised_from = -1 if supervised_from is None else supervised_from
        if isinstance(supervised_from, bool) or not isinstance(supervised_from, int) or not -n <= supervised_from < n:
            raise ValueError(f"supervised_from must index a top-level child of the model (-{n}..{n - 1}), "
                             f"got {supervised_from!r}")
        self.model = model
        self.score_name, self.score_function = score_name, score_function
        self.init_function: InitFunction = init_function if init_function is not None else self._init_function
        self.epochs, self.supervised_from = epochs, supervised_from
        self.best_score: Optional[float] = None
        self.engine = SimpleEngine(self._run)

    @staticmethod
    def _init_function(model: nn.Module) -> Tuple[Trainer, Evaluator, Evaluator]:
        """pytorch-hebbian's default: Adam, cross-entropy, early stopping on the validation loss (patience 5)."""
        criterion = nn.CrossEntropyLoss()
        evaluator = SupervisedEvaluator(model=model, criterion=criterion)
        train_evaluator = SupervisedEvaluator(model=model, criterion=criterion)
        optimizer = torch.optim.Adam(params=model.parameters())
        trainer = SupervisedTrainer(model=model, optimizer=optimizer, criterion=criterion)
        stopper = EarlyStopping(patience=5, min_delta=0.0001, score_function=lambda e: -e.state.metrics["loss"],
                                trainer=trainer.engine, cumulative_delta=True)
        evaluator.engine.add_event_handler(Events.COMPLETED, stopper)
        return trainer, train_evaluator, evaluator

    def _keep_best(self, eval_engine: Engine) -> None:
        score = self.score_function(eval_engine)
        if self.best_score is None or score > self.best_score:
            self.best_score = score
            self.engine.state.metrics = dict(eval_engine.state.metrics)
            self.logger.info("New best validation %s = %.4f.", self.score_name, self.best_score)

    def _run(self, train_loader: Any, val_loader: Any) -> None:
        children = list(self.model.named_children())
        self.logger.info("Supervised training from layer '%s'.", children[self.supervised_from][0])
        trainer, train_evaluator, evaluator = self.init_function(self.model)
        train_evaluator.attach(trainer.engine, Events.EPOCH_COMPLETED, train_loader)
        evaluator.attach(trainer.engine, Events.EPOCH_COMPLETED, val_loader)
        evaluator.engine.add_event_handler(Events.COMPLETED, self._keep_best)
        self.best_score = None
        layers = [module for _, module in children]
        for layer in layers[: self.supervised_from]:
            for param in layer.parameters():
                param.requires_grad = False
        for layer in layers[self.supervised_from:]:
            for module in layer.modules():
                reset = getattr(module, "reset_parameters", None)
                if callable(reset):
                    reset()
        trainer.run(train_loader=train_loader, epochs=self.epochs)
