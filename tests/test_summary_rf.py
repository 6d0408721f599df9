"""The RF column of `archc summary` follows receptive fields through layout ops (issue 29): a plain flatten or
unflatten keeps each element's field, an unflatten back to (C, H, W) gives a map that later windows grow, and
only ops that mix positions (a linear over a flattened map, attention, pooling to 1x1) say "global"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import archc
from archc.analyze.summary import rows, to_json
from archc.cli import main

HEAD = "archc: 1\nname: t\ninput: [3, 16, 16]\nnodes:\n"


def _rf(tmp_path: Path, body: str) -> dict[str, object]:
    path = tmp_path / "t.yaml"
    path.write_text(HEAD + body)
    return {r.path: r.receptive_field for r in rows(archc.check(str(path)))}


def test_flatten_and_unflatten_keep_the_field(tmp_path):
    rf = _rf(tmp_path, """\
  a: {op: conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  flat: {op: flatten, start_dim: 2}
  back: {op: unflatten, dim: 2, sizes: [16, 16]}
  b: {op: conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  vector: {op: flatten}
  fc: {op: linear, out_features: 10}
""")
    assert rf == {"a": 3, "flat": 3, "back": 3, "b": 5, "vector": 5, "fc": "global"}


def test_tokens_keep_the_field_until_something_mixes_them(tmp_path):
    """Patches to tokens, a per-token MLP and norm, back to a map: the field of the patch, grown by the last conv;
    softmax over the tokens and a matmul mix positions."""
    rf = _rf(tmp_path, """\
  patch: {op: conv2d, out_channels: 8, kernel_size: 4, stride: 4}
  tokens: {op: flatten, start_dim: 2}
  rows: {op: permute, dims: [0, 2, 1]}
  mlp: {op: linear, out_features: 8}
  norm: layernorm
  act: gelu
  cols: {op: transpose, dim0: 1, dim1: 2}
  map: {op: reshape, shape: [8, 4, 4]}
  conv: {op: conv2d, out_channels: 8, kernel_size: 3, padding: 1}
  mixed: {op: softmax, in: rows, dim: 1}
  per_token: {op: softmax, in: rows, dim: 2}
  scores: {op: matmul, in: [rows, cols]}
""")
    assert rf == {"patch": 4, "tokens": 4, "rows": 4, "mlp": 4, "norm": 4, "act": 4, "cols": 4, "map": 4,
                  "conv": 12, "mixed": "global", "per_token": 4, "scores": "global"}


def test_an_unflatten_that_cuts_the_rows_is_no_map(tmp_path):
    """(C, H*W) split as (C, 2, 128) or (C, 32, 8) is not (C, H, W): elements keep their field, a conv or a linear
    over it mixes positions."""
    rf = _rf(tmp_path, """\
  a: {op: conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  flat: {op: flatten, start_dim: 2}
  odd: {op: unflatten, dim: 2, sizes: [2, 128]}
  b: {op: conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  cut: {op: unflatten, in: flat, dim: 2, sizes: [32, 8]}
  rows_of_8: {op: linear, out_features: 8}
""")
    assert rf == {"a": 3, "flat": 3, "odd": 3, "b": "global", "cut": 3, "rows_of_8": "global"}  # 8 columns mixed


def test_builtin_classifiers_and_json(capsys):
    vgg = {r.path: r.receptive_field for r in rows(archc.check("vgg16"))}
    assert vgg["flatten"] == 212 and vgg["classifier.0"] == "global"
    vit = {r.path: r.receptive_field for r in rows(archc.check("vit_b_16"))}
    assert vit["patches"] == 16 and vit["to_tokens"] == 16
    resnet = {r.path: r.receptive_field for r in rows(archc.check("resnet18"))}
    assert resnet["layer4.1.relu"] == 435 and resnet["avgpool"] == "global" and resnet["flatten"] == "global"
    nodes = {n["path"]: n for n in to_json(archc.check("lenet5"))["nodes"]}
    assert nodes["flatten"]["receptive_field"] == 32
    assert main(["summary", "lenet5", "--json"]) == 0
    assert {n["path"]: n["receptive_field"] for n in json.loads(capsys.readouterr().out)["nodes"]}["flatten"] == 32


def _measured(model, size: int) -> int:
    """Rows of the input the centre element of the output depends on (nonzero input gradient)."""
    import torch

    torch.manual_seed(0)
    x = torch.randn(1, 3, size, size, requires_grad=True)
    out = model(x)
    out[0, :, out.shape[2] // 2, out.shape[3] // 2].sum().backward()
    rows = (x.grad[0].abs().sum(dim=(0, 2)) > 0).nonzero().flatten()
    assert rows.min() > 0 and rows.max() < size - 1, "the input must be larger than the field"
    return int(rows.max() - rows.min() + 1)


@pytest.mark.usefixtures("one_thread")
def test_the_column_equals_a_gradient_measurement(tmp_path):
    """Through tokens and back, the field the column gives is the one the compiled model has."""
    path = tmp_path / "m.yaml"
    path.write_text("""archc: 1
name: m
input: [3, 64, 64]
nodes:
  patch: {op: conv2d, out_channels: 8, kernel_size: 4, stride: 4}
  tokens: {op: flatten, start_dim: 2}
  rows: {op: permute, dims: [0, 2, 1]}
  mlp: {op: linear, out_features: 8}
  norm: layernorm
  cols: {op: transpose, dim0: 1, dim1: 2}
  map: {op: unflatten, dim: 2, sizes: [16, 16]}
  conv: {op: conv2d, out_channels: 8, kernel_size: 3, padding: 1}
""")
    column = {r.path: r.receptive_field for r in rows(archc.check(str(path)))}
    assert column["conv"] == 12 == _measured(archc.compile(str(path)), 64)
