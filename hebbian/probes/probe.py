"""The default linear probe: standardised frozen features, logistic regression to convergence, L2 chosen on a
validation split carved from the training data, the test split touched once.

:class:`LogisticProbe` is an Ignite engine with one iteration per candidate ``λ`` (so a ``ProgressBar`` and a
``TensorboardLogger`` attach to it as to any engine: each iteration's output is ``{"l2", "val_accuracy",
"train_accuracy", "iterations"}``). Its functional core is :mod:`hebbian.probes.logistic`.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import torch
from ignite.engine import Engine, Events
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from hebbian.data.splits import stratified_indices
from hebbian.probes.logistic import DEFAULT_L2_GRID, LogisticFit, Standardizer, fit_logistic
from hebbian.trainers.batch import prepare_batch as default_prepare_batch
from hebbian.trainers.evaluators import frozen_features, model_device


def model_features(model: nn.Sequential, cut: int, loader: Iterable, prepare_batch: Callable = default_prepare_batch
                   ) -> TensorDataset:
    """``TensorDataset(model[:cut](x), y)`` over ``loader``, computed in eval mode without gradients on the model's
    device (the model's train/eval mode is restored afterwards)."""
    frozen = model[:cut]
    was_training = model.training
    frozen.eval()
    try:
        return frozen_features(frozen, loader, model_device(model), prepare_batch)
    finally:
        model.train(was_training)


class LogisticProbe(Engine):
    """Linear-probe accuracy of the features of ``model[:supervised_from]``, independent of their scale.

    One evaluation (:meth:`run`):

    1. computes the frozen features (eval mode, no gradients) of the training and test data once;
    2. holds out a seeded, stratified ``validation_fraction`` of the training features;
    3. standardises with the statistics of the remaining training part;
    4. for every ``λ`` in ``l2_grid``, largest first (one engine iteration each, each fit starting from the last),
       fits a multinomial logistic regression to
       convergence (:func:`~hebbian.probes.logistic.fit_logistic`) and measures its validation accuracy;
    5. keeps the ``λ`` with the best validation accuracy (ties: the larger), refits it on the whole training split
       (standardised with its statistics) when ``refit`` is set, and only then measures the test accuracy, once.

    ``state.metrics`` / the return value: ``train_accuracy`` (of the final readout on the data it was fitted on),
    ``val_accuracy`` (of the selected ``λ``, fitted without the validation part), ``test_accuracy`` (when a test
    loader is given), ``l2``, ``iterations`` and ``converged`` (of the final fit). The selection never sees the test
    data: it is passed to the model only after the choice is made.

    Args:
        model: an ``nn.Sequential`` whose children from ``supervised_from`` on are the readout.
        l2_grid: candidate L2 strengths ``λ`` (mean cross-entropy on standardised features).
        validation_fraction: share of the training data held out for the choice, in ``(0, 1)``.
        refit: refit the chosen ``λ`` on all training data (train + validation) before testing.
        tol: gradient tolerance of each fit. max_iter: most L-BFGS iterations of each fit.
        supervised_from: index of the first readout child (default -1, the last).
        num_classes: classes (default: the readout's ``out_features``, else ``max(label) + 1``).
        seed: seed of the validation split.
        device: where features and fits live (default: the CPU, in float64).
        prepare_batch: ``(batch, device, non_blocking) -> (x, y)``.
    """

    def __init__(self, model: nn.Module, *, l2_grid: Sequence[float] = DEFAULT_L2_GRID,
                 validation_fraction: float = 0.2, refit: bool = True, tol: float = 1e-6, max_iter: int = 1000,
                 supervised_from: int = -1, num_classes: Optional[int] = None, seed: int = 0,
                 device: Optional[torch.device] = None, prepare_batch: Callable = default_prepare_batch) -> None:
        if not isinstance(model, nn.Sequential):
            raise TypeError(f"model must be an nn.Sequential (its last children the readout), got {type(model).__name__}")
        n = len(model)
        if isinstance(supervised_from, bool) or not isinstance(supervised_from, int) or not -n < supervised_from < n \
                or supervised_from % n == 0:
            raise ValueError(f"supervised_from must index a top-level child after the first, got {supervised_from!r}")
        grid = list(l2_grid)
        if not grid or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0 for v in grid):
            raise ValueError(f"l2_grid must be a non-empty list of numbers >= 0, got {l2_grid!r}")
        if isinstance(validation_fraction, bool) or not 0 < validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction!r}")
        if not tol > 0:
            raise ValueError(f"tol must be > 0, got {tol!r}")
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
        super().__init__(self._fit_one)
        self.model, self.supervised_from = model, supervised_from % n
        self.l2_grid = sorted((float(v) for v in grid), reverse=True)  # strongest first: each fit starts from the last
        self.validation_fraction, self.refit, self.tol, self.max_iter = float(validation_fraction), refit, tol, max_iter
        self.num_classes, self.seed = num_classes, seed
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self.prepare_batch = prepare_batch
        self.history: List[Dict[str, Any]] = []
        self.readout: Optional[LogisticFit] = None
        self.add_event_handler(Events.COMPLETED, self._finish)
        self._data: Dict[str, Any] = {}

    # ------------------------------------------------------------------ public API
    def run(self, train_loader: Iterable, test_loader: Optional[Iterable] = None) -> Dict[str, Any]:  # type: ignore[override]
        """Evaluate once (see the class docstring); returns the metrics."""
        features = self.features(train_loader)
        self._data = {"train": features, "test_loader": test_loader, **self._split(features)}
        self.history = []
        try:
            super().run(self.l2_grid, max_epochs=1)
        finally:
            self._data = {}
        return dict(self.state.metrics)

    def features(self, loader: Iterable) -> TensorDataset:
        """The frozen features of ``loader`` (``model[:supervised_from]`` in eval mode), on the probe's device."""
        x, y = model_features(self.model, self.supervised_from, loader, self.prepare_batch).tensors
        return TensorDataset(x.flatten(1).to(self.device, torch.float64), y.to(self.device))

    # ------------------------------------------------------------------ one evaluation
    def _classes(self, labels: Tensor) -> int:
        if self.num_classes is not None:
            return self.num_classes
        readout = self.model[self.supervised_from:]
        last = [m for m in readout.modules() if isinstance(m, nn.Linear)]
        return last[-1].out_features if last else int(labels.max()) + 1

    def _split(self, features: TensorDataset) -> Dict[str, Any]:
        x, y = features.tensors
        kept, held = stratified_indices(y, self.validation_fraction, self.seed)
        kept, held = kept.to(x.device), held.to(x.device)
        scaler = Standardizer.fit(x[kept])
        return {"fit": (scaler(x[kept]), y[kept]), "val": (scaler(x[held]), y[held]), "scaler": scaler,
                "classes": self._classes(y)}

    def _fit_one(self, engine: Engine, l2: float) -> Dict[str, Any]:
        d = self._data
        start = self.history[-1]["fit"] if self.history else None
        fit = fit_logistic(*d["fit"], d["classes"], l2, tol=self.tol, max_iter=self.max_iter, start=start)
        out = {"l2": l2, "val_accuracy": fit.accuracy(*d["val"]), "train_accuracy": fit.accuracy(*d["fit"]),
               "iterations": fit.iterations, "converged": fit.converged}
        self.history.append({**out, "fit": fit})
        return out

    def _finish(self, engine: Engine) -> None:
        d = self._data
        best = max(self.history, key=lambda h: (h["val_accuracy"], h["l2"]))
        fit, scaler = best["fit"], d["scaler"]
        train_x, train_y = d["fit"]
        if self.refit:
            x, y = d["train"].tensors
            scaler = Standardizer.fit(x)
            train_x, train_y = scaler(x), y
            fit = fit_logistic(train_x, train_y, d["classes"], best["l2"], tol=self.tol, max_iter=self.max_iter,
                               start=fit)
        metrics: Dict[str, Any] = {"train_accuracy": fit.accuracy(train_x, train_y),
                                   "val_accuracy": best["val_accuracy"], "l2": best["l2"],
                                   "iterations": fit.iterations, "converged": fit.converged}
        if d["test_loader"] is not None:  # the test data reach the model only now, after the choice
            test = self.features(d["test_loader"])
            metrics["test_accuracy"] = fit.accuracy(scaler(test.tensors[0]), test.tensors[1])
        self.readout = fit
        engine.state.metrics = metrics


def logistic_probe_metrics(model: nn.Module, train: Iterable, test: Optional[Iterable] = None,
                           **kwargs: Any) -> Dict[str, Any]:
    """One :class:`LogisticProbe` evaluation of ``model`` (keyword arguments as its constructor)."""
    return LogisticProbe(model, **kwargs).run(train, test)
