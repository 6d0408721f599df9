"""Runs that explain themselves (issue 29): a per-batch progress bar on a terminal and nothing in a pipe, plots
with points for short runs, a 'what next' hint when validation is at chance, and the data config stored in the
run and applied by `archc predict` (grey images as training read them, small digits resized as training did)."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from archc.train import TrainConfig, train
from archc.train.data import data_config, make_datasets, prepare
from archc.train.loop import MARKERS_UP_TO, chance_hint, figure
from archc.train.predict import predict, run_data_config
from archc.train.runs import progress

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


# -- progress ---------------------------------------------------------------------------------------------

def test_progress_bar_on_a_terminal_and_quiet_in_a_pipe():
    tty, pipe = _Terminal(), io.StringIO()
    assert list(progress(list(range(5)), 0, "epoch 1/3", file=tty)) == list(range(5))
    assert "epoch 1/3:" in tty.getvalue() and "0/5 [" in tty.getvalue() and "batch/s" in tty.getvalue()
    assert list(progress(list(range(5)), 0, "epoch 1/3", file=pipe)) == list(range(5))
    assert pipe.getvalue() == ""
    batches = [1, 2]
    assert progress(batches, 1, "epoch 1/3") is batches  # other ranks draw nothing


def _read_all(fd: int) -> bytes:
    out = b""
    while select.select([fd], [], [], 60)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    return out


def test_progress_bar_draws_on_a_terminal_that_reports_no_size():
    """A fresh pseudo-terminal reports 0 rows and 0 columns (docker exec, script, some IDEs): tqdm by itself drew
    nothing there; the bar takes 80x24 instead."""
    main_fd, child_fd = pty.openpty()  # never sized: 0x0
    code = ("from archc.train.runs import progress\nfor _ in progress(list(range(3)), 0, 'epoch 1/1'): pass\n"
            "print('end', flush=True)")
    env = {**os.environ, "COLUMNS": "", "LINES": ""}
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL, stdout=child_fd, stderr=child_fd,
                            cwd=ROOT, env=env)
    os.close(child_fd)
    text = _read_all(main_fd).decode(errors="replace")
    os.close(main_fd)
    assert proc.wait(60) == 0
    assert "epoch 1/1:" in text and "0/3 [" in text and "end" in text


# -- plots ------------------------------------------------------------------------------------------------

def _row(epoch: int, **kw: float) -> dict[str, float]:
    return {"epoch": epoch, "train_loss": 1.0 / epoch, "train_acc": 0.5, "val_loss": 1.2 / epoch, "val_acc": 0.4, **kw}


def test_one_epoch_plot_shows_its_points():
    import matplotlib.pyplot as plt

    fig = figure([_row(1)])
    lines = [line for ax in fig.axes for line in ax.get_lines()]
    assert len(lines) == 4 and all(line.get_marker() == "o" and len(line.get_xdata()) == 1 for line in lines)
    for ax in fig.axes:
        low, high = ax.get_xlim()
        assert low < 1 < high and high - low == 2  # the point is inside the axes, not on their edge
    plt.close(fig)
    fig = figure([_row(e) for e in range(1, MARKERS_UP_TO + 2)])  # long runs: lines only
    assert all(line.get_marker() in ("None", None, "") for ax in fig.axes for line in ax.get_lines())
    plt.close(fig)


# -- what next --------------------------------------------------------------------------------------------

def _confusion(per_class: list[int]) -> torch.Tensor:
    return torch.diag(torch.tensor(per_class, dtype=torch.float64))  # only the true-class totals matter


def test_chance_hint_says_what_to_try():
    confusion = _confusion([30, 20, 50])  # always answering class 2 scores 0.5 over 100 labels
    assert chance_hint([_row(2, val_acc=0.9)], confusion, 1e-3) is None
    stuck = chance_hint([_row(1), _row(2, val_acc=0.52, train_acc=0.5)], confusion, 1e-3)
    assert stuck is not None and "at chance after 2 epochs" in stuck and "commonest class scores 0.500" in stuck
    assert "--lr 0.0001 or --lr 0.003" in stuck
    memorises = chance_hint([_row(2, val_acc=0.45, train_acc=0.99)], confusion, 1e-3)
    assert memorises is not None and "fits the training images" in memorises and "--lr" not in memorises
    assert chance_hint([_row(1, val_acc=0.61)], confusion, 1e-3) is None  # above 0.5 + 2 * 0.05
    assert chance_hint([_row(1, val_acc=0.59)], confusion, 1e-3) is not None


def test_run_at_chance_prints_the_hint_and_stores_the_data_config(tmp_path, capsys):
    """Random labels (fake data) cannot be learnt: after two epochs the run says what to try."""
    train(TrainConfig("lenet5", "fake", epochs=2, fake_size=64, out=str(tmp_path / "run")))
    out = capsys.readouterr().out
    assert out.count("what next: validation accuracy") == 1
    assert out.index("epoch 2:") < out.index("what next")
    info = json.loads((tmp_path / "run/run.json").read_text())
    assert info["data_config"] == {"input_size": [1, 32, 32], "interpolation": "bilinear", "antialias": False,
                                   "mean": [0.5], "std": [0.5], "crop_pct": 1.0, "crop_mode": "none",
                                   "channels": "grey"}


# -- the data config at predict ---------------------------------------------------------------------------

TINY_RGB = """archc: 1
name: tiny_rgb
input: [3, 24, 20]
params: {num_classes: 2}
nodes:
  conv: {op: conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  act: relu
  pool: {op: adaptive_avg_pool2d, output_size: 1}
  flat: flatten
  fc: {op: linear, out_features: "${num_classes}"}
"""


@pytest.fixture
def grey_folder(tmp_path: Path) -> Path:
    g = torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        for cls in ("a", "b"):
            folder = tmp_path / "grey" / split / cls
            folder.mkdir(parents=True)
            for i in range(2):
                pixels = (torch.rand(40, 52, generator=g) * 255).to(torch.uint8).numpy()
                Image.fromarray(pixels, "L").save(folder / f"{i}.png")
    return tmp_path / "grey"


def test_grey_images_train_and_predict_alike(tmp_path, grey_folder):
    """An RGB model trained on a folder of grey images: predict takes a grey image and makes exactly the tensor
    validation made (grey repeated to RGB, shorter side resized, centre crop, ImageNet statistics)."""
    spec = tmp_path / "tiny_rgb.yaml"
    spec.write_text(TINY_RGB)
    run = tmp_path / "run"
    train(TrainConfig(str(spec), str(grey_folder), epochs=1, batch_size=4, out=str(run)))
    info = json.loads((run / "run.json").read_text())
    stored = info["data_config"]
    assert stored["crop_mode"] == "center" and stored["resize_size"] == 22 and stored["channels"] == "rgb"
    assert stored == run_data_config(info, (3, 24, 20), "classification")
    _, val, _ = make_datasets(str(grey_folder), (3, 24, 20), 0)
    for i, (path, _) in enumerate(val.samples):
        with Image.open(path) as image:
            assert torch.equal(prepare(image, stored, path), val[i][0])
    (result,) = predict(str(run), [val.samples[0][0]], top_k=2)
    assert [name for name, _ in result.top] in (["a", "b"], ["b", "a"])


def test_a_small_digit_is_resized_as_training_did(tmp_path):
    """Digits train at 8x8 scaled up bilinearly, light ink on dark: an 8x8 digit image, one a user scaled up by
    nearest neighbour, or dark ink on white, reaches the model as training's tensor (and gets training's scores)."""
    from sklearn.datasets import load_digits
    from torch.nn import functional as F

    import archc

    digit = torch.tensor(load_digits().images[7], dtype=torch.float32)
    trained_as = (F.interpolate(digit[None, None] / 16, size=(32, 32), mode="bilinear", align_corners=False)[0]
                  - 0.5) / 0.5
    pixels = (digit / 16 * 255).round().to(torch.uint8).numpy()
    small = Image.fromarray(pixels, "L")
    blocky = small.resize((32, 32), Image.NEAREST)
    config = data_config("digits", (1, 32, 32))
    assert config["source_size"] == [8, 8]
    for image in (small, blocky):
        assert (prepare(image, config, "digit.png") - trained_as).abs().max() < 0.01  # 8-bit rounding only
    without = {k: v for k, v in config.items() if k != "source_size"}
    assert (prepare(blocky, without, "digit.png") - trained_as).abs().max() > 0.5  # what predict did before
    paper = Image.fromarray(255 - pixels, "L").resize((32, 32), Image.NEAREST)  # dark ink on white
    notes: list[str] = []
    assert (prepare(paper, config, "digit.png", notes) - trained_as).abs().max() < 0.01
    assert notes == ["inverted: a light background, and the model was trained on light ink on dark"]
    notes.clear()
    prepare(blocky, config, "digit.png", notes)
    assert not notes
    assert run_data_config({"data": "digits"}, (1, 32, 32), "classification") == config  # runs from before

    run = tmp_path / "run"
    run.mkdir()
    (run / "spec.yaml").write_text((ROOT / "specs/lenet5.yaml").read_text())
    torch.manual_seed(0)
    model = archc.compile(str(run / "spec.yaml")).eval()
    from safetensors.torch import save_file

    save_file(model.state_dict(), str(run / "best.safetensors"))
    (run / "run.json").write_text(json.dumps({"data": "digits", "params": {}, "task": "classification",
                                              "data_config": config}))
    blocky.save(tmp_path / "digit.png")
    paper.save(tmp_path / "paper.png")
    with torch.no_grad():
        want = model(trained_as[None]).softmax(1)[0]
    for name in ("digit.png", "paper.png"):
        (result,) = predict(str(run), [str(tmp_path / name)], top_k=10)
        got = dict(result.top)
        assert max(abs(got[str(k)] - float(want[k])) for k in range(10)) < 1e-3
        assert bool(result.notes) == (name == "paper.png")
