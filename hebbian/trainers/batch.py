"""Moving a batch to the device and splitting it into inputs and (optional) labels."""

from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, Tuple, Union

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


def input_dtype_error(got: torch.dtype, expected: torch.dtype, where: str = "the batch") -> TypeError:
    """The one-line error for inputs of another dtype than the model's parameters: both dtypes and how to fix it.

    Inputs are never cast silently (a float64 -> float32 cast is not exact), as in PyTorch itself."""
    return TypeError(f"{where}: the inputs are {got} but the model's parameters are {expected}; convert the data "
                     f"(x.to({expected}), e.g. TensorDataset(x.to({expected}), y), or transforms.ToTensor() for "
                     f"uint8 images) or the model (model.to({got}))")


def dtype_mismatch(x: Any, dtype: Optional[torch.dtype], err: BaseException, where: str = "the batch"
                   ) -> Optional[TypeError]:
    """:func:`input_dtype_error` if ``err`` (raised by a model run on ``x``) comes from ``x`` being of another dtype
    than the parameters' ``dtype``, else ``None``. Only floating-point and uint8 inputs count (integer token ids may
    be what a model takes); running out of memory never does."""
    if not isinstance(x, Tensor) or dtype is None or x.dtype == dtype or isinstance(err, torch.OutOfMemoryError):
        return None
    if not (x.is_floating_point() or x.dtype == torch.uint8):
        return None
    return input_dtype_error(x.dtype, dtype, where)


@contextmanager
def explained_dtype_errors(x: Tensor, dtype: Optional[torch.dtype], where: str = "the batch") -> Iterator[None]:
    """Within the context (a model's forward pass on ``x``), torch's ``RuntimeError`` from inputs of another dtype
    than the parameters' becomes :func:`input_dtype_error`; nothing is checked, and nothing costs, unless it fails."""
    try:
        yield
    except RuntimeError as err:
        explained = dtype_mismatch(x, dtype, err, where)
        if explained is None:
            raise
        raise explained from None


def explain_dtype_errors(step: Callable[[Any, Any], Any], dtype: Optional[torch.dtype],
                         prepare_batch: Callable[..., Tuple[Tensor, Optional[Tensor]]] = prepare_batch
                         ) -> Callable[[Any, Any], Any]:
    """An engine's process function ``step`` whose failure on a batch of inputs of another dtype than the model's
    parameters (``dtype``) is :func:`input_dtype_error` instead of torch's message (the step's attributes are kept).
    """
    @functools.wraps(step)
    def run(engine: Any, batch: Any) -> Any:
        try:
            return step(engine, batch)
        except RuntimeError as err:
            try:
                x = prepare_batch(batch, None, False)[0]
            except (TypeError, ValueError):
                raise err from None
            explained = dtype_mismatch(x, dtype, err)
            if explained is None:
                raise
            raise explained from None

    return run
