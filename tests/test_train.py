"""`archc train`: real data, exact resume, transfer learning, weight loading, two-process DDP."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import load_file

import archc
from archc.cli import main
from archc.errors import UsageError
from archc.train import TrainConfig, fit, loop, train

ROOT = Path(__file__).resolve().parents[1]

# Digits at their native 8x8: a few milliseconds an epoch. Dropout makes resume depend on the RNG;
# the spec freezes `stem` (BatchNorm and dropout inside), tests freeze `body` with --freeze.
SMALL_SPEC = """\
archc: 1
name: small
input: [1, 8, 8]
frozen: [stem]
nodes:
  stem: {seq: [{op: conv2d, out_channels: 4, kernel_size: 3, padding: 1}, batchnorm2d, relu, dropout]}
  body: {seq: [{op: conv2d, out_channels: 4, kernel_size: 3, padding: 1}, batchnorm2d, relu]}
  mid: {seq: [{op: conv2d, out_channels: 4, kernel_size: 3, padding: 1}, batchnorm2d, relu]}
  flatten: flatten
  drop: {op: dropout, p: 0.5}
  fc: {op: linear, out_features: 10}
"""


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture
def small_spec(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL_SPEC)
    return path


def test_lenet_learns_digits(tmp_path):
    history = train(TrainConfig("lenet5", "digits", epochs=8, out=str(tmp_path / "run")))
    assert max(h["val_acc"] for h in history) > 0.95
    run = tmp_path / "run"
    for name in ("spec.yaml", "run.json", "metrics.csv", "metrics.json", "plot.png", "best.safetensors",
                 "last.safetensors", "state.pt"):
        assert (run / name).is_file(), name
    assert len(json.loads((run / "metrics.json").read_text())) == 8


def _same_weights(a: Path, b: Path) -> bool:
    x, y = load_file(str(a / "last.safetensors")), load_file(str(b / "last.safetensors"))
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_resume_continues_exactly(tmp_path, small_spec):
    """3 epochs straight == 2 epochs + resume for 1, bit for bit, with dropout drawing random masks."""
    cfg = dict(spec=str(small_spec), epochs=3, batch_size=32)
    straight = train(TrainConfig(**cfg, out=str(tmp_path / "a")))
    train(TrainConfig(**cfg, stop_after=2, out=str(tmp_path / "b")))
    shutil.copytree(tmp_path / "b", tmp_path / "c")
    assert main(["train", "--resume", str(tmp_path / "b")]) == 0
    assert _same_weights(tmp_path / "a", tmp_path / "b")
    resumed = json.loads((tmp_path / "b/metrics.json").read_text())[-1]
    assert {k: v for k, v in resumed.items() if k != "seconds"} == {k: v for k, v in straight[-1].items()
                                                                    if k != "seconds"}
    # the RNG matters here: the same resume from another CPU random state ends elsewhere
    state = torch.load(tmp_path / "c/state.pt", weights_only=True)
    torch.save({**state, "torch_rng": torch.Generator().manual_seed(1).get_state()}, tmp_path / "c/state.pt")
    assert main(["train", "--resume", str(tmp_path / "c")]) == 0
    assert not _same_weights(tmp_path / "a", tmp_path / "c")


def test_frozen_parts_keep_weights_and_batchnorm_statistics(tmp_path, small_spec):
    torch.manual_seed(1)
    start = {k: v.clone() for k, v in archc.compile(small_spec).state_dict().items()}
    torch.save(start, tmp_path / "start.pth")
    train(TrainConfig(str(small_spec), epochs=1, batch_size=32, freeze=["body"], weights=str(tmp_path / "start.pth"),
                      out=str(tmp_path / "run")))
    end = load_file(str(tmp_path / "run/last.safetensors"))
    frozen = [k for k in start if k.split(".")[0] in ("stem", "body")]
    assert "stem.1.running_var" in frozen and "body.1.num_batches_tracked" in frozen
    assert [k for k in frozen if not torch.equal(start[k], end[k])] == []
    changed = [k for k in start if k not in frozen and not torch.equal(start[k], end[k])]
    assert sorted(changed) == sorted(k for k in start if k not in frozen)  # mid's statistics too
    assert json.loads((tmp_path / "run/run.json").read_text())["frozen"] == ["stem", "body"]


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
    for key in ("layer4.1.conv2.weight", "layer4.1.bn2.running_var", "bn1.num_batches_tracked"):  # frozen
        assert torch.equal(tuned[key], original[key]), key
    assert tuned["fc.weight"].shape == (10, 512)
    run = json.loads((tmp_path / "run/run.json").read_text())
    assert "layer4" in run["frozen"] and "fc" not in run["frozen"]


def test_unsafe_pickle_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"weights": torch.zeros(1), "payload": Path("/etc/passwd")}, path)
    with pytest.raises(UsageError, match="plain tensors"):
        from archc.backend.weights import read_state_dict

        read_state_dict(path)


# One optimisation step: 16 images, 8 a rank. Each rank saves the weights it ends with.
DDP_SCRIPT = """\
import os, sys, torch
from archc.train import TrainConfig, fit
model, history = fit(TrainConfig("lenet5", "fake", epochs=1, batch_size=8, fake_size=16, warmup_epochs=0,
                                 out=sys.argv[1]))
torch.save(model.state_dict(), os.path.join(sys.argv[1], "rank%s.pt" % os.environ["RANK"]))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _moved(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The share of weights further apart than lr / 10. (AdamW's first step moves almost every weight by
    lr, whatever the gradient's size, so a summation-order difference can flip the odd weight whose
    gradient is nearly zero: count weights, not the largest difference.)"""
    far = torch.cat([((a[k] - b[k]).abs() > 1e-4).flatten() for k in a])
    return float(far.float().mean())


def _shard_alone(cfg: TrainConfig, rank: int, world: int) -> dict[str, torch.Tensor]:
    """One process training on the images that rank `rank` of `world` sees, without DDP."""
    from torch.utils.data import DataLoader, DistributedSampler

    from archc.train.engine import train_pass

    run = loop.ImageTask(cfg).setup(Path(archc.resolve.find_spec(cfg.spec)), 0, 1, False)
    data = run.loader.dataset
    run.loader = DataLoader(data, cfg.batch_size, sampler=DistributedSampler(data, world, rank, seed=cfg.seed))
    run.task.start_epoch(run, 0)
    train_pass(run, 1, "")
    return run.model.state_dict()


def test_ddp_two_processes_gloo(tmp_path):
    """Under torchrun both ranks end with the same weights: those of one step on both ranks' images
    together (averaged gradients), not those of a step on one rank's half alone."""
    (tmp_path / "ddp.py").write_text(DDP_SCRIPT)
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))  # this checkout's archc
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(tmp_path / "ddp.py"), str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"ddp/rank{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    cfg = TrainConfig("lenet5", "fake", epochs=1, batch_size=8, fake_size=16, warmup_epochs=0, out=str(tmp_path / "x"))
    both = fit(TrainConfig(**{**vars(cfg), "batch_size": 16, "out": str(tmp_path / "both")}))[0].state_dict()
    half = _shard_alone(cfg, 0, 2)
    assert _moved(rank0, both) < 0.001 and _moved(rank0, half) > 0.05  # about 0 and 0.25
    assert len(json.loads((tmp_path / "ddp/metrics.json").read_text())) == 1  # rank 0 checkpoints


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


def test_each_run_gets_its_own_folder(tmp_path, monkeypatch, capsys):
    """Without --out, runs go to runs/<spec name>/1, 2, ...: a second run never replaces the first."""
    monkeypatch.chdir(tmp_path)
    for n in (1, 2):
        assert main(["train", "lenet5", "--data", "digits", "--epochs", "1"]) == 0
        assert f"run directory runs/lenet5/{n}" in capsys.readouterr().out
    first, second = (load_file(str(tmp_path / f"runs/lenet5/{n}/best.safetensors")) for n in (1, 2))
    assert first.keys() == second.keys()
    assert json.loads((tmp_path / "runs/lenet5/2/run.json").read_text())["out"] == "runs/lenet5/2"


def test_out_into_a_used_folder_needs_exist_ok(tmp_path, small_spec, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    argv = ["train", str(small_spec), "--epochs", "1", "--out", str(run)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"--out {run} already holds files" in err and "--exist-ok" in err and f"--resume {run}" in err
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]
    assert main([*argv, "--exist-ok"]) == 0
    assert (run / "best.safetensors").is_file() and (run / "notes.txt").is_file()


def test_train_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in ("default: 5 (with --resume", "default: 64", "default: 0.001", "default: a new runs/<spec name>/N",
                    "--exist-ok", "digits"):
        assert default in text, default


# ---- torchvision's pretrained weights by name, offline: a cache made here from random weights ----------

@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty TORCH_HOME, where any download fails as it does offline."""
    import urllib.error

    def offline(url: str, *args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return tmp_path / "torch_home"


def _cache(member: object, model: torch.nn.Module) -> Path:
    """Save ``model``'s state_dict where torchvision's cache keeps ``member``'s file."""
    from archc.backend.weights import torchvision_cache_file

    path = torchvision_cache_file(member)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def test_torchvision_weights_from_the_cache_and_offline(torch_home, tmp_path, capsys):
    from torchvision.models import SqueezeNet1_1_Weights

    with pytest.raises(UsageError) as info:  # nothing cached and no network: the file it looked for
        archc.compile("squeezenet1_1", weights="torchvision")
    expected = torch_home / "hub" / "checkpoints" / Path(SqueezeNet1_1_Weights.IMAGENET1K_V1.url).name
    assert f"not in torchvision's cache ({expected})" in info.value.message and "no network" in info.value.message
    torch.manual_seed(1)
    twin = torchvision.models.squeezenet1_1()
    assert _cache(SqueezeNet1_1_Weights.IMAGENET1K_V1, twin) == expected
    for name in ("torchvision", "torchvision:IMAGENET1K_V1", "torchvision:SqueezeNet1_1_Weights.IMAGENET1K_V1"):
        model = archc.compile("squeezenet1_1", weights=name)
        assert all(torch.equal(v, twin.state_dict()[k]) for k, v in model.state_dict().items()), name
    with pytest.raises(UsageError, match="SqueezeNet1_1_Weights has no IMAGENET1K_V2") as info:
        archc.compile("squeezenet1_1", weights="torchvision:IMAGENET1K_V2")
    assert "one of: DEFAULT, IMAGENET1K_V1" in (info.value.hint or "")
    with pytest.raises(UsageError, match="has no torchvision twin"):
        archc.compile("unet", weights="torchvision")
    out = tmp_path / "w.safetensors"
    assert main(["build", "squeezenet1_1", "--weights", "torchvision", "-o", str(out)]) == 0
    assert torch.equal(load_file(str(out))["features.0.weight"], twin.state_dict()["features.0.weight"])
    # predict: the weights' class names (ImageNet's) and their own preprocessing (any image size)
    from PIL import Image

    Image.new("RGB", (300, 260), (200, 120, 40)).save(tmp_path / "cat.jpg")
    capsys.readouterr()
    image = str(tmp_path / "cat.jpg")
    assert main(["predict", "squeezenet1_1", "--weights", "torchvision", image, "--top-k", "2"]) == 0
    names = [part.rsplit(" ", 1)[0] for part in capsys.readouterr().out.split(": ", 1)[1].strip().split(", ")]
    assert len(names) == 2 and set(names) <= set(SqueezeNet1_1_Weights.IMAGENET1K_V1.meta["categories"])


def test_torchvision_segmentation_twin_fine_tunes_its_head(torch_home, tmp_path):
    """lraspp_mobilenet_v3_large from (random) torchvision weights on shapes: --freeze backbone and
    --train-last 1 change only the head, frozen BatchNorm statistics included."""
    from torchvision.models.segmentation import LRASPP_MobileNet_V3_Large_Weights

    torch.manual_seed(0)
    _cache(LRASPP_MobileNet_V3_Large_Weights.DEFAULT, torchvision.models.segmentation.lraspp_mobilenet_v3_large(
        weights_backbone=None))
    for i, how in enumerate(({"freeze": ["backbone"]}, {"train_last": 1})):
        run = tmp_path / f"run{i}"
        train(TrainConfig("lraspp_mobilenet_v3_large", "shapes", epochs=1, batch_size=4, train_size=4, val_size=2,
                          input=[3, 32, 32], weights="torchvision", strict=False, out=str(run), **how))
        start = archc.compile("lraspp_mobilenet_v3_large", weights="torchvision", num_classes=21).state_dict()
        end = load_file(str(run / "last.safetensors"))
        backbone = [k for k in end if k.startswith("backbone.")]
        assert backbone and all(torch.equal(end[k], start[k]) for k in backbone), how
        head = [k for k in end if k.startswith("classifier.") and end[k].is_floating_point()]
        changed = [k for k in head if end[k].shape != start[k].shape or not torch.equal(end[k], start[k])]
        assert set(changed) == set(head), (how, sorted(set(head) - set(changed)))
        assert end["classifier.low_classifier.weight"].shape[0] == 4  # background + 3 shapes
