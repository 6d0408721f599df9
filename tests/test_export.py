"""`archc export`: every format reloads and gives the compiled model's outputs."""

from __future__ import annotations

import importlib.util
import sys
import warnings

import pytest
import torch

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
               and v.__module__ == module.__name__ and k not in ("SelfAttention", "LayerNorm2d", "StochasticDepth"))
    other = cls().eval()
    other.load_state_dict(model.state_dict(), strict=True)
    shape = model.archc_graph.inputs[0][1]
    x = torch.randn(2, *(shape if spec != "unet" else (1, 64, 64)))
    with torch.no_grad():
        assert torch.equal(other(x), model(x))
    sys.modules.pop(f"exported_{spec}", None)


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
        ep = torch.export.load(str(export(model, "exported-program", tmp_path / "m.pt2")))
        assert torch.allclose(ep.module()(x), ref, atol=1e-5)


def test_cli_export_with_weights(tmp_path, capsys):
    weights = tmp_path / "w.safetensors"
    assert main(["build", "lenet5", "-o", str(weights)]) == 0
    out = tmp_path / "lenet.py"
    assert main(["export", "lenet5", "--format", "python", "--weights", str(weights), "-o", str(out)]) == 0
    assert "class Lenet5(nn.Module)" in out.read_text()
