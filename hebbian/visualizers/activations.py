"""Activation statistics of layers, recorded by forward hooks that do nothing unless armed.

For a layer's output :math:`u` (``(N, *, M)`` for ``nn.Linear``, ``(N, M, H, W)`` for ``nn.Conv2d``) seen as
:math:`S` samples (samples x positions) of :math:`M` units:

* mean activation: :math:`\\bar u = \\frac{1}{SM}\\sum_{s,k} u_{sk}`;
* dead fraction: share of units with :math:`u_{sk} \\le \\theta` for every ``s`` (never active on the batch);
* winner usage: with :math:`c_k` the number of samples at which unit ``k`` has the largest :math:`u` and
  :math:`q_k = c_k / S`, the normalised entropy :math:`H(q) / \\log M \\in [0, 1]` (1: every unit wins equally often;
  0: one unit wins everything). Meaningful for competitive (winner-take-all) rules.

Per-unit statistics are reduced on the device inside the hook (no host sync); they are read on demand.
"""

from __future__ import annotations

import math
from typing import Dict, Mapping, Tuple

import torch
from torch import Tensor, nn

#: Rules whose units compete (hard/soft winner-take-all or ranking): winner usage is logged for them.
COMPETITIVE_RULES = frozenset({"krotov", "softhebb", "competitive_oja", "instar", "swta", "ghl"})

LayerStats = Dict[str, Tensor]


def unit_samples(u: Tensor, conv: bool) -> Tensor:
    """A layer output as ``(S, M)``: samples (and positions) by units."""
    if conv:
        u = u.movedim(1, -1)
    return u.reshape(-1, u.shape[-1])


def activation_statistics(u: Tensor, conv: bool, threshold: float = 0.0) -> LayerStats:
    """Device-side statistics of one layer output: ``mean`` (scalar), ``alive`` ``(M,)`` bool, ``wins`` ``(M,)``."""
    s = unit_samples(u.detach(), conv).float()
    wins = torch.zeros(s.shape[1], device=s.device).index_add_(0, s.argmax(dim=1), torch.ones_like(s[:, 0]))
    return {"mean": s.mean(), "alive": (s > threshold).any(dim=0), "wins": wins}


def dead_fraction(alive: Tensor) -> float:
    """Fraction of units that were never active (``alive`` is ``(M,)`` bool)."""
    return 1.0 - float(alive.float().mean())


def winner_usage(wins: Tensor) -> float:
    """Normalised entropy of the winners' distribution, :math:`H(c / \\sum c) / \\log M \\in [0, 1]`.

    Args:
        wins: ``(M,)`` non-negative counts of how often each unit won.
    """
    counts = wins.detach().double().flatten()
    if counts.numel() < 2:
        return 1.0
    total = counts.sum()
    if not total > 0:
        raise ValueError("wins must contain at least one positive count")
    q = counts / total
    entropy = -(q * q.clamp_min(1e-300).log()).sum()
    return float(entropy / math.log(counts.numel())) + 0.0  # no -0.0


class _ProbeDone(Exception):
    """Raised from a hook to cut a probe forward short once every recorded layer has run."""


class ActivationRecorder:
    """Forward hooks on some layers that reduce the output to :func:`activation_statistics` once per arming.

    Unarmed hooks return at once, so the training forward pass is not slowed. The hooks run before any other
    forward hook of the layer (``prepend=True``), so a trainer that cuts its forward pass short still lets them see
    the layer.

    Args:
        layers: ``{name: nn.Linear or nn.Conv2d}``.
        threshold: a unit is active where its output exceeds this.
    """

    def __init__(self, layers: Mapping[str, nn.Module], threshold: float = 0.0) -> None:
        self.layers = dict(layers)
        self.threshold = float(threshold)
        self.armed = False
        self.stats: Dict[str, LayerStats] = {}
        self._cut_short = False
        self._handles = [
            layer.register_forward_hook(self._hook(name), prepend=True) for name, layer in self.layers.items()
        ]

    def _hook(self, name: str):
        conv = isinstance(self.layers[name], nn.Conv2d)

        def hook(module: nn.Module, inputs: Tuple[Tensor, ...], output: Tensor) -> None:
            if not self.armed or name in self.stats:
                return
            self.stats[name] = activation_statistics(output, conv, self.threshold)
            if len(self.stats) == len(self.layers):
                self.armed = False
                if self._cut_short:
                    raise _ProbeDone

        return hook

    def arm(self) -> None:
        """Record the next forward pass (earlier, unread statistics are dropped)."""
        self.stats = {}
        self.armed = True

    def take(self) -> Dict[str, LayerStats]:
        """The statistics recorded since the last :meth:`arm` (possibly empty); disarms."""
        stats, self.stats, self.armed = self.stats, {}, False
        return stats

    def probe(self, model: nn.Module, x: Tensor) -> Dict[str, LayerStats]:
        """One no-grad forward pass of ``model`` on ``x`` in eval mode; returns every layer's statistics."""
        was_training = model.training
        self.arm()
        self._cut_short = True
        try:
            with torch.no_grad():
                model.train(False)
                model(x)
        except _ProbeDone:
            pass
        finally:
            self._cut_short = False
            model.train(was_training)
        return self.take()

    def remove(self) -> None:
        """Remove the hooks from the layers."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


def summarize(stats: LayerStats, winners: bool = True) -> Dict[str, float]:
    """Host-side scalars of :func:`activation_statistics`: ``mean``, ``dead_fraction`` and ``winner_usage``."""
    values = {"mean": float(stats["mean"]), "dead_fraction": dead_fraction(stats["alive"])}
    if winners:
        values["winner_usage"] = winner_usage(stats["wins"])
    return values
