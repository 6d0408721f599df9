"""Memory from the graph alone: parameter bytes, the inference peak and the activations a training
step keeps for backward, per batch size and dtype.

The inference peak models storages as torch does in the compiled eval-mode forward: a node that
shares its first input's storage (inplace.py: views, pass-through ops, `inplace: true`, the adds
the model runs in place) allocates nothing; a storage is freed once no value that uses it is read
again. The caller holds the graph inputs for the whole forward, and the outputs live to its end.
While a node runs its inputs are still alive. The per-op facts are the blocks' own (blocks/README.md,
"Facts"); nothing here names an op. A reshape (flatten, reshape) copies when the strides of its input do not
allow a view, so strides are followed through the graph as torch lays them out: views move and drop
strides (each block's ``view`` rule), element-wise ops follow their inputs' order (TensorIterator), other
ops give contiguous outputs (channels-last in, channels-last out for 4-D maps). Max pooling also
returns int64 indices (tag ``indices``), alive while it runs. ``resized`` ops (unfold, fold) write into a
storage allocated like their input and resized, so it holds max(input, output) elements (ATen's
im2col/col2im). Alive while their node runs: what the block's ``scratch`` rule counts (rms_norm's squared
input, per-row mean and scale; instance_norm's statistics; masked_fill's and where's bool mask). Not counted:
what other kernels allocate inside themselves (attention's projections and scores, layer and group norm
statistics, im2col buffers).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from itertools import chain
from math import prod
from typing import Any

from archc import blocks as library
from archc.analyze.inplace import adds_in_place, keeps_output, storage_parents, storage_roots, tags_of
from archc.analyze.shapes import Analysis
from archc.blocks.base import Strides, ViewRule
from archc.ir import Node
from archc.ir.algebra import shape_key, smax
from archc.ir.refs import output_ref

__all__ = ["DTYPE_BYTES", "INDEX_BYTES", "memory"]

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
INDEX_BYTES = 8  # torch's int64 indices, whatever the dtype


def memory(analysis: Analysis, batch: int = 1, dtype: str = "fp32") -> dict[str, Any]:
    """Byte estimates; activations scale with ``batch``, parameters do not."""
    size = DTYPE_BYTES[dtype]
    nbytes = _sizer(analysis, batch * size)
    kept = 0  # a training step runs every node, train-only branches included
    tags_by_op = {op: tags_of(op) for op in {n.op for n in analysis.graph.nodes}}  # once per op, not per node
    for node in analysis.graph.nodes:
        info = analysis.info.get(node.path)
        tags = tags_by_op[node.op]
        if info is not None and "view" not in tags and not (node.args.get("inplace") and keeps_output(node)):
            kept += _stored(node, info, nbytes) if "resized" in tags else nbytes(info.shape) if not info.outputs \
                else sum(nbytes(s) for s in info.outputs)
    return {"batch": batch, "dtype": dtype, "param_bytes": analysis.params * size,
            "inference_peak_activation_bytes": _inference_peak(analysis, batch, nbytes, size),
            "training_activation_bytes": kept + sum(nbytes(s) for _, s in analysis.graph.inputs)}


def _sizer(analysis: Analysis, scale: int) -> Callable[[tuple[Any, ...]], Any]:
    """Bytes of a shape: its product times ``scale``; with symbolic sizes (products of expressions are costly, and
    deep stacks repeat a few shapes) each shape once, keyed by its canonical text."""
    if set(map(type, chain.from_iterable(analysis.shapes.values()))) <= {int}:
        return lambda shape: prod(shape) * scale  # plain sizes: cheaper than the key (the same bytes either way)
    per_shape: dict[tuple[Any, ...], Any] = {}

    def nbytes(shape: tuple[Any, ...]) -> Any:
        key = shape_key(shape)
        if key not in per_shape:
            per_shape[key] = prod(shape) * scale
        return per_shape[key]
    return nbytes


def _inference_peak(analysis: Analysis, batch: int, nbytes: Any, dtype_bytes: int) -> Any:
    """The most bytes live at once in the eval-mode forward (train-only nodes do not run; the fx
    code still passes their inputs to them, so those live until then)."""
    graph, skip, info_of, shapes = analysis.graph, analysis.train_only, analysis.info, analysis.shapes
    order = [n for n in graph.nodes if n.path in info_of]
    step = {n.path: i for i, n in enumerate(order)}
    shares, scratch = _eval_sharing(analysis, order, batch)
    by_op = {op: library.get(op) for op in {n.op for n in order}}
    rules = {op: block.scratch for op, block in by_op.items() if block.scratch is not None}  # temporaries
    for node in order:
        if node.op in rules and node.path not in skip:
            info = info_of[node.path]
            scratch[node.path] = scratch.get(node.path, 0) + rules[node.op](node.args, info.in_shapes, info.shape,
                                                                            batch, dtype_bytes)
    roots = storage_roots(graph, storage_parents(graph, lambda n: n.path in shares))
    end = len(order)
    last: dict[str, int] = {}  # each storage's last step (``end``: held by the caller)
    born: dict[str, list[str]] = defaultdict(list)  # the storages each step allocates
    for value, root in roots.items():
        if value not in shapes:
            continue
        base = output_ref(value)[0] if value.endswith("]") else value
        i = step.get(base, -1)
        if i >= 0 and base not in skip and root == value:
            born[base].append(value)
        prev = last.get(root)
        if prev is None or prev < i:  # max(), and -1 kept for a root no step allocates (as the order of `last`)
            last[root] = i
    for i, node in enumerate(order):  # step[node.path] is i
        for src in node.inputs:
            root = roots[src]
            if last.get(root, -1) < i:
                last[root] = i
    for held in (*(name for name, _ in graph.inputs), *graph.outputs):
        last[roots[held]] = end
    allocated = {v for values in born.values() for v in values}
    dying: dict[int, list[str]] = defaultdict(list)
    for root, i in last.items():
        dying[i].append(root)
    resized = {op for op, block in by_op.items() if "resized" in block.tags}  # unfold, fold: seldom any
    stored = {n.path: _stored(n, info_of[n.path], nbytes) for n in order if n.op in resized} if resized else {}

    def size(value: str) -> Any:
        return stored[value] if value in stored else nbytes(shapes[value])

    total = sum(nbytes(shape) for _, shape in graph.inputs)
    peaks = [total]
    for i, node in enumerate(order):
        before = total
        if node.path in born:
            made = born[node.path]
            total += size(made[0]) if len(made) == 1 else sum(size(v) for v in made)
        freed = [r for r in dying[i] if r in allocated] if i in dying else ()
        if len(node.inputs) > 2 and _folds(node) and node.path not in skip:
            peaks += _fold_peaks(node, analysis, roots, list(freed), before, total - before, nbytes)
        else:
            peaks.append(total + scratch[node.path] if node.path in scratch else total)
        if freed:
            total -= size(freed[0]) if len(freed) == 1 else sum(size(r) for r in freed)
    if set(map(type, peaks)) == {int}:
        return max(peaks)  # what smax gives plain sizes, without its per-entry work
    return smax(*peaks)  # with symbolic sizes, a max() of expressions


def _stored(node: Node, info: Any, nbytes: Any) -> Any:
    """A `resized` node's output storage (unfold, fold): max(input, output) elements (at::empty_like(input).resize_)."""
    return smax(nbytes(info.in_shapes[0]), nbytes(info.shape))


def _folds(node: Node) -> bool:
    """An add or mul of three or more inputs: the compiled model computes (a + b) + c (builder._fold)."""
    return len(node.inputs) > 2 and library.get(node.op).kind == "function" and "list_input" not in tags_of(node.op)


def _fold_peaks(node: Node, analysis: Analysis, roots: dict[str, str], freed: list[str], before: Any,
                out: Any, nbytes: Any) -> list[Any]:
    """The bytes live at each step of a fold: the previous partial result and the new one, less the
    inputs no later step reads (the generated code drops them as it goes)."""
    ins = node.inputs
    done = {r: max(max(p, 1) for p, s in enumerate(ins) if roots[s] == r)  # the step that last reads r
            for r in freed if any(roots[s] == r for s in ins)}
    parts = [nbytes(_broadcast_shape([analysis.shapes[s] for s in ins[:j + 1]])) for j in range(1, len(ins) - 1)]
    peaks = []
    for j in range(1, len(ins)):
        live = before - sum(nbytes(analysis.shapes[r]) for r, k in done.items() if k < j)
        peaks.append(live + (parts[j - 2] if j >= 2 else 0) + (parts[j - 1] if j < len(ins) - 1 else out))
    return peaks


def _eval_sharing(analysis: Analysis, order: Sequence[Node], batch: int) -> tuple[set[str], dict[str, Any]]:
    """The nodes whose output shares their first input's storage in the eval forward, and the
    transient bytes of each node that has some (max pooling's int64 indices)."""
    shapes, skip = analysis.shapes, analysis.train_only
    adds = adds_in_place(analysis.graph, shapes)
    tags_by_op = {op: tags_of(op) for op in {n.op for n in order}}  # once per op, not per node
    layouts: dict[str, Strides] = {}  # only the values that are not contiguous (few)
    shares: set[str] = set()
    scratch: dict[str, Any] = {}
    for node in order:
        if node.path in skip:
            continue
        info = analysis.info[node.path]
        tags = tags_by_op[node.op]
        if "indices" in tags:
            scratch[node.path] = prod(info.shape) * batch * INDEX_BYTES
        first = node.inputs[0] if node.inputs else None
        if first is not None and (node.path in adds or node.args.get("inplace") or (
                "pass_through" in tags and shape_key(shapes[first]) == shape_key(info.shape))):
            shares.add(node.path)
            if first in layouts:
                layouts[node.path] = layouts[first]
            continue
        if "view" not in tags and not (layouts and any(s in layouts for s in node.inputs)):
            continue  # contiguous inputs, contiguous output
        ins = [((batch, *shapes[s]), layouts.get(s)) for s in node.inputs]
        outs = [(batch, *s) for s in (info.outputs or (info.shape,))]
        if "view" in tags:
            views = _view(node, library.get(node.op).view, ins[0], outs)
            if views is not None:
                shares.add(node.path)
            result = views if views is not None else [None] * len(outs)
        else:
            result = [_pointwise(outs[0], ins) if "elementwise" in tags else _format_kept(ins, out) for out in outs]
        for k, (out, layout) in enumerate(zip(outs, result)):
            if layout is not None and not _is_contiguous(out, layout):
                layouts[f"{node.path}[{k}]" if info.outputs else node.path] = layout
    return shares, scratch


def _broadcast_shape(shapes: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The shape operands broadcast to (analysis checked they do): per dim, a size that is not 1."""
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    return tuple(next((n for n in col if not _one(n)), 1) for col in zip(*padded))


# -- sizes that may be expressions: equal by their canonical text, ordered as at large sizes --------
_PROBE: dict[str, int] = defaultdict(lambda: 1 << 20)


def _eq(a: Any, b: Any) -> bool:
    if type(a) is int and type(b) is int:
        return a == b
    return shape_key((a,)) == shape_key((b,))


def _num(a: Any) -> int:
    return a if isinstance(a, int) else a.value(_PROBE)


def _one(a: Any) -> bool:
    return isinstance(a, int) and a == 1


# -- strides, as torch computes them -----------------------------------------------------------------
def _contiguous(sizes: Sequence[Any]) -> Strides:
    out: list[Any] = [1] * len(sizes)
    for d in range(len(sizes) - 2, -1, -1):
        out[d] = out[d + 1] * (sizes[d + 1] if not _one(sizes[d + 1]) else 1)
    return tuple(out)


def _strides(sizes: Sequence[Any], layout: Strides | None) -> Strides:
    return layout if layout is not None else _contiguous(sizes)


def _is_contiguous(sizes: Sequence[Any], strides: Strides) -> bool:
    """torch's is_contiguous(): size-1 dims have any stride."""
    expected: Any = 1
    for n, s in zip(reversed(sizes), reversed(strides)):
        if not _one(n):
            if not _eq(s, expected):
                return False
            expected = expected * n
    return True


def _view_strides(sizes: Sequence[Any], strides: Strides, new: Sequence[Any]) -> Strides | None:
    """The strides of ``view(new)``, None where torch must copy (ATen's computeStride)."""
    if not sizes:
        return tuple(1 for _ in new)
    out: list[Any] = [1] * len(new)
    view_d = len(new) - 1
    base, tensor_numel, view_numel = strides[-1], 1, 1
    for d in range(len(sizes) - 1, -1, -1):
        tensor_numel = tensor_numel * sizes[d]
        if d == 0 or (not _one(sizes[d - 1]) and not _eq(strides[d - 1], tensor_numel * base)):
            while view_d >= 0 and (_num(view_numel) < _num(tensor_numel) or _one(new[view_d])):
                out[view_d] = view_numel * base
                view_numel = view_numel * new[view_d]
                view_d -= 1
            if not _eq(view_numel, tensor_numel):
                return None
            if d > 0:
                base, tensor_numel, view_numel = strides[d - 1], 1, 1
    return tuple(out) if view_d == -1 else None


def _view(node: Node, rule: ViewRule | None, src: tuple[tuple[Any, ...], Strides | None],
          outs: list[tuple[Any, ...]]) -> list[Strides | None] | None:
    """The strides of each output of a view op (its block's `view` rule), None when it copies (a reshape
    whose strides torch cannot view). Without a rule: the input's strides where the shape is kept."""
    sizes, strides = src[0], _strides(*src)
    if rule is None:
        if shape_key(sizes) == shape_key(outs[0]):
            return [src[1]]  # identity, reshape_as to the same shape, a user's view op
        kept = None
    else:
        kept = rule(node.args, strides, sizes, outs[0])
    if kept is not None:
        return [kept] * len(outs)
    view = _view_strides(sizes, strides, outs[0])
    return None if view is None else [view]


def _pointwise(out: tuple[Any, ...], ins: list[tuple[tuple[Any, ...], Strides | None]]) -> Strides | None:
    """The output strides of an element-wise op (ATen's TensorIterator: the inputs' order, dense)."""
    rank = len(out)
    same = all(shape_key(s) == shape_key(out) for s, _ in ins)
    if same and all(layout is None for _, layout in ins):
        return None
    full = [_strides(s, layout) for s, layout in ins]
    if same and rank == 4 and all(_channels_last_like(s, st) and _is_channels_last(s, st) for (s, _), st in
                                  zip(ins, full)):
        return _channels_last(out)
    if same and all(_dense(s, st) for (s, _), st in zip(ins, full)) and len({shape_key(st) for st in full}) == 1:
        return full[-1]
    ops = [_broadcast(s, st, out) for (s, _), st in zip(ins, full)]
    perm = list(range(rank - 1, -1, -1))  # fastest-moving dim first

    def should_swap(d0: int, d1: int) -> int:
        for st in ops:
            s0, s1 = _num(st[d0]), _num(st[d1])
            if s0 == 0 or s1 == 0:
                continue
            if s0 != s1:
                return -1 if s0 < s1 else 1
            if _num(out[d0]) > _num(out[d1]):
                return 1
        return 0

    for i in range(1, rank):
        d1 = i
        for d0 in range(i - 1, -1, -1):
            c = should_swap(perm[d0], perm[d1])
            if c > 0:
                perm[d0], perm[d1] = perm[d1], perm[d0]
                d1 = d0
            elif c < 0:
                break
    if perm == list(range(rank - 1, -1, -1)):
        return None
    strides: list[Any] = [0] * rank
    step: Any = 1
    for d in perm:
        strides[d] = step
        step = step * out[d]
    return tuple(strides)


def _broadcast(sizes: Sequence[Any], strides: Strides, out: Sequence[Any]) -> Strides:
    """An operand's strides over the output's dims: 0 where it is broadcast."""
    pad = len(out) - len(sizes)
    return tuple(0 if d < pad or (_one(sizes[d - pad]) and not _one(out[d])) else strides[d - pad]
                 for d in range(len(out)))


def _dense(sizes: Sequence[Any], strides: Strides) -> bool:
    """torch's is_non_overlapping_and_dense()."""
    dims = sorted((d for d in range(len(sizes)) if not _one(sizes[d])), key=lambda d: _num(strides[d]))
    expected: Any = 1
    for d in dims:
        if not _eq(strides[d], expected):
            return False
        expected = expected * sizes[d]
    return True


def _channels_last(sizes: Sequence[Any]) -> Strides:
    n, c, h, w = sizes
    return (c * h * w, 1, w * c, c)


def _is_channels_last(sizes: Sequence[Any], strides: Strides) -> bool:
    """is_contiguous(memory_format=torch.channels_last)."""
    expected: Any = 1
    for d in (1, 3, 2, 0):
        if not _one(sizes[d]):
            if not _eq(strides[d], expected):
                return False
            expected = expected * sizes[d]
    return True


def _channels_last_like(sizes: Sequence[Any], strides: Strides) -> bool:
    """c10's is_channels_last_strides_2d: what suggest_memory_format() reads."""
    if len(sizes) != 4 or _num(strides[1]) == 0:
        return False
    low = 0
    for d in (1, 3, 2, 0):
        s = _num(strides[d])
        if s < low or (d == 0 and low == _num(strides[1])):
            return False
        low = s * (_num(sizes[d]) if not _one(sizes[d]) else 1)
    return True


def _format_kept(ins: list[tuple[tuple[Any, ...], Strides | None]], out: tuple[Any, ...]) -> Strides | None:
    """Other ops: contiguous, except a 4-D map from channels-last 4-D maps stays channels-last."""
    maps = [(s, layout) for s, layout in ins if len(s) == 4]
    if len(out) == 4 and maps and len(maps) == len(ins) and all(
            layout is not None and _channels_last_like(s, layout) for s, layout in maps):
        return _channels_last(out)
    return None
