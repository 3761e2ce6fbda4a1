"""GHL, Hebbian Learning with Global Direction (Hua et al., ICASSP 2026)."""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor

from hebbian.rules.base import LearningRule, Statistics, check_choice, check_positive
from hebbian.rules.competitive import CompetitiveOja
from hebbian.rules.layers import LayerView
from hebbian.rules.modulation import Modulator, register_modulator
from hebbian.rules.registry import create, register_rule

GHL_MODES = ("ghl", "local_only", "sign_only")


@register_modulator(
    "gradient_sign",
    description="M = -sign(dL/dW): the direction of the layer's backprop gradient, per weight element.",
    scope="synapse", needs_global_grad=True, source="Hua et al., ICASSP 2026 (GHL)",
)
class GradientSign(Modulator):
    """GHL's third factor: :math:`M = -\\mathrm{sign}(\\partial L / \\partial W)`, one value per weight element.

    It gates the batch's aggregated local step :math:`\\hat\\Delta` by magnitude, :math:`\\Delta W = M \\odot
    |\\hat\\Delta|`: the local rule says how much, the global gradient which way.
    """

    def factor(self, grad: Tensor, dtype: torch.dtype) -> Tensor:
        """:math:`M` in ``dtype`` (dL/dW may come in another dtype, e.g. fp32 master grads)."""
        return grad.sign().to(dtype).neg_()

    def gate(self, local: Tensor, grad: Tensor) -> Tensor:
        """:math:`M \\odot |\\hat\\Delta|`, formed in the fresh tensor ``abs`` returns (no further temporaries of
        the weight's size)."""
        return torch.abs(local).mul_(grad.sign().to(local.dtype)).neg_()


@register_rule(
    "ghl",
    description="GHL: |local Hebbian step| x sign(dL/dW) from backprop; local default soft-WTA Oja, max-abs.",
    needs_global_grad=True,
)
class GHL(LearningRule):
    """Hebbian Learning with Global Direction: a three-factor rule whose third factor is :class:`GradientSign`.

    The local rule supplies the magnitude, the sign of the layer's backprop gradient the direction:

    .. math::
        \\hat\\Delta = \\mathrm{local}(x, u) \\;(\\text{default: soft-WTA Oja}, \\;
        \\Delta_k = \\sum_{n,p} y_k (P - u_k w_k),\\; y = \\mathrm{softmax}(t_{inv} u),\\; \\hat\\Delta = \\Delta/\\max|\\Delta|)

        \\Delta W = -|\\hat\\Delta| \\odot \\mathrm{sign}(\\partial L / \\partial W)

    The optimizer (``grad = -ΔW``) then steps :math:`W \\leftarrow W - \\eta |\\hat\\Delta| \\odot \\mathrm{sign}(g)`:
    element steps are at most :math:`\\eta` and zero where either factor is zero.

    Ablations (``mode``): ``"local_only"`` returns :math:`\\hat\\Delta` (the local rule alone; no gradient needed),
    ``"sign_only"`` returns :math:`-\\mathrm{sign}(g)` (sign-SGD, :math:`|\\hat\\Delta| = 1`).

    Args:
        t_inv: inverse temperature of the default local rule (> 0). DeepHebb: 1, 0.65, 0.25; FastHebb: 1.
        local: another local rule (object or registry name) to supply the magnitude; overrides ``t_inv``.
        mode: ``"ghl"``, ``"local_only"`` or ``"sign_only"``.
    """

    def __init__(
        self, t_inv: float = 1.0, local: Optional[Union[LearningRule, str]] = None, mode: str = "ghl"
    ) -> None:
        self.t_inv = check_positive("t_inv", t_inv)
        self.mode = check_choice("mode", mode, GHL_MODES)
        if local is None:
            local = CompetitiveOja(competition="soft", t_inv=self.t_inv, normalize="max_abs")
        elif isinstance(local, str):
            local = create(local)
        if not isinstance(local, LearningRule) or isinstance(local, GHL):
            raise TypeError(f"local must be a (non-GHL) LearningRule or a registry name, got {local!r}")
        self.local = local

    #: the third factor, :math:`M = -\\mathrm{sign}(\\partial L / \\partial W)` (stateless, shared)
    modulator = GradientSign()

    @property
    def uses_global_grad(self) -> bool:
        return self.mode != "local_only"

    def check_extras(self, view, x, labels, grad) -> None:  # type: ignore[override]
        self.local.check_extras(view, x, labels, grad)
        if self.uses_global_grad:
            super().check_extras(view, x, labels, grad)

    def statistics(self, view: LayerView, x: Tensor, u: Tensor, labels: Optional[Tensor] = None) -> Statistics:
        return self.local.statistics(view, x, u, labels)

    def finalize(self, view: LayerView, stats: Statistics, grad: Optional[Tensor] = None) -> Tensor:
        if self.mode == "local_only":
            return self.local.finalize(view, stats)
        if grad is None:
            raise ValueError(f"GHL (mode={self.mode!r}) needs the layer's gradient dL/dW, got grad=None")
        if self.mode == "sign_only":
            return self.modulator.factor(grad, view.weight.dtype)
        return self.modulator.gate(self.local.finalize(view, stats), grad)
