"""GHL end to end: Hebbian magnitudes with the backprop sign, on any model (Hua et al., ICASSP 2026).

Per batch (:func:`ghl_training_step`): a forward pass WITH autograd in train mode records every Hebbian layer's input
and output; the loss (cross-entropy) is back-propagated through the whole network; each Hebbian layer's rule turns
its recorded ``(x, u)`` and its backprop gradient :math:`g = \\partial L/\\partial W` into
:math:`\\Delta W = -|\\hat\\Delta| \\odot \\mathrm{sign}(g)`, which replaces ``W.grad`` (as :math:`-\\Delta W`);
every other parameter (classifier, BN, hidden layers that are not Hebbian) keeps its backprop gradient; then
``optimizer.step()``. With SGD (momentum 0) the Hebbian weights move by :math:`-\\eta |\\hat\\Delta| \\odot
\\mathrm{sign}(g)` (plus weight decay), all others by plain SGD.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import ignite.distributed as idist
import torch
from ignite.engine import Engine
from ignite.handlers import LRScheduler
from torch import Tensor, nn

from hebbian.rules.base import LearningRule, Statistics
from hebbian.rules.ghl import GHL
from hebbian.trainers.batch import prepare_batch as default_prepare_batch
from hebbian.models.discovery import WeightSite, candidate_weights, unsupported_layers, unwrap_model
from hebbian.trainers.binding import RuleBinding
from hebbian.trainers.capture import LayerCapture
from hebbian.trainers.distributed import all_reduce_gradients, all_reduce_statistics, batch_share
from hebbian.trainers.evaluators import model_device
from hebbian.trainers.guard import NonFiniteGuard
from hebbian.trainers.hebbian_trainer import (
    DeterministicHebbianTrainer,
    HebbianTrainer,
    PrepareBatch,
    apply_updates,
    layer_statistics,
)

LayerSelector = Union[str, Callable[[str, nn.Module], bool]]
HEBBIAN_LAYER_CHOICES = ("conv", "conv+linear")
DOWNSAMPLE_NAMES = ("downsample", "shortcut")


class BackpropOnlyWarning(UserWarning):
    """Layers that the Hebbian layer selection covers but no Hebbian rule supports are trained by backprop."""


def _detached_loss(x: Tensor, y: Tensor, y_pred: Tensor, loss: Tensor) -> Tensor:
    return loss.detach()


# ---------------------------------------------------------------------- which layers are Hebbian
def final_classifier(model: nn.Module) -> str:
    """Name of the final classifier: the last ``nn.Linear`` registered in the model (else the last convolution).

    (torchvision's ``nn.MultiheadAttention`` registers ``out_proj`` as a ``Linear``; a Transformer's classifier head
    comes after it, so it is still the last one.)"""
    sites = candidate_weights(model)
    linear = [s.name for s in sites if isinstance(s.module, nn.Linear)]
    if linear:
        return linear[-1]
    if not sites:
        raise ValueError("the model has no nn.Linear or nn.Conv layer")
    return sites[-1].name


def is_downsample(name: str, module: nn.Module) -> bool:
    """A residual projection: a conv inside a module named ``downsample`` (torchvision) or ``shortcut``."""
    return isinstance(module, nn.modules.conv._ConvNd) and any(part in DOWNSAMPLE_NAMES for part in name.split("."))


def _is_conv(site: WeightSite) -> bool:
    return site.kind != "linear"


def select_hebbian_layers(
    model: nn.Module,
    hebbian_layers: LayerSelector = "conv",
    *,
    include_1x1: bool = True,
    include_downsample: bool = True,
    classifier: Optional[str] = None,
) -> List[str]:
    """Names of the weights GHL trains, in registration order, one per weight (a Parameter shared by several
    modules is named once, by its first selected module).

    Args:
        model: any module (DDP / DataParallel wrappers are looked through).
        hebbian_layers: ``"conv"`` (every ``Conv1d/2d/3d``, GHL's recipe), ``"conv+linear"`` (also hidden ``Linear``
            layers, e.g. VGG's fc6/fc7, and the attention projections of a Transformer: ``<attention>.in_proj``,
            ``out_proj``) or a predicate ``(name, module) -> bool`` over the candidates of
            :func:`~hebbian.models.discovery.candidate_weights`.
        include_1x1: whether 1x1 convolutions are Hebbian.
        include_downsample: whether residual projection convs (``*.downsample.*``, ``*.shortcut.*``) are Hebbian.
        classifier: name of the final classifier, which is never Hebbian (default: :func:`final_classifier`).
    """
    if isinstance(hebbian_layers, str) and hebbian_layers not in HEBBIAN_LAYER_CHOICES:
        raise ValueError(f"hebbian_layers must be one of {HEBBIAN_LAYER_CHOICES} or a predicate (name, module) -> "
                         f"bool, got {hebbian_layers!r}")
    if not isinstance(hebbian_layers, str) and not callable(hebbian_layers):
        raise TypeError(f"hebbian_layers must be a string or a callable, got {type(hebbian_layers).__name__}")
    bare = unwrap_model(model)
    classifier = final_classifier(bare) if classifier is None else classifier
    names, seen = [], set()
    for site in candidate_weights(bare):
        name, module = site.name, site.module
        if name == classifier or id(site.weight) in seen:
            continue
        if hebbian_layers == "conv":
            keep = _is_conv(site)
        elif hebbian_layers == "conv+linear":
            keep = True
        else:
            keep = bool(hebbian_layers(name, module))  # type: ignore[operator]
        if _is_conv(site):
            keep = keep and (include_1x1 or any(k != 1 for k in site.kernel_size))
            keep = keep and (include_downsample or not is_downsample(name, module))
        if keep:
            names.append(name)
            seen.add(id(site.weight))
    return names


def backprop_only_layers(
    model: nn.Module, hebbian_layers: LayerSelector = "conv", *, classifier: Optional[str] = None
) -> List[str]:
    """Names of the weight-bearing layers that ``hebbian_layers`` covers but no Hebbian rule supports
    (:data:`~hebbian.models.discovery.UNSUPPORTED_LAYERS`: ``ConvTranspose``, recurrent layers, ``Embedding``,
    ``Bilinear``), which GHL therefore trains by backprop: under ``"conv"`` the transposed convolutions, under
    ``"conv+linear"`` all of them, under a predicate those it accepts."""
    bare = unwrap_model(model)
    out = []
    for name, module in unsupported_layers(bare):
        if name == classifier:
            continue
        if hebbian_layers == "conv":
            covered = isinstance(module, nn.modules.conv._ConvTransposeNd)
        elif hebbian_layers == "conv+linear":
            covered = True
        else:
            covered = bool(hebbian_layers(name, module))  # type: ignore[operator]
        if covered:
            out.append(name)
    return out


# ---------------------------------------------------------------------- optimizer set-up
def ghl_param_groups(
    model: nn.Module, hebbian_layer_names: Sequence[str], lr_conv: float, wd_conv: float, lr: float
) -> List[Dict[str, Any]]:
    """GHL's two SGD groups.

    * group A: the weights of the Hebbian layers, learning rate ``lr_conv``, (coupled L2) weight decay ``wd_conv``;
    * group B: every other parameter (classifier, hidden FC, BN affine, biases), learning rate ``lr``, no decay.

    DeepHebb: ``lr_conv=1e-2, wd_conv=5e-2, lr=5e-3``; FastHebb: ``5e-2, 1e-2, 1e-4`` (with SGD, momentum 0).

    Every parameter appears once: a weight shared by several named layers is listed once (SGD would otherwise step
    it once per listing); its update is the sum over its uses (its gradient, and the rule's sums over every use).
    """
    weights = {s.name: s.weight for s in candidate_weights(model)}
    missing = [n for n in hebbian_layer_names if n not in weights]
    if missing:
        raise ValueError(f"hebbian_layer_names: the model has no layers named {missing}")
    hebbian = list({id(w): w for w in (weights[n] for n in hebbian_layer_names)}.values())
    ids = {id(p) for p in hebbian}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return [
        {"params": hebbian, "lr": float(lr_conv), "weight_decay": float(wd_conv)},
        {"params": rest, "lr": float(lr), "weight_decay": 0.0},
    ]


def ghl_lr_scheduler(optimizer: torch.optim.Optimizer, epochs: int, epoch_length: int) -> LRScheduler:
    """GHL's schedule: cosine annealing to 0 over ``T = epochs * epoch_length`` iterations, stepped every iteration.

    Every group's rate follows :math:`\\eta_t = \\eta_0 (1 + \\cos(\\pi t / T)) / 2` (``t = 0 .. T-1``) from its own
    initial rate, exactly ``CosineAnnealingLR(T_max=T, eta_min=0)``. It is written as the closed-form ``LambdaLR``
    because Ignite's ``LRScheduler`` evaluates the wrapped scheduler's recursive ``get_lr``, which for
    ``CosineAnnealingLR`` gives a first rate above :math:`\\eta_0`. Attach it with
    ``trainer.add_event_handler(Events.ITERATION_STARTED, scheduler)``.
    """
    for name, value in (("epochs", epochs), ("epoch_length", epoch_length)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    total = epochs * epoch_length
    cosine = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: 0.5 * (1.0 + math.cos(math.pi * t / total)))
    return LRScheduler(cosine)


# ---------------------------------------------------------------------- the step
def ghl_training_step(
    model: nn.Module,
    bindings: Sequence[RuleBinding],
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    device: Optional[Union[str, torch.device]] = None,
    non_blocking: bool = False,
    prepare_batch: PrepareBatch = default_prepare_batch,
    guard: Optional[NonFiniteGuard] = None,
    reduce: Callable[[Sequence[Statistics]], List[Statistics]] = all_reduce_statistics,
    amp_dtype: Optional[torch.dtype] = None,
    scaler: Optional[torch.amp.GradScaler] = None,
    output_transform: Callable[[Tensor, Tensor, Tensor, Tensor], Any] = _detached_loss,
) -> Callable[[Engine, Any], Any]:
    """Factory of the per-batch GHL update, in the manner of ``ignite.engine.supervised_training_step``.

    1. ``model.train()``; forward with autograd (under ``torch.autocast(dtype=amp_dtype)`` when given) while
       :class:`~hebbian.trainers.capture.LayerCapture` records every enabled Hebbian layer's ``(x, u)``;
    2. each rule's batch sums from ``(x, u)`` (in the weight's dtype, outside autocast); the records are released;
    3. ``loss_fn(y_pred, y).backward()`` (scaled by ``scaler`` when given, then unscaled);
    4. the sums are all-reduced over workers; each rule finalizes with ``grad = layer.weight.grad`` (the gradient of
       the global batch's mean loss: each worker's gradient weighted by its share :math:`n_r / N` of the global
       batch, so that an uneven last batch gives what one process gives; under DDP the loss is scaled by
       :math:`R\\,n_r/N` before DDP's plain average), the update is guarded against NaN/Inf and written into
       ``.grad`` as :math:`-\\Delta W`, replacing the backprop gradient of the Hebbian layers only;
    5. ``optimizer.step()`` (``scaler.step`` / ``scaler.update``); the stepped weights are checked to be finite.

    ``loss_fn`` must average over the batch (as the default cross-entropy does).

    Returns:
        ``update(engine, batch) -> output_transform(x, y, y_pred, loss)``, by default the detached loss tensor (no host
        sync). ``engine.state.hebbian_updates`` holds ``{layer name: ΔW}`` of the batch until the next batch starts
        (a handler that keeps a reference keeps its values).
    """
    capture = LayerCapture(bindings)
    guard = guard or NonFiniteGuard(bindings)

    def update(engine: Engine, batch: Any) -> Any:
        # the last batch's updates (weight-sized, one per Hebbian layer) are dropped before this batch's forward and
        # backward passes, as HebbianTrainer does: kept alive through them they cost as much as a second set of
        # gradients at the step's peak (docs/performance.md, "GHL with depth")
        engine.state.hebbian_updates = {}
        active = [b for b in bindings if b.enabled]
        model.train()
        optimizer.zero_grad(set_to_none=True)
        x, y = prepare_batch(batch, device, non_blocking)
        if y is None:
            raise ValueError("GHL needs labelled batches (x, y): the global direction comes from the loss")
        autocast = (torch.autocast(x.device.type, dtype=amp_dtype) if amp_dtype is not None
                    else contextlib.nullcontext())
        with autocast:
            with capture.record({b.name for b in active}) as records:
                y_pred = model(x)
            loss = loss_fn(y_pred, y)
        missing = {b.name for b in active} - set(records)
        if missing:
            raise RuntimeError(f"layers {sorted(missing)} did not run in the model's forward pass")
        with torch.no_grad():
            stats = layer_statistics(active, records, y)
        records.clear()
        share = batch_share(x.shape[0], loss.device)  # n_r / N (1 in a single process)
        ddp = isinstance(model, nn.parallel.DistributedDataParallel)
        scaled = loss * (idist.get_world_size() * share) if ddp and share is not None else loss
        (scaled if scaler is None else scaler.scale(scaled)).backward()
        if scaler is not None:
            scaler.unscale_(optimizer)
        if not ddp:
            all_reduce_gradients(model, share)  # data-parallel without DDP: the sign must come from the global gradient
        with torch.no_grad():
            grads = [_global_grad(b, scaler is not None) for b in active]
            updates = apply_updates(engine, active, reduce(stats), guard, grads)
        for b in bindings:
            if not b.enabled:
                b.weight.grad = None
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)
            scaler.update()
        guard.check_weights([guard.index_of(b) for b in active], engine.state.iteration)
        engine.state.hebbian_updates = updates
        return output_transform(x, y, y_pred, loss)

    update.capture = capture  # type: ignore[attr-defined]
    return update


def _global_grad(binding: RuleBinding, scaled: bool) -> Optional[Tensor]:
    grad = binding.weight.grad
    if grad is None or not scaled:
        return grad
    # An overflowed float16 step is skipped by the GradScaler; keep NaN out of the sign meanwhile.
    return torch.nan_to_num(grad, nan=0.0)


# ---------------------------------------------------------------------- the engine
class GHLTrainer(HebbianTrainer):
    """An Ignite engine that trains a model end to end with GHL (Hebbian magnitude, backprop sign).

    Model-agnostic: by default every convolution (``Conv1d/2d/3d``, grouped and depthwise included) is Hebbian and
    everything else (the final classifier, hidden ``Linear`` layers, BN) is trained by backprop;
    ``hebbian_layers="conv+linear"`` adds the hidden ``Linear`` layers and the attention projections. Weights are
    captured wherever they are used (:mod:`hebbian.trainers.capture`), so it works on
    :func:`hebbian.models.create_model` networks, torchvision's VGG / ResNet / MobileNetV3 / ViT and
    ``nn.TransformerEncoder`` and encoder-decoder ``nn.Transformer`` models alike (cross-attention: the query block
    of the packed projection learns from the query, the key and value blocks from the memory).

    Args:
        model: any ``nn.Module`` ending in a classifier (on ``device``; may be DDP-wrapped).
        learning_rule: the rule of every selected layer (object or registry name; default ``GHL()``, ``t_inv=1``),
            or a mapping ``{layer name / pattern / type / predicate: rule}`` that names the Hebbian layers itself
            (e.g. ``model.default_rules()`` of a GHL recipe, with DeepHebb's ``t_inv`` 1, 0.65, 0.25).
        optimizer: usually ``SGD(ghl_param_groups(...), momentum=0)``; must hold the Hebbian weights.
        loss_fn: ``(y_pred, y) -> loss`` (default cross-entropy).
        hebbian_layers, include_1x1, include_downsample, classifier: which layers are Hebbian when
            ``learning_rule`` is a single rule (see :func:`select_hebbian_layers`). The final classifier is never
            Hebbian.
        device: where batches go (the model must already be there).
        amp: run the forward pass under ``torch.autocast`` (``amp_dtype``: default float16 on CUDA, bfloat16 on CPU);
            the rules still see float32 ``x``/``u``.
        scaler: a ``torch.amp.GradScaler``, or ``True`` for a new one; default: one for float16, none otherwise.
        output_transform: ``(x, y, y_pred, loss) -> output``; default the detached loss tensor.
        prepare_batch, non_blocking, nan_check_every, sync_check_every: as :class:`HebbianTrainer`.

    Layers that ``hebbian_layers`` covers but no Hebbian rule supports (``ConvTranspose``, ``LSTM``, ``GRU``,
    ``Embedding``, ...; :func:`backprop_only_layers`) are trained by backprop: they are named in one
    :class:`BackpropOnlyWarning` and listed in :attr:`backprop_only` (empty when ``learning_rule`` is a mapping,
    which names its layers itself; a mapping key that matches such a layer is refused by name).

    Example::

        model = create_model("deephebb", variant="ghl", in_channels=3, input_size=32).to(device)
        names = list(model.default_rules())
        optimizer = torch.optim.SGD(ghl_param_groups(model, names, lr_conv=1e-2, wd_conv=5e-2, lr=5e-3), lr=5e-3)
        trainer = GHLTrainer(model, model.default_rules(), optimizer, device=device)
        trainer.add_event_handler(Events.ITERATION_STARTED, ghl_lr_scheduler(optimizer, 100, len(train_loader)))
        trainer.run(train_loader, max_epochs=100)
    """

    def __init__(
        self,
        model: nn.Module,
        learning_rule: Optional[Union[LearningRule, str, Mapping[Any, Any]]],
        optimizer: torch.optim.Optimizer,
        *,
        loss_fn: Optional[Callable[[Tensor, Tensor], Tensor]] = None,
        hebbian_layers: LayerSelector = "conv",
        include_1x1: bool = True,
        include_downsample: bool = True,
        classifier: Optional[str] = None,
        device: Optional[Union[str, torch.device]] = None,
        amp: bool = False,
        amp_dtype: Optional[torch.dtype] = None,
        scaler: Optional[Union[bool, torch.amp.GradScaler]] = None,
        output_transform: Callable[[Tensor, Tensor, Tensor, Tensor], Any] = _detached_loss,
        prepare_batch: PrepareBatch = default_prepare_batch,
        non_blocking: bool = False,
        nan_check_every: int = 100,
        sync_check_every: int = 100,
    ) -> None:
        self.classifier = final_classifier(unwrap_model(model)) if classifier is None else classifier
        #: names of the layers the selection covers that no Hebbian rule supports: trained by backprop instead
        self.backprop_only: List[str] = []
        if isinstance(learning_rule, Mapping):
            spec: Any = dict(learning_rule)
        else:
            selected = set(select_hebbian_layers(model, hebbian_layers, include_1x1=include_1x1,
                                                 include_downsample=include_downsample, classifier=self.classifier))
            spec = {(lambda name, module: name in selected): GHL() if learning_rule is None else learning_rule}
            self.backprop_only = backprop_only_layers(model, hebbian_layers, classifier=self.classifier)
            self._warn_backprop_only(model, hebbian_layers)
        self.loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
        self.output_transform = output_transform
        self.amp_dtype, self.scaler = self._amp_settings(amp, amp_dtype, scaler, device, model)
        super().__init__(model, spec, optimizer, supervised_from=None, device=device, prepare_batch=prepare_batch,
                         non_blocking=non_blocking, nan_check_every=nan_check_every,
                         sync_check_every=sync_check_every)
        if self.classifier in self.layer_names:
            self.remove_hooks()
            raise ValueError(f"the final classifier {self.classifier!r} cannot be Hebbian in GHL; it is trained by "
                             "backprop (name another layer as `classifier` if this is not the classifier)")

    def _warn_backprop_only(self, model: nn.Module, hebbian_layers: LayerSelector) -> None:
        if not self.backprop_only:
            return
        modules = dict(unwrap_model(model).named_modules())
        listed = ", ".join(f"{n!r} ({type(modules[n]).__name__})" for n in self.backprop_only)
        selector = repr(hebbian_layers) if isinstance(hebbian_layers, str) else "the predicate"
        warnings.warn(f"GHL trains {listed} by backprop: hebbian_layers={selector} covers them, but no Hebbian rule "
                      "supports these layer types (supported: nn.Linear, nn.Conv1d/2d/3d, nn.MultiheadAttention "
                      "projections); they are listed in trainer.backprop_only", BackpropOnlyWarning, stacklevel=3)

    @staticmethod
    def _amp_settings(amp: bool, amp_dtype: Optional[torch.dtype], scaler: Any, device: Any, model: nn.Module):
        if not amp:
            if amp_dtype is not None or scaler not in (None, False):
                raise ValueError("amp_dtype and scaler need amp=True")
            return None, None
        kind = (torch.device(device) if device is not None else model_device(model)).type
        dtype = amp_dtype if amp_dtype is not None else (torch.float16 if kind == "cuda" else torch.bfloat16)
        if dtype not in (torch.float16, torch.bfloat16):
            raise ValueError(f"amp_dtype must be torch.float16 or torch.bfloat16, got {dtype}")
        if scaler is None:
            scaler = dtype == torch.float16
        if scaler is True:
            scaler = torch.amp.GradScaler(kind)
        return dtype, (scaler or None)

    def _check_rules(self, use_labels: bool) -> None:
        """Any rule may train a layer here; rules with ``needs_global_grad`` receive the backprop gradient. Rules that
        need the network's output (three-factor rules) train with :class:`HebbianTrainer`, which broadcasts it."""
        for b in self.bindings:
            if b.rule.info.needs_output:
                raise ValueError(f"layer {b.name!r}: rule {b.rule.info.name!r} needs the network's output broadcast "
                                 "to it; train it with hebbian.trainers.HebbianTrainer (supervised_from=None)")

    def _make_step(self, device, non_blocking, prepare_batch) -> Callable[[Engine, Any], Any]:
        return ghl_training_step(
            self.model, self.bindings, self.optimizer, self.loss_fn, device, non_blocking, prepare_batch, self.guard,
            amp_dtype=self.amp_dtype, scaler=self.scaler, output_transform=self.output_transform,
        )


class DeterministicGHLTrainer(GHLTrainer, DeterministicHebbianTrainer):
    """:class:`GHLTrainer` on Ignite's ``DeterministicEngine`` (with :class:`DeterministicHebbianTrainer`'s exact
    mid-epoch resume): reproducible data order, dropout and shuffling."""


def create_ghl_trainer(
    model: nn.Module,
    learning_rule: Optional[Union[LearningRule, str, Mapping[Any, Any]]],
    optimizer: torch.optim.Optimizer,
    *,
    deterministic: bool = False,
    **kwargs: Any,
) -> GHLTrainer:
    """Build a :class:`GHLTrainer` (or its deterministic variant), as ``create_supervised_trainer`` does."""
    cls = DeterministicGHLTrainer if deterministic else GHLTrainer
    return cls(model, learning_rule, optimizer, **kwargs)
