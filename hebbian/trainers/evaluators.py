"""Evaluating what Hebbian layers learned: a supervised trainer/evaluator pair and the linear probe.

* :class:`SupervisedTrainer` / :class:`SupervisedEvaluator`: Ignite's supervised step factories in engines, with the
  pytorch-hebbian calls ``SupervisedEvaluator(model, criterion)`` and
  ``evaluator.attach(trainer, Events.EPOCH_COMPLETED, val_loader)``.
* :class:`LinearProbeEvaluator` (alias :data:`HebbianEvaluator`): freeze the Hebbian part of a model, train a fresh
  readout on its features (computed once per evaluation and cached), report train and test accuracy.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from ignite.engine import Engine, Events, supervised_evaluation_step, supervised_evaluation_step_amp
from ignite.engine import supervised_training_step, supervised_training_step_amp
from ignite.handlers import EarlyStopping, ReduceLROnPlateauScheduler
from ignite.metrics import Accuracy, Loss, Metric
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from hebbian.data.loaders import TensorRows, in_memory_loader
from hebbian.trainers.batch import explain_dtype_errors, explained_dtype_errors
from hebbian.trainers.batch import prepare_batch as default_prepare_batch

Device = Optional[Union[str, torch.device]]
AMP_MODES = (None, "amp")


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model without any)."""
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


def parameter_dtype(model: nn.Module) -> Optional[torch.dtype]:
    """The dtype of the model's first floating-point parameter (what its inputs must be), or ``None``."""
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), None)


def _check_amp_mode(amp_mode: Optional[str]) -> None:
    if amp_mode not in AMP_MODES:
        raise ValueError(f"amp_mode must be None or 'amp', got {amp_mode!r}")


def _detached_loss(x: Tensor, y: Tensor, y_pred: Tensor, loss: Tensor) -> Tensor:
    return loss.detach()


class SupervisedTrainer(Engine):
    """Backprop training in an Ignite engine: what ``create_supervised_trainer`` builds, with this package's batches.

    A thin shell over ``ignite.engine.supervised_training_step`` (``_amp`` with ``amp_mode="amp"``). The output of
    each iteration is the detached loss tensor (no host sync per batch).

    Args:
        model: the model to train (already on ``device``).
        optimizer: its optimizer.
        criterion: loss function ``(y_pred, y) -> loss``.
        device: where batches go (default: the model's device).
        non_blocking: asynchronous host-to-device copies.
        prepare_batch: ``(batch, device, non_blocking) -> (x, y)``.
        output_transform: ``(x, y, y_pred, loss) -> output`` (default: the detached loss).
        amp_mode: ``None`` or ``"amp"`` (``torch.autocast``; pass ``scaler`` for float16 gradient scaling).
        scaler: a ``torch.amp.GradScaler`` for ``amp_mode="amp"``.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        criterion: Callable[[Tensor, Tensor], Tensor],
        device: Device = None,
        *,
        non_blocking: bool = False,
        prepare_batch: Callable = default_prepare_batch,
        output_transform: Callable[[Tensor, Tensor, Tensor, Tensor], Any] = _detached_loss,
        amp_mode: Optional[str] = None,
        scaler: Optional[torch.amp.GradScaler] = None,
    ) -> None:
        _check_amp_mode(amp_mode)
        device = model_device(model) if device is None else device
        args = (model, optimizer, criterion, device, non_blocking, prepare_batch)
        if amp_mode == "amp":
            step = supervised_training_step_amp(*args, output_transform=output_transform, scaler=scaler)
        else:
            step = supervised_training_step(*args, output_transform=output_transform)
        super().__init__(explain_dtype_errors(step, parameter_dtype(model), prepare_batch))
        self.model, self.optimizer, self.criterion = model, optimizer, criterion


class SupervisedEvaluator(Engine):
    """Evaluation of a model with Ignite metrics (default: ``accuracy`` and ``loss``), attachable to a trainer.

    pytorch-hebbian's usage works as it was::

        evaluator = SupervisedEvaluator(model, criterion)
        evaluator.attach(trainer, Events.EPOCH_COMPLETED, val_loader)

    Args:
        model: the model (already on ``device``); it is put in eval mode while evaluating, then restored.
        criterion: the loss for the ``loss`` metric; ``None``: only ``accuracy``.
        device: where batches go and metrics accumulate (default: the model's device).
        metrics: ``{name: ignite Metric}`` instead of the defaults.
        non_blocking, prepare_batch, amp_mode: as :class:`SupervisedTrainer`.

    Attributes:
        metrics: the metrics of the last run (``{name: value}``).
        history: the metrics of every run, oldest first.
    """

    def __init__(
        self,
        model: nn.Module,
        criterion: Optional[Callable[[Tensor, Tensor], Tensor]] = None,
        device: Device = None,
        metrics: Optional[Dict[str, Metric]] = None,
        *,
        non_blocking: bool = False,
        prepare_batch: Callable = default_prepare_batch,
        amp_mode: Optional[str] = None,
    ) -> None:
        _check_amp_mode(amp_mode)
        device = model_device(model) if device is None else torch.device(device)
        factory = supervised_evaluation_step_amp if amp_mode == "amp" else supervised_evaluation_step
        step = factory(model, device, non_blocking, prepare_batch)
        super().__init__(explain_dtype_errors(step, parameter_dtype(model), prepare_batch))
        self.model = model
        if metrics is None:
            metrics = {"accuracy": Accuracy(device=device)}
            if criterion is not None:
                metrics["loss"] = Loss(criterion, device=device)
        if not isinstance(metrics, dict) or not all(isinstance(m, Metric) for m in metrics.values()):
            raise TypeError("metrics must be a dict of {name: ignite.metrics.Metric}")
        for name, metric in metrics.items():
            metric.attach(self, name)
        self.history: List[Dict[str, Any]] = []
        self.add_event_handler(Events.STARTED, self._remember_mode)
        self.add_event_handler(Events.COMPLETED, self._on_completed)

    @property
    def metrics(self) -> Dict[str, Any]:
        return dict(self.history[-1]) if self.history else {}

    def _remember_mode(self, _: Engine) -> None:
        self._was_training = self.model.training

    def _on_completed(self, _: Engine) -> None:
        self.model.train(self._was_training)
        self.history.append(dict(self.state.metrics))

    def attach(self, trainer: Engine, event_name: Any = Events.EPOCH_COMPLETED, data: Optional[Iterable] = None
               ) -> "SupervisedEvaluator":
        """Run on ``data`` whenever ``trainer`` fires ``event_name`` (e.g. ``Events.EPOCH_COMPLETED(every=5)``)."""
        if data is None:
            raise ValueError("attach needs the data to evaluate on, e.g. attach(trainer, Events.EPOCH_COMPLETED, "
                             "val_loader)")
        trainer.add_event_handler(event_name, lambda _: self.run(data))
        return self


def _batch_features(frozen: nn.Module, batch: Any, device: torch.device, prepare_batch: Callable
                    ) -> Tuple[Tensor, Tensor]:
    x, y = prepare_batch(batch, device, False)
    if y is None:
        raise ValueError("the linear probe needs labelled batches (x, y)")
    with torch.no_grad(), explained_dtype_errors(x, parameter_dtype(frozen)):
        return frozen(x), y


def frozen_features(frozen: nn.Module, loader: Iterable, device: torch.device,
                    prepare_batch: Callable = default_prepare_batch) -> TensorDataset:
    """One pass of ``frozen`` (already in eval mode) over ``loader``: ``TensorDataset(features, labels)`` on ``device``.

    When the loader has a sized ``dataset``, the batches are written into one tensor of that many rows (rows that stay
    unwritten, e.g. beyond this process's share of a sharded dataset, are never touched and so never committed), and
    the peak memory is one copy of the features instead of two (the batches and their concatenation).

    Raises:
        ValueError: an empty loader, unlabelled batches, or more samples than the loader's dataset holds.
    """
    size = _dataset_size(loader)
    if size is None:
        pairs = [_batch_features(frozen, batch, device, prepare_batch) for batch in loader]
        if not pairs:
            raise ValueError("the probe got an empty data loader")
        return TensorDataset(torch.cat([f for f, _ in pairs]), torch.cat([y for _, y in pairs]))
    out: Optional[Tuple[Tensor, Tensor]] = None
    n = 0
    for batch in loader:
        f, y = _batch_features(frozen, batch, device, prepare_batch)
        if n + len(f) > size:
            raise ValueError(f"the loader yielded more than the {size} samples of its dataset")
        if out is None:
            out = (f.new_empty((size,) + f.shape[1:]), y.new_empty((size,) + y.shape[1:]))
        out[0][n : n + len(f)], out[1][n : n + len(f)] = f, y
        n += len(f)
    if out is None:
        raise ValueError("the probe got an empty data loader")
    return TensorDataset(out[0][:n], out[1][:n])


def _dataset_size(loader: Iterable) -> Optional[int]:
    """Samples in the loader's dataset (an upper bound of what it yields), or None if it does not say."""
    try:
        return len(loader.dataset)  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        return None


class _FeatureStream:
    """Yields ``(frozen(x), y)`` batch by batch from a loader (the uncached mode of the linear probe)."""

    def __init__(self, probe: "LinearProbeEvaluator", frozen: nn.Module, loader: Iterable) -> None:
        self.probe, self.frozen, self.loader = probe, frozen, loader

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Tuple[Tensor, Tensor]]:
        for batch in self.loader:
            yield self.probe.features_of(self.frozen, batch)


def unused_hold_out(validation_fraction: float, early_stopping_patience: Optional[int],
                    plateau_patience: Optional[int]) -> Optional[str]:
    """The one-line complaint when a readout would hold out training features that nothing chooses on (a
    ``validation_fraction`` above 0 with neither early stopping nor a plateau schedule), else ``None``."""
    if validation_fraction > 0 and early_stopping_patience is None and plateau_patience is None:
        return (f"validation_fraction={validation_fraction} holds out training features that nothing chooses on "
                "(early_stopping_patience and plateau_patience are None): pass validation_fraction=0 to train the "
                "readout on all of them, or a patience to choose on the held-out part")
    return None


class LinearProbeEvaluator(Engine):
    """Linear-probe evaluation of Hebbian features, as pytorch-hebbian's ``HebbianEvaluator`` and SoftHebb's probe.

    Each evaluation:

    1. freezes the Hebbian part ``model[:supervised_from]`` (eval mode: BN running statistics, no dropout; no
       gradients) and computes its features of the training and test data ONCE, keeping them in memory
       (``cache=True``; ``N x features`` values each, e.g. 57,600 per MNIST image for ``hebbian_conv``);
    2. trains a fresh readout, a copy of ``model[supervised_from:]`` with re-initialised parameters (plus optional
       dropout in front), with Adam (``lr``) and cross-entropy for ``epochs`` epochs on the cached features;
       optionally with early stopping and ``ReduceLROnPlateau`` (pytorch-hebbian: factor 0.5, patience 5, early
       stopping after 15) on the accuracy of the second loader, restoring the readout of the best epoch;
    3. reports ``train_accuracy``, ``train_loss``, ``test_accuracy``, ``test_loss`` (eval mode) in
       ``self.state.metrics`` and returns them; appends them to ``history``; keeps ``best_score`` (best value of
       ``score_name``, default ``test_accuracy``, over all evaluations) and ``best_metrics``. The last trained readout
       and its engine and optimizer stay available as ``readout``, ``readout_trainer`` and ``readout_optimizer``.

    It is an Ignite engine (one iteration per evaluation), so loggers attach to it, e.g.
    ``tb_logger.attach_output_handler(probe, Events.COMPLETED, tag="probe", metric_names="all",
    global_step_transform=global_step_from_engine(trainer))``. The probe runs under a forked RNG seeded with
    ``seed``, so it neither disturbs nor depends on the training's random stream.

    Args:
        model: an ``nn.Sequential`` (all networks of :mod:`hebbian.models`).
        epochs: readout training epochs (SoftHebb 50; pytorch-hebbian up to 500 with early stopping).
        lr: Adam learning rate.
        batch_size: readout training batch size (cached mode).
        supervised_from: index of the first top-level child that belongs to the readout (default -1, the last).
        dropout: dropout probability in front of the readout during its training (SoftHebb 0.5).
        early_stopping_patience: stop after this many epochs without improvement (``None``: never).
        plateau_patience: halve (``plateau_factor``) the lr after this many epochs without improvement.
        validation_fraction: share of the training features held out (a fixed, seeded split) to drive early
            stopping / plateau and the choice of the best readout epoch. ``0`` (default) keeps pytorch-hebbian's
            behaviour of monitoring the test loader, which selects on the test set; use e.g. ``0.1`` for an
            unbiased test accuracy. Needs ``cache=True`` and a patience: a share held out with neither
            ``early_stopping_patience`` nor ``plateau_patience`` would only take data from the readout (ValueError).
        lr_milestones: fractions ``f`` of ``epochs``; the lr is halved after epoch ``int(epochs * f)`` of each
            (SoftHebb's probe: 0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9, i.e. epochs 10, 17, 25, 30, 35, 40, 45 of 50).
        criterion: readout loss (default cross-entropy).
        device: where features and readout live (default: the model's device).
        cache: compute the frozen features once per evaluation (``False``: recompute them every readout epoch).
        copy_back: copy the trained readout's parameters into ``model[supervised_from:]``.
        seed: seed of the readout initialisation, shuffling and dropout.
        score_name: the metric behind ``best_score`` (default ``test_accuracy``, else ``train_accuracy``).
        prepare_batch: ``(batch, device, non_blocking) -> (x, y)``.

    Example::

        probe = LinearProbeEvaluator(model, epochs=50)
        probe.attach(trainer, Events.EPOCH_COMPLETED(every=5), train_loader, test_loader)
        trainer.run(train_loader, max_epochs=20)
        print(probe.best_score)
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        epochs: int = 50,
        lr: float = 1e-3,
        batch_size: int = 64,
        supervised_from: int = -1,
        dropout: float = 0.0,
        early_stopping_patience: Optional[int] = None,
        plateau_patience: Optional[int] = None,
        plateau_factor: float = 0.5,
        validation_fraction: float = 0.0,
        lr_milestones: Sequence[float] = (),
        criterion: Optional[Callable[[Tensor, Tensor], Tensor]] = None,
        device: Device = None,
        cache: bool = True,
        copy_back: bool = False,
        seed: int = 0,
        score_name: Optional[str] = None,
        prepare_batch: Callable = default_prepare_batch,
    ) -> None:
        if not isinstance(model, nn.Sequential):
            raise TypeError(f"model must be an nn.Sequential (the readout being its last children), "
                            f"got {type(model).__name__}")
        n = len(model)
        if isinstance(supervised_from, bool) or not isinstance(supervised_from, int) or not -n < supervised_from < n \
                or supervised_from % n == 0:
            raise ValueError(f"supervised_from must index a top-level child after the first (1..{n - 1} or -{n - 1}"
                             f"..-1), got {supervised_from!r}")
        for name, value in (("epochs", epochs), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name, value in (("early_stopping_patience", early_stopping_patience),
                            ("plateau_patience", plateau_patience)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
        if isinstance(validation_fraction, bool) or not 0 <= validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction!r}")
        if any(isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < 1 for f in lr_milestones):
            raise ValueError(f"lr_milestones must be fractions of the epochs in (0, 1), got {lr_milestones!r}")
        if validation_fraction > 0 and not cache:
            raise ValueError("validation_fraction needs cache=True (the split is made on the cached features)")
        unused = unused_hold_out(validation_fraction, early_stopping_patience, plateau_patience)
        if unused:
            raise ValueError(unused)
        super().__init__(self._evaluate)
        self.model = model
        self.epochs, self.lr, self.batch_size = epochs, float(lr), batch_size
        self.supervised_from = supervised_from % n
        self.dropout = float(dropout)
        self.early_stopping_patience, self.plateau_patience = early_stopping_patience, plateau_patience
        self.plateau_factor = plateau_factor
        self.validation_fraction = float(validation_fraction)
        self.lr_milestones = tuple(float(f) for f in lr_milestones)
        self.criterion = criterion if criterion is not None else nn.CrossEntropyLoss()
        self.device = model_device(model) if device is None else torch.device(device)
        self.cache, self.copy_back, self.seed = cache, copy_back, seed
        self.score_name = score_name
        self.prepare_batch = prepare_batch
        self.best_score: Optional[float] = None
        self.best_metrics: Dict[str, float] = {}
        self.history: List[Dict[str, float]] = []
        self.readout: Optional[nn.Module] = None
        self.readout_trainer: Optional[SupervisedTrainer] = None
        self.readout_optimizer: Optional[torch.optim.Optimizer] = None
        self.state_dict_user_keys.extend(["best_score", "best_metrics"])

    # ------------------------------------------------------------------ public API
    def run(  # type: ignore[override]
        self, train_loader: Iterable, test_loader: Optional[Iterable] = None
    ) -> Dict[str, float]:
        """Evaluate once; returns ``{"train_accuracy", "train_loss"[, "test_accuracy", "test_loss"]}``."""
        super().run([(train_loader, test_loader)], max_epochs=1)
        return dict(self.state.metrics)

    def attach(self, trainer: Engine, event_name: Any, train_loader: Iterable, test_loader: Optional[Iterable] = None
               ) -> "LinearProbeEvaluator":
        """Evaluate whenever ``trainer`` fires ``event_name``, e.g. ``Events.EPOCH_COMPLETED(every=N)``."""
        trainer.add_event_handler(event_name, lambda _: self.run(train_loader, test_loader))
        return self

    def state_dict(self) -> Dict[str, Any]:  # type: ignore[override]
        self.state.best_score, self.state.best_metrics = self.best_score, self.best_metrics
        return super().state_dict()

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:  # type: ignore[override]
        super().load_state_dict(state_dict)
        self.best_score, self.best_metrics = self.state.best_score, dict(self.state.best_metrics)

    def features_of(self, frozen: nn.Module, batch: Any) -> Tuple[Tensor, Tensor]:
        """``(frozen(x), y)`` of one batch, without gradients."""
        return _batch_features(frozen, batch, self.device, self.prepare_batch)

    # ------------------------------------------------------------------ one evaluation
    def _evaluate(self, engine: Engine, loaders: Tuple[Iterable, Optional[Iterable]]) -> Dict[str, float]:
        train_loader, test_loader = loaders
        frozen = self.model[: self.supervised_from]
        was_training = self.model.training
        frozen.eval()
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.seed)
                metrics = self._probe(frozen, train_loader, test_loader)
        finally:
            self.model.train(was_training)
        engine.state.metrics = metrics
        self.history.append(dict(metrics))
        self._keep_best(metrics)
        return metrics

    def _probe(self, frozen: nn.Module, train_loader: Iterable, test_loader: Optional[Iterable]) -> Dict[str, float]:
        if self.cache:
            features, held_out = self._split(self._cached_features(frozen, train_loader))
            train, train_eval = self._loader(features, shuffle=True), self._loader(features, shuffle=False)
            test = None if test_loader is None else self._loader(self._cached_features(frozen, test_loader), False)
            validation = None if held_out is None else self._loader(held_out, shuffle=False)
        else:
            train = train_eval = _FeatureStream(self, frozen, train_loader)
            test = None if test_loader is None else _FeatureStream(self, frozen, test_loader)
            validation = None
        readout = self._fresh_readout()
        net = nn.Sequential(nn.Dropout(self.dropout), readout) if self.dropout > 0 else readout
        optimizer = torch.optim.Adam(readout.parameters(), lr=self.lr)
        trainer = SupervisedTrainer(net, optimizer, self.criterion, self.device)
        if self.lr_milestones:  # SoftHebb's CustomStepLR: halve after epochs int(E * f)
            steps = torch.optim.lr_scheduler.MultiStepLR(
                optimizer, sorted(max(1, int(self.epochs * f)) for f in self.lr_milestones), gamma=0.5)
            trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: steps.step())
        best: Dict[str, Any] = {}
        if self.early_stopping_patience or self.plateau_patience:
            monitored = validation if validation is not None else test if test is not None else train_eval
            best = self._monitor(trainer, readout, optimizer, monitored)
        trainer.run(train, max_epochs=self.epochs)
        self.readout, self.readout_trainer, self.readout_optimizer = readout, trainer, optimizer
        if best.get("state") is not None:
            readout.load_state_dict(best["state"])
        metrics = self._measure(readout, "train", train_eval)
        if test is not None:
            metrics.update(self._measure(readout, "test", test))
        if self.copy_back:
            target = self.model[self.supervised_from:]
            (target[0] if len(target) == 1 else target).load_state_dict(readout.state_dict())
        return metrics

    def _cached_features(self, frozen: nn.Module, loader: Iterable) -> TensorDataset:
        return frozen_features(frozen, loader, self.device, self.prepare_batch)

    def _split(self, features: TensorDataset) -> Tuple[Union[TensorDataset, TensorRows], Optional[TensorRows]]:
        """``(train, held-out)`` features: a seeded random ``validation_fraction`` is held out (``None`` if 0)."""
        n = len(features)
        n_val = int(round(self.validation_fraction * n))
        if n_val == 0:
            return features, None
        if n_val >= n:
            raise ValueError(f"validation_fraction={self.validation_fraction} leaves no training samples out of {n}")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        return TensorRows(features, order[n_val:]), TensorRows(features, order[:n_val])  # views: no copy

    def _loader(self, features: Union[TensorDataset, TensorRows], shuffle: bool) -> Iterable:
        if shuffle:
            generator = torch.Generator(device=self.device).manual_seed(self.seed)
            return in_memory_loader(features, self.batch_size, shuffle=True, generator=generator)
        return in_memory_loader(features, max(self.batch_size, 1024), shuffle=False)

    def _fresh_readout(self) -> nn.Module:
        readout = copy.deepcopy(self.model[self.supervised_from:])
        if len(readout) == 1:
            readout = readout[0]
        for module in readout.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
        for p in readout.parameters():
            p.requires_grad_(True)
        return readout.train()

    def _monitor(self, trainer: Engine, readout: nn.Module, optimizer: torch.optim.Optimizer, data: Iterable
                 ) -> Dict[str, Any]:
        """Per-epoch validation accuracy drives early stopping / ReduceLROnPlateau; returns the best readout holder."""
        validator = SupervisedEvaluator(readout, None, self.device)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: validator.run(data))
        best: Dict[str, Any] = {"accuracy": -1.0, "state": None}

        def keep(engine: Engine) -> None:
            if engine.state.metrics["accuracy"] > best["accuracy"]:
                best["accuracy"] = engine.state.metrics["accuracy"]
                best["state"] = copy.deepcopy(readout.state_dict())

        validator.add_event_handler(Events.COMPLETED, keep)
        if self.plateau_patience:
            validator.add_event_handler(Events.COMPLETED, ReduceLROnPlateauScheduler(
                optimizer, "accuracy", mode="max", factor=self.plateau_factor, patience=self.plateau_patience))
        if self.early_stopping_patience:
            validator.add_event_handler(Events.COMPLETED, EarlyStopping(
                self.early_stopping_patience, lambda e: e.state.metrics["accuracy"], trainer))
        return best

    def _measure(self, readout: nn.Module, prefix: str, data: Iterable) -> Dict[str, float]:
        evaluator = SupervisedEvaluator(readout, self.criterion, self.device)
        evaluator.run(data)
        return {f"{prefix}_{k}": float(v) for k, v in evaluator.metrics.items()}

    def _keep_best(self, metrics: Dict[str, float]) -> None:
        name = self.score_name or ("test_accuracy" if "test_accuracy" in metrics else "train_accuracy")
        if name not in metrics:
            raise KeyError(f"score_name {name!r} is not among the probe's metrics {sorted(metrics)}")
        if self.best_score is None or metrics[name] > self.best_score:
            self.best_score, self.best_metrics = float(metrics[name]), dict(metrics)


#: pytorch-hebbian's name of the linear probe.
HebbianEvaluator = LinearProbeEvaluator
