#!/usr/bin/env bash
# Install archc with everything it needs on a fresh machine (Debian + Python 3.11 + pip).
# torch/torchvision are pinned to the pair that installs from local disk on our machines;
# a bare `torch` would download several GB.
# Graphviz's dot (rendering), Chromium (the HTML report's browser test) and Neovim (archc lsp in a real
# client, tests/test_neovim.py) are required: setup fails without them, as their tests do.
# ARCHC_ALLOW_MISSING_TOOLS=1 carries on (and the tests skip).
set -euo pipefail
cd "$(dirname "$0")/.."

have_tools() { command -v dot && { command -v chromium || command -v chromium-browser; } && command -v nvim; } >/dev/null 2>&1

if ! have_tools && command -v apt-get >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq graphviz chromium neovim >/dev/null \
    || echo "setup: apt-get could not install graphviz, chromium and neovim" >&2
fi
if ! have_tools; then
  echo "setup: Graphviz 'dot', 'chromium' and 'nvim' are required (Debian: apt-get install graphviz chromium neovim)" >&2
  if [ "${ARCHC_ALLOW_MISSING_TOOLS:-}" != "1" ]; then
    echo "setup: set ARCHC_ALLOW_MISSING_TOOLS=1 to install without them (their tests then skip)" >&2
    exit 1
  fi
fi
# every package at the version in tools/constraints.txt (tests and Hypothesis examples the same everywhere)
pip_install() { python -m pip install -q --disable-pip-version-check -c tools/constraints.txt "$@"; }
pip_install torch==2.14.1 torchvision==0.29.1
pip_install -e '.[torch,train,export,bench,dev,lsp]'
