#!/usr/bin/env python
"""Benchmarks of archc against the tools users pick today, as ratios measured in one run.

    python tools/bench.py                 # full run, writes docs/benchmarks.md
    python tools/bench.py --quick --out /tmp/b.md   # smoke mode (seconds), used by the tests
    python tools/bench.py --only check    # re-measure one section in place in docs/benchmarks.md

Every row is a median over repeats after a warm-up, next to its anchor measured in the same run
(these machines are noisy: only the ratios are meaningful). Anchors that are not installed
(torchinfo, fvcore, torchview: `pip install -e '.[bench]'`) are reported as skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
Row = tuple[str, str, str, str]  # task, archc, anchor, ratio


def _proc(code: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a fresh `python -c code` process."""
    wrapper = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
               f"r = subprocess.run([{PY!r}, '-c', sys.argv[1]], cwd={str(ROOT)!r}, capture_output=True); "
               "dt = time.perf_counter() - t; "
               "sys.exit(r.stderr.decode()[-2000:]) if r.returncode else None; "
               "print(dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")
    out = subprocess.run([PY, "-c", wrapper, code], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def _median_proc(code: str, repeats: int) -> tuple[float, float]:
    _proc(code)  # warm-up (file cache)
    runs = [_proc(code) for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def _median(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _have(mod: str) -> bool:
    return importlib.util.find_spec(mod) is not None


def bench_check(models: list[str], repeats: int) -> list[Row]:
    rows: list[Row] = []
    t_torch, m_torch = _median_proc("import torch", repeats)
    rows.append(("`python -c 'import torch'` (anchor)", "", f"{t_torch:.2f} s, {m_torch:.0f} MB", "1.00"))
    for name in models:
        code = f"from archc.cli import main; main(['check', '-q', 'specs/{name}.yaml'])"
        t, m = _median_proc(code, repeats)
        rows.append((f"`archc check specs/{name}.yaml` vs `import torch`", f"{t:.3f} s, {m:.0f} MB",
                     f"{t_torch:.2f} s, {m_torch:.0f} MB",
                     f"{t_torch / t:.1f}x faster, {m_torch / m:.1f}x less memory"))
        if _have("torchinfo"):  # both print a per-layer table of shapes, parameters and MACs
            ts, ms = _median_proc(f"from archc.cli import main; main(['summary', 'specs/{name}.yaml'])", repeats)
            code = ("import torch, torchvision, torchinfo; "
                    f"print(torchinfo.summary(torchvision.models.{name}(), (1, 3, 224, 224), verbose=0))")
            ta, ma = _median_proc(code, max(1, repeats // 2))
            rows.append((f"`archc summary specs/{name}.yaml` vs torchinfo.summary (whole process)",
                         f"{ts:.3f} s, {ms:.0f} MB", f"{ta:.2f} s, {ma:.0f} MB", f"{ta / ts:.1f}x faster"))
    return rows


def bench_macs(models: list[str]) -> list[Row]:
    import torch
    import torchvision

    import archc

    rows: list[Row] = []
    for name in models:
        ours = archc.check(name).macs
        with torch.device("meta"):
            tv = getattr(torchvision.models, name)().eval()
        x = torch.randn(1, 3, 224, 224, device="meta")
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as fc, torch.no_grad():
            tv(x)
        fcm = fc.get_total_flops() / 2
        anchor = f"FlopCounterMode {fcm / 1e9:.3f} G"
        if _have("fvcore"):
            from fvcore.nn import FlopCountAnalysis

            cpu = getattr(torchvision.models, name)().eval()
            fv = FlopCountAnalysis(cpu, torch.randn(1, 3, 224, 224))
            fv.unsupported_ops_warnings(False)
            fv.uncalled_modules_warnings(False)
            anchor += f"; fvcore {fv.total() / 1e9:.3f} G"
        exact = 2 * ours == fc.get_total_flops()
        rows.append((f"MACs of {name}", f"{ours / 1e9:.3f} G", anchor, "1 (exact)" if exact else f"{ours / fcm:.4f}"))
    return rows


def bench_zoo(repeats: int) -> list[Row]:
    import archc
    from archc.resolve import builtin_dir, builtin_names

    specs = [builtin_dir() / f"{n}.yaml" for n in builtin_names()]
    t = _median(lambda: [archc.check(s) for s in specs], repeats)
    return [(f"in-process analysis of the whole zoo ({len(specs)} specs)", f"{t:.3f} s", "target < 1 s",
             f"{1 / t:.1f}x under target")]


def bench_compile(models: list[str], repeats: int) -> list[Row]:
    import torch
    import torchvision

    import archc

    rows: list[Row] = []
    for name in models:
        for device in ("cpu", "meta"):
            def ours(name: str = name, device: str = device) -> Any:
                return archc.compile(name, device=device)

            def theirs(name: str = name, device: str = device) -> Any:
                with torch.device(device):
                    return getattr(torchvision.models, name)()

            a, b = _median(ours, repeats), _median(theirs, repeats)
            rows.append((f"compile {name} on {device} vs torchvision constructor", f"{a * 1e3:.0f} ms",
                         f"{b * 1e3:.0f} ms", f"{a / b:.2f}x"))
    return rows


def bench_forward(models: list[str], repeats: int, batches: list[int], compiled: bool = False) -> list[Row]:
    import torch
    import torchvision

    import archc

    rows: list[Row] = []
    torch.manual_seed(0)
    for name in models:
        tv = getattr(torchvision.models, name)().eval()
        ours = archc.compile(name).eval()
        ours.load_state_dict(tv.state_dict())
        if compiled:  # both through torch.compile (inductor), compiled before timing
            ours, tv = torch.compile(ours), torch.compile(tv)  # type: ignore[assignment]
        for b in batches:
            x = torch.randn(b, 3, 224, 224)
            with torch.no_grad():
                # interleave the two so that drift hits both alike
                ta, tb = [], []
                for _ in range(repeats):
                    ta.append(_median(lambda m=ours, x=x: m(x), 1))
                    tb.append(_median(lambda m=tv, x=x: m(x), 1))
            a, t = statistics.median(ta), statistics.median(tb)
            mode = "torch.compile" if compiled else "eager"
            rows.append((f"forward {name} batch {b}, CPU {mode}", f"{a * 1e3:.1f} ms", f"{t * 1e3:.1f} ms",
                         f"{a / t:.3f}x"))
    return rows


def _svg_stats(svg: bytes) -> tuple[float, int]:
    import re

    height = float(re.search(rb'height="([\d.]+)pt"', svg).group(1))  # type: ignore[union-attr]
    return height, svg.count(b'class="node"')


def bench_render(models: list[str], repeats: int) -> list[Row]:
    import archc
    from archc.render.output import render

    rows: list[Row] = []
    for name in models:
        analysis = archc.check(name)
        t = _median(lambda a=analysis: render(a, "svg"), repeats)
        h, n = _svg_stats(render(analysis, "svg"))
        anchor, ratio = "torchview not installed", "-"
        if _have("torchview"):
            import torch
            import torchvision
            from torchview import draw_graph

            model = getattr(torchvision.models, name)()

            def theirs(m: Any = model) -> bytes:
                g = draw_graph(m, input_size=(1, 3, 224, 224), device="cpu")
                return bytes(g.visual_graph.pipe(format="svg"))

            ta = _median(theirs, max(1, repeats // 2))
            ha, na = _svg_stats(theirs())
            anchor = f"{ta * 1e3:.0f} ms, {ha:.0f} pt tall, {na} nodes"
            ratio = f"{ta / t:.1f}x faster, {ha / h:.1f}x shorter"
            del torch
        rows.append((f"render {name} to SVG vs torchview", f"{t * 1e3:.0f} ms, {h:.0f} pt tall, {n} nodes",
                     anchor, ratio))
    return rows


def _resnet_sizes(k: int) -> list[int]:
    return [3 * k, 4 * k, 6 * k, 3 * k]


def bench_scaling(repeats: int, quick: bool) -> list[Row]:
    import archc

    rows: list[Row] = []
    cases: list[tuple[str, str, list[dict[str, Any]]]] = [
        ("ResNet-50 -> deeper", "resnet50",
         [{"layers": _resnet_sizes(k)} for k in ((1, 2, 4) if quick else (1, 2, 4, 8, 16))]),
        ("ViT depth 12 -> 96", "vit_b_16", [{"layers": d} for d in ((12, 24) if quick else (12, 24, 48, 96))]),
    ]
    for label, spec, settings in cases:
        pts = []
        for params in settings:
            n = len(archc.check(spec, params).graph.nodes)
            pts.append((n, _median(lambda s=spec, p=params: archc.check(s, p), repeats)))
        xs, ys = [math.log(n) for n, _ in pts], [math.log(t) for _, t in pts]
        mx, my = statistics.mean(xs), statistics.mean(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        detail = ", ".join(f"{n} nodes {t * 1e3:.0f} ms" for n, t in pts)
        rows.append((f"check time vs size, {label}", detail, "linear = exponent 1.0", f"exponent {slope:.2f}"))
    return rows


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}"


def _sections(args: argparse.Namespace) -> list[tuple[str, str, Callable[[], list[Row]]]]:
    """(key for --only, heading, how to measure it) for every section of the report."""
    q, reps = args.quick, 2 if args.quick else 7
    models = ["resnet18"] if q else ["resnet50", "vit_b_16", "densenet121", "efficientnet_b0"]
    runnable = models[:1] if q else ["resnet50", "vit_b_16"]
    return [
        ("check", "Checking a spec (whole process)", lambda: bench_check(models[:1] if q else [*models, "vit_l_16"],
                                                                          reps)),
        ("macs", "MACs against counters that run the model", lambda: bench_macs(models)),
        ("zoo", "In-process analysis", lambda: bench_zoo(reps)),
        ("compile", "Compiling", lambda: bench_compile(runnable, reps)),
        ("forward", "Running (eval, CPU)", lambda: bench_forward(runnable, 3 if q else 15, [1] if q else [1, 8])),
        *([("torch.compile", "Running under torch.compile (eval, CPU)",
            lambda: bench_forward(["resnet50"], 10, [1, 8], compiled=True))] if args.with_compile else []),
        ("render", "Rendering", lambda: bench_render(["resnet18"] if q else ["resnet50", "densenet121"], reps)),
        ("scaling", "Scaling", lambda: bench_scaling(reps, q)),
    ]


def _table(title: str, rows: list[Row], note: str = "") -> list[str]:
    return [f"## {title}", "", *([note, ""] if note else []), "| task | archc | anchor | ratio |", "|---|---|---|---|",
            *(f"| {' | '.join(r)} |" for r in rows), ""]


def _splice(text: str, title: str, table: list[str]) -> str:
    """Replace the section `## title` of an earlier report (up to the next heading) with ``table``."""
    lines = text.split("\n")
    start = lines.index(f"## {title}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join([*lines[:start], *table, *lines[end:]])


def _kept_sections(path: Path, ours: set[str]) -> str:
    """The sections of an earlier report that other scripts write (language server, symbolic sizes,
    concision): kept as they are, after this run's tables."""
    if not path.exists():
        return ""
    kept, keep = [], False
    for line in path.read_text().split("\n"):
        if line.startswith("## "):
            keep = line[3:] not in ours
        if keep:
            kept.append(line)
    return ("\n" + "\n".join(kept)) if kept else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke mode: one model, few repeats")
    ap.add_argument("--out", default=str(ROOT / "docs/benchmarks.md"))
    ap.add_argument("--with-compile", action="store_true", help="also time forward under torch.compile (slow)")
    ap.add_argument("--only", action="append", default=[], metavar="KEY",
                    help="re-measure only this section (check, macs, zoo, compile, forward, torch.compile, render, "
                         "scaling) and replace it in the existing --out file; repeatable")
    args = ap.parse_args(argv)
    sections = _sections(args)
    unknown = set(args.only) - {key for key, _, _ in sections}
    if unknown:
        ap.error(f"unknown --only section(s): {', '.join(sorted(unknown))}")
    flags = [f for f, on in (("--quick", args.quick), ("--with-compile", args.with_compile)) if on]
    flags += [f"--only {key}" for key in args.only]
    cmd = " ".join(["python tools/bench.py", *flags])
    today = time.strftime("%Y-%m-%d")
    from archc.fileio import atomic_write

    if args.only:
        text = Path(args.out).read_text()
        for key, title, measure in sections:
            if key in args.only:
                note = f"Re-measured with `{cmd}` ({today}) on {machine()}."
                text = _splice(text, title, _table(title, measure(), note))
    else:
        lines = ["# Benchmarks", "", f"Machine: {machine()}.  ", f"Command: `{cmd}` "
                 f"({today}). Medians after a warm-up; ratios are archc / anchor "
                 "unless the column says otherwise.", ""]
        for _, title, measure in sections:
            lines += _table(title, measure())
        text = "\n".join(lines) + _kept_sections(Path(args.out), {title for _, title, _ in sections})
    atomic_write(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
