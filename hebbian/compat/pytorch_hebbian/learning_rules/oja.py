"""pytorch-hebbian's ``OjasRule``: Oja's rule scaled by ``c`` (:class:`hebbian.rules.Oja`)."""

from __future__ import annotations

import dataclasses

from hebbian.compat.pytorch_hebbian.learning_rules.scaled import ScaledNative, ScaledRule
from hebbian.rules import Oja

__all__ = ["OjasRule"]


class ScaledOja(ScaledNative, Oja):
    """:class:`hebbian.rules.Oja` (batch mean) times ``c``."""


ScaledOja.info = dataclasses.replace(Oja.info, cls=ScaledOja, aliases=())  # type: ignore[misc]


class OjasRule(ScaledRule):
    """Oja's rule per unit, :math:`\\Delta w_k = \\frac{c}{S} \\sum_n y_{nk} (x_n - y_{nk} w_k)`, :math:`y = W x`.

    The same equation as pytorch-hebbian's ``OjasRule`` (which looped over samples and weights in Python); here it
    is :class:`hebbian.rules.Oja` (``normalize="mean"``) times ``c``. Shapes: ``inputs (S, D)``, ``weights (M, D)``.
    """

    native_class = ScaledOja
