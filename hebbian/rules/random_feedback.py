"""Random-feedback error broadcast: the output error, sent to each layer through fixed random weights, gates Hebb.

Sources: Nøkland 2016, "Direct Feedback Alignment Provides Learning in Deep Neural Networks" (NeurIPS): every hidden
layer receives the output error through its own fixed random matrix, :math:`\\delta a_l = (B_l e) \\odot f'(a_l)`,
:math:`\\delta W_l = -\\delta a_l\\, h_{l-1}^T`; Lillicrap, Cownden, Tweed & Akerman 2016, "Random synaptic feedback
weights support error backpropagation for deep learning" (Nat. Commun. 7:13276): fixed random feedback weights
instead of the transposed forward weights (no weight transport); the forward weights come to align with them.
As a three-factor rule (Frémaux & Gerstner 2016): :math:`M = -B_l e`, :math:`H = f'(a) \\otimes x`.
"""

from __future__ import annotations

import math
import zlib
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from hebbian.rules.base import Statistics
from hebbian.rules.layers import LayerView
from hebbian.rules.modulation import Broadcast, Modulator, register_modulator
from hebbian.rules.registry import register_rule
from hebbian.rules.three_factor import (ThreeFactorRule, check_activation, derivative, modulator_attribute,
                                        per_sample, pre_activation)


def feedback_seed(seed: int, layer: str) -> int:
    """The seed of one layer's feedback matrix: ``seed`` and the layer's name (stable across processes)."""
    return (seed * 1_000_003 + zlib.crc32(layer.encode("utf-8"))) % (2**63 - 1)


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    return seed


@register_modulator(
    "random_feedback",
    description="M_n = -B e_n: the output error softmax(o) - onehot(t) through a fixed random matrix per layer.",
    scope="unit", needs_output=True, stateful=True,
    source="Nøkland 2016 (direct feedback alignment); Lillicrap et al. 2016 (random feedback weights)",
)
class RandomFeedback(Modulator):
    """The output error broadcast through fixed random feedback weights: :math:`M_n = -B\\, e_n`, ``(N, M)``.

    .. math:: e_n = \\mathrm{softmax}(o_n) - \\mathrm{onehot}(t_n), \\qquad
        B_{kc} \\sim \\mathcal N(0, 1/C) \\;(\\text{hidden layer}), \\qquad B = I \\;(\\text{output layer})

    :math:`e_n` is the gradient of the cross-entropy with respect to the output :math:`o_n` (``C`` classes). ``B``
    (``feedback``, ``(M, C)``) is drawn once per layer, at its first batch, from a generator seeded with ``seed``
    and the layer's name (:func:`feedback_seed`), and saved with the state.
    """

    state_tensors = ("feedback",)

    def __init__(self, seed: int = 0) -> None:
        self.seed = check_seed(seed)
        self.feedback: Optional[Tensor] = None

    def matrix(self, broadcast: Broadcast, units: int, like: Tensor) -> Tensor:
        """``B`` of the receiving layer (drawn at the first call)."""
        classes = broadcast.output.shape[1]
        if self.feedback is None:
            if broadcast.at_output:
                if units != classes:
                    raise ValueError(f"the output layer has {units} units but the network has {classes} outputs")
                feedback = torch.eye(classes, dtype=torch.float64)
            else:
                g = torch.Generator().manual_seed(feedback_seed(self.seed, broadcast.layer))
                feedback = torch.randn(units, classes, generator=g, dtype=torch.float64).div_(math.sqrt(classes))
            self.feedback = feedback.to(dtype=like.dtype, device=like.device)
        if tuple(self.feedback.shape) != (units, classes):
            raise ValueError(f"the feedback matrix has shape {tuple(self.feedback.shape)}, but the layer has {units} "
                             f"units and the network {classes} outputs")
        return self.feedback

    def factor(self, broadcast: Broadcast, units: int, like: Tensor) -> Tensor:
        """:math:`M = -e B^T`, ``(N, M)``, in ``like``'s dtype."""
        out = broadcast.output.to(like.dtype)
        error = F.softmax(out, dim=1)
        error.scatter_add_(1, broadcast.labels.long().unsqueeze(1), error.new_full((out.shape[0], 1), -1.0))
        return error @ self.matrix(broadcast, units, like).t().neg()


@register_rule(
    "random_feedback",
    description="Direct random feedback: dW = -(B e) * f'(a) x; the output error through fixed random weights "
                "trains every layer without weight transport.",
    needs_labels=True, needs_output=True, stateful=True,
)
class DFA(ThreeFactorRule):
    """Direct feedback alignment as a three-factor rule.

    .. math::
        \\Delta W_k = \\frac1S \\sum_{n,p} M_{n,k}\\, f'(a_{n,k,p})\\, P_{n,p}, \\qquad M_n = -B\\, e_n

    with :math:`a = u + b` the layer's output (its bias included), :math:`f'` the derivative of the non-linearity
    that follows the layer (``activation``) and :math:`M` from :class:`RandomFeedback`. The output layer takes its
    error itself (:math:`B = I`, :math:`f' = 1`): :math:`\\Delta W = -\\frac1S \\sum_n e_n x_n^T`, the gradient step of
    the cross-entropy; hidden layers get their error through their fixed random :math:`B`. No layer needs another
    layer's weights. Biases are not trained (they keep their values).

    State: ``feedback``, the layer's :math:`B` ``(M, C)``.

    Args:
        activation: the non-linearity after a hidden layer: identity, relu, tanh or sigmoid.
        seed: seed of the feedback matrices (with each layer's name).
    """

    state_tensors = ("feedback",)
    seed = modulator_attribute("seed")
    feedback = modulator_attribute("feedback")

    def __init__(self, activation: str = "relu", seed: int = 0) -> None:
        self.modulator = RandomFeedback(seed)
        self.activation = check_activation(activation)

    def statistics(self, view: LayerView, x: Tensor, u: Tensor, labels: Optional[Tensor] = None) -> Statistics:
        broadcast = self.broadcast_for(view, u, labels)
        m = per_sample(self.modulator.factor(broadcast, view.num_neurons, u), u)
        if broadcast.at_output:
            post = m.expand(u.shape).contiguous()
        else:
            post = derivative(pre_activation(view, u), self.activation).mul_(m)
        return {"delta": view.correlate(x, post), "count": view.count(u)}
