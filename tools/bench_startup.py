"""Start-up of the CLI: whole-process `archc summary NAME` against torchinfo.summary of the torchvision twin
(whole process: import torch, build, run, print the table), on every torchvision classification model that
has a built-in spec, as ratios measured in the same run. Also: in-process analysis of the whole zoo, and
symbolic input sizes against concrete ones (in-process).

    python tools/bench_startup.py                         # every model (torchinfo takes ~5-20 s a model)
    python tools/bench_startup.py --models resnet18,efficientnet_b0,mobilenet_v3_small --runs 5
    python tools/bench_startup.py --skip-torchinfo        # archc alone, and the zoo/symbolic rows

Both sides run as an installed package does, with bytecode caches: PYTHONDONTWRITEBYTECODE is dropped and
the caches go to a temporary PYTHONPYCACHEPREFIX, written by a warm-up run of each command (without them
every run of either side compiles its sources again). Goals (issue 28): summary >= 25x faster than
torchinfo on every model, the zoo < 1 s, symbolic <= 2x concrete.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["resnet18", "efficientnet_b0", "mobilenet_v3_small"]
SYMBOLIC = ["resnet50", "densenet121", "vgg16", "efficientnet_b0", "inception_v3", "swin_t", "convnext_tiny"]


def _env(cache: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache
    return env


def _times(cmd: list[str], env: dict[str, str], runs: int, warm_up: bool = True) -> list[float]:
    """Wall seconds of each run of a whole process, after one warm-up run (file cache, bytecode cache)."""
    times = []
    for k in range(runs + warm_up):
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True)
        if done.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr.decode()[-2000:]}")
        if k or not warm_up:
            times.append(time.perf_counter() - start)
    return times


def _seconds(cmd: list[str], env: dict[str, str], runs: int) -> float:
    """Median wall seconds of a whole process, after one warm-up run."""
    return statistics.median(_times(cmd, env, runs))


def _load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _models(requested: str | None) -> list[str]:
    from archc.resolve import builtin_names

    if requested:
        return requested.split(",")
    import torchvision

    return sorted(set(torchvision.models.list_models(module=torchvision.models)) & set(builtin_names()))


def _torchinfo(name: str, shape: tuple[int, ...]) -> list[str]:
    code = ("import torch, torchvision, torchinfo; "
            f"print(torchinfo.summary(torchvision.models.{name}(), (1, *{tuple(shape)!r}), verbose=0))")
    return [sys.executable, "-c", code]


def startup(models: list[str], runs: int, anchor_runs: int, skip_torchinfo: bool, cache: str) -> None:
    import archc

    env = _env(cache)
    print(_load())
    floor = _seconds([sys.executable, "-c", "pass"], env, runs)
    print(f"python -c pass (the floor of any Python command): {floor * 1000:.0f} ms")
    print(f"{'model':<22} {'nodes':>6} {'archc ms':>9} {'torchinfo ms':>13} {'ratio':>7}")
    ratios = []
    for name in models:
        graph = archc.check(name).graph
        cmd = [sys.executable, "-m", "archc", "summary", name]
        before = _times(cmd, env, (runs + 1) // 2)  # half the runs before torchinfo's, half after: the same load
        theirs = None if skip_torchinfo else _seconds(_torchinfo(name, graph.inputs[0][1]), env, anchor_runs)
        ours = statistics.median(before + _times(cmd, env, runs // 2, warm_up=False))
        ratio = "" if theirs is None else f"{theirs / ours:6.1f}x"
        if theirs is not None:
            ratios.append(theirs / ours)
        print(f"{name:<22} {len(graph.nodes):>6} {ours * 1000:>9.0f} "
              f"{'-' if theirs is None else f'{theirs * 1000:.0f}':>13} {ratio:>7}", flush=True)
    if ratios:
        print(f"ratio: min {min(ratios):.1f}x, median {statistics.median(ratios):.1f}x (goal >= 25x on every model)")
    print(_load())


def _median_ms(fn: Callable[[], object], runs: int, warm_up: int = 2) -> float:
    for _ in range(warm_up):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


_ZOO = """\
import json, statistics, sys, time
import archc
from archc.resolve import builtin_dir, builtin_names
specs = [builtin_dir() / f"{n}.yaml" for n in builtin_names()]
def once():
    start = time.perf_counter()
    [archc.check(s) for s in specs]
    return (time.perf_counter() - start) * 1000
first, second = once(), once()
print(json.dumps([len(specs), first, second, statistics.median(once() for _ in range(int(sys.argv[1])))]))
"""


def in_process(runs: int, cache: str) -> None:
    """The zoo in a fresh process (archc imported, nothing analysed yet): the first pass (base files parsed,
    every block instance met; those met twice recorded), the second (the rest recorded) and the warm passes
    after them (median), every instance replayed."""
    import json

    done = subprocess.run([sys.executable, "-c", _ZOO, str(max(1, runs // 2))], cwd=ROOT, env=_env(cache),
                          capture_output=True, text=True, check=True)
    n, first, second, warm = json.loads(done.stdout)
    print(f"in-process analysis of the whole zoo ({n} specs, {_load()}): first pass in a fresh process "
          f"{first:.0f} ms, second {second:.0f} ms, warm {warm:.0f} ms (goal < 1000 ms)")
    symbolic_rows(SYMBOLIC, runs)


def symbolic_rows(names: list[str], runs: int) -> None:
    """Each spec checked in-process with symbolic sizes (its input's channels, H and W) against its own input size,
    warm (medians, after the warm-up runs: a block instance is recorded the second time it is met)."""
    import archc
    ratios = []
    for name in names:
        shape = list(archc.check(name).graph.inputs[0][1])
        dims = [shape[0], "H", "W"]
        concrete = _median_ms(partial(archc.check, name, input_shape=shape), runs)
        symbolic = _median_ms(partial(archc.check, name, input_shape=dims), runs)
        ratios.append(symbolic / concrete)
        print(f"symbolic {name} ({shape[0]}xHxW) {symbolic:.1f} ms vs concrete {concrete:.1f} ms "
              f"({'x'.join(map(str, shape))}): {symbolic / concrete:.2f}x (goal <= 2x)", flush=True)
    if len(ratios) > 1:
        print(f"symbolic/concrete: median {statistics.median(ratios):.2f}x, max {max(ratios):.2f}x ({_load()})")


def _symbolic_names(requested: str) -> list[str]:
    if requested != "all":
        return requested.split(",")
    import archc
    from archc.resolve import builtin_names

    return [n for n in builtin_names() if "/" not in n and len(archc.check(n).graph.inputs[0][1]) == 3]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", help="comma-separated (default: every torchvision classification model with a spec)")
    ap.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    ap.add_argument("--runs", type=int, default=5, help="archc runs per model (median; default 5)")
    ap.add_argument("--anchor-runs", type=int, default=1, help="torchinfo runs per model (median; default 1)")
    ap.add_argument("--skip-torchinfo", action="store_true")
    ap.add_argument("--skip-in-process", action="store_true")
    ap.add_argument("--symbolic", help="comma-separated specs for the symbolic rows alone ('all': every built-in "
                    f"spec with a (C, H, W) input; default with the other rows: {', '.join(SYMBOLIC)})")
    args = ap.parse_args()
    if args.symbolic:
        symbolic_rows(_symbolic_names(args.symbolic), args.runs)
        return 0
    with tempfile.TemporaryDirectory(prefix="archc-pycache-") as cache:
        startup(_models(",".join(QUICK) if args.quick else args.models), args.runs, args.anchor_runs,
                args.skip_torchinfo, cache)
        if not args.skip_in_process:
            in_process(args.runs, cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
