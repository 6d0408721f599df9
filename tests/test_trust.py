"""Specs that once compiled to silently wrong results are refused statically, located, and
torch agrees that the refused argument combinations are wrong (issue "trust first")."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import archc
from archc import blocks as library
from archc.errors import ArchcError, format_error

HEAD = "name: t\ninput: [8, 8, 8]\nnodes:\n"


def _refused(tmp_path: Path, nodes: str, expect: str, line: int) -> str:
    path = tmp_path / "t.yaml"
    path.write_text(HEAD + nodes)
    with pytest.raises(ArchcError) as info:
        archc.check(path)
    text = format_error(info.value)
    assert expect in text and info.value.loc is not None and info.value.loc.line == line, text
    return text


@pytest.mark.parametrize("view", ["identity", "flatten", "{op: dropout, p: 0.5}", "{op: stochastic_depth, p: 0.2}",
                                  "{op: permute, dims: [0, 1, 3, 2]}", "{op: transpose, dim0: 2, dim1: 3}",
                                  "{op: unflatten, dim: 1, sizes: [2, 4]}", "{op: reshape, shape: [8, 64]}",
                                  "{op: select, dim: 1, index: 0}"])
def test_inplace_through_an_alias_is_refused(tmp_path, view):
    nodes = ("  a: {op: conv2d, out_channels: 8, kernel_size: 1}\n"
             f"  b: {view}\n"
             "  c: {op: relu, inplace: true}\n"
             "  d: {op: relu, in: a}\n")
    _refused(tmp_path, nodes, "inplace=true would overwrite 'b' (which shares storage with 'a'), which is also "
             "read by d", 6)


def test_inplace_without_other_readers_is_kept(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(HEAD + "  a: {op: conv2d, out_channels: 8, kernel_size: 1}\n  b: identity\n"
                    "  c: {op: relu, inplace: true}\n")
    archc.check(path)
    assert archc.compile(path).get_submodule("c").inplace


def test_inplace_over_a_train_only_output_is_refused(tmp_path):
    """A train-only output is returned to the caller in training: overwriting it in place corrupts it."""
    nodes = ("  a: {op: conv2d, out_channels: 8, kernel_size: 1}\n  b: {op: relu, inplace: true}\n"
             "outputs: [b, {node: a, train_only: true}]\n")
    _refused(tmp_path, nodes, "inplace=true would overwrite 'a', which is also read by the caller", 5)


def test_inplace_over_a_saved_output_is_refused(tmp_path):
    """torch fails in backward when an in-place op overwrites what sigmoid kept for its gradient."""
    nodes = "  a: sigmoid\n  b: {op: hardswish, inplace: true}\n"
    _refused(tmp_path, nodes, "the backward pass of 'a' (sigmoid keeps its output)", 5)
    x = torch.randn(2, 3, requires_grad=True)
    y = torch.nn.functional.hardswish(torch.sigmoid(x * 1), inplace=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_channel_vector_times_map_is_refused(tmp_path):
    """(8,) * (8, 8, 8) broadcasts the batch against H in torch: refused, with the (C, 1, 1) hint."""
    nodes = ("  a: {op: conv2d, out_channels: 8, kernel_size: 1}\n"
             "  p: {op: adaptive_avg_pool2d, output_size: 1, in: input}\n"
             "  f: flatten\n"
             "  m: {op: mul, in: [a, f]}\n")
    text = _refused(tmp_path, nodes, "of different rank", 7)
    assert "keep it (8, 1, 1)" in text
    a, f = torch.randn(8, 8, 8, 8), torch.randn(8, 8)  # what torch would do at batch 8: no error, wrong
    assert not torch.allclose((a * f)[0], a[0] * f[0])


@pytest.mark.parametrize("node,expect,torch_call", [
    ("{op: dropout, p: 1.5}", "p should be a value <= 1", lambda: torch.nn.Dropout(1.5)),
    ("{op: conv2d, out_channels: 4, kernel_size: 3, padding: 8, padding_mode: reflect}",
     "reflect padding 8 along H must be smaller than the input size 8",
     lambda: torch.nn.Conv2d(8, 4, 3, padding=8, padding_mode="reflect")(torch.randn(1, 8, 8, 8))),
    ("{op: conv_transpose2d, out_channels: 4, kernel_size: 3, stride: 2, output_padding: 2}",
     "output_padding 2 must be smaller than the stride (2) or the dilation (1)",
     lambda: torch.nn.ConvTranspose2d(8, 4, 3, 2, output_padding=2)(torch.randn(1, 8, 8, 8))),
])
def test_what_torch_rejects_is_refused(tmp_path, node, expect, torch_call):
    _refused(tmp_path, f"  a: {node}\n", expect, 4)
    with pytest.raises((ValueError, RuntimeError)):
        torch_call()


def test_channels_first_layernorm_needs_a_map(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("name: t\ninput: [4, 6]\nnodes:\n  a: {op: layernorm, channels: first}\n")
    with pytest.raises(ArchcError, match="3-D input"):
        archc.check(path)


def test_a_bug_in_a_shape_rule_is_an_internal_error(tmp_path, monkeypatch):
    """A rule that raises anything but ShapeError is archc's bug: it must not become a spec error."""
    block = library.get("relu")

    def broken(args, ins):
        raise ZeroDivisionError("bug")

    monkeypatch.setitem(library.registry._BLOCKS, "relu", type(block)(**{**block.__dict__, "shape": broken}))
    path = tmp_path / "t.yaml"
    path.write_text(HEAD + "  a: relu\n")
    with pytest.raises(ZeroDivisionError):
        archc.check(path)
