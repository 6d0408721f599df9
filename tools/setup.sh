#!/usr/bin/env bash
# Install archc with everything it needs on a fresh machine (Debian + Python 3.11 + pip).
# torch/torchvision are pinned to the pair that installs from local disk on our machines;
# a bare `torch` would download several GB.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v dot >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq graphviz >/dev/null) || echo "setup: graphviz (dot) not installed; rendering will be unavailable" >&2
fi
python -m pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
python -m pip install -q --disable-pip-version-check -e '.[torch,dev]'
