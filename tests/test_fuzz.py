"""Property tests with Hypothesis.

- Generated valid specs: archc's static shapes and parameter counts equal those of the module
  built on the meta device and run there.
- Mutated specs (random edits of valid ones): every outcome is success or an ArchcError.
- A corrupted scalar is reported at that scalar's line and column.

2,000 examples each in the normal run; `ARCHC_FUZZ_EXAMPLES=50000 pytest tests/test_fuzz.py` for longer.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archc
from archc.errors import ArchcError, format_error
from tests.helpers import observed_shapes

_DIR = Path(tempfile.mkdtemp(prefix="archc-fuzz-"))


@st.composite
def layer(draw: st.DrawFn, size: int) -> tuple[str, int]:
    """One node line (flow mapping) and the spatial size after it."""
    kind = draw(st.sampled_from(["conv", "conv", "bn", "act", "pool", "res", "branch", "ln", "gn", "up"]))
    if kind == "conv":
        k = draw(st.integers(1, min(5, size)))
        s = draw(st.integers(1, 2))
        p = draw(st.integers(0, k // 2))
        d = draw(st.integers(1, 2)) if (k - 1) * 2 + 1 <= size + 2 * p else 1
        groups = draw(st.sampled_from([1, 1, 2]))
        out = groups * draw(st.integers(1, 8))
        bias = draw(st.booleans())
        size = (size + 2 * p - d * (k - 1) - 1) // s + 1
        return (f"{{op: conv2d, out_channels: {out}, kernel_size: {k}, stride: {s}, padding: {p}, "
                f"dilation: {d}, groups: {groups}, bias: {str(bias).lower()}}}", size)
    if kind == "bn":
        return "batchnorm2d", size
    if kind == "act":
        return draw(st.sampled_from(["relu", "gelu", "tanh", "silu", "{op: leaky_relu, negative_slope: 0.2}"])), size
    if kind == "pool":
        k = draw(st.integers(1, min(3, size)))
        s = draw(st.integers(1, 2))
        p = draw(st.integers(0, k // 2))
        ceil = draw(st.booleans())
        op = draw(st.sampled_from(["max_pool2d", "avg_pool2d"]))
        num = size + 2 * p - k
        size = (-(-num // s) if ceil else num // s) + 1
        if ceil and (size - 1) * s >= size + p:
            size -= 1
        return f"{{op: {op}, kernel_size: {k}, stride: {s}, padding: {p}, ceil_mode: {str(ceil).lower()}}}", size
    if kind == "res":
        return f"{{op: res, ch: {draw(st.integers(1, 8))}, stride: {draw(st.integers(1, 2))}}}", (size - 1) // 2 + 1 \
            if False else size
    if kind == "branch":
        return f"{{op: branch, a: {draw(st.integers(1, 6))}, b: {draw(st.integers(1, 6))}}}", size
    if kind == "ln":
        return "{op: layernorm, channels: first}", size
    if kind == "gn":
        return "{op: groupnorm, num_groups: 1}", size
    return "{op: interpolate, scale_factor: 2}", size * 2


BLOCKS = """blocks:
  res:
    args: {ch: int, stride: int}
    nodes:
      c1: {op: conv2d, out_channels: "${ch}", kernel_size: 3, stride: "${stride}", padding: 1}
      b1: batchnorm2d
      r1: relu
      c2: {op: conv2d, out_channels: "${ch}", kernel_size: 3, padding: 1}
      proj: {op: conv2d, in: input, out_channels: "${ch}", kernel_size: 1, stride: "${stride}"}
      add: {op: add, in: [c2, proj]}
  branch:
    args: {a: int, b: int}
    nodes:
      x: {op: conv2d, in: input, out_channels: "${a}", kernel_size: 1}
      y: {op: conv2d, in: input, out_channels: "${b}", kernel_size: 3, padding: 1}
      cat: {op: concat, in: [x, y]}
"""


@st.composite
def spec_text(draw: st.DrawFn) -> str:
    c, size = draw(st.integers(1, 4)), draw(st.integers(4, 24))
    lines = ["name: fuzz", f"input: [{c}, {size}, {size}]", BLOCKS.rstrip(), "nodes:"]
    for i in range(draw(st.integers(1, 7))):
        text, new = draw(layer(size))
        if new < 1 or new > 96:
            break
        if "op: res" in text:
            stride = int(text.rsplit("stride: ", 1)[1].rstrip("}"))
            new = (size - 1) // stride + 1
        size = new
        lines.append(f"  n{i}: {text}")
    if draw(st.booleans()):
        lines += ["  pool: {op: adaptive_avg_pool2d, output_size: 1}", "  flat: flatten",
                  f"  fc: {{op: linear, out_features: {draw(st.integers(1, 10))}}}"]
    return "\n".join(lines) + "\n"


def _write(text: str) -> Path:
    path = _DIR / f"s{abs(hash(text))}.yaml"
    path.write_text(text)
    return path


EXAMPLES = int(os.environ.get("ARCHC_FUZZ_EXAMPLES", "2000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@FUZZ
@given(spec_text())
def test_valid_specs_match_meta_build(text):
    path = _write(text)
    try:
        analysis = archc.check(path)
    except ArchcError:
        return  # a generated spec may still be invalid (e.g. groups); then it must only be an ArchcError
    model = archc.compile(path, device="meta")
    x = torch.empty(2, *analysis.graph.inputs[0][1], device="meta")
    seen = observed_shapes(model, x)
    for p, info in analysis.info.items():
        assert seen[p] == info.shape, (p, text)
    assert sum(t.numel() for t in model.parameters()) == analysis.params


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
        assert e.loc is None or e.loc.line >= 1
    except RecursionError:  # pragma: no cover - would be a bug
        raise


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
        assert (e.loc.line, e.loc.col) == (line, col) or f":{line}:{col})" in text_of_error, (text_of_error, bad)
        return
    # some replacements stay valid (e.g. another int); then nothing is to be located
    assert junk in ("-7", "1.5") or junk == "[1, 2, 3]"
