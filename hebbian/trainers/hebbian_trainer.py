"""The Hebbian trainer: a step factory (``hebbian_training_step``) wrapped into an Ignite engine."""

from __future__ import annotations

import random
from contextlib import nullcontext
from functools import partial
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import ignite.distributed as idist
import numpy as np
import torch
from ignite.engine import DeterministicEngine, Engine, Events
from torch import Tensor, nn

from hebbian.optim import write_update
from hebbian.rules.base import Statistics, check_labels
from hebbian.trainers.batch import prepare_batch as default_prepare_batch
from hebbian.trainers.binding import RuleBinding, RuleSpec, bind_rules
from hebbian.trainers.capture import LayerCapture, Use, use_statistics
from hebbian.trainers.distributed import all_reduce_statistics, broadcast_parameters, check_replicas_in_sync
from hebbian.trainers.events import HebbianEvents, register_hebbian_events
from hebbian.trainers.modulation import broadcast, check_exploring, exploration, modulated
from hebbian.trainers.shares import Shares, check_shares
from hebbian.trainers.guard import DEFAULT_MAX_ABS_WEIGHT, NonFiniteGuard

PrepareBatch = Callable[[Any, Optional[Union[str, torch.device]], bool], Tuple[Tensor, Optional[Tensor]]]


def layer_statistics(
    bindings: Sequence[RuleBinding], records: Dict[str, List[Use]], labels: Optional[Tensor]
) -> List[Statistics]:
    """Each bound weight's batch sums from its recorded uses (summed over the uses); labels are checked as
    ``rule.update`` checks them (integer class indices, one per sample)."""
    stats = []
    for b in bindings:
        uses = records[b.name]
        if b.rule.info.needs_labels:
            check_labels(b.rule.info.name, labels, uses[0].x.shape[0])
        stats.append(use_statistics(b, uses, labels))
    return stats


def apply_updates(
    engine: Engine,
    bindings: Sequence[RuleBinding],
    stats: Sequence[Statistics],
    guard: NonFiniteGuard,
    grads: Optional[Sequence[Optional[Tensor]]] = None,
) -> Dict[str, Tensor]:
    """Finalize each layer's (reduced) statistics and write :math:`-\\Delta W` into its ``.grad``."""
    updates: Dict[str, Tensor] = {}
    for i, (b, s) in enumerate(zip(bindings, stats)):
        delta = b.rule.finalize(b.view, s, None if grads is None else grads[i])
        rows = b.rule.support(delta)  # None unless the update is zero outside known rows (Krotov, Linear)
        delta = guard(guard.index_of(b), delta, engine.state.iteration, rows)
        write_update(b.weight, delta, rows)
        updates[b.name] = delta
        engine.state.layer_name = b.name
        engine.state.layer_updates += 1
        engine.fire_event(HebbianEvents.LAYER_UPDATED)
    return updates


def hebbian_training_step(
    model: nn.Module,
    bindings: Sequence[RuleBinding],
    optimizer: torch.optim.Optimizer,
    device: Optional[Union[str, torch.device]] = None,
    non_blocking: bool = False,
    prepare_batch: PrepareBatch = default_prepare_batch,
    guard: Optional[NonFiniteGuard] = None,
    reduce: Callable[[Sequence[Statistics]], List[Statistics]] = all_reduce_statistics,
    stop_early: bool = True,
    output_layer: Optional[str] = None,
    shares: Optional[int] = None,
) -> Callable[[Engine, Any], Dict[str, Tensor]]:
    """Factory of the per-batch Hebbian update, in the manner of ``ignite.engine.supervised_training_step``.

    Per batch: ONE forward pass (no autograd) records every enabled layer's input and output; each rule computes
    its batch sums; the sums are all-reduced across workers (when distributed); each rule finalizes its update, which
    is guarded against NaN/Inf and written as ``-ΔW`` into the weight's ``.grad``; then ``optimizer.step()``, after
    which the stepped weights are checked to be finite (one reduction each). All layers are updated from the same
    forward pass ("simultaneous" training).

    Three-factor rules (``info.needs_output``): the forward pass runs to the end with their layers' exploration
    noise (:func:`~hebbian.trainers.modulation.exploration`), and the model's output and the labels are broadcast to
    them while the statistics are computed (``output_layer``, the layer that computes the output, takes its own
    error).

    ``shares`` = N >= 2 (``train.shares``): in one process, each batch's sums are computed as N data-parallel processes
    compute them, a forward pass and the rules' sums per share (rows ``r::N``), added in rank order
    (:class:`~hebbian.trainers.shares.Shares`), so that the run equals an N-process run bit for bit; in
    a run of N processes, the processes add their sums in rank order (for N >= 3; two add ``a + b`` anyway). ``None``
    or 1: the whole batch at once.

    Returns:
        ``update(engine, batch) -> {layer name: ΔW}``, also left in ``engine.state.hebbian_updates``.
    """
    split = check_shares(shares, idist.get_world_size())
    in_shares = Shares(split)
    if shares is not None and shares > 1 and idist.get_world_size() > 1 and reduce is all_reduce_statistics:
        reduce = partial(all_reduce_statistics, ordered=True)
    capture = LayerCapture(bindings)
    guard = guard or NonFiniteGuard(bindings)
    bound = {id(b.weight) for b in bindings}
    # parameters the optimizer holds besides the bound weights (e.g. a readout after a supervised phase): a stale
    # gradient there must not move them at optimizer.step()
    foreign = [p for group in optimizer.param_groups for p in group["params"] if id(p) not in bound]

    def update(engine: Engine, batch: Any) -> Dict[str, Tensor]:
        # last batch's updates are dropped before this batch's are made, so that a rule may build its update in the
        # same memory (rules/buffers.py); a handler that kept a reference keeps its values
        engine.state.hebbian_updates, engine.state.output = {}, None
        active = [b for b in bindings if b.enabled]
        for b in bindings:
            if not b.enabled:
                b.weight.grad = None
        for p in foreign:
            p.grad = None
        if not active:
            return {}
        model.train()
        x, y = prepare_batch(batch, device, non_blocking)
        if y is None and any(b.rule.info.needs_labels for b in active):
            raise ValueError("the batch has no labels, but a bound rule needs them (needs_labels=True)")
        third = modulated(active)  # three-factor rules: the whole forward pass, its output broadcast to them

        def statistics(x: Tensor, y: Optional[Tensor], share: int) -> List[Statistics]:
            """The forward pass of ``x`` and the active layers' batch sums (of share ``share`` of ``split``)."""
            with capture.record({b.name for b in active}, stop_early and not third) as records, \
                    exploration(third, (share, split) if split > 1 else None):
                output = model(x)
            missing = {b.name for b in active} - set(records)
            if missing:
                raise RuntimeError(f"layers {sorted(missing)} did not run in the model's forward pass")
            with broadcast(third, output, y, output_layer) if third else nullcontext():
                return layer_statistics(active, records, y)

        with torch.no_grad():
            stats = statistics(x, y, 0) if split == 1 else in_shares(model, x, y, statistics)
            updates = apply_updates(engine, active, reduce(stats), guard)
        optimizer.step()
        guard.check_weights([guard.index_of(b) for b in active], engine.state.iteration)
        engine.state.hebbian_updates = updates
        return updates

    update.capture = capture  # type: ignore[attr-defined]
    return update


class HebbianTrainer(Engine):
    """An Ignite engine that trains a model's layers with Hebbian rules.

    Args:
        model: any ``nn.Module``.
        learning_rule: one rule for all ``Linear``/``Conv2d`` layers outside the supervised part, or a mapping from
            layer name / pattern, module type or predicate to rules (see :func:`~hebbian.trainers.binding.bind_rules`).
        optimizer: any ``torch.optim`` optimizer over (at least) the bound weights, e.g. :class:`hebbian.optim.Local`.
        supervised_from: as in pytorch-hebbian: top-level child index or module name from which on the model is
            supervised (not Hebbian). Default ``-1`` (the last child, e.g. a readout) for a single rule; ``None``
            (only the mapped layers) for a mapping.
        freeze: layer names (or patterns) that must not learn.
        greedy_epochs: train one layer at a time, for this many epochs each, then the next (layer-wise greedy).
        device: where batches go (the model must already be there).
        use_labels: whether batches carry labels; a rule that needs labels fails at construction without them.
        prepare_batch: ``(batch, device, non_blocking) -> (x, y or None)``.
        nan_check_every: on accelerators, how often (iterations) flagged non-finite updates are checked; the CPU
            checks every update.
        sync_check_every: in data-parallel runs, how often (iterations) the replicas' weights are compared.
        max_abs_weight: at each epoch's end, a bound Hebbian layer whose largest ``|w|`` exceeds this stops training
            with :class:`~hebbian.trainers.guard.ExplodingWeightsError` (a diverging rule whose weights are still
            finite); ``None``: no limit. Default 1e8.
        shares: N >= 2: compute each batch's sums as N data-parallel processes do, per share and added in rank
            order, so that one process equals an N-process run bit for bit (in an N-process run: add in rank order);
            costs a forward pass and the rules' sums per share (README, Data-parallel training). ``None`` (default)
            or 1: the whole batch at once.

    Events: :class:`~hebbian.trainers.events.HebbianEvents` (``LAYER_UPDATED``, ``GREEDY_LAYER_COMPLETED``).
    ``state_dict`` includes ``greedy_layer``, ``disabled_layers`` and ``layer_updates`` (a fresh run restarts the greedy
    schedule and the counter; a resumed one continues them). For checkpoints and exact resume see
    :mod:`hebbian.trainers.checkpoint`.

    Example::

        trainer = HebbianTrainer(model, KrotovsRule(), Local(model.named_parameters(), lr=0.01))
        trainer.run(train_loader, epochs=10)
    """

    def __init__(
        self,
        model: nn.Module,
        learning_rule: RuleSpec,
        optimizer: torch.optim.Optimizer,
        *,
        supervised_from: Optional[Union[int, str]] = "default",  # type: ignore[assignment]
        freeze: Iterable[str] = (),
        greedy_epochs: Optional[int] = None,
        device: Optional[Union[str, torch.device]] = None,
        use_labels: bool = True,
        prepare_batch: PrepareBatch = default_prepare_batch,
        non_blocking: bool = False,
        nan_check_every: int = 100,
        sync_check_every: int = 100,
        max_abs_weight: Optional[float] = DEFAULT_MAX_ABS_WEIGHT,
        shares: Optional[int] = None,
    ) -> None:
        self.shares = shares
        if max_abs_weight is not None and not (isinstance(max_abs_weight, (int, float)) and max_abs_weight > 0):
            raise ValueError(f"max_abs_weight must be a positive number or None, got {max_abs_weight!r}")
        self.max_abs_weight = max_abs_weight
        self.model = model
        self.optimizer = optimizer
        if supervised_from == "default":
            supervised_from = None if isinstance(learning_rule, dict) else -1
        self.bindings = bind_rules(model, learning_rule, supervised_from=supervised_from, freeze=freeze)
        self._check_rules(use_labels)
        self._check_optimizer(optimizer)
        if greedy_epochs is not None and (isinstance(greedy_epochs, bool) or not isinstance(greedy_epochs, int)
                                          or greedy_epochs < 1):
            raise ValueError(f"greedy_epochs must be a positive integer or None, got {greedy_epochs!r}")
        self.greedy_epochs = greedy_epochs
        self.guard = NonFiniteGuard(self.bindings)
        step = self._make_step(device, non_blocking, prepare_batch)
        from hebbian.trainers.batch import explain_dtype_errors  # inputs are never cast: a clear error instead

        super().__init__(explain_dtype_errors(step, self.bindings[0].weight.dtype, prepare_batch))
        self._capture: LayerCapture = getattr(step, "capture")
        register_hebbian_events(self)
        self.state.disabled_layers = []
        self.state_dict_user_keys.extend(["greedy_layer", "disabled_layers", "layer_updates"])
        self.add_event_handler(Events.STARTED, self._on_started)
        self.add_event_handler(Events.EPOCH_COMPLETED, self._on_epoch_completed)
        self.add_event_handler(Events.ITERATION_COMPLETED(every=nan_check_every), self._check_guard)
        self.add_event_handler(Events.COMPLETED, self._check_guard)
        self.add_event_handler(Events.ITERATION_COMPLETED(every=sync_check_every), self._check_sync)

    # ------------------------------------------------------------------ construction helpers
    def _make_step(self, device, non_blocking, prepare_batch) -> Callable[[Engine, Any], Any]:
        output_layer = None
        if modulated(self.bindings):  # the layer that computes the output takes its own error (three-factor rules)
            from hebbian.models.discovery import unwrap_model
            from hebbian.trainers.ghl import final_classifier

            output_layer = final_classifier(unwrap_model(self.model))
        return hebbian_training_step(
            self.model, self.bindings, self.optimizer, device, non_blocking, prepare_batch, self.guard,
            output_layer=output_layer, shares=self.shares,
        )

    def _check_rules(self, use_labels: bool) -> None:
        for b in self.bindings:
            if getattr(b.rule, "uses_global_grad", b.rule.info.needs_global_grad):
                raise ValueError(
                    f"layer {b.name!r}: rule {b.rule.info.name!r} needs the backprop gradient dL/dW; "
                    "train it with hebbian.trainers.GHLTrainer"
                )
            if b.rule.info.needs_labels and not use_labels:
                raise ValueError(f"layer {b.name!r}: rule {b.rule.info.name!r} needs labels, but use_labels=False")
        check_exploring(self.bindings)

    def _check_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        owned = {id(p) for group in optimizer.param_groups for p in group["params"]}
        missing = [b.name for b in self.bindings if id(b.weight) not in owned]
        if missing:
            raise ValueError(f"optimizer does not hold the weights of the Hebbian layers {missing}")

    # ------------------------------------------------------------------ run-time control
    @property
    def layer_names(self) -> List[str]:
        return [b.name for b in self.bindings]

    def enable_learning(self, *names: str) -> None:
        """Switch learning on for the named layers (all bound layers when no name is given)."""
        names = names or tuple(self.layer_names)
        self._check_names(names)
        self.state.disabled_layers = [n for n in self.state.disabled_layers if n not in names]
        self._apply_enabled()

    def disable_learning(self, *names: str) -> None:
        """Switch learning off for the named layers (all bound layers when no name is given)."""
        names = names or tuple(self.layer_names)
        self._check_names(names)
        self.state.disabled_layers = sorted(set(self.state.disabled_layers) | set(names))
        self._apply_enabled()

    def _check_names(self, names: Sequence[str]) -> None:
        unknown = [n for n in names if n not in self.layer_names]
        if unknown:
            raise ValueError(f"unknown Hebbian layers {unknown}; bound layers: {self.layer_names}")

    def _apply_enabled(self) -> None:
        greedy = getattr(self.state, "greedy_layer", 0) if self.greedy_epochs else None
        for i, b in enumerate(self.bindings):
            b.enabled = b.name not in self.state.disabled_layers and (greedy is None or i == greedy)

    def _on_started(self, _: Engine) -> None:
        if self.state.iteration == 0:  # a fresh run (not a resume): restart the greedy schedule and the counters
            self.state.greedy_layer = 0
            self.state.layer_updates = 0
        self._apply_enabled()
        # every replica starts from rank 0's parameters and buffers (biases, readout, BN statistics included)
        broadcast_parameters([*self.model.parameters(), *self.model.buffers()])

    def _on_epoch_completed(self, _: Engine) -> None:
        self.guard.raise_if_flagged(self.state.iteration)
        self.guard.check_magnitude(self.max_abs_weight, self.state.iteration)
        if self.greedy_epochs and self.state.epoch % self.greedy_epochs == 0:
            if self.state.greedy_layer < len(self.bindings) - 1:
                self.state.greedy_layer += 1
                self._apply_enabled()
                self.fire_event(HebbianEvents.GREEDY_LAYER_COMPLETED)

    def _check_guard(self, _: Engine) -> None:
        self.guard.raise_if_flagged(self.state.iteration)

    def _check_sync(self, _: Engine) -> None:
        if idist.get_world_size() > 1:
            check_replicas_in_sync([b.weight for b in self.bindings], self.layer_names)

    def run(  # type: ignore[override]
        self,
        data: Optional[Iterable] = None,
        max_epochs: Optional[int] = None,
        epoch_length: Optional[int] = None,
        max_iters: Optional[int] = None,
        *,
        epochs: Optional[int] = None,
    ):
        """``Engine.run``; ``epochs`` is accepted as pytorch-hebbian's name for ``max_epochs``."""
        if epochs is not None:
            if max_epochs is not None:
                raise ValueError("give either epochs or max_epochs, not both")
            max_epochs = epochs
        return super().run(data, max_epochs=max_epochs, epoch_length=epoch_length, max_iters=max_iters)

    def remove_hooks(self) -> None:
        """Remove the forward hooks from the model (the trainer can no longer run)."""
        self._capture.remove()


class DeterministicHebbianTrainer(HebbianTrainer, DeterministicEngine):
    """:class:`HebbianTrainer` on Ignite's ``DeterministicEngine``: reproducible data order and exact mid-epoch resume.

    Seed the global RNG (``ignite.utils.manual_seed``/``torch.manual_seed``) with the same value before ``run`` in
    the original and in the resumed process: the engine draws its per-epoch seeds from it at ``STARTED``.

    Two fixes over ``DeterministicEngine`` for exact resume:

    * ``state_dict()["rng_states"]`` (Python, NumPy, torch and CUDA RNG states) holds only tensors and plain Python
      values, so checkpoints load with ``torch.load(weights_only=True)``;
    * when resuming mid-epoch, the saved RNG states are restored once the epoch's data order has been drawn (at the
      first ``GET_BATCH_COMPLETED``), not before it; otherwise a shuffling loader would draw a different permutation
      than the uninterrupted run did.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rng_states_to_restore: Optional[Dict[str, Any]] = None
        self.add_event_handler(Events.GET_BATCH_COMPLETED, self._restore_rng_states)

    def state_dict(self):  # type: ignore[override]
        state = super().state_dict()
        state["rng_states"] = get_rng_states()
        return state

    def load_state_dict(self, state_dict: Mapping) -> None:
        super().load_state_dict(state_dict)
        length = self.state.epoch_length
        in_the_middle = bool(length) and self.state.iteration % length > 0
        saved = self.state.rng_states
        self._rng_states_to_restore = saved if isinstance(saved, Mapping) and in_the_middle else None
        self.state.rng_states = None  # keep DeterministicEngine from restoring them before the data order is drawn

    def _restore_rng_states(self, _: Engine) -> None:
        if self._rng_states_to_restore is not None:
            set_rng_states(self._rng_states_to_restore)
            self._rng_states_to_restore = None


def get_rng_states() -> Dict[str, Any]:
    """The Python, NumPy, torch (and CUDA, when available) RNG states, as tensors and plain Python values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    states: Dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.copy()), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: Mapping[str, Any]) -> None:
    """Restore what :func:`get_rng_states` returned (the CUDA states only on as many devices as were saved)."""
    random.setstate(states["python"])
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().copy(), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


def create_hebbian_trainer(
    model: nn.Module, learning_rule: RuleSpec, optimizer: torch.optim.Optimizer, *, deterministic: bool = False,
    **kwargs: Any,
) -> HebbianTrainer:
    """Build a :class:`HebbianTrainer` (or its deterministic variant), as ``create_supervised_trainer`` does."""
    cls = DeterministicHebbianTrainer if deterministic else HebbianTrainer
    return cls(model, learning_rule, optimizer, **kwargs)
