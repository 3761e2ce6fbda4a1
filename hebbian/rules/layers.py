"""How a learning rule sees a layer: the geometry of ``nn.Linear`` and ``nn.Conv2d``.

Every rule in :mod:`hebbian.rules` is written once, in terms of three batch-aggregated operations, and works on
both layer types through :class:`LayerView`:

* ``correlate(x, y)``: :math:`C_k = \\sum_{n,p} y_{n,k,p}\\, P_{n,p}`, the post/pre correlation with the shape of the
  weight. For ``Linear`` it is ``y.T @ x``; for ``Conv2d`` it is the convolution weight gradient
  (``torch.nn.grad.conv2d_weight``), which sums over every batch element and output position without materialising
  the unfolded patch matrix ``P``.
* ``respond(x, w)``: the layer's linear map applied with another weight tensor of the same shape (no bias), e.g. the
  p-metric current :math:`I = \\mathrm{sign}(W)|W|^{p-1} \\cdot x`.
* ``neuron_sum(t)``: :math:`\\sum_{n,p} t_{n,k,p}`, one number per neuron (output unit or output channel).

Shapes. ``Linear``: ``x`` is ``(N, *, D)``, ``u`` is ``(N, *, M)`` and the weight ``(M, D)``; leading dimensions are
flattened into one sample axis. ``Conv2d``: ``x`` is ``(N, C, H, W)`` (unpadded, as the layer receives it), ``u`` is
``(N, M, OH, OW)`` and the weight ``(M, C, kh, kw)``; every output channel is a neuron and every position
``p = (i, j)`` a sample that shares its kernel. In both cases the neuron axis of ``u``-shaped tensors is axis 1.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SUPPORTED_LAYERS: Tuple[type, ...] = (nn.Linear, nn.Conv2d)
HebbianLayer = Union[nn.Linear, nn.Conv2d]


def post_synaptic_format(u: Tensor) -> torch.memory_format:
    """Memory layout for a post-synaptic factor shaped like ``u`` (see :meth:`LayerView.correlate`).

    Channels-last for conv outputs on the CPU, where oneDNN computes the correlation of NHWC tensors without
    reordering copies and with its fastest kernels; ``u``'s own layout elsewhere.
    """
    return torch.channels_last if u.dim() == 4 and u.device.type == "cpu" else torch.preserve_format


@contextmanager
def _native_cpu_convolution() -> Iterator[None]:
    """Compute convolution weight gradients with PyTorch's native CPU kernel instead of oneDNN's.

    For NCHW operands oneDNN first reorders ``x`` and ``y`` into its blocked layout, which needs about ``|x| + |y|``
    extra memory (34 MiB for DeepHebb's conv2 at batch 64); the native kernel unfolds one sample at a time (about
    3 MiB) at a similar speed (see ``docs/performance.md``).
    """
    if not torch.backends.mkldnn.enabled:
        yield
        return
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = True


class LayerView:
    """A rule's read-only view of one ``nn.Linear`` or ``nn.Conv2d`` layer.

    Args:
        layer: the layer. ``Conv2d`` may have any kernel size, stride, dilation and padding (numbers, ``"same"``,
            ``"valid"``; modes ``zeros``, ``reflect``, ``replicate``, ``circular``), but ``groups`` must be 1.

    Raises:
        TypeError: for any other module type.
        ValueError: for a grouped convolution.
    """

    def __init__(self, layer: nn.Module) -> None:
        if not isinstance(layer, SUPPORTED_LAYERS):
            raise TypeError(
                f"layer must be an nn.Linear or nn.Conv2d (or a subclass), got {type(layer).__name__}"
            )
        if isinstance(layer, nn.Conv2d) and layer.groups != 1:
            raise ValueError(f"layer: grouped convolutions are not supported (groups={layer.groups}, expected 1)")
        self.layer: HebbianLayer = layer
        self.is_conv = isinstance(layer, nn.Conv2d)
        if self.is_conv:
            conv = layer
            explicit = isinstance(conv.padding, str) or conv.padding_mode != "zeros"
            # ``_reversed_padding_repeated_twice`` is (left, right, top, bottom), what F.pad takes.
            self._pad: Tuple[int, ...] = tuple(conv._reversed_padding_repeated_twice) if explicit else ()
            self._pad_mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
            self._conv_padding: Tuple[int, int] = (0, 0) if explicit else tuple(conv.padding)  # type: ignore[assignment]

    # ------------------------------------------------------------------ geometry
    @property
    def weight(self) -> Tensor:
        return self.layer.weight

    @property
    def num_neurons(self) -> int:
        return self.weight.shape[0]

    @property
    def fan_in(self) -> int:
        return self.weight[0].numel()

    @property
    def kind(self) -> str:
        return "conv2d" if self.is_conv else "linear"

    def neuron_shape(self) -> Tuple[int, ...]:
        """Shape that broadcasts a per-neuron vector ``(M,)`` against the weight: ``(M, 1)`` or ``(M, 1, 1, 1)``."""
        return (self.num_neurons,) + (1,) * (self.weight.dim() - 1)

    def per_neuron(self, s: Tensor) -> Tensor:
        """Reshape a per-neuron vector ``(M,)`` to broadcast against the weight."""
        return s.reshape(self.neuron_shape())

    # ------------------------------------------------------------------ inputs
    def prepare(self, x: Tensor, u: Tensor) -> Tuple[Tensor, Tensor]:
        """Bring the layer input and output to the rule's layout.

        ``Linear``: flatten leading dimensions, giving ``x (S, D)`` and ``u (S, M)``. ``Conv2d``: apply non-zero or
        string padding explicitly, so that later convolutions can use ``padding=0``. The layer's bias, if any, is
        subtracted, so ``u`` is always the bare drive ``w_k . x``.
        """
        bias = self.layer.bias
        if self.is_conv:
            if x.dim() == 3:  # unbatched input
                x, u = x.unsqueeze(0), u.unsqueeze(0)
            if self._pad:  # padded straight into channels-last on the CPU: the layout correlate converts x to
                x = F.pad(x.contiguous(memory_format=post_synaptic_format(x)), self._pad, mode=self._pad_mode)
            if bias is not None:
                u = u - bias.view(1, -1, 1, 1)
            return x, u
        x = x.reshape(-1, x.shape[-1])
        u = u.reshape(-1, u.shape[-1])
        if bias is not None:
            u = u - bias
        return x, u

    # ------------------------------------------------------------------ batch-aggregated products
    def correlate(self, x: Tensor, y: Tensor) -> Tensor:
        """:math:`\\sum_{n,p} y_{n,k,p} P_{n,p}` with the weight's shape, for prepared ``x`` and ``y`` shaped like u.

        On the CPU a ``y`` laid out as :func:`post_synaptic_format` says (channels-last) is correlated by oneDNN on
        NHWC operands (``x`` is converted, a copy of its size); any other ``y`` by PyTorch's native kernel, which
        needs no copy of ``y``.
        """
        if not self.is_conv:
            return y.t() @ x
        conv = self.layer
        args = dict(stride=conv.stride, padding=self._conv_padding, dilation=conv.dilation)
        if x.device.type != "cpu":
            return torch.nn.grad.conv2d_weight(x, self.weight.shape, y, **args)
        if y.is_contiguous(memory_format=torch.channels_last):  # e.g. soft_wta's y: oneDNN on NHWC, no reorders
            return torch.nn.grad.conv2d_weight(x.contiguous(memory_format=torch.channels_last), self.weight.shape, y,
                                               **args)
        with _native_cpu_convolution():
            return torch.nn.grad.conv2d_weight(x, self.weight.shape, y, **args)

    def respond(self, x: Tensor, w: Tensor) -> Tensor:
        """The layer's linear map with weight ``w`` (same shape as the layer's), no bias, on prepared ``x``."""
        if not self.is_conv:
            return x @ w.t()
        conv = self.layer
        return F.conv2d(x, w, None, conv.stride, self._conv_padding, conv.dilation)

    def input_norms(self, x: Tensor) -> Tensor:
        """Euclidean norm of every input patch, shaped like ``u`` with one channel: ``(S, 1)`` or ``(N, 1, OH, OW)``."""
        if not self.is_conv:
            return x.norm(dim=1, keepdim=True)
        ones = x.new_ones((1,) + tuple(self.weight.shape[1:]))
        return self.respond(x * x, ones).clamp_min(0).sqrt()

    @staticmethod
    def neuron_sum(t: Tensor) -> Tensor:
        """:math:`\\sum_{n,p} t_{n,k,p}`: sum over every axis but the neuron axis (1), giving ``(M,)``."""
        if t.dim() == 2:
            return t.sum(dim=0)
        return t.sum(dim=(0,) + tuple(range(2, t.dim())))

    @staticmethod
    def units_by_samples(t: Tensor) -> Tensor:
        """Rearrange a ``u``-shaped tensor to ``(M, S)`` with one column per (sample, position)."""
        if t.dim() == 2:
            return t.t()
        return t.transpose(0, 1).reshape(t.shape[1], -1)

    def gram(self, y: Tensor) -> Tensor:
        """:math:`G_{kj} = \\sum_{n,p} y_{n,k,p} y_{n,j,p}`, shape ``(M, M)``."""
        if y.dim() == 2:
            return y.t() @ y
        flat = self.units_by_samples(y)
        return flat @ flat.t()

    @staticmethod
    def count(u: Tensor) -> Tensor:
        """Number of (sample, position) pairs in ``u`` as a 0-d tensor of ``u``'s dtype (reducible by sum)."""
        return torch.full((), float(u.numel() // u.shape[1]), dtype=u.dtype, device=u.device)  # no host->device copy

    # ------------------------------------------------------------------ validation (no host syncs)
    def check_shapes(self, x: Tensor, u: Tensor) -> None:
        """Check that ``x`` and ``u`` (as the layer receives and returns them) fit the layer; raise otherwise."""
        for name, t in (("x", x), ("u", u)):
            if not isinstance(t, Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
            if not t.is_floating_point():
                raise TypeError(f"{name} must have a floating-point dtype, got {t.dtype}")
        if x.device != self.weight.device or u.device != self.weight.device:
            raise ValueError(
                f"x and u must be on the layer's device {self.weight.device}, got x on {x.device}, u on {u.device}"
            )
        if self.is_conv:
            self._check_conv_shapes(x, u)
        else:
            self._check_linear_shapes(x, u)

    def _check_linear_shapes(self, x: Tensor, u: Tensor) -> None:
        lin = self.layer
        if x.dim() < 1 or x.shape[-1] != lin.in_features:
            raise ValueError(f"x must have {lin.in_features} features in its last dimension, got shape {tuple(x.shape)}")
        if u.shape[:-1] != x.shape[:-1] or u.shape[-1] != lin.out_features:
            raise ValueError(
                f"u must have shape {tuple(x.shape[:-1]) + (lin.out_features,)} for x of shape {tuple(x.shape)}, "
                f"got {tuple(u.shape)}"
            )

    def _check_conv_shapes(self, x: Tensor, u: Tensor) -> None:
        conv = self.layer
        if x.dim() not in (3, 4) or x.shape[-3] != conv.in_channels:
            raise ValueError(
                f"x must have shape (N, {conv.in_channels}, H, W) for this Conv2d, got {tuple(x.shape)}"
            )
        if u.dim() != x.dim():
            raise ValueError(f"u must have {x.dim()} dimensions like x, got shape {tuple(u.shape)}")
        expected = self.output_shape(x.shape)
        if tuple(u.shape) != expected:
            raise ValueError(f"u must have shape {expected} for x of shape {tuple(x.shape)}, got {tuple(u.shape)}")

    def output_shape(self, x_shape: torch.Size) -> Tuple[int, ...]:
        """The conv output shape for an (unpadded) input shape."""
        conv = self.layer
        h, w = x_shape[-2], x_shape[-1]
        if self._pad:
            h, w = h + self._pad[2] + self._pad[3], w + self._pad[0] + self._pad[1]
        else:
            h, w = h + 2 * self._conv_padding[0], w + 2 * self._conv_padding[1]
        sizes = []
        for size, k, s, d in zip((h, w), conv.kernel_size, conv.stride, conv.dilation):
            sizes.append((size - d * (k - 1) - 1) // s + 1)
        return tuple(x_shape[:-3]) + (conv.out_channels, sizes[0], sizes[1])
