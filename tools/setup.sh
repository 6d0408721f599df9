#!/usr/bin/env bash
# Install archc with everything it needs on a fresh machine (Debian + Python 3.11 + pip).
# torch/torchvision are pinned to the pair that installs from local disk on our machines;
# a bare `torch` would download several GB.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages: Graphviz's dot (rendering) and Chromium (the HTML report's browser test)
if command -v apt-get >/dev/null 2>&1 && ! { command -v dot && command -v chromium; } >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq graphviz chromium >/dev/null) \
    || echo "setup: could not install graphviz/chromium; rendering and browser tests will be skipped" >&2
fi
python -m pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
python -m pip install -q --disable-pip-version-check -e '.[torch,train,export,bench,dev]'
