"""Spec language II: multi-output nodes (`split`, `chunk`, blocks with `outputs:`), `NAME[K]`
references and shape-aware expressions (`in_shape`, `in_shapes`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import archc
from archc.analyze.lint import lint
from archc.errors import ArchcError

SPEC = Path(__file__).parent / "specs" / "multi_output.yaml"


def test_multi_output_shapes_and_outputs():
    a = archc.check(SPEC)
    assert a.info["s"].outputs == ((3, 6, 6), (5, 6, 6))
    assert a.info["x"].shape == (10, 6, 6)  # out_channels: in_shape[0] * 2 of s[1]
    assert a.info["z.conv"].shape == (6, 6, 6)  # the csp block's default c = in_shape[0] = 13
    assert a.output_shapes == [(4, 6, 6), (4, 3, 3), (4, 1, 1)]


def test_multi_output_model_equals_torch():
    torch.manual_seed(0)
    m = archc.compile(SPEC).eval()
    x = torch.randn(2, 8, 6, 6)
    s0, s1 = torch.split(x, [3, 5], 1)
    y = torch.cat([s0, m.x(s1)], 1)
    h0, h1 = torch.chunk(y, 2, 1)
    z = torch.cat([h0, m.z.conv(h1)], 1)
    ta = m.t.a(z)
    tb = m.t.b(ta)
    expected = (ta + ta, tb, m.t.c(tb))
    for ours, theirs in zip(m(x), expected):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def _check(tmp_path: Path, text: str) -> archc.analyze.Analysis:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    return archc.check(path)


def test_in_shape_follows_each_repeat_child(tmp_path):
    a = _check(tmp_path, "name: t\ninput: [3, 8, 8]\nnodes:\n"
                         "  grow: {op: conv2d, repeat: 3, out_channels: \"${in_shape[0] * 2}\", kernel_size: 1}\n")
    assert [a.info[f"grow.{i}"].shape[0] for i in range(3)] == [6, 12, 24]


def test_in_shape_decides_structure(tmp_path):
    """A residual skip only where the width allows it: a block argument defaults to the width flowing
    into the block (evaluated at the call site), and `when:` reads it."""
    text = ("name: t\ninput: [4, 8, 8]\nblocks:\n  unit:\n"
            "    args: {c: int, cin: {type: int, default: \"${in_shape[0]}\"}}\n    nodes:\n"
            "      conv: {op: conv2d, out_channels: \"${c}\", kernel_size: 1}\n"
            "      add: {op: add, in: [conv, input], when: \"${cin == c}\", else: conv}\n"
            "nodes:\n  a: {op: unit, c: 4}\n  b: {op: unit, c: 6}\n")
    a = _check(tmp_path, text)
    assert "a.add" in a.info and "b.add" not in a.info


def test_in_shapes_reads_every_input(tmp_path):
    text = ("name: t\ninput: [4, 8, 8]\nnodes:\n  p: {op: conv2d, out_channels: 2, kernel_size: 1}\n"
            "  q: {op: conv2d, in: [input], out_channels: \"${in_shapes[0][0] + 1}\", kernel_size: 1}\n"
            "  r: {op: concat, in: [p, q]}\n"
            "  s: {op: conv2d, out_channels: \"${in_shapes[0][0]}\", kernel_size: 1}\n")
    assert _check(tmp_path, text).info["s"].shape == (7, 8, 8)


def test_in_shape_of_a_whole_multi_output_node_is_an_error(tmp_path):
    text = ("name: t\ninput: [4, 8, 8]\nnodes:\n  h: {op: chunk, chunks: 2}\n"
            "  c: {op: conv2d, out_channels: \"${in_shape[0]}\", kernel_size: 1}\n")
    with pytest.raises(ArchcError, match="has 2 outputs"):
        _check(tmp_path, text)


def test_check_takes_params_as_keywords_like_compile():
    assert archc.check("resnet18", num_classes=10).output_shapes == [(10,)]
    assert archc.check("resnet18", {"num_classes": 7}).output_shapes == [(7,)]


# `outputs:` entries that depend on params (`when:`) and on the mode (`train_only:`)
OUTPUTS = """name: t
input: [3, 8, 8]
params: {aux: true}
nodes:
  a: {op: conv2d, out_channels: 4, kernel_size: 3}
  head: {op: conv2d, out_channels: 2, kernel_size: 1}
  side:                      # function nodes (chunk, concat, add of 3, pool, flatten) and modules
    in: a
    nodes:
      h: {op: chunk, chunks: 2}
      c: {op: concat, in: ["h[0]", "h[1]", "h[0]"]}
      s: {op: add, in: [c, c, c]}
      pool: {op: adaptive_avg_pool2d, output_size: 1}
      flat: flatten
      fc: {op: linear, out_features: 3}
outputs: [head, {node: side, WHEN}]
"""


def _outputs_spec(tmp_path: Path, when: str, name: str = "t", **params) -> archc.analyze.Analysis:
    path = tmp_path / f"{name}.yaml"
    path.write_text(OUTPUTS.replace("WHEN", when))
    return archc.check(path, **params)


def _side(m: torch.nn.Module, a: torch.Tensor) -> torch.Tensor:
    """The `side` branch of OUTPUTS, written in torch."""
    h0, h1 = torch.chunk(a, 2, 1)
    c = torch.cat([h0, h1, h0], 1)
    return m.side.fc(torch.flatten((c + c + c).mean((2, 3), keepdim=True), 1))


def test_output_when_keeps_or_drops_it(tmp_path):
    kept = _outputs_spec(tmp_path, 'when: "${aux}"')
    assert kept.graph.outputs == ("head", "side.fc") and kept.output_shapes == [(2, 6, 6), (3,)]
    dropped = _outputs_spec(tmp_path, 'when: "${aux}"', aux=False)
    assert dropped.graph.outputs == ("head",) and dropped.output_shapes == [(2, 6, 6)]
    side = sum(i.params for p, i in kept.info.items() if p.startswith("side."))  # issue 26: a dropped output
    assert side > 0 and dropped.params == kept.params - side  # takes the nodes only it reads with it
    assert not [n for n in dropped.graph.nodes if n.path.startswith("side.")]
    assert _outputs_spec(tmp_path, "when: false").graph.outputs == ("head",)


def test_train_only_output(tmp_path):
    """Returned after the others in training mode only, like Inception-v3's aux logits; its branch
    runs only then, so MACs, activations and the inference peak are the eval forward's, while
    parameters and state_dict keys count it."""
    a = _outputs_spec(tmp_path, 'when: "${aux}", train_only: true')
    (tmp_path / "plain.yaml").write_text(OUTPUTS.replace(", {node: side, WHEN}", ""))
    plain = archc.check(tmp_path / "plain.yaml")  # the same nodes, `side` unread (not an output)
    g = a.graph
    assert g.outputs == ("head",) and g.train_outputs == ("side.fc",)
    assert g.train_only() == {f"side.{n}" for n in ("h", "c", "s", "pool", "flat", "fc")}
    assert "in training, also return side.fc" in g.text()
    assert a.params == plain.params and a.train_output_shapes == [(3,)]
    side = sum(a.info[p].macs for p in g.train_only())
    assert side > 0 and a.macs == plain.macs - side
    assert a.activation_elements < plain.activation_elements
    assert not [w for w in lint(a) if w.code == "W001"]  # plain: `side` is a dead branch
    assert [w.node for w in lint(plain) if w.code == "W001"] == ["side.fc"]
    torch.manual_seed(0)
    m = archc.compile(tmp_path / "t.yaml")
    calls = []
    m.side.fc.register_forward_hook(lambda *_: calls.append(1))
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        feats = m.a(x)
        main, aux = m.train()(x)
        assert len(calls) == 1
        out = m.eval()(x)
        assert isinstance(out, torch.Tensor) and torch.equal(out, main) and len(calls) == 1  # not run in eval
        torch.testing.assert_close(main, m.head(feats), rtol=0, atol=0)
        torch.testing.assert_close(aux, _side(m, feats), rtol=1e-6, atol=1e-6)
    assert sorted(m.state_dict()) == sorted(archc.compile(tmp_path / "plain.yaml").state_dict())
    program = torch.export.export(m, (x,)).module()  # eval mode: the main output alone
    torch.testing.assert_close(program(x), out)


@pytest.mark.parametrize("entry,message,column", [
    ("{node: sid, when: true}", "unknown node 'sid'", 24),  # a typo is caught even when dropped
    ('{node: side, when: "${1 + 1}"}', "`when:` should be true or false, got 2", 36),
    ("{node: side, train_only: 1}", "train_only should be boolean", 42),
    ("{node: side, train: true}", "unknown key 'train'", 30),
])
def test_bad_output_entries_are_located(tmp_path, entry, message, column):
    path = tmp_path / "t.yaml"
    path.write_text(OUTPUTS.replace("{node: side, WHEN}", entry))
    with pytest.raises(ArchcError, match=re.escape(message)) as err:
        archc.check(path)
    assert (err.value.loc.line, err.value.loc.col) == (OUTPUTS.count("\n"), column)


def test_outputs_that_leave_nothing_for_eval_are_errors(tmp_path):
    for entries, message in (('[{node: head, when: "${aux}"}]', "every output is dropped"),
                             ("[{node: head, train_only: true}]", "no output is left for eval mode"),
                             ("[head, {node: head, train_only: true}]", "already an output in every mode")):
        path = tmp_path / "t.yaml"
        path.write_text(OUTPUTS.replace("[head, {node: side, WHEN}]", entries))
        with pytest.raises(ArchcError, match=message):
            archc.check(path, aux=False)


def test_printed_schema_accepts_output_entries(tmp_path):
    """`archc schema`'s output, as an editor uses it, validates the entries (and refuses bad ones)."""
    import io
    import json
    from contextlib import redirect_stdout

    import yaml
    from jsonschema import Draft202012Validator

    from archc.cli import main

    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["schema"]) == 0
    validator = Draft202012Validator(json.loads(buf.getvalue()))
    good = yaml.safe_load(OUTPUTS.replace("WHEN", 'when: "${aux}", train_only: true'))
    assert not list(validator.iter_errors(good))
    bad = yaml.safe_load(OUTPUTS.replace("WHEN", "train_only: yes please"))
    assert list(validator.iter_errors(bad))


@pytest.mark.parametrize("aux_weight", [0.5, 0.0])
def test_archc_train_takes_the_main_output_of_a_train_only_spec(tmp_path, aux_weight):
    """In training mode the model returns (main, aux); `archc train`'s loss is the main output's plus
    `aux_weight` times the aux output's, so with weight 0 the auxiliary head gets no gradient (AdamW
    skips it) and stays as built."""
    from safetensors.torch import save_file

    from archc.train.loop import TrainConfig, fit

    path = tmp_path / "aux.yaml"
    path.write_text("name: auxnet\ninput: [3, 8, 8]\nparams: {num_classes: 10}\nnodes:\n"
                    "  conv: {op: conv2d, out_channels: 4, kernel_size: 3, padding: 1}\n"
                    "  pool: {op: adaptive_avg_pool2d, output_size: 1}\n  flat: flatten\n"
                    "  fc: {op: linear, out_features: \"${num_classes}\"}\n"
                    "  aux: {in: conv, seq: [flatten, {op: linear, out_features: \"${num_classes}\"}]}\n"
                    "outputs: [fc, {node: aux, train_only: true}]\n")
    start = archc.compile(path).state_dict()
    save_file(start, tmp_path / "start.safetensors")
    model, history = fit(TrainConfig(str(path), "fake", epochs=1, batch_size=8, fake_size=16, warmup_epochs=0,
                                     out=str(tmp_path / "run"), weights=str(tmp_path / "start.safetensors"),
                                     aux_weight=aux_weight))
    assert len(history) == 1
    end = model.state_dict()
    assert torch.equal(end["aux.1.weight"].cpu(), start["aux.1.weight"]) == (aux_weight == 0)
    assert not torch.equal(end["fc.weight"].cpu(), start["fc.weight"])
