"""Windowed ops against torch, both ways (issues 24 and 30).

For every windowed op, small argument grids (sizes 1..8, kernel, stride, padding, dilation,
ceil_mode, output_padding, groups, pad modes) are judged twice: by archc's static rule (the
block's argument checks and shape rule, no torch) and by torch on the CPU, forward and backward.
archc must refuse a configuration exactly when torch refuses it, crashes on it, returns an empty
tensor, or computes an output that reads no input element (a window wholly in the padding: -inf
from max pooling, the bias alone from a convolution) or garbage (a pad that reads past its input);
where both accept, the output shapes agree.

The torch side runs in a child process (this file run as `python -m tests.test_windows`), one
JSON answer a line, so a native crash (max pooling's backward over an empty window corrupts the
heap) fails the configuration that caused it, by name, and the sweep goes on in a new child.
Backward runs only where the forward pass read the input everywhere (torch's crash needs an
empty window, which is already a refusal).

About 25,000 configurations in the normal run (about 25 s of CPU);
`ARCHC_WINDOWS_FULL=1` sweeps about 69,000 (sizes to 12, kernels to 5, dilations to 4; about 60 s).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import archc
from archc import blocks as library
from archc.blocks.base import REQUIRED
from archc.errors import ArchcError, ShapeError

ROOT = Path(__file__).resolve().parents[1]
FULL = os.environ.get("ARCHC_WINDOWS_FULL") == "1"
SIZES = range(1, 13 if FULL else 9)
KERNELS = range(1, 6 if FULL else 5)
DILATIONS = range(1, 5 if FULL else 4)
PADS = range(0, 4 if FULL else 3)
Config = tuple[str, dict[str, Any], list[int]]  # op, arguments, batch-less input shape

# ops with a window rule that are not sliding windows over a padded axis, and why
NOT_SWEPT = {
    "interpolate": "resampling, not a window: sampled points always lie inside the input",
    "resize_to": "resampling, like interpolate",
    "mean": "a reduction over whole dims", "sum": "a reduction over whole dims",
    "amax": "a reduction over whole dims", "amin": "a reduction over whole dims",
    "softmax": "whole dims", "matmul": "whole dims", "scaled_dot_product_attention": "whole dims",
    "partition_attention": "fixed partitions that must divide the map (its own rule and tests)",
    "shifted_window_attention": "windows padded to fit, as torchvision (its own rule and tests)",
    "patch_merging": "2x2 patches, the map padded to even sizes (its own rule and tests)",
    "slice": "positions along one dim with a step, no padding (its own rule and tests in test_ops3)",
    "gather": "positions read from a constant index table (its own rule and tests in test_ops3)",
    "index_select": "positions read from a constant index table (its own rule and tests in test_ops3)",
    "window_reverse": "groups of a map that must divide by the window (its own rule and tests in test_swin_primitives)",
    "normalize": "whole dims",
}


# ---- the grids ----

def _pools() -> Iterator[Config]:
    for n, k, s, p, ceil in itertools.product(SIZES, KERNELS, [None, 1, 2, 3], PADS, [False, True]):
        for d in DILATIONS:
            yield "max_pool2d", {"kernel_size": k, "stride": s, "padding": p, "dilation": d,
                                 "ceil_mode": ceil}, [1, n, n]
        for cip in (False, True):
            yield "avg_pool2d", {"kernel_size": k, "stride": s, "padding": p, "ceil_mode": ceil,
                                 "count_include_pad": cip}, [1, n, n]
    yield "max_pool2d", {"kernel_size": [3, 1], "stride": [2, 1], "padding": [1, 0], "dilation": [1, 2],
                         "ceil_mode": True}, [1, 5, 3]


def _convs() -> Iterator[Config]:
    modes = ["zeros", "reflect", "replicate", "circular"]
    sizes = SIZES if FULL else range(1, 7)
    for n, k, s, p, d, mode in itertools.product(sizes, KERNELS, [1, 2, 3], [0, 1, 2, 3, "same", "valid"], DILATIONS,
                                                 modes):
        args = {"out_channels": 1, "kernel_size": k, "stride": s, "padding": p, "dilation": d, "padding_mode": mode}
        yield "conv2d", args, [1, n, n]
        yield "conv1d", args, [1, n]
    for op, shape in (("conv2d", [0, 3, 3]), ("conv1d", [0, 3]), ("conv_transpose2d", [0, 3, 3])):
        for c, out, g in itertools.product(range(1, 5), range(1, 5), range(1, 6)):
            yield op, {"out_channels": out, "kernel_size": 3, "padding": 1, "groups": g}, [c, *shape[1:]]
    yield "conv2d", {"out_channels": 1, "kernel_size": [1, 3], "padding": [1, 0], "dilation": [1, 2]}, [1, 4, 5]


def _transposed() -> Iterator[Config]:
    sizes = SIZES if FULL else range(1, 6)
    for n, k, s, p, op, d in itertools.product(sizes, KERNELS, [1, 2, 3], PADS, range(3), DILATIONS):
        yield "conv_transpose2d", {"out_channels": 1, "kernel_size": k, "stride": s, "padding": p,
                                   "output_padding": op, "dilation": d}, [1, n, n]
    yield "conv_transpose2d", {"out_channels": 1, "kernel_size": [2, 3], "stride": [2, 3]}, [1, 3, 2]


def _others() -> Iterator[Config]:
    for h, w in itertools.product(range(1, 5), repeat=2):
        for size in (1, 2, 3, 5, [1, 4], [3, 2]):
            yield "adaptive_avg_pool2d", {"output_size": size}, [1, h, w]
            yield "adaptive_max_pool2d", {"output_size": size}, [1, h, w]
        yield "global_avg_pool", {}, [2, h, w]
        for r in range(1, 5):
            yield "pixel_unshuffle", {"downscale_factor": r}, [2, h * 2, w]
    for c, r, n in itertools.product(range(1, 10), range(1, 4), range(1, 3)):
        yield "pixel_shuffle", {"upscale_factor": r}, [c, n, n + 1]
    for shape in ([3], [3, 4], [5, 2, 3], [2, 2, 2, 2], [1, 1]):
        for size in range(1, 7):
            yield "local_response_norm", {"size": size}, shape


def _pads() -> Iterator[Config]:
    span = range(-4, 4)
    for rank, k, mode, n in itertools.product((1, 2, 3), (1, 2, 3), ["constant", "reflect", "replicate", "circular"],
                                              range(1, 5)):
        if k > rank + 1:
            continue
        for left, right in itertools.product(span, span):
            shape = [2] * (rank - 1) + [n]  # the varied pair pads the last dim, of size n
            rest = [1, -1] * (k - 1)  # the other padded dims (size 2): pad one, crop one
            yield "pad", {"pad": [left, right, *rest], "mode": mode}, shape
    for mode in ("constant", "reflect"):
        yield "pad", {"pad": [1, 1], "mode": mode, "value": 0.5}, [2, 3]


def _unfolds() -> Iterator[Config]:
    sizes = SIZES if FULL else range(1, 6)
    for n, k, s, p, d in itertools.product(sizes, KERNELS, [1, 2, 3], PADS, DILATIONS):
        window = {"kernel_size": k, "stride": s, "padding": p, "dilation": d}
        yield "unfold", window, [2, n, n + 1]
        blocks = (n + 2 * p - d * (k - 1) - 1) // s + 1
        for cols in {blocks * blocks, blocks * blocks + 1}:  # the right block count, and one too many
            if cols > 0:
                yield "fold", {**window, "output_size": n}, [2 * k * k, cols]


def configs() -> list[Config]:
    return [*_pools(), *_convs(), *_transposed(), *_others(), *_pads(), *_unfolds()]


SWEPT = ("max_pool2d", "avg_pool2d", "conv1d", "conv2d", "conv_transpose2d", "adaptive_avg_pool2d",
         "adaptive_max_pool2d", "global_avg_pool", "pixel_shuffle", "pixel_unshuffle", "local_response_norm", "pad",
         "unfold", "fold")


# ---- archc's verdict: the block's argument checks and shape rule ----

def archc_verdict(op: str, args: dict[str, Any], shape: list[int]) -> dict[str, Any]:
    block = library.get(op)
    for name, value in args.items():
        why = block.params[name].check(value)
        if why is not None:
            return {"ok": False, "why": f"{name}: expected {why}"}
    full = {k: args.get(k, p.default) for k, p in block.params.items() if k in args or p.default is not REQUIRED}
    try:
        outs = block.out_shapes(full, [tuple(shape)])
    except ShapeError as e:
        return {"ok": False, "why": e.message}
    return {"ok": True, "shape": list(outs[0])}


# ---- torch's verdict, in the child process ----

def _fill_ones(module: Any) -> None:
    """Weights 1, bias 0: with an all-ones input each output counts the taps that read the input."""
    import torch

    with torch.no_grad():
        for name, p in module.named_parameters():
            p.fill_(0.0 if name.endswith("bias") else 1.0)


def _pad_reference(x: Any, args: dict[str, Any]) -> Any:
    """torch.nn.functional.pad's documented meaning, index by index (None where it has none)."""
    import torch

    pads, mode = args["pad"], args.get("mode", "constant")
    fill = args.get("value") or 0.0
    out = x
    for i in range(len(pads) // 2):
        dim = out.dim() - 1 - i
        n, left, right = out.shape[dim], pads[2 * i], pads[2 * i + 1]
        index = []
        for o in range(n + left + right):
            j: int | None = o - left
            if mode == "replicate":
                j = min(max(o - left, 0), n - 1)
            elif mode == "reflect":
                j = -j if j < 0 else j  # type: ignore[operator]
                j = 2 * (n - 1) - j if j >= n else j
            elif mode == "circular":  # torch crops first, then wraps what is left
                low, kept = max(-left, 0), n + min(left, 0) + min(right, 0)
                j = low + (o - max(left, 0)) % kept if kept > 0 else None
            index.append(j if j is not None and 0 <= j < n else (n if mode == "constant" else None))
        if any(j is None for j in index):
            return None
        padded = torch.cat([out, torch.full_like(out.narrow(dim, 0, 1), fill)], dim)
        out = padded.index_select(dim, torch.tensor(index, dtype=torch.long))
    return out


def _pad_problem(x: Any, args: dict[str, Any], y: Any) -> str | None:
    """What is wrong with torch's pad of x (y), if anything. Its checks and kernels depend on the
    dims it does not pad (the circular kernel refuses some crops at batch 1 and one channel and
    wraps them at others), so each padded dim's pair also runs alone on a (1, 1, n) input."""
    import torch
    from torch.nn import functional

    pads, k = args["pad"], len(args["pad"]) // 2
    if k >= x.dim():
        return "the pads reach the batch dim (samples mix)"
    probes: list[tuple[Any, dict[str, Any], Any]] = [(x, args, y)]
    for i in range(k):
        n = x.shape[x.dim() - 1 - i]
        probes.append((torch.arange(1.0, n + 1).reshape(1, 1, n), {**args, "pad": pads[2 * i:2 * i + 2]}, None))
    for inp, a, out in probes:
        try:
            got = functional.pad(inp, a["pad"], a["mode"], a["value"]) if out is None else out
        except Exception as e:
            return f"torch on a {tuple(inp.shape)} input: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
        want = _pad_reference(inp, a)
        if want is None or want.shape != got.shape or not torch.equal(want, got):
            return f"torch's pad {a['pad']} of a {tuple(inp.shape)} input reads past it (garbage values)"
    return None


def _reads_no_input(op: str, y: Any) -> bool:
    """Whether some output of the all-ones probe read only padding."""
    import torch

    if op == "max_pool2d" or op == "adaptive_max_pool2d":
        return bool(torch.isinf(y).any())
    if op in ("conv1d", "conv2d", "conv_transpose2d", "avg_pool2d", "adaptive_avg_pool2d", "fold"):
        return bool((y == 0).any() or torch.isnan(y).any())
    if op == "unfold":  # a block (column) of zeros read only padding
        return bool((y.sum(dim=1) == 0).any())
    return False


def torch_verdict(op: str, args: dict[str, Any], shape: list[int]) -> dict[str, Any]:
    import torch
    from torch.nn import functional

    block = library.get(op)
    full = {k: args.get(k, p.default) for k, p in block.params.items() if k in args or p.default is not REQUIRED}
    x = torch.ones(2, *shape)
    if op == "pad":
        x = torch.arange(1.0, x.numel() + 1).reshape(x.shape)
    try:
        if block.kind == "module":
            assert block.build is not None
            module = block.build(full, [tuple(shape)])
            _fill_ones(module)
        elif op == "pad":  # torch's own call, `value` included (archc's builder drops it where torch refuses it)
            module = lambda t: functional.pad(t, full["pad"], full["mode"], full["value"])  # noqa: E731
        else:
            assert block.function is not None
            fn, kwargs = block.function(full)
            module = lambda t: fn(t, **kwargs)  # noqa: E731
        with torch.no_grad():
            last = module(x[1:].clone())  # alone: torch takes other paths at batch 1 (and may refuse there)
            both = module(x)
        xg = x.clone().requires_grad_(True)
        y = module(xg)
    except Exception as e:  # torch refuses: any exception type is a refusal
        return {"ok": False, "why": f"torch: {type(e).__name__}: {str(e).splitlines()[0][:160]}"}
    if y.numel() == 0:
        return {"ok": False, "why": f"torch returns an empty tensor {tuple(y.shape)}"}
    if both.shape[0] != 2 or both.shape[1:] != last.shape[1:] or not torch.allclose(both[1:], last, equal_nan=True):
        return {"ok": False, "why": "torch mixes the batch (a sample's output depends on the others)"}
    if op == "pad":
        why = _pad_problem(x, full, y.detach())
        if why:
            return {"ok": False, "why": why}
    elif _reads_no_input(op, y.detach()):
        return {"ok": False, "why": "an output reads no input (only padding)"}
    try:
        y.sum().backward()
    except Exception as e:
        return {"ok": False, "why": f"torch backward: {type(e).__name__}: {str(e).splitlines()[0][:160]}"}
    return {"ok": True, "shape": list(y.shape[1:])}


def _serve() -> None:
    """The child: a JSON list of configurations on stdin, one JSON verdict a line on stdout."""
    import torch

    torch.set_num_threads(1)
    for op, args, shape in json.load(sys.stdin):
        print(json.dumps(torch_verdict(op, args, shape)), flush=True)


def torch_verdicts(cases: list[Config], command: list[str] | None = None) -> list[dict[str, Any]]:
    """torch's verdict on each configuration, from child processes; a child that dies (a native
    crash) is that configuration's verdict, and a new child takes the rest."""
    command = command or [sys.executable, "-m", "tests.test_windows"]
    got: list[dict[str, Any]] = []
    while len(got) < len(cases):
        rest = cases[len(got):]
        proc = subprocess.run(command, cwd=ROOT, input=json.dumps(rest), capture_output=True, text=True)
        got += [json.loads(line) for line in proc.stdout.splitlines()[:len(rest)]]
        if len(got) < len(cases):
            if proc.returncode == 0:
                raise AssertionError(f"the torch child stopped early without a crash: {proc.stderr[-2000:]}")
            got.append({"ok": False, "crashed": True,
                        "why": f"the torch child died (exit status {proc.returncode}): a native crash"})
    return got


# ---- the sweep ----

@pytest.fixture(scope="module")
def sweep() -> dict[str, list[str]]:
    """Disagreements per op, each naming its configuration and both verdicts."""
    cases = configs()
    theirs = torch_verdicts(cases)
    found: dict[str, list[str]] = {op: [] for op in SWEPT}
    for (op, args, shape), t in zip(cases, theirs):
        a = archc_verdict(op, args, shape)
        if t.get("crashed") and a["ok"]:
            found[op].append(f"{op} {args} on {shape}: archc accepts, torch crashed")
        elif a["ok"] != t["ok"] or (a["ok"] and a["shape"] != t["shape"]):
            found[op].append(f"{op} {args} on {shape}: archc {a}, torch {t}")
    return found


@pytest.mark.parametrize("op", SWEPT)
def test_archc_refuses_exactly_what_torch_refuses(sweep, op):
    bad = sweep[op]
    assert not bad, f"{len(bad)} disagreements, e.g.\n" + "\n".join(bad[:15])


def test_the_sweep_covers_every_windowed_op():
    """Every block with a receptive-field window, a conv or a pool is swept or excused with a reason."""
    windowed = {n for n in library.names() if library.get(n).window is not None
                or library.get(n).category in ("conv", "pool")} | {"pad", "local_response_norm"}
    assert windowed == set(SWEPT) | set(NOT_SWEPT)
    ops = {op for op, _, _ in configs()}
    assert ops == set(SWEPT)


def test_both_verdicts_occur_for_every_op():
    """A sweep where one side always says the same proves little: each op is both accepted and refused
    (but adaptive and global pooling, which torch runs from any size to any output size)."""
    seen: dict[str, set[bool]] = {}
    for op, args, shape in configs():
        seen.setdefault(op, set()).add(archc_verdict(op, args, shape)["ok"])
    always = {"global_avg_pool", "adaptive_avg_pool2d", "adaptive_max_pool2d"}
    assert {op: v for op, v in seen.items() if v != ({True} if op in always else {True, False})} == {}


def test_a_crashing_child_fails_only_its_configuration():
    """A child that aborts on one configuration: that one reads as a crash, the others are answered."""
    script = ("import json, os, sys\n"
              "for op, args, shape in json.load(sys.stdin):\n"
              "    if args.get('boom'): os.abort()\n"
              "    print(json.dumps({'ok': True, 'shape': shape}), flush=True)\n")
    cases: list[Config] = [("relu", {}, [1]), ("relu", {"boom": 1}, [2]), ("relu", {}, [3])]
    got = torch_verdicts(cases, [sys.executable, "-c", script])
    assert [g.get("crashed", False) for g in got] == [False, True, False]
    assert got[2]["shape"] == [3]


# ---- the reproductions (each fails with its fix reverted) ----

REPRO = ("name: repro\ninput: [1, 1, 6]\nnodes:\n"
         "  pool: {op: max_pool2d, kernel_size: 2, stride: 1, padding: 1, dilation: 2}\n")


def test_a_max_pool_window_wholly_in_the_padding_is_a_located_error(tmp_path):
    """Issue 24's crash: taps at -1 and 1 on a 1-pixel-high input read nothing; torch returns -inf
    and its backward corrupts the heap."""
    path = tmp_path / "repro.yaml"
    path.write_text(REPRO)
    with pytest.raises(ArchcError) as info:
        archc.check(path)
    assert info.value.loc is not None and info.value.loc.line == 4 and info.value.node == "pool"
    assert "output 0 along H reads no input" in info.value.message and "(-1, 1)" in info.value.message


def test_symbolic_sizes_exclude_the_sizes_with_an_empty_window(tmp_path):
    path = tmp_path / "repro.yaml"
    path.write_text(REPRO)
    a = archc.check(path, input_shape=[1, "H", "W"])
    assert a.symbolic.constraint == "H >= 2, W >= 2"
    assert not a.symbolic.valid({"H": 1, "W": 6}) and a.symbolic.valid({"H": 2, "W": 6})


def test_symbolic_valid_sizes_match_concrete_analysis_for_gapped_windows():
    """Dilated windows whose taps straddle small inputs: the symbolic valid set (guards) equals the
    concrete verdict at every size 1..40, including non-prefix patterns."""
    from archc.ir.algebra import Guards, guarding, symbol

    cases = [("max_pool2d", {"kernel_size": 2, "stride": 1, "padding": 1, "dilation": 2}),
             ("max_pool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 3, "ceil_mode": True}),
             ("conv1d", {"out_channels": 1, "kernel_size": 2, "padding": "same", "dilation": 3}),
             ("conv1d", {"out_channels": 1, "kernel_size": 3, "padding": 2, "dilation": 5}),
             ("conv_transpose2d", {"out_channels": 1, "kernel_size": 3, "stride": 2, "dilation": 3, "padding": 3}),
             ("conv_transpose2d", {"out_channels": 1, "kernel_size": 3, "stride": 3, "dilation": 2, "padding": 3})]
    for op, args in cases:
        block = library.get(op)
        full = {k: args.get(k, p.default) for k, p in block.params.items() if k in args or p.default is not REQUIRED}
        rank = 2 if op == "conv1d" else 3
        guards = Guards({"H": 40})
        with guarding(guards):
            block.shape(full, [(1, symbol("H"), *([] if rank == 2 else [7]))])
        for v in range(1, 41):
            want = archc_verdict(op, args, [1, v, *([] if rank == 2 else [7])])["ok"]
            assert all(g.holds({"H": v}) for g in guards.items) == want, (op, args, v)


def test_a_dilation_too_large_to_scan_is_sampled_without_a_stray_bound(tmp_path):
    """Past only_sizes' scan (4,096 sizes) the node is sampled; no comparison is left behind as a guard
    (one was: 'H in 1..4999' for a conv whose centre tap always reads the input)."""
    path = tmp_path / "dilated.yaml"
    path.write_text("name: dilated\ninput: [1, 8, 8]\nnodes:\n"
                    "  c: {op: conv2d, out_channels: 2, kernel_size: 3, padding: 5000, dilation: 5000}\n")
    a = archc.check(path, input_shape=[1, "H", "W"])
    assert a.symbolic.constraint == "H >= 1, W >= 1"
    assert "fitted" in a.symbolic.note


def test_a_ceil_mode_window_larger_than_the_input_is_accepted(tmp_path):
    """Issue 30: torch keeps a ceil-mode window that starts inside a 2x2 input though the kernel is 3."""
    path = tmp_path / "ceil.yaml"
    path.write_text("name: ceil\ninput: [1, 2, 2]\nnodes:\n"
                    "  pool: {op: max_pool2d, kernel_size: 3, stride: 2, ceil_mode: true}\n")
    assert archc.check(path).output_shapes == [(1, 1, 1)]


@pytest.mark.parametrize("op, args, shape, ok", [
    ("conv2d", {"out_channels": 1, "kernel_size": 1, "padding": 1}, [1, 3, 3], False),  # the border reads padding
    ("conv1d", {"out_channels": 1, "kernel_size": 2, "padding": "same", "dilation": 3}, [1, 1], False),
    ("conv_transpose2d", {"out_channels": 1, "kernel_size": 1, "stride": 2}, [1, 3, 3], False),  # bed of nails
    ("conv_transpose2d", {"out_channels": 1, "kernel_size": 2, "stride": 2, "output_padding": 1}, [1, 3, 3], False),
    ("conv_transpose2d", {"out_channels": 1, "kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1},
     [1, 3, 3], True),
    ("pad", {"pad": [-3, 1], "mode": "replicate"}, [1, 3], True),  # clamps into the input: torch gives x[2]
    ("pad", {"pad": [-1, 3], "mode": "circular"}, [1, 3], False),  # wraps the 2 elements left: torch refuses
    ("pad", {"pad": [-3, 1]}, [1, 3], True),  # constant: crops all, pads one
    ("local_response_norm", {"size": 3}, [4, 5], True),  # (C, L): torch takes 3-D batches
])
def test_rule_cases(op, args, shape, ok):
    assert archc_verdict(op, args, shape)["ok"] is ok


if __name__ == "__main__":
    _serve()
