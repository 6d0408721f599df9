"""Property tests with Hypothesis.

- Generated specs (tests/fuzzgen.py, every registered op): archc refuses few of them, always
  located; for the rest its static shapes and parameter counts equal those of the module built on
  the meta device and run there. A quarter of them are also built and run on the CPU (torch checks
  some arguments only then): batch outputs equal per-sample outputs in eval mode, and honouring
  every `inplace: true` changes neither outputs nor gradients' computability.
- Mutated specs (random edits of valid ones): every outcome is success or a located ArchcError.
- A corrupted scalar is reported at that scalar's line (its column when the value's type is wrong).

2,000 examples each in the normal run; `ARCHC_FUZZ_EXAMPLES=50000 pytest tests/test_fuzz.py` for longer.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archc
from archc import blocks as library
from archc.errors import ArchcError, format_error
from tests.fuzzgen import OP_ARGS, spec_text
from tests.helpers import observed_shapes

_DIR = Path(tempfile.mkdtemp(prefix="archc-fuzz-"))


def _write(text: str) -> Path:
    path = _DIR / f"s{abs(hash(text))}.yaml"
    path.write_text(text)
    return path


EXAMPLES = int(os.environ.get("ARCHC_FUZZ_EXAMPLES", "2000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
RUN = settings(max_examples=max(EXAMPLES // 4, 50), deadline=None, suppress_health_check=list(HealthCheck),
               derandomize=True)
_DRAWS = {"valid": 0, "refused": 0}
MAX_REFUSED = 0.10  # generated specs archc refuses: the generator must stay useful
_SEEN_OPS: set[str] = set()


def test_generator_knows_every_op():
    assert set(OP_ARGS) == set(library.names())


@FUZZ
@given(spec_text())
def test_valid_specs_match_meta_build(text):
    path = _write(text)
    try:
        analysis = archc.check(path)
    except ArchcError as e:
        _DRAWS["refused"] += 1
        assert e.loc is not None, (format_error(e), text)
        return
    _DRAWS["valid"] += 1
    _SEEN_OPS.update(n.op for n in analysis.graph.nodes)
    model = archc.compile(path, device="meta").eval()  # train-mode cumulative BN reads a scalar
    x = torch.empty(2, *analysis.graph.inputs[0][1], device="meta")
    seen = observed_shapes(model, x)
    for p, info in analysis.info.items():
        for path, shape in ({f"{p}[{k}]": s for k, s in enumerate(info.outputs)} or {p: info.shape}).items():
            if info.node.op != "identity":
                assert seen[path] == shape, (path, text)
    assert sum(t.numel() for t in model.parameters()) == analysis.params


def test_generated_specs_are_mostly_valid():
    """The generator's specs are worth something only if archc accepts most of them."""
    total = sum(_DRAWS.values())
    if total < 50:
        pytest.skip("run together with test_valid_specs_match_meta_build")
    assert _DRAWS["refused"] / total <= MAX_REFUSED, _DRAWS
    if EXAMPLES >= 1000:  # enough draws (deterministic: derandomized) to meet every op
        assert not set(library.names()) - _SEEN_OPS, sorted(set(library.names()) - _SEEN_OPS)


def _randomise_(model: torch.nn.Module) -> None:
    """Non-trivial values everywhere (BatchNorm statistics and scales too), so differences show."""
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand_like(t) + 0.5 if "running_var" in name else torch.randn_like(t) * 0.5)


def _run(path: Path, x: torch.Tensor, state: dict | None = None) -> tuple[torch.Tensor, dict]:
    """Build on the CPU (torch checks some arguments only here) and run in eval mode."""
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
    sum(o.float().sum() for o in outs).backward()  # in-place corruption of saved tensors raises here
    return torch.cat([o.detach().flatten(1) for o in outs], 1), {k: v.clone() for k, v in state.items()}


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal up to float noise; NaN (div 0/0, log of a negative) must sit in the same places."""
    scale = b.nan_to_num(0.0, 0.0, 0.0).abs().max().item()
    return bool(torch.allclose(a, b, rtol=1e-4, atol=1e-4 * (1 + scale), equal_nan=True))


@RUN
@given(spec_text())
def test_valid_specs_run_on_cpu_batch_independent_and_inplace_safe(text):
    """Built and run for real: torch accepts every argument the static rules accepted; in eval mode a
    batch's outputs equal its samples' outputs run one by one; `inplace: true` changes nothing."""
    path = _write(text)
    try:
        analysis = archc.check(path)
    except ArchcError:
        return  # counted by test_valid_specs_match_meta_build
    torch.manual_seed(1)
    x = torch.randn(3, *analysis.graph.inputs[0][1])
    out, state = _run(path, x)
    assert out.shape[0] == 3
    if "track_running_stats: false" not in text and "momentum: null" not in text:
        singles = torch.cat([_run(path, x[i:i + 1], state)[0] for i in range(3)])
        assert _close(singles, out), (text, (singles - out).abs().max())
    if "inplace: true" in text:
        plain = _write(text.replace("inplace: true", "inplace: false"))
        assert _close(_run(plain, x, state)[0], out), text


MUTATORS = st.sampled_from(["delete", "insert", "replace_number", "dup_line", "swap_lines", "indent"])
JUNK = st.sampled_from([":", "{", "}", "[", "]", ",", "-", "#", "&a", "*a", "!!str", "|", ">", "'", '"', "%",
                        "@", "`", "\t", "\n", "${", "${1/0}", "${x.y}", "99999999999999", "-1", "1e308", "no",
                        "~", "__class__", "forward", "\x00", "\x1b[2J", "é"])


@FUZZ
@given(spec_text(), MUTATORS, st.integers(0, 10_000), st.integers(0, 10_000), JUNK)
def test_mutated_specs_never_crash(text, how, a, b, junk):
    lines = text.splitlines(keepends=True)
    i, j = a % len(text), b % len(lines)
    if how == "delete":
        text = text[:i] + text[i + 1 + b % 8:]
    elif how == "insert":
        text = text[:i] + junk + text[i:]
    elif how == "replace_number":
        import re

        nums = list(re.finditer(r"\b\d+\b", text))
        m = nums[a % len(nums)]
        text = text[:m.start()] + junk + text[m.end():]
    elif how == "dup_line":
        lines.insert(j, lines[j])
        text = "".join(lines)
    elif how == "swap_lines":
        k = a % len(lines)
        lines[j], lines[k] = lines[k], lines[j]
        text = "".join(lines)
    else:
        lines[j] = " " * (a % 5) + lines[j]
        text = "".join(lines)
    try:
        archc.check(_write(text))
    except ArchcError as e:
        assert e.loc is not None and e.loc.line >= 1, (format_error(e), text)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(spec_text(), st.integers(0, 10_000), st.sampled_from(["bogus_value", "[1, 2, 3]", "-7", "{}", "1.5"]))
def test_corrupted_scalar_is_located(text, pick, junk):
    import re

    top = text.index("\nnodes:\n")
    scalars = [m for m in re.finditer(r"(?<=: )(\d+|true|false)(?=[,}])", text) if m.start() > top]
    if not scalars:
        return
    m = scalars[pick % len(scalars)]
    bad = text[:m.start()] + junk + text[m.end():]
    line = text.count("\n", 0, m.start()) + 1
    col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
    try:
        archc.check(_write(bad))
    except ArchcError as e:
        text_of_error = format_error(e)
        # at the scalar itself, or (a shape rule's complaint about it) at its node on the same line
        exact = (e.loc.line, e.loc.col) == (line, col) or f":{line}:{col})" in text_of_error
        assert exact or (e.loc.line == line and "should be" not in e.message), (text_of_error, bad)
        return
    # some replacements stay valid (e.g. another int); then nothing is to be located
    assert junk in ("-7", "1.5") or junk == "[1, 2, 3]"
