"""The `archc` command as a user runs it: exit codes, outputs, files written atomically."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from archc.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str], capsys) -> tuple[int, str, str]:
    status = main(args)
    out = capsys.readouterr()
    return status, out.out, out.err


def test_check_ok(capsys):
    status, out, err = run(["check", str(ROOT / "specs/resnet50.yaml")], capsys)
    assert status == 0 and err == ""
    assert "25,557,032 parameters" in out and "4.089 GMACs" in out


def test_check_set_overrides(capsys):
    status, out, _ = run(["check", "resnet50", "--set", "layers=[3,4,23,3]", "--set", "num_classes=10"], capsys)
    assert status == 0
    assert "output 10" in out and "42,520,650 parameters" in out


def test_check_input_override(capsys):
    status, out, _ = run(["check", "resnet18", "--input", "3x64x64"], capsys)
    assert status == 0 and "148.558 MMACs" in out  # 1.814 GMACs at the spec's own 3x224x224
    status, out, _ = run(["summary", "resnet18", "--input", "3x64x64", "--json"], capsys)
    doc = json.loads(out)
    assert status == 0 and doc["input_shape"] == [3, 64, 64]
    assert {n["path"]: n["output_shape"] for n in doc["nodes"]}["layer4.1.add"] == [512, 2, 2]


@pytest.mark.parametrize("args,needle", [
    (["check", "resnet51"], "unknown spec 'resnet51'"),
    (["check", "resnet50", "--set", "num_clases=3"], "unknown parameter 'num_clases'"),
    (["check", "resnet50", "--set", "novalue"], "--set expects name=value"),
    (["check", "resnet50", "--input", "3xbig"], "--input expects sizes"),
    (["check", "nonexistent/file.yaml"], "no such spec file"),
])
def test_usage_errors_exit_2(args, needle, capsys):
    status, _, err = run(args, capsys)
    assert status == 2
    assert needle in err and "Traceback" not in err


def test_check_reports_every_file(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ninput: [3, 8, 8]\nnodes:\n  a: {op: conv2d, out_channels: 4, kernel_size: 9}\n")
    status, out, err = run(["check", str(bad), str(ROOT / "specs/resnet18.yaml")], capsys)
    assert status == 1
    assert "bad.yaml:4:" in err and "smaller than the kernel" in err
    assert "resnet18" in out


def test_summary_json_keys(capsys):
    status, out, _ = run(["summary", "resnet18", "--json"], capsys)
    doc = json.loads(out)
    assert status == 0
    assert {"params", "macs", "flops", "input_shape", "output_shape", "nodes"} <= set(doc)
    assert doc["params"] == 11_689_512 and doc["flops"] == 2 * doc["macs"]
    assert {"path", "block", "output_shape", "params", "macs"} <= set(doc["nodes"][0])
    assert sum(n["params"] for n in doc["nodes"]) == doc["params"]


def test_summary_depth_collapses(capsys):
    status, out, _ = run(["summary", "resnet50", "--depth", "1"], capsys)
    assert status == 0
    assert "bottleneck x3" in out and "layer1.0" not in out


def test_build_writes_safetensors(tmp_path, capsys):
    target = tmp_path / "w.safetensors"
    status, out, _ = run(["build", "resnet18", "--set", "num_classes=7", "-o", str(target)], capsys)
    assert status == 0 and target.exists()
    from safetensors.torch import load_file

    weights = load_file(str(target))
    assert weights["fc.weight"].shape == (7, 512)


def test_failed_build_keeps_existing_file(tmp_path, capsys):
    target = tmp_path / "w.safetensors"
    target.write_bytes(b"precious")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ninput: [3, 8, 8]\nnodes:\n  a: {op: conv2d, out_channels: 4, kernel_size: 9}\n")
    status, _, err = run(["build", str(bad), "-o", str(target)], capsys)
    assert status == 1 and "bad.yaml:4:" in err
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "w.safetensors"]


def test_schema_is_valid_json(capsys):
    status, out, _ = run(["schema"], capsys)
    assert status == 0
    assert json.loads(out)["$schema"].endswith("2020-12/schema")


def test_blocks_lists_library(capsys):
    status, out, _ = run(["blocks"], capsys)
    assert status == 0 and "conv2d(out_channels" in out and "self_attention" in out


def test_check_does_not_import_torch():
    code = ("import sys; from archc.cli import main; rc = main(['check', '-q', 'resnet50']); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_console_script_runs():
    proc = subprocess.run([sys.executable, "-m", "archc", "check", "resnet18"], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0 and "resnet18" in proc.stdout


def test_diff_settings(capsys):
    status, out, _ = run(["diff", "resnet50", "--set", "layers=[3,4,23,3]", "--json"], capsys)
    d = json.loads(out)
    assert status == 0
    assert len(d["added"]) == 17 * 10 and not d["removed"]
    assert [s["stage"] for s in d["stages"]] == ["layer3"]
    assert d["params"] == [25_557_032, 44_549_160]


def test_diff_two_specs_text(capsys):
    status, out, _ = run(["diff", "vgg16", "vgg16_bn"], capsys)
    assert status == 0 and "added nodes (13: 13 batchnorm2d)" in out and "changed nodes" not in out
    assert "138,357,544 -> 138,365,992" in out


def test_bench_against_twin(capsys):
    status, out, _ = run(["bench", "resnet18", "--batch-sizes", "1", "--repeats", "2", "--input", "3x64x64",
                          "--json"], capsys)
    rows = json.loads(out)
    assert status == 0 and rows[0]["batch"] == 1
    assert {"archc ms", "torchvision:resnet18 ms", "ratio"} <= set(rows[0])


def test_bench_rejects_bad_against(capsys):
    status, _, err = run(["bench", "lenet5", "--against", "resnet18"], capsys)
    assert status == 2 and "torchvision:NAME" in err


_PLUGIN = '''
from archc.blocks.base import Block, Param


def _build(args, ins):
    import torch

    class Scale(torch.nn.Module):
        def __init__(self, factor):
            super().__init__()
            self.factor = factor

        def forward(self, x):
            return x * self.factor

    return Scale(args["factor"])


def blocks():
    return [Block("demo_scale", "demo_scale: x * factor", {"factor": Param("float", 2.0)}, lambda a, s: s[0],
                  build=_build)]
'''
_PLUGGED_SPEC = """name: plugged
input: [3, 8, 8]
nodes:
  conv: {op: conv2d, out_channels: 4, kernel_size: 3}
  scaled: {op: demo_scale, factor: 3.0}
"""
_USE_PLUGIN = """
import sys, torch, archc
analysis = archc.check(sys.argv[1])
model = archc.compile(sys.argv[1]).eval()
x = torch.randn(2, 3, 8, 8)
with torch.no_grad():
    assert torch.equal(model(x), model.conv(x) * 3.0)
print(*analysis.output_shapes, type(model.scaled).__name__)
"""


def test_plugin_block_from_an_installed_entry_point(tmp_path):
    """A package that declares an `archc.blocks` entry point (a real dist-info on sys.path, not a
    mock) adds an op that specs can use: `archc blocks`, `archc check`, compile and forward."""
    site = tmp_path / "site"
    (site / "archc_demo_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "archc_demo_plugin-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: archc-demo-plugin\nVersion: 0.1\n")
    (site / "archc_demo_plugin-0.1.dist-info" / "entry_points.txt").write_text(
        "[archc.blocks]\ndemo = archc_demo_plugin:blocks\n")
    (site / "archc_demo_plugin.py").write_text(_PLUGIN)
    spec = tmp_path / "plugged.yaml"
    spec.write_text(_PLUGGED_SPEC)

    def archc_cli(*args: str, plugin: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(site)} if plugin else dict(os.environ)
        return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=tmp_path, env=env)

    without = archc_cli("-m", "archc", "check", str(spec), plugin=False)
    assert without.returncode == 1 and "unknown block 'demo_scale'" in without.stderr
    listed = archc_cli("-m", "archc", "blocks")
    assert listed.returncode == 0 and "demo_scale(factor" in listed.stdout, listed.stderr[-2000:]
    checked = archc_cli("-m", "archc", "check", str(spec))
    assert checked.returncode == 0 and "ok" in checked.stdout and "output 4x6x6" in checked.stdout, checked
    used = archc_cli("-c", _USE_PLUGIN, str(spec))
    assert used.returncode == 0, used.stderr[-2000:]
    assert used.stdout.split() == ["(4,", "6,", "6)", "Scale"]


def test_check_names_train_only_outputs(capsys):
    assert main(["check", "inception_v3"]) == 0
    assert "5.713 GMACs, input 3x299x299, output 1000 (in training also AuxLogits.fc 1000)" in capsys.readouterr().out
