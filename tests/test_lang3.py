"""Spec language III core (issue 26): `share:` (one module's weights for two nodes or groups), `after:`
(insert a node into a `nodes:` mapping, such as a block an extended spec defines), `NAME.*` (every unit of
a repeat as inputs of one node), outputs whose `when:` is false drop their branch, numeric node names,
and `init:` rules on parameter nodes. Each misuse is a located error."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import archc
from archc.errors import ArchcError
from archc.render.dot import to_dot, to_mermaid
from archc.render.layout import units
from tests.helpers import randomize_, twin_mismatch
from tests.test_examples import C2f

EXAMPLES = Path(__file__).resolve().parent.parent / "specs" / "examples"
RTOL = 1e-5


def _write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _error(spec: Path, **params: object) -> ArchcError:
    with pytest.raises(ArchcError) as info:
        archc.check(spec, params)
    return info.value


def _line_of(spec: Path, needle: str) -> int:
    return next(i for i, line in enumerate(spec.read_text().splitlines(), 1) if needle in line)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---- share: -----------------------------------------------------------------------------------------

SIAMESE = """\
name: twin_branches
input: {a: [3, 16, 16], b: [3, 16, 16]}
blocks:
  encoder:
    nodes:
      conv1: {op: conv2d, out_channels: 8, kernel_size: 3, padding: 1, bias: false}
      bn1: batchnorm2d
      relu: relu
      pool: {op: adaptive_avg_pool2d, output_size: 1}
      flat: flatten
      fc: {op: linear, out_features: 4}
nodes:
  enc_a: {op: encoder, in: a}
  enc_b: {op: encoder, in: b, share: enc_a}
outputs: [enc_a, enc_b]
"""


def test_siamese_parameters_counted_once_keys_once_and_one_weight_moves_both(tmp_path):
    torch.manual_seed(0)
    shared, unshared = _write(tmp_path, SIAMESE), _write(tmp_path, SIAMESE.replace(", share: enc_a", ""), "u.yaml")
    one_branch = sum(i.params for p, i in archc.check(unshared).info.items() if p.startswith("enc_a."))
    assert one_branch == 8 * 3 * 9 + 16 + 8 * 4 + 4
    assert archc.check(unshared).params == 2 * one_branch
    assert archc.check(shared).params == one_branch  # the analysis (summary, check) counts it once
    model = archc.compile(shared).eval()
    assert _count(model) == one_branch
    keys = list(model.state_dict())
    assert len(keys) == len(set(keys)) and keys and all(k.startswith("enc_a.") for k in keys)
    x, y = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        a, b = model(x, x)
        assert torch.equal(a, b)  # one function: the same image gives the same embedding
        a0, b0 = model(x, y)
        model.get_parameter("enc_a.fc.weight").add_(1.0)
        a1, b1 = model(x, y)
    assert not torch.allclose(a0, a1) and not torch.allclose(b0, b1)


def test_shared_weights_are_trained_once(tmp_path):
    model = archc.compile(_write(tmp_path, SIAMESE)).train()
    a, b = model(torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16))
    b.sum().backward()  # the loss reads branch b only: the gradient lands on enc_a's (the one) weights
    assert model.get_parameter("enc_a.conv1.weight").grad.abs().sum() > 0


def test_siamese_example_is_drawn_with_the_sharing():
    analysis = archc.check("examples/siamese")
    layout = units(analysis)
    assert layout.shared == [("enc_a", "enc_b")]
    assert "weights of enc_a" in layout.units["enc_b"].notes
    dot = to_dot(layout, "siamese")
    assert "shares weights" in dot and "dashed" in dot
    assert "-.-|shares weights|" in to_mermaid(layout, "siamese")
    assert all(i.params == 0 for p, i in analysis.info.items() if p.startswith("enc_b."))


def test_one_node_shares_another_on_a_map_of_other_size(tmp_path):
    spec = _write(tmp_path, """\
name: pyramid_head
input: [8, 32, 32]
nodes:
  p4: {op: conv2d, out_channels: 8, kernel_size: 3, stride: 2, padding: 1}
  p5: {op: conv2d, out_channels: 8, kernel_size: 3, stride: 2, padding: 1}
  head4: {op: conv2d, out_channels: 6, kernel_size: 1, in: p4}
  head5: {op: conv2d, out_channels: 6, kernel_size: 1, in: p5, share: head4}
outputs: [head4, head5]
""")
    analysis = archc.check(spec)
    assert analysis.info["head5"].params == 0 and analysis.info["head5"].macs == 6 * 8 * 8 * 8
    assert "head5 = conv2d(p5, " in analysis.graph.text() and "# weights of head4" in analysis.graph.text()
    model = archc.compile(spec)
    assert "head5.weight" not in model.state_dict() and _count(model) == analysis.params


def test_share_refuses_other_arguments(tmp_path):
    text = SIAMESE.replace("nodes:\n  enc_a", "  wider:\n    nodes:\n      conv1: {op: conv2d, out_channels: 8, "
                           "kernel_size: 3, padding: 1, bias: false}\n      fc: {op: linear, out_features: 5}\n"
                           "nodes:\n  enc_a")
    text = text.replace("{op: encoder, in: b, share: enc_a}", "{op: wider, in: b, share: enc_a}")
    spec = _write(tmp_path, text)
    err = _error(spec)
    assert "'enc_b' cannot share the weights of 'enc_a': 'enc_a.bn1' (batchnorm2d) has no counterpart 'enc_b.bn1'" \
        in err.message
    line = _line_of(spec, "share: enc_a")
    assert (err.loc.line, err.loc.col) == (line, text.splitlines()[line - 1].index("enc_a}") + 1)
    encoder = SIAMESE.split("    nodes:\n")[1].split("nodes:\n")[0]
    wider = "  wider:\n    nodes:\n" + encoder.replace("out_features: 4", "out_features: 5")
    spec = _write(tmp_path, SIAMESE.replace("nodes:\n  enc_a", wider + "nodes:\n  enc_a")
                  .replace("{op: encoder, in: b,", "{op: wider, in: b,"))
    err = _error(spec)
    assert "'enc_b.fc' cannot share the weights of 'enc_a.fc': out_features is 5 here, 4 there" in err.message
    assert "same op and the same arguments" in err.hint


BAD_SHARES = [
    ("b: {op: conv2d, out_channels: 4, kernel_size: 1, share: a}", "it is conv2d, the other linear"),
    ("b: {op: linear, out_features: 4, share: aa}", "no node or group is there"),
    ("b: {op: flatten, share: a}", "'b' has no weights to share"),
    ("b: {op: linear, out_features: 4, share: a, in: input}", "its inputs give it 52 parameters against 36 there"),
    ("b: {op: linear, out_features: 4, share: b}", "one contains the other"),
]


@pytest.mark.parametrize("line,message", BAD_SHARES)
def test_share_misuse_is_located(tmp_path, line, message):
    text = ("name: s\ninput: [12]\nnodes:\n  a: {op: linear, out_features: 8}\n  a2: {op: linear, out_features: 4}\n"
            f"  {line}\n")
    text = text.replace("a: {op: linear, out_features: 8}", "a: {op: linear, out_features: 4, in: c}\n"
                        "  c: {op: linear, out_features: 8, in: input}") if "inputs give" in message else text
    spec = _write(tmp_path, text)
    err = _error(spec)
    assert message in err.message, err.message
    assert err.loc is not None and err.loc.line == _line_of(spec, "share:") and err.hint


def test_share_in_a_circle_is_refused(tmp_path):
    spec = _write(tmp_path, "name: s\ninput: [12]\nnodes:\n  a: {op: linear, out_features: 4, share: b}\n"
                            "  b: {op: linear, out_features: 4, share: a, in: input}\noutputs: [a, b]\n")
    assert "goes round in a circle" in _error(spec).message


def test_freezing_a_node_that_owns_no_weights_is_refused(tmp_path):
    spec = _write(tmp_path, "extends: examples/siamese\nname: s2\nfrozen: [enc_b]\n")
    err = _error(spec)
    assert "frozen: 'enc_b' owns no weights: it shares those of 'enc_a." in err.message and err.loc.line == 3
    model = archc.compile(_write(tmp_path, "extends: examples/siamese\nname: s3\nfrozen: [enc_a]\n", "s3.yaml"))
    assert not model.get_parameter("enc_a.fc.weight").requires_grad and model.get_parameter("head.weight").requires_grad


# ---- after: editing what you extend --------------------------------------------------------------------


def _se_copied(tmp_path: Path) -> Path:
    """resnet50_se written the old way: the whole bottleneck restated (replace: true) with se in it."""
    base = (Path(archc.__file__).resolve().parent.parent / "specs" / "resnet50.yaml").read_text()
    body = base.split("  bottleneck:       ")[1].split("\nnodes:")[0]
    body = body.replace("      downsample:\n", "      se: {op: squeeze_excite, ratio: \"${se_ratio}\"}\n"
                        "      downsample:\n", 1).replace("add: {op: add, in: [bn3, downsample]}",
                                                           "add: {op: add, in: [se, downsample]}")
    se = (EXAMPLES / "resnet50_se.yaml").read_text().split("blocks:\n")[1].split("  bottleneck:")[0]
    text = ("extends: resnet50\nname: resnet50_se\nparams: {se_ratio: 16}\nblocks:\n" + se
            + "  bottleneck:\n    replace: true\n" + body.split("\n", 1)[1])
    return _write(tmp_path, text, "copied.yaml")


def test_after_inserts_into_every_bottleneck_as_the_copied_block_does(tmp_path):
    short, copied = archc.check("examples/resnet50_se"), archc.check(_se_copied(tmp_path))
    assert short.params == copied.params == 28_088_024  # timm's seresnet50
    assert short.graph.text() == copied.graph.text()  # the same nodes, inputs and order
    assert sum(n.path.endswith(".se.fc1") for n in short.graph.nodes) == 16
    add = short.graph.node("layer1.0.add")
    assert add.inputs[0] == "layer1.0.se.scale"
    assert (EXAMPLES / "resnet50_se.yaml").read_text().count("\n") < 30


def test_replace_one_node_inside_an_inherited_block(tmp_path):
    """The other edit: `replace: true` on one node of a block the base defines takes that node whole."""
    spec = _write(tmp_path, "extends: resnet50\nname: r5\nblocks:\n  bottleneck:\n    nodes:\n      conv2:\n"
                            "        replace: true\n        op: conv2d\n        out_channels: \"${planes}\"\n"
                            "        kernel_size: 5\n        stride: \"${stride}\"\n        padding: 2\n"
                            "        bias: false\n")
    wide, base = archc.check(spec), archc.check("resnet50")
    convs = [(n, wide.info[n.path].params) for n in wide.graph.nodes if n.path.endswith(".conv2")]
    assert len(convs) == 16 and all(n.args["kernel_size"] == 5 for n, _ in convs)
    grown = sum(p * 25 // 9 - p for p in (base.info[n.path].params for n, _ in convs))
    assert wide.params == base.params + grown
    assert [n.path for n in wide.graph.nodes] == [n.path for n in base.graph.nodes]


def test_after_reads_the_node_it_follows_and_chains(tmp_path):
    spec = _write(tmp_path, """\
extends: base.yaml
name: child
nodes:
  gate: {op: sigmoid, after: b}
  scale: {op: mul, in: [b, gate], after: gate}
""")
    _write(tmp_path, "name: base\ninput: [4, 8, 8]\nnodes:\n  a: {op: conv2d, out_channels: 4, kernel_size: 1}\n"
                     "  b: relu\n  c: {op: add, in: [b, a]}\n", "base.yaml")
    g = archc.check(spec).graph
    assert [n.path for n in g.nodes] == ["a", "b", "gate", "scale", "c"]
    assert g.node("gate").inputs == ("b",)
    assert g.node("scale").inputs == ("b", "gate")  # `in: b` in the inserted node: b itself
    assert g.node("c").inputs == ("scale", "a")  # the old reader of b reads the last node placed after it


@pytest.mark.parametrize("line,message", [
    ("x: {op: relu, after: bb}", "'x' is placed after 'bb', which is no sibling here"),
    ("x: {op: relu, after: s}", "'x' is placed after 's', which has several outputs"),
])
def test_after_misuse_is_located(tmp_path, line, message):
    text = ("name: s\ninput: [4, 8, 8]\nblocks:\n  two:\n    nodes:\n      p: {op: chunk, chunks: 2}\n"
            "    outputs: [\"p[0]\", \"p[1]\"]\nnodes:\n  b: relu\n  s: two\n  t: {op: add, in: [\"s[0]\", \"s[1]\"]}\n"
            f"  {line}\n")
    spec = _write(tmp_path, text)
    err = _error(spec)
    assert message in err.message and err.hint
    assert err.loc.line == _line_of(spec, "after:")


def test_after_on_a_seq_item_is_refused(tmp_path):
    spec = _write(tmp_path, "name: s\ninput: [4]\nnodes:\n  g:\n    seq:\n      - relu\n      - {op: relu, after: 0}\n")
    err = _error(spec)
    assert "`after:` on a seq item" in err.message and err.loc.line == 7


# ---- NAME.*: repeats that fan in ---------------------------------------------------------------------------

HAND_LISTED = """\
name: c2f_listed
imports: [c2f_fanin.yaml]
input: [64, 32, 32]
blocks:
  c2f_two:
    nodes:
      cv1: {op: conv, c2: 128}
      y: {op: chunk, chunks: 2}
      m:
        in: "y[1]"
        nodes:
          0: {op: bottleneck, c: 64, shortcut: true}
          1: {op: bottleneck, c: 64, shortcut: true}
        outputs: [0, 1]
      cat: {op: concat, in: ["y[0]", "y[1]", "m[0]", "m[1]"]}
      cv2: {op: conv, c2: 128}
nodes:
  c2f: c2f_two
"""


def test_fan_in_equals_the_hand_listed_units_and_the_reference(tmp_path):
    torch.manual_seed(0)
    spec = EXAMPLES / "c2f_fanin.yaml"
    listed = _write(tmp_path, HAND_LISTED, "listed.yaml")
    (tmp_path / "c2f_fanin.yaml").write_text(spec.read_text())
    fan, hand = archc.compile(spec).eval(), archc.compile(listed).eval()
    ref = C2f(64, 128, 2, True)
    x = torch.randn(2, 64, 32, 32, generator=torch.Generator().manual_seed(1))
    randomize_(ref, 0, x).eval()
    assert list(fan.state_dict()) == list(hand.state_dict())
    assert sorted(fan.state_dict()) == sorted("c2f." + k for k in ref.state_dict())
    assert _count(fan) == _count(hand) == _count(ref) == archc.check(spec).params
    state = {"c2f." + k: v for k, v in ref.state_dict().items()}
    fan.load_state_dict(state, strict=True)
    hand.load_state_dict(state, strict=True)
    with torch.no_grad():
        want = ref(x)
        assert twin_mismatch(fan(x), want, RTOL) is None
        assert torch.equal(fan(x), hand(x))
    cat = archc.check(spec).graph.node("c2f.cat")
    assert cat.inputs == ("c2f.y[0]", "c2f.y[1]", "c2f.m.0.add", "c2f.m.1.add")


@pytest.mark.parametrize("n", [1, 3])
def test_fan_in_follows_the_repeat_count(n):
    cat = archc.check("examples/c2f_fanin", {"n": n}).graph.node("c2f.cat")
    assert len(cat.inputs) == 2 + n


@pytest.mark.parametrize("line,message", [
    ('cat: {op: concat, in: [a, "n.*"]}\n  n: {op: relu, repeat: 2}', "which is not defined before this node"),
    ('cat: {op: concat, in: [a, "a.*"]}', "'a.*' reads the units of 'a', which is not a repeat"),
    ('cat: {op: concat, in: [a, "mm.*"]}', "did you mean 'm.*'"),
])
def test_fan_in_misuse_is_located(tmp_path, line, message):
    spec = _write(tmp_path, f"name: s\ninput: [4, 8, 8]\nnodes:\n  a: relu\n  m: {{op: relu, repeat: 2}}\n  {line}\n")
    err = _error(spec)
    assert message in f"{err.message} {err.hint}"
    assert err.loc.line == _line_of(spec, "cat:")


# ---- outputs whose when: is false ---------------------------------------------------------------------------


def test_a_dropped_output_takes_its_branch_with_it():
    off, on = archc.check("examples/numbered"), archc.check("examples/numbered", {"aux": True})
    paths_off, paths_on = [n.path for n in off.graph.nodes], [n.path for n in on.graph.nodes]
    assert set(paths_on) - set(paths_off) == {"10", "11", "12"} and set(paths_off) < set(paths_on)
    assert on.params - off.params == 64 * 10 + 10
    assert on.macs - off.macs == 64 * 10
    drawn = units(off, expand=True).units
    assert not {"10", "11", "12"} & set(drawn) and {"10", "11", "12"} <= set(units(on, expand=True).units)
    model = archc.compile("examples/numbered", device="meta")
    assert "12.weight" not in model.state_dict() and _count(model) == off.params


def test_a_node_kept_by_another_output_stays(tmp_path):
    spec = _write(tmp_path, "name: s\ninput: [4]\nparams: {aux: false}\nnodes:\n  a: {op: linear, out_features: 4}\n"
                            "  b: {op: linear, out_features: 2}\n  c: {op: linear, out_features: 3, in: a}\n"
                            "outputs: [b, {node: c, when: \"${aux}\"}]\n")
    assert [n.path for n in archc.check(spec).graph.nodes] == ["a", "b"]


# ---- names --------------------------------------------------------------------------------------------------


def test_numeric_names_are_module_paths_and_references():
    model = archc.compile("examples/numbered", device="meta")
    keys = list(model.state_dict())
    assert keys[0] == "0.conv.weight" and "2.m.0.cv1.conv.weight" in keys
    graph = archc.check("examples/numbered").graph
    assert graph.node("7").inputs == ("6", "4.cv2.act")
    assert model.get_submodule("0.conv").weight.shape == (16, 3, 3, 3)


@pytest.mark.parametrize("line,message,hint", [
    ("007: relu", "'007' is not a valid name in nodes", "a plain number without a leading zero"),
    ("x: {op: relu, in: 9}", "unknown node '9'", "known here: 0, input, x"),
    ("1x: relu", "'1x' is not a valid name in nodes", "not starting with a digit"),
])
def test_bad_names_are_located(tmp_path, line, message, hint):
    spec = _write(tmp_path, f"name: s\ninput: [4]\nnodes:\n  0: relu\n  {line}\n")
    err = _error(spec)
    assert message in err.message and hint in (err.hint or "")
    assert err.loc.line == 5


# ---- init: on parameter nodes --------------------------------------------------------------------------------

PARAMETER_INIT = """\
name: table
input: [4, 6]
nodes:
  table: {op: parameter, shape: [4, 6], combine: add}
init:
  - {path: table, RULE}
"""


def test_an_init_rule_fills_a_parameter_node(tmp_path):
    model = archc.compile(_write(tmp_path, PARAMETER_INIT.replace("RULE", "table: {constant: {value: 0.5}}")))
    assert torch.equal(model.get_parameter("table"), torch.full((1, 4, 6), 0.5))


def test_an_init_rule_naming_something_else_on_a_parameter_node_is_refused(tmp_path):
    spec = _write(tmp_path, PARAMETER_INIT.replace("RULE", "weight: ones"))
    err = _error(spec)
    assert "init: node 'table' is a parameter node: it has no 'weight'" in err.message
    assert "`table: ...`" in err.hint and err.loc.line == 6



FAN_IN_OF = """\
archc: 1
name: fan
input: [8, 16, 16]
nodes:
  m: {op: conv2d, out_channels: OUT, kernel_size: 1, repeat: TIMES}
  cat: {op: concat, in: ["m.*"]}
"""


def test_a_fan_in_over_a_failed_repeat_reports_the_repeat_once(tmp_path):
    """The units of a repeat that failed: its error alone (was an internal IndexError)."""
    with pytest.raises(ArchcError) as info:
        archc.check(_write(tmp_path, FAN_IN_OF.replace("OUT", '"${nothere}"').replace("TIMES", "2")))
    assert "unknown name 'nothere'" in info.value.message and info.value.loc.line == 5
    assert all(o.message == info.value.message for o in info.value.others)  # no error of the fan-in's own


def test_a_fan_in_over_no_units_is_a_located_error(tmp_path):
    with pytest.raises(ArchcError) as info:
        archc.check(_write(tmp_path, FAN_IN_OF.replace("OUT", "4").replace("TIMES", "0")))
    assert "reads no inputs" in info.value.message and info.value.loc.line == 6
