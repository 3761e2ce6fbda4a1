"""Recording what each bound weight received and produced during one forward pass: capture by weight.

Two mechanisms, one record (a :class:`Use` per use of a weight):

* the *module front end*: forward hooks on the modules that own bound weights (``nn.Linear``, ``nn.Conv{1,2,3}d`` and
  their subclasses) record the module's input and output whenever its ``forward`` runs (a custom forward, such as
  :class:`~hebbian.models.PMetricLinear`'s, keeps its meaning);
* *capture by weight*: a :class:`~torch.utils._python_dispatch.TorchDispatchMode` sees every matrix product and
  convolution of the forward pass at the ATen level, inside Python-level functions too, and records those that use a
  bound weight outside its module's ``forward``: ``nn.MultiheadAttention``'s packed ``in_proj_weight`` and its
  ``out_proj`` (applied with ``F.linear``, never through ``out_proj.forward``), user code calling ``F.linear`` /
  ``F.conv*d``, a weight tied to another layer. (A ``TorchFunctionMode`` cannot see into Python-level functions such as
  ``F.multi_head_attention_forward``: they hand the whole call to the mode.) Autocast's casts of the weight are
  followed.

A weight used several times in one forward pass (a shared block, a layer called twice, weight tying) is recorded
once per use, and the rule's batch sums of all uses are added (:func:`use_statistics`). A block of whole rows of a
bound weight applied as ``x @ W[a:b].T`` is a use of those units only (:attr:`Use.rows`): cross-attention splits the
packed ``in_proj_weight`` so, applying the query block to the query and the key/value blocks to the key and value,
and each block's competition groups learn from their own input. A bound weight multiplied through any other slice
of itself, as the left factor, or by an embedding lookup cannot be captured: that raises, naming the weight, instead
of training on part of its uses.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Set, Tuple

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode

from hebbian.models.discovery import stock_forward
from hebbian.rules.base import Statistics
from hebbian.rules.layers import SUPPORTED_LAYERS, Geometry, LayerView
from hebbian.trainers.binding import RuleBinding

aten = torch.ops.aten
#: ops that return the weight itself in another dtype / as an alias (autocast's casts)
_SAME = {aten._to_copy.default, aten.detach.default, aten.alias.default, aten.clone.default}
#: ops that return the weight transposed (how F.linear applies it)
_TRANSPOSED = {aten.t.default, aten.transpose.int, aten.numpy_T.default}
#: products whose operands are checked: a bound weight (or its slice) in any other position cannot be captured
_PRODUCTS = {aten.mm.default, aten.addmm.default, aten.bmm.default, aten.baddbmm.default, aten.mv.default,
             aten.addmv.default, aten.dot.default, aten.embedding.default, aten.convolution.default,
             aten._convolution.default, aten.matmul.default, aten.linear.default}


class Use(NamedTuple):
    """One use of a bound weight: the operator's input ``x`` and output ``u``, the bias it added to ``u`` (``None``:
    ``u`` is the bare drive), its geometry, whether ``u`` is exactly ``W x`` (+ bias): true for products and for
    the stock ``Linear`` / ``Conv`` forward, false for a module subclass's own forward; and ``rows``: ``(a, b)`` when
    only the units ``a .. b-1`` of a linear weight were applied (``x @ W[a:b].T``; ``u`` has ``b - a`` features)."""

    x: Tensor
    u: Tensor
    bias: Optional[Tensor]
    geometry: Geometry
    exact: bool = True
    rows: Optional[Tuple[int, int]] = None


class _ForwardDone(Exception):
    """Raised to skip the rest of the forward pass once every wanted use has been seen."""


class _WeightUses(TorchDispatchMode):
    """Follows bound weights through casts and transposes to the products that apply them."""

    def __init__(self, capture: "LayerCapture") -> None:
        super().__init__()
        self.capture = capture
        # id -> (tensor, name, orientation, rows): "w" (as stored), "t" (transposed), "rows" / "rows_t" (a block of
        # whole rows (a, b), as stored / transposed), "part" (any other slice or reshape)
        self.aliases: Dict[int, Tuple[Tensor, str, str, Optional[Tuple[int, int]]]] = {}

    def _alias(self, out: Tensor, name: str, orient: str, rows: Optional[Tuple[int, int]] = None) -> None:
        self.aliases[id(out)] = (out, name, orient, rows)

    def rows_of(self, t: Any) -> Optional[Tuple[int, int]]:
        entry = self.aliases.get(id(t))
        return entry[3] if entry is not None and entry[0] is t else None

    def _part(self, out: Tensor, base: Tensor, name: str, orient: str) -> None:
        """``out``, a view of ``base``: a block of whole rows of the weight as stored, or any other part."""
        rows = _row_block(out, base) if orient == "w" else None
        self._alias(out, name, "part" if rows is None else "rows", rows)

    def lookup(self, t: Any) -> Optional[Tuple[str, str]]:
        if not isinstance(t, Tensor):
            return None
        name = self.capture._names.get(id(t))
        if name is not None:
            return name, "w"
        entry = self.aliases.get(id(t))
        return (entry[1], entry[2]) if entry is not None and entry[0] is t else None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        found = [(i, hit) for i, a in enumerate(args) if (hit := self.lookup(a)) is not None]
        if not found or not isinstance(out, Tensor) and func not in _PRODUCTS:
            if found and isinstance(out, (tuple, list)):  # split / unbind / chunk of a weight: parts of it
                (i, (name, orient)) = found[0]
                for o in out:
                    if isinstance(o, Tensor):
                        self._part(o, args[i], name, orient)
            return out
        (i, (name, orient)) = found[0]
        if func in _PRODUCTS:
            self.capture._on_product(func, args, kwargs, out, found, [self.rows_of(args[j]) for j, _ in found])
        elif func in _SAME and len(found) == 1 and i == 0:
            self._alias(out, name, orient, self.rows_of(args[0]))
        elif func in _TRANSPOSED and len(found) == 1 and i == 0 and orient in _FLIPPED and args[0].dim() == 2:
            self._alias(out, name, _FLIPPED[orient], self.rows_of(args[0]))
        elif func.is_view:  # any other view of a weight: a block of its rows, or a part of it
            self._part(out, args[i], name, orient)
        return out


#: orientation of a transposed alias
_FLIPPED = {"w": "t", "t": "w", "rows": "rows_t", "rows_t": "rows"}


def _row_block(part: Tensor, base: Tensor) -> Optional[Tuple[int, int]]:
    """``(a, b)`` when ``part`` is ``base[a:b]`` for a 2-d ``base`` (the same storage, strides and columns)."""
    if base.dim() != 2 or part.dim() != 2 or part.shape[1] != base.shape[1] or part.stride() != base.stride() \
            or part.untyped_storage().data_ptr() != base.untyped_storage().data_ptr():
        return None
    offset = part.storage_offset() - base.storage_offset()
    if base.stride(0) <= 0 or offset % base.stride(0):
        return None
    start = offset // base.stride(0)
    return (start, start + part.shape[0]) if 0 <= start and start + part.shape[0] <= base.shape[0] else None


class LayerCapture:
    """Records the uses of bound weights: each use's input and output (pre-activation), detached.

    With ``stop_early=True`` the forward pass is cut short as soon as every wanted weight has been used as many times
    as in the first complete recorded pass, which saves the supervised head in pure Hebbian training.
    """

    def __init__(self, bindings: Sequence[RuleBinding]) -> None:
        self._names: Dict[int, str] = {id(b.weight): b.name for b in bindings}
        self._module_of: Dict[str, nn.Module] = {b.name: b.layer for b in bindings}
        self._geometry: Dict[str, Geometry] = {b.name: b.view.geometry for b in bindings}
        self._exact: Dict[str, bool] = {b.name: stock_forward(b.layer) for b in bindings}
        self._inside: Set[str] = set()  # weights whose module's forward is running (captured by the hook)
        self._wanted: Set[str] = set()
        self._stop_early = False
        self._uses_per_pass: Optional[Dict[str, int]] = None
        self._handles: List[Any] = []
        self.records: Dict[str, List[Use]] = {}
        for b in bindings:
            if isinstance(b.layer, SUPPORTED_LAYERS) and b.layer.weight is b.weight:
                self._handles.append(b.layer.register_forward_pre_hook(self._enter(b.name)))
                self._handles.append(b.layer.register_forward_hook(self._leave(b.name), always_call=True))
        self._active = True

    # ------------------------------------------------------------------ module front end
    def _enter(self, name: str):
        def hook(module: nn.Module, inputs: Tuple[Tensor, ...]) -> None:
            if name in self._wanted:
                self._inside.add(name)

        return hook

    def _leave(self, name: str):
        def hook(module: nn.Module, inputs: Tuple[Tensor, ...], output: Tensor) -> None:
            if name not in self._inside:
                return
            self._inside.discard(name)
            if isinstance(output, Tensor):  # always_call: also after an exception, when there is no output
                self._add(name, Use(inputs[0].detach(), output.detach(), module.bias, self._geometry[name],
                                    self._exact[name]))

        return hook

    # ------------------------------------------------------------------ capture by weight
    def _on_product(self, func: Any, args: tuple, kwargs: Dict[str, Any], out: Any,
                    found: List[Tuple[int, Tuple[str, str]]], rows: Sequence[Optional[Tuple[int, int]]]) -> None:
        names = {hit[0] for _, hit in found}
        wanted = [n for n in names if n in self._wanted and n not in self._inside]
        if not wanted:
            return
        name = wanted[0]
        if func is aten.convolution.default and len(found) == 1 and found[0][0] == 1 and found[0][1][1] == "w" \
                and not args[6]:
            kind = f"conv{args[1].dim() - 2}d"
            geometry = Geometry.of_call(kind, args[3], args[4], args[5], args[8])
            self._add(name, Use(args[0].detach(), out.detach(), args[2], geometry))
            return
        linear_pos = {aten.mm.default: 1, aten.addmm.default: 2}.get(func)
        if linear_pos is not None and len(found) == 1 and found[0][0] == linear_pos \
                and found[0][1] in ((name, "t"), (name, "rows_t")) \
                and kwargs.get("beta", 1) == 1 and kwargs.get("alpha", 1) == 1:
            bias = args[0] if func is aten.addmm.default else None
            x = args[linear_pos - 1]
            self._add(name, Use(x.detach(), out.detach(), bias, Geometry(), rows=rows[0]))
            return
        raise RuntimeError(
            f"the weight of {name!r} is used in a way that cannot be captured ({func}: "
            f"{'a slice or reshape of it' if any(h[1] == 'part' for _, h in found) else 'not as x @ W.T or a convolution'}"
            ", e.g. a column slice or a tied embedding); train it by backprop instead (exclude it from the rules)"
        )

    def _add(self, name: str, use: Use) -> None:
        self.records.setdefault(name, []).append(use)
        if self._stop_early and self._complete():
            raise _ForwardDone

    def _complete(self) -> bool:
        known = self._uses_per_pass or {}
        return all(len(self.records.get(n, ())) >= known.get(n, 1) for n in self._wanted)

    # ------------------------------------------------------------------ recording
    @contextmanager
    def record(self, names: Set[str], stop_early: bool = False) -> Iterator[Dict[str, List[Use]]]:
        """Context in which one forward pass is recorded; yields the ``name -> [Use, ...]`` dict."""
        self.records = {}
        self._inside = set()
        self._wanted = set(names) if self._active else set()
        known = self._uses_per_pass is not None and set(self._uses_per_pass) >= self._wanted
        self._stop_early = stop_early and known
        try:
            with ExitStack() as stack:
                if self._wanted:
                    stack.enter_context(_WeightUses(self))
                yield self.records
            if not known and self._wanted and not self.missing():
                self._uses_per_pass = {n: len(uses) for n, uses in self.records.items()}
        except _ForwardDone:
            pass
        finally:
            self._wanted, self._stop_early, self._inside = set(), False, set()

    def missing(self) -> Set[str]:
        return self._wanted - set(self.records)

    def remove(self) -> None:
        """Remove the hooks and stop recording (nothing is captured any more)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._active = False


def use_statistics(binding: RuleBinding, uses: Sequence[Use], labels: Optional[Tensor]) -> Statistics:
    """The binding's rule statistics of one forward pass: the batch sums of every use of the weight, added (a use of
    a block of rows contributes to those units only: :func:`block_statistics`)."""
    total: Optional[Statistics] = None
    dtype = binding.weight.dtype
    labels = labels if binding.rule.info.needs_labels else None
    for use in uses:
        if use.rows is not None:
            stats = block_statistics(binding, use, labels)
        else:
            view = binding.view.for_call(use.geometry, use.bias, use.exact)
            view.check_shapes(use.x, use.u)
            x, u = view.prepare(use.x.to(dtype), use.u.to(dtype))
            stats = binding.rule.statistics(view, x, u, labels)
        total = stats if total is None else {k: total[k].add_(v) for k, v in stats.items()}
    assert total is not None, "use_statistics needs at least one use"
    return total


def block_statistics(binding: RuleBinding, use: Use, labels: Optional[Tensor]) -> Statistics:
    """The rule's statistics of a use of the rows ``a .. b-1`` of a linear weight, in the shapes of the whole weight.

    The block is a layer of its own: the units ``a .. b-1`` (whole competition groups of the weight: the query, key
    or value block of a packed attention projection) and their input. Each statistic is placed where the whole
    weight's has those units: rows ``a:b`` of a per-unit statistic (first dimension: the units), the block
    ``[a:b, a:b]`` of a unit-by-unit one (zero across groups, as :meth:`~hebbian.rules.layers.LayerView.gram` is),
    and a statistic of no unit axis (e.g. the sample count) weighted by the block's share of the units ``(b - a) /
    M``, so that the query, key and value blocks of one batch count it once, as the packed projection does.
    """
    a, b = use.rows  # type: ignore[misc]
    full, weight = binding.view, binding.weight
    m, size = weight.shape[0], b - a
    if full.is_conv or a % full.units_per_group or size % full.units_per_group:
        raise RuntimeError(f"the weight of {binding.name!r} is used through its rows {a}..{b - 1}, which are not whole "
                           f"competition groups of {full.units_per_group} units; train it by backprop instead")
    view = LayerView(weight=weight[a:b], geometry=Geometry(), bias=use.bias,
                     competition_groups=size // full.units_per_group)
    view.layer, view.exact_drive = full.layer, use.exact
    dtype = weight.dtype
    view.check_shapes(use.x, use.u)
    x, u = view.prepare(use.x.to(dtype), use.u.to(dtype))
    stats = binding.rule.statistics(view, x, u, labels)
    empty = full.for_call(Geometry(), None, True)  # the whole weight's statistics' shapes, from no samples
    none = None if labels is None else labels[:0]
    shapes = {k: v.shape for k, v in binding.rule.statistics(empty, x[:0], x.new_zeros(0, m), none).items()}
    out: Statistics = {}
    for key, value in stats.items():
        shape = shapes[key]
        if value.shape == shape and (value.dim() == 0 or shape[0] != m):
            out[key] = value * (size / m)
        elif value.dim() >= 1 and shape[0] == m and tuple(value.shape) == (size,) + tuple(shape[1:]):
            out[key] = value.new_zeros(shape).index_copy_(0, torch.arange(a, b, device=value.device), value)
        elif tuple(shape[:2]) == (m, m) and tuple(value.shape[:2]) == (size, size):
            out[key] = value.new_zeros(shape)
            out[key][a:b, a:b] = value
        else:
            raise RuntimeError(f"rule {binding.rule.info.name!r}: its statistic {key!r} of shape "
                               f"{tuple(value.shape)} for rows {a}..{b - 1} does not fit the weight's {tuple(shape)}")
    return out
