"""What a block is: its parameters, static shape rule, parameter and MAC counts, torch builder.

Shapes never include the batch dimension: an image is ``(C, H, W)``, a token sequence ``(L, D)``.
Nothing here imports torch; builders import it when they are called.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from math import prod
from typing import Any

from archc.errors import ShapeError

__all__ = ["Param", "Block", "Args", "Shape", "Window", "pair", "conv_size", "only_sizes", "need_rank", "common_size",
           "no_params", "no_macs", "REQUIRED"]

Shape = tuple[int, ...]
Args = Mapping[str, Any]
REQUIRED: Any = object()

_KINDS: dict[str, Callable[[Any], bool]] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "int2": lambda v: _KINDS["int"](v) or (isinstance(v, list) and len(v) == 2 and all(map(_KINDS["int"], v))),
    "ints": lambda v: isinstance(v, list) and all(map(_KINDS["int"], v)),
    "int|ints": lambda v: _KINDS["int"](v) or _KINDS["ints"](v),
    "float2|none": lambda v: v is None or _KINDS["float"](v) or (
        isinstance(v, list) and len(v) == 2 and all(map(_KINDS["float"], v))),
    "int2|none": lambda v: v is None or _KINDS["int2"](v),
    "float|none": lambda v: v is None or _KINDS["float"](v),
}
_EXPECT = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
           "int2": "an integer or a list of 2 integers", "ints": "a list of integers",
           "int|ints": "an integer or a list of integers",
           "float2|none": "a number, a list of 2 numbers or null",
           "int2|none": "an integer, a list of 2 integers or null", "float|none": "a number or null"}


@dataclass(frozen=True)
class Param:
    """One argument of a block: its kind, default, allowed values and lower bound."""

    kind: str
    default: Any = REQUIRED
    choices: tuple[Any, ...] = ()
    min: float | None = None
    doc: str = ""
    max: float | None = None

    def check(self, value: Any) -> str | None:
        """Return what was expected if ``value`` does not fit, else None."""
        if value in self.choices:
            return None
        if not _KINDS[self.kind](value):
            alts = " or ".join(repr(c) for c in self.choices)
            return _EXPECT[self.kind] + (f" or {alts}" if alts else "")
        if self.kind == "str" and self.choices:  # a string argument with choices takes only those
            return "one of " + ", ".join(repr(c) for c in self.choices)
        nums = value if isinstance(value, list) else [value]
        if self.min is not None and any(isinstance(n, (int, float)) and n < self.min for n in nums):
            return f"a value >= {self.min:g}"
        if self.max is not None and any(isinstance(n, (int, float)) and n > self.max for n in nums):
            return f"a value <= {self.max:g}"
        return None


@dataclass(frozen=True)
class Window:
    """How a block moves the receptive field along a spatial axis, in input pixels.

    ``span`` is the kernel's extent (dilation included), ``stride`` the output step (a fraction
    below 1 for upsampling) and ``padding`` the left padding.
    """

    span: Fraction = Fraction(1)
    stride: Fraction = Fraction(1)
    padding: int = 0


PASS = Window()
WindowRule = Callable[[Any, Sequence[Shape], Shape], "Window | None"]  # None: every output sees everything

# -- facts analysis reads from a block (blocks/README.md, "Facts") ---------------------------------------------
Strides = tuple[Any, ...]  # per dim, the batch first; ints, or expressions on symbolic sizes
# a view's output strides from (args, input strides, input sizes, output sizes), batch first; None: a reshape
# (torch's view rule decides, copying where the strides do not allow a view)
ViewRule = Callable[[Any, Strides, Shape, Shape], "Strides | None"]
Dim = tuple[tuple[str, int], ...]  # the input axes one dim holds, each with its size: "h", "w" or "c" (anything else)
Layout = tuple[Dim, ...]  # per batch-less dim
LayoutRule = Callable[[Any, Layout, Shape], "Layout | None"]  # (args, input layout, output shape); None: lost
MixRule = Callable[[Any, int], tuple[int, ...]]  # (args, rank) -> the batch-less dims the op combines
ScratchRule = Callable[[Any, Sequence[Shape], Shape, int, int], Any]  # (args, ins, out, batch, dtype bytes) -> bytes


def positional(dim: Dim) -> bool:
    """Whether a dim of a layout holds a row or column axis of a map."""
    return any(axis != "c" for axis, _ in dim)


def no_params(args: Args, ins: Sequence[Shape]) -> int:
    return 0


def no_macs(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    return 0


def elementwise(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    return prod(out)


@dataclass(frozen=True)
class Block:
    """A primitive of the library.

    ``kind`` says how the compiled graph uses it: ``module`` (``build`` returns an nn.Module that
    is called), ``function`` (``function`` returns a torch callable and its keyword arguments) or
    ``parameter`` (``build`` returns an nn.Parameter stored under the node's name, combined with
    the input by ``function``).
    """

    name: str
    doc: str
    params: Mapping[str, Param]
    shape: Callable[[Args, Sequence[Shape]], Shape]
    kind: str = "module"
    build: Callable[[Args, Sequence[Shape]], Any] | None = None
    function: Callable[[Args], tuple[Callable[..., Any], dict[str, Any]]] | None = None
    count_params: Callable[[Args, Sequence[Shape]], int] = no_params
    macs: Callable[[Args, Sequence[Shape], Shape], int] = no_macs
    other_ops: Callable[[Args, Sequence[Shape], Shape], int] = no_macs
    arity: tuple[int, int | None] = (1, 1)
    window: WindowRule | None = None  # receptive-field rule; None: spatially pointwise
    category: str = "other"
    # several outputs (split, chunk): a shape per output, read as NAME[0], NAME[1], ...; then
    # `shape` gives the first output's shape and the MAC/window rules receive it as `out`
    outputs: Callable[[Args, Sequence[Shape]], tuple[Shape, ...]] | None = None
    tags: frozenset[str] = field(default_factory=frozenset)  # "inplace", "list_input", "alias" (see README)
    # facts analysis reads (README "Facts"): a view's strides, how a layout op moves positions, the dims a
    # token op mixes, what it allocates beside its output while it runs
    view: ViewRule | None = None  # with tag "view"; None: the input's strides if the shape is kept, else a reshape
    layout: LayoutRule | None = None  # each output element is one input element: where positions go
    mixes: MixRule | None = None  # keeps positions apart except along these dims (tag "projects": new features)
    scratch: ScratchRule | None = None  # temporaries alive while it runs (bytes), beside its output

    def out_shapes(self, args: Args, ins: Sequence[Shape]) -> tuple[Shape, ...]:
        """Every output's shape: one for most blocks, several for split and chunk."""
        return self.outputs(args, ins) if self.outputs is not None else (self.shape(args, ins),)


def pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    return (int(v[0]), int(v[1]))


def common_size(sizes: Sequence[int]) -> int | None:
    """The size a column of operand sizes broadcasts to (torch stretches a 1), None on a conflict.
    Only a literal 1 stretches: a symbolic size (archc.ir.algebra) is compared with the others."""
    rest = [n for n in sizes if not (isinstance(n, int) and n == 1)]
    if any(n != rest[0] for n in rest[1:]):
        return None
    return rest[0] if rest else 1


def need_rank(shape: Shape, rank: int, what: str) -> None:
    if len(shape) != rank:
        names = {3: "(C, H, W)", 2: "(L, D)", 1: "(D,)"}
        raise ShapeError(f"{what} expects a {rank}-D input {names.get(rank, '')} but got {shape}",
                         hint="shapes here leave out the batch dimension")


def channels_last(shape: Shape, what: str) -> tuple[Any, Any, Any]:
    """(H, W, C) of a channels-last map (Swin, MaxViT), or a located hint to permute a (C, H, W) one."""
    if len(shape) != 3:
        raise ShapeError(f"{what} expects a channels-last map (H, W, C) but got {shape}",
                         hint="permute a (C, H, W) map with {op: permute, dims: [0, 2, 3, 1]}; "
                              "shapes here leave out the batch dimension")
    return shape[0], shape[1], shape[2]


def conv_size(size: int, kernel: int, stride: int, pad: int, dilation: int = 1, ceil_mode: bool = False,
              what: str = "window", pad_right: int | None = None, taps: bool = True, axis: str = "") -> int:
    """Output length of a convolution or pooling window along one axis (PyTorch's formula).

    Refuses what torch refuses (no output at all) and, with ``taps`` (zero padding), an output
    whose window reads no input element: torch computes it from the padding alone (-inf for max
    pooling, whose backward then writes out of bounds). ``pad_right`` defaults to ``pad`` (`same`
    puts one more on the right); it is at most the kernel's reach whenever ``pad`` is.
    """
    right = pad if pad_right is None else pad_right
    span = dilation * (kernel - 1) + 1
    num = size + pad + right - span
    out = (-(-num // stride) if ceil_mode else num // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1  # PyTorch: the last window must start inside the input or left padding
    if (out < 1) if ceil_mode else (num < 0):  # ceil mode keeps a window larger than the input
        raise ShapeError(f"input size {size} (padded {size + pad + right}) is smaller than the {what} ({span})"
                         + (f" by at least the stride ({stride}), even in ceil mode" if ceil_mode else ""),
                         hint="use a larger input or a smaller kernel/stride earlier in the network")
    if taps:
        _check_taps(size, kernel, stride, pad, right, dilation, out, ceil_mode, what, axis)
    return out


def _check_taps(size: Any, kernel: int, stride: int, left: int, right: int, dilation: int, out: Any,
                ceil_mode: bool, what: str, axis: str) -> None:
    """Refuse an output window with no tap inside the input (see conv_size)."""
    reach = dilation * (kernel - 1)
    if left > reach:  # the first window lies wholly in the left padding, at every size
        raise _no_taps(size, kernel, stride, left, dilation, 0, what, axis)
    if isinstance(size, int):
        o = _empty_window(size, kernel, stride, left, dilation, out)
        if o is not None:
            raise _no_taps(size, kernel, stride, left, dilation, o, what, axis)
        return
    if right > reach and not ceil_mode:  # not a torch layout (its pads are symmetric or `same`): sample it
        operator.index(size)  # raises NotSymbolic
    if kernel > 1 and dilation > 1 and left > 0:  # taps `dilation` apart can straddle an input smaller than that

        def fits(v: int) -> bool:
            try:
                conv_size(v, kernel, stride, left, dilation, ceil_mode, what, right, True, axis)
            except ShapeError:
                return False
            return True

        only_sizes(size, fits, dilation, why=lambda: _no_taps_below(size, what, axis))


def _empty_window(n: int, kernel: int, stride: int, left: int, dilation: int, out: int) -> int | None:
    """The first output (of ``out``) whose window has no tap inside an input of size ``n``, or None.
    The first tap of output o is at a = o·stride - left; with a >= -reach (checked first) and a < n,
    the window misses the input iff a mod dilation >= n, counted in O(log) by a floor sum."""
    past = -(-(n + left) // stride)  # the first output whose first tap lies past the input
    limit = min(out, past)
    if kernel > 1 and dilation > n and left > 0:

        def hits(t: int) -> int:  # outputs o < t whose window reads the input
            return _floor_sum(t, dilation, stride, -left) - _floor_sum(t, dilation, stride, -left - n)

        if hits(limit) < limit:
            lo, hi = 1, limit  # the smallest t with hits(t) < t (hits(t) - t never increases)
            while lo < hi:
                mid = (lo + hi) // 2
                lo, hi = (mid + 1, hi) if hits(mid) == mid else (lo, mid)
            return lo - 1
    return past if past < out else None


def _floor_sum(n: int, m: int, a: int, b: int) -> int:
    """sum((a*i + b) // m for i in range(n)) in O(log m) steps (m > 0; the classic Euclid-like sum)."""
    total = 0
    while True:
        if a >= m or a < 0:
            q, a = divmod(a, m)
            total += q * (n * (n - 1) // 2)
        if b >= m or b < 0:
            q, b = divmod(b, m)
            total += q * n
        y = a * n + b
        if y < m:
            return total
        n, b, m, a = y // m, y % m, a, m


def _no_taps(size: int, kernel: int, stride: int, left: int, dilation: int, o: int, what: str,
             axis: str) -> ShapeError:
    first = o * stride - left
    taps = [first + j * dilation for j in range(min(kernel, 4))]
    listed = ", ".join(map(str, taps)) + (", ..." if kernel > 4 else "")
    where = f" along {axis}" if axis else ""
    return ShapeError(f"output {o}{where} reads no input: its {what} taps ({listed}) all fall in the padding "
                      f"around an input of size {size}", hint=_TAPS_HINT)


def _no_taps_below(size: Any, what: str, axis: str) -> ShapeError:
    where = f" along {axis}" if axis else ""
    return ShapeError(f"at input size {size}{where} some output's {what} reads no input (only padding)",
                      hint=_TAPS_HINT)


_TAPS_HINT = ("every output needs an input element under its window (torch computes the rest from padding alone: "
              "-inf for max pooling, whose backward corrupts memory): use a smaller padding or dilation, or a "
              "larger input")
_SCAN_SIZES = 4096  # sizes only_sizes checks one by one; past that a symbolic size is sampled instead


def only_sizes(size: Any, fits: Callable[[int], bool], upto: int, beyond: bool = True,
               why: Callable[[], ShapeError] | None = None) -> None:
    """Hold a symbolic ``size`` to the sizes where ``fits`` holds, given that every size >= ``upto``
    does iff ``beyond``. The comparisons made here become the analysis's guards (archc.ir.algebra):
    ``size >= n0`` and ``size != v`` for each failing v above n0, or ``size == v`` for a single
    valid size; any other pattern (or ``upto`` past _SCAN_SIZES) samples the node instead."""
    def fail() -> ShapeError:
        return why() if why else ShapeError(f"input size {size} does not fit this rule")

    if upto > _SCAN_SIZES:  # too many sizes to check one by one: the analysis samples this node instead
        operator.index(size)  # raises NotSymbolic (without a comparison, which would be left as a guard)
    good = [v for v in range(1, upto) if fits(v)]
    if beyond:
        first = good[0] if good else upto
        if size < first:
            raise fail()
        for v in sorted(set(range(first + 1, upto)) - set(good)):
            if size == v:
                raise fail()
        return
    if len(good) == 1:
        if size == good[0]:
            return
        raise fail()
    if not good:
        raise fail()
    operator.index(size)
