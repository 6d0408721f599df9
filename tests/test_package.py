"""archc as a package people install: the built-in specs ship in the wheel and the sdist, a torch-free
install checks specs and names the extra for the rest, `archc --version` has one source of truth.

The wheel test builds the sdist and a wheel from it (so the sdist is proved complete), installs the
wheel into a fresh venv without torch and runs `archc` from a folder outside the repository (~15 s)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import archc
from archc.api import missing_extra
from archc.cli import main
from archc.resolve import builtin_names, find_spec

ROOT = Path(__file__).resolve().parents[1]
BUILTINS = sorted(p.relative_to(ROOT / "specs").with_suffix("").as_posix() for p in (ROOT / "specs").rglob("*.yaml"))


def test_version_has_one_source(capsys):
    pyproject = (ROOT / "pyproject.toml").read_text()  # no tomllib on Python 3.10
    assert 'dynamic = ["version"]' in pyproject and "\nversion = {attr = \"archc.__version__\"}" in pyproject
    assert "\nversion = \"" not in pyproject  # no second, static version
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"archc {archc.__version__}\n"


def _examples(tmp_path: Path) -> Path:
    """A specs folder with one top-level spec and one in examples/ (the layout of specs/)."""
    lenet = (ROOT / "specs/lenet5.yaml").read_text()
    (tmp_path / "examples").mkdir()
    (tmp_path / "lenet5.yaml").write_text(lenet)
    (tmp_path / "examples/tiny.yaml").write_text(lenet.replace("name: lenet5", "name: tiny"))
    (tmp_path / "zeta.yaml").write_text(lenet.replace("name: lenet5", "name: zeta"))
    return tmp_path


def test_examples_are_builtins_named_by_their_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ARCHC_SPECS", str(_examples(tmp_path)))
    assert builtin_names() == ["lenet5", "zeta", "examples/tiny"]  # the zoo first, then the examples
    assert find_spec("examples/tiny") == tmp_path / "examples/tiny.yaml"
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["example"]) for r in rows] == [("lenet5", False), ("zeta", False), ("examples/tiny", True)]


@pytest.mark.parametrize("name", ["tiny", "examples/../lenet5", "../specs/lenet5", "examples\\tiny", "/lenet5"])
def test_only_listed_names_are_builtins(name, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ARCHC_SPECS", str(_examples(tmp_path)))
    assert main(["check", name]) == 2
    assert "unknown spec" in capsys.readouterr().err


def test_missing_extra_names_the_commands_extra():
    torch_gone = ModuleNotFoundError("No module named 'torch'", name="torch")
    assert str(missing_extra(torch_gone, "archc train", "train")) == (
        "archc train needs torch, which is not installed: pip install 'archc[train]'")
    onnx_gone = ModuleNotFoundError("No module named 'onnx.checker'", name="onnx.checker")
    assert missing_extra(onnx_gone, "archc build", "torch").extra == "export"  # torch alone does not bring onnx
    assert missing_extra(onnx_gone, "archc export", "export").extra == "export"
    assert missing_extra(ModuleNotFoundError("x", name="numpyy"), "archc build", "torch") is None  # a real bug


# Run with torch blocked (None in sys.modules): each command's exit status and message.
_NO_TORCH = """
import sys
sys.modules["torch"] = None
from archc.cli import main
import archc
for argv in {argvs!r}:
    print(argv[0], main(argv), file=sys.stderr)
try:
    archc.compile("lenet5")
except ImportError as e:
    print(type(e).__name__, e, file=sys.stderr)
"""


def test_without_torch_the_extra_is_named(tmp_path):
    argvs = [["build", "lenet5"], ["train", "lenet5", "--epochs", "1"], ["export", "lenet5", "--format", "python"],
             ["bench", "lenet5"], ["check", "-q", "lenet5"], ["summary", "lenet5"], ["blocks"]]
    done = subprocess.run([sys.executable, "-c", _NO_TORCH.format(argvs=argvs)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "ARCHC_DEBUG": ""})
    err = done.stderr
    assert done.returncode == 0 and "internal error" not in err and "Traceback" not in err, err
    for command, extra in [("build", "torch"), ("train", "train"), ("export", "export"), ("bench", "bench")]:
        assert f"error: archc {command} needs torch, which is not installed\n  hint: pip install 'archc[{extra}]'\n" \
               f"{command} 2\n" in err, err
    for command in ("check", "summary", "blocks"):
        assert f"\n{command} 0\n" in err, err
    assert "MissingExtraError archc.compile needs torch, which is not installed: pip install 'archc[torch]'" in err


# --- the wheel -------------------------------------------------------------------------------------

def _run(args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ARCHC_SPECS", "ARCHC_DEBUG")}
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, env=env, **kw)


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> Path:
    """sdist from a copy of the sources, then the wheel built from that sdist."""
    out = tmp_path_factory.mktemp("dist")
    src = tmp_path_factory.mktemp("src")
    for name in ("archc", "specs"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    _ok(_run([sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_sdist({str(out)!r})"], src))
    (sdist,) = out.glob("archc-*.tar.gz")
    _ok(_run([sys.executable, "-m", "pip", "wheel", str(sdist), "--no-deps", "--no-build-isolation", "-q",
              "-w", str(out)], out))
    return out


def test_distributions_carry_specs_and_metadata(dists):
    (wheel,) = dists.glob("archc-*.whl")
    (sdist,) = dists.glob("archc-*.tar.gz")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        info = f"archc-{archc.__version__}.dist-info"
        meta = Parser().parsestr(z.read(f"{info}/METADATA").decode())
        entry_points = z.read(f"{info}/entry_points.txt").decode()
    assert {f"archc/specs/{n}.yaml" for n in BUILTINS} <= names
    assert "archc/schema/archc.schema.json" in names
    with tarfile.open(sdist) as t:
        members = set(t.getnames())
    assert {f"archc-{archc.__version__}/specs/{n}.yaml" for n in BUILTINS} <= members
    # what `twine check` looks at: the core fields, a README that renders as Markdown, the extras
    assert (meta["Name"], meta["Version"]) == ("archc", archc.__version__) and meta["Summary"]
    assert meta["Description-Content-Type"] == "text/markdown" and meta.get_payload().startswith("# archc")
    assert {"torch", "train", "export", "bench"} <= set(meta.get_all("Provides-Extra"))
    requires = meta.get_all("Requires-Dist")
    assert 'torch==2.14.1; extra == "torch"' in requires and not any(r.startswith("torch") and ";" not in r
                                                                      for r in requires)
    assert "archc = archc.cli:run" in entry_points


@pytest.fixture(scope="module")
def venv(dists, tmp_path_factory) -> Path:
    """A fresh venv (no system site-packages, so no torch) with the wheel and its dependencies."""
    env = tmp_path_factory.mktemp("venv") / "venv"
    _ok(_run([sys.executable, "-m", "venv", "--without-pip", str(env)], env.parent))
    (wheel,) = dists.glob("archc-*.whl")
    _ok(_run([sys.executable, "-m", "pip", "--python", str(env / "bin/python"), "install", "-q",
              "--disable-pip-version-check", str(wheel)], env.parent))
    return env / "bin"


def test_wheel_without_torch(venv, tmp_path):
    where = _ok(_run([str(venv / "python"), "-c", "import archc, importlib.util as u; "
                      "print(archc.__file__, u.find_spec('torch'))"], tmp_path))
    assert where.startswith(str(venv.parent)) and where.endswith(" None\n")  # the wheel, not the checkout
    archc_ = str(venv / "archc")
    assert _ok(_run([archc_, "--version"], tmp_path)) == f"archc {archc.__version__}\n"
    listed = [line.split()[0] for line in _ok(_run([archc_, "list"], tmp_path)).splitlines()]
    assert sorted(listed) == BUILTINS
    (tmp_path / "mine.yaml").write_text("extends: resnet50\nname: mine\nparams: {num_classes: 10}\n")
    out = _ok(_run([archc_, "check", "resnet50", "mine.yaml"], tmp_path))
    assert "ok  resnet50: resnet50, 175 nodes, 25,557,032 parameters" in out and "ok  mine.yaml: mine" in out
    if shutil.which("dot") or os.environ.get("ARCHC_ALLOW_MISSING_TOOLS") != "1":
        _ok(_run([archc_, "render", "resnet50", "--svg"], tmp_path))
        assert (tmp_path / "resnet50.svg").read_bytes().lstrip().startswith((b"<?xml", b"<svg"))
    for argv, extra in [(["build", "resnet50"], "torch"), (["train", "lenet5", "--epochs", "1"], "train")]:
        done = _run([archc_, *argv], tmp_path)
        assert done.returncode == 2 and f"pip install 'archc[{extra}]'" in done.stderr, done.stderr
        assert "internal error" not in done.stderr
