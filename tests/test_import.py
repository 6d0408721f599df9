"""`archc import` / archc.from_module: torchvision models import exact and folded (issue 27)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import archc  # noqa: E402
from archc.cli import main  # noqa: E402
from archc.errors import UsageError  # noqa: E402
from archc.importer.fold import over_i  # noqa: E402

SPECS = Path(__file__).resolve().parent.parent / "specs"
SHAPE = (3, 64, 64)


# the benchmark's own helpers (tools/bench_import.py), so that the tests and the table count and randomise alike
_spec = importlib.util.spec_from_file_location("bench_import", SPECS.parent / "tools" / "bench_import.py")
assert _spec is not None and _spec.loader is not None
bench_import = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_import)
_lines_with_bases = bench_import.hand_lines  # lines of a hand-written spec and of the specs it extends
_randomise = bench_import.randomise  # weights and BatchNorm statistics that make the comparison bite


def assert_exact(source: torch.nn.Module, spec: Path, shape: tuple[int, ...], *, batch: int = 2, seed: int = 1,
                 atol: float | None = None) -> torch.nn.Module:
    """The imported spec is exact: the source's parameter count, its randomised state_dict loads strict=True,
    and the outputs agree (rtol 1e-5; atol ``atol``, else 1e-5 of the largest output) on a reference that is
    not zero. Returns the compiled twin."""
    source.eval()
    assert archc.check(spec).params == sum(p.numel() for p in source.parameters())
    _randomise(source)
    twin = archc.compile(spec).eval()
    twin.load_state_dict(source.state_dict(), strict=True)
    x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        want, got = source(x), twin(x)
    assert want.abs().max() > 1e-3  # not a comparison of zeros
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()) if atol is None else atol)
    return twin


def _imported(name: str, tmp_path: Path) -> tuple[torch.nn.Module, Path, str]:
    torch.manual_seed(0)
    source = getattr(torchvision.models, name)().eval()
    text = archc.from_module(source, SHAPE)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return source, path, text


@pytest.mark.parametrize("name", ["resnet18", "vgg11", "resnet50", "mobilenet_v2", "efficientnet_b0",
                                  "mobilenet_v3_large"])
def test_torchvision_imports_exact(name: str, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    source, path, _ = _imported(name, tmp_path)
    assert_exact(source, path, SHAPE)


def test_resnet_basic_blocks_fold_into_one_block_with_repeat(tmp_path: Path) -> None:
    _, _, text = _imported("resnet18", tmp_path)
    assert re.findall(r"^  (\w+):  # torchvision.models.resnet.BasicBlock$", text, re.M) == ["basic_block"]
    stages = re.findall(r"^  layer\d: \{op: basic_block, repeat: 2, (.*)\}$", text, re.M)
    assert len(stages) == 4 and stages[0] == "out_channels: 64"  # downsample and stride: their defaults
    assert 'stride: "${2 if i == 0 else 1}"' in stages[1] and 'downsample: "${i == 0}"' in stages[1]
    assert "when: \"${downsample}\"" in text
    assert "in_channels" not in text  # input widths are inferred
    # resnet18.yaml extends resnet50.yaml: compare with both files, the hand-written spec in full
    assert len(text.splitlines()) <= 2 * _lines_with_bases("resnet18")
    assert len(text.splitlines()) <= 40


def test_resnet50_is_within_twice_its_hand_written_spec(tmp_path: Path) -> None:
    _, _, text = _imported("resnet50", tmp_path)
    assert len(text.splitlines()) <= 2 * len((SPECS / "resnet50.yaml").read_text().splitlines())
    assert len(re.findall(r"^  layer\d: \{op: bottleneck, repeat: \d, ", text, re.M)) == 4


@pytest.mark.parametrize(("vec", "want"), [
    ([1, 1, 1], 1), ([True, False, False], "${i == 0}"), ([2, 1, 1], "${2 if i == 0 else 1}"),
    ([4, 6, 8], "${4 + 2 * i}"), ([1, 5, 2], "${[1, 5, 2][i]}"), (["a", "b", "b"], "${'a' if i == 0 else 'b'}"),
])
def test_repeat_arguments_follow_i(vec: list[object], want: object) -> None:
    assert over_i(vec) == want
    if isinstance(want, str) and want.startswith("${"):  # the expression gives the values back
        from archc.expr import evaluate

        assert [evaluate(want[2:-1], {"i": i}) for i in range(len(vec))] == vec


class _Odd(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3)
        self.rnn = torch.nn.Sequential(torch.nn.Upsample(scale_factor=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(self.stem(x))


def test_unmapped_module_is_a_named_error() -> None:
    with pytest.raises(UsageError) as e:
        archc.from_module(_Odd(), (3, 16, 16))
    msg = str(e.value)
    assert "torch.nn.modules.upsampling.Upsample" in msg and "'rnn.0'" in msg and "nearest: " in msg


def test_unmapped_function_is_a_named_error() -> None:
    class Fn(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cumsum(x, 1)

    with pytest.raises(UsageError, match=r"function torch\.cumsum at '<top>' has no archc op"):
        archc.from_module(Fn(), (3, 8, 8))


USER_FILE = '''
import torch
from torch import nn


class Unit(nn.Module):
    def __init__(self, c, gate):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c, 1), nn.Sigmoid()) if gate else None

    def forward(self, x):
        y = self.bn(self.conv(x))
        if self.gate is not None:
            y = y * self.gate(y)
        return torch.relu(x + y)


class Factory(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.units = nn.Sequential(*[Unit(16, gate=k % 2 == 0) for k in range(4)])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(16, classes)

    def forward(self, x):
        y = self.pool(self.units(self.stem(x)))
        return self.head(y.view(y.size(0), -1))
'''


def test_user_file_factory_imports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from archc.importer.cli import load_source

    src = tmp_path / "net.py"
    src.write_text(USER_FILE)
    out = tmp_path / "net.yaml"
    assert main(["import", f"{src}:Factory", "--args", '{"classes": 7}', "--input", "3x16x16", "-o", str(out)]) == 0
    analysis = archc.check(out)
    assert analysis.output_shapes == [(7,)]
    text = out.read_text()
    assert len(text.splitlines()) <= 150  # issue 27: a user's module of this size within 150 lines
    assert re.search(r"^  unit:  # archc_user_net\.Unit$", text, re.M)  # gated and plain units: one block
    assert 'units: {op: unit, repeat: 4, gate: "${[true, false, true, false][i]}"}' in text
    source, _ = load_source(f"{src}:Factory", {"classes": 7})
    assert_exact(source, out, (3, 16, 16), batch=3, seed=2, atol=1e-6)
    assert main(["import", f"{src}:Nope"]) == 2
    assert "defines no 'Nope'" in capsys.readouterr().err


def test_fold_matches_up_to_values_and_absent_children() -> None:
    """The fold stage alone, on a hand-made tree: two units of one class, one without its shortcut."""
    from archc.importer.fold import fold

    def unit(width: int, proj: bool) -> dict[str, object]:
        nodes: dict[str, object] = {"conv": {"op": "conv2d", "out_channels": width, "kernel_size": 3, "in": ["input"]}}
        if proj:
            nodes["proj"] = {"op": "conv2d", "out_channels": width, "kernel_size": 1, "in": ["input"]}
        nodes["add"] = {"op": "add", "in": ["conv", "proj" if proj else "input"]}
        return {"_cls": "m.Unit", "_seq": False, "nodes": nodes, "in": ["input"]}

    top = {"_cls": "m.Net", "_seq": False, "in": [], "nodes": {
        "units": {"_cls": "torch.nn.modules.container.Sequential", "_seq": True, "in": ["input"],
                  "nodes": {"0": unit(8, True), "1": {**unit(8, False), "in": ["0"]},
                            "2": {**unit(8, False), "in": ["1"]}}}}}
    blocks = fold(top)
    assert list(blocks) == ["unit"]
    assert blocks["unit"]["args"] == {"proj": "{type: bool, default: false}"}
    assert blocks["unit"]["nodes"]["proj"]["when"] == "${proj}"
    assert top["nodes"]["units"] == {"op": "unit", "repeat": 3, "proj": "${i == 0}", "in": ["input"],
                                     "_cls": "m.Unit"}


def test_data_dependent_control_flow_is_a_named_error() -> None:
    class Branchy(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x if x.sum() > 0 else -x

    with pytest.raises(UsageError, match="torch.fx cannot trace Branchy") as e:
        archc.from_module(Branchy(), (3, 8, 8))
    assert "data-dependent control flow" in (e.value.hint or "")


def test_cli_writes_stdout_and_refuses_bad_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "torchvision:resnet18?num_classes=10", "--input", "3x32x32"]) == 0
    out = capsys.readouterr().out
    assert "fc: {op: linear, out_features: 10}" in out and "input: [3, 32, 32]" in out
    path = tmp_path / "r.yaml"
    path.write_text(out)
    assert archc.check(path).output_shapes == [(10,)]
    for argv, msg in [(["torchvision:resnet1"], "did you mean 'resnet18'"), (["nothing"], "cannot read SOURCE"),
                      (["torchvision:resnet18", "--input", "3x0x4"], "--input expects"),
                      (["torchvision:resnet18", "--args", "[1]"], "--args must be a JSON object"),
                      (["torchvision:resnet18", "-o", str(tmp_path / "no" / "r.yaml")], "cannot write")]:
        assert main(["import", *argv]) == 2, argv
        assert msg in capsys.readouterr().err, argv


def test_timm_missing_names_the_install(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "timm" else real(name, *a))
    assert main(["import", "timm:resnet50d"]) == 2
    err = capsys.readouterr().err
    assert "timm is not installed" in err and "pip install timm" in err and "archc[dev]" in err


def test_a_grandchild_called_directly_sits_in_its_parents_group(tmp_path: Path) -> None:
    """poolformer's forward calls self.head.fc(x): the node stays at its weights' path (a group 'sub'), so the
    state_dict still loads strict; a parent whose children read two outside values is still refused."""
    class Inner(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 1)
            self.conv2 = torch.nn.Conv2d(4, 4, 1)

    class Outer(torch.nn.Module):
        def __init__(self, split: bool = False) -> None:
            super().__init__()
            self.sub = Inner()
            self.mid = torch.nn.Conv2d(4, 4, 1) if split else None

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.sub.conv(x)
            return self.sub.conv2(self.mid(y) if self.mid is not None else y)

    text = archc.from_module(Outer(), (3, 8, 8))
    assert "  sub:  # " in text
    (tmp_path / "outer.yaml").write_text(text)
    model = archc.compile(tmp_path / "outer.yaml")
    model.load_state_dict(Outer().state_dict(), strict=True)
    with pytest.raises(UsageError, match="reads several values from outside|not its parent"):
        archc.from_module(Outer(split=True), (3, 8, 8))


USER_FILE_2 = '''
import torch
import torch.nn.functional as F
from torch import nn


class Gate(nn.Module):
    """squeeze-and-excitation with functional pooling and gating"""
    def __init__(self, c, r=4):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // r, 1)
        self.fc2 = nn.Conv2d(c // r, c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class Residual(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                                  nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.gate = Gate(cout)
        self.short = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                      if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        return F.relu(self.gate(self.body(x)) + self.short(x))


class Net(nn.Module):
    def __init__(self, widths=(16, 32, 64), depth=3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        stages, cin = [], widths[0]
        for k, w in enumerate(widths):
            stages.append(nn.Sequential(*[Residual(cin if j == 0 else w, w, 2 if k and j == 0 else 1)
                                          for j in range(depth)]))
            cin = w
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(widths[-1], 10)

    def forward(self, x):
        return self.head(torch.flatten(F.adaptive_avg_pool2d(self.stages(self.stem(x)), 1), 1))
'''


def test_user_file_with_its_own_residual_and_gate_modules(tmp_path: Path) -> None:
    """issue 27's done-when: a user's residual and gating modules import exact and folded within 150 lines."""
    from archc.importer.cli import load_source

    src = tmp_path / "resgate.py"
    src.write_text(USER_FILE_2)
    out = tmp_path / "resgate.yaml"
    assert main(["import", f"{src}:Net", "--input", "3x16x16", "-o", str(out)]) == 0
    text = out.read_text()
    assert len(text.splitlines()) <= 60
    assert re.findall(r"^  (\w+):  # archc_user_resgate\.(\w+)$", text, re.M) == [("gate", "Gate"),
                                                                                    ("residual", "Residual")]
    assert re.search(r'^      - {op: residual, repeat: 3, .*short: "\$\{i == 0\}"', text, re.M), text
    source, _ = load_source(f"{src}:Net", {})
    assert_exact(source, out, (3, 16, 16), seed=3)
