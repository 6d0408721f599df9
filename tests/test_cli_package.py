"""The CLI as a package (archc/cli/): `archc check -` reads stdin, `archc lsp --help` explains the server."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from archc.cli import main

ROOT = Path(__file__).resolve().parents[1]
BAD = "name: x\ninput: [3, 8, 8]\nnodes:\n  a: {op: conv2d, out_channels: 4, kernel_size: 3, in: nope}\n"


def test_check_dash_reads_the_spec_from_stdin(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO((ROOT / "specs" / "lenet5.yaml").read_text()))
    assert main(["check", "-"]) == 0
    assert capsys.readouterr().out.startswith("ok  <stdin>: lenet5, 12 nodes, 61,706 parameters")


def test_an_error_on_stdin_is_located_at_stdin(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(BAD))
    assert main(["check", "-", "lenet5"]) == 1  # the other spec is still checked
    out, err = capsys.readouterr()
    assert err.startswith("<stdin>:4:56: error: [a] unknown node 'nope'") and "hint: known here: a, input" in err
    assert out.startswith("ok  lenet5")


def test_stdin_is_read_once_and_a_warning_on_it_is_located(monkeypatch, capsys):
    """A channels-last input written on stdin: W005 points at `<stdin>:2:8`; `-` twice checks the same text."""
    text = "name: x\ninput: [32, 32, 3]\nnodes:\n  f: {op: flatten}\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    assert main(["check", "--strict", "-", "-"]) == 1
    out, err = capsys.readouterr()
    assert err.count("<stdin>:2:8: warning: input [32, 32, 3] looks channels-last") == 2
    assert out.count("ok  <stdin>: x") == 2


def test_lsp_help_says_what_it_does_and_where_the_set_up_is(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["lsp", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for said in ("Language Server Protocol", "hover", "inlay hints", "completion", "README.md",
                 "The editor: archc lsp", "pip install 'archc[lsp]'", "--stdio"):
        assert said in out, said


def test_python_dash_m_archc_reads_stdin():
    done = subprocess.run([sys.executable, "-m", "archc", "check", "-q", "-"], input=BAD, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and done.stderr.startswith("<stdin>:4:56: error:")


def test_check_and_summary_import_no_torch_networkx_or_jsonschema():
    """Start-up: what a command does not use is not imported (networkx only locates a cycle, jsonschema only
    explains an invalid spec); only the named command's parser is built."""
    code = ("import contextlib, io, sys\nfrom archc.cli import main\nwith contextlib.redirect_stdout(io.StringIO()):\n"
            "    codes = [main(['check', 'resnet18']), main(['summary', 'efficientnet_b0'])]\n"
            "unused = ('torch', 'networkx', 'jsonschema', 'archc.cli.detection', 'archc.importer.cli')\n"
            "print(codes, sorted(m for m in unused if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "[0, 0] []", done.stderr


def test_an_invalid_spec_still_gets_jsonschemas_located_errors(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("name: x\ninput: [3, 8, 8]\nnodez: {}\n"))
    assert main(["check", "-"]) == 1
    assert "<stdin>:3:1: error: unknown key 'nodez' in the spec" in capsys.readouterr().err


def test_blocks_name_shows_one_block_in_full(capsys):
    """`archc blocks NAME`: the description and each argument's kind, default and bounds; a typo is a usage error."""
    from archc.cli import main

    assert main(["blocks", "parameter"]) == 0
    out = capsys.readouterr().out
    assert "batch_dim: bool; default True" in out and "stored as (1, *shape)" in out
    assert "init: str; default 'zeros'; one of 'zeros'" in out
    assert main(["blocks", "paramter"]) == 2
    assert "did you mean parameter?" in capsys.readouterr().err
