"""`archc summary` marks the rows whose nodes call another node's weights (`share:`, issue 26): `shares OWNER` in
the block column, a `shares` field in --json; the totals count the shared parameters once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import archc
from archc.analyze import Analysis
from archc.analyze.summary import rows, to_json, to_text
from archc.cli import main

SPEC = """\
archc: 1
name: sharing
input: [6, 16, 16]
blocks:
  enc:
    nodes:
      conv: {op: conv2d, out_channels: 8, kernel_size: 3, padding: 1, bias: false}
      bn: batchnorm2d
      act: relu
nodes:
  pair: {op: chunk, chunks: 2}
  enc_a: {op: enc, in: "pair[0]"}
  enc_b: {op: enc, in: "pair[1]", share: enc_a}
  solo: {op: conv2d, out_channels: 8, kernel_size: 3, padding: 1, bias: false, in: "pair[1]", share: enc_a.conv}
  cat: {op: concat, in: [enc_a, enc_b, solo]}
  head: {op: conv2d, out_channels: 4, kernel_size: 1}
"""
ENC = 3 * 8 * 9 + 2 * 8  # the one encoder's conv and batchnorm
HEAD = 24 * 4 + 4


@pytest.fixture()
def analysis(tmp_path: Path) -> Analysis:
    path = tmp_path / "sharing.yaml"
    path.write_text(SPEC)
    return archc.check(str(path))


def test_rows_name_the_owner(analysis: Analysis) -> None:
    top = {r.path: r for r in rows(analysis, depth=1)}
    assert top["enc_b"].shares == "enc_a" and top["enc_b"].params == 0
    assert top["solo"].shares == "enc_a" and top["solo"].params == 0  # enc_a.conv, at depth 1
    assert top["enc_a"].shares is None and top["enc_a"].params == ENC and top["head"].shares is None
    nodes = {r.path: r for r in rows(analysis)}
    assert nodes["enc_b.conv"].shares == "enc_a.conv" and nodes["solo"].shares == "enc_a.conv"
    assert nodes["enc_a.conv"].shares is None and nodes["cat"].shares is None
    assert top["enc_b"].macs == top["enc_a"].macs > 0  # it runs: its own MACs


def test_shared_parameters_count_once(analysis: Analysis) -> None:
    assert analysis.params == ENC + HEAD
    doc = to_json(analysis, depth=1)
    assert doc["params"] == ENC + HEAD == sum(n["params"] for n in doc["nodes"])
    assert {n["path"]: n["shares"] for n in doc["nodes"]} == {"pair": None, "enc_a": None, "enc_b": "enc_a",
                                                             "solo": "enc_a", "cat": None, "head": None}
    text = to_text(analysis, depth=1)
    row = next(line for line in text.splitlines() if line.startswith("enc_b "))
    assert "enc (shares enc_a)" in row
    assert f"sharing: {ENC + HEAD:,} parameters" in text
    assert "shares" not in next(line for line in text.splitlines() if line.startswith("enc_a "))


def test_summary_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sharing.yaml"
    path.write_text(SPEC)
    assert main(["summary", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    by_path = {n["path"]: n for n in doc["nodes"]}
    assert by_path["enc_b.conv"]["shares"] == "enc_a.conv" and by_path["enc_b.conv"]["params"] == 0
    assert by_path["enc_a.conv"]["shares"] is None and doc["params"] == ENC + HEAD
