"""Krotov & Hopfield's supervised top layer as a probe protocol (``krotov_hopfield``).

The frozen hidden currents :math:`h_\\mu` (the Hebbian layer's output, before its RePU) feed a single trained layer

.. math::
    c_\\alpha = \\tanh\\Big(\\beta \\sum_\\mu S_{\\alpha\\mu}\\, \\max(h_\\mu, 0)^n\\Big), \\qquad
    L = \\sum_{\\text{samples}} \\sum_\\alpha |c_\\alpha - t_\\alpha|^m, \\quad t_\\alpha = \\pm 1 \\text{ (one-hot in } \\pm 1)

and the predicted class is :math:`\\arg\\max_\\alpha c_\\alpha`. The RePU features are divided by one scalar (the
mean over training samples of their largest feature) so that the grid of ``beta`` means the same at every stage of
training; with a learned ``S`` this only rescales ``beta``.

Protocol (model selection on a validation split carved from the training data; the test split is used once):
for every ``beta`` in ``beta_grid`` (one engine iteration each), ``S`` is trained with Adam (learning rate linearly
annealed to 0 over ``epochs``) on the training part and its validation accuracy is measured after every epoch; the
(``beta``, epoch) with the best validation accuracy is kept (ties: the earlier), and only that readout is scored on
the test split.

Provenance: the form of the layer (RePU power ``n``, ``tanh`` with ``beta``, the ``|c - t|^m`` loss) is the paper's
(Krotov & Hopfield, PNAS 116(16):7723, 2019, arXiv:1806.10181). Its values of ``n``, ``m``, ``beta``, the optimizer
and the schedule could not be read in the paper in this project (docs/results.md, "sources"): the defaults here
(``n = 4.5``, ``m = 6``, Adam) are this project's choices and ``beta`` is chosen on the validation split.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from ignite.engine import Engine, Events
from torch import Tensor, nn

from hebbian.data.splits import stratified_indices
from hebbian.probes.registry import register_probe
from hebbian.trainers.batch import prepare_batch as default_prepare_batch
from hebbian.probes.probe import model_features
from hebbian.trainers.evaluators import model_device

DEFAULT_BETA_GRID = (1.0, 3.0, 10.0, 30.0)


def hidden_cut(model: nn.Sequential) -> int:
    """Index of the first child applying a power nonlinearity (``n`` attribute, e.g. RePU), else of the last child."""
    for i, child in enumerate(model):
        if i > 0 and hasattr(child, "n") and not isinstance(child, (nn.Linear, nn.Conv2d)):
            return i
    return len(model) - 1


def top_layer_output(a: Tensor, weight: Tensor, beta: float) -> Tensor:
    """:math:`c = \\tanh(\\beta\\, a S^T)` for RePU features ``a (B, M)`` and ``weight`` ``S (C, M)``: ``(B, C)``."""
    return torch.tanh(beta * (a @ weight.t()))


def top_layer_loss(c: Tensor, labels: Tensor, m: float) -> Tensor:
    """:math:`\\sum |c - t|^m` with :math:`t = -1` except :math:`t_{y} = +1` (a 0-d tensor)."""
    t = torch.full_like(c, -1.0).scatter_(1, labels.view(-1, 1), 1.0)
    return (c - t).abs().pow(m).sum()


def _check_number(name: str, value: Any, low: float, strict: bool = True) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and (value > low if strict else value >= low)
    if not ok:
        raise ValueError(f"{name} must be a number {'>' if strict else '>='} {low}, got {value!r}")
    return float(value)


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class KrotovHopfieldProbe(Engine):
    """The Krotov-Hopfield top layer trained on the frozen hidden currents of ``model`` (see the module docstring).

    ``run(train_loader, test_loader)`` returns (and leaves in ``state.metrics``) ``train_accuracy`` (of the kept
    readout on the training part), ``val_accuracy``, ``test_accuracy`` (when a test loader is given), ``beta`` and
    ``readout_epoch`` (the kept choice). ``history`` holds every candidate's validation curve.

    Args:
        model: an ``nn.Sequential``; its children before the first RePU (``hidden_cut``) give the currents.
        n: RePU power (> 0). m: loss exponent (>= 1). beta_grid: candidate ``beta`` values (> 0).
        epochs: Adam epochs per candidate. lr: Adam's initial learning rate (linearly annealed to 0).
        batch_size: minibatch size. validation_fraction: held-out share of the training data, in (0, 1).
        seed: seed of the split, the initial ``S`` and the minibatch order.
        device: where the features and the readout live (default: the model's device).
        prepare_batch: ``(batch, device, non_blocking) -> (x, y)``.
    """

    def __init__(self, model: nn.Module, *, n: float = 4.5, m: float = 6.0,
                 beta_grid: Sequence[float] = DEFAULT_BETA_GRID, epochs: int = 30, lr: float = 1e-3,
                 batch_size: int = 100, validation_fraction: float = 0.1, seed: int = 0,
                 device: Optional[torch.device] = None, prepare_batch: Callable = default_prepare_batch) -> None:
        if not isinstance(model, nn.Sequential):
            raise TypeError(f"model must be an nn.Sequential (hidden layer, RePU, readout), got {type(model).__name__}")
        self.n, self.m = _check_number("n", n, 0.0), _check_number("m", m, 1.0, strict=False)
        grid = list(beta_grid)
        if not grid:
            raise ValueError("beta_grid must hold at least one number > 0, got an empty list")
        self.beta_grid = [_check_number("beta_grid entries", b, 0.0) for b in grid]
        self.epochs, self.batch_size = _check_count("epochs", epochs), _check_count("batch_size", batch_size)
        self.lr = _check_number("lr", lr, 0.0)
        if isinstance(validation_fraction, bool) or not isinstance(validation_fraction, (int, float)) \
                or not 0 < validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction!r}")
        super().__init__(self._fit_one)
        self.model, self.validation_fraction, self.seed = model, float(validation_fraction), seed
        self.device = torch.device(device) if device is not None else model_device(model)
        self.prepare_batch = prepare_batch
        self.history: List[Dict[str, Any]] = []
        self.weight: Optional[Tensor] = None
        self.scale: Optional[Tensor] = None
        self._data: Dict[str, Any] = {}
        self.add_event_handler(Events.COMPLETED, self._finish)

    # ------------------------------------------------------------------ public API
    def run(self, train_loader: Iterable, test_loader: Optional[Iterable] = None) -> Dict[str, Any]:  # type: ignore[override]
        """Evaluate once; returns the metrics."""
        a, y = self.repu_features(train_loader)
        kept, held = stratified_indices(y.cpu(), self.validation_fraction, self.seed)
        kept, held = kept.to(a.device), held.to(a.device)
        self.scale = a[kept].amax(dim=1).mean().clamp_min(1e-30)
        a.div_(self.scale)
        self._data = {"train": (a[kept], y[kept]), "val": (a[held], y[held]), "test_loader": test_loader,
                      "classes": self._classes(y)}
        self.history, self.weight = [], None
        try:
            super().run(self.beta_grid, max_epochs=1)
        finally:
            self._data = {}
        return dict(self.state.metrics)

    def repu_features(self, loader: Iterable) -> Tuple[Tensor, Tensor]:
        """:math:`\\max(h, 0)^n` of the frozen hidden currents ``h`` of ``loader``, and the labels."""
        h, y = model_features(self.model, hidden_cut(self.model), loader, self.prepare_batch).tensors
        return h.flatten(1).to(self.device, torch.float32).relu_().pow_(self.n), y.to(self.device)  # in place: S x M

    def predict(self, a: Tensor) -> Tensor:
        """Class predictions of the kept readout for unscaled RePU features ``a``."""
        if self.weight is None or self.scale is None:
            raise RuntimeError("the probe has not been run yet")
        return top_layer_output(a / self.scale, self.weight, self.state.metrics["beta"]).argmax(dim=1)

    # ------------------------------------------------------------------ one candidate
    def _classes(self, labels: Tensor) -> int:
        last = [m for m in self.model[hidden_cut(self.model):].modules() if isinstance(m, nn.Linear)]
        return last[-1].out_features if last else int(labels.max()) + 1

    def _fit_one(self, engine: Engine, beta: float) -> Dict[str, Any]:
        (a, y), (av, yv) = self._data["train"], self._data["val"]
        g = torch.Generator().manual_seed(self.seed)
        weight = (torch.randn(self._data["classes"], a.shape[1], generator=g) / a.shape[1] ** 0.5).to(a.device)
        weight.requires_grad_(True)
        opt = torch.optim.Adam([weight], lr=self.lr)
        steps = self.epochs * -(-a.shape[0] // self.batch_size)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: max(0.0, 1.0 - i / steps))
        curve: List[float] = []
        best = (-1.0, 0, weight.detach().clone())
        for epoch in range(1, self.epochs + 1):
            for idx in torch.randperm(a.shape[0], generator=g).to(a.device).split(self.batch_size):
                loss = top_layer_loss(top_layer_output(a[idx], weight, beta), y[idx], self.m)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            with torch.no_grad():
                acc = float((top_layer_output(av, weight, beta).argmax(1) == yv).float().mean())
            curve.append(acc)
            if acc > best[0]:
                best = (acc, epoch, weight.detach().clone())
        self.history.append({"beta": beta, "val_curve": curve, "best_epoch": best[1], "val_accuracy": best[0],
                             "weight": best[2]})
        return {"beta": beta, "val_accuracy": best[0], "epoch": best[1]}

    # ------------------------------------------------------------------ the choice, then the test split once
    def _finish(self, engine: Engine) -> None:
        chosen = max(self.history, key=lambda h: (h["val_accuracy"], -self.beta_grid.index(h["beta"])))
        self.weight = chosen["weight"]
        a, y = self._data["train"]
        with torch.no_grad():
            train_acc = float((top_layer_output(a, self.weight, chosen["beta"]).argmax(1) == y).float().mean())
        metrics: Dict[str, Any] = {"train_accuracy": train_acc, "val_accuracy": chosen["val_accuracy"],
                                   "beta": chosen["beta"], "readout_epoch": chosen["best_epoch"]}
        self.state.metrics = metrics
        if self._data["test_loader"] is not None:
            at, yt = self.repu_features(self._data["test_loader"])
            with torch.no_grad():
                metrics["test_accuracy"] = float((self.predict(at) == yt).float().mean())
        self.history = [{k: v for k, v in h.items() if k != "weight"} for h in self.history]


@register_probe(
    "krotov_hopfield",
    {"n": 4.5, "m": 6.0, "beta_grid": DEFAULT_BETA_GRID, "epochs": 30, "lr": 1e-3, "batch_size": 100,
     "validation_fraction": 0.1},
    "Krotov & Hopfield's top layer on the frozen hidden currents: tanh(beta S relu(h)^n), loss sum |c - t|^m "
    "with t = +-1, Adam with a linearly annealed rate; beta and the epoch chosen on a stratified validation "
    "split of the training data, test split used once",
    "Krotov & Hopfield, PNAS 116(16):7723 (2019), arXiv:1806.10181 (form of the layer; n, m, beta, optimizer "
    "not verified: see docs/results.md)",
)
def _krotov_hopfield(model: nn.Module, **params: Any) -> Engine:
    return KrotovHopfieldProbe(model, **params)


__all__ = ["KrotovHopfieldProbe", "top_layer_output", "top_layer_loss", "hidden_cut", "DEFAULT_BETA_GRID"]
