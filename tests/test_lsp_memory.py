"""The language server's document states do not pile up: a document in error, edited again and again, keeps
one state alive (its errors' tracebacks, which held the analysis's frames and with them the previous state,
are dropped: archc/lsp/cache.py `_flatten`)."""

from __future__ import annotations

import gc
from pathlib import Path

from archc.lsp.cache import analyse_text
from archc.lsp.state import DocState

BAD = "name: bad\ninput: [3, 16, 16]\nnodes:\n  a: {{op: conv2d, out_channels: 4, kernel_size: 3}}\n" \
      "  b: {{op: linear, out_features: 10, bias: {k}}}\n"


def _alive() -> int:
    gc.collect()
    return sum(type(o) is DocState for o in gc.get_objects())


def test_an_erroneous_document_keeps_one_state(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    before = _alive()
    state = None
    for k in range(30):
        state = analyse_text(BAD.format(k=k + 2), path, previous=state)
        assert state.errors and state.errors[0].message.startswith("linear: bias should be")
    assert state is not None and all(e.__traceback__ is None for e in state.errors)
    assert _alive() - before == 1  # the last state; before the fix, all 30
