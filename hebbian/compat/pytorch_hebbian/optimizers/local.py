"""pytorch-hebbian's ``Local`` optimizer: :class:`hebbian.optim.Local` built from ``named_params``."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Tuple

import torch
from torch import Tensor

from hebbian.optim import Local as NativeLocal

__all__ = ["Local"]


class _Required:
    def __repr__(self) -> str:
        return "<required>"


required = _Required()


class Local(NativeLocal):
    """:math:`W \\leftarrow W + \\eta\\,\\Delta W` over ``model.named_parameters()``, as pytorch-hebbian's ``Local``.

    Trainers write :math:`-\\Delta W` into ``.grad`` and call :meth:`step` (:class:`hebbian.optim.Local`), so
    learning-rate schedulers see the optimizer stepping. :meth:`local_step` is the old per-layer call.

    Args:
        named_params: ``model.named_parameters()`` (pairs of name and parameter).
        lr: learning rate (>= 0), required as in pytorch-hebbian.

    Attributes:
        param_names: the parameters' names, in order.
    """

    def __init__(self, named_params: Iterable[Tuple[str, Tensor]], lr: Any = required) -> None:
        if lr is required:
            raise TypeError("Local: lr is required (e.g. Local(named_params=model.named_parameters(), lr=0.01))")
        pairs = list(named_params)
        if not pairs or not all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in pairs):
            raise TypeError("named_params must be model.named_parameters(): a non-empty sequence of (name, parameter)")
        self.param_names: Tuple[str, ...] = tuple(name for name, _ in pairs)
        super().__init__(pairs, lr=lr)

    @torch.no_grad()
    def local_step(self, d_p: Tensor, layer_name: str, closure: Optional[Callable[[], float]] = None
                   ) -> Optional[float]:
        """Add ``lr * d_p`` to the parameter ``<layer_name>.weight`` (pytorch-hebbian's per-layer step)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        name = f"{layer_name}.weight"
        if name not in self.param_names:
            raise ValueError(f"layer_name {layer_name!r}: the optimizer holds no parameter {name!r}")
        for group in self.param_groups:
            for group_name, p in zip(group["param_names"], group["params"]):
                if group_name == name:
                    p.add_(d_p.view_as(p), alpha=group["lr"])
        return loss
