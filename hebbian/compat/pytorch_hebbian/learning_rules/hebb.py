"""pytorch-hebbian's ``HebbsRule``: plain Hebb scaled by ``c`` (:class:`hebbian.rules.Hebb`)."""

from __future__ import annotations

import dataclasses

from hebbian.compat.pytorch_hebbian.learning_rules.scaled import ScaledNative, ScaledRule, check_c
from hebbian.rules import Hebb

__all__ = ["HebbsRule", "check_c"]


class ScaledHebb(ScaledNative, Hebb):
    """:class:`hebbian.rules.Hebb` (batch mean) times ``c``."""


ScaledHebb.info = dataclasses.replace(Hebb.info, cls=ScaledHebb, aliases=())  # type: ignore[misc]


class HebbsRule(ScaledRule):
    """Plain Hebb, :math:`\\Delta W = c \\cdot \\frac{1}{S} \\sum_n y_n x_n^\\top` with :math:`y = W x`.

    pytorch-hebbian's ``HebbsRule`` meant this but raised on any batch (``torch.dot`` of a matrix); here it is
    :class:`hebbian.rules.Hebb` (``normalize="mean"``) times ``c``. Shapes: ``inputs (S, D)``, ``weights (M, D)``.
    """

    native_class = ScaledHebb
