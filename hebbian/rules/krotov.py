"""Krotov & Hopfield (2019): unsupervised learning by competing hidden units."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from hebbian.rules.base import LearningRule, Statistics, check_choice, check_positive, max_abs
from hebbian.rules.buffers import ReusableZeros, noted_rows, rows_written_since, written_rows
from hebbian.rules.competition import rank_gates
from hebbian.rules.layers import LayerView
from hebbian.rules.registry import register_rule


def p_weights(w: Tensor, p: float, out: Optional[Tensor] = None) -> Tensor:
    """The p-metric weights :math:`\\mathrm{sign}(w)|w|^{p-1}` (``w`` itself for p = 2), written into ``out`` if given.

    Computed as ``copysign(|w|^(p-1), w)`` (for p = 3 as ``|w| * w``): the same values as ``sign(w) * |w|^(p-1)`` in
    two passes over ``w`` and no temporaries, instead of four passes and three weight-sized allocations.
    """
    if p == 2.0:
        return w
    if p == 1.0:
        return torch.sign(w, out=out)
    out = torch.abs(w, out=out) if out is not None else w.abs()
    if p == 3.0:
        return out.mul_(w)
    return out.pow_(p - 1.0).copysign_(w)


class PWeightCache:
    """:func:`p_weights` of one weight, recomputed into one buffer only when the weight has changed.

    The weight's identity and in-place version counter (``Tensor._version``, bumped by every in-place write, the
    optimizer's step included) tell whether the cached tensor is current, so it is exact by construction. When the
    only write since is a recorded row-sparse step (:func:`~hebbian.rules.buffers.rows_written_since`, e.g.
    :class:`~hebbian.optim.Local` applying Krotov's update), only those rows are recomputed. Transient: not part of
    any state_dict.
    """

    def __init__(self) -> None:
        self._key: Optional[tuple] = None  # (data pointer, shape, dtype, device, p) of the weight the buffer holds
        self._version = -1  # that weight's in-place version the buffer is current with
        self._buf: Optional[Tensor] = None

    def __call__(self, w: Tensor, p: float) -> Tensor:
        if p == 2.0:
            return w
        key = (w.data_ptr(), w.shape, w.dtype, w.device, p)
        if key != self._key or self._buf is None:  # another weight: recompute whole (reusing a buffer that fits)
            if self._buf is None or self._buf.shape != w.shape or self._buf.dtype != w.dtype \
                    or self._buf.device != w.device:
                self._buf = torch.empty_like(w, memory_format=torch.contiguous_format)
            p_weights(w.detach(), p, out=self._buf)
        elif w._version != self._version:  # the same weight, written since
            rows = rows_written_since(w, self._version)  # only these rows, if the write was a recorded row step
            if rows is None:
                p_weights(w.detach(), p, out=self._buf)
            else:
                self._buf.index_copy_(0, rows, p_weights(written_rows(w, rows), p))
        self._key, self._version = key, w._version
        return self._buf

    def __deepcopy__(self, memo: dict) -> "PWeightCache":
        return PWeightCache()  # clones start empty (a buffer shared between rule copies would be wrong)


def p_current(view: LayerView, x: Tensor, u: Tensor, p: float, cache: Optional[PWeightCache] = None) -> Tensor:
    """The p-metric input current :math:`I_k = \\sum_i \\mathrm{sign}(w_{ki}) |w_{ki}|^{p-1} x_i`.

    ``u`` itself when it already is that current: the layer's ``current_p`` (2 for plain layers; the exponent of a
    :class:`~hebbian.models.PMetricLinear`, whose forward computed the current) equals ``p``, so no second product.
    """
    if getattr(view.layer, "current_p", 2.0) == p:
        return u
    w = view.weight
    return view.respond(x, cache(w, p) if cache is not None else p_weights(w, p))


#: per-patch input normalisations of the Krotov rule (``patch_norm``)
PATCH_NORMS = ("none", "unit", "centered")


def patch_statistics(view: LayerView, x: Tensor, centered: bool) -> Tuple[Tensor, Optional[Tensor]]:
    """``(1 / ||P||, mean)`` of every input patch ``P`` (a ``Linear`` input row or a conv patch), broadcastable
    against ``u`` (``(S, 1)`` / ``(N, 1, *out)``); ``||P||`` of the centred patch ``P - mean(P)`` when ``centered``
    (then ``mean`` is given, else ``None``). Patches whose (centred) norm is zero within rounding get ``0``: they
    carry no direction and are left out of the update.
    """
    d = view.fan_in
    if view.is_conv:
        ones = x.new_ones((1,) + tuple(view.weight.shape[1:]))
        total, squares = view.respond(x, ones), view.respond(x * x, ones)
    else:
        total, squares = x.sum(dim=1, keepdim=True), (x * x).sum(dim=1, keepdim=True)
    mean = total / d if centered else None
    norm2 = squares - total * mean if centered else squares
    # a constant patch has centred norm 0, which float rounding turns into noise of about eps * d * sum(P^2)
    floor = torch.finfo(x.dtype).eps * 4 * d * squares if centered else torch.zeros_like(squares)
    inv = torch.where(norm2 > floor, norm2.clamp_min(torch.finfo(x.dtype).tiny).rsqrt(), torch.zeros_like(norm2))
    return inv, mean


@register_rule(
    "krotov",
    description="Krotov-Hopfield: top-1 unit learns, rank-k unit unlearns (-delta); p-norm sphere; max-abs step.",
    aliases=("krotov_hopfield",),
)
class Krotov(LearningRule):
    """The Krotov-Hopfield rule in its fast minibatch form.

    .. math::
        I_{n,k,p} = \\sum_i \\mathrm{sign}(w_{ki})|w_{ki}|^{p-1} P_{n,p,i}, \\qquad
        g_{n,k,p} = \\begin{cases} 1 & k = \\text{rank 1 of } I_{n,:,p} \\\\ -\\Delta & k = \\text{rank } k \\\\ 0 \\end{cases}

        ds_k = \\sum_{n,p} g_{n,k,p}\\, P_{n,p} - \\Big(\\sum_{n,p} g_{n,k,p} I_{n,k,p}\\Big) w_k, \\qquad
        \\Delta W = ds / \\max(\\max|ds|, \\text{prec})

    So the largest element change per batch equals the learning rate (``eps_t``, usually linearly annealed with a
    ``LambdaLR``). Units that win regularly converge to the unit p-sphere :math:`\\sum_i |w_{ki}|^p = 1`.

    With ``patch_norm`` every patch (conv) or input row (``Linear``) is normalised before it enters the rule:
    ``"unit"`` :math:`\\hat P = P / \\|P\\|`, ``"centered"`` :math:`\\hat P = (P - \\bar P) / \\|P - \\bar P\\|`
    (:math:`\\bar P` the mean of the patch's values), and :math:`P, I` above become :math:`\\hat P` and its current
    :math:`\\hat I_{n,k,p} = \\sum_i \\mathrm{sign}(w_{ki})|w_{ki}|^{p-1} \\hat P_{n,p,i}`; patches of (centred) norm 0
    are left out. Grinberg, Hopfield & Krotov (2019, arXiv:1908.08993) train convolutional filters with this rule on
    normalised patches ("patch normalization"). Computed without patches: a per-position scaling of the gates
    (:math:`\\sum g \\hat P = \\sum (g / \\|P\\|) P - \\sum (g \\bar P / \\|P\\|)\\,\\mathbf 1`) and of the current
    (:math:`\\hat I = (I - \\bar P \\sum_i \\tilde w_{ki}) / \\|P - \\bar P\\|`), from two convolutions with a kernel of
    ones; for ungrouped layers.

    Args:
        p: Lebesgue exponent of the metric (>= 1). S-PH default 2; MNIST 3, CIFAR-10 5.
        k: rank of the anti-Hebbian unit (>= 2; at most the number of units).
        delta: anti-Hebbian strength (>= 0).
        prec: floor of the normaliser (> 0).
        patch_norm: ``"none"`` (default; the published MNIST rule), ``"unit"`` or ``"centered"`` (see above).

    Shapes: ``x (S, D)`` / ``(N, C, H, W)``, ``u (S, M)`` / ``(N, M, OH, OW)``; returns the weight's shape.
    For ``Linear`` layers the two non-zeros of ``g`` per sample are scattered with ``index_add`` (``O(S D)``),
    instead of a dense ``g.T @ x`` (``O(S M D)``), into the R <= 2S written rows only (an ``(R, D)`` tensor), and the
    decay term is one scaling of those rows of ``w`` by :math:`\\sum_n g_{nk} I_{nk}`; the rows and their values are
    noted on the update (:func:`~hebbian.rules.buffers.note_nonzero_rows`) for the steps after it. The p-metric weights are recomputed (in place, into one buffer) only when the weight changed, and the update is
    built in last batch's tensor when nothing else holds it (:class:`~hebbian.rules.buffers.ReusableZeros`); with a
    :class:`~hebbian.models.PMetricLinear` layer of the same p the layer's output already is the current.
    """

    def __init__(self, p: float = 2.0, k: int = 2, delta: float = 0.4, prec: float = 1e-30,
                 patch_norm: str = "none") -> None:
        self.p = check_positive("p", p)
        if self.p < 1:
            raise ValueError(f"p must be >= 1, got {p!r}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 2:
            raise ValueError(f"k must be an integer >= 2 (rank of the anti-Hebbian unit), got {k!r}")
        self.k = k
        self.delta = check_positive("delta", delta, strict=False)
        self.prec = check_positive("prec", prec)
        self.patch_norm = check_choice("patch_norm", patch_norm, PATCH_NORMS)
        self._p_weights = PWeightCache()
        self._delta = ReusableZeros()

    def check_layer(self, layer: nn.Module) -> LayerView:
        view = super().check_layer(layer)
        if view.units_per_group < self.k:
            raise ValueError(f"k={self.k} needs at least k competing units, got {view.units_per_group} "
                             f"(units per competition group)")
        if self.patch_norm != "none" and view.geometry.groups > 1:
            raise ValueError(f"patch_norm={self.patch_norm!r} needs an ungrouped layer, got groups="
                             f"{view.geometry.groups}")
        return view

    def statistics(self, view: LayerView, x: Tensor, u: Tensor, labels: Optional[Tensor] = None) -> Statistics:
        current = p_current(view, x, u, self.p, self._p_weights)
        if self.patch_norm != "none":
            return {"delta": self._normalised_patches(view, x, current)}
        if view.is_conv or view.groups > 1:
            g = view.per_group(rank_gates, current, k=self.k, delta=self.delta)
            return {"delta": view.correlate(x, g) - view.per_neuron(view.neuron_sum(g * current)) * view.weight}
        return {"delta": self._sparse_linear(view, x, current)}

    def _normalised_patches(self, view: LayerView, x: Tensor, current: Tensor) -> Tensor:
        """:math:`\\sum g \\hat P - (\\sum g \\hat I) w` on normalised patches (``patch_norm``), from the raw ``x``
        and current ``I``."""
        centered = self.patch_norm == "centered"
        inv, mean = patch_statistics(view, x, centered)
        if centered:
            sums = self._p_weights(view.weight, self.p).reshape(view.num_neurons, -1).sum(dim=1)  # sum_i w~_ki
            current = current - mean * sums.reshape((1, -1) + (1,) * (current.dim() - 2))
        current = current * inv  # the current of the normalised patch
        g = view.per_group(rank_gates, current, k=self.k, delta=self.delta)
        scaled = g * inv
        delta = view.correlate(x, scaled) - view.per_neuron(view.neuron_sum(g * current)) * view.weight
        if centered:
            delta -= view.per_neuron(view.neuron_sum(scaled * mean))
        return delta

    def _sparse_linear(self, view: LayerView, x: Tensor, current: Tensor) -> Tensor:
        top = current.topk(self.k, dim=1)
        # only the rows of the S winners and S rank-k units are non-zero: they are built compactly (R <= 2S rows,
        # R x D) as ds_r = sum_n g_nr x_n - (sum_n g_nr I_nr) w_r, with one gather of w's rows, then written into the
        # update (the last batch's tensor when nobody holds it, so only its previous rows are cleared; a fresh one
        # costs page faults on the CPU, see rules/buffers.py)
        rows, slot = torch.unique(torch.cat([top.indices[:, 0], top.indices[:, self.k - 1]]), return_inverse=True)
        first, kth = slot.chunk(2)
        first_value, kth_value = top.values[:, 0], top.values[:, self.k - 1]
        part = x.new_zeros((rows.shape[0], x.shape[1]))
        part.index_add_(0, first, x).index_add_(0, kth, x, alpha=-self.delta)
        decay = first_value.new_zeros(rows.shape[0]).index_add_(0, first, first_value)
        decay.index_add_(0, kth, kth_value, alpha=-self.delta)
        part.addcmul_(view.weight.index_select(0, rows), decay.unsqueeze(1), value=-1.0)
        ds = self._delta.zeros_like(view.weight)
        ds.index_copy_(0, rows, part)
        self._delta.set_rows(ds, rows, part)
        return ds

    def finalize(self, view: LayerView, stats: Statistics, grad: Optional[Tensor] = None) -> Tensor:
        ds = stats["delta"]  # normalised in place: the statistics are consumed here
        rows = self._delta.rows(ds)
        if rows is None:
            return ds.div_(max_abs(ds).clamp_min(self.prec))
        # only the written rows can be non-zero (unchanged since, e.g. not all-reduced): max-abs and scaling on them
        part = noted_rows(ds, rows)
        part = part / max_abs(part).clamp_min(self.prec)
        ds.index_copy_(0, rows, part)
        self._delta.set_rows(ds, rows, part)
        return ds

    def support(self, delta: Tensor) -> Optional[Tensor]:
        """The winners' and rank-k units' rows, for the update of the fully connected form (``None`` otherwise, or
        once ``delta`` was changed in place after :meth:`finalize`)."""
        return self._delta.rows(delta)
