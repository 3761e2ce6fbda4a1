"""One experiment from a resolved config: data, model, rules, trainer, logging, checkpoints and evaluation.

The ``hebbian`` command and the tutorial share this module. A config (see :mod:`hebbian.config`) names a
dataset, a network of :mod:`hebbian.models` and a *method*:

* a registered unsupervised rule (``krotov``, ``softhebb``, ``oja`` ...): the model's Hebbian layers
  (``model.info.hebbian_layers``) learn with :class:`~hebbian.trainers.HebbianTrainer`; evaluated by a linear probe;
* a rule that needs the backprop gradient (``ghl``): the Hebbian layers learn with
  :class:`~hebbian.trainers.ghl.GHLTrainer`, the rest by backprop; evaluated end to end and by a probe;
* a three-factor rule (``reward_modulated``, ``random_feedback``: rules that need the network's output): every
  layer of the network, the readout included, learns with :class:`~hebbian.trainers.HebbianTrainer`, which broadcasts
  the output to them; no backprop; evaluated end to end and by a probe;
* ``backprop``: the whole network by backprop (the baseline); evaluated end to end and by a probe;
* ``random``: no training (the random-features baseline); evaluated by a probe.

Example::

    from hebbian.config import resolve_config
    from hebbian.experiment import Experiment

    exp = Experiment(resolve_config("compare_digits", ["rule.name=oja"]))
    exp.fit()
    print(exp.evaluate())  # {'probe_test_accuracy': ..., ...}
"""

from __future__ import annotations

import fnmatch
import os
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events
from torch import nn
from torch.utils.data import TensorDataset

from hebbian.config import BASELINES, Config
from hebbian.errors import ConfigError
from hebbian.data import (DatasetInfo, center, channel_stats, get_dataset_info, in_memory_loader, load_dataset, normalize,
                          pixel_stats)
from hebbian.rules import LearningRule, create, get_rule_info, softhebb_init_

#: What each method is evaluated by.
METHOD_KINDS = ("hebbian", "ghl", "three_factor", "backprop", "random")


@dataclass
class Data:
    """The training and test splits in memory, and what they are."""

    train: TensorDataset
    test: TensorDataset
    info: DatasetInfo

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        return tuple(self.train.tensors[0].shape[1:])  # type: ignore[return-value]


def apply_threads(cfg: Config) -> None:
    """``torch.set_num_threads(cfg["threads"])`` when the config sets it (process-wide)."""
    if cfg["threads"] is not None:
        torch.set_num_threads(cfg["threads"])


def select_device(name: str) -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; otherwise the named device (checked to exist)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", f"{name!r} was asked for, but CUDA is not available here; use 'cpu' or 'auto'")
    return device


def load_data(cfg: Config, seed: Optional[int] = None) -> Data:
    """The dataset of ``cfg["data"]``: split (``data.split``), limited and normalised as configured.

    With ``data.split: seeded`` the dataset's training and test splits are pooled and a stratified
    ``data.test_fraction`` is drawn as the test split with ``seed`` (default ``cfg["seed"]``), so every seed of a
    comparison is tested on other images. ``data.train_limit`` / ``data.test_limit`` then keep the first N images of
    the training / test split (of the seeded split when there is one): exactly N, or the run is refused.

    Raises:
        DatasetNotFoundError: the dataset is not under its root. DatasetError: it is, but damaged, empty, or its
        labels or image shapes are not the dataset's. ConfigError: a limit larger than its split, a split or a
        normalisation that the images cannot give (naming the key and what is possible).
    """
    d = cfg["data"]
    info = get_dataset_info(d["name"])
    kw = {"root": d["root"], "download": d["download"]}
    train, test = load_dataset(info.name, train=True, **kw), load_dataset(info.name, train=False, **kw)
    what = f"the {info.name} training split", f"the {info.name} test split"
    if d["split"] == "seeded":
        train, test = seeded_split(cfg, train, test, cfg["seed"] if seed is None else seed)
        what = tuple(f"the seeded {side} split of {info.name} (data.test_fraction={d['test_fraction']} of the "
                     f"{len(train) + len(test)} pooled images)" for side in ("training", "test"))
    train = limited(train, d["train_limit"], "data.train_limit", what[0])
    test = limited(test, d["test_limit"], "data.test_limit", what[1])
    norm = d["normalize"]
    try:
        if norm == "center":
            mean, std = pixel_stats(train)
            return Data(center(train, mean, std), center(test, mean, std), info)
        if norm is not None:
            mean, std = channel_stats(train) if norm == "dataset" else (norm["mean"], norm["std"])
            train, test = normalize(train, mean, std), normalize(test, mean, std)
    except ValueError as err:
        if not isinstance(norm, str):  # the {mean, std} of the config
            raise ConfigError("data.normalize", str(err)) from None
        key = "data.train_limit" if d["train_limit"] is not None else "data.normalize"
        raise ConfigError(key, f"data.normalize={norm!r} divides by the spread of the training images, and the "
                               f"{len(train)} training image(s) have none ({err}); use more (or other) training "
                               "images, or --set data.normalize=null") from None
    return Data(train, test, info)


def seeded_split(cfg: Config, train: TensorDataset, test: TensorDataset, seed: int
                 ) -> Tuple[TensorDataset, TensorDataset]:
    """``data.split: seeded``: the two splits pooled and a stratified ``data.test_fraction`` drawn with ``seed``."""
    from hebbian.data.splits import stratified_split

    pooled = TensorDataset(*(torch.cat([a, b]) for a, b in zip(train.tensors, test.tensors)))
    fraction = cfg["data"]["test_fraction"]
    try:
        return stratified_split(pooled, fraction, seed)
    except ValueError as err:
        raise ConfigError("data.test_fraction", f"{fraction}: {err}; a stratified test split needs 2 images of at "
                                                "least one class, or use --set data.split=fixed") from None


def limited(dataset: TensorDataset, limit: Optional[int], key: str, what: str) -> TensorDataset:
    """The first ``limit`` images of ``dataset`` (all for ``None``), or :class:`ConfigError` naming ``key`` when
    ``what`` (the split, for the message) holds fewer."""
    from hebbian.data.datasets import first

    if limit is None:
        return dataset
    try:
        return first(dataset, limit, key)
    except ValueError:
        raise ConfigError(key, f"{limit} images asked for, but {what} holds {len(dataset)}; use at most "
                               f"{len(dataset)} (or null for all)") from None


#: Probe protocols whose validation share of the training images is stratified (every class split in proportion).
STRATIFIED_PROBES = ("logistic", "krotov_hopfield")


def check_probe_data(cfg: Config, data: Data) -> None:
    """The probe (``probe.protocol``) can hold out its validation share of ``data``'s training images: a stratified
    split needs 2 images of at least one class (checked before any training; nothing to check without a probe).

    Raises:
        ConfigError: naming ``data.train_limit`` (or ``data.test_fraction`` of a seeded split) and what is possible.
    """
    from hebbian.data.splits import stratified_indices
    from hebbian.probes import get_probe_info

    p = cfg["probe"]
    if p["epochs"] == 0:
        return
    params = probe_params(cfg)  # the probe's settings are checked before any training, whatever the protocol
    if p["protocol"] not in STRATIFIED_PROBES:
        return
    fraction = {**get_probe_info(p["protocol"]).defaults, **params}["validation_fraction"]
    labels = data.train.tensors[1]
    try:
        stratified_indices(labels, fraction, cfg["seed"])
    except ValueError:
        d = cfg["data"]
        key = "data.train_limit" if d["train_limit"] is not None else "data.test_fraction" \
            if d["split"] == "seeded" else ""
        raise ConfigError(key, f"the {p['protocol']} probe holds out a stratified share ({fraction}) of the training "
                               f"images for validation, which needs 2 images of at least one class; the "
                               f"{len(labels)} training image(s) of {data.info.name} have at most one per class: use "
                               "more training images, or --set probe.epochs=0 for no probe") from None


def check_single_sample_step(cfg: Config, model: nn.Module, layers: List[str], data: Data) -> None:
    """With ``data.batch_size: 1``, refuse a learning rate at which one training image can make an Oja-type step
    (``oja``, ``oja_subspace``, ``sanger``, summed or averaged) of a fully connected Hebbian layer overshoot and
    diverge: ``lr`` must stay below :func:`hebbian.rules.oja.overshoot_lr` of the largest input and initial row
    norms (the layer's inputs measured on the training images). Batches average the step, so larger batches are not
    checked (the recipes' rates are tuned on batches of 64).

    Raises:
        ConfigError: naming ``train.lr`` (or the layer's ``rule.layers`` entry), the bound and the alternatives.
    """
    from hebbian.rules.oja import Oja, OjaSubspace, Sanger, overshoot_lr

    if cfg["data"]["batch_size"] != 1 or method_kind(cfg) != "hebbian":
        return
    modules = dict(model.named_modules())
    for name, setting in layer_settings(cfg, layers).items():
        rule, layer = setting.rule, modules.get(name)
        if not isinstance(rule, (Oja, OjaSubspace, Sanger)) or rule.normalize == "max_abs" \
                or not isinstance(layer, nn.Linear):
            continue
        inputs: List[torch.Tensor] = []
        handle = layer.register_forward_pre_hook(lambda _m, args: inputs.append(args[0].detach().flatten(1)))
        try:
            with torch.no_grad():
                for x, _ in in_memory_loader(data.train, 1024, shuffle=False):
                    model(x.to(layer.weight.device))
        finally:
            handle.remove()
        max_x = float(torch.cat(inputs).double().pow(2).sum(1).max())
        max_w = float(layer.weight.detach().double().pow(2).sum(1).max())
        bound = overshoot_lr(max_x, max_w)
        if setting.lr >= bound:
            key = f"rule.layers.{name}.lr" if any(fnmatch.fnmatchcase(name, str(p)) and "lr" in e
                                                  for p, e in cfg["rule"]["layers"].items()) else "train.lr"
            raise ConfigError(key, f"{setting.lr:g} with data.batch_size=1: one image can make the {rule.info.name} "
                                   f"step of layer {name!r} overshoot and diverge (it needs lr * y^2 < 2, y = w.x; the "
                                   f"training images have |x|^2 up to {max_x:.4g} and the initial rows |w|^2 up to "
                                   f"{max_w:.4g}): use lr < {bound:.3g}, or a larger data.batch_size (the step "
                                   "averages y^2 over a batch)")


def build_model(cfg: Config, info: DatasetInfo) -> nn.Sequential:
    """The network of ``cfg["model"]`` for the dataset's image shape and classes."""
    from hebbian.models import create_model

    m = cfg["model"]
    kwargs = dict(in_channels=info.channels, input_size=info.size, num_classes=info.num_classes, width=m["width"],
                  **m["options"])
    check_model_size(m["name"], kwargs)
    try:
        return create_model(m["name"], **kwargs)
    except TypeError as err:
        raise ConfigError("model.options", f"{m['name']}: {err}") from None
    except ValueError as err:
        raise ConfigError("model", f"{m['name']}: {err}") from None
    except (RuntimeError, MemoryError) as err:  # the allocation of the weights failed
        if "alloc" not in str(err) and not isinstance(err, MemoryError):
            raise
        raise ConfigError("model.width", f"{m['width']:g}: the {m['name']} model does not fit in memory "
                                         f"({' '.join(str(err).split())[:120]})") from None


def check_model_size(name: str, kwargs: Mapping[str, Any]) -> None:
    """Refuse a model whose parameters would not fit in this machine's memory (counted on the ``meta`` device,
    nothing allocated), e.g. ``--width 1e6``.

    Raises:
        ConfigError: naming ``model.width``, the size needed and the memory there is.
    """
    from hebbian.models import create_model

    try:
        with torch.device("meta"):
            model = create_model(name, **kwargs)
    except Exception:  # a model that cannot be built on ``meta``: the real build reports its own errors
        return
    needed = sum(p.numel() * p.element_size() for p in model.parameters())
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return
    if needed > memory:
        raise ConfigError("model.width", f"{kwargs['width']:g}: the {name} model would need {needed / 2**30:.1f} GiB "
                                         f"for its weights; this machine has {memory / 2**30:.1f} GiB")


def method_kind(cfg: Config) -> str:
    """``"backprop"``, ``"random"``, ``"ghl"`` (rules that need the backprop gradient), ``"three_factor"`` (rules
    that need the network's output) or ``"hebbian"``."""
    name = cfg["rule"]["name"]
    if name in BASELINES:
        return name
    info = get_rule_info(name)
    if info.needs_output:
        return "three_factor"
    return "ghl" if info.needs_global_grad else "hebbian"


def hebbian_layer_names(model: nn.Module) -> List[str]:
    """The layers a local rule trains: the model's declared ``info.hebbian_layers``, else every ``Linear``/``Conv2d``
    before the last top-level child (the readout), one name per weight (a weight shared by several modules is
    named once, so that it is one parameter of one optimizer group)."""
    info = getattr(model, "info", None)
    if info is not None and info.hebbian_layers:
        return list(info.hebbian_layers)
    from hebbian.models.discovery import candidate_weights, supervised_layer_names

    supervised = supervised_layer_names(model, -1)
    sites = [s for s in candidate_weights(model) if s.name not in supervised]
    return [s.name for i, s in enumerate(sites) if all(t.weight is not s.weight for t in sites[:i])]


def trained_layer_names(model: nn.Module, kind: str) -> List[str]:
    """The layers the method's rule trains: every weight of the network for three-factor rules (the readout
    included), else :func:`hebbian_layer_names`."""
    if kind != "three_factor":
        return hebbian_layer_names(model)
    from hebbian.models.discovery import candidate_weights

    return [s.name for s in candidate_weights(model)]


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
        raise ConfigError("train.optimizer", f"{kind} trains with backprop gradients: pass --set train.optimizer=sgd "
                                             "(as published) or --set train.optimizer=adam, not 'local'")


#: Config keys of the ``probe`` section and the probe parameters they set.
PROBE_KEYS = {"epochs": "epochs", "lr": "lr", "batch_size": "batch_size", "dropout": "dropout",
              "early_stopping": "early_stopping_patience", "plateau_patience": "plateau_patience",
              "validation_fraction": "validation_fraction", "l2_grid": "l2_grid", "lr_milestones": "lr_milestones"}


def check_shares(cfg: Config, kind: str, train_size: Optional[int] = None) -> Optional[int]:
    """``train.shares`` (N: compute each batch's sums as N data-parallel processes do, README "Data-parallel
    training"): only for the Hebbian and three-factor methods; in a run of R > 1 processes it must be R (or null/1);
    in one process every batch of ``data.batch_size`` (and the last one of the ``train_size`` images) must split into
    N non-empty shares, as the sampler splits it over N processes.

    Raises:
        ConfigError: naming ``train.shares``.
    """
    shares = cfg["train"]["shares"]
    if shares is None or shares == 1:
        return shares
    if kind not in ("hebbian", "three_factor"):
        why = ("its sign comes from the backprop gradient of the whole batch, which is not computed per share"
               if kind == "ghl" else "it has no Hebbian batch sums")
        raise ConfigError("train.shares", f"{shares}: computing the batch in shares applies to the Hebbian and "
                                          f"three-factor methods, not to {kind} ({why}); leave it null")
    world = idist.get_world_size()
    if world > 1 and shares != world:
        raise ConfigError("train.shares", f"{shares} in a run of {world} processes, each of which is one share "
                                          f"already: use {world} (the sums added in rank order) or null")
    size, last = cfg["data"]["batch_size"], (train_size or 0) % cfg["data"]["batch_size"]
    if world == 1 and (size < shares or 0 < last < shares):
        raise ConfigError("train.shares", f"{shares}: a batch of {size if size < shares else last} images cannot "
                                          f"be split into {shares} shares; use a data.batch_size (and a number of "
                                          f"training images) that gives every share an image")
    return shares


def probe_params(cfg: Config) -> Dict[str, Any]:
    """The probe protocol's parameters set by the config (keys left null take the protocol's defaults).

    Raises:
        ConfigError: a key set that the protocol does not take (e.g. ``probe.dropout`` with ``logistic``).
    """
    from hebbian.probes import get_probe_info

    p = cfg["probe"]
    info = get_probe_info(p["protocol"])
    params = {}
    for key, name in PROBE_KEYS.items():
        if p[key] is None or (key == "epochs" and p[key] == 0):
            continue
        if name not in info.defaults:
            takes = [k for k, n in PROBE_KEYS.items() if n in info.defaults]
            raise ConfigError(f"probe.{key}", f"does not apply to the {info.name!r} probe, which takes "
                                              f"{', '.join(takes)}; for a trained readout use --set probe.protocol=readout")
        params[name] = p[key]
    check_hold_out(info.name, info.params(**params))
    return params


def check_hold_out(protocol: str, params: Dict[str, Any]) -> None:
    """A trained readout holds out training images only for a choice made on them (before any training).

    Raises:
        ConfigError: ``probe.validation_fraction`` above 0 with neither ``probe.early_stopping`` nor
            ``probe.plateau_patience``.
    """
    from hebbian.probes.protocols import readout_params
    from hebbian.trainers.evaluators import unused_hold_out

    if "plateau_patience" not in params:  # not a trained readout (e.g. logistic chooses its L2 on the held-out part)
        return
    full = readout_params(params)
    if unused_hold_out(full["validation_fraction"], full["early_stopping_patience"], full["plateau_patience"]):
        raise ConfigError("probe.validation_fraction",
                          f"{full['validation_fraction']} holds out training images that the {protocol!r} probe "
                          "chooses nothing on (no probe.early_stopping, no probe.plateau_patience): set it to 0 or "
                          "leave it unset to train the readout on all of them, or set one of the two")


def check_config(cfg: Config) -> None:
    """Everything :class:`Experiment` would reject, checked without loading data or training: the model options,
    the rule hyperparameters of every layer, and the optimizer of the method.

    Raises:
        ConfigError: naming the key.
    """
    kind = method_kind(cfg)
    check_optimizer(cfg, kind)
    check_shares(cfg, kind)
    probe_params(cfg)
    model = build_model(cfg, get_dataset_info(cfg["data"]["name"]))
    if kind not in BASELINES:
        layer_settings(cfg, trained_layer_names(model, kind))


def initialise(cfg: Config, model: nn.Module, layers: List[str]) -> None:
    """``train.init``: keep the model's initial Hebbian weights, or draw them ``N(0, 1)``, ``N(0, 1)`` rescaled to
    unit-norm rows (``unit``: where Oja-type rules converge), or SoftHebb's radius-25 Gaussian."""
    init = cfg["train"]["init"]
    if init == "default":
        return
    from hebbian.models.discovery import site_weight

    with torch.no_grad():
        for name in layers:
            weight = site_weight(model, name)
            if init in ("normal", "unit"):
                weight.normal_(0.0, 1.0)
                if init == "unit":
                    norms = weight.flatten(1).norm(dim=1).clamp_min(1e-12)
                    weight.div_(norms.view(-1, *([1] * (weight.dim() - 1))))
            else:
                softhebb_init_(weight)


def progress_bars(setting: Optional[bool]) -> bool:
    """Whether to draw progress bars: ``log.progress`` when set, else only when stderr is a terminal (bars written
    to a file or a pipe leave a carriage-return frame per update in it)."""
    if setting is not None:
        return bool(setting)
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


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
        apply_threads(cfg)
        self.device = select_device(cfg["device"])
        self.data = data if data is not None else load_data(cfg)
        check_probe_data(cfg, self.data)
        self.kind = method_kind(cfg)
        self.shares = check_shares(cfg, self.kind, len(self.data.train))
        torch.manual_seed(cfg["seed"])
        self.model = build_model(cfg, self.data.info).to(self.device)
        self.layers = hebbian_layer_names(self.model)
        initialise(cfg, self.model, self.layers)
        check_single_sample_step(cfg, self.model, self.layers, self.data)
        from hebbian.models.discovery import site_weight

        self.weights = {n: site_weight(self.model, n) for n in self.layers}  # the Hebbian weights by site name
        self.initial_weights = {n: w.detach().clone() for n, w in self.weights.items()}
        # what the Hebbian layers learn besides their weights (e.g. a FoldiakLayer's lateral weights, thresholds)
        self.initial_buffers = {f"{n}.{b}": t.detach().clone() for n in self.layers
                                for b, t in self._layer_buffers(n).items()}
        self.probe_handlers: List[Any] = []  # (probe engine, tag) -> None, called for every probe run
        self._probe_tag = "probe"
        generator = torch.Generator().manual_seed(cfg["seed"])
        try:  # data-parallel: each process takes its share of every global batch of data.batch_size
            self.train_loader = in_memory_loader(self.data.train, cfg["data"]["batch_size"], shuffle=True,
                                                 generator=generator, num_replicas=idist.get_world_size(),
                                                 rank=idist.get_rank())
        except ValueError as err:
            raise ConfigError("data.batch_size", str(err)) from None
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
            settings = layer_settings(cfg, trained_layer_names(model, self.kind))
            from hebbian.models.discovery import site_weight

            groups = [{"params": [site_weight(model, n)], "lr": s.lr, "weight_decay": s.weight_decay}
                      for n, s in settings.items()]
            rules = {n: s.rule for n, s in settings.items()}
            if self.kind == "ghl":
                self.trainer = self._ghl_trainer(rules, groups)
            else:
                from hebbian.trainers import create_hebbian_trainer

                optimizer = make_optimizer(cfg, groups)
                try:
                    self.trainer = create_hebbian_trainer(model, rules, optimizer, supervised_from=None,
                                                          greedy_epochs=cfg["train"]["greedy_epochs"],
                                                          device=self.device, shares=self.shares)
                except (TypeError, ValueError) as err:  # a rule that cannot train its layer (e.g. k > units)
                    raise ConfigError("rule.params", str(err)) from None
            from hebbian.trainers.checkpoint import checkpoint_objects

            self.trainer.max_abs_weight = cfg["train"]["diverge_above"]
            self.to_save = checkpoint_objects(self.trainer)
        from hebbian.trainers.checkpoint import RNGStates

        # an exact resume with the plain engines: the data order of the epoch and every RNG go into the checkpoints
        self.to_save.update(data_order=self.train_loader.batch_sampler, rng=RNGStates())
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
        try:
            return GHLTrainer(self.model, rules, optimizer, loss_fn=nn.CrossEntropyLoss(), device=self.device)
        except (TypeError, ValueError) as err:
            raise ConfigError("rule.params", str(err)) from None

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

    def probe(self) -> Dict[str, Any]:
        """Probe accuracies of the frozen features (``probe_train_accuracy``, ``probe_val_accuracy``,
        ``probe_test_accuracy``) by the ``probe.protocol`` (none when ``probe.epochs`` is 0). Features that are not
        finite (a diverged rule) give ``probe_error`` instead."""
        from hebbian.probes import NonFiniteFeaturesError, create_probe

        p = self.cfg["probe"]
        if p["epochs"] == 0:
            return {}
        start = time.perf_counter()
        engine = create_probe(p["protocol"], self.model, seed=self.cfg["seed"], device=self.device,
                              **probe_params(self.cfg))
        if progress_bars(self.cfg["log"]["progress"]):
            from ignite.handlers import ProgressBar

            ProgressBar(persist=False, desc=f"probe ({p['protocol']})").attach(engine)
        for attach in self.probe_handlers:
            attach(engine, self._probe_tag)
        try:
            metrics = engine.run(self.eval_loader(self.data.train), self.eval_loader(self.data.test))
        except NonFiniteFeaturesError as err:
            return {"probe_error": str(err)}
        self.seconds["probe"] = self.seconds.get("probe", 0.0) + time.perf_counter() - start
        return {f"probe_{k}": float(v) for k, v in metrics.items() if k.endswith("accuracy")}

    def _layer_buffers(self, name: str) -> Dict[str, torch.Tensor]:
        """The buffers of the module of Hebbian layer ``name`` (none for plain ``Linear`` / ``Conv`` layers)."""
        module = dict(self.model.named_modules()).get(name)
        return {} if module is None else dict(module.named_buffers(recurse=False))

    def _learned_state(self) -> Dict[str, torch.Tensor]:
        """The Hebbian weights and their modules' buffers, by ``name`` / ``name.buffer``."""
        return {**self.weights, **{f"{n}.{b}": t for n in self.layers for b, t in self._layer_buffers(n).items()}}

    @contextmanager
    def initial_state(self) -> Iterator[None]:
        """Within the context the Hebbian layers hold their initial (untrained) weights and buffers; their current
        values are restored afterwards."""
        learned = self._learned_state()
        current = {name: t.detach().clone() for name, t in learned.items()}
        initial = {**self.initial_weights, **self.initial_buffers}
        try:
            with torch.no_grad():
                for name, t in learned.items():
                    t.copy_(initial[name])
            yield
        finally:
            with torch.no_grad():
                for name, t in learned.items():
                    t.copy_(current[name])

    def control(self) -> Dict[str, Any]:
        """The method's control: the probe of the model with its initial (untrained) Hebbian weights (and buffers,
        e.g. lateral weights), as ``control_probe_*`` keys. The model's current state is restored afterwards."""
        try:
            with self.initial_state():
                self._probe_tag = "control_probe"
                metrics = self.probe()
        finally:
            self._probe_tag = "probe"
        return {f"control_{k}": v for k, v in metrics.items()}

    def layer_responses(self, dataset: TensorDataset) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
        """The first Hebbian layer's rectified outputs :math:`\\max(u, 0)` ``(N, M)`` over ``dataset`` (conv outputs
        averaged over positions) and the labels, or ``None`` where that layer is not a module (an attention
        projection)."""
        module = dict(self.model.named_modules()).get(self.layers[0])
        if module is None:
            return None
        outputs: List[torch.Tensor] = []
        handle = module.register_forward_hook(lambda _m, _i, out: outputs.append(out.detach()))
        labels: List[torch.Tensor] = []
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                for x, y in self.eval_loader(dataset):
                    self.model(x.to(self.device))
                    labels.append(y)
        finally:
            handle.remove()
            self.model.train(was_training)
        out = torch.cat(outputs)
        out = out.flatten(2).mean(dim=2) if out.dim() > 2 else out
        return torch.relu(out).cpu(), torch.cat(labels)

    def rule_metrics(self) -> Dict[str, float]:
        """What the first Hebbian layer's units learned (:mod:`hebbian.analysis`, on the test split), after training
        and, with the suffix ``_initial``, with the initial weights: ``unit_selectivity`` (BCM's selectivity index),
        ``unit_classes_responded`` (the fraction of classes a unit responds to), ``unit_silent`` (the share of units
        that never respond) and ``unit_correlation`` (the mean absolute pairwise correlation of the units)."""
        from hebbian.analysis import unit_metrics

        out: Dict[str, float] = {}
        for suffix in ("", "_initial"):
            with self.initial_state() if suffix else nullcontext():
                found = self.layer_responses(self.data.test)
            if found is None or not bool(torch.isfinite(found[0]).all()):  # no module, or diverged weights
                return {}
            metrics = unit_metrics(*found, self.data.info.num_classes)
            names = {"selectivity": "unit_selectivity", "classes_responded": "unit_classes_responded",
                     "silent_units": "unit_silent", "correlation": "unit_correlation"}
            out.update({names[k] + suffix: v for k, v in metrics.items()})
        return out

    def weight_change(self) -> Dict[str, float]:
        r"""Median over units of :math:`\lVert w_k - w_k^0\rVert / \lVert w_k^0\rVert` per Hebbian layer (its
        initial weights :math:`w^0`)."""
        out = {}
        for name, w0 in self.initial_weights.items():
            before = w0.flatten(1).double()
            after = self.weights[name].detach().flatten(1).double()
            change = (after - before).norm(dim=1) / before.norm(dim=1).clamp_min(1e-30)
            out[name] = float(change.median())
        return out

    def dead_units(self) -> Optional[float]:
        """Share of the first Hebbian layer's units that never win (competitive rules: never the largest drive) or
        never fire (other methods: drive never above 0) on the training set; ``None`` where the first Hebbian weight
        is not an ``nn.Linear`` / ``nn.Conv2d`` module's (e.g. an attention projection): not measured."""
        from hebbian.visualizers.activations import COMPETITIVE_RULES, ActivationRecorder, dead_fraction

        layer = dict(self.model.named_modules()).get(self.layers[0])
        if type(layer) not in (nn.Linear, nn.Conv2d):
            return None
        recorder = ActivationRecorder({self.layers[0]: layer})
        alive = wins = None
        try:
            for x, _ in self.eval_loader(self.data.train):
                stats = recorder.probe(self.model, x.to(self.device))[self.layers[0]]
                alive = stats["alive"] if alive is None else alive | stats["alive"]
                wins = stats["wins"] if wins is None else wins + stats["wins"]
        finally:
            recorder.remove()
        if self.cfg["rule"]["name"] in COMPETITIVE_RULES:
            return float((wins == 0).double().mean())
        return dead_fraction(alive)

    def test(self) -> Dict[str, float]:
        """Test accuracy of the network itself (methods that train the readout: backprop, ghl, three-factor rules)."""
        from hebbian.trainers.evaluators import SupervisedEvaluator

        if self.kind not in ("backprop", "ghl", "three_factor"):
            return {}
        start = time.perf_counter()
        evaluator = SupervisedEvaluator(self.model, None, self.device)
        evaluator.run(self.eval_loader(self.data.test))
        self.seconds["test"] = time.perf_counter() - start
        return {"test_accuracy": float(evaluator.metrics["accuracy"])}

    def evaluate(self) -> Dict[str, Any]:
        """:meth:`test` (when the method trains the readout) and :meth:`probe`."""
        return {**self.test(), **self.probe()}

    def first_layer_weight(self) -> torch.Tensor:
        """The weight of the first Hebbian layer (what filter plots show), on the CPU."""
        return self.weights[self.layers[0]].detach().cpu()
