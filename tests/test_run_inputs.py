"""A wrong input at run time is a clear error naming the spec's input (issue 29), and nothing else changes:
inputs torch accepts run as before, and tracing and export see the plain forward."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import fx

import archc
from archc.backend.inputs import InputShapeError

HEAD = ("  conv: {op: conv2d, out_channels: 4, kernel_size: 3, padding: 1}\n  bn: batchnorm2d\n"
        "  flat: flatten\n  fc: {op: linear, out_features: 5}\n")


def _compile(tmp_path: Path, shape: str, nodes: str = HEAD, name: str = "m") -> torch.nn.Module:
    """A spec whose input is named `image` (symbolic sizes: the plain list form, named `input`)."""
    path = tmp_path / f"{name}.yaml"
    given = shape if any(c.isalpha() for c in shape) else f"{{image: {shape}}}"
    path.write_text(f"name: {name}\ninput: {given}\nnodes:\n{nodes}")
    torch.manual_seed(0)
    return archc.compile(path).eval()


def _error(model: torch.nn.Module, x: torch.Tensor) -> InputShapeError:
    with torch.no_grad(), pytest.raises(InputShapeError) as caught:
        model(x)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value.__cause__, Exception)
    return caught.value


def test_a_sample_without_its_batch_dimension(tmp_path: Path) -> None:
    err = _error(_compile(tmp_path, "[3, 8, 8]"), torch.randn(3, 8, 8))
    text = str(err)
    assert "m: input 'image' expects (B, 3, 8, 8), got (3, 8, 8): 3 dims, not 4" in text
    assert "x.unsqueeze(0)" in text and err.node == "image"


def test_wrong_channels_name_the_fix(tmp_path: Path) -> None:
    model = _compile(tmp_path, "[3, 8, 8]")
    text = str(_error(model, torch.randn(2, 1, 8, 8)))
    assert "got (2, 1, 8, 8): 1 channel, not 3" in text and "greyscale" in text and "torch said:" in text
    last = str(_error(model, torch.randn(2, 8, 8, 3)))
    assert "channels last? torch takes (B, C, H, W): x.permute(0, 3, 1, 2)" in last


def test_a_size_the_layers_need(tmp_path: Path) -> None:
    """flatten -> linear fixes H and W: a numeric spec's size is named when the layers refuse another."""
    text = str(_error(_compile(tmp_path, "[3, 8, 8]"), torch.randn(2, 3, 10, 8)))
    assert "got (2, 3, 10, 8): dim 2 is 10, not 8" in text and "written for 8x8" in text


def test_sizes_the_layers_accept_still_run(tmp_path: Path) -> None:
    """Checked only after torch fails: a fully convolutional numeric spec runs at other sizes (as its torch
    twin does), and a symbolic spec at any size that works."""
    conv = ("  conv: {op: conv2d, out_channels: 4, kernel_size: 3, padding: 1}\n"
            "  pool: {op: max_pool2d, kernel_size: 2}\n")
    with torch.no_grad():
        assert _compile(tmp_path, "[3, 8, 8]", conv)(torch.randn(1, 3, 12, 6)).shape == (1, 4, 6, 3)
        symbolic = _compile(tmp_path, "[3, H, W]", conv, "sym")
        assert symbolic(torch.randn(2, 3, 20, 4)).shape == (2, 4, 10, 2)
        with pytest.raises(InputShapeError, match=r"expects \(B, 3, H, W\), got \(2, 2, 20, 4\): 2 channels"):
            symbolic(torch.randn(2, 2, 20, 4))


def test_other_failures_keep_torchs_error(tmp_path: Path) -> None:
    """An input of the spec's shape that torch refuses for another reason (an integer dtype) is torch's error."""
    model = _compile(tmp_path, "[3, 8, 8]")
    with torch.no_grad(), pytest.raises(RuntimeError) as caught:
        model(torch.zeros(2, 3, 8, 8, dtype=torch.int64))
    assert not isinstance(caught.value, InputShapeError)


def test_tracers_and_exporters_see_the_plain_forward(tmp_path: Path) -> None:
    """fx, torch.jit.trace, torch.jit.script, torch.export and ONNX (onnxruntime) give the model's outputs."""
    import onnxruntime as ort

    from archc.export import export

    model = _compile(tmp_path, "[3, 8, 8]")
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated upstream
        want = model(x)
        assert torch.equal(fx.symbolic_trace(model)(x), want)
        assert torch.allclose(torch.jit.trace(model, x)(x), want, atol=1e-6)
        assert torch.allclose(torch.jit.script(model)(x), want, atol=1e-6)
        assert torch.allclose(torch.export.export(model, (x,)).module()(x), want, atol=1e-6)
    sess = ort.InferenceSession(str(export(model, "onnx", tmp_path / "m.onnx")), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"image": x.numpy()})
    assert abs(got - want.numpy()).max() < 1e-5


def test_a_fixed_size_spec_points_at_its_input_line():
    """Run-time input errors carry the spec's `input:` location for numeric specs too (not only symbolic ones)."""
    model = archc.compile("lenet5")
    with pytest.raises(archc.InputShapeError) as info:
        model(torch.ones(1, 3, 32, 32))
    assert info.value.loc is not None and Path(info.value.loc.file).name == "lenet5.yaml" and info.value.loc.line > 1
    assert "1 channel" not in info.value.message and "3 channels, not 1" in info.value.message
