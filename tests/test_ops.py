"""The general tensor vocabulary (sub, div, matmul, softmax, reductions, stack, pad, roll, shuffles,
conv1d, batchnorm1d, scaled_dot_product_attention, element-wise math).

Per op, a one-node spec: archc's static shape equals the real forward's, the output equals the same
torch call made here, parameters and MACs equal what torch has and counts (FlopCounterMode / 2).
One spec using every op is compiled with torch.compile(fullgraph=True), traced by torch.fx and
exported to ONNX (run in onnxruntime). pad's static rule is compared with torch over a grid.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import archc
from archc.errors import ShapeError
from tests.helpers import observed_shapes

Ref = Callable[..., torch.Tensor]  # (model, *inputs) -> expected output


@dataclass(frozen=True)
class Case:
    op: str  # the test's id
    node: str  # the node's yaml mapping, without braces; it reads the inputs in order
    inputs: dict[str, list[int]]
    ref: Ref
    positive: bool = False  # inputs > 0 (log, sqrt)


def _x(shape: list[int]) -> dict[str, list[int]]:
    return {"x": shape}


CASES = [
    Case("sub", "op: sub", {"a": [3, 4, 5], "b": [3, 1, 5]}, lambda m, a, b: a - b),
    Case("div", "op: div", {"a": [3, 4, 5], "b": [1, 4, 1]}, lambda m, a, b: a / b),
    Case("matmul", "op: matmul", {"a": [2, 3, 4, 5], "b": [2, 1, 5, 6]}, lambda m, a, b: a @ b),
    Case("matmul_tokens", "op: matmul", {"a": [7, 5], "b": [5, 3]}, lambda m, a, b: a @ b),
    Case("softmax", "op: softmax, dim: 1", _x([4, 3, 3]), lambda m, x: torch.softmax(x, 1)),
    Case("softmax_neg", "op: softmax, dim: -2", _x([4, 3, 3]), lambda m, x: torch.softmax(x, -2)),
    Case("mean", "op: mean, dim: [2, 3]", _x([4, 3, 5]), lambda m, x: x.mean((2, 3))),
    Case("mean_keep", "op: mean, dim: -1, keepdim: true", _x([4, 3, 5]), lambda m, x: x.mean(-1, keepdim=True)),
    Case("sum_all", "op: sum, dim: [1, 2]", _x([4, 3]), lambda m, x: x.sum((1, 2))),
    Case("amax", "op: amax, dim: 1, keepdim: true", _x([4, 3, 5]), lambda m, x: x.amax(1, keepdim=True)),
    Case("amin", "op: amin, dim: [-1, 1]", _x([4, 3, 5]), lambda m, x: x.amin((1, 3))),
    Case("stack", "op: stack, dim: -1", {"a": [2, 3], "b": [2, 3], "c": [2, 3]},
         lambda m, a, b, c: torch.stack([a, b, c], -1)),
    Case("stack_default", "op: stack", {"a": [5], "b": [5]}, lambda m, a, b: torch.stack([a, b], 1)),
    Case("channel_shuffle", "op: channel_shuffle, groups: 3", _x([6, 2, 2]),
         lambda m, x: x.unflatten(1, (3, 2)).transpose(1, 2).flatten(1, 2)),
    Case("pad_constant", "op: pad, pad: [1, -1, 0, 2], value: 0.5", _x([2, 3, 4]),
         lambda m, x: F.pad(x, (1, -1, 0, 2), value=0.5)),
    Case("pad_reflect", "op: pad, pad: [3, 3, 1, 0], mode: reflect", _x([2, 3, 4]),
         lambda m, x: F.pad(x, (3, 3, 1, 0), mode="reflect")),
    Case("pad_replicate", "op: pad, pad: [5, -2], mode: replicate", _x([2, 3]),
         lambda m, x: F.pad(x, (5, -2), mode="replicate")),
    Case("pad_circular", "op: pad, pad: [4, 0, 1, 1, 0, 2], mode: circular", _x([2, 3, 4]),
         lambda m, x: F.pad(x, (4, 0, 1, 1, 0, 2), mode="circular")),
    Case("roll", "op: roll, shifts: [1, -2], dims: [2, -1]", _x([2, 3, 4]),
         lambda m, x: torch.roll(x, (1, -2), (2, 3))),
    Case("pixel_shuffle", "op: pixel_shuffle, upscale_factor: 2", _x([8, 2, 3]), lambda m, x: F.pixel_shuffle(x, 2)),
    Case("pixel_unshuffle", "op: pixel_unshuffle, downscale_factor: 2", _x([2, 4, 6]),
         lambda m, x: F.pixel_unshuffle(x, 2)),
    Case("conv1d", "op: conv1d, out_channels: 6, kernel_size: 3, stride: 2, padding: 2, dilation: 2, groups: 2",
         _x([4, 11]), lambda m, x: F.conv1d(x, m.n.weight, m.n.bias, 2, 2, 2, 2)),
    Case("conv1d_same_reflect", "op: conv1d, out_channels: 3, kernel_size: 4, padding: same, padding_mode: reflect,"
         " bias: false", _x([2, 9]),
         lambda m, x: F.conv1d(F.pad(x, (1, 2), mode="reflect"), m.n.weight)),
    Case("batchnorm1d", "op: batchnorm1d", _x([4]),
         lambda m, x: F.batch_norm(x, m.n.running_mean, m.n.running_var, m.n.weight, m.n.bias)),
    Case("batchnorm1d_seq", "op: batchnorm1d, affine: false", _x([4, 5]),
         lambda m, x: F.batch_norm(x, m.n.running_mean, m.n.running_var)),
    Case("sdpa", "op: scaled_dot_product_attention", {"q": [2, 7, 8], "k": [2, 5, 8], "v": [2, 5, 3]},
         lambda m, q, k, v: F.scaled_dot_product_attention(q, k, v)),
    Case("sdpa_causal", "op: scaled_dot_product_attention, is_causal: true, scale: 0.3, dropout_p: 0.5",
         {"q": [1, 6, 4], "k": [3, 6, 4], "v": [3, 6, 2]},
         lambda m, q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3)),
    Case("exp", "op: exp", _x([3, 4]), lambda m, x: torch.exp(x)),
    Case("log", "op: log", _x([3, 4]), lambda m, x: torch.log(x), positive=True),
    Case("sqrt", "op: sqrt", _x([3, 4]), lambda m, x: torch.sqrt(x), positive=True),
    Case("abs", "op: abs", _x([3, 4]), lambda m, x: torch.abs(x)),
    Case("clamp", "op: clamp, min: -0.5, max: 0.25", _x([3, 4]), lambda m, x: torch.clamp(x, -0.5, 0.25)),
    Case("clamp_min", "op: clamp, min: 0", _x([3, 4]), lambda m, x: torch.clamp(x, min=0)),
]


def _spec(case: Case, tmp_path: Path) -> Path:
    inputs = ", ".join(f"{k}: {v}" for k, v in case.inputs.items())
    path = tmp_path / f"{case.op}.yaml"
    path.write_text(f"name: t\ninput: {{{inputs}}}\nnodes:\n  n: {{{case.node}, in: [{', '.join(case.inputs)}]}}\n")
    return path


def _inputs(case: Case, batch: int) -> list[torch.Tensor]:
    xs = [torch.randn(batch, *s) for s in case.inputs.values()]
    return [x.abs() + 0.1 for x in xs] if case.positive else xs


def _randomise_(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand_like(t) + 0.5 if "running_var" in name else torch.randn_like(t))


def _flops(model: torch.nn.Module, xs: list[torch.Tensor]) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*xs)
    return counter.get_total_flops()


@pytest.mark.parametrize("case", CASES, ids=[c.op for c in CASES])
def test_op_matches_torch(case: Case, tmp_path: Path) -> None:
    path = _spec(case, tmp_path)
    analysis = archc.check(path)
    torch.manual_seed(0)
    model = archc.compile(path).eval()
    _randomise_(model)
    xs = _inputs(case, 2)
    assert observed_shapes(model, *xs)["n"] == analysis.info["n"].shape
    with torch.no_grad():
        out, want = model(*xs), case.ref(model, *xs)
    assert out.shape == want.shape and torch.allclose(out, want, atol=1e-6), (out - want).abs().max()
    assert sum(p.numel() for p in model.parameters()) == analysis.params
    assert _flops(model, _inputs(case, 1)) == 2 * analysis.macs  # per sample: batch 1


@pytest.mark.parametrize("case", CASES, ids=[c.op for c in CASES])
def test_storage_tags_match_autograd(case: Case, tmp_path: Path) -> None:
    """`alias` iff the output shares its input's storage; `keeps_output` iff autograd saves the output
    (writing into it in place then breaks backward), which analyze/inplace.py relies on."""
    from archc.blocks import get

    tags = get(archc.check(_spec(case, tmp_path)).info["n"].node.op).tags
    model = archc.compile(_spec(case, tmp_path)).train()
    xs = [x.requires_grad_() for x in _inputs(case, 2)]
    out = model(*xs)
    shares = any(out.untyped_storage().data_ptr() == x.untyped_storage().data_ptr() for x in xs)
    assert shares == ("alias" in tags)
    out.add_(1.0)
    try:
        out.sum().backward()
        keeps = False
    except RuntimeError as e:
        assert "modified by an inplace operation" in str(e)
        keeps = True
    if case.op.startswith("sdpa"):  # which kernel runs (and saves what) depends on shapes and device
        assert "keeps_output" in tags
    else:
        assert keeps == ("keeps_output" in tags)


def test_sdpa_kernels_keep_their_output() -> None:
    """Why sdpa is tagged `keeps_output`: the flash kernel (here E == Ev) saves the output."""
    q = torch.randn(2, 3, 5, 8, requires_grad=True)
    out = F.scaled_dot_product_attention(q, q, q)
    out.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_counts_that_are_not_zero(tmp_path: Path) -> None:
    """The MAC test above is only worth something where the counts are non-zero."""
    macs = {c.op: archc.check(_spec(c, tmp_path)).macs for c in CASES}
    assert macs["matmul"] == 2 * 3 * 4 * 6 * 5 and macs["matmul_tokens"] == 7 * 3 * 5
    assert macs["sdpa"] == 2 * 7 * 5 * (8 + 3) and macs["sdpa_causal"] == 3 * 6 * 6 * (4 + 2)
    assert macs["conv1d"] == 6 * 6 * 2 * 3  # out (6, 6), 4 / 2 input channels per group, kernel 3
    params = {c.op: archc.check(_spec(c, tmp_path)).params for c in CASES}
    assert params["conv1d"] == 6 * 2 * 3 + 6 and params["batchnorm1d"] == 8 and params["batchnorm1d_seq"] == 0


@pytest.mark.parametrize("nodes,field", [
    ("a: {op: conv2d, out_channels: 4, kernel_size: 3}\n  s: {op: pixel_unshuffle, downscale_factor: 2}\n"
     "  b: {op: conv2d, out_channels: 4, kernel_size: 3}", 8),  # 3, then jump 2: 3 + 1 = 4, then 4 + 2 * 2
    ("a: {op: conv2d, out_channels: 8, kernel_size: 3}\n  s: {op: pixel_shuffle, upscale_factor: 2}\n"
     "  b: {op: conv2d, out_channels: 4, kernel_size: 3}", 4),  # 3, then jump 1/2: 3 + 2 / 2
])
def test_shuffle_receptive_field_is_real(nodes: str, field: int, tmp_path: Path) -> None:
    """The static receptive field equals the input pixels an output pixel's gradient reaches."""
    path = tmp_path / "rf.yaml"
    path.write_text(f"name: rf\ninput: [2, 24, 24]\nnodes:\n  {nodes}\n")
    analysis = archc.check(path)
    assert analysis.receptive_field == field
    model = archc.compile(path)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand_like(p) + 0.1)  # positive: no cancellation hides a pixel
    x = torch.randn(1, 2, 24, 24, requires_grad=True)
    out = model(x)
    out[0, :, out.shape[2] // 2, out.shape[3] // 2].sum().backward()
    rows = x.grad[0].abs().sum((0, 2)).nonzero()
    assert len(rows) == field


def test_conv1d_receptive_field(tmp_path: Path) -> None:
    path = tmp_path / "rf1.yaml"
    path.write_text("name: rf\ninput: [2, 40]\nnodes:\n  a: {op: conv1d, out_channels: 3, kernel_size: 3, stride: 2}\n"
                    "  b: {op: conv1d, out_channels: 3, kernel_size: 3, dilation: 2}\n")
    assert archc.check(path).info["b"].rf.pixels == 3 + 2 * 2 * 2  # dilated span 5, jump 2


def test_sdpa_dropout_only_in_training(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.op == "sdpa_causal")
    model = archc.compile(_spec(case, tmp_path))
    xs = _inputs(case, 2)
    torch.manual_seed(0)
    with torch.no_grad():
        assert not torch.allclose(model.train()(*xs), case.ref(model, *xs))
        assert torch.equal(model.eval()(*xs), case.ref(model, *xs))


def test_sdpa_module_pickles(tmp_path: Path) -> None:
    """Its class is made on first use (no torch at import); pickle finds it by name all the same."""
    import pickle

    case = next(c for c in CASES if c.op == "sdpa_causal")
    model = archc.compile(_spec(case, tmp_path)).eval()
    again = pickle.loads(pickle.dumps(model.n))
    xs = _inputs(case, 2)
    assert type(again) is type(model.n) and torch.equal(again(*xs), model.n(*xs))


ALL = """name: every_op
input: {x: [8, 6, 6], y: [8, 1, 6], s: [4, 10], q: [2, 5, 8], k: [2, 7, 8], v: [2, 7, 3]}
nodes:
  e: {op: exp, in: [y]}
  d: {op: sub, in: [x, y]}
  q1: {op: div, in: [d, e]}
  sm: {op: softmax, dim: 1}
  lg: {op: log}
  sq: {op: sqrt, in: [sm]}
  ab: {op: abs, in: [lg]}
  cl: {op: clamp, min: -1, max: 0.5}
  cs: {op: channel_shuffle, groups: 4}
  p1: {op: pad, pad: [1, 1, 2, 0], mode: reflect}
  p2: {op: pad, pad: [-1, 1], value: 0.5}
  p3: {op: pad, pad: [2, 0, 0, 1], mode: circular}
  p4: {op: pad, pad: [1, -1, 1, 0], mode: replicate}
  rl: {op: roll, shifts: [1, -2], dims: [2, 3]}
  un: {op: pixel_unshuffle, downscale_factor: 2}
  sh: {op: pixel_shuffle, upscale_factor: 2}
  tr: {op: transpose, dim0: 2, dim1: 3}
  mm: {op: matmul, in: [sh, tr]}
  mean: {op: mean, dim: [2, 3]}
  sum: {op: sum, dim: 1, keepdim: true, in: [sq]}
  amax: {op: amax, dim: -1, in: [sq]}
  amin: {op: amin, dim: [1, 2, 3], in: [sq]}
  st: {op: stack, dim: 2, in: [amax, amax]}
  c1: {op: conv1d, out_channels: 6, kernel_size: 3, padding: 1, padding_mode: circular, in: [s]}
  b1: batchnorm1d
  vec: {op: mean, dim: 2}
  b2: batchnorm1d
  att: {op: scaled_dot_product_attention, is_causal: true, scale: 0.5, in: [q, k, v]}
outputs: [mean, sum, st, amin, b1, b2, att]
"""


@pytest.fixture(scope="module")
def every_op(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.fx.GraphModule, list[torch.Tensor]]:
    path = tmp_path_factory.mktemp("ops") / "every_op.yaml"
    path.write_text(ALL)
    analysis = archc.check(path)
    torch.manual_seed(0)
    model = archc.compile(path).eval()
    _randomise_(model)
    xs = [torch.randn(2, *s) for _, s in analysis.graph.inputs]
    seen = observed_shapes(model, *xs)
    assert {p: i.shape for p, i in analysis.info.items()} == {p: seen[p] for p in analysis.info}
    return model, xs


NEW_OPS = {"sub", "div", "matmul", "softmax", "mean", "sum", "amax", "amin", "stack", "channel_shuffle", "pad",
           "roll", "pixel_shuffle", "pixel_unshuffle", "conv1d", "batchnorm1d", "scaled_dot_product_attention",
           "exp", "log", "sqrt", "abs", "clamp"}


def test_every_op_is_covered(tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(ALL)
    assert {n.op for n in archc.check(path).graph.nodes} >= NEW_OPS
    assert {c.node.split(",")[0].removeprefix("op: ") for c in CASES} >= NEW_OPS


def test_torch_compile_fullgraph(every_op: Any) -> None:
    model, xs = every_op
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    with torch.no_grad():
        for got, want in zip(compiled(*xs), model(*xs), strict=True):
            assert torch.allclose(got, want, atol=1e-6)


def test_fx_retrace(every_op: Any) -> None:
    model, xs = every_op
    traced = torch.fx.symbolic_trace(model)
    with torch.no_grad():
        for got, want in zip(traced(*xs), model(*xs), strict=True):
            assert torch.equal(got, want)


def test_onnx_matches_in_onnxruntime(every_op: Any, tmp_path: Path) -> None:
    import onnxruntime as ort

    from archc.export import export

    model, _ = every_op
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = export(model, "onnx", tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    xs = [torch.randn(1, *s) for _, s in model.archc_graph.inputs]
    outs = sess.run(None, {i.name: x.numpy() for i, x in zip(sess.get_inputs(), xs, strict=True)})
    with torch.no_grad():
        want = model(*xs)
    assert len(outs) == len(want) == 7
    for got, ref in zip(outs, want, strict=True):
        assert got.shape == tuple(ref.shape) and abs(torch.from_numpy(got) - ref).max() < 1e-5


def _pad_rule(shape: tuple[int, ...], pad: list[int], mode: str) -> tuple[int, ...] | None:
    from archc.blocks import get

    try:
        return get("pad").shape({"pad": pad, "mode": mode, "value": None}, [shape])
    except ShapeError:
        return None


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_rule_agrees_with_torch(mode: str) -> None:
    """Whatever the rule accepts, torch runs with that shape (the rule may refuse more: it wants
    one element left after cropping); what torch refuses, the rule refuses."""
    accepted = 0
    for shape, pad in [*(((n,), [a, b]) for n, a, b in product(range(1, 5), range(-5, 6), range(-5, 6))),
                       *(((2, n), [a, b]) for n, a, b in product(range(1, 4), range(-4, 5), range(-4, 5))),
                       ((2, 3), [1, 1, 1, 1]), ((2, 3, 4), [1, 1]), ((2, 3, 4), [1, 1, 1, 1, 1, 1]),
                       ((2, 3, 4, 5), [1, 1]), ((2, 3, 4, 5), [1, 1, 1, 1, 1, 1, 1, 1]), ((3,), [1, 1, 1, 1])]:
        static = _pad_rule(shape, pad, mode)
        try:
            real = tuple(F.pad(torch.zeros(2, *shape), pad, mode=mode).shape[1:])
        except (RuntimeError, NotImplementedError, ValueError, IndexError):
            real = None
        if static is not None:
            accepted += 1
            assert static == real, (shape, pad, static, real)
        else:  # refused by torch, or on purpose: the batch would be padded, or an axis cropped away
            pads_batch = len(pad) // 2 > len(shape)
            crops_all = any(-min(pad[2 * i], 0) - min(pad[2 * i + 1], 0) >= shape[-1 - i]
                            for i in range(min(len(pad) // 2, len(shape))))
            # circular wraps what the crop leaves: a pad larger than that reads outside the input, and torch
            # returns garbage instead of refusing (tests/test_windows.py sweeps the values)
            wraps_past = mode == "circular" and any(
                max(pad[2 * i], pad[2 * i + 1]) > shape[-1 - i] + min(pad[2 * i], 0) + min(pad[2 * i + 1], 0)
                for i in range(min(len(pad) // 2, len(shape))))
            assert real is None or pads_batch or crops_all or wraps_past, (shape, pad, real)
    assert accepted > 100


def test_checker_stays_torch_free(tmp_path: Path) -> None:
    import subprocess

    path = tmp_path / "all.yaml"
    path.write_text(ALL)
    code = ("import sys, archc; archc.check(sys.argv[1]); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
