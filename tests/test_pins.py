"""The test tools and libraries run at the versions tools/constraints.txt pins (tools/setup.sh installs
them with `pip -c`): the same checks and the same Hypothesis examples on every machine."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

CONSTRAINTS = Path(__file__).resolve().parents[1] / "tools" / "constraints.txt"


def _pins() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_every_pinned_package_that_is_installed_has_its_pinned_version():
    pins = _pins()
    assert {"hypothesis", "pytest", "ruff", "mypy", "torch", "torchvision"} <= set(pins)
    wrong = {}
    for name, version in pins.items():
        try:
            got = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        if got != version:
            wrong[name] = (got, version)
    assert not wrong, f"installed vs pinned: {wrong}; run bash tools/setup.sh"


def test_the_test_tools_are_installed_at_their_pins():
    pins = _pins()
    for name in ("hypothesis", "pytest", "ruff", "mypy"):
        assert metadata.version(name) == pins[name]
