"""Issue 26's op vocabulary: learned tensors as nodes (`parameter`), indexing (slice, index_select, gather,
masked_fill, where), expand / repeat_tensor / tile, unfold / fold, prelu, elu, mish, softplus, the tanh GELU,
instance_norm, rms_norm, pow, minimum and maximum.

For each op: archc's static shapes, parameter count and MACs equal the module built on the CPU (MACs: torch's
FlopCounterMode), its outputs equal the torch functional reference on random inputs, and a bad argument is a
located error. Spatial ops are also checked on symbolic sizes (formulas, and the valid set against concrete
analyses on a grid), receptive fields follow their windows, and the examples written with them
(specs/examples/grn, mobilevit_unfold, relative_position_bias) equal reference PyTorch modules.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import archc
from archc import blocks as library
from archc.cli import main
from archc.errors import ArchcError
from archc.lsp.document import op_args, op_names
from tests.helpers import observed_shapes, twin_mismatch

EXAMPLES = Path(__file__).resolve().parent.parent / "specs" / "examples"
NEW_OPS = ("parameter", "slice", "index_select", "gather", "masked_fill", "where", "expand", "repeat_tensor", "tile",
           "unfold", "fold", "prelu", "elu", "mish", "softplus", "instance_norm", "rms_norm", "pow", "minimum",
           "maximum")

Inputs = list[torch.Tensor]
Ref = Callable[[Inputs, nn.Module], torch.Tensor]


def _write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _spec(inputs: dict[str, list[int]], nodes: str) -> str:
    shape = ", ".join(f"{k}: {v}" for k, v in inputs.items())
    return f"archc: 1\nname: t\ninput: {{{shape}}}\nnodes:\n" + "".join(f"  {line}\n" for line in nodes.splitlines())


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _x(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(2, *shape, generator=_gen(seed))


def _idx(high: int, *shape: int, seed: int = 1) -> torch.Tensor:
    """Valid indices, as archc's values are: integers held in a floating tensor."""
    return torch.randint(0, high, (2, *shape), generator=_gen(seed)).float()


def _mask(*shape: int, seed: int = 2) -> torch.Tensor:
    return (torch.randn(2, *shape, generator=_gen(seed)) > 0).float() * torch.randn(2, *shape, generator=_gen(seed))


def _p(model: nn.Module, path: str = "n") -> torch.Tensor:
    return model.get_parameter(path)


# (id, inputs {name: shape}, node lines (the last is the output), input tensors, reference)
CASES: list[tuple[str, dict[str, list[int]], str, Callable[[], Inputs], Ref]] = [
    ("parameter_none", {"x": [4, 6]}, "n: {op: parameter, shape: [3, 5], init: normal, std: 0.5}",
     lambda: [_x(4, 6)], lambda i, m: _p(m).expand(2, 3, 5)),
    ("parameter_add", {"x": [4, 6, 5]},
     "n: {op: parameter, shape: [4, 1, 5], combine: add, init: uniform, a: -1, b: 1}",
     lambda: [_x(4, 6, 5)], lambda i, m: i[0] + _p(m)),
    ("parameter_mul_flat", {"x": [4, 6, 5]}, "n: {op: parameter, shape: [4, 1, 1], combine: mul, batch_dim: false, "
     "init: trunc_normal, std: 0.3}", lambda: [_x(4, 6, 5)], lambda i, m: i[0] * _p(m)),
    ("parameter_prepend", {"x": [7, 8]}, "n: {op: parameter, shape: [2, 8], combine: prepend, init: normal}",
     lambda: [_x(7, 8)], lambda i, m: torch.cat([_p(m).expand(2, -1, -1), i[0]], 1)),
    ("parameter_append", {"x": [4, 6, 5]}, "n: {op: parameter, shape: [4, 6, 2], combine: append, dim: -1, "
     "init: normal}", lambda: [_x(4, 6, 5)], lambda i, m: torch.cat([i[0], _p(m).expand(2, -1, -1, -1)], -1)),
    ("slice", {"x": [4, 9, 7]}, "n: {op: slice, dim: 2, start: 1, end: -1, step: 3}",
     lambda: [_x(4, 9, 7)], lambda i, m: i[0][:, :, 1:-1:3]),
    ("slice_open", {"x": [4, 9, 7]}, "n: {op: slice, dim: -1, start: -4}", lambda: [_x(4, 9, 7)],
     lambda i, m: i[0][..., -4:]),
    ("slice_clamped", {"x": [5, 3]}, "n: {op: slice, dim: 1, start: -20, end: 20, step: 2}", lambda: [_x(5, 3)],
     lambda i, m: i[0][:, ::2]),
    ("index_select_list", {"x": [4, 6, 5]}, "n: {op: index_select, dim: 1, index: [3, 0, 0, 2]}",
     lambda: [_x(4, 6, 5)], lambda i, m: torch.index_select(i[0], 1, torch.tensor([3, 0, 0, 2]))),
    ("index_select_input", {"x": [4, 6, 5], "i": [7]}, "n: {op: index_select, in: [x, i], dim: -1}",
     lambda: [_x(4, 6, 5), _idx(5, 7)],
     lambda i, m: torch.stack([i[0][b].index_select(-1, i[1][b].long()) for b in range(2)])),
    ("gather", {"x": [4, 6, 5], "i": [4, 3, 5]}, "n: {op: gather, in: [x, i], dim: 2}",
     lambda: [_x(4, 6, 5), _idx(6, 4, 3, 5)], lambda i, m: torch.gather(i[0], 2, i[1].long())),
    ("masked_fill", {"x": [4, 6, 5], "m": [1, 6, 5]}, "n: {op: masked_fill, in: [x, m], value: -2.5}",
     lambda: [_x(4, 6, 5), _mask(1, 6, 5)], lambda i, m: i[0].masked_fill(i[1] != 0, -2.5)),
    ("where_three", {"c": [4, 1, 5], "x": [4, 6, 5], "y": [1, 6, 5]}, "n: {op: where, in: [c, x, y]}",
     lambda: [_mask(4, 1, 5), _x(4, 6, 5), _x(1, 6, 5, seed=3)], lambda i, m: torch.where(i[0] != 0, i[1], i[2])),
    ("where_other", {"c": [4, 6, 5], "x": [4, 6, 5]}, "n: {op: where, in: [c, x], other: 0.5}",
     lambda: [_mask(4, 6, 5), _x(4, 6, 5)], lambda i, m: torch.where(i[0] != 0, i[1], 0.5)),
    ("expand", {"x": [4, 1, 5]}, "n: {op: expand, sizes: [-1, 6, 5]}", lambda: [_x(4, 1, 5)],
     lambda i, m: i[0].expand(-1, -1, 6, -1)),
    ("repeat_tensor", {"x": [4, 3, 5]}, "n: {op: repeat_tensor, repeats: [2, 1, 3]}", lambda: [_x(4, 3, 5)],
     lambda i, m: i[0].repeat(1, 2, 1, 3)),
    ("tile", {"x": [4, 3, 5]}, "n: {op: tile, dims: [2, 3]}", lambda: [_x(4, 3, 5)],
     lambda i, m: torch.tile(i[0], (1, 1, 2, 3))),
    ("unfold", {"x": [3, 7, 8]}, "n: {op: unfold, kernel_size: [2, 3], stride: 2, padding: 1, dilation: [1, 2]}",
     lambda: [_x(3, 7, 8)], lambda i, m: nn.Unfold((2, 3), (1, 2), 1, 2)(i[0])),
    ("fold", {"x": [12, 12]}, "n: {op: fold, output_size: [5, 6], kernel_size: 2, stride: [1, 2]}",
     lambda: [_x(12, 12)], lambda i, m: nn.Fold((5, 6), 2, 1, 0, (1, 2))(i[0])),
    ("fold_to_input", {"x": [3, 6, 8]}, "u: {op: unfold, in: x, kernel_size: 3, stride: 2, padding: 1}\n"
     "n: {op: fold, in: [u, x], kernel_size: 3, stride: 2, padding: 1}", lambda: [_x(3, 6, 8)],
     lambda i, m: nn.Fold((6, 8), 3, 1, 1, 2)(nn.Unfold(3, 1, 1, 2)(i[0]))),
    ("prelu_channels", {"x": [4, 6, 5]}, "n: {op: prelu, num_parameters: channels, init: 0.1}",
     lambda: [_x(4, 6, 5)], lambda i, m: F.prelu(i[0], _p(m, "n.weight"))),
    ("prelu_one", {"x": [6]}, "n: {op: prelu}", lambda: [_x(6)], lambda i, m: F.prelu(i[0], _p(m, "n.weight"))),
    ("elu", {"x": [4, 6]}, "n: {op: elu, alpha: 0.5}", lambda: [_x(4, 6)], lambda i, m: F.elu(i[0], 0.5)),
    ("mish", {"x": [4, 6]}, "n: mish", lambda: [_x(4, 6)], lambda i, m: F.mish(i[0])),
    ("softplus", {"x": [4, 6]}, "n: {op: softplus, beta: 2, threshold: 1}", lambda: [_x(4, 6)],
     lambda i, m: F.softplus(i[0], 2, 1)),
    ("gelu_tanh", {"x": [4, 6]}, "n: {op: gelu, approximate: tanh}", lambda: [_x(4, 6)],
     lambda i, m: F.gelu(i[0], approximate="tanh")),
    ("instance_norm", {"x": [4, 6, 5]}, "n: {op: instance_norm, affine: true}", lambda: [_x(4, 6, 5)],
     lambda i, m: F.instance_norm(i[0], weight=_p(m, "n.weight"), bias=_p(m, "n.bias"))),
    ("instance_norm_1d", {"x": [4, 6]}, "n: {op: instance_norm, eps: 0.1}", lambda: [_x(4, 6)],
     lambda i, m: F.instance_norm(i[0], eps=0.1)),
    ("rms_norm", {"x": [4, 6, 5]}, "n: {op: rms_norm, dims: 2, eps: 1.0e-3}", lambda: [_x(4, 6, 5)],
     lambda i, m: F.rms_norm(i[0], (6, 5), _p(m, "n.weight"), 1e-3)),
    ("pow_constant", {"x": [4, 6]}, "n: {op: pow, exponent: 3}", lambda: [_x(4, 6)], lambda i, m: i[0] ** 3),
    ("pow_inputs", {"x": [4, 6], "e": [1, 6]}, "a: {op: abs, in: x}\nn: {op: pow, in: [a, e]}",
     lambda: [_x(4, 6), _x(1, 6, seed=3)], lambda i, m: torch.pow(i[0].abs(), i[1])),
    ("minimum", {"x": [4, 6], "y": [4, 1], "z": [1, 6]}, "n: {op: minimum, in: [x, y, z]}",
     lambda: [_x(4, 6), _x(4, 1, seed=3), _x(1, 6, seed=4)],
     lambda i, m: torch.minimum(torch.minimum(i[0], i[1]), i[2])),
    ("maximum", {"x": [4, 6], "y": [4, 6]}, "n: {op: maximum, in: [x, y]}", lambda: [_x(4, 6), _x(4, 6, seed=3)],
     lambda i, m: torch.maximum(i[0], i[1])),
]


def _randomise_(model: nn.Module) -> None:
    with torch.no_grad():
        gen = _gen(7)
        for t in model.parameters():
            t.copy_(torch.randn(t.shape, generator=gen) * 0.5 + 0.25)


@pytest.mark.parametrize(("name", "inputs", "nodes", "make", "ref"), CASES, ids=[c[0] for c in CASES])
def test_static_figures_and_outputs_equal_torch(tmp_path: Path, name: str, inputs: dict[str, list[int]], nodes: str,
                                                 make: Callable[[], Inputs], ref: Ref) -> None:
    path = _write(tmp_path, _spec(inputs, nodes))
    a = archc.check(path)
    model = archc.compile(path).eval()
    if "parameter" in name or "prelu" in name or "norm" in name:
        _randomise_(model)
    xs = make()
    with FlopCounterMode(display=False) as flops, torch.no_grad():
        out = model(*xs)
    assert a.params == sum(p.numel() for p in model.parameters())
    assert a.macs == flops.get_total_flops() // 2
    assert (tuple(out.shape[1:]),) == (a.shapes["n"],)
    with torch.no_grad():
        want = ref(xs, model)
    assert out.shape == want.shape and torch.allclose(out, want, rtol=1e-5, atol=1e-6), (out - want).abs().max()
    meta = archc.compile(path, device="meta").eval()
    seen = observed_shapes(meta, *(torch.empty(2, *s, device="meta") for s in inputs.values()))
    assert {p: seen[p] for p in a.info} == {p: i.shape for p, i in a.info.items()}


def test_every_new_op_is_covered_listed_and_completed(capsys: pytest.CaptureFixture[str]) -> None:
    """Each op has a case above, a line in `archc blocks` and LSP completion (both read the registry)."""
    covered = {line.split(":", 1)[1].split(",")[0].strip(" {}").removeprefix("op: ")
               for _, _, nodes, _, _ in CASES for line in nodes.splitlines() if line.startswith("n:")}
    assert set(NEW_OPS) <= covered | {"parameter"}
    assert main(["blocks"]) == 0
    listed = {line.split("(", 1)[0] for line in capsys.readouterr().out.splitlines() if not line.startswith(" ")}
    assert set(NEW_OPS) <= listed
    assert set(NEW_OPS) <= {n for n, _ in op_names(None)}
    assert [k for k, _, _ in op_args(None, "slice")] == ["dim", "start", "end", "step"]


# ---- located errors -------------------------------------------------------------------------------

ERRORS = [
    ("slice step 0", {"x": [4, 6]}, "n: {op: slice, dim: 1, step: 0}", "slice: step should be a value >= 1"),
    ("slice empty", {"x": [4, 6]}, "n: {op: slice, dim: 2, start: 4, end: 2}", "is empty"),
    ("slice of the batch", {"x": [4, 6]}, "n: {op: slice, dim: 0, end: 1}", "the batch, would mix the samples"),
    ("unfold window larger than the padded input", {"x": [3, 4, 4]}, "n: {op: unfold, kernel_size: 4, padding: 0, "
     "dilation: 2}", "is smaller than the window (7)"),
    ("unfold block in the padding", {"x": [3, 4, 4]}, "n: {op: unfold, kernel_size: 2, padding: 2}",
     "reads no input"),
    ("gather index of wrong rank", {"x": [4, 6], "i": [6]}, "n: {op: gather, in: [x, i], dim: 1}",
     "must have the input's rank"),
    ("gather index too large", {"x": [4, 6], "i": [4, 7]}, "n: {op: gather, in: [x, i], dim: 1}",
     "larger than the input"),
    ("index_select out of range", {"x": [4, 6]}, "n: {op: index_select, dim: 1, index: [0, 4]}",
     "index 4 is out of range for size 4"),
    ("index_select index input of wrong rank", {"x": [4, 6], "i": [2, 3]}, "n: {op: index_select, in: [x, i], dim: 1}",
     "must be a vector (K,)"),
    ("index_select without index", {"x": [4, 6]}, "n: {op: index_select, dim: 1}", "needs `index`"),
    ("fold columns that do not match", {"x": [12, 10]}, "n: {op: fold, output_size: [5, 6], kernel_size: 2, "
     "stride: [1, 2]}", "takes 4 x 3 blocks, but the columns hold 10"),
    ("fold pixels no block reaches", {"x": [4, 9]}, "n: {op: fold, output_size: 7, kernel_size: 2, stride: 3}",
     "pixels that no block reaches"),
    ("fold rows not a multiple", {"x": [6, 4]}, "n: {op: fold, output_size: 4, kernel_size: 2, stride: 2}",
     "not a multiple of the kernel's 4 positions"),
    ("expand of a size that is not 1", {"x": [4, 3]}, "n: {op: expand, sizes: [4, 6]}", "cannot become 6"),
    ("tile of the batch", {"x": [4, 3]}, "n: {op: tile, dims: [1, 2, 2]}", "would tile the batch"),
    ("repeat_tensor with a wrong count", {"x": [4, 3]}, "n: {op: repeat_tensor, repeats: [2]}", "one count per dim"),
    ("parameter constant without value", {"x": [4]}, "n: {op: parameter, shape: [2], init: constant}",
     "init constant needs `value`"),
    ("parameter init that does not read std", {"x": [4]}, "n: {op: parameter, shape: [2], std: 0.1}",
     "init zeros does not read std"),
    ("parameter uniform a >= b", {"x": [4]}, "n: {op: parameter, shape: [2], init: uniform, a: 1, b: 1}",
     "needs a < b"),
    ("parameter add of another rank", {"x": [4, 5]}, "n: {op: parameter, shape: [5], combine: add}",
     "of different rank"),
    ("parameter prepend that differs", {"x": [4, 5]}, "n: {op: parameter, shape: [1, 6], combine: prepend}",
     "differ on dim 2"),
    ("prelu count that is not the channels", {"x": [4, 5]}, "n: {op: prelu, num_parameters: 5}",
     "neither 1 nor the 4 channels"),
    ("softplus beta 0", {"x": [4]}, "n: {op: softplus, beta: 0}", "softplus with beta 0 divides by zero"),
    ("instance_norm of single values", {"x": [4, 1, 1]}, "n: instance_norm", "each channel holds a single value"),
    ("rms_norm over the batch", {"x": [4, 5]}, "n: {op: rms_norm, dims: 3}", "over the last 3 dims"),
    ("pow with exponent and two inputs", {"x": [4], "y": [4]}, "n: {op: pow, in: [x, y], exponent: 2}",
     "takes one input"),
    ("where without other", {"c": [4], "x": [4]}, "n: {op: where, in: [c, x]}", "or `other:` as a number"),
    ("masked_fill of another rank", {"x": [4, 5], "m": [5]}, "n: {op: masked_fill, in: [x, m], value: 0}",
     "of different rank"),
    ("minimum of clashing sizes", {"x": [4], "y": [3]}, "n: {op: minimum, in: [x, y]}", "cannot combine shapes"),
]


@pytest.mark.parametrize(("why", "inputs", "nodes", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_arguments_are_located_errors(tmp_path: Path, why: str, inputs: dict[str, list[int]], nodes: str,
                                          message: str) -> None:
    path = _write(tmp_path, _spec(inputs, nodes))
    with pytest.raises(ArchcError) as info:
        archc.check(path)
    err = info.value
    assert message in err.message, err.message
    assert err.loc is not None and err.loc.line == 5, err.loc  # the node's line (name, input, nodes:, node)
    assert err.node == "n"


# ---- symbolic sizes and receptive fields ----------------------------------------------------------

SPATIAL = """archc: 1
name: spatial
input: [4, 16, 16]
nodes:
  rows: {op: slice, in: input, dim: 2, start: 1, end: -1, step: 2}
  tail: {op: slice, in: input, dim: 3, start: -5}
  patches: {op: unfold, in: input, kernel_size: 4, stride: 4}
  back: {op: fold, in: [patches, input], kernel_size: 4, stride: 4}
  cols: {op: unfold, in: input, kernel_size: 3, padding: 1}
  summed: {op: fold, in: [cols, input], kernel_size: 3, padding: 1}
  inorm: {op: instance_norm, in: input}
  rnorm: {op: rms_norm, in: input, dims: 1}
  pooled: {op: mean, in: input, dim: 2, keepdim: true}
  wide: {op: expand, in: pooled, sizes: [-1, 5, -1]}
  picked: {op: index_select, in: input, dim: 2, index: [0, 1]}
  tiled: {op: tile, in: input, dims: [2, 1]}
  table: {op: parameter, in: input, shape: [4, 1, 1], combine: mul}
outputs: [rows, tail, back, summed, inorm, rnorm, wide, picked, tiled, table]
"""


def test_symbolic_shapes_of_the_spatial_ops(tmp_path: Path) -> None:
    from tests.test_symbolic_exact import check, symbolic

    path = _write(tmp_path, SPATIAL)
    sym = archc.check(path, input_shape=[4, "H", "W"]).symbolic
    assert sym is not None and sym.method == "algebra" and sym.complete
    assert [sym.shapes[o] for o in ("rows", "tail", "back", "summed", "wide", "picked", "tiled", "table")] == [
        ("4", "(H + 1) // 2 - 1", "W"), ("4", "H", "5"), ("4", "H", "W"), ("4", "H", "W"), ("4", "5", "W"),
        ("4", "2", "W"), ("4", "2 * H", "W"), ("4", "H", "W")]
    # 4x4 patches fold back only onto multiples of 4; slicing the last 5 columns leaves W when W < 5
    assert sym.constraint.startswith("H >= 4 and H % 4 == 0, W >= 8 and W % 4 == 0")
    _, claimed = symbolic(str(path))
    side = range(1, 25)
    check(str(path), [(h, w) for h in side for w in side] + [(h, w) for h in (97, 1000) for w in (8, 33, 224)])
    assert claimed.valid({"H": 20, "W": 12}) and not claimed.accepts({"H": 18, "W": 12})


def test_fold_coverage_on_symbolic_sizes_is_exact(tmp_path: Path) -> None:
    """fold's refusal (pixels no block reaches) becomes guards on residues of the size: compared with
    concrete analyses for kernel, stride, padding and dilation mixes (unfold then fold back)."""
    from tests.test_symbolic_exact import check

    for k, s, p, d in ((2, 2, 0, 1), (3, 2, 1, 1), (2, 3, 0, 1), (3, 1, 2, 2), (4, 3, 1, 2), (1, 2, 0, 1)):
        path = _write(tmp_path, f"archc: 1\nname: f\ninput: [2, 16, 16]\nnodes:\n"
                                f"  u: {{op: unfold, kernel_size: {k}, stride: {s}, padding: {p}, dilation: {d}}}\n"
                                f"  f: {{op: fold, in: [u, input], kernel_size: {k}, stride: {s}, padding: {p}, "
                                f"dilation: {d}}}\n", f"f{k}{s}{p}{d}.yaml")
        check(str(path), [(h, 7) for h in range(1, 50)] + [(7, w) for w in range(1, 50)] + [(97, 16), (1000, 33)])


def test_receptive_fields_follow_the_windows(tmp_path: Path) -> None:
    """unfold is a convolution's window, fold a transposed convolution's; a slice's step along H is a
    stride; indices that pick any position along H or W see the whole axis."""
    path = _write(tmp_path, """archc: 1
name: rf
input: [3, 32, 32]
nodes:
  conv: {op: conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  cols: {op: unfold, kernel_size: 3, stride: 2, padding: 1}
  back: {op: fold, in: [cols, conv], kernel_size: 3, stride: 2, padding: 1}
  rows: {op: slice, in: conv, dim: 2, step: 2}
  after: {op: conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  picked: {op: index_select, in: conv, dim: 3, index: [0, 5]}
  chans: {op: index_select, in: conv, dim: 1, index: [0, 3]}
outputs: [back, after, picked, chans]
""")
    a = archc.check(path)
    rf = {p: i.rf for p, i in a.info.items()}
    assert (rf["cols"].size, rf["cols"].jump) == (5, 2)  # 3 + (3 - 1) * 1, stride 2
    assert (rf["back"].size, rf["back"].jump) == (7, 1)  # 5 + (2 / 2 + 1 - 1) * 2: conv_transpose's rule
    assert (rf["rows"].size, rf["rows"].jump, rf["after"].size) == (3, 2, 7)
    assert rf["picked"] is None and (rf["chans"].size, rf["chans"].jump) == (3, 1)


# ---- parameter nodes ------------------------------------------------------------------------------

PARAMS_SPEC = """archc: 1
name: learned
input: [6, 5]
blocks:
  tokens:
    nodes:
      table: {op: parameter, shape: [9, 3], batch_dim: false, init: uniform, a: -0.5, b: 0.25, in: input}
      cls_dist: {op: parameter, in: input, shape: [2, 5], combine: prepend, init: trunc_normal, std: 0.02,
                 a: -0.03, b: 0.03}
nodes:
  enc: tokens
  temperature: {op: parameter, in: input, shape: [1, 1], init: constant, value: 0.07}
  ones: {op: parameter, in: input, shape: [64, 64], init: ones}
  wide: {op: parameter, in: input, shape: [100, 100], init: normal, mean: 1, std: 2}
  relu: {op: relu, in: ones, inplace: true}
outputs: [enc, temperature, relu, wide]
"""


def test_parameter_nodes_are_stored_at_their_paths_and_initialised(tmp_path: Path) -> None:
    path = _write(tmp_path, PARAMS_SPEC)
    torch.manual_seed(0)
    model = archc.compile(path)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {"enc.cls_dist": (1, 2, 5), "enc.table": (9, 3), "temperature": (1, 1, 1), "ones": (1, 64, 64),
                      "wide": (1, 100, 100)}
    assert archc.check(path).params == sum(p.numel() for p in model.parameters()) == 10 + 27 + 1 + 4096 + 10_000
    sd = model.state_dict()
    assert sd["enc.cls_dist"].abs().max() <= 0.03 and sd["enc.cls_dist"].std() > 0  # a, b: absolute bounds
    assert sd["enc.table"].min() >= -0.5 and sd["enc.table"].max() < 0.25
    assert sd["temperature"].item() == pytest.approx(0.07) and bool((sd["ones"] == 1).all())
    assert abs(sd["wide"].mean().item() - 1) < 0.1 and abs(sd["wide"].std().item() - 2) < 0.1
    x = torch.randn(3, 6, 5)
    enc, temperature, relu, wide = model(x)
    assert enc.shape == (3, 8, 5) and torch.equal(enc[:, 2:], x) and torch.equal(enc[1, :2], sd["enc.cls_dist"][0])
    assert temperature.shape == (3, 1, 1) and wide.shape == (3, 100, 100)
    relu.sub_(5)  # the outputs are copies per sample: writing into them leaves the parameters alone
    assert bool((model.state_dict()["ones"] == 1).all())
    assert model(x)[2].requires_grad  # learned: gradients reach the parameter


def test_parameter_nodes_can_be_frozen_and_seeded(tmp_path: Path) -> None:
    path = _write(tmp_path, PARAMS_SPEC.replace("nodes:\n  enc", "frozen: [enc.table, wide]\nnodes:\n  enc"))
    model = archc.compile(path)
    assert {n for n, p in model.named_parameters() if not p.requires_grad} == {"enc.table", "wide"}
    torch.manual_seed(3)
    a = archc.compile(path).state_dict()
    torch.manual_seed(3)
    b = archc.compile(path).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---- export ---------------------------------------------------------------------------------------

def test_torchscript_trace_of_the_new_ops_equals_eager(tmp_path: Path) -> None:
    """A trace at batch 2 gives eager's outputs at batch 3: no size is baked in (fold to the input's size,
    index building, per-sample parameters)."""
    from archc.export import export

    nodes = "\n".join(f"{k}: {v}" for k, v in {
        "p": "{op: parameter, in: x, shape: [4, 1, 1], combine: mul, init: normal}",
        "u": "{op: unfold, in: p, kernel_size: 2, stride: 2}", "f": "{op: fold, in: [u, x], kernel_size: 2, stride: 2}",
        "s": "{op: slice, in: f, dim: 3, start: 1, step: 2}", "k": "{op: index_select, in: s, dim: 2, index: [1, 0]}",
        "a": "{op: arange, in: k, dim: -1}", "g": "{op: index_select, in: [k, a], dim: -1}",
        "e": "{op: expand, in: q, sizes: [-1, 2, -1]}", "q": "{op: mean, in: g, dim: 2, keepdim: true}",
        "n": "{op: where, in: [g, e], other: 1.0}", "t": "{op: tile, in: n, dims: [2]}", "r": "{op: rms_norm, in: t}",
        "i": "{op: instance_norm, in: r, affine: true}", "m": "{op: maximum, in: [i, r]}"}.items())
    path = _write(tmp_path, _spec({"x": [4, 6, 8]}, nodes))
    model = archc.compile(path).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"torch(vision)?\.")
        loaded = torch.jit.load(str(export(model, "torchscript", tmp_path / "m.ts.pt")))
    x = torch.randn(3, 4, 6, 8)
    with torch.no_grad():
        assert torch.allclose(model(x), loaded(x), rtol=1e-5, atol=1e-6)


def test_python_export_of_a_parameter_node(tmp_path: Path) -> None:
    import importlib.util

    from archc.export.python_source import python_source

    path = _write(tmp_path, _spec({"x": [4]}, "n: {op: parameter, shape: [4], combine: add}"))
    model = archc.compile(path).eval()
    out = tmp_path / "exported.py"
    out.write_text(python_source(model, "Exported", "t"))
    spec = importlib.util.spec_from_file_location("exported", out)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    twin = module.Exported()
    twin.load_state_dict(model.state_dict())
    x = torch.randn(2, 4)
    assert torch.equal(twin(x), model(x))


# ---- the examples ---------------------------------------------------------------------------------

class GRN(nn.Module):
    """ConvNeXt V2's Global Response Normalization on (N, H, W, C), as the paper's code writes it."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gx = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class ConvNeXtV2Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.grn(self.act(self.pwconv1(self.norm(y)))))
        return x + y.permute(0, 3, 1, 2)


class ConvBnAct(nn.Module):
    def __init__(self, cin: int, cout: int, k: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Transformer(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.norm1, self.qkv, self.proj = nn.LayerNorm(d), nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.norm2, self.fc1, self.act, self.fc2 = nn.LayerNorm(d), nn.Linear(d, 2 * d), nn.SiLU(), nn.Linear(2 * d, d)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(self.norm1(t)).chunk(3, -1)
        t = t + self.proj(F.scaled_dot_product_attention(q, k, v))
        return t + self.fc2(self.act(self.fc1(self.norm2(t))))


class MobileViTBlock(nn.Module):
    """MobileViT's block with its reshape-based unfolding and folding (ml-cvnets' MobileViTBlock)."""

    def __init__(self, c: int, d: int, patch: int) -> None:
        super().__init__()
        self.patch = patch
        self.local3, self.local1 = ConvBnAct(c, c, 3), nn.Conv2d(c, d, 1, bias=False)
        self.transformer, self.norm = Transformer(d), nn.LayerNorm(d)
        self.proj, self.fusion = ConvBnAct(d, c, 1), ConvBnAct(2 * c, c, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.local1(self.local3(x))
        b, d, h, w = y.shape
        p = self.patch
        nh, nw = h // p, w // p
        t = y.reshape(b * d * nh, p, nw, p).transpose(1, 2).reshape(b, d, nh * nw, p * p).transpose(1, 3)
        t = self.norm(self.transformer(t))  # (B, P, N, d)
        y = t.transpose(1, 3).reshape(b * d * nh, nw, p, p).transpose(1, 2).reshape(b, d, h, w)
        return self.fusion(torch.cat([x, self.proj(y)], 1))


def _fill_(module: nn.Module, example: torch.Tensor) -> nn.Module:
    """Random values everywhere that keep activations O(1): fan-in scaled weights, norms near 1, random
    BatchNorm statistics."""
    gen = _gen(5)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if not t.is_floating_point():  # BatchNorm's counter, Swin's index buffer
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif t.dim() >= 2 and name.endswith("weight"):
                t.copy_(torch.randn(t.shape, generator=gen) * t[0].numel() ** -0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=gen) * 0.5 + (1.0 if name.endswith(("norm.weight", "bn.weight"))
                                                                     else 0.0))
    return module


def _equal_to(name: str, ref: nn.Module, x: torch.Tensor, drop: tuple[str, ...] = (), atol: float = 1e-6) -> None:
    spec = EXAMPLES / f"{name}.yaml"
    model = archc.compile(spec).eval()
    ref = _fill_(ref, x).eval()
    state = {k: v for k, v in ref.state_dict().items() if k not in drop}
    assert archc.check(spec).params == sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in ref.parameters())
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        ours, theirs = model(x), ref(x)
    problem = twin_mismatch(ours, theirs, 1e-5, atol)
    assert problem is None, problem


def test_grn_example_equals_convnext_v2_block() -> None:
    _equal_to("grn", nn.Sequential(OrderedDict(block=ConvNeXtV2Block(64))), torch.randn(2, 64, 14, 14))


def test_mobilevit_unfold_example_equals_reshape_unfolding() -> None:
    _equal_to("mobilevit_unfold", nn.Sequential(OrderedDict(block=MobileViTBlock(32, 48, 2))),
              torch.randn(2, 32, 16, 16))


def test_relative_position_bias_example_equals_torchvision_window_attention() -> None:
    """torchvision keeps Swin's index as a buffer; the spec computes it in the forward from the map."""
    from torchvision.models.swin_transformer import ShiftedWindowAttention

    class ChannelsFirst(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attention = ShiftedWindowAttention(32, [4, 4], [0, 0], 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.attention(x.permute(0, 2, 3, 1))

    ref = ChannelsFirst()
    spec = EXAMPLES / "relative_position_bias.yaml"
    model = archc.compile(spec).eval()
    ref = _fill_(ref, torch.zeros(1)).eval()
    state = {k.removeprefix("attention."): v for k, v in ref.state_dict().items()
             if not k.endswith("relative_position_index")}
    model.load_state_dict(state, strict=True)
    x = torch.randn(2, 32, 4, 4)
    with torch.no_grad():
        problem = twin_mismatch(model(x), ref(x), 1e-5)
    assert problem is None, problem
    assert archc.check(spec, input_shape=[32, 3, 5]).params == 32 * 96 + 96 + 32 * 32 + 32 + 5 * 9 * 2


def test_new_ops_are_registered_with_tags_the_analyses_read() -> None:
    """Indices computed from a floating index input are counted by the memory model (tag `indices`); pow
    and in-place elu keep their output for backward; where takes its inputs as one list (not folded)."""
    assert {n for n in NEW_OPS if "indices" in library.get(n).tags} == {"index_select", "gather"}
    assert "keeps_output" in library.get("pow").tags and "keeps_output_inplace" in library.get("elu").tags
    assert "list_input" in library.get("where").tags
    assert not any({"alias", "view"} & library.get(n).tags for n in NEW_OPS)  # every one returns a new tensor
