"""Trust III (issues 24 and 30): what a newcomer met on the command line becomes success or a clear error.

- output piped into `head` ends quietly (exit 0, nothing on stderr), as Unix tools do;
- TorchScript export of every op family with a module class of its own works and equals eager
  (ARCHC_EXPORT_ALL=1: every zoo spec);
- a detection data set given to a classifier, and a class folder without images, are usage errors;
- `archc predict` reads images with training's channel handling (grey <-> RGB);
- `--weights`/`--no-strict` are one shared declaration, accepted by build, train, predict and export;
- non-positive counts and sizes are refused as usage errors (exit 2);
- `archc diff` of large specs does bounded, counted work.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

import archc
from archc.analyze.diff import Aligner, diff, diff_text
from archc.cli import _parser, main
from archc.resolve import Limits
from tests.conftest import SPECS

ROOT = Path(__file__).resolve().parent.parent


# -- output piped into head -------------------------------------------------------------------------

F_SETPIPE_SZ = 1031  # Linux fcntl: the pipe's capacity (the smallest is one page)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pipe capacity is set with Linux's fcntl")
def test_output_piped_into_head_exits_quietly():
    """`archc summary resnet18 | head -1`: the reader leaves after one line; archc exits 0, silently."""
    proc = subprocess.Popen([sys.executable, "-m", "archc", "summary", "resnet18"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    fcntl.fcntl(proc.stdout.fileno(), F_SETPIPE_SZ, 4096)  # the ~10 KB table cannot fit: archc must block
    first = b""
    while not first.endswith(b"\n"):
        chunk = os.read(proc.stdout.fileno(), 1)
        assert chunk, "archc printed nothing"
        first += chunk
    proc.stdout.close()  # as head does after its line
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=300) == 0, err.decode()
    assert first.startswith(b"path") and err == b""


def test_a_broken_pipe_that_is_not_stdout_is_an_internal_error(monkeypatch, capsys):
    """Only our own stdout's reader leaving is quiet; a pipe to anything else breaking is a bug (exit 3)."""
    import archc.cli as cli

    def broken(args: argparse.Namespace) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "_summary", broken)
    assert main(["summary", "lenet5"]) == 3
    assert "internal error: BrokenPipeError" in capsys.readouterr().err


# -- TorchScript export -----------------------------------------------------------------------------

# One spec per op family with a module class of archc's own (self_attention, layernorm2d, sdpa-based
# windows, partition attention, stochastic depth, train-only heads, resize_to, segmentation heads), small.
SMALL_VIT = {"layers": 1, "hidden": 64, "mlp_dim": 128, "heads": 2, "image_size": 64, "num_classes": 10}
TORCHSCRIPT = [
    ("vit_b_16", SMALL_VIT, [3, 64, 64]),
    ("swin_t", {"depths": [2, 1, 1, 1], "num_classes": 10}, [3, 64, 64]),
    ("swin_v2_t", {"depths": [2, 1, 1, 1], "num_classes": 10}, [3, 64, 64]),
    ("maxvit_t", {"depths": [1, 1, 1, 1], "partition_size": 2, "num_classes": 10}, [3, 64, 64]),
    ("convnext_tiny", {"depths": [1, 1, 1, 1], "num_classes": 10}, [3, 64, 64]),
    ("efficientnet_b0", {"num_classes": 10}, [3, 64, 64]),
    ("inception_v3", {"aux_logits": False, "num_classes": 10}, [3, 96, 96]),
    ("googlenet", {"num_classes": 10}, [3, 64, 64]),
    ("lraspp_mobilenet_v3_large", {}, [3, 80, 80]),
    ("deeplabv3_mobilenet_v3_large", {}, [3, 64, 64]),
    ("unet", {"f": [4, 8, 16, 32]}, [1, 92, 92]),
]


def _all_zoo() -> list:
    """ARCHC_EXPORT_ALL=1: every zoo spec, at 64x64 where it checks there (else its own size)."""
    if os.environ.get("ARCHC_EXPORT_ALL") != "1":
        return []
    out = []
    for spec in SPECS:
        shape = list(archc.check(spec).graph.inputs[0][1])
        small = [shape[0], 64, 64] if len(shape) == 3 else shape
        try:
            archc.check(spec, input_shape=small)
        except archc.errors.ArchcError:
            small = shape
        out.append(pytest.param(str(spec), {}, small, id=f"all-{spec.stem}"))
    return out


def _outputs(result: object) -> tuple[torch.Tensor, ...]:
    return result if isinstance(result, tuple) else (result,)  # type: ignore[return-value]


@pytest.mark.parametrize("spec,params,shape", [*TORCHSCRIPT, *_all_zoo()])
def test_torchscript_export_equals_eager(spec, params, shape, tmp_path):
    from archc.export import export

    torch.manual_seed(0)
    model = archc.compile(spec, input_shape=shape, **params).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated upstream
        # as the exporter does: torch's and torchvision's own trace warnings are not ours; archc's own code
        # must record no branch on a size (a TracerWarning from archc fails the test)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"torch(vision)?\.")
        loaded = torch.jit.load(str(export(model, "torchscript", tmp_path / "m.ts.pt")))
    x = torch.randn(3, *shape)  # another batch size than the trace's
    with torch.no_grad():
        ours, theirs = _outputs(model(x)), _outputs(loaded(x))
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-5), float((a - b).abs().max())


def test_cli_exports_self_attention_as_torchscript(tmp_path, capsys):
    """The issue's command, small: any spec with self_attention exported with --format torchscript."""
    out = tmp_path / "vit.ts.pt"
    sets = [x for k, v in SMALL_VIT.items() for x in ("--set", f"{k}={v}")]
    assert main(["export", "vit_b_16", *sets, "--input", "3x64x64", "--format", "torchscript", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"wrote {out}" in err and len(err) < 1000 and out.stat().st_size > 0


def test_module_classes_script_and_equal_eager():
    """torch.jit.script compiles archc's own module classes (groups, channels-first layernorm, self-attention)."""
    from archc.blocks.nn.modules import SelfAttention

    torch.manual_seed(0)
    attention = SelfAttention(16, 4, batch_first=True).eval()
    tokens = torch.randn(2, 5, 16)
    model = archc.compile("convnext_tiny", input_shape=[3, 32, 32], depths=[1, 1, 1, 1], num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", "The TorchScript type system doesn't support instance-level annotations",
                                UserWarning)  # torch's about fx.GraphModule's own __init__
        scripted_attention, scripted_model = torch.jit.script(attention), torch.jit.script(model)
    with torch.no_grad():
        assert torch.allclose(scripted_attention(tokens), attention(tokens), atol=1e-6)
        assert torch.allclose(scripted_model(x), model(x), atol=1e-5)


# -- training data: a detection data set given to a classifier ---------------------------------------

def _ultralytics(root: Path, split_inside: bool, data_yaml: bool) -> Path:
    """An Ultralytics-style detection folder: images/train + labels/train (or train/images + train/labels)."""
    for split in ("train", "val"):
        images, labels = ((root / split / "images", root / split / "labels") if split_inside else
                          (root / "images" / split, root / "labels" / split))
        images.mkdir(parents=True)
        labels.mkdir(parents=True)
        Image.new("RGB", (32, 32)).save(images / "a.jpg")
        (labels / "a.txt").write_text("0 0.5 0.5 0.25 0.25\n")
    if data_yaml:
        (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames: {0: box}\n")
    return root


@pytest.mark.parametrize("split_inside,data_yaml,given", [
    (False, True, "dir"), (True, False, "dir"), (False, True, "yaml")])
def test_detection_data_for_a_classifier_is_a_usage_error(tmp_path, capsys, split_inside, data_yaml, given):
    root = _ultralytics(tmp_path / "det", split_inside, data_yaml)
    data = root / "data.yaml" if given == "yaml" else root
    status = main(["train", "lenet5", "--data", str(data), "--epochs", "1", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert status == 2, err
    assert f"--data {data} is an object-detection data set" in err and "internal error" not in err
    assert "archc train yolov8n --data " in err and "class folders (train/CLASS/, val/CLASS/)" in err
    assert ("write" in err) == (not data_yaml)  # without a data.yaml, the hint says to write one
    assert not (tmp_path / "run").exists()


def test_class_folder_without_images_is_a_usage_error(tmp_path, capsys):
    for split in ("train", "val"):
        (tmp_path / "d" / split / "cat").mkdir(parents=True)
        (tmp_path / "d" / split / "cat" / "notes.txt").write_text("no image here")
    status = main(["train", "lenet5", "--data", str(tmp_path / "d"), "--epochs", "1", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert status == 2 and "Found no valid file for the classes cat" in err and "one sub-folder per class" in err


# -- predict: training's channel handling --------------------------------------------------------------

def _tiny(tmp_path: Path, channels: int) -> tuple[Path, Path]:
    spec = tmp_path / f"tiny{channels}.yaml"
    spec.write_text(f"name: tiny{channels}\ninput: [{channels}, 8, 8]\nparams: {{num_classes: 3}}\nnodes:\n"
                    "  conv: {op: conv2d, out_channels: 4, kernel_size: 3, padding: 1}\n  act: relu\n"
                    "  pool: {op: adaptive_avg_pool2d, output_size: 1}\n  flat: flatten\n"
                    "  fc: {op: linear, out_features: '${num_classes}'}\n")
    weights = tmp_path / f"tiny{channels}.safetensors"
    torch.manual_seed(channels)
    assert main(["build", str(spec), "-o", str(weights)]) == 0
    return spec, weights


@pytest.mark.parametrize("channels", [1, 3])
def test_predict_takes_grey_and_rgb_as_training_does(tmp_path, capsys, channels):
    """A grey image for an RGB model is repeated to 3 channels, an RGB image for a grey model made grey:
    the prediction equals the one for the image converted beforehand."""
    from archc.train.predict import predict

    spec, weights = _tiny(tmp_path, channels)
    colour = Image.linear_gradient("L").resize((16, 16)).convert("RGB")
    colour.putpixel((3, 5), (250, 10, 40))
    other = colour.convert("L") if channels == 3 else colour  # the mode the model does not take
    done = other.convert("RGB") if channels == 3 else other.convert("L")  # converted as training does
    other.save(tmp_path / "other.png")
    done.save(tmp_path / "done.png")
    got = predict(str(spec), [str(tmp_path / "other.png")], str(weights), top_k=3)[0].top
    want = predict(str(spec), [str(tmp_path / "done.png")], str(weights), top_k=3)[0].top
    assert got == want and len(got) == 3
    capsys.readouterr()
    assert main(["predict", str(spec), str(tmp_path / "other.png"), "--weights", str(weights)]) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'other.png'}: ")


# -- --weights and --no-strict: declared once ----------------------------------------------------------

def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_with_weights_takes_no_strict():
    commands = {name: {o for a in p._actions for o in a.option_strings} for name, p in _subparsers().items()}
    loading = {name for name, options in commands.items() if "--weights" in options and name != "val"}
    assert {"build", "train", "predict", "export"} <= loading
    assert all("--no-strict" in commands[name] for name in loading)


def test_build_and_predict_take_no_strict(tmp_path, capsys):
    """The strict refusal's hint (--no-strict) works wherever it is printed."""
    weights = tmp_path / "w.safetensors"
    assert main(["build", "lenet5", "-o", str(weights)]) == 0  # 10 classes
    capsys.readouterr()
    assert main(["build", "lenet5", "--set", "num_classes=5", "--weights", str(weights)]) == 2
    assert "pass --no-strict to load the keys that fit" in capsys.readouterr().err
    assert main(["build", "lenet5", "--set", "num_classes=5", "--weights", str(weights), "--no-strict"]) == 0
    assert "keys not loaded: mismatched: 2" in capsys.readouterr().out
    Image.new("L", (32, 32), 40).save(tmp_path / "x.png")
    predict = ["predict", "lenet5", str(tmp_path / "x.png"), "--weights", str(weights), "--set", "num_classes=5"]
    assert main(predict) == 2 and "--no-strict" in capsys.readouterr().err
    assert main([*predict, "--no-strict", "--top-k", "2"]) == 0
    assert len(capsys.readouterr().out.split(": ", 1)[1].split(", ")) == 2


# -- numeric options ---------------------------------------------------------------------------------

@pytest.mark.parametrize("argv,option", [
    (["summary", "lenet5", "--batch", "-1"], "--batch"),
    (["summary", "lenet5", "--batch", "0"], "--batch"),
    (["summary", "lenet5", "--depth", "0"], "--depth"),
    (["summary", "lenet5", "--batch", "two"], "--batch"),
    (["render", "lenet5", "--svg", "--depth", "-1"], "--depth"),
    (["diff", "lenet5", "--depth", "-2"], "--depth"),
    (["check", "lenet5", "--max-nodes", "0"], "--max-nodes"),
    (["check", "lenet5", "--max-steps", "-5"], "--max-steps"),
    (["train", "lenet5", "--epochs", "0"], "--epochs"),
    (["train", "lenet5", "--batch-size", "0"], "--batch-size"),
    (["train", "lenet5", "--lr", "0"], "--lr"),
    (["train", "lenet5", "--lr", "nan"], "--lr"),
    (["train", "lenet5", "--backbone-lr=-1e-3"], "--backbone-lr"),
    (["train", "lenet5", "--weight-decay", "-0.1"], "--weight-decay"),
    (["train", "lenet5", "--warmup", "-1"], "--warmup"),
    (["train", "lenet5", "--label-smoothing", "1"], "--label-smoothing"),
    (["train", "lenet5", "--clip", "0"], "--clip"),
    (["train", "lenet5", "--aux-weight", "-0.5"], "--aux-weight"),
    (["train", "lenet5", "--seed", "-1"], "--seed"),
    (["train", "lenet5", "--train-last", "0"], "--train-last"),
    (["train", "lenet5", "--workers", "-1"], "--workers"),
    (["train", "lenet5", "--fake-size", "0"], "--fake-size"),
    (["train", "lenet5", "--stop-after", "0"], "--stop-after"),
    (["train", "lenet5", "--train-size", "0"], "--train-size"),
    (["train", "lenet5", "--val-size", "-3"], "--val-size"),
    (["train", "lenet5", "--epochs", "inf"], "--epochs"),
    (["predict", "lenet5", "x.png", "--top-k", "0"], "--top-k"),
    (["bench", "lenet5", "--repeats", "0"], "--repeats"),
])
def test_non_positive_numbers_are_usage_errors(argv, option, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: " in err and ("must be" in err or "expected a" in err)


def test_bench_batch_sizes_must_be_positive(capsys):
    assert main(["bench", "lenet5", "--batch-sizes", "1,0"]) == 2
    assert "--batch-sizes must be positive" in capsys.readouterr().err


def test_summary_memory_is_positive_for_a_valid_batch(capsys):
    assert main(["summary", "lenet5", "--batch", "4", "--json"]) == 0
    import json

    memory = json.loads(capsys.readouterr().out)["memory"]
    assert all(v > 0 for v in memory.values() if isinstance(v, int | float))


# -- archc diff: bounded, counted work ---------------------------------------------------------------

OPS = ("relu", "gelu", "silu", "tanh")
N = 3000  # nodes per spec; the former alignment made ~N^2 / 4 pair steps here (difflib over a periodic seq)


def _seq_spec(path: Path, ops: list[str], flat: bool = False, skip: int = -1) -> archc.analyze.Analysis:
    """A seq of ``ops`` (or named nodes n0, n1, ... when ``flat``), node ``skip`` left out."""
    body = ("".join(f"  n{i}: {op}\n" for i, op in enumerate(ops) if i != skip) if flat else
            "  body:\n    seq:\n" + "".join(f"      - {op}\n" for i, op in enumerate(ops) if i != skip))
    path.write_text(f"name: {path.stem}\ninput: [2, 2, 2]\nnodes:\n{body}")
    return archc.check(path, limits=Limits(max_steps=10 * N))


@pytest.mark.parametrize("flat", [False, True])
def test_diff_of_large_specs_is_exact_and_linear(tmp_path, flat):
    """A seq (or a flat list) of 3,000 nodes with one node removed: exactly one removal, in work linear in
    the nodes (the tree in one pass, the common ends paired in one pass)."""
    ops = [OPS[i % 4] for i in range(N)]
    a = _seq_spec(tmp_path / "a.yaml", ops, flat)
    b = _seq_spec(tmp_path / "b.yaml", ops, flat, skip=1234)
    aligner = Aligner(a.graph, b.graph)
    d = diff(a, b, aligner=aligner)
    assert (len(d["added"]), len(d["removed"]), len(d["changed"])) == (0, 1, 0) and not d["approximate"]
    assert aligner.work <= 12 * N, aligner.work


def test_diff_many_scattered_edits_within_the_budget(tmp_path):
    """A node inserted after every 7th: the edit script stays exact (every insertion found, nothing else)
    and its steps are counted against the budget; over a small budget, the seq is paired by position
    and the text says so."""
    ops = [OPS[i % 4] for i in range(N)]
    edited = [x for i, op in enumerate(ops) for x in ([op, "sigmoid"] if i % 7 == 3 else [op])]
    a, b = _seq_spec(tmp_path / "a.yaml", ops), _seq_spec(tmp_path / "b.yaml", edited)
    aligner = Aligner(a.graph, b.graph)
    d = diff(a, b, aligner=aligner)
    assert len(d["added"]) == len(edited) - N and not d["removed"] and not d["changed"]
    assert aligner.work <= 1_000_000 + 12 * N
    small = Aligner(a.graph, b.graph, budget=10_000)
    d = diff(a, b, aligner=small)
    assert d["approximate"] == ["body"] and small.work <= 10_000 + 12 * N
    assert "note: body differs over too many children to align" in diff_text(d)


def test_cli_diff_uses_the_bounded_alignment(tmp_path, capsys):
    ops = [OPS[i % 4] for i in range(200)]
    for name, seq in (("a", ops), ("b", ops[:50] + ["sigmoid"] + ops[50:])):
        (tmp_path / f"{name}.yaml").write_text(f"name: {name}\ninput: [2, 2, 2]\nnodes:\n  body:\n    seq:\n"
                                               + "".join(f"      - {op}\n" for op in seq))
    assert main(["diff", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")]) == 0
    out = capsys.readouterr().out
    assert "added nodes (1: 1 sigmoid): body.50" in out and "removed" not in out and "changed" not in out
