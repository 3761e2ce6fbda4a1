"""pytorch-hebbian's layers: ``Flatten`` (torch's ``nn.Flatten``) and ``RePU`` (:class:`hebbian.models.RePU`)."""

from __future__ import annotations

from torch import nn

from hebbian.models.layers import RePU

__all__ = ["Flatten", "RePU"]


class Flatten(nn.Flatten):
    """``(N, *) -> (N, prod(*))``: ``nn.Flatten()`` with pytorch-hebbian's argument-free constructor."""

    def __init__(self) -> None:
        super().__init__(start_dim=1, end_dim=-1)
