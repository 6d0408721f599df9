"""YOLOv8 and YOLO11 (specs/yolov8*.yaml, specs/yolo11*.yaml) as twins of Ultralytics' models.

Ultralytics (AGPL) is only run here, never copied: `DetectionModel("yolov8n.yaml", nc=80)` builds its
model from its own bundled YAML, offline. Every size: the same parameter count and state_dict keys and
shapes. yolov8n and yolo11n: Ultralytics' randomised state_dict (BatchNorm statistics included) loads
with strict=True, and the decoded eval output (B, 4 + nc, anchors) and the training-mode level maps are
equal (relative 1e-5) at 128 and 320 (640 with --slow). Without Ultralytics those tests skip; the
reference counts in the specs and archc's decode (against archc/detect/postprocess.py and a decode
written here from the contract) are checked anyway.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from functools import cache
from math import ceil

import pytest
import torch

import archc
from tests.helpers import randomize_

try:  # comparison only: Ultralytics' model from its bundled YAML
    from ultralytics.nn.tasks import DetectionModel
except ImportError:  # pragma: no cover - exercised where ultralytics is absent
    DetectionModel = None

needs_ultralytics = pytest.mark.skipif(DetectionModel is None, reason="ultralytics is not installed")

# Ultralytics 8.4's parameter counts (its yolov8.yaml / yolo11.yaml summaries), matched exactly
PARAMS = {
    "yolov8n": 3_157_200, "yolov8s": 11_166_560, "yolov8m": 25_902_640, "yolov8l": 43_691_520,
    "yolov8x": 68_229_648,
    "yolo11n": 2_624_080, "yolo11s": 9_458_752, "yolo11m": 20_114_688, "yolo11l": 25_372_160,
    "yolo11x": 56_966_176,
}
DETECT = {"yolov8": "model.22", "yolo11": "model.23"}  # the Detect layer's path in each family
SIZES = [128, 320, pytest.param(640, marks=pytest.mark.slow)]


def _ultralytics(name: str) -> torch.nn.Module:
    with contextlib.redirect_stdout(io.StringIO()):
        return DetectionModel(f"{name}.yaml", nc=80, verbose=False)


@cache
def _randomised_pair(name: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Ultralytics' model with every weight and BatchNorm statistic random (the DFL weight stays
    arange(16), as in its checkpoints), and archc's model holding that state_dict (strict). Built once
    per module; a test that runs them in training mode restores the state (`_restoring`)."""
    theirs = _ultralytics(name)
    example = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    randomize_(theirs, seed=0, example=example)
    dfl = theirs.model[-1].dfl.conv.weight
    with torch.no_grad():
        dfl.copy_(torch.arange(16, dtype=torch.float32).view(1, 16, 1, 1))
    ours = archc.compile(name)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours.eval(), theirs.eval()


@contextlib.contextmanager
def _restoring(*models: torch.nn.Module) -> Iterator[None]:
    """Put back the state (BatchNorm statistics move in training mode) and eval mode afterwards."""
    saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in models]
    try:
        yield
    finally:
        for m, state in zip(models, saved):
            m.load_state_dict(state)
            m.eval()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_reference_parameter_counts(name):
    """The count in each spec's `reference:` is Ultralytics' (no Ultralytics needed)."""
    analysis = archc.check(name)
    assert analysis.params == PARAMS[name] == analysis.graph.meta["reference"]["params"]
    assert [tuple(analysis.shapes[o]) for o in analysis.graph.outputs] == [(84, 8400)]
    assert [tuple(analysis.shapes[o]) for o in analysis.graph.train_outputs] == [
        (144, 80, 80), (144, 40, 40), (144, 20, 20)]


@needs_ultralytics
@pytest.mark.parametrize("name", sorted(PARAMS))
def test_every_size_has_ultralytics_keys_and_parameters(name):
    """Keys, shapes and parameter count of Ultralytics' model; the DFL weight frozen in both."""
    theirs = _ultralytics(name)
    ours = archc.compile(name, device="meta")
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters()) == PARAMS[name]
    frozen = {n for n, p in ours.named_parameters() if not p.requires_grad}
    assert frozen == {n for n, p in theirs.named_parameters() if not p.requires_grad} == {
        f"{DETECT[name[:6]]}.dfl.conv.weight"}


@needs_ultralytics
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", ["yolov8n", "yolo11n"])
def test_decoded_output_equals_ultralytics(name, size):
    ours, theirs = _randomised_pair(name)
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got, want = ours(x), theirs(x)[0]
    anchors = sum((size // s) ** 2 for s in (8, 16, 32))
    assert got.shape == want.shape == (2, 84, anchors)
    assert _rel(got[:, :4], want[:, :4]) < 1e-5 and _rel(got[:, 4:], want[:, 4:]) < 1e-5
    # not a vacuous comparison: boxes spread over the image, scores neither all 0 nor all 1
    assert want[:, :2].std() > size / 20 and want[:, 4:].std() > 0.01 and want[:, 4:].mean() < 0.99


@needs_ultralytics
@pytest.mark.parametrize("name", ["yolov8n", "yolo11n"])
def test_training_level_maps_equal_ultralytics(name):
    """In training mode the spec also returns the raw level maps (4 * 16 + nc, H, W); flattened they are
    Ultralytics' training output (its `boxes` and `scores`, batch statistics in both)."""
    ours, theirs = _randomised_pair(name)
    x = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(3))
    with torch.no_grad(), _restoring(ours, theirs):
        got = ours.train()(x)
        want = theirs.train()(x)
    assert [tuple(t.shape) for t in got[1:]] == [(2, 144, 16, 16), (2, 144, 8, 8), (2, 144, 4, 4)]
    flat = torch.cat([t.flatten(2) for t in got[1:]], 2)
    assert _rel(flat[:, :64], want["boxes"]) < 1e-5 and _rel(flat[:, 64:], want["scores"]) < 1e-5


def _reference_decode(levels: list[torch.Tensor], strides: tuple[int, ...] = (8, 16, 32)) -> torch.Tensor:
    """The anchor-free decode of the detection contract, written here from it: per cell, the expectation
    of each side's 16-bin distance distribution, around the cell centre, times the level's stride."""
    rows = []
    for x, stride in zip(levels, strides):
        b, _, h, w = x.shape
        dist = x[:, :64].reshape(b, 4, 16, h * w).softmax(2)
        dist = (dist * torch.arange(16, dtype=x.dtype).view(1, 1, 16, 1)).sum(2)  # (B, 4, HW): l, t, r, b
        ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
        centre = torch.stack([xs.flatten(), ys.flatten()]).to(x.dtype)  # (2, HW)
        x1y1, x2y2 = centre - dist[:, :2], centre + dist[:, 2:]
        box = torch.cat([(x1y1 + x2y2) / 2, x2y2 - x1y1], 1) * stride
        rows.append(torch.cat([box, x[:, 64:].flatten(2).sigmoid()], 1))
    return torch.cat(rows, 2)


@pytest.mark.parametrize("name", ["yolov8n", "yolo11n"])
def test_decode_in_the_spec_equals_the_contract(name):
    """No Ultralytics needed: the eval output decoded by the spec (grid, full, DFL conv) equals the decode of
    its own training-mode level maps, written here and in archc/detect/postprocess.py, on a non-square input."""
    torch.manual_seed(0)
    model = archc.compile(name, input_shape=[3, 96, 160])
    randomize_(model, seed=0, example=torch.rand(2, 3, 96, 160))
    dfl = model.get_parameter(f"{DETECT[name[:6]]}.dfl.conv.weight")
    with torch.no_grad():
        dfl.copy_(torch.arange(16.0).view(1, 16, 1, 1))
        decoded, *levels = model.train()(torch.rand(2, 3, 96, 160))
    assert decoded.shape == (2, 84, 12 * 20 + 6 * 10 + 3 * 5)
    want = _reference_decode(levels)
    assert _rel(decoded, want) < 1e-5
    assert want[:, :2].std() > 5 and want[:, 4:].std() > 0.01  # spread: the comparison sees something
    postprocess = pytest.importorskip("archc.detect.postprocess")
    assert _rel(decoded, postprocess.decode_anchor_free(levels, 16, (8, 16, 32))) < 1e-5


def test_fresh_model_starts_as_ultralytics_does():
    """`init:` gives the DFL weight arange(16) (frozen) and Detect.bias_init()'s biases: box 2.0, class
    log(5 / nc / (640 / stride)^2); a spec-built model decodes sensibly before any training."""
    model = archc.compile("yolov8n", classes=3)
    dfl = model.get_parameter("model.22.dfl.conv.weight")
    assert dfl.flatten().tolist() == list(range(16)) and not dfl.requires_grad
    for level, stride in enumerate((8, 16, 32)):
        assert bool((model.get_parameter(f"model.22.cv2.{level}.2.bias") == 2.0).all())
        cls = model.get_parameter(f"model.22.cv3.{level}.2.bias")
        assert cls.shape == (3,) and torch.allclose(cls, torch.full((3,), float(torch.log(torch.tensor(
            5 / 3 / (640 / stride) ** 2)))))


def test_symbolic_sizes_and_any_input_size():
    """The decode's constants follow the input: `--input 3xHxW` is checked symbolically, and the model
    compiled at 640 runs at other sizes with as many anchors as cells."""
    for name in ("yolov8n", "yolo11n"):
        analysis = archc.check(name, input_shape=[3, "H", "W"])
        assert analysis.symbolic is not None and analysis.symbolic.method == "algebra"
        assert analysis.symbolic.shapes[analysis.graph.outputs[0]] == ("84", "21 * ((H + 31) // 32) * ((W + 31) // 32)")
    model = archc.compile("yolov8n").eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 96))
    assert out.shape == (1, 84, 8 * 12 + 4 * 6 + 2 * 3)


def test_family_scales():
    """`scale` picks Ultralytics' depth, width and max_channels; every per-size spec is its family at that
    scale; an unknown scale is a located error."""
    for name in PARAMS:
        assert archc.check(name[:6], scale=name[6]).params == PARAMS[name]
    with pytest.raises(archc.errors.ArchcError) as err:
        archc.check("yolov8", scale="q")
    assert err.value.loc is not None and err.value.loc.line > 1
    assert archc.check("yolov8x").shapes["model.9.cv2.act"][0] == ceil(min(1024, 512) * 1.25 / 8) * 8  # SPPF, x
