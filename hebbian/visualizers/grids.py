"""Filter grids: a layer's weights drawn as one image of per-unit tiles (receptive fields).

One pure function, :func:`filter_grid`, shared by the TensorBoard handler and the matplotlib figures:

* ``nn.Conv2d`` weight ``(M, C, kh, kw)`` with ``C`` = 1 (grey) or 3 (RGB): one tile per filter, ``(C, kh, kw)``;
* deeper ``nn.Conv2d`` weight (``C`` not 1 or 3): the ``max_filters`` strongest units (largest :math:`\\|w_k\\|_2`),
  one row per unit and one grey tile per input channel (the ``max_channels`` channels with the largest norm over
  the shown units);
* ``nn.Linear`` weight ``(M, D)``: each row reshaped to the input image shape ``(C, H, W)`` (given, or inferred when
  ``D`` is a perfect square, grey, or three times one, RGB).

Every tile is min-max normalised on its own (``make_grid(normalize=True, scale_each=True)``).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

from torch import Tensor
from torchvision.utils import make_grid

from hebbian.threads import one_thread

ImageShape = Tuple[int, int, int]


def receptive_field_shape(fan_in: int, input_shape: Optional[Sequence[int]] = None) -> ImageShape:
    """The ``(C, H, W)`` image shape of a fully-connected unit's ``fan_in`` weights.

    Args:
        fan_in: ``D``, the number of inputs of the ``nn.Linear`` layer.
        input_shape: ``(C, H, W)`` or ``(H, W)`` whose product is ``D``; ``None`` infers ``(1, s, s)`` when
            ``D = s^2`` and ``(3, s, s)`` when ``D = 3 s^2``.

    Raises:
        ValueError: if ``input_shape`` does not multiply to ``D`` or no square shape fits.
    """
    if input_shape is not None:
        shape = tuple(int(s) for s in input_shape)
        if len(shape) == 2:
            shape = (1,) + shape
        if len(shape) != 3 or any(s < 1 for s in shape) or math.prod(shape) != fan_in:
            raise ValueError(
                f"input_shape must be (C, H, W) or (H, W) of positive sizes whose product is the layer's "
                f"fan-in {fan_in}, got {tuple(input_shape)}"
            )
        return shape  # type: ignore[return-value]
    for channels in (1, 3):
        side = math.isqrt(fan_in // channels)
        if fan_in % channels == 0 and side * side * channels == fan_in:
            return (channels, side, side)
    raise ValueError(
        f"cannot infer the image shape of {fan_in} inputs (not s^2 or 3*s^2); pass input_shape=(C, H, W)"
    )


def _strongest(weight: Tensor, k: int) -> Tensor:
    """Indices of the ``k`` rows of ``weight`` with the largest L2 norm, in ascending index order."""
    norms = weight.flatten(1).float().norm(dim=1)
    return norms.topk(min(k, norms.numel())).indices.sort().values


def filter_tiles(
    weight: Tensor,
    input_shape: Optional[Sequence[int]] = None,
    max_filters: int = 64,
    max_channels: int = 8,
) -> Tuple[Tensor, int]:
    """The tiles of :func:`filter_grid` as ``(T, C, h, w)`` (C = 1 or 3) and the number of tiles per grid row."""
    if not isinstance(weight, Tensor) or weight.dim() not in (2, 4):
        raise ValueError(
            "weight must be a Linear weight (M, D) or a Conv2d weight (M, C, kh, kw), got "
            f"{tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__}"
        )
    for name, value in (("max_filters", max_filters), ("max_channels", max_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    w = weight.detach()
    if w.dim() == 2:
        w = w.reshape(w.shape[0], *receptive_field_shape(w.shape[1], input_shape))
    if w.shape[1] in (1, 3):
        tiles = w[:max_filters].float().cpu()
        return tiles, math.ceil(math.sqrt(tiles.shape[0]))
    units = w[_strongest(w, max_filters)].float()  # (k, C, kh, kw)
    channels = _strongest(units.transpose(0, 1), max_channels)
    tiles = units[:, channels].cpu()  # (k, c, kh, kw): one row per unit
    return tiles.reshape(-1, 1, *tiles.shape[2:]), tiles.shape[1]


def filter_grid(
    weight: Tensor,
    input_shape: Optional[Sequence[int]] = None,
    max_filters: int = 64,
    *,
    max_channels: int = 8,
    nrow: Optional[int] = None,
    padding: int = 1,
    min_tile: int = 24,
) -> Tensor:
    """A layer's weights as one RGB image of per-filter tiles, each normalised to [0, 1] on its own.

    Small filters (8x8 digits, 5x5 kernels) are enlarged by the smallest whole factor that makes each tile at least
    ``min_tile`` pixels wide, by pixel repetition (no smoothing), so they are legible in TensorBoard.

    Args:
        weight: ``(M, D)`` (``nn.Linear``) or ``(M, C, kh, kw)`` (``nn.Conv2d``).
        input_shape: image shape of a Linear layer's input (see :func:`receptive_field_shape`).
        max_filters: at most this many units are drawn (the first ones; for deeper conv layers the strongest).
        max_channels: deeper conv layers: at most this many input channels per unit.
        nrow: tiles per grid row (default: a square grid; deeper conv layers: one unit per row).
        padding: pixels between tiles.
        min_tile: smallest tile width in pixels (1: no enlargement).

    Returns:
        ``(3, H, W)`` float image in [0, 1] (grey filters repeated over the three channels).
    """
    if isinstance(min_tile, bool) or not isinstance(min_tile, int) or min_tile < 1:
        raise ValueError(f"min_tile must be a positive integer, got {min_tile!r}")
    tiles, row = filter_tiles(weight, input_shape, max_filters, max_channels)
    factor = -(-min_tile // tiles.shape[-1])
    with one_thread():
        if factor > 1:
            tiles = tiles.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)
        return make_grid(tiles, nrow=nrow or row, padding=padding, normalize=True, scale_each=True)
