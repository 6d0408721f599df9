"""Segmentation in `archc train` and `archc predict` (issue 14): the task from the data and the output
shape, `--input`, the synthetic `shapes` set, image/mask folders and their refusals, and predicted
masks. One thread, tiny sizes; the U-Net test is the issue's bar at test scale."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from archc.cli import main
from archc.errors import UsageError
from archc.train.data import SHAPE_CLASSES, MaskFolder, make_datasets, read_mask, scale_crop, shapes_image
from archc.train.losses import DiceLoss, class_dice, make_loss
from archc.train.predict import palette

UNET = ["--set", "f=[8,16,32,64]"]


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    out = capsys.readouterr()
    assert "internal error" not in out.err and "Traceback" not in out.err
    return status, out.out, out.err


def _png(path: Path, tensor: torch.Tensor, mode: str) -> None:
    """A (h, w) tensor of 0..255 values as a grey (L) or palette (P) PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = tensor.shape
    image = Image.frombytes(mode, (w, h), bytes(tensor.to(torch.uint8).flatten().tolist()))
    if mode == "P":
        image.putpalette(palette(4))  # without one Pillow merges the (identical) colours on saving
    image.save(path)


def test_unet_learns_shapes_and_predicts_a_mask(tmp_path, capsys):
    run = tmp_path / "run"
    status, out, err = _run(["train", "unet", "--data", "shapes", *UNET, "--input", "1x32x32", "--epochs", "6",
                             "--train-size", "256", "--val-size", "32", "--batch-size", "8", "--lr", "0.01",
                             "--out", str(run)], capsys)
    assert status == 0, err
    history = json.loads((run / "metrics.json").read_text())
    best = max(h["val_miou"] for h in history)
    # chance: all background scores background's IoU (its share, ~0.87) over 4 classes, about 0.22
    assert best > 0.3, [h["val_miou"] for h in history]
    assert {"iou_background", "iou_circle", "iou_rectangle", "iou_triangle", "val_dice"} <= set(history[0])
    assert "val_miou" in (run / "metrics.csv").read_text().splitlines()[0]
    info = json.loads((run / "run.json").read_text())
    assert info["task"] == "segmentation" and info["input"] == [1, 32, 32] and info["classes"] == list(SHAPE_CLASSES)
    top = max(history, key=lambda h: h["val_miou"])  # run.json: the best checkpoint's per-class IoU
    assert info["best"]["epoch"] == top["epoch"] and info["best"]["val_dice"] == top["val_dice"]
    assert info["best"]["iou"] == {n: top[f"iou_{n}"] for n in SHAPE_CLASSES}
    assert out.rstrip().endswith(f"done: best validation mIoU {best:.4f}; run directory {run}")
    image, truth = shapes_image(1, 48, 40, torch.Generator().manual_seed(123))  # another size than trained
    _png(tmp_path / "x.png", image[0] * 255, "L")
    status, out, err = _run(["predict", "unet", "--weights", str(run), str(tmp_path / "x.png"),
                             "-o", str(tmp_path / "m.png"), "--overlay"], capsys)
    assert status == 0, err
    assert out.startswith(f"{tmp_path / 'x.png'}: wrote {tmp_path / 'm.png'} and {tmp_path / 'm_overlay.png'} "
                          "(background ")
    with Image.open(tmp_path / "m.png") as m:
        assert m.mode == "P" and m.size == (40, 48)
    with Image.open(tmp_path / "m_overlay.png") as o:  # the image where background, tinted where shapes
        assert o.mode == "RGB" and o.size == (40, 48)
        grey = torch.tensor(bytearray(o.tobytes())).reshape(48, 40, 3)
    mask = read_mask(tmp_path / "m.png")
    assert int(mask.max()) < 4
    source = (image[0] * 255).to(torch.uint8).long()
    assert torch.equal(grey[mask == 0].long(), source[mask == 0][:, None].expand(-1, 3))
    assert not torch.equal(grey[mask > 0].long(), source[mask > 0][:, None].expand(-1, 3))
    found, shapes = mask > 0, truth > 0  # the image's own shapes, where they are
    assert (found & shapes).sum() / (found | shapes).sum() > 0.5


def test_detection_heads_train_as_detectors_other_grids_are_refused(tmp_path, capsys):
    """A YOLO head goes to the detection trainer (which names the data it takes); an output that is no
    classifier, segmenter or detection head is refused with what archc train supports."""
    status, _, err = _run(["train", "yolo_resnet18", "--data", "fake", "--input", "3x64x64", "--out",
                           str(tmp_path / "r")], capsys)
    assert status == 2
    assert "--data fake: expected 'shapes', a data.yaml (YOLO layout) or a COCO instances .json" in err
    assert not (tmp_path / "r").exists()
    spec = tmp_path / "grid.yaml"
    spec.write_text("name: grid\ninput: [3, 16, 16]\nnodes:\n  c: {op: conv2d, out_channels: 6, kernel_size: 1}\n"
                    "  u: {op: unflatten, dim: 1, sizes: [2, 3]}\n")
    status, _, err = _run(["train", str(spec), "--data", "fake", "--out", str(tmp_path / "g")], capsys)
    assert status == 2
    assert "output is 2x3x16x16 per sample: archc train supports classification" in err
    assert not (tmp_path / "g").exists()


AUX_SPEC = ("name: two\ninput: [1, 16, 16]\nparams: {num_classes: 4}\nnodes:\n"
            "  body: {op: conv2d, out_channels: 4, kernel_size: 3, padding: 1}\n  act: relu\n"
            "  head: {op: conv2d, out_channels: '${num_classes}', kernel_size: 1}\n"
            "  aux: {op: conv2d, in: body, out_channels: '${num_classes}', kernel_size: 1}\n")


@pytest.mark.parametrize("weight, moves", [("0.5", True), ("0", False)])
def test_auxiliary_outputs_add_weighted_losses(tmp_path, capsys, weight, moves):
    """A second output shaped like the first (torchvision's segmentation `aux`) trains by --aux-weight."""
    spec = tmp_path / "two.yaml"
    spec.write_text(AUX_SPEC + "outputs: [head, aux]\n")
    run = tmp_path / "run"
    status, _, err = _run(["train", str(spec), "--data", "shapes", "--epochs", "1", "--train-size", "16",
                           "--val-size", "8", "--batch-size", "8", "--weight-decay", "0", "--aux-weight", weight,
                           "--out", str(run)], capsys)
    assert status == 0, err
    from safetensors.torch import load_file

    import archc

    torch.manual_seed(0)
    start = archc.compile(spec).state_dict()  # the run starts from the same seed
    trained = load_file(str(run / "last.safetensors"))
    assert not torch.equal(trained["head.weight"], start["head.weight"])
    assert (not torch.equal(trained["aux.weight"], start["aux.weight"])) == moves


def test_outputs_of_different_shapes_are_refused(tmp_path, capsys):
    spec = tmp_path / "two.yaml"
    spec.write_text(AUX_SPEC + "  pooled: {op: adaptive_avg_pool2d, in: aux, output_size: 1}\n"
                    "outputs: [head, pooled]\n")
    status, _, err = _run(["train", str(spec), "--data", "shapes", "--out", str(tmp_path / "r")], capsys)
    assert status == 2 and "2 outputs (head, pooled) of different shapes" in err


def test_task_from_data_output_and_flag(tmp_path, capsys):
    args = ["--out", str(tmp_path / "r"), "--epochs", "1", *UNET, "--input", "1x16x16"]
    status, _, err = _run(["train", "unet", "--data", "digits", *args], capsys)  # digits: classification
    assert status == 2 and "[final_conv] the model's output is 10x16x16 per sample, but classification" in err
    assert "segmentation model, train it on --data shapes" in err
    status, _, err = _run(["train", "unet", "--data", "shapes", "--task", "classification", *args], capsys)
    assert status == 2 and "--task classification, but --data shapes gives masks (segmentation)" in err
    status, _, err = _run(["train", "lenet5", "--data", "shapes", *args[:4]], capsys)
    assert status == 2
    assert "[classifier.2] the model's output is 4 per sample, but segmentation with --data shapes" in err
    assert not (tmp_path / "r").exists()
    # fake data follows the model's output: random masks of as many classes as it scores
    status, out, err = _run(["train", "unet", "--data", "fake", "--fake-size", "4", "--batch-size", "4", *args],
                            capsys)
    assert status == 0, err
    assert json.loads((tmp_path / "r" / "run.json").read_text())["task"] == "segmentation"
    assert "mIoU" in out


def test_shapes_are_made_from_the_seed():
    a_train, a_val, classes = make_datasets("shapes", (3, 24, 20), 7, task="segmentation", sizes=(16, 8))
    b_train, _, _ = make_datasets("shapes", (3, 24, 20), 7, task="segmentation", sizes=(16, 8))
    c_train, _, _ = make_datasets("shapes", (3, 24, 20), 8, task="segmentation", sizes=(16, 8))
    x, y = a_train.tensors  # type: ignore[attr-defined]
    assert classes == 4 and x.shape == (16, 3, 24, 20) and y.shape == (16, 24, 20) and len(a_val) == 8
    assert torch.equal(x, b_train.tensors[0]) and torch.equal(y, b_train.tensors[1])  # type: ignore[attr-defined]
    assert not torch.equal(x, c_train.tensors[0])  # type: ignore[attr-defined]
    assert set(y.unique().tolist()) == {0, 1, 2, 3}
    assert not torch.equal(x[0, 0], x[0, 1])  # colour: the channels differ


def _mask_folder(root: Path, n: int = 5, size: int = 16) -> None:
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        image, mask = shapes_image(1, size, size, g)
        mask[:2, :2] = 3 if i == 1 else mask[:2, :2]  # class 3 is sure to be there
        _png(root / "images" / f"{i}.png", image[0] * 255, "L")
        _png(root / "masks" / f"{i}.png", mask, "P" if i % 2 else "L")  # palette or grey


def test_image_mask_folder_trains_and_bad_data_is_refused(tmp_path, capsys):
    data = tmp_path / "data"
    _mask_folder(data)
    args = ["train", "unet", "--data", str(data), *UNET, "--input", "1x16x16", "--epochs", "1", "--batch-size", "2"]
    status, out, err = _run([*args, "--out", str(tmp_path / "ok")], capsys)
    assert status == 0, err
    assert "4 training and 1 validation images" in out
    assert json.loads((tmp_path / "ok" / "run.json").read_text())["params"]["num_classes"] == 4  # from the masks
    status, _, err = _run([*args, "--set", "num_classes=2", "--out", str(tmp_path / "r")], capsys)
    assert status == 2 and "masks/4.png: mask value 2, but the model scores 2 classes (0 to 1)" in err
    _png(data / "masks" / "0.png", torch.zeros(8, 8), "L")
    status, _, err = _run([*args, "--out", str(tmp_path / "r")], capsys)
    assert status == 2 and "is 16x16 but its mask" in err and "is 8x8" in err
    (data / "masks" / "0.png").unlink()
    status, _, err = _run([*args, "--out", str(tmp_path / "r")], capsys)
    assert status == 2 and "no mask for 1 file(s): 0" in err
    Image.new("RGB", (16, 16)).save(data / "masks" / "0.png")
    status, _, err = _run([*args, "--out", str(tmp_path / "r")], capsys)
    assert status == 2 and "a RGB mask; masks hold one class index per pixel" in err
    assert not (tmp_path / "r").exists()


def test_predict_classification_and_refusals(tmp_path, capsys):
    run = tmp_path / "run"
    assert _run(["train", "lenet5", "--data", "digits", "--epochs", "1", "--out", str(run)], capsys)[0] == 0
    Image.new("L", (20, 20), 30).save(tmp_path / "grey.png")
    status, out, _ = _run(["predict", str(run), str(tmp_path / "grey.png"), "--top-k", "3"], capsys)
    assert status == 0
    line = out.strip()
    assert line.startswith(f"{tmp_path / 'grey.png'}: ") and len(line.split(", ")) == 3
    assert all(part.split()[-2] in {str(d) for d in range(10)} for part in line.split(": ", 1)[1].split(", "))
    Image.new("RGB", (20, 20), (30, 30, 30)).save(tmp_path / "rgb.png")  # read as grey, as training reads it
    status, out, _ = _run(["predict", str(run), str(tmp_path / "rgb.png"), "--top-k", "3"], capsys)
    assert status == 0 and out.split(": ", 1)[1] == line.split(": ", 1)[1] + "\n"  # the same grey image
    (tmp_path / "bad.png").write_text("not an image")
    status, _, err = _run(["predict", str(run), str(tmp_path / "bad.png")], capsys)
    assert status == 2 and "cannot read" in err


def test_dice_loss_and_metric():
    labels = torch.tensor([[[0, 1], [2, 2]]])
    perfect = torch.nn.functional.one_hot(labels, 3).movedim(-1, 1).float() * 50
    assert DiceLoss()(perfect, labels).item() < 1e-6
    assert DiceLoss()(-perfect, labels).item() > 0.4  # every pixel wrong (smoothing counts no class at zero)
    wrong_small = perfect.clone()
    wrong_small[0, :, 0, 1] = torch.tensor([50.0, 0, 0])  # the one class-1 pixel called background
    ce, dice = make_loss("ce", "segmentation"), make_loss("dice", "segmentation")
    both = make_loss("ce+dice", "segmentation")
    assert torch.allclose(both(wrong_small, labels), ce(wrong_small, labels) + dice(wrong_small, labels))
    confusion = torch.tensor([[3.0, 1, 0], [0, 0, 0], [1, 0, 5]])  # rows true, columns predicted
    assert class_dice(confusion)[0] == pytest.approx(6 / 8) and class_dice(confusion)[2] == pytest.approx(10 / 11)
    assert class_dice(confusion)[1] == 0.0
    with pytest.raises(UsageError, match="Dice compares masks, but this run is classification"):
        make_loss("dice", "classification")


def test_loss_flag_refused_for_classification(tmp_path, capsys):
    status, _, err = _run(["train", "lenet5", "--data", "digits", "--loss", "dice", "--out", str(tmp_path / "r")],
                          capsys)
    assert status == 2 and "--loss dice: Dice compares masks" in err and not (tmp_path / "r").exists()


def test_joint_scale_crop_and_flip_keep_image_and_mask_together(tmp_path):
    """The image holds its own mask (grey = class * 60): wherever the scaled image is exactly a class
    level, the mask says that class."""
    data = tmp_path / "data"
    g = torch.Generator().manual_seed(3)
    for i in range(2):
        _, mask = shapes_image(1, 32, 32, g)
        _png(data / "images" / f"{i}.png", mask * 60, "L")
        _png(data / "masks" / f"{i}.png", mask, "L")
    pairs = [(data / "images" / f"{i}.png", data / "masks" / f"{i}.png") for i in range(2)]
    plain, augmented = MaskFolder(pairs, (1, 32, 32), False), MaskFolder(pairs, (1, 32, 32), True)
    torch.manual_seed(0)
    differs = 0
    for _ in range(20):
        x, y = augmented[0]
        level = (x[0] * 0.5 + 0.5) * 255 / 60  # undo the normalisation: the class the image shows
        exact = (level - level.round()).abs() < 1e-3
        assert exact.float().mean() > 0.5 and torch.equal(level.round()[exact].long(), y[exact])
        differs += not torch.equal(y, plain[0][1])
    assert differs >= 15  # scaled, cropped or flipped nearly every time
    x, y = scale_crop(torch.arange(64.0).reshape(1, 8, 8), torch.arange(64).reshape(8, 8), area=(1.0, 1.0))
    assert y.shape == (8, 8) and y.dtype == torch.long
