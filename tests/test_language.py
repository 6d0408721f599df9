"""Spec language II: multi-output nodes (`split`, `chunk`, blocks with `outputs:`), `NAME[K]`
references and shape-aware expressions (`in_shape`, `in_shapes`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import archc
from archc.errors import ArchcError

SPEC = Path(__file__).parent / "specs" / "multi_output.yaml"


def test_multi_output_shapes_and_outputs():
    a = archc.check(SPEC)
    assert a.info["s"].outputs == ((3, 6, 6), (5, 6, 6))
    assert a.info["x"].shape == (10, 6, 6)  # out_channels: in_shape[0] * 2 of s[1]
    assert a.info["z.conv"].shape == (6, 6, 6)  # the csp block's default c = in_shape[0] = 13
    assert a.output_shapes == [(4, 6, 6), (4, 3, 3), (4, 1, 1)]


def test_multi_output_model_equals_torch():
    torch.manual_seed(0)
    m = archc.compile(SPEC).eval()
    x = torch.randn(2, 8, 6, 6)
    s0, s1 = torch.split(x, [3, 5], 1)
    y = torch.cat([s0, m.x(s1)], 1)
    h0, h1 = torch.chunk(y, 2, 1)
    z = torch.cat([h0, m.z.conv(h1)], 1)
    ta = m.t.a(z)
    tb = m.t.b(ta)
    expected = (ta + ta, tb, m.t.c(tb))
    for ours, theirs in zip(m(x), expected):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def _check(tmp_path: Path, text: str) -> archc.analyze.Analysis:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    return archc.check(path)


def test_in_shape_follows_each_repeat_child(tmp_path):
    a = _check(tmp_path, "name: t\ninput: [3, 8, 8]\nnodes:\n"
                         "  grow: {op: conv2d, repeat: 3, out_channels: \"${in_shape[0] * 2}\", kernel_size: 1}\n")
    assert [a.info[f"grow.{i}"].shape[0] for i in range(3)] == [6, 12, 24]


def test_in_shape_decides_structure(tmp_path):
    """A residual skip only where the width allows it: a block argument defaults to the width flowing
    into the block (evaluated at the call site), and `when:` reads it."""
    text = ("name: t\ninput: [4, 8, 8]\nblocks:\n  unit:\n"
            "    args: {c: int, cin: {type: int, default: \"${in_shape[0]}\"}}\n    nodes:\n"
            "      conv: {op: conv2d, out_channels: \"${c}\", kernel_size: 1}\n"
            "      add: {op: add, in: [conv, input], when: \"${cin == c}\"}\n"
            "nodes:\n  a: {op: unit, c: 4}\n  b: {op: unit, c: 6}\n")
    a = _check(tmp_path, text)
    assert "a.add" in a.info and "b.add" not in a.info


def test_in_shapes_reads_every_input(tmp_path):
    text = ("name: t\ninput: [4, 8, 8]\nnodes:\n  p: {op: conv2d, out_channels: 2, kernel_size: 1}\n"
            "  q: {op: conv2d, in: [input], out_channels: \"${in_shapes[0][0] + 1}\", kernel_size: 1}\n"
            "  r: {op: concat, in: [p, q]}\n"
            "  s: {op: conv2d, out_channels: \"${in_shapes[0][0]}\", kernel_size: 1}\n")
    assert _check(tmp_path, text).info["s"].shape == (7, 8, 8)


def test_in_shape_of_a_whole_multi_output_node_is_an_error(tmp_path):
    text = ("name: t\ninput: [4, 8, 8]\nnodes:\n  h: {op: chunk, chunks: 2}\n"
            "  c: {op: conv2d, out_channels: \"${in_shape[0]}\", kernel_size: 1}\n")
    with pytest.raises(ArchcError, match="has 2 outputs"):
        _check(tmp_path, text)


def test_check_takes_params_as_keywords_like_compile():
    assert archc.check("resnet18", num_classes=10).output_shapes == [(10,)]
    assert archc.check("resnet18", {"num_classes": 7}).output_shapes == [(7,)]
