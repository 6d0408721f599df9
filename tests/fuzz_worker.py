"""A child process that builds and runs generated specs on the CPU for tests/test_fuzz.py.

Torch's kernels can be crashed natively by arguments its Python checks accept (a heap corruption
aborts the process, sometimes only later). Running the CPU executions here, one JSON request a line
on stdin and one JSON answer a line on stdout, turns such a crash into one failing example with its
spec text (the parent sees the pipe close) instead of a dead pytest process.

Request: {"text": SPEC}. Answer: {"ok": true} or {"ok": false, "message": ...}.
"""

from __future__ import annotations

import json
import sys
import tempfile
import traceback
from pathlib import Path

import torch

import archc
from archc.errors import ArchcError

_DIR = Path(tempfile.mkdtemp(prefix="archc-fuzz-worker-"))


def _write(text: str, tag: str) -> Path:
    path = _DIR / f"{tag}.yaml"
    path.write_text(text)
    return path


def _randomise_(model: torch.nn.Module) -> None:
    """Non-trivial values everywhere (BatchNorm statistics and scales too), so differences show."""
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand_like(t) + 0.5 if "running_var" in name else torch.randn_like(t) * 0.5)


def _run(path: Path, x: torch.Tensor, state: dict | None = None) -> tuple[torch.Tensor, dict]:
    """Build on the CPU (torch checks some arguments only here) and run in eval mode, with backward."""
    model = archc.compile(path).eval()
    if state is None:
        torch.manual_seed(0)
        _randomise_(model)
        state = model.state_dict()
    else:
        model.load_state_dict(state)
    xs = x.clone().requires_grad_(True)
    out = model(xs)
    outs = out if isinstance(out, tuple) else (out,)
    total = sum(o.float().sum() for o in outs)
    if total.requires_grad:  # outputs computed from constants alone (grid, full, arange) have no gradient
        total.backward()  # in-place corruption of saved tensors raises here
    return torch.cat([o.detach().flatten(1) for o in outs], 1), {k: v.clone() for k, v in state.items()}


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal up to float noise; NaN (div 0/0, log of a negative) must sit in the same places."""
    scale = b.nan_to_num(0.0, 0.0, 0.0).abs().max().item()
    return bool(torch.allclose(a, b, rtol=1e-4, atol=1e-4 * (1 + scale), equal_nan=True))


def check(text: str) -> str | None:
    """None when the spec behaves (or archc refuses it); else what went wrong."""
    path = _write(text, "spec")
    try:
        analysis = archc.check(path)
    except ArchcError:
        return None  # refusals are counted and located by test_valid_specs_match_meta_build
    torch.manual_seed(1)
    x = torch.randn(3, *analysis.graph.inputs[0][1])
    out, state = _run(path, x)
    if out.shape[0] != 3:
        return f"batch of 3 gave {out.shape[0]} rows"
    if "track_running_stats: false" not in text and "momentum: null" not in text:
        singles = torch.cat([_run(path, x[i:i + 1], state)[0] for i in range(3)])
        if not _close(singles, out):
            return f"batch outputs differ from per-sample outputs by {(singles - out).abs().max().item()}"
    if "inplace: true" in text:
        plain = _write(text.replace("inplace: true", "inplace: false"), "plain")
        if not _close(_run(plain, x, state)[0], out):
            return "honouring `inplace: true` changed the outputs"
    return None


def main() -> None:
    torch.set_num_threads(1)
    for line in sys.stdin:
        text = json.loads(line)["text"]
        try:
            problem = check(text)
        except Exception:  # an exception torch raised on an accepted spec: a finding, reported whole
            problem = traceback.format_exc(limit=4)
        print(json.dumps({"ok": problem is None, "message": problem}), flush=True)


if __name__ == "__main__":
    main()
