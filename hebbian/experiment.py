"""One experiment from a resolved config: data, model, rules, trainer, logging, checkpoints and evaluation.

The ``hebbian`` command and the tutorial share this module. A config (see :mod:`hebbian.cli.config`) names a
dataset, a network of :mod:`hebbian.models` and a *method*:

* a registered unsupervised rule (``krotov``, ``softhebb``, ``oja`` ...): the model's Hebbian layers
  (``model.info.hebbian_layers``) learn with :class:`~hebbian.trainers.HebbianTrainer`; evaluated by a linear probe;
* a rule that needs the backprop gradient (``ghl``): the Hebbian layers learn with
  :class:`~hebbian.trainers.ghl.GHLTrainer`, the rest by backprop; evaluated end to end and by a probe;
* ``backprop``: the whole network by backprop (the baseline); evaluated end to end and by a probe;
* ``random``: no training (the random-features baseline); evaluated by a probe.

Example::

    from hebbian.cli.config import resolve_config
    from hebbian.experiment import Experiment

    exp = Experiment(resolve_config("compare_digits", ["rule.name=oja"]))
    exp.fit()
    print(exp.evaluate())  # {'probe_test_accuracy': ..., ...}
"""

from __future__ import annotations

import fnmatch
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch
from ignite.engine import Engine, Events
from torch import nn
from torch.utils.data import TensorDataset

from hebbian.cli.config import BASELINES, Config
from hebbian.cli.errors import ConfigError, UsageError
from hebbian.data import DatasetInfo, channel_stats, get_dataset_info, in_memory_loader, load_dataset, normalize
from hebbian.rules import LearningRule, create, get_rule_info, softhebb_init_
from hebbian.trainers.guard import NonFiniteUpdateError

#: What each method is evaluated by.
METHOD_KINDS = ("hebbian", "ghl", "backprop", "random")


@dataclass
class Data:
    """The training and test splits in memory, and what they are."""

    train: TensorDataset
    test: TensorDataset
    info: DatasetInfo

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        return tuple(self.train.tensors[0].shape[1:])  # type: ignore[return-value]


def select_device(name: str) -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; otherwise the named device (checked to exist)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", f"{name!r} was asked for, but CUDA is not available here; use 'cpu' or 'auto'")
    return device


def load_data(cfg: Config) -> Data:
    """The dataset of ``cfg["data"]``, limited and normalised as configured."""
    d = cfg["data"]
    info = get_dataset_info(d["name"])
    kw = {"root": d["root"], "download": d["download"]}
    train = load_dataset(info.name, train=True, limit=d["train_limit"], **kw)
    test = load_dataset(info.name, train=False, limit=d["test_limit"], **kw)
    norm = d["normalize"]
    if norm is not None:
        mean, std = channel_stats(train) if norm == "dataset" else (norm["mean"], norm["std"])
        try:
            train, test = normalize(train, mean, std), normalize(test, mean, std)
        except ValueError as err:
            raise ConfigError("data.normalize", str(err)) from None
    return Data(train, test, info)


def build_model(cfg: Config, info: DatasetInfo) -> nn.Sequential:
    """The network of ``cfg["model"]`` for the dataset's image shape and classes."""
    from hebbian.models import create_model

    m = cfg["model"]
    try:
        return create_model(m["name"], in_channels=info.channels, input_size=info.size,
                            num_classes=info.num_classes, width=m["width"], **m["options"])
    except TypeError as err:
        raise ConfigError("model.options", f"{m['name']}: {err}") from None
    except ValueError as err:
        raise ConfigError("model", f"{m['name']}: {err}") from None


def method_kind(cfg: Config) -> str:
    """``"backprop"``, ``"random"``, ``"ghl"`` (rules that need the backprop gradient) or ``"hebbian"``."""
    name = cfg["rule"]["name"]
    if name in BASELINES:
        return name
    return "ghl" if get_rule_info(name).needs_global_grad else "hebbian"


def hebbian_layer_names(model: nn.Module) -> List[str]:
    """The layers a local rule trains: the model's declared ``info.hebbian_layers``, else every ``Linear``/``Conv2d``
    before the last top-level child (the readout)."""
    info = getattr(model, "info", None)
    if info is not None and info.hebbian_layers:
        return list(info.hebbian_layers)
    from hebbian.trainers.binding import candidate_layers, supervised_layer_names

    supervised = supervised_layer_names(model, -1)
    return [name for name, _ in candidate_layers(model) if name not in supervised]


@dataclass
class LayerSetting:
    """One Hebbian layer's rule and optimizer settings."""

    rule: LearningRule
    lr: float
    weight_decay: float


def _create_rule(name: str, params: Mapping[str, Any], key: str) -> LearningRule:
    try:
        return create(name, **params)
    except TypeError as err:
        known = ", ".join(get_rule_info(name).defaults()) or "none"
        raise ConfigError(key, f"rule {name!r} does not accept these hyperparameters ({err}); its "
                               f"hyperparameters: {known}") from None
    except ValueError as err:
        raise ConfigError(key, f"rule {name!r}: {err}") from None


def layer_settings(cfg: Config, layers: List[str]) -> Dict[str, LayerSetting]:
    """``{layer: LayerSetting}``: ``rule.params`` and ``train.lr`` / ``train.weight_decay`` for every layer, updated by
    the first matching entry of ``rule.layers`` (``{name or pattern: {params: {...}, lr: x, weight_decay: y}}``)."""
    r, t = cfg["rule"], cfg["train"]
    allowed = {"params", "lr", "weight_decay"}
    for pattern, entry in r["layers"].items():
        key = f"rule.layers.{pattern}"
        if not isinstance(entry, Mapping) or not set(entry) <= allowed:
            raise ConfigError(key, f"expected a mapping with some of {sorted(allowed)}, got {entry!r}")
        if not any(fnmatch.fnmatchcase(name, str(pattern)) for name in layers):
            raise ConfigError(key, f"matches no Hebbian layer of the model; its Hebbian layers: {', '.join(layers)}")
        for k in ("lr", "weight_decay"):
            v = entry.get(k, 0.0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ConfigError(f"{key}.{k}", f"expected a number >= 0, got {v!r}")
    settings = {}
    for name in layers:
        entry = next((e for p, e in r["layers"].items() if fnmatch.fnmatchcase(name, str(p))), {})
        key = f"rule.layers.{name}.params" if entry.get("params") else "rule.params"
        params = {**r["params"], **(entry.get("params") or {})}
        settings[name] = LayerSetting(_create_rule(r["name"], params, key), float(entry.get("lr", t["lr"])),
                                      float(entry.get("weight_decay", t["weight_decay"])))
    return settings


def make_optimizer(cfg: Config, groups: List[Dict[str, Any]], *, key: str = "train.optimizer") -> torch.optim.Optimizer:
    """``local`` (:class:`hebbian.optim.Local`, no weight decay), ``sgd`` or ``adam`` over the parameter groups."""
    from hebbian.optim import Local

    t = cfg["train"]
    kind = t["optimizer"]
    if kind == "local":
        if any(g.get("weight_decay", 0.0) for g in groups):
            raise ConfigError(key, "the 'local' optimizer has no weight decay; use sgd for weight_decay > 0")
        return Local([{k: v for k, v in g.items() if k != "weight_decay"} for g in groups], lr=t["lr"])
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=t["lr"], momentum=t["momentum"])
    return torch.optim.Adam(groups, lr=t["lr"])


def make_scheduler(cfg: Config, optimizer: torch.optim.Optimizer, trainer: Engine, iterations_per_epoch: int
                   ) -> Optional[Any]:
    """The ``train.schedule`` of the learning rate(s), attached to ``trainer`` (``None`` for ``constant``).

    * ``linear``: :math:`\\eta_e = \\eta_0 (1 - e / E)` per epoch (Krotov-Hopfield's annealing);
    * ``cosine``: :math:`\\eta_t = \\eta_0 (1 + \\cos(\\pi t / (E N))) / 2` per iteration, to 0 (GHL's,
      :func:`hebbian.trainers.ghl.ghl_lr_scheduler`).

    Returns:
        The scheduler (it has ``state_dict``, so it goes into the checkpoints).
    """
    t = cfg["train"]
    epochs = max(t["epochs"], 1)
    if t["schedule"] == "linear":
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: max(0.0, 1.0 - e / epochs))
        trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: scheduler.step())
        return scheduler
    if t["schedule"] == "cosine":
        from hebbian.trainers.ghl import ghl_lr_scheduler

        cosine = ghl_lr_scheduler(optimizer, epochs, max(iterations_per_epoch, 1))
        trainer.add_event_handler(Events.ITERATION_STARTED, cosine)
        return cosine
    return None


def check_optimizer(cfg: Config, kind: str) -> None:
    """Methods that follow backprop gradients (``backprop``, ``ghl``) need ``sgd`` or ``adam``."""
    if kind in ("backprop", "ghl") and cfg["train"]["optimizer"] == "local":
        raise ConfigError("train.optimizer", f"{kind} trains with backprop gradients: use 'sgd' (as published) or "
                                             "'adam', not 'local'")


def check_config(cfg: Config) -> None:
    """Everything :class:`Experiment` would reject, checked without loading data or training: the model options,
    the rule hyperparameters of every layer, and the optimizer of the method.

    Raises:
        ConfigError: naming the key.
    """
    kind = method_kind(cfg)
    check_optimizer(cfg, kind)
    model = build_model(cfg, get_dataset_info(cfg["data"]["name"]))
    if kind not in BASELINES:
        layer_settings(cfg, hebbian_layer_names(model))


def initialise(cfg: Config, model: nn.Module, layers: List[str]) -> None:
    """``train.init``: keep the model's initial Hebbian weights, or draw them ``N(0, 1)``, ``N(0, 1)`` rescaled to
    unit-norm rows (``unit``: where Oja-type rules converge), or SoftHebb's radius-25 Gaussian."""
    init = cfg["train"]["init"]
    if init == "default":
        return
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name in layers:
            weight = modules[name].weight
            if init in ("normal", "unit"):
                weight.normal_(0.0, 1.0)
                if init == "unit":
                    norms = weight.flatten(1).norm(dim=1).clamp_min(1e-12)
                    weight.div_(norms.view(-1, *([1] * (weight.dim() - 1))))
            else:
                softhebb_init_(weight)


class Experiment:
    """Everything one run needs, built from a resolved config.

    Attributes:
        cfg: the config.
        device: where the model and batches live.
        data: the in-memory datasets.
        model: the network (an ``nn.Sequential`` whose last child is the readout).
        kind: one of :data:`METHOD_KINDS`.
        trainer: the Ignite engine that trains (``None`` for ``random``).
        to_save: the checkpointable objects (``{"model": ..., "optimizer": ..., "trainer": ...}``).
        train_loader: the training batches (seeded shuffling: the same data order for every method).
        seconds: ``{"train": ..., "probe": ..., "test": ...}`` wall times.
        metrics: what :func:`run` measured.
    """

    def __init__(self, cfg: Config, data: Optional[Data] = None) -> None:
        self.cfg = cfg
        self.device = select_device(cfg["device"])
        self.data = data if data is not None else load_data(cfg)
        self.kind = method_kind(cfg)
        torch.manual_seed(cfg["seed"])
        self.model = build_model(cfg, self.data.info).to(self.device)
        self.layers = hebbian_layer_names(self.model)
        initialise(cfg, self.model, self.layers)
        generator = torch.Generator().manual_seed(cfg["seed"])
        self.train_loader = in_memory_loader(self.data.train, cfg["data"]["batch_size"], shuffle=True,
                                             generator=generator)
        self.seconds: Dict[str, float] = {}
        self.metrics: Dict[str, Any] = {}
        self.scheduler: Optional[Any] = None
        self.trainer: Optional[Engine] = None
        self.to_save: Dict[str, Any] = {"model": self.model}
        if self.kind != "random":
            self._build_trainer()

    # ------------------------------------------------------------------ construction
    def _build_trainer(self) -> None:
        cfg, model = self.cfg, self.model
        if self.kind == "backprop":
            from hebbian.trainers.evaluators import SupervisedTrainer

            check_optimizer(cfg, self.kind)
            optimizer = make_optimizer(cfg, [{"params": list(model.parameters()),
                                              "weight_decay": cfg["train"]["weight_decay"]}])
            self.trainer = SupervisedTrainer(model, optimizer, nn.CrossEntropyLoss(), self.device)
            self.to_save.update(optimizer=optimizer, trainer=self.trainer)
        else:
            settings = layer_settings(cfg, self.layers)
            modules = dict(model.named_modules())
            groups = [{"params": [modules[n].weight], "lr": s.lr, "weight_decay": s.weight_decay}
                      for n, s in settings.items()]
            rules = {n: s.rule for n, s in settings.items()}
            if self.kind == "ghl":
                self.trainer = self._ghl_trainer(rules, groups)
            else:
                from hebbian.trainers import create_hebbian_trainer

                optimizer = make_optimizer(cfg, groups)
                self.trainer = create_hebbian_trainer(model, rules, optimizer, supervised_from=None,
                                                      greedy_epochs=cfg["train"]["greedy_epochs"],
                                                      device=self.device)
            from hebbian.trainers.checkpoint import checkpoint_objects

            self.to_save = checkpoint_objects(self.trainer)
        self.scheduler = make_scheduler(cfg, self.trainer.optimizer, self.trainer, len(self.train_loader))
        if self.scheduler is not None:
            self.to_save["lr_scheduler"] = self.scheduler

    def _ghl_trainer(self, rules: Dict[str, LearningRule], groups: List[Dict[str, Any]]) -> Engine:
        """GHL: the Hebbian layers by ``|local| * sign(dL/dW)``, every other parameter by backprop (``head_lr``)."""
        from hebbian.trainers.ghl import GHLTrainer

        t = self.cfg["train"]
        hebbian = {id(p) for g in groups for p in g["params"]}
        rest = [p for p in self.model.parameters() if id(p) not in hebbian]
        head_lr = t["head_lr"] if t["head_lr"] is not None else t["lr"]
        check_optimizer(self.cfg, self.kind)
        optimizer = make_optimizer(self.cfg, groups + [{"params": rest, "lr": head_lr, "weight_decay": 0.0}])
        return GHLTrainer(self.model, rules, optimizer, loss_fn=nn.CrossEntropyLoss(), device=self.device)

    # ------------------------------------------------------------------ running
    @property
    def epochs(self) -> int:
        return 0 if self.trainer is None else self.cfg["train"]["epochs"]

    def fit(self) -> float:
        """Train for ``train.epochs`` epochs; returns (and keeps in ``seconds["train"]``) the wall time.

        Raises:
            NonFiniteUpdateError: a rule produced a NaN/Inf update (the weights keep their last finite values).
        """
        start = time.perf_counter()
        try:
            if self.trainer is not None and self.epochs > 0:
                self.trainer.run(self.train_loader, max_epochs=self.epochs)
        finally:
            self.seconds["train"] = time.perf_counter() - start
        return self.seconds["train"]

    def eval_loader(self, dataset: TensorDataset) -> Any:
        return in_memory_loader(dataset, self.cfg["data"]["eval_batch_size"], shuffle=False)

    def probe(self) -> Dict[str, float]:
        """Linear-probe accuracy of the frozen features (``probe_train_accuracy``, ``probe_test_accuracy``)."""
        from hebbian.trainers.evaluators import LinearProbeEvaluator

        p = self.cfg["probe"]
        if p["epochs"] == 0:
            return {}
        start = time.perf_counter()
        evaluator = LinearProbeEvaluator(
            self.model, epochs=p["epochs"], lr=p["lr"], batch_size=p["batch_size"], dropout=p["dropout"],
            early_stopping_patience=p["early_stopping"], plateau_patience=p["plateau_patience"],
            validation_fraction=p["validation_fraction"], device=self.device, seed=self.cfg["seed"])
        metrics = evaluator.run(self.eval_loader(self.data.train), self.eval_loader(self.data.test))
        self.seconds["probe"] = time.perf_counter() - start
        return {f"probe_{k}": float(v) for k, v in metrics.items() if k.endswith("accuracy")}

    def test(self) -> Dict[str, float]:
        """Test accuracy of the network itself (methods that train the readout: backprop, ghl)."""
        from hebbian.trainers.evaluators import SupervisedEvaluator

        if self.kind not in ("backprop", "ghl"):
            return {}
        start = time.perf_counter()
        evaluator = SupervisedEvaluator(self.model, None, self.device)
        evaluator.run(self.eval_loader(self.data.test))
        self.seconds["test"] = time.perf_counter() - start
        return {"test_accuracy": float(evaluator.metrics["accuracy"])}

    def evaluate(self) -> Dict[str, float]:
        """:meth:`test` (when the method trains the readout) and :meth:`probe`."""
        return {**self.test(), **self.probe()}

    def first_layer_weight(self) -> torch.Tensor:
        """The weight of the first Hebbian layer (what filter plots show), on the CPU."""
        return dict(self.model.named_modules())[self.layers[0]].weight.detach().cpu()


# ---------------------------------------------------------------------- run folders, logging, checkpoints
def prepare_run_dir(path: Union[str, Path]) -> Path:
    """Create the run folder and check that it is writable.

    Raises:
        UsageError: it cannot be created or written (the message names the folder and the reason).
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".hebbian-write-test"
        probe.write_text("", encoding="utf-8")
        probe.unlink()
    except OSError as err:
        reason = err.strerror or str(err)
        raise UsageError(f"cannot write to the output folder {str(path)!r}: {reason}; pass a writable --out") \
            from None
    return path


def default_run_dir(cfg: Config, stem: Optional[str] = None) -> Path:
    """``cfg["out"]``, else ``runs/<stem or name>-<timestamp>``."""
    if cfg["out"]:
        return Path(cfg["out"])
    return Path("runs") / f"{stem or cfg['name']}-{time.strftime('%Y%m%d-%H%M%S')}"


def attach_progress(exp: Experiment, desc: str) -> None:
    """An Ignite ``ProgressBar`` over the training iterations."""
    from ignite.handlers import ProgressBar

    if exp.trainer is not None:
        ProgressBar(persist=False, desc=desc).attach(exp.trainer)


def attach_tensorboard(exp: Experiment, log_dir: Path) -> Any:
    """A ``TensorboardLogger`` in ``log_dir`` with the visualizers (filters, convergence, update norms, ...) and,
    for backprop and GHL, the training loss. Returns the logger (close it when done)."""
    from ignite.handlers import TensorboardLogger

    from hebbian.visualizers import attach_visualizers

    log = exp.cfg["log"]
    logger = TensorboardLogger(log_dir=str(log_dir))
    if exp.trainer is not None:
        every_epochs = log["filters_every"] or None
        if exp.kind == "backprop":  # no rule bindings: show the layers a rule would train
            from ignite.handlers.tensorboard_logger import WeightsHistHandler

            from hebbian.visualizers import FilterGridHandler

            weights = [f"{name}.weight" for name in exp.layers]
            if every_epochs:
                for handler in (FilterGridHandler(exp.model, exp.data.input_shape, whitelist=weights),
                                WeightsHistHandler(exp.model, whitelist=weights)):
                    logger.attach(exp.trainer, handler, Events.EPOCH_COMPLETED(every=every_epochs))
        else:
            attach_visualizers(logger, exp.trainer, exp.model, every_iters=log["every"], every_epochs=every_epochs,
                               input_shape=exp.data.input_shape)
        if exp.kind in ("backprop", "ghl"):
            logger.attach_output_handler(exp.trainer, Events.ITERATION_COMPLETED(every=log["every"]), tag="train",
                                         output_transform=_loss_of)
    return logger


def _loss_of(output: Any) -> Dict[str, Any]:
    if isinstance(output, Mapping):
        return {k: v for k, v in output.items() if k == "loss"}
    return {"loss": output}


def attach_checkpoints(exp: Experiment, dirname: Path) -> Any:
    """Checkpoints every ``checkpoint.every`` epochs and at the end (``RUN/checkpoints/checkpoint_<iter>.pt``)."""
    from ignite.handlers import Checkpoint

    from hebbian.trainers.checkpoint import KeepPreviousDiskSaver, setup_checkpointing

    c = exp.cfg["checkpoint"]
    if exp.trainer is None:  # random weights: save them once, as "iteration 0"
        return Checkpoint(exp.to_save, KeepPreviousDiskSaver(dirname), n_saved=1,
                          global_step_transform=lambda *_: 0)
    every = c["every"] or exp.epochs + 1
    handler = setup_checkpointing(exp.trainer, exp.to_save, dirname, every=every, event=Events.EPOCH_COMPLETED,
                                  n_saved=c["n_saved"])

    def final(engine: Engine) -> None:
        if engine.state.epoch % every:
            handler(engine)

    exp.trainer.add_event_handler(Events.COMPLETED, final)
    return handler


def run(cfg: Config, run_dir: Union[str, Path], *, data: Optional[Data] = None, desc: Optional[str] = None,
        resume: Optional[Union[str, Path]] = None) -> Experiment:
    """Build, train, checkpoint, log and evaluate one experiment in ``run_dir``.

    Writes ``config.yaml``, ``metrics.json``, ``checkpoints/``, ``tb/`` (when ``log.tensorboard``) and
    ``filters.png`` (the first Hebbian layer). Returns the trained :class:`Experiment`; its ``metrics`` are also in
    ``metrics.json``.

    Args:
        cfg: a resolved config.
        run_dir: the run folder (created; must be writable).
        data: the datasets, when the caller already has them (else loaded from ``cfg["data"]``).
        desc: progress-bar label.
        resume: a checkpoint file or run folder of an earlier run of the same config: its model, optimizer,
            scheduler, rule states and trainer position are loaded, and training continues up to ``train.epochs``.
    """
    from hebbian.cli.config import save
    from hebbian.visualizers import plot_filters, save_figure

    start = time.perf_counter()
    run_dir = prepare_run_dir(run_dir)
    save(cfg, run_dir / "config.yaml")
    exp = Experiment(cfg, data)
    if cfg["log"]["progress"]:
        attach_progress(exp, desc or cfg["rule"]["name"])
    logger = attach_tensorboard(exp, run_dir / "tb") if cfg["log"]["tensorboard"] else None
    saver = attach_checkpoints(exp, run_dir / "checkpoints")
    if resume is not None:
        resume_training(exp, resume)
    metrics: Dict[str, Any] = {
        "name": cfg["name"], "rule": cfg["rule"]["name"], "kind": exp.kind, "dataset": exp.data.info.name,
        "model": cfg["model"]["name"], "width": cfg["model"]["width"], "epochs": exp.epochs,
        "train_images": len(exp.data.train), "test_images": len(exp.data.test),
    }
    try:
        exp.fit()
    except NonFiniteUpdateError as err:  # a diverging rule (e.g. plain Hebb) is a result, not a crash
        metrics["diverged"] = " ".join(str(err).split())
        metrics["epochs"] = exp.trainer.state.epoch if exp.trainer is not None else 0
        saver(exp.trainer)
    if exp.trainer is None:
        saver(Engine(lambda *_: None))
    metrics.update(exp.evaluate())
    metrics.update({f"{k}_seconds": round(v, 3) for k, v in exp.seconds.items()})
    metrics["wall_seconds"] = round(time.perf_counter() - start, 3)
    if logger is not None:
        for key, value in metrics.items():
            if key.endswith("accuracy"):
                logger.writer.add_scalar(f"final/{key}", value, exp.epochs)
        logger.close()
    title = f"{cfg['rule']['name']}: {exp.layers[0]}"
    save_figure(plot_filters(exp.first_layer_weight(), exp.data.input_shape, 100, title=title)[0],
                run_dir / "filters.png")
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    exp.metrics = metrics
    return exp


def resume_training(exp: Experiment, path: Union[str, Path]) -> Path:
    """Load a checkpoint of the same config into ``exp.to_save`` (its training then continues where it stopped).

    Raises:
        UsageError: nothing to resume (random weights), no checkpoint there, it was finished already, or it does
            not fit this config.
    """
    from hebbian.trainers.checkpoint import latest_checkpoint, resume_from

    if exp.trainer is None:
        raise UsageError("--resume: the 'random' baseline does not train")
    path = Path(path)
    if path.is_dir() and (path / "checkpoints").is_dir():
        path = latest_checkpoint(path / "checkpoints") or path
    try:
        loaded = resume_from(path, exp.to_save, map_location=exp.device)
    except (FileNotFoundError, KeyError, RuntimeError, ValueError) as err:
        raise UsageError(f"cannot resume from {str(path)!r}: {' '.join(str(err).split())}") from None
    if exp.trainer.state.epoch >= exp.epochs:
        raise UsageError(f"--resume: {str(loaded)!r} already finished epoch {exp.trainer.state.epoch} of "
                         f"{exp.epochs}; raise --epochs to train further")
    return loaded


def summary_line(metrics: Mapping[str, Any]) -> str:
    """One line: method, dataset, accuracies, epochs, wall time."""
    parts = [f"{metrics['rule']} on {metrics['dataset']} ({metrics['model']}, {metrics['epochs']} epochs)"]
    for key, label in (("test_accuracy", "test"), ("probe_test_accuracy", "probe test"),
                       ("probe_train_accuracy", "probe train")):
        if key in metrics:
            parts.append(f"{label} {100 * metrics[key]:.2f}%")
    parts.append(f"{metrics['wall_seconds']:.1f} s")
    if metrics.get("diverged"):
        parts.append(f"DIVERGED in epoch {metrics['epochs']} (evaluated with the last finite weights)")
    return " | ".join(parts)


def find_run(path: Union[str, Path]) -> Tuple[Path, Path]:
    """``(run folder, checkpoint file)`` of a run folder or a checkpoint file inside ``RUN/checkpoints``.

    Raises:
        UsageError: no such run, no ``config.yaml`` beside it, or no checkpoint.
    """
    from hebbian.trainers.checkpoint import latest_checkpoint

    path = Path(path)
    if not path.exists():
        raise UsageError(f"{str(path)!r} does not exist; give a run folder or a checkpoint file")
    if path.is_dir():
        run_dir = path.parent if path.name == "checkpoints" and (path.parent / "config.yaml").is_file() else path
        ckpt = latest_checkpoint(run_dir / "checkpoints") if (run_dir / "checkpoints").is_dir() else None
        ckpt = ckpt or latest_checkpoint(path)
        if ckpt is None:
            raise UsageError(f"no checkpoint (checkpoints/*_<step>.pt) in {str(path)!r}")
    else:
        ckpt = path
        run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    if not (run_dir / "config.yaml").is_file():
        raise UsageError(f"no config.yaml in {str(run_dir)!r}; is {str(path)!r} from a 'hebbian train' run?")
    return run_dir, ckpt


def load_run(path: Union[str, Path], overrides: Any = ()) -> Tuple[Experiment, Path, Path]:
    """Rebuild a saved run's :class:`Experiment` with its checkpointed model weights.

    Args:
        path: a run folder or checkpoint file.
        overrides: config overrides (e.g. ``[("data.root", ...)]``).

    Returns:
        ``(experiment, run folder, checkpoint file)``.
    """
    from hebbian.cli.config import resolve_config
    from hebbian.trainers.checkpoint import resume_from

    run_dir, ckpt = find_run(path)
    exp = Experiment(resolve_config(run_dir / "config.yaml", overrides))
    try:
        resume_from(ckpt, {"model": exp.model}, map_location=exp.device)
    except Exception as err:  # a foreign or damaged file: say which, without a traceback
        raise UsageError(f"cannot load the model from {str(ckpt)!r}: {' '.join(str(err).split())}") from None
    return exp, run_dir, ckpt
