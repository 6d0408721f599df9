"""What a block is: its parameters, static shape rule, parameter and MAC counts, torch builder.

Shapes never include the batch dimension: an image is ``(C, H, W)``, a token sequence ``(L, D)``.
Nothing here imports torch; builders import it when they are called.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from math import prod
from typing import Any

from archc.errors import ShapeError

__all__ = ["Param", "Block", "Args", "Shape", "Window", "pair", "conv_size", "need_rank", "common_size", "no_params",
           "no_macs", "REQUIRED"]

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

    def out_shapes(self, args: Args, ins: Sequence[Shape]) -> tuple[Shape, ...]:
        """Every output's shape: one for most blocks, several for split and chunk."""
        return self.outputs(args, ins) if self.outputs is not None else (self.shape(args, ins),)


def pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    return (int(v[0]), int(v[1]))


def common_size(sizes: Sequence[int]) -> int | None:
    """The size a column of operand sizes broadcasts to (torch stretches a 1), None on a conflict.
    Only a literal 1 stretches: a symbolic size (analyze.algebra) is compared with the others."""
    rest = [n for n in sizes if not (isinstance(n, int) and n == 1)]
    if any(n != rest[0] for n in rest[1:]):
        return None
    return rest[0] if rest else 1


def need_rank(shape: Shape, rank: int, what: str) -> None:
    if len(shape) != rank:
        names = {3: "(C, H, W)", 2: "(L, D)", 1: "(D,)"}
        raise ShapeError(f"{what} expects a {rank}-D input {names.get(rank, '')} but got {shape}",
                         hint="shapes here leave out the batch dimension")


def conv_size(size: int, kernel: int, stride: int, pad: int, dilation: int = 1,
              ceil_mode: bool = False, what: str = "window") -> int:
    """Output length of a convolution or pooling window along one axis (PyTorch's formula)."""
    span = dilation * (kernel - 1) + 1
    if size + 2 * pad < span:
        raise ShapeError(f"input size {size} (padded {size + 2 * pad}) is smaller than the {what} ({span})",
                         hint="use a larger input or a smaller kernel/stride earlier in the network")
    num = size + 2 * pad - span
    out = (-(-num // stride) if ceil_mode else num // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1  # PyTorch: the last window must start inside the input or left padding
    return out
