#!/usr/bin/env bash
# The project's checks: lint, type check, tests (pass --slow to include the largest models).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m ruff check archc tests tools
python -m mypy archc
# two worker processes (pytest-xdist): the run takes about half the time on two cores, and a test that
# crashes natively kills only its worker (xdist reports that test and starts a new one)
python -m pytest -q -p no:cacheprovider -p no:benchmark -n "${ARCHC_TEST_WORKERS:-2}" "$@"
