"""Mutated zoo specs through the language server's document analysis and `archc.check`: every
outcome is a success (with a shape for every output) or located errors, never an internal error.

Each case takes a built-in spec's text and applies one or two mutations drawn from
``random.Random(case)``: delete a line, duplicate one, insert a junk line, insert a key into a flow
mapping or as a line of its own, delete a key from a flow mapping, replace a value. The vocabulary
holds what users type half-way (a key without its partner, `each:` without `items:`, `NAME[K]` on a
single output, `when:`/`else:`/`repeat:` on several inputs, `${in_shape}` defaults). The number of
cases is counted, not timed: ``ARCHC_FUZZ_CASES`` raises it (default 500: about 15 s of CPU).
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import pytest

import archc
from archc.errors import ArchcError
from archc.lsp.document import DocState, analyse_text, hover_node, inlay_hints, symbols
from archc.resolve import builtin_dir

CASES = int(os.environ.get("ARCHC_FUZZ_CASES", "500"))
SPECS = ["lenet5", "resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "examples/c2f",
         "examples/cbam", "examples/coord_attention", "examples/mhsa", "deeplabv3_mobilenet_v3_large",
         "lraspp_mobilenet_v3_large", "fcn_resnet50", "googlenet", "densenet121", "vit_b_16", "yolo_resnet18",
         "convnext_tiny", "shufflenet_v2_x1_0", "squeezenet1_0", "mnasnet1_0", "unet", "alexnet", "inception_v3"]
KEYS = ["op", "in", "when", "else", "repeat", "as", "name", "seq", "nodes", "out", "outputs", "inputs", "each",
        "items", "index", "in_channels", "in_features", "num_features", "kernel_size", "stride", "padding",
        "out_channels", "dim", "sizes", "chunks", "replace", "args", "default", "type", "node", "train_only", "x"]
VALUES = ["0", "1", "-1", "2", "3", "true", "false", "null", "x", "input", '"input[0]"', '"s[0]"', '"s[1]"',
          "[a, b]", "[input, input]", '"${in_shape[0]}"', '"${in_shape[1]}"', '"${[1, 2]}"', '"${i}"',
          '"${undefined}"', '"${1 // 0}"', "{}", "[]", "[1, 2]", "relu", "add", "conv2d", "split", "concat",
          '"${in_shapes}"', '"${in_shape}"', "1.5", "[2, 2]", "[0]", "{op: relu}", "[{op: relu}]"]
JUNK = ['- {each: "${[1, 2]}"}', '- {each: "${[1, 2]}", as: v}', "s: {op: split, sizes: [1, 2], when: false}",
        's: {op: chunk, chunks: 2}', 'y: {op: relu, in: ["s[0]"]}', 'z: {op: relu, in: ["input[0]"]}',
        "m: {op: add, in: [input, input], when: false}", "r: {op: add, in: [input, input], repeat: 0}",
        'u: {op: conv2d, out_channels: "${in_shape[0]}", kernel_size: 99}', "- relu", "- {op: add}", "foo",
        ":", "- ", "? x", "{", "]", "x: [", "x: {op: nothing}", 'w: {op: relu, when: "${in_shape[0] > 1}"}',
        "lint: {ignore: {W001: x}}", "extends: resnet18", "imports: [yolo_head]", "params: {q: 1}", "nodes:",
        "blocks:", "k: {op: conv2d, out_channels: 4, kernel_size: 1, in_channels: 3}"]


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


KINDS = "fffvvvddlcjk"  # weights: key into a flow mapping, value, flow key deleted, line deleted, copy, junk, key line


def _mutate(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    kind = rng.choice(KINDS)
    flows = [k for k, line in enumerate(lines) if "}" in line and not line.lstrip().startswith("#")]
    i = rng.choice(flows) if kind in "fd" and flows else rng.randrange(len(lines))
    line = lines[i]
    if kind == "f":  # a key into a flow mapping
        at = rng.choice([m.start() for m in re.finditer(r"}", line)] or [len(line)])
        lines[i] = f"{line[:at]}, {rng.choice(KEYS)}: {rng.choice(VALUES)}{line[at:]}"
    elif kind == "v":  # replace a value
        values = list(re.finditer(r":\s+(\"[^\"]*\"|[^,{}\[\]#\s][^,{}\[\]#]*)", line))
        if values:
            m = rng.choice(values)
            lines[i] = line[: m.start(1)] + rng.choice(VALUES) + line[m.end(1):]
    elif kind == "d":  # delete a key from a flow mapping
        keys = list(re.finditer(r",\s*\w+:\s*(\"[^\"]*\"|[^,{}\[\]]+)", line))
        if keys:
            m = rng.choice(keys)
            lines[i] = line[: m.start()] + line[m.end():]
    elif kind == "l":  # delete a line
        del lines[i]
    elif kind == "c":  # copy a line, its key renamed (a new node reading the one before) or not (a duplicate)
        lines.insert(i + 1, re.sub(r"^(\s*)(\w+):", r"\1\2_b:", line) if rng.random() < 0.8 else line)
    elif kind == "j":  # a junk line, indented like its neighbour
        lines.insert(i, _indent(line) + rng.choice(JUNK))
    else:  # a key as a line of its own, at the neighbour's indentation
        lines.insert(i + 1, f"{_indent(line)}{rng.choice(KEYS)}: {rng.choice(VALUES)}")
    return "\n".join(lines) + "\n"


def _case(case: int) -> tuple[str, str]:
    rng = random.Random(case)
    name = SPECS[case % len(SPECS)]
    text = (builtin_dir() / f"{name}.yaml").read_text(encoding="utf-8")
    for _ in range(rng.randint(1, 2)):
        text = _mutate(text, rng)
    return name, text


def _located(errors: list[ArchcError]) -> list[str]:
    """Every problem with an error list: an unlocated error, an internal one in disguise, or an error
    reachable from itself through `others` (the editor would loop on it)."""
    out: list[str] = []
    done: set[int] = set()
    for root in errors:
        stack: list[tuple[ArchcError, frozenset[int]]] = [(root, frozenset())]
        while stack:
            e, above = stack.pop()
            if id(e) in above:
                out.append(f"an error lists itself among its others: {e.message}")
                continue
            if id(e) in done:
                continue
            done.add(id(e))
            if e.loc is None:
                out.append(f"no location: {e.message}")
            if "internal error" in e.message:
                out.append(e.message)
            stack.extend((o, above | {id(e)}) for o in e.others)
    return out


def _answers(state: DocState) -> None:
    """What the editor asks after every edit: inlay hints, the outline, hover on every node."""
    inlay_hints(state)
    symbols(state)
    for site in state.sites:
        hover_node(state, site)


def _outcome(spec: Path, text: str) -> list[str]:
    """Problems with one mutated text: through the LSP's analysis, then through archc.check."""
    state = analyse_text(text, spec)
    problems = _located(state.errors)
    _answers(state)
    spec.write_text(text, encoding="utf-8")
    try:
        analysis = archc.check(spec)
    except ArchcError as e:
        return problems + _located([e])
    if len(analysis.output_shapes) != len(analysis.graph.outputs):
        problems.append(f"ok without a shape for every output: {analysis.graph.outputs}")
    if not state.errors and state.analysis is None:
        problems.append("the LSP found no error and no analysis")
    return problems


@pytest.mark.parametrize("start", range(0, CASES, 50), ids=lambda s: f"cases{s}-{min(s + 50, CASES) - 1}")
def test_mutated_zoo_specs_give_success_or_located_errors(start: int, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    failures = []
    for case in range(start, min(start + 50, CASES)):
        name, text = _case(case)
        try:
            problems = _outcome(spec, text)
        except Exception as e:  # noqa: BLE001 - any other exception is the bug this test looks for
            problems = [f"{type(e).__name__}: {e}"]
        if problems:
            failures.append(f"case {case} ({name}): {problems[:3]}\n{text}")
    assert not failures, f"{len(failures)} of the cases failed; the first:\n{failures[0]}"


def test_the_mutations_do_reach_the_analysis() -> None:
    """The fuzz is not all YAML and schema errors: many cases resolve and are analysed, and many fail
    later than the load (in resolve or shapes) — counted over the first 100 cases."""
    analysed = late = 0
    for case in range(100):
        _, text = _case(case)
        state = analyse_text(text, Path("/nonexistent/spec.yaml"))
        analysed += state.analysis is not None and not state.stand_ins  # stand-ins: recovered beside errors
        late += any(type(e).__name__ in ("ResolveError", "ShapeError", "ExprError") for e in state.errors)
    assert analysed >= 15 and late >= 20, (analysed, late)
