"""`archc export`: every format reloads and gives the compiled model's outputs."""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings

import pytest
import torch
from safetensors.torch import load_file

import archc
from archc.cli import main
from archc.export import export


def _model(spec: str, **params):
    torch.manual_seed(0)
    return archc.compile(spec, **params).eval()


@pytest.mark.parametrize("spec,params", [
    ("resnet18", {}), ("vit_b_32", {"layers": 2}), ("convnext_tiny", {"depths": [1, 1, 1, 1]}),
    ("efficientnet_b0", {}), ("googlenet", {}), ("densenet121", {"blocks": [1, 1, 1, 1]}),
    ("unet", {"f": [4, 8, 16, 32]}), ("alexnet_2012", {}), ("yolo_head", {}),
    ("swin_t", {"depths": [2, 1, 1, 1]}), ("swin_v2_t", {"depths": [2, 1, 1, 1]}),
    ("maxvit_t", {"depths": [1, 1, 1, 1]}),
])
def test_python_file_is_self_contained_and_equal(spec, params, tmp_path):
    model = _model(spec, **params)
    path = export(model, "python", tmp_path / f"{spec}.py")
    text = path.read_text()
    assert "import archc" not in text and "from archc" not in text
    mod_spec = importlib.util.spec_from_file_location(f"exported_{spec}", path)
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)  # the generated file, run as a user would import it
    cls = next(v for k, v in vars(module).items() if isinstance(v, type) and issubclass(v, torch.nn.Module)
               and v.__module__ == module.__name__
               and k not in ("SelfAttention", "LayerNorm2d", "StochasticDepth", "PartitionAttention",
                            "ScaledDotProductAttention"))
    other = cls().eval()
    other.load_state_dict(model.state_dict(), strict=True)
    shape = model.archc_graph.inputs[0][1]
    x = torch.randn(2, *(shape if spec != "unet" else (1, 64, 64)))
    with torch.no_grad():
        assert torch.equal(other(x), model(x))
    sys.modules.pop(f"exported_{spec}", None)


def test_python_file_keeps_train_only_outputs(tmp_path):
    """A train-only head (a module and a function node) is written too: (main, aux) in training."""
    spec = tmp_path / "aux.yaml"
    spec.write_text("name: aux\ninput: [3, 16, 16]\nnodes:\n"
                    "  conv: {op: conv2d, out_channels: 4, kernel_size: 3}\n"
                    "  pool: {op: adaptive_avg_pool2d, output_size: 1}\n  flat: flatten\n"
                    "  head: {op: linear, out_features: 5}\n"
                    "  aux_pool: {op: adaptive_avg_pool2d, output_size: 2, in: conv}\n  aux_flat: flatten\n"
                    "  aux: {op: linear, out_features: 5}\n"
                    "outputs: [head, {node: aux, train_only: true}]\n")
    model = archc.compile(spec)
    path = export(model, "python", tmp_path / "aux.py")
    mod_spec = importlib.util.spec_from_file_location("exported_aux", path)
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    other = module.Aux()
    other.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(other.eval()(x), model.eval()(x))
        got, want = other.train()(x), model.train()(x)
    assert isinstance(got, tuple) and len(got) == 2 and all(torch.equal(a, b) for a, b in zip(got, want))
    sys.modules.pop("exported_aux", None)


def test_onnx_matches_in_onnxruntime(tmp_path):
    import onnx
    import onnxruntime as ort

    model = _model("resnet18", num_classes=10)
    path = export(model, "onnx", tmp_path / "m.onnx")
    onnx.checker.check_model(onnx.load(str(path)))
    x = torch.randn(1, 3, 224, 224)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        assert abs(out - model(x).numpy()).max() < 1e-4


def test_torchscript_and_exported_program(tmp_path):
    model = _model("mobilenet_v2", width_mult=0.5)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        ref = model(x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated upstream
            ts = torch.jit.load(str(export(model, "torchscript", tmp_path / "m.ts.pt")))
        assert torch.allclose(ts(x), ref, atol=1e-5)
        ep = torch.export.load(str(export(model, "exported-program", tmp_path / "m.pt2"))).module()
        assert torch.allclose(ep(x), ref, atol=1e-5)
        x3 = torch.randn(3, 3, 224, 224)  # the batch axis is dynamic by default
        assert torch.allclose(ep(x3), model(x3), atol=1e-5)


def _import(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the generated file, run as a user would import it
    sys.modules.pop(name, None)
    return module


def test_cli_python_export_writes_the_weights_beside_it(tmp_path, capsys):
    weights = tmp_path / "w.safetensors"
    assert main(["build", "lenet5", "-o", str(weights)]) == 0
    out = tmp_path / "lenet.py"
    assert main(["export", "lenet5", "--format", "python", "--weights", str(weights), "-o", str(out)]) == 0
    assert "class Lenet5(nn.Module)" in out.read_text()
    assert f"wrote {tmp_path / 'lenet.pt'}: the weights" in capsys.readouterr().err
    model = _import(out, "exported_lenet").load_model()
    ours = archc.compile("lenet5").eval()
    ours.load_state_dict(load_file(str(weights)))
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), ours(x))
    assert main(["export", "lenet5", "--format", "python", "-o", str(tmp_path / "bare.py")]) == 0
    assert "no --weights: the exported model holds random initial weights" in capsys.readouterr().err
    assert not (tmp_path / "bare.pt").exists() and "def load_model" not in (tmp_path / "bare.py").read_text()


def test_cli_export_takes_a_run_directory(tmp_path, capsys):
    """A run's weights come with the parameters it was trained with (num_classes set from the data)."""
    run = tmp_path / "run"
    run.mkdir()
    assert main(["build", "lenet5", "--set", "num_classes=3", "-o", str(run / "best.safetensors")]) == 0
    (run / "run.json").write_text(json.dumps({"params": {"num_classes": 3}}))
    out = tmp_path / "m.py"
    assert main(["export", "lenet5", "--format", "python", "--weights", str(run), "-o", str(out)]) == 0
    assert f"weights from {run / 'best.safetensors'}" in capsys.readouterr().err
    with torch.no_grad():
        assert _import(out, "exported_run").load_model()(torch.randn(1, 1, 32, 32)).shape == (1, 3)


def test_cli_onnx_takes_any_batch_size(tmp_path, capsys):
    import onnxruntime as ort

    weights = tmp_path / "w.safetensors"
    assert main(["build", "lenet5", "-o", str(weights)]) == 0
    path = tmp_path / "lenet5.onnx"
    assert main(["export", "lenet5", "--format", "onnx", "--weights", str(weights), "-o", str(path)]) == 0
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model = archc.compile("lenet5").eval()
    model.load_state_dict(load_file(str(weights)))
    for batch in (4, 1):
        x = torch.randn(batch, 1, 32, 32)
        (out,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
        with torch.no_grad():
            assert out.shape == (batch, 10) and abs(out - model(x).numpy()).max() < 1e-5


def test_static_export_fixes_the_batch(tmp_path):
    model = _model("lenet5")
    ep = torch.export.load(str(export(model, "exported-program", tmp_path / "m.pt2", static=True))).module()
    assert ep(torch.randn(1, 1, 32, 32)).shape == (1, 10)
    with pytest.raises(AssertionError, match=r"size\(\)\[0\] == 1"):  # torch.export's guard on the batch
        ep(torch.randn(3, 1, 32, 32))


def test_yolov8_onnx_carries_the_decoding(tmp_path):
    """The decoded detections (boxes in pixels + class scores, decoding written in the spec) come out of
    onnxruntime equal to eager, at another batch size than the export's example too."""
    import onnxruntime as ort

    model = archc.compile("yolov8n", classes=3, input_shape=[3, 64, 64]).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point() and "dfl" not in name:
                t.copy_(torch.rand_like(t) + 0.5 if "running_var" in name else torch.randn_like(t) * 0.1)
    path = export(model, "onnx", tmp_path / "v8.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(3, 3, 64, 64)
    (out,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        ref = model(x)
    assert out.shape == (3, 4 + 3, 84)  # 8x8 + 4x4 + 2x2 anchors
    assert ref[:, :4].abs().max() > 1  # boxes in pixels, not a degenerate output
    assert abs(out - ref.numpy()).max() <= 1e-4 * (1 + ref.abs().max().item())


# -- every op of the library, written as Python ----------------------------------------------------------
def _one_spec_using(op: str, tmp_path) -> str:
    """The first generated spec (derandomized) that uses ``op`` and that archc accepts."""
    from hypothesis import HealthCheck, Phase, find, settings

    from archc.errors import ArchcError
    from tests.fuzzgen import spec_text

    def usable(text: str) -> bool:
        if f"op: {op}," not in text:
            return False
        (tmp_path / "s.yaml").write_text(text)
        try:
            archc.check(tmp_path / "s.yaml")
        except ArchcError:
            return False
        return True

    return find(spec_text(ops=[op]), usable, settings=settings(
        max_examples=300, derandomize=True, database=None, phases=[Phase.generate],
        suppress_health_check=list(HealthCheck)))


def _ops() -> list[str]:
    from archc import blocks as library

    return sorted(library.names())


@pytest.mark.parametrize("op", _ops())
def test_python_export_of_every_op_equals_the_model(op, tmp_path):
    """Each op of archc/blocks, in a generated spec, exports as Python that imports without archc and gives the
    compiled model's outputs bit for bit (eval mode) with its state_dict."""
    from tests.fuzzgen import OP_ARGS

    if op not in OP_ARGS:
        pytest.skip(f"tests/fuzzgen.py does not draw {op} yet (test_fuzz asks for it)")
    spec = tmp_path / "s.yaml"
    spec.write_text(_one_spec_using(op, tmp_path))
    torch.manual_seed(0)
    model = archc.compile(spec).eval()
    path = export(model, "python", tmp_path / f"op_{op}.py")
    assert "import archc" not in path.read_text() and "from archc" not in path.read_text()
    other = _import(path, f"exported_op_{op}").Fuzz().eval()
    other.load_state_dict(model.state_dict(), strict=True)
    x = tuple(torch.randn(2, *shape) for _, shape in model.archc_graph.inputs)
    with torch.no_grad():
        want, got = _flat(model(*x)), _flat(other(*x))
    assert len(want) == len(got) and all(torch.allclose(a, b, rtol=0, atol=0, equal_nan=True)  # log, sqrt: nan
                                         for a, b in zip(want, got)), op


def _flat(out):
    return tuple(out) if isinstance(out, tuple | list) else (out,)


def test_onnx_names_are_the_specs(tmp_path):
    """ONNX inputs carry the spec's input names and outputs its output names (not `linear_16`), in
    onnxruntime too; a two-output spec keeps both names in order."""
    import onnxruntime as ort

    spec = tmp_path / "two.yaml"
    spec.write_text("name: two\ninput: {image: [3, 8, 8]}\nnodes:\n"
                    "  conv: {op: conv2d, out_channels: 4, kernel_size: 3, in: image}\n"
                    "  pool: {op: adaptive_avg_pool2d, output_size: 1}\n  flat: flatten\n"
                    "  logits: {op: linear, out_features: 5}\n  boxes: {op: linear, out_features: 4, in: flat}\n"
                    "outputs: [logits, boxes]\n")
    model = _model(str(spec))
    path = export(model, "onnx", tmp_path / "two.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["image"]
    assert [o.name for o in sess.get_outputs()] == ["logits", "boxes"]
    x = torch.randn(3, 3, 8, 8)
    got = sess.run(["boxes"], {"image": x.numpy()})[0]
    with torch.no_grad():
        assert abs(got - model(x)[1].numpy()).max() < 1e-5
    from archc.export.exporters import onnx_output_names

    assert onnx_output_names(("a", "b[0]", "a")) == ["a", "b[0]", "a_1"]
