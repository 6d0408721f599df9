"""Shared fixtures: --slow runs the big models for real, --accept rewrites golden files."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="also run slow tests (large models at full size)")
    parser.addoption("--accept", action="store_true", help="rewrite golden files with the current output")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def accept(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--accept"))


@pytest.fixture(scope="module")
def one_thread():
    """Training tests on one torch thread: small models train faster on one thread, and many times
    faster on a busy machine (two threads made tiny models about 20x slower under load)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Ultralytics (imported by the twin and loss comparisons when it is installed) patches PIL.Image.open (to
# install a HEIF plugin from the network on an unidentified image) and torch.save at import. Every test
# gets the originals back, so whether Ultralytics ran earlier in the session changes no other test.
def _originals() -> dict[tuple[object, str], object]:
    import torch
    from PIL import Image

    return {(Image, "open"): Image.open, (torch, "save"): torch.save}


_ORIGINALS = _originals()


@pytest.fixture(autouse=True)
def _unpatched_libraries():
    yield
    for (module, name), original in _ORIGINALS.items():
        if getattr(module, name) is not original:
            setattr(module, name, original)
