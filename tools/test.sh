#!/usr/bin/env bash
# The project's checks: lint, type check, tests (pass --slow to include the largest models).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m ruff check archc tests tools
python -m mypy archc
python -m pytest -q -p no:cacheprovider "$@"
