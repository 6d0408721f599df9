"""The first hour (issue 18): where `check` said ok and the next command failed, and the messages a
newcomer met. Each spec is tiny and written here; training never starts in these tests (the checks
run before it), so each takes about a second."""

from __future__ import annotations

from pathlib import Path

import pytest

from archc.cli import main

HEAD = """\
archc: 1
name: {name}
input: {input}
nodes:
  conv: {{op: conv2d, out_channels: 16, kernel_size: 3, padding: 1, stride: 2}}
"""
POOLED = "  pool: {op: adaptive_avg_pool2d, output_size: 1}\n  flatten: flatten\n"


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def _spec(tmp_path: Path, name: str, tail: str = "", input_: str = "[1, 32, 32]") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(HEAD.format(name=name, input=input_) + tail)
    return str(path)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    out = capsys.readouterr()
    return status, out.out, out.err


def _train(spec: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    status, _, err = _run(["train", spec, "--data", "digits", "--epochs", "1", "--out", str(tmp_path / "run"),
                           *extra], capsys)
    assert "internal error" not in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # refused before anything was written
    return status, err


def test_head_without_pooling_is_refused_before_training(tmp_path, capsys):
    spec = _spec(tmp_path, "nopool", "  fc: {op: conv2d, out_channels: 64, kernel_size: 1}\n")
    assert _run(["check", spec], capsys)[0] == 0  # valid as a graph ...
    status, err = _train(spec, tmp_path, capsys)  # ... but not as a classifier of digits
    assert status == 2
    assert f"{spec}:6:12: error: [fc] the model's output is 64x16x16 per sample" in err
    assert "a vector of 10" in err and "adaptive_avg_pool2d" in err and "linear, out_features: 10" in err


def test_seven_class_head_for_ten_digits(tmp_path, capsys):
    spec = _spec(tmp_path, "seven", POOLED + "  fc: {op: linear, out_features: 7}\n")
    status, err = _train(spec, tmp_path, capsys)
    assert status == 2
    assert "[fc] the model gives 7 class scores, but --data digits has 10 classes" in err
    assert "out_features: 10" in err and "${num_classes}" in err


def test_num_classes_set_against_the_data(tmp_path, capsys):
    status, err = _train("lenet5", tmp_path, capsys, "--set", "num_classes=7")
    assert status == 2
    assert "7 class scores" in err and "you set num_classes=7: leave it out" in err


def test_input_channels_the_data_cannot_give(tmp_path, capsys):
    spec = _spec(tmp_path, "hwc", POOLED + "  fc: {op: linear, out_features: 10}\n", "[32, 32, 1]")
    status, err = _train(spec, tmp_path, capsys)
    assert status == 2
    assert "input 32x32x1 has 32 channels, but --data digits images are grey" in err
    assert "write `input: [1, 32, 32]`" in err
    rgb = _spec(tmp_path, "rgba", POOLED + "  fc: {op: linear, out_features: 10}\n", "[4, 32, 32]")
    status, err = _train(rgb, tmp_path, capsys)
    assert status == 2 and "has 4 channels" in err and "`input: [1, 32, 32]` or `[3, 32, 32]`" in err


def test_check_warns_channels_last_and_shows_the_input(tmp_path, capsys):
    spec = _spec(tmp_path, "hwc", POOLED, "[32, 32, 1]")
    status, out, err = _run(["check", spec], capsys)
    assert status == 0
    assert out.startswith("ok  ") and "input 32x32x1, output 16" in out
    assert err.startswith(f"{spec}:3:8: warning: input [32, 32, 1] looks channels-last")
    assert "did you mean [1, 32, 32]?" in err
    status, out, err = _run(["check", _spec(tmp_path, "chw", POOLED)], capsys)
    assert status == 0 and err == "" and "input 1x32x32" in out


def test_check_warns_repeat_zero(tmp_path, capsys):
    spec = _spec(tmp_path, "rep", "  body: {op: conv2d, out_channels: 16, kernel_size: 3, padding: 1, repeat: 0}\n")
    status, out, err = _run(["check", spec], capsys)
    assert status == 0 and out.startswith("ok  ")
    assert f"{spec}:6:9: warning: [body] 'body' repeats 0 times: it stands for its input" in err
    one = _spec(tmp_path, "rep1", "  body: {op: conv2d, out_channels: 16, kernel_size: 3, padding: 1, repeat: 1}\n")
    assert _run(["check", one], capsys)[2] == ""


def test_stop_after_says_how_to_resume(tmp_path, capsys):
    spec = _spec(tmp_path, "tiny", POOLED + "  fc: {op: linear, out_features: 10}\n", "[1, 8, 8]")
    run = tmp_path / "tiny_run"
    status, out, _ = _run(["train", spec, "--epochs", "2", "--stop-after", "1", "--out", str(run)], capsys)
    assert status == 0
    assert out.startswith("data: scikit-learn's 8x8 grey digits resized to 8x8; 1437 training and 360 validation")
    assert "paused after epoch 1 of 2 (best validation accuracy " in out
    assert out.rstrip().endswith(f"continue with: archc train --resume {run}")
    status, out, _ = _run(["train", "--resume", str(run)], capsys)
    assert status == 0 and "done: best validation accuracy" in out and "paused" not in out
