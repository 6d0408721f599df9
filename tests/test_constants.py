"""Constants sized by the map flowing in (grid, full, arange), scalar arithmetic, reshape_as, and the
`arange` init method: shapes (symbolic too), values, dtype and device, batches, in-place safety, no
state_dict keys, bounds before allocation, located errors and Python export."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import archc
from archc.errors import ArchcError, LimitError
from archc.export.python_source import python_source

SPEC = """archc: 1
name: consts
input: [4, 3, 5]
nodes:
  g: {op: grid, in: input, offset: 0.5, scale: 8}
  f: {op: full, in: input, channels: 1, value: 8}
  a: {op: arange, in: input, dim: -1, start: 0.5, step: 2}
  r: {op: arange, in: input, start: 3, end: -3, step: -2}
  halved: {op: scalar, in: input, div: 2}
  flip: {op: scalar, in: input, mul: -1, add: 1}
  heads: {op: flatten, in: input, start_dim: 2}
  back: {op: reshape_as, in: [heads, input]}
outputs: [g, f, a, r, halved, flip, back]
"""


def _write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shapes_values_and_no_state(tmp_path):
    path = _write(tmp_path, SPEC)
    analysis = archc.check(path)
    assert [analysis.shapes[o] for o in analysis.graph.outputs] == [
        (2, 3, 5), (1, 3, 5), (5,), (3,), (4, 3, 5), (4, 3, 5), (4, 3, 5)]
    model = archc.compile(path)
    assert not model.state_dict()
    x = torch.randn(2, 4, 3, 5)
    g, f, a, r, halved, flip, back = model(x)
    cols, rows = torch.arange(5.0) + 0.5, torch.arange(3.0) + 0.5
    assert torch.equal(g[1, 0], (cols * 8).expand(3, 5)) and torch.equal(g[1, 1], (rows * 8)[:, None].expand(3, 5))
    assert torch.equal(f, torch.full((2, 1, 3, 5), 8.0))
    assert a[0].tolist() == [0.5, 2.5, 4.5, 6.5, 8.5] and r[1].tolist() == [3.0, 1.0, -1.0]
    assert torch.equal(halved, x / 2) and torch.equal(flip, 1 - x) and torch.equal(back, x)


def test_symbolic_sizes(tmp_path):
    """The constants' sizes are the input's: formulas in H and W, every size valid."""
    analysis = archc.check(_write(tmp_path, SPEC), input_shape=[4, "H", "W"])
    sym = analysis.symbolic
    assert sym is not None and sym.method == "algebra"
    assert [sym.shapes[o] for o in ("g", "f", "a", "r")] == [("2", "H", "W"), ("1", "H", "W"), ("W",), ("3",)]
    assert "H >= 1" in sym.constraint and "W >= 1" in sym.constraint


def test_dtype_device_batch_and_size_follow_the_input(tmp_path):
    """Computed in the forward: the input's floating dtype and device (meta too), one copy per sample,
    any input size (not the declared one)."""
    model = archc.compile(_write(tmp_path, SPEC))
    g, f, a, *_ = model(torch.randn(3, 4, 6, 7, dtype=torch.float64))
    assert g.dtype == f.dtype == a.dtype == torch.float64
    assert g.shape == (3, 2, 6, 7) and f.shape == (3, 1, 6, 7) and a.shape == (3, 7)
    assert torch.equal(g[0], g[2])
    meta = archc.compile(_write(tmp_path, SPEC), device="meta")
    assert meta(torch.empty(2, 4, 3, 5, device="meta"))[0].device.type == "meta"
    assert model(torch.randn(1, 4, 3, 5, dtype=torch.bfloat16))[0].dtype == torch.bfloat16


def test_in_place_after_a_constant_does_not_corrupt_the_next_call(tmp_path):
    """Each call gets fresh tensors, one per sample (not a stride-0 view, which torch refuses to write
    into): in-place ops on a constant work in a batch and leave the next forward's alone."""
    path = _write(tmp_path, """archc: 1
name: inplace
input: [1, 2, 3]
nodes:
  g: {op: grid, in: input, offset: -1}
  r: {op: relu, inplace: true}
  g2: {op: grid, in: input}
  s: {op: add, in: [r, g2]}
""")
    model = archc.compile(path)
    first, second = model(torch.zeros(2, 1, 2, 3)), model(torch.zeros(2, 1, 2, 3))
    assert torch.equal(first, second) and first[1, 0, 0].tolist() == [0.0, 1.0, 3.0]


@pytest.mark.parametrize("node,message", [
    ("{op: grid, in: input}", "expects a 3-D input"),
    ("{op: full, in: input, value: 1, channels: 0}", "channels 0"),
    ("{op: arange, in: input, end: 4, step: 0}", "step 0"),
    ("{op: arange, in: input, start: 5, end: 1}", "is empty"),
    ("{op: arange, in: input, dim: 0}", "the batch"),
    ("{op: scalar, in: input, div: 0}", "div 0"),
    ("{op: reshape_as, in: [input, other]}", "cannot reshape"),
    ("{op: full, in: input, value: x}", "should be a number"),
])
def test_bad_arguments_are_located_errors(tmp_path, node, message):
    path = _write(tmp_path, f"""archc: 1
name: bad
input: [6, 4]
nodes:
  other: {{op: mean, in: input, dim: 2}}
  c: {node}
""")
    with pytest.raises(ArchcError) as err:
        archc.check(path)
    assert message in err.value.message and err.value.loc is not None and err.value.loc.line == 6


def test_a_billion_element_constant_is_a_located_error_not_an_allocation(tmp_path):
    """Sizes are known statically: arange to 10^9 stops at the activation limit, in check and compile,
    before any tensor exists (on the CPU device it would need 4 GB)."""
    path = _write(tmp_path, """archc: 1
name: huge
input: [1, 2, 2]
nodes:
  a: {op: arange, in: input, end: 1000000000}
""")
    for run in (archc.check, archc.compile):
        with pytest.raises(LimitError) as err:
            run(path)
        assert err.value.loc is not None and err.value.loc.line == 5 and "1,000,000,000 elements" in err.value.message


def test_arange_init_method(tmp_path):
    """`init:` method arange (string or with start and step) fills a weight in element order."""
    path = _write(tmp_path, """archc: 1
name: dfl
input: [16, 4, 5]
frozen: [c]
init:
  - {path: c, weight: arange}
  - {path: d, weight: {arange: {start: 1, step: "${0.5}"}}}
nodes:
  c: {op: conv2d, out_channels: 1, kernel_size: 1, bias: false}
  d: {op: conv2d, in: input, out_channels: 2, kernel_size: 1, bias: false}
outputs: [c, d]
""")
    model = archc.compile(path)
    assert model.c.weight.flatten().tolist() == [float(k) for k in range(16)] and not model.c.weight.requires_grad
    assert model.d.weight.flatten().tolist() == [1 + 0.5 * k for k in range(32)]


def test_python_export_carries_the_constants(tmp_path):
    """`archc export --format python` copies the helpers: the written module gives the same outputs."""
    model = archc.compile(_write(tmp_path, SPEC))
    source = tmp_path / "consts_export.py"
    source.write_text(python_source(model, "Consts", "consts"))
    spec = importlib.util.spec_from_file_location("consts_export", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    x = torch.randn(2, 4, 3, 5)
    for got, want in zip(module.Consts()(x), model(x)):
        assert torch.equal(got, want)
