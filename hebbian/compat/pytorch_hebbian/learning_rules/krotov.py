"""pytorch-hebbian's ``KrotovsRule``: :class:`hebbian.rules.Krotov` with the old keywords and N(0, 1) initialisation."""

from __future__ import annotations

from typing import Any, Iterable, Optional

import torch
from torch import Tensor, nn

from hebbian.compat.pytorch_hebbian.learning_rules.learning_rule import NativeBackedRule
from hebbian.rules import Krotov, LayerView
from hebbian.rules.base import Statistics
from hebbian.rules.competition import rank_gates
from hebbian.rules.krotov import p_current

__all__ = ["KrotovsRule"]


class KrotovsRule(NativeBackedRule):
    """The Krotov-Hopfield rule under pytorch-hebbian's names; trains as :class:`hebbian.rules.Krotov`.

    ==============  ======================================  ===========================
    old keyword     meaning                                 :class:`~hebbian.rules.Krotov`
    ==============  ======================================  ===========================
    ``precision``   floor of the max-abs normaliser         ``prec``
    ``delta``       anti-Hebbian strength                   ``delta``
    ``norm``        Lebesgue exponent p of the metric        ``p``
    ``k``           rank of the anti-Hebbian unit (>= 2)    ``k``
    ``normalize``   scale every input (patch) to unit L2     (see :class:`InputNormalizedKrotov`)
    ==============  ======================================  ===========================

    :meth:`init_layers` draws the trained layers' weights from N(0, 1), as pytorch-hebbian did when the trainer
    was built. The attributes may be changed until the trainer is built.
    """

    def __init__(self, precision: float = 1e-30, delta: float = 0.4, norm: float = 2, k: int = 2,
                 normalize: bool = False) -> None:
        super().__init__()
        self.precision, self.delta, self.norm, self.k = precision, delta, norm, k
        if not isinstance(normalize, bool):
            raise ValueError(f"normalize must be True or False, got {normalize!r}")
        self.normalize = normalize
        self.native()  # validates the hyperparameters now, with one-line errors naming them

    def native(self) -> Krotov:
        """The equivalent :class:`hebbian.rules.Krotov` (``InputNormalizedKrotov`` when ``normalize``)."""
        cls = InputNormalizedKrotov if self.normalize else Krotov
        try:
            return cls(p=self.norm, k=self.k, delta=self.delta, prec=self.precision)
        except ValueError as err:
            message = str(err).replace("p must", "norm must").replace("prec must", "precision must")
            raise ValueError(f"KrotovsRule: {message}") from None

    def init_layers(self, layers: Iterable[Any]) -> None:
        """Draw the weights of the given layers (``Linear``/``Conv2d``, or items with ``.layer``) from N(0, 1)."""
        for item in layers:
            layer = getattr(item, "layer", item)
            if isinstance(layer, (nn.Linear, nn.Conv2d)):
                with torch.no_grad():
                    layer.weight.normal_(mean=0.0, std=1.0)

    def __repr__(self) -> str:
        return (f"KrotovsRule(precision={self.precision!r}, delta={self.delta!r}, norm={self.norm!r}, k={self.k!r}, "
                f"normalize={self.normalize!r})")


class InputNormalizedKrotov(Krotov):
    """:class:`~hebbian.rules.Krotov` on inputs scaled to unit Euclidean norm (pytorch-hebbian's ``normalize=True``).

    Every input row (``Linear``) or patch ``P`` (``Conv2d``) is replaced by :math:`P / \\|P\\|_2` (left alone where
    the norm is 0). For a convolution the patches are not materialised: with :math:`n` the patch norms
    (:meth:`LayerView.input_norms`), the currents are :math:`I / n` and :math:`\\sum g\\,P/n` is a correlation of
    ``x`` with :math:`g / n`.
    """

    def statistics(self, view: LayerView, x: Tensor, u: Tensor, labels: Optional[Tensor] = None) -> Statistics:
        norms = view.input_norms(x)
        norms = torch.where(norms == 0, torch.ones_like(norms), norms)
        if not view.is_conv:
            return super().statistics(view, x / norms, u / norms, labels)
        current = p_current(view, x, u, self.p) / norms
        g = rank_gates(current, self.k, self.delta)
        return {"delta": view.correlate(x, g / norms) - view.per_neuron(view.neuron_sum(g * current)) * view.weight}


