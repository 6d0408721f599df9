"""`archc train`: real data, exact resume, transfer learning, weight loading, two-process DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import load_file

from archc.cli import main
from archc.errors import UsageError
from archc.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]


def test_lenet_learns_digits(tmp_path):
    history = train(TrainConfig("lenet5", "digits", epochs=8, out=str(tmp_path / "run")))
    assert max(h["val_acc"] for h in history) > 0.95
    run = tmp_path / "run"
    for name in ("spec.yaml", "run.json", "metrics.csv", "metrics.json", "plot.png", "best.safetensors",
                 "last.safetensors", "state.pt"):
        assert (run / name).is_file(), name
    assert len(json.loads((run / "metrics.json").read_text())) == 8


def test_resume_continues_exactly(tmp_path):
    straight = train(TrainConfig("lenet5", epochs=3, out=str(tmp_path / "a")))
    train(TrainConfig("lenet5", epochs=3, stop_after=2, out=str(tmp_path / "b")))
    assert main(["train", "--resume", str(tmp_path / "b")]) == 0
    a, b = load_file(str(tmp_path / "a/last.safetensors")), load_file(str(tmp_path / "b/last.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    resumed = json.loads((tmp_path / "b/metrics.json").read_text())[-1]
    assert {k: v for k, v in resumed.items() if k != "seconds"} == {k: v for k, v in straight[-1].items()
                                                                    if k != "seconds"}


@pytest.fixture(scope="module")
def tv_weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("w") / "resnet18.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


def _cfg(tmp_path: Path, weights: Path, **kw) -> TrainConfig:
    return TrainConfig("resnet18", "fake", epochs=1, batch_size=4, fake_size=8, weights=str(weights),
                       out=str(tmp_path / "run"), params={"num_classes": 10}, **kw)


def test_strict_weights_report_mismatched_head(tmp_path, tv_weights):
    with pytest.raises(UsageError) as info:
        train(_cfg(tmp_path, tv_weights))
    assert "mismatched (2): fc.weight: file (1000, 512) vs model (10, 512)" in info.value.message


def test_finetune_with_frozen_backbone(tmp_path, tv_weights):
    train(_cfg(tmp_path, tv_weights, strict=False, train_last=1))
    tuned = load_file(str(tmp_path / "run/last.safetensors"))
    original = torch.load(tv_weights, weights_only=True)
    assert torch.equal(tuned["layer4.1.conv2.weight"], original["layer4.1.conv2.weight"])  # frozen
    assert tuned["fc.weight"].shape == (10, 512)
    run = json.loads((tmp_path / "run/run.json").read_text())
    assert "layer4" in run["frozen"] and "fc" not in run["frozen"]


def test_unsafe_pickle_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"weights": torch.zeros(1), "payload": Path("/etc/passwd")}, path)
    with pytest.raises(UsageError, match="plain tensors"):
        from archc.train.weights import read_state_dict

        read_state_dict(path)


def test_ddp_two_processes_gloo(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "archc", "train", "lenet5", "--epochs", "2", "--out", str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("done:") == 1  # rank 0 only
    history = json.loads((tmp_path / "ddp/metrics.json").read_text())
    assert len(history) == 2 and history[-1]["val_acc"] > 0.5


def test_image_folder_data(tmp_path):
    from PIL import Image

    rng = torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        for cls in ("cats", "dogs"):
            folder = tmp_path / "data" / split / cls
            folder.mkdir(parents=True)
            for i in range(4):
                pixels = (torch.rand(40, 48, 3, generator=rng) * 255).to(torch.uint8).numpy()
                Image.fromarray(pixels).save(folder / f"{i}.png")
    history = train(TrainConfig("lenet5", str(tmp_path / "data"), epochs=1, batch_size=4,
                                params={"num_classes": 2}, out=str(tmp_path / "run")))
    assert len(history) == 1 and 0.0 <= history[0]["val_acc"] <= 1.0
    assert (tmp_path / "run/best.safetensors").is_file()
