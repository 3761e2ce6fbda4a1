"""How a learning rule sees a weight: the geometry of a linear map or an N-d convolution.

Every rule in :mod:`hebbian.rules` is written once, in terms of a few batch-aggregated operations, and works on every
supported layer kind through :class:`LayerView`:

* ``correlate(x, y)``: :math:`C_k = \\sum_{n,p} y_{n,k,p}\\, P_{n,p}`, the post/pre correlation with the shape of the
  weight. For ``linear`` it is ``y.T @ x``; for ``conv1d`` / ``conv2d`` / ``conv3d`` it is the convolution weight
  gradient (``torch.nn.grad.conv{1,2,3}d_weight``), which sums over every batch element and output position without
  materialising the unfolded patch matrix ``P`` (grouped convolutions included: unit ``k`` of group ``g`` sees only
  the input channels of group ``g``).
* ``respond(x, w)``: the layer's linear map applied with another weight tensor of the same shape (no bias), e.g. the
  p-metric current :math:`I = \\mathrm{sign}(W)|W|^{p-1} \\cdot x`.
* ``neuron_sum(t)``: :math:`\\sum_{n,p} t_{n,k,p}`, one number per neuron (output unit or output channel).
* ``per_group(fn, *t)``: a competition ``fn`` (softmax, winner, ranks over the neuron axis) run separately within
  every *competition group* of units (see below).

Shapes. ``linear``: ``x`` is ``(N, *, D)``, ``u`` is ``(N, *, M)`` and the weight ``(M, D)``; leading dimensions are
flattened into one sample axis. ``conv{d}d``: ``x`` is ``(N, C, *spatial)`` (``d`` spatial dims, unpadded, as the
layer receives it), ``u`` is ``(N, M, *out_spatial)`` and the weight ``(M, C / groups, *kernel)``; every output
channel is a neuron and every position ``p`` a sample that shares its kernel. The neuron axis of ``u``-shaped
tensors is always axis 1.

Competition groups. The ``M`` units are split into ``G`` consecutive blocks of ``M / G`` units that compete only
among themselves: ``G`` is the ``groups`` of a grouped / depthwise convolution (each group has its own input
channels, so it is an independent layer), or 3 for the packed query/key/value projection ``in_proj_weight`` of
``nn.MultiheadAttention`` (three maps of one input, see :func:`hebbian.models.discovery.candidate_weights`).
Per-unit rules (Hebb, Oja) are unaffected; the reconstruction rules (subspace, Sanger, HPCA) reconstruct each group's
input from that group's units only (:meth:`LayerView.gram` is block-diagonal).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SUPPORTED_LAYERS: Tuple[type, ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
HebbianLayer = Union[nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d]
#: layer kind -> number of spatial dimensions
KINDS: Dict[str, int] = {"linear": 0, "conv1d": 1, "conv2d": 2, "conv3d": 3}
_CONV_OPS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_WEIGHT_GRADS = {1: torch.nn.grad.conv1d_weight, 2: torch.nn.grad.conv2d_weight, 3: torch.nn.grad.conv3d_weight}
_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def layer_kind(layer: nn.Module) -> str:
    """``"linear"``, ``"conv1d"``, ``"conv2d"`` or ``"conv3d"`` for a supported module; ``TypeError`` otherwise."""
    for cls, kind in ((nn.Linear, "linear"), (nn.Conv1d, "conv1d"), (nn.Conv2d, "conv2d"), (nn.Conv3d, "conv3d")):
        if isinstance(layer, cls):
            return kind
    raise TypeError(
        f"layer must be an nn.Linear or nn.Conv1d/Conv2d/Conv3d (or a subclass), got {type(layer).__name__}"
    )


def post_synaptic_format(u: Tensor) -> torch.memory_format:
    """Memory layout for a post-synaptic factor shaped like ``u`` (see :meth:`LayerView.correlate`).

    Channels-last for 2-d conv outputs on the CPU, where oneDNN computes the correlation of NHWC tensors without
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


def _tuple(value: Any, n: int) -> Tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    return value * n if len(value) == 1 else value


@dataclass(frozen=True)
class Geometry:
    """How a weight is applied: the operator's arguments (what ``F.linear`` / ``F.conv{d}d`` was called with).

    ``padding`` is what the convolution pads itself (numbers, ``"same"`` or ``"valid"``); ``pad`` / ``pad_mode``
    an explicit ``F.pad`` applied to the input first (a module's ``reflect`` / ``replicate`` / ``circular`` mode).
    """

    kind: str = "linear"
    stride: Tuple[int, ...] = ()
    padding: Union[str, Tuple[int, ...]] = ()
    dilation: Tuple[int, ...] = ()
    groups: int = 1
    pad: Tuple[int, ...] = ()
    pad_mode: str = "constant"

    @staticmethod
    def of_call(kind: str, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1) -> "Geometry":
        """The geometry of one ``F.linear`` / ``F.conv{d}d`` call with these arguments."""
        d = KINDS[kind]
        if d == 0:
            return Geometry()
        pad = padding if isinstance(padding, str) else _tuple(padding, d)
        return Geometry(kind, _tuple(stride, d), pad, _tuple(dilation, d), int(groups))

    @staticmethod
    def of_module(layer: nn.Module) -> "Geometry":
        """The geometry of a supported module's own forward pass (its padding mode included)."""
        kind = layer_kind(layer)
        if kind == "linear":
            return Geometry()
        explicit = layer.padding_mode != "zeros"
        pad = tuple(layer._reversed_padding_repeated_twice) if explicit else ()
        padding = tuple(0 for _ in layer.kernel_size) if explicit else layer.padding
        geometry = Geometry.of_call(kind, layer.stride, padding, layer.dilation, layer.groups)
        return Geometry(geometry.kind, geometry.stride, geometry.padding, geometry.dilation, geometry.groups, pad,
                        _PAD_MODES[layer.padding_mode])


class LayerView:
    """A rule's read-only view of one weight: ``nn.Linear`` / ``nn.Conv{1,2,3}d`` or a weight used functionally.

    Args:
        layer: a supported module (``Conv`` layers may have any kernel size, stride, dilation, padding - numbers,
            ``"same"``, ``"valid"`` - padding mode and ``groups``), or ``None`` with ``weight`` and ``geometry``.
        weight: the weight Parameter, when ``layer`` is ``None`` (e.g. ``nn.MultiheadAttention.in_proj_weight``).
        geometry: how the weight is applied (default: the module's own forward).
        bias: the bias the operator adds (default: the module's ``bias``), subtracted by :meth:`prepare`.
        competition_groups: number of groups of units that compete separately (default: the conv ``groups``, else
            1); must divide the number of units, and equal ``groups`` or 1 for a grouped convolution.

    Raises:
        TypeError: for an unsupported module type.
        ValueError: for inconsistent groups.
    """

    def __init__(
        self,
        layer: Optional[nn.Module] = None,
        *,
        weight: Optional[Tensor] = None,
        geometry: Optional[Geometry] = None,
        bias: Optional[Tensor] = "module",  # type: ignore[assignment]
        competition_groups: Optional[int] = None,
    ) -> None:
        if layer is not None:
            layer_kind(layer)  # raises TypeError naming the type
            weight = layer.weight
            geometry = Geometry.of_module(layer) if geometry is None else geometry
            bias = layer.bias if isinstance(bias, str) else bias
        else:
            if weight is None or geometry is None:
                raise TypeError("LayerView needs a layer, or a weight and its geometry")
            bias = None if isinstance(bias, str) else bias
        self.layer = layer
        self.weight: Tensor = weight
        self.bias: Optional[Tensor] = bias
        self.geometry = geometry
        self.dims = KINDS[geometry.kind]
        self.is_conv = self.dims > 0
        expected = 2 + self.dims
        if weight.dim() != expected:
            raise ValueError(f"weight of a {geometry.kind} must have {expected} dimensions, got shape "
                             f"{tuple(weight.shape)}")
        m = weight.shape[0]
        if geometry.groups < 1 or m % geometry.groups:
            raise ValueError(f"groups={geometry.groups} must divide the {m} output channels")
        groups = geometry.groups if competition_groups is None else int(competition_groups)
        if groups < 1 or m % groups or (geometry.groups > 1 and groups not in (1, geometry.groups)):
            raise ValueError(f"competition_groups={groups} must divide the {m} units (and equal the conv groups "
                             f"{geometry.groups} or 1)")
        self.groups = groups
        #: whether the ``u`` given to the rules is exactly the layer's drive ``W x`` (+ bias), as it is for captured
        #: uses of a weight; lets rules take :math:`\sum_{n,p} y_k u_k` from the correlation (:meth:`drive_dot`)
        self.exact_drive = False
        self._pad, self._pad_mode = geometry.pad, geometry.pad_mode
        self._conv_padding: Tuple[int, ...] = ()
        if self.is_conv:
            if isinstance(geometry.padding, str):  # "same" / "valid": padded explicitly (zeros), then padding 0
                self._pad = self._string_pad(geometry.padding)
                self._conv_padding = (0,) * self.dims
            else:
                self._conv_padding = geometry.padding

    def _string_pad(self, mode: str) -> Tuple[int, ...]:
        if mode == "valid":
            return ()
        pad = []
        for k, d in zip(reversed(self.weight.shape[2:]), reversed(self.geometry.dilation)):
            total = d * (k - 1)
            pad += [total // 2, total - total // 2]  # the odd element goes to the end, as in torch
        return tuple(pad)

    def for_call(self, geometry: Geometry, bias: Optional[Tensor], exact_drive: Optional[bool] = None) -> "LayerView":
        """The same weight and competition groups, applied as one captured call was (its geometry and bias; whether
        its output is exactly the drive, default: as this view)."""
        exact = self.exact_drive if exact_drive is None else exact_drive
        if geometry == self.geometry and bias is self.bias and exact == self.exact_drive:
            return self
        groups = self.groups if geometry.groups == 1 or self.groups == geometry.groups else geometry.groups
        view = LayerView(weight=self.weight, geometry=geometry, bias=bias, competition_groups=groups)
        view.layer, view.exact_drive = self.layer, exact
        return view

    # ------------------------------------------------------------------ geometry
    @property
    def num_neurons(self) -> int:
        return self.weight.shape[0]

    @property
    def units_per_group(self) -> int:
        """Units that compete with each other (``M / competition_groups``)."""
        return self.num_neurons // self.groups

    @property
    def fan_in(self) -> int:
        return self.weight[0].numel()

    @property
    def kind(self) -> str:
        return self.geometry.kind

    def neuron_shape(self) -> Tuple[int, ...]:
        """Shape that broadcasts a per-neuron vector ``(M,)`` against the weight: ``(M, 1)``, ``(M, 1, 1, 1)`` ..."""
        return (self.num_neurons,) + (1,) * (self.weight.dim() - 1)

    def per_neuron(self, s: Tensor) -> Tensor:
        """Reshape a per-neuron vector ``(M,)`` to broadcast against the weight."""
        return s.reshape(self.neuron_shape())

    # ------------------------------------------------------------------ competition groups
    def per_group(self, fn: Callable[..., Tensor], *tensors: Tensor, **kwargs: Any) -> Tensor:
        """``fn`` (a competition over axis 1) applied within each competition group of units.

        ``u``-shaped ``(N, M, *)`` tensors are viewed as ``(N, M/G, G, *)``, so that the group index becomes one more
        "position" axis and ``fn`` competes over the ``M/G`` units of one group; the result is returned as
        ``(N, M, *)``. With one group, ``fn(*tensors)`` itself.
        """
        if self.groups == 1:
            return fn(*tensors, **kwargs)
        split = [t.unflatten(1, (self.groups, self.units_per_group)).transpose(1, 2) for t in tensors]
        return fn(*split, **kwargs).transpose(1, 2).flatten(1, 2)

    def group_mask(self, dtype: torch.dtype, device: torch.device) -> Optional[Tensor]:
        """Block-diagonal ``(M, M)`` 0/1 mask of the competition groups (``None`` for one group)."""
        if self.groups == 1:
            return None
        block = torch.ones(self.units_per_group, self.units_per_group, dtype=dtype, device=device)
        return torch.block_diag(*([block] * self.groups))

    # ------------------------------------------------------------------ inputs
    def prepare(self, x: Tensor, u: Tensor) -> Tuple[Tensor, Tensor]:
        """Bring the layer input and output to the rule's layout.

        ``linear``: flatten leading dimensions, giving ``x (S, D)`` and ``u (S, M)``. ``conv``: apply a padding mode
        or string padding explicitly, so that later convolutions use plain numeric padding. The bias, if any, is
        subtracted, so ``u`` is always the bare drive ``w_k . x``.
        """
        bias = self.bias
        if self.is_conv:
            if x.dim() == self.dims + 1:  # unbatched input
                x, u = x.unsqueeze(0), u.unsqueeze(0)
            if self._pad:  # padded straight into channels-last on the CPU: the layout correlate converts x to
                x = F.pad(x.contiguous(memory_format=post_synaptic_format(x)), self._pad, mode=self._pad_mode)
            if bias is not None:
                u = u - bias.view((1, -1) + (1,) * self.dims)
            return x, u
        x = x.reshape(-1, x.shape[-1])
        u = u.reshape(-1, u.shape[-1])
        if bias is not None:
            u = u - bias
        return x, u

    # ------------------------------------------------------------------ batch-aggregated products
    def _conv_args(self) -> Dict[str, Any]:
        g = self.geometry
        return dict(stride=g.stride, padding=self._conv_padding, dilation=g.dilation, groups=g.groups)

    def correlate(self, x: Tensor, y: Tensor) -> Tensor:
        """:math:`\\sum_{n,p} y_{n,k,p} P_{n,p}` with the weight's shape, for prepared ``x`` and ``y`` shaped like u.

        On the CPU a 2-d ``y`` laid out as :func:`post_synaptic_format` says (channels-last) is correlated by oneDNN
        on NHWC operands (``x`` is converted, a copy of its size); any other ``y`` by PyTorch's native kernel, which
        needs no copy of ``y``.
        """
        if not self.is_conv:
            return y.t() @ x
        weight_grad, args = _WEIGHT_GRADS[self.dims], self._conv_args()
        if x.device.type != "cpu":
            return weight_grad(x, self.weight.shape, y, **args)
        if self.dims == 2 and y.is_contiguous(memory_format=torch.channels_last):  # oneDNN on NHWC, no reorders
            return weight_grad(x.contiguous(memory_format=torch.channels_last), self.weight.shape, y, **args)
        with _native_cpu_convolution():
            return weight_grad(x, self.weight.shape, y, **args)

    def respond(self, x: Tensor, w: Tensor) -> Tensor:
        """The layer's linear map with weight ``w`` (same shape as the layer's), no bias, on prepared ``x``."""
        if not self.is_conv:
            return x @ w.t()
        return _CONV_OPS[self.dims](x, w, None, **self._conv_args())

    def input_norms(self, x: Tensor) -> Tensor:
        """Euclidean norm of every input patch of every unit, broadcastable against ``u``: ``(S, 1)``,
        ``(N, 1, *out)``, or ``(N, M, *out)`` for a grouped convolution (each group sees its own channels)."""
        if not self.is_conv:
            return x.norm(dim=1, keepdim=True)
        g = self.geometry.groups
        ones = x.new_ones((g,) + tuple(self.weight.shape[1:]))
        norms = _CONV_OPS[self.dims](x * x, ones, None, **self._conv_args()).clamp_min(0).sqrt()
        return norms if g == 1 else norms.repeat_interleave(self.num_neurons // g, dim=1)

    def drive_dot(self, c: Tensor) -> Tensor:
        """:math:`\\langle w_k, C_k \\rangle` per neuron, shape ``(M,)``, for a correlation ``C = correlate(x, y)``.

        Equals :math:`\\sum_{n,p} y_{n,k,p} u_{n,k,p}` when ``u`` is the drive :math:`W x` (since
        :math:`u_k = w_k \\cdot P`): one pass over the weight instead of a product and a sum over ``u``-shaped tensors.
        """
        m = self.num_neurons
        return torch.linalg.vecdot(self.weight.reshape(m, -1), c.reshape(m, -1))

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
        """:math:`G_{kj} = \\sum_{n,p} y_{n,k,p} y_{n,j,p}` for units of the same competition group (0 across
        groups), shape ``(M, M)``."""
        if y.dim() == 2:
            gram = y.t() @ y
        else:
            flat = self.units_by_samples(y)
            gram = flat @ flat.t()
        mask = self.group_mask(gram.dtype, gram.device)
        return gram if mask is None else gram.mul_(mask)

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
        m, d = self.weight.shape
        if x.dim() < 1 or x.shape[-1] != d:
            raise ValueError(f"x must have {d} features in its last dimension, got shape {tuple(x.shape)}")
        if u.shape[:-1] != x.shape[:-1] or u.shape[-1] != m:
            raise ValueError(
                f"u must have shape {tuple(x.shape[:-1]) + (m,)} for x of shape {tuple(x.shape)}, got {tuple(u.shape)}"
            )

    def _check_conv_shapes(self, x: Tensor, u: Tensor) -> None:
        channels = self.weight.shape[1] * self.geometry.groups
        if x.dim() not in (self.dims + 1, self.dims + 2) or x.shape[-self.dims - 1] != channels:
            spatial = ", ".join("HW"[i] if self.dims == 2 else f"L{i}" for i in range(self.dims))
            raise ValueError(
                f"x must have shape (N, {channels}, {spatial}) for this {self.kind}, got {tuple(x.shape)}"
            )
        if u.dim() != x.dim():
            raise ValueError(f"u must have {x.dim()} dimensions like x, got shape {tuple(u.shape)}")
        expected = self.output_shape(x.shape)
        if tuple(u.shape) != expected:
            raise ValueError(f"u must have shape {expected} for x of shape {tuple(x.shape)}, got {tuple(u.shape)}")

    def output_shape(self, x_shape: torch.Size) -> Tuple[int, ...]:
        """The conv output shape for an (unpadded) input shape."""
        g = self.geometry
        sizes = list(x_shape[-self.dims:])
        pad = self._pad
        for i in range(self.dims):
            if pad:  # F.pad order: last dimension first
                j = self.dims - 1 - i
                sizes[i] += pad[2 * j] + pad[2 * j + 1]
            else:
                sizes[i] += 2 * self._conv_padding[i]
        out = [(s - d * (k - 1) - 1) // st + 1
               for s, k, st, d in zip(sizes, self.weight.shape[2:], g.stride, g.dilation)]
        return tuple(x_shape[:-self.dims - 1]) + (self.num_neurons,) + tuple(out)
