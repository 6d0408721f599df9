"""`archc lsp` in a real client: headless Neovim's built-in LSP client opens a broken zoo spec, waits for
the diagnostics, reads them and hovers a node before the error. Skips where `nvim` is not installed
(Debian: `apt-get install neovim`, done by tools/setup.sh). `ARCHC_NVIM=/path/to/nvim` picks another Neovim.

The server is started by the README's Neovim 0.7-0.10 snippet itself (a FileType autocmd; `vim.lsp.start`
on Neovim 0.8+, `vim.lsp.start_client` + `buf_attach_client` on 0.7, Debian 12's), read from README.md.
Waiting is bounded by condition: `vim.wait` polls until the diagnostics arrive (a generous limit that
only a broken server reaches) and the test fails on what arrived, never on how long it took.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
NVIM = os.environ.get("ARCHC_NVIM") or shutil.which("nvim")
pytestmark = pytest.mark.skipif(
    NVIM is None, reason="Neovim not installed (Debian: apt-get install neovim; tools/setup.sh installs it)")
pytest.importorskip("pygls", reason="archc lsp needs pygls: pip install 'archc[lsp]'")

# The error goes on a later node (the classifier's first layer); `features` comes before it.
GOOD = "      - {op: linear, out_features: 84}                     # F6"
BROKEN = "      - {op: conv2d, out_channels: 84, kernel_size: 3}     # broken: conv2d on a flat vector"

LUA = r"""
local env = vim.env
local result = { nvim = tostring(vim.version().major) .. "." .. tostring(vim.version().minor) }
local function finish()
  vim.fn.writefile({ vim.fn.json_encode(result) }, env.ARCHC_NVIM_OUT)
  vim.cmd("qall!")
end

-- the README's Neovim 0.7-0.10 snippet (what a user's init.lua would have), with the test's server command
README_SNIPPET
result.started_by = vim.lsp.start and "vim.lsp.start" or "vim.lsp.start_client"

vim.cmd("filetype on")
vim.cmd("edit " .. vim.fn.fnameescape(env.ARCHC_NVIM_SPEC))
local buf = vim.api.nvim_get_current_buf()
result.filetype = vim.bo[buf].filetype

-- poll until diagnostics are published (20 ms steps; the limit is only for a server that never answers)
result.diagnostics_arrived = vim.wait(120000, function() return #vim.diagnostic.get(buf) > 0 end, 20)
result.diagnostics = {}
for _, d in ipairs(vim.diagnostic.get(buf)) do
  table.insert(result.diagnostics, { lnum = d.lnum, col = d.col, severity = d.severity, message = d.message,
                                      code = d.code and tostring(d.code) or vim.NIL })
end

local position = { line = tonumber(env.ARCHC_NVIM_HOVER_LINE), character = tonumber(env.ARCHC_NVIM_HOVER_COL) }
local params = { textDocument = { uri = vim.uri_from_bufnr(buf) }, position = position }
local answers = vim.lsp.buf_request_sync(buf, "textDocument/hover", params, 120000) or {}
result.hover_answers = 0
for _, answer in pairs(answers) do
  result.hover_answers = result.hover_answers + 1
  if answer.error then result.hover_error = answer.error.message end
  local contents = answer.result and answer.result.contents
  if type(contents) == "table" then contents = contents.value or contents[1] end
  result.hover = contents or vim.NIL
end

local clients = vim.lsp.get_clients or vim.lsp.get_active_clients
for _, client in pairs(clients()) do client.stop() end
vim.wait(5000, function() return #clients() == 0 end, 20)
finish()
"""


def readme_snippet() -> str:
    """The README's Neovim 0.7-0.10 snippet (section "Editors"), starting the test's server command."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("\n## Editors\n") + 1:]
    section = section[:section.index("\n## ")]
    snippet = next(b for b in re.findall(r"```lua\n(.*?)```", section, re.S) if "nvim_create_autocmd" in b)
    assert '{ "archc", "lsp" }' in snippet, snippet
    return snippet.replace('{ "archc", "lsp" }', "vim.fn.json_decode(vim.env.ARCHC_NVIM_CMD)")


def run_nvim(tmp_path: Path, spec: Path, hover: tuple[int, int]) -> dict[str, Any]:
    """Open `spec` in headless Neovim with archc attached; what the client saw, as a dict."""
    script, out = tmp_path / "archc_test.lua", tmp_path / "result.json"
    script.write_text(LUA.replace("README_SNIPPET", readme_snippet()), encoding="utf-8")
    env = {**os.environ, "ARCHC_NVIM_SPEC": str(spec), "ARCHC_NVIM_OUT": str(out),
           "ARCHC_NVIM_CMD": json.dumps([sys.executable, "-m", "archc", "lsp"]),
           "ARCHC_NVIM_HOVER_LINE": str(hover[0]), "ARCHC_NVIM_HOVER_COL": str(hover[1]),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_DATA_HOME": str(tmp_path / "data")}
    assert NVIM is not None
    proc = subprocess.run([NVIM, "--headless", "--clean", "-n", "-c", f"luafile {script}"], env=env,
                          cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert out.exists(), f"nvim wrote no result (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines()) if needle in line)


def test_neovim_shows_the_error_and_hovers_a_node_before_it(tmp_path: Path) -> None:
    text = (ROOT / "specs" / "lenet5.yaml").read_text(encoding="utf-8")
    assert GOOD in text
    spec = tmp_path / "specs" / "broken_lenet5.yaml"
    spec.parent.mkdir()
    spec.write_text(text.replace(GOOD, BROKEN), encoding="utf-8")
    broken_line, features_line = line_of(spec.read_text(), "# broken"), line_of(text, "  features:")
    assert features_line < broken_line

    got = run_nvim(tmp_path, spec, (features_line, 3))

    assert got["filetype"] == "yaml"
    assert got["diagnostics_arrived"], f"no diagnostics reached Neovim: {got}"
    errors = [d for d in got["diagnostics"] if d["severity"] == 1]  # vim.diagnostic.severity.ERROR
    assert [(d["lnum"], d["col"]) for d in errors] == [(broken_line, BROKEN.index("conv2d"))], got["diagnostics"]
    assert "classifier.0" in errors[0]["message"] and "(120,)" in errors[0]["message"], errors[0]
    assert got["hover_answers"] == 1 and "hover_error" not in got, got
    hover = got["hover"]
    assert isinstance(hover, str) and hover.startswith("**features**"), hover
    assert "output: (120, 1, 1)" in hover, hover  # C5's 120 maps of 1x1, before the broken classifier
