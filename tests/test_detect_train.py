"""Detection end to end through the CLI, on tiny settings: the seed's two heads train on `--data shapes`
and report COCO mAP per epoch; resume is exact; `archc val --save-json` scores the same under
pycocotools; `archc predict` draws and lists boxes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from archc.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--data", "shapes", "--train-size", "16", "--val-size", "8", "--batch-size", "8", "--nominal-batch", "8",
        "--epochs", "2", "--mosaic", "0.5", "--close-mosaic", "1"]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def anchor_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("det") / "run"
    torch.set_num_threads(1)
    assert main(["train", "yolo_resnet18", "--input", "3x64x64", *TINY, "--out", str(out)]) == 0
    return out


def test_anchor_head_trains_and_reports_map(anchor_run: Path) -> None:
    rows = list(csv.DictReader((anchor_run / "results.csv").read_text().splitlines()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for key in ("train_box_loss", "val_map50", "val_map", "val_precision", "val_recall"):
        assert key in rows[0], rows[0].keys()
        assert all(float(r[key]) >= 0.0 for r in rows)
    assert all(float(r["val_map"]) <= float(r["val_map50"]) + 1e-9 for r in rows)
    for name in ("best.safetensors", "last.safetensors", "state.pt", "run.json", "spec.yaml", "losses.png"):
        assert (anchor_run / name).is_file(), name
    info = json.loads((anchor_run / "run.json").read_text())
    assert info["task"] == "detection" and info["head"] == "anchor"
    assert info["classes"] == ["circle", "rectangle", "triangle"]


def test_val_save_json_scores_the_same_under_pycocotools(anchor_run: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results.json"
    status, out, _ = _run(["val", str(anchor_run), "--json", "--save-json", str(results)], capsys)
    assert status == 0
    got = json.loads(out)
    assert {"map50", "map", "precision", "recall", "per_class"} <= set(got)
    rows = json.loads(results.read_text())
    assert rows and {"image_id", "category_id", "bbox", "score"} == set(rows[0])
    from archc.detect.val import rescore

    rescored = rescore(anchor_run, results)
    assert rescored["map"] == pytest.approx(got["map"], abs=1e-9)
    assert rescored["map50"] == pytest.approx(got["map50"], abs=1e-9)


def test_predict_draws_and_lists_boxes(anchor_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    from PIL import Image

    image = tmp_path / "img.png"
    Image.new("RGB", (80, 50), (120, 30, 200)).save(image)
    status, out, _ = _run(["predict", str(anchor_run), str(image), "--json", "--conf", "0.0", "--max-det", "5",
                           "-o", str(tmp_path / "drawn")], capsys)
    assert status == 0
    listed = json.loads(out)[0]
    drawn = Path(listed["drawn"])
    with Image.open(drawn) as img:
        assert img.size == (80, 50)  # the original image, letterbox undone
    assert 1 <= len(listed["boxes"]) <= 5
    for box in listed["boxes"]:
        x1, y1, x2, y2 = box["box"]
        assert 0 <= x1 <= x2 <= 80 and 0 <= y1 <= y2 <= 50
        assert box["name"] in ("circle", "rectangle", "triangle")


def test_resume_continues_exactly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    full, part = tmp_path / "full", tmp_path / "part"
    args = ["train", "yolo_resnet18", "--input", "3x32x32", *TINY]
    assert main([*args, "--out", str(full)]) == 0
    assert main([*args, "--out", str(part), "--stop-after", "1"]) == 0
    assert main(["train", "--resume", str(part)]) == 0
    capsys.readouterr()
    from safetensors.torch import load_file

    a, b = load_file(str(full / "last.safetensors")), load_file(str(part / "last.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_yolov1_grid_head_trains(tmp_path: Path) -> None:
    out = tmp_path / "v1"
    assert main(["train", "yolov1_resnet18", "--input", "3x64x64", "--set", "grid=2", *TINY, "--epochs", "1",
                 "--out", str(out)]) == 0
    rows = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    assert len(rows) == 1 and float(rows[0]["train_coord_loss"]) > 0 and "val_map" in rows[0]
    assert json.loads((out / "run.json").read_text())["head"] == "grid"


def test_bad_detection_data_is_a_located_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "d"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    from PIL import Image

    Image.new("RGB", (20, 20)).save(root / "images" / "a.png")
    (root / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images\nval: images\nnames: [a, b]\n")
    status, _, err = _run(["train", "yolo_resnet18", "--input", "3x32x32", "--data", str(root / "data.yaml"),
                           "--out", str(tmp_path / "r")], capsys)
    assert status == 2
    assert f"{root / 'labels' / 'a.txt'}:2:1" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("argv", [["val", "r", "--iou", "0"], ["val", "r", "--conf", "-0.1"],
                                  ["predict", "r", "i.png", "--max-det", "0"], ["train", "yolov8n", "--mosaic", "2"],
                                  ["train", "yolov8n", "--nominal-batch", "0"], ["val", "r", "--batch-size", "0"]])
def test_detection_options_are_range_checked(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert f"argument {next(a for a in argv if a.startswith('--'))}" in capsys.readouterr().err


@pytest.mark.parametrize("spec,params", [("resnet18", {}), ("yolov8n", {"classes": 3})])
def test_folding_batchnorm_for_inference_keeps_the_outputs(spec: str, params: dict) -> None:
    import archc
    from archc.backend.fuse import fuse_conv_bn

    model = archc.compile(spec, input_shape=[3, 64, 64], **params).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point() and "dfl" not in name:
                t.copy_(torch.rand_like(t) + 0.5 if "running_var" in name else torch.randn_like(t) * 0.1)
        fused = fuse_conv_bn(model)
        calls = [n.target for n in fused.graph.nodes if n.op == "call_module"]
        assert not any(isinstance(fused.get_submodule(c), torch.nn.BatchNorm2d) for c in calls)
        x = torch.rand(2, 3, 64, 64)
        a, b = model(x), fused(x)
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * a.abs().max().item())
    assert any(isinstance(model.get_submodule(n.target), torch.nn.BatchNorm2d)
               for n in model.graph.nodes if n.op == "call_module")  # the original is untouched
