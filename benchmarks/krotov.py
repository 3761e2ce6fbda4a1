"""Krotov-Hopfield on MNIST: one epoch of our trainer against a dense loop and the floor, at two settings.

* pytorch-hebbian's ``hebbian_simple.py`` setting (784 -> 2000, p = 2, k = 2, batch 1024);
* the published MNIST setting (784 -> 2000, p = 3, k = 7, delta = 0.4, batch 100: pytorch-hebbian's
  ``examples/params/mnist.json``), where a pass over the whole weight (p-metric weights, update, max-abs, guard,
  step) would weigh as much as the product at small batches; ours touches only the rows the batch's winners and
  rank-k units write (``LearningRule.support``, docs/performance.md). Two of our model variants: ``krotov_fc`` (dot-product layer: the forward
  pass computes ``W x`` and the rule computes the current with the cached p-metric weights, two products per batch)
  and ``krotov_fc(readout_current="p")`` (a :class:`~hebbian.models.PMetricLinear`: the forward pass computes the
  current, which the rule reuses: one product per batch). At that setting also ``torch.compile`` of the rule's
  update against the same update run eagerly (not in quick mode).

* **ours**: :class:`~hebbian.trainers.HebbianTrainer` on ``create_model("krotov_fc")`` with ``create("krotov")``
  (p = 2, k = 2, delta = 0.4, pytorch-hebbian's ``KrotovsRule()`` defaults) and :class:`~hebbian.optim.Local`
  (lr 0.01), fed by :func:`~hebbian.data.in_memory_loader` (shuffled): data handling, Ignite engine and NaN guard
  included.
* **dense**: the straightforward minibatch implementation of the numpy notebook / pytorch-hebbian, written here
  over contiguous slices of the pre-loaded tensor (no shuffling, no engine: favourable to it): a dense activation
  matrix ``g`` (B x M) and the update ``g.T @ x``.
* **floor**: only the epoch's forward products ``x @ W.T`` over the same slices.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Callable, List, Optional, Tuple

import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from benchmarks.report import Config, Row, time_row
from benchmarks.timing import interleaved
from hebbian.data import DatasetNotFoundError, in_memory_loader, load_dataset
from hebbian.models import create_model
from hebbian.optim import Local
from hebbian.rules import create
from hebbian.trainers import HebbianTrainer

MNIST_SHAPE = (60000, 1, 28, 28)
K, DELTA, LR, PREC = 2, 0.4, 0.01, 1e-30


def mnist_or_random(cfg: Config, samples: Optional[int] = None) -> TensorDataset:
    """MNIST's 60,000 training images on ``cfg.device`` (or the first ``samples``); random data of that shape if absent.

    The quick mode always uses random data (no disk access). A fallback is recorded in ``cfg.notes``.
    """
    n = samples or MNIST_SHAPE[0]
    dataset = None
    if not cfg.quick:
        try:
            dataset = load_dataset("mnist", root=cfg.data_root, limit=n)
        except (DatasetNotFoundError, OSError, RuntimeError) as err:
            cfg.notes.append(f"MNIST not found ({type(err).__name__}); Krotov rows use random data of MNIST's shape")
    if dataset is None:
        g = torch.Generator().manual_seed(0)
        dataset = TensorDataset(torch.rand((n,) + MNIST_SHAPE[1:], generator=g), torch.randint(0, 10, (n,), generator=g))
    return TensorDataset(*(t.to(cfg.device) for t in dataset.tensors))


#: the published MNIST setting (pytorch-hebbian examples/params/mnist.json): p, k, delta, lr, batch size
PUBLISHED = {"p": 3.0, "k": 7, "delta": 0.4, "lr": 0.04, "batch": 100}


def make_trainer(dataset: TensorDataset, hidden: int, device: torch.device, p: float = 2.0, k: int = K,
                 lr: float = LR, readout_current: str = "dot") -> HebbianTrainer:
    """pytorch-hebbian's set-up: Linear(784 -> hidden, no bias) -> RePU -> readout; KrotovsRule() by default."""
    torch.manual_seed(0)
    extra = {"readout_current": "p", "p": p} if readout_current == "p" else {}
    model = create_model("krotov_fc", hidden=hidden, **extra).to(device)
    rule = create("krotov", p=p, k=k, delta=DELTA)
    return HebbianTrainer(model, rule, Local(model.named_parameters(), lr=lr), device=device)


def trainer_epoch(dataset: TensorDataset, hidden: int, batch_size: int, device: torch.device,
                  **setting: Any) -> Callable[[], None]:
    """One epoch of our trainer with its default data path (shuffled in-memory loader)."""
    trainer = make_trainer(dataset, hidden, device, **setting)
    loader = in_memory_loader(dataset, batch_size)
    return lambda: trainer.run(loader, epochs=1)


def dense_step(x: Tensor, w: Tensor, k: int = K, delta: float = DELTA, p: float = 2.0) -> Tensor:
    """The dense minibatch Krotov update of ``w`` for ``x`` (B, D), as the numpy notebook writes it (any p)."""
    u = x @ (w.sign() * w.abs().pow(p - 1.0)).t()
    top = u.topk(k, dim=1).indices
    g = torch.zeros_like(u)
    g.scatter_(1, top[:, :1], 1.0)
    g.scatter_(1, top[:, k - 1 : k], -delta)
    ds = g.t() @ x - (g * u).sum(0).unsqueeze(1) * w
    return ds / ds.abs().amax().clamp_min(PREC)


def flat_inputs(dataset: TensorDataset) -> Tensor:
    return dataset.tensors[0].reshape(len(dataset), -1)


def dense_epoch(dataset: TensorDataset, hidden: int, batch_size: int, device: torch.device, p: float = 2.0,
                k: int = K, lr: float = LR) -> Callable[[], None]:
    x_all = flat_inputs(dataset)
    w = make_trainer(dataset, hidden, device).model.linear1.weight.detach().clone()

    def run() -> None:
        for start in range(0, x_all.shape[0], batch_size):
            w.add_(dense_step(x_all[start : start + batch_size], w, k, DELTA, p), alpha=lr)

    return run


def floor_epoch(dataset: TensorDataset, hidden: int, batch_size: int, device: torch.device) -> Callable[[], None]:
    x_all = flat_inputs(dataset)
    w = make_trainer(dataset, hidden, device).model.linear1.weight.detach().clone()

    def run() -> None:
        for start in range(0, x_all.shape[0], batch_size):
            x_all[start : start + batch_size] @ w.t()

    return run


def check_same_update(dataset: TensorDataset, hidden: int, device: torch.device, p: float = 2.0, k: int = K,
                      readout_current: str = "dot") -> None:
    """The benchmark's dense loop and our rule must compute the same update (else the comparison is meaningless)."""
    trainer = make_trainer(dataset, hidden, device, p=p, k=k, readout_current=readout_current)
    layer, rule = trainer.model.linear1, trainer.bindings[0].rule
    x = flat_inputs(dataset)[:256]
    with torch.no_grad():
        ours = rule.update(layer, x, layer(x))
        theirs = dense_step(x, layer.weight.detach(), k, DELTA, p)
    if not torch.allclose(ours, theirs, rtol=1e-4, atol=1e-5):
        raise AssertionError(f"dense reference and krotov rule disagree: max diff {(ours - theirs).abs().max():.3g}")


def published_rows(cfg: Config, dataset: TensorDataset, hidden: int) -> List[Row]:
    """The published MNIST setting (p = 3, k = 7, delta = 0.4, batch 100): both model variants vs dense and floor."""
    s = PUBLISHED
    batch = 64 if cfg.quick else s["batch"]
    for current in ("dot", "p"):
        check_same_update(dataset, hidden, cfg.device, p=s["p"], k=s["k"], readout_current=current)
    setting = {"p": s["p"], "k": s["k"], "lr": s["lr"]}
    t = interleaved({
        "ours": trainer_epoch(dataset, hidden, batch, cfg.device, **setting),
        "ours, p-current layer": trainer_epoch(dataset, hidden, batch, cfg.device, readout_current="p", **setting),
        "dense": dense_epoch(dataset, hidden, batch, cfg.device, **setting),
        "floor": floor_epoch(dataset, hidden, batch, cfg.device),
    }, cfg.device, reps=cfg.reps)
    what = f"{len(dataset)} x 784 -> {hidden}, p=3, k=7, delta=0.4, batch {batch}"
    return [
        time_row("Krotov FC published setting vs dense", t, "ours", "dense", 0.5, what + "; krotov_fc (W x layer)"),
        time_row("Krotov FC published setting vs floor", t, "ours", "floor", 2.0,
                 "krotov_fc: forward W x + rule's current with cached p-weights (2 products)"),
        time_row("Krotov FC published setting, p-current layer vs floor", t, "ours, p-current layer", "floor", 2.0,
                 "krotov_fc(readout_current='p'): the layer's output is the current (1 product)"),
    ]


def rule_updates(dataset: TensorDataset, hidden: int, batch_size: int, device: torch.device, compiled: bool,
                 **setting: Any) -> Callable[[], None]:
    """The rule's update alone (``rule.update`` on the p-current layer's output), for every batch of a fixed
    epoch's worth of inputs, eagerly or through ``torch.compile(dynamic=True)``: no step, so every call sees the same
    weights and both variants do the same work."""
    trainer = make_trainer(dataset, hidden, device, readout_current="p", **setting)
    layer, rule = trainer.model.linear1, trainer.bindings[0].rule
    x_all = flat_inputs(dataset)
    with torch.no_grad():
        batches = [(x, layer(x)) for x in x_all.split(batch_size)]

    def update(x: Tensor, u: Tensor) -> Tensor:
        return rule.update(layer, x, u)

    step = torch.compile(update, dynamic=True) if compiled else update

    def run() -> None:
        with torch.no_grad():
            for x, u in batches:
                step(x, u)

    return run


def compile_rows(cfg: Config, dataset: TensorDataset, hidden: int) -> List[Row]:
    """torch.compile of the rule's update at the published setting against the same update run eagerly.

    Skipped (with a note) where torch.compile cannot build for this machine (e.g. no C++ compiler for a CPU)."""
    s = PUBLISHED
    setting = {"p": s["p"], "k": s["k"], "lr": s["lr"]}
    samples = min(len(dataset), 6000)  # a tenth of MNIST: the comparison is per batch, and compiling costs seconds
    part = TensorDataset(*(t[:samples] for t in dataset.tensors))
    try:
        compiled = rule_updates(part, hidden, s["batch"], cfg.device, True, **setting)
        with warnings.catch_warnings():  # dynamo explains each graph break at length; the row's ratio is the news
            warnings.simplefilter("ignore")
            torch._logging.set_logs(dynamo=logging.ERROR)
            compiled()  # compiles (and warms up) outside the timing
    except Exception as err:  # noqa: BLE001 - any failure to compile is reported, not fatal to the other rows
        cfg.notes.append(f"torch.compile row skipped: {type(err).__name__}: {str(err).splitlines()[0][:120]}")
        return []
    t = interleaved({"compiled": compiled, "eager": rule_updates(part, hidden, s["batch"], cfg.device, False,
                                                                 **setting)}, cfg.device, reps=cfg.reps)
    return [time_row("Krotov FC rule update, torch.compile vs eager", t, "compiled", "eager", None,
                     f"rule.update only, {samples} x 784 -> {hidden}, p=3, k=7, batch {s['batch']}; dynamic=True")]


def loader_epoch(loader: DataLoader) -> Callable[[], None]:
    def run() -> None:
        for _ in loader:
            pass

    return run


def sizes(cfg: Config) -> Tuple[int, int, int]:
    """(samples, hidden units, batch size): MNIST's full epoch, or tiny ones in quick mode."""
    return (2048, 64, 256) if cfg.quick else (MNIST_SHAPE[0], 2000, 1024)


def run(cfg: Config) -> List[Row]:
    samples, hidden, batch = sizes(cfg)
    dataset = mnist_or_random(cfg, samples)
    check_same_update(dataset, hidden, cfg.device)
    variants = {
        "ours": trainer_epoch(dataset, hidden, batch, cfg.device),
        "dense": dense_epoch(dataset, hidden, batch, cfg.device),
        "floor": floor_epoch(dataset, hidden, batch, cfg.device),
    }
    t = interleaved(variants, cfg.device, reps=cfg.reps)
    what = f"{samples} x 784 -> {hidden}, batch {batch}"
    rows = [
        time_row("Krotov FC epoch vs dense", t, "ours", "dense", 0.5, what),
        time_row("Krotov FC epoch vs floor", t, "ours", "floor", 1.5, "floor = forward products x @ W.T only"),
    ]
    rows += published_rows(cfg, dataset, hidden)
    if not cfg.quick:
        rows += compile_rows(cfg, dataset, hidden)
    if cfg.is_cuda:
        rows.append(time_row("Krotov FC epoch (GPU-resident data)", t, "ours", None, 0.1, what))
    old = DataLoader(dataset, batch_size=None, sampler=BatchSampler(RandomSampler(dataset), batch, False))
    lt = interleaved(
        {"in_memory_loader": loader_epoch(in_memory_loader(dataset, batch)), "list sampler": loader_epoch(old)},
        cfg.device, reps=cfg.reps,
    )
    rows.append(time_row("in_memory_loader epoch", lt, "in_memory_loader", None, 0.1, "shuffled, batches of " + str(batch)))
    rows.append(time_row(
        "in_memory_loader vs list sampler", lt, "in_memory_loader", "list sampler", None,
        "DataLoader(TensorDataset, sampler=BatchSampler(RandomSampler)), the previous default",
    ))
    return rows
