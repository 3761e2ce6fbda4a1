"""The trainer's side of three-factor learning: exploration noise in the forward pass, the broadcast after it.

Rules with ``info.needs_output`` (:class:`~hebbian.rules.three_factor.ThreeFactorRule`) gate their Hebbian term by a
third factor computed from the network's output. Per batch the step (:func:`hebbian.trainers.hebbian_trainer.
hebbian_training_step`) runs the whole forward pass within :func:`exploration` (layers whose rule explores add their
noise to their output, before the output is recorded, so that downstream layers and the output see it), then sends
the output and labels to every such rule within :func:`broadcast` while the statistics are computed.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Any, Iterator, Optional, Sequence, Tuple

import ignite.distributed as idist
from torch import Tensor

from hebbian.rules.layers import SUPPORTED_LAYERS
from hebbian.rules.modulation import Broadcast
from hebbian.trainers.binding import RuleBinding


def modulated(bindings: Sequence[RuleBinding]) -> list:
    """The bindings whose rule needs the network's output."""
    return [b for b in bindings if getattr(b.rule.info, "needs_output", False)]


def check_exploring(bindings: Sequence[RuleBinding]) -> None:
    """Exploration noise is added by a forward hook on the module that owns the weight: refuse other uses."""
    for b in bindings:
        if getattr(b.rule, "explores", False) and not (isinstance(b.layer, SUPPORTED_LAYERS)
                                                        and b.layer.weight is b.weight):
            raise ValueError(f"layer {b.name!r}: rule {b.rule.info.name!r} explores (adds noise to the layer's "
                             "output), which needs an nn.Linear / nn.Conv module applying the weight in its forward")


def perturbed(rule: Any, output: Tensor, share: Optional[Tuple[int, int]] = None) -> Tensor:
    """``rule.perturb(output)``; in a data-parallel run every process draws the noise of all ``R`` processes in turn
    and keeps its own (rank ``r``: the ``r``-th draw), so that the processes explore independently and their RNGs
    stay in step (what one process checkpoints holds for all). ``share = (r, R)``: draw as rank ``r`` of ``R`` does
    (one process computing the batch in shares, ``train.shares``)."""
    rank, world = share if share is not None else (idist.get_rank(), idist.get_world_size())
    if world == 1:
        return rule.perturb(output)
    mine = output
    for r in range(world):
        draw = rule.perturb(output)
        mine = draw if r == rank else mine
    return mine


@contextmanager
def exploration(bindings: Sequence[RuleBinding], share: Optional[Tuple[int, int]] = None) -> Iterator[None]:
    """Within the context, every layer whose rule explores returns its output plus the rule's noise from its forward
    (:func:`perturbed`, with ``share``; the hook runs before the capture's, so the recorded output is the perturbed
    one)."""
    with ExitStack() as stack:
        for b in bindings:
            if getattr(b.rule, "explores", False):
                handle = b.layer.register_forward_hook(
                    lambda _m, _i, out, rule=b.rule: perturbed(rule, out, share), prepend=True)
                stack.callback(handle.remove)
        yield


@contextmanager
def broadcast(bindings: Sequence[RuleBinding], output: Tensor, labels: Optional[Tensor],
              output_layer: Optional[str]) -> Iterator[None]:
    """Within the context every binding's rule has received the network's ``output`` and ``labels``, addressed to its
    layer (``at_output`` for ``output_layer``, the layer that computes the output)."""
    if not isinstance(output, Tensor) or output.dim() != 2:
        shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise ValueError(f"three-factor rules need the model's output as (N, classes) logits, got {shape}")
    if labels is None:
        raise ValueError("three-factor rules need labelled batches (x, y): the third factor comes from the output "
                         "and the labels")
    sent = Broadcast(output.detach(), labels)
    try:
        for b in bindings:
            b.rule.receive(sent.to(b.name, b.name == output_layer))
        yield
    finally:
        for b in bindings:
            b.rule.receive(None)
