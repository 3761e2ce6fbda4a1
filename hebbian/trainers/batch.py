"""Moving a batch to the device and splitting it into inputs and (optional) labels."""

from __future__ import annotations

from typing import Any, Optional, Tuple, Union

import torch
from torch import Tensor


def to_device(t: Tensor, device: Optional[Union[str, torch.device]], non_blocking: bool = False) -> Tensor:
    return t if device is None else t.to(device=device, non_blocking=non_blocking)


def prepare_batch(
    batch: Any, device: Optional[Union[str, torch.device]] = None, non_blocking: bool = False
) -> Tuple[Tensor, Optional[Tensor]]:
    """``(x, y)`` on ``device`` from a batch that is ``(x, y, ...)``, ``[x, y]``, ``{"x"/"image", "y"/"label"}`` or ``x``."""
    if isinstance(batch, Tensor):
        return to_device(batch, device, non_blocking), None
    if isinstance(batch, dict):
        x = batch.get("x", batch.get("image", batch.get("input")))
        y = batch.get("y", batch.get("label", batch.get("target")))
    elif isinstance(batch, (tuple, list)) and batch:
        x, y = batch[0], (batch[1] if len(batch) > 1 else None)
    else:
        raise TypeError(f"batch must be a tensor, an (x, y) pair or a dict, got {type(batch).__name__}")
    if not isinstance(x, Tensor):
        raise TypeError(f"batch inputs must be a tensor, got {type(x).__name__}")
    return to_device(x, device, non_blocking), (None if y is None else to_device(y, device, non_blocking))
