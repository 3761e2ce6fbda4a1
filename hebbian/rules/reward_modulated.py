"""Reward-modulated Hebbian learning: a reward-prediction error gates the Hebbian term (R-max, node perturbation).

Sources: Frémaux & Gerstner 2016, "Neuromodulated spike-timing-dependent plasticity, and theory of three-factor
learning rules" (Front. Neural Circuits 9:85): :math:`\\dot w = \\eta\\, M(t)\\, e(t)`, the eligibility trace
:math:`e` a low-pass filter of Hebbian coincidences and :math:`M = R - \\bar R` the reward minus its expectation;
Frémaux, Sprekeler & Gerstner 2010, "Functional requirements for reward-modulated spike-timing-dependent plasticity"
(J. Neurosci. 30:13326): the reward must be measured against a *stimulus-specific* reward prediction, else the rule
learns a bias; Legenstein, Pecevski & Maass 2008 (PLoS Comput. Biol. 4:e1000180) for reward-modulated Hebbian
plasticity; the exploratory (node-perturbation) form with the noise as the post-synaptic term: Williams 1992
(REINFORCE for Gaussian units), Fiete & Seung 2006 (Phys. Rev. Lett. 97:048104).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from hebbian.rules.base import Statistics, check_choice, check_positive
from hebbian.rules.layers import LayerView
from hebbian.rules.modulation import Broadcast, Modulator, register_modulator
from hebbian.rules.registry import register_rule
from hebbian.rules.three_factor import (ThreeFactorRule, activation, check_activation, modulator_attribute, per_sample,
                                        pre_activation)

REWARDS = ("log_prob", "prob", "correct")
BASELINES = ("class", "global")
POSTS = ("activity", "noise")


def _check_fraction(name: str, value: float) -> float:
    check_positive(name, value, strict=False)
    if value >= 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


@register_modulator(
    "reward_prediction_error",
    description="M_n = R_n - b: a per-sample reward minus its running (per-class) prediction.",
    scope="sample", needs_output=True, stateful=True,
    source="Frémaux, Sprekeler & Gerstner 2010; Frémaux & Gerstner 2016",
)
class RewardPredictionError(Modulator):
    """The reward-prediction error of every sample: :math:`M_n = R_n - b_{c(n)}`.

    .. math::
        R_n = \\log \\mathrm{softmax}(o_n)_{t_n} \\;(\\texttt{log\\_prob}), \\quad \\mathrm{softmax}(o_n)_{t_n}
        \\;(\\texttt{prob}), \\quad [\\arg\\max o_n = t_n] \\;(\\texttt{correct})

    for the network's output :math:`o_n` and label :math:`t_n`. The prediction :math:`b_c` is a bias-corrected
    running mean of the rewards, per class :math:`c = t_n` (``baseline="class"``: Frémaux et al.'s
    stimulus-specific prediction) or one for all (``"global"``); it is 0 before the first reward. After each batch,
    for every class with :math:`N_c > 0` samples of mean reward :math:`\\bar R_c`:

    .. math:: z_c \\leftarrow d z_c + (1 - d), \\qquad b_c \\leftarrow (d\\, z_{c}^{old}\\, b_c + (1 - d) \\bar R_c) / z_c

    (:math:`d` = ``baseline_decay``; :math:`z_c`, the weight of the running mean, starts at 0, so the first batch sets
    :math:`b_c = \\bar R_c`). State: ``prediction`` :math:`b` and ``prediction_weight`` :math:`z`, ``(C,)`` or
    ``(1,)``.
    """

    state_tensors = ("prediction", "prediction_weight")

    def __init__(self, reward: str = "log_prob", baseline: str = "class", baseline_decay: float = 0.9) -> None:
        self.reward = check_choice("reward", reward, REWARDS)
        self.baseline = check_choice("baseline", baseline, BASELINES)
        self.baseline_decay = _check_fraction("baseline_decay", baseline_decay)
        self.prediction: Optional[Tensor] = None
        self.prediction_weight: Optional[Tensor] = None

    def rewards(self, broadcast: Broadcast) -> Tensor:
        """:math:`R_n`, ``(N,)``."""
        out, labels = broadcast.output, broadcast.labels.long().unsqueeze(1)
        if self.reward == "correct":
            return (out.argmax(dim=1, keepdim=True) == labels).to(out.dtype).squeeze(1)
        logp = F.log_softmax(out, dim=1).gather(1, labels).squeeze(1)
        return logp if self.reward == "log_prob" else logp.exp()

    def keys(self, broadcast: Broadcast) -> Tensor:
        """The prediction each sample is measured against: its class, or 0 for a global baseline."""
        labels = broadcast.labels.long()
        return labels if self.baseline == "class" else torch.zeros_like(labels)

    def size(self, broadcast: Broadcast) -> int:
        return broadcast.output.shape[1] if self.baseline == "class" else 1

    def factor(self, broadcast: Broadcast) -> Tensor:
        """:math:`M_n = R_n - b_{c(n)}`, ``(N,)`` (no state change)."""
        r = self.rewards(broadcast)
        if self.prediction is None:
            return r
        return r - self.prediction.to(r.dtype)[self.keys(broadcast)]

    def statistics(self, broadcast: Broadcast, dtype: torch.dtype) -> Statistics:
        """Batch sums for the prediction: the rewards and the sample counts per key, ``(C,)`` or ``(1,)``."""
        r = self.rewards(broadcast).to(dtype)
        keys, size = self.keys(broadcast), self.size(broadcast)
        return {"reward": r.new_zeros(size).index_add_(0, keys, r),
                "reward_count": r.new_zeros(size).index_add_(0, keys, torch.ones_like(r))}

    def update(self, reward: Tensor, count: Tensor) -> None:
        """Fold the batch's (reduced) reward sums into the running prediction (no host sync)."""
        if self.prediction is None or self.prediction.shape != reward.shape:
            self.prediction, self.prediction_weight = torch.zeros_like(reward), torch.zeros_like(reward)
        d, b, z = self.baseline_decay, self.prediction, self.prediction_weight
        seen = count > 0
        weight = z * d + (1.0 - d)
        prediction = (b * z * d + (1.0 - d) * (reward / count.clamp_min(1))) / weight
        self.prediction = torch.where(seen, prediction, b)
        self.prediction_weight = torch.where(seen, weight, z)


@register_rule(
    "reward_modulated",
    description="Reward-modulated Hebb: dW = (R - b) post x per sample (post: activity or exploration noise), "
                "with an eligibility trace.",
    needs_labels=True, needs_output=True, stateful=True,
)
class RewardModulated(ThreeFactorRule):
    """Reward-modulated Hebbian rule (R-max / node perturbation) with an eligibility trace.

    .. math::
        \\Delta W_k = \\frac1S \\sum_{n,p} M_n\\, h_{n,k,p}\\, P_{n,p} \\;+\\; \\bar M\\, c,
        \\qquad M_n = R_n - b_{c(n)}, \\quad \\bar M = \\frac1S \\sum_{n,p} M_n

        c \\leftarrow \\lambda \\Big(c + \\frac1S \\sum_{n,p} h_{n,k,p} P_{n,p}\\Big)

    :math:`M_n` is the reward-prediction error of sample :math:`n` (:class:`RewardPredictionError`, from the
    network's output); :math:`h` the post-synaptic term:

    * ``post="activity"``: :math:`h = f(u + b)`, the layer's activity (reward-modulated Hebb; with ``exploration``
      the activity is the perturbed one);
    * ``post="noise"``: :math:`h = \\xi / \\sigma^2` with :math:`\\xi = u - W x` the exploration noise the layer
      added to its output (:meth:`perturb`, :math:`\\xi \\sim \\mathcal N(0, \\sigma^2)`, ``exploration`` =
      :math:`\\sigma`): node perturbation, whose expectation is :math:`\\partial E[R] / \\partial W`.

    The eligibility trace :math:`c` (``trace``, the weight's shape) keeps a decaying memory (``trace_decay`` =
    :math:`\\lambda` per batch) of earlier Hebbian terms: a reward that arrives batches after the activity that
    earned it still reaches those synapses, :math:`\\Delta W = M(t)\\, e(t)` of Frémaux & Gerstner with one trace per
    sample inside the batch. :math:`\\lambda = 0` (the default) keeps :math:`c = 0`: reward is credited to its own
    sample only.

    State: ``trace`` and the modulator's ``prediction`` and ``prediction_weight``; updated in :meth:`finalize` from the
    batch sums, so every data-parallel worker holds the same values.

    Args:
        reward: ``"log_prob"``, ``"prob"`` or ``"correct"`` (see :class:`RewardPredictionError`).
        baseline: ``"class"`` (a prediction per class) or ``"global"``.
        baseline_decay: decay :math:`d \\in [0, 1)` of the running reward prediction, per batch.
        exploration: standard deviation :math:`\\sigma \\ge 0` of the Gaussian noise the layer adds to its output in
            training (:meth:`perturb`; 0: none).
        post: ``"activity"`` or ``"noise"`` (needs ``exploration > 0``).
        activation: the non-linearity :math:`f` after the layer (``post="activity"``): identity, relu, tanh, sigmoid.
        trace_decay: :math:`\\lambda \\in [0, 1)`.
    """

    state_tensors = ("trace", "prediction", "prediction_weight")
    # the modulator's hyperparameters and state read (and are saved) as the rule's
    reward = modulator_attribute("reward")
    baseline = modulator_attribute("baseline")
    baseline_decay = modulator_attribute("baseline_decay")
    prediction = modulator_attribute("prediction")
    prediction_weight = modulator_attribute("prediction_weight")

    def __init__(self, reward: str = "log_prob", baseline: str = "class", baseline_decay: float = 0.9,
                 exploration: float = 0.0, post: str = "activity", activation: str = "identity",
                 trace_decay: float = 0.0) -> None:
        self.modulator = RewardPredictionError(reward, baseline, baseline_decay)
        self.exploration = check_positive("exploration", exploration, strict=False)
        self.post = check_choice("post", post, POSTS)
        if self.post == "noise" and self.exploration == 0:
            raise ValueError("post='noise' needs exploration > 0 (the noise is the post-synaptic term)")
        self.activation = check_activation(activation)
        self.trace_decay = _check_fraction("trace_decay", trace_decay)
        self.trace: Optional[Tensor] = None

    # ------------------------------------------------------------------ exploration
    @property
    def explores(self) -> bool:
        return self.exploration > 0

    def perturb(self, output: Tensor) -> Tensor:
        """The layer's output plus exploration noise :math:`\\xi \\sim \\mathcal N(0, \\sigma^2)` (a trainer applies
        it in the training forward pass; the torch global RNG draws it)."""
        return output + torch.randn_like(output).mul_(self.exploration)

    # ------------------------------------------------------------------ the update
    def post_term(self, view: LayerView, x: Tensor, u: Tensor) -> Tensor:
        """:math:`h`, shaped like ``u`` (a new tensor)."""
        if self.post == "noise":
            return (u - view.respond(x, view.weight)).div_(self.exploration ** 2)
        return activation(pre_activation(view, u), self.activation)

    def statistics(self, view: LayerView, x: Tensor, u: Tensor, labels: Optional[Tensor] = None) -> Statistics:
        broadcast = self.broadcast_for(view, u, labels)
        m = per_sample(self.modulator.factor(broadcast).to(u.dtype), u)
        h = self.post_term(view, x, u)
        stats = self.modulator.statistics(broadcast, u.dtype)
        if self.trace_decay > 0:
            positions = math.prod(u.shape[2:]) if u.dim() > 2 else 1
            stats["hebb"] = view.correlate(x, h)
            stats["modulation"] = m.sum() * positions
        stats["delta"] = view.correlate(x, h.mul_(m))
        stats["count"] = view.count(u)
        return stats

    def finalize(self, view: LayerView, stats: Statistics, grad: Optional[Tensor] = None) -> Tensor:
        count = stats["count"].clamp_min(1)
        delta = stats["delta"].div_(count)
        if self.trace_decay > 0:
            hebb = stats["hebb"].div_(count)
            if self.trace is not None:
                delta.add_(self.trace * (stats["modulation"] / count))
                hebb.add_(self.trace)
            self.trace = hebb.mul_(self.trace_decay)
        elif self.trace is None:
            self.trace = torch.zeros_like(delta)
        self.modulator.update(stats["reward"], stats["reward_count"])
        return delta
