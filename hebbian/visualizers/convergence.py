"""Unit convergence: how many units of a layer sit at their rule's fixed-point norm.

Several rules drive every unit's weight vector :math:`w_k` (a row of a Linear weight, or an output channel of a
Conv2d weight) to a fixed norm. With :math:`r_k = \\sum_i |w_{ki}|^p`, the fraction of converged units is

.. math::

    \\text{convergence} = \\frac{1}{M} \\sum_{k=1}^{M} \\big[\\, |r_k - 1| < \\text{tol} \\,\\big]

(pytorch-hebbian's metric used the one-sided :math:`r_k < 1 + \\text{tol}`). The exponent :math:`p` is the
rule's: Krotov–Hopfield and SoftHebb converge to :math:`\\|w_k\\|_p = 1` (``p`` hyperparameter), Oja, the Oja
subspace rule, Sanger/HPCA and competitive Oja to :math:`\\|w_k\\|_2 = 1`; Hebb, instar, SWTA and GHL have no fixed
norm.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

from ignite.engine import Engine, Events
from torch import Tensor

from hebbian.rules.base import check_positive

#: Rules whose units converge to :math:`\sum_i |w_i|^2 = 1`.
L2_FIXED_POINT_RULES = frozenset({"oja", "oja_subspace", "sanger", "hpca", "competitive_oja"})
#: Rules whose units converge to :math:`\sum_i |w_i|^p = 1` with their own ``p`` hyperparameter.
LP_FIXED_POINT_RULES = frozenset({"krotov", "softhebb"})


def unit_norms(weight: Tensor, p: float = 2.0) -> Tensor:
    """:math:`r_k = \\sum_i |w_{ki}|^p` for every unit: ``(M, ...)`` weight -> ``(M,)``."""
    if not isinstance(weight, Tensor) or weight.dim() < 2:
        raise ValueError(f"weight must be a tensor of shape (M, ...) with at least 2 dims, got {weight!r:.60}")
    check_positive("p", p)
    return weight.detach().flatten(1).abs().pow(p).sum(dim=1)


def unit_convergence(weight: Tensor, p: float = 2.0, tol: float = 0.1) -> float:
    """Fraction of units whose :math:`\\sum_i |w_{ki}|^p` lies within ``tol`` of 1 (a float in [0, 1])."""
    return converged_fraction(unit_norms(weight, p), tol)


def converged_fraction(norms: Tensor, tol: float = 0.1) -> float:
    """Fraction of the :func:`unit_norms` ``(M,)`` that lie within ``tol`` of 1."""
    check_positive("tol", tol)
    return float(((norms - 1).abs() < tol).float().mean())


def fixed_point_p(rule: Any) -> Optional[float]:
    """The exponent ``p`` of ``rule``'s fixed-point norm, or ``None`` if the rule has no fixed norm.

    Args:
        rule: a :class:`~hebbian.rules.base.LearningRule` (its ``info.name`` and ``hyperparameters()`` are read).
    """
    name = rule.info.name
    if name in LP_FIXED_POINT_RULES:
        return float(rule.hyperparameters().get("p", 2.0))
    if name in L2_FIXED_POINT_RULES:
        return 2.0
    return None


def convergence_targets(bindings: Sequence[Any], p: Optional[float] = None) -> Dict[str, float]:
    """``{layer name: p}`` for the bound layers that have a fixed-point norm (``p`` overrides the rules' own)."""
    targets = {}
    for b in bindings:
        exponent = fixed_point_p(b.rule) if p is None else p
        if exponent is not None:
            targets[b.name] = exponent
    return targets


class ConvergenceHistory:
    """Records every bound layer's unit convergence once per epoch (or any event), for plots and notebooks.

    Example::

        history = ConvergenceHistory(trainer).attach(trainer)
        trainer.run(loader, epochs=10)
        fig, ax = history.plot()

    Args:
        trainer: an engine with ``bindings`` (e.g. :class:`~hebbian.trainers.HebbianTrainer`).
        p: override the rules' exponents (``None``: each rule's own; layers without a fixed norm are skipped).
        tol: tolerance around 1.
    """

    def __init__(self, trainer: Engine, p: Optional[float] = None, tol: float = 0.1) -> None:
        bindings = getattr(trainer, "bindings", None)
        if bindings is None:
            raise TypeError(f"trainer must expose .bindings (a HebbianTrainer), got {type(trainer).__name__}")
        self.layers = {b.name: b for b in bindings}  # anything with .weight
        self.targets = convergence_targets(bindings, p)
        self.tol = tol
        self.history: Dict[str, List[float]] = {name: [] for name in self.targets}

    def attach(self, engine: Engine, event: Any = Events.EPOCH_COMPLETED) -> "ConvergenceHistory":
        engine.add_event_handler(event, self.record)
        return self

    def record(self, _: Optional[Engine] = None) -> Dict[str, float]:
        """Append (and return) the current convergence of every tracked layer."""
        values = {n: unit_convergence(self.layers[n].weight, p, self.tol) for n, p in self.targets.items()}
        for name, value in values.items():
            self.history[name].append(value)
        return values

    def plot(self, ax: Any = None) -> Any:
        """Convergence curves, see :func:`hebbian.visualizers.figures.plot_convergence`; returns ``(fig, ax)``."""
        from hebbian.visualizers.figures import plot_convergence

        return plot_convergence(self.history, ax=ax)

    def state_dict(self) -> Dict[str, Any]:
        return {"history": {k: list(v) for k, v in self.history.items()}}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self.history = {k: list(v) for k, v in state_dict["history"].items()}
