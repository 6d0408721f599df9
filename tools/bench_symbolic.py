"""Cost of symbolic sizes: `archc check SPEC --input CxHxW` against the concrete `archc check SPEC`,
both as whole processes (what a user waits for) and in-process (resolve + analysis only), measured
in the same run; prints ratios (symbolic / concrete). Issue 16's bar: <= 2x.

    python tools/bench_symbolic.py [--runs 5]

Specs: resnet50, densenet121 and a 3,155-node ResNet (resnet50 with layers [3, 8, 300, 3]).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import archc
from archc.resolve import Limits

BIG = "extends: resnet50\nname: resnet_3k\nparams: {layers: [3, 8, 300, 3]}\n"


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


def process(spec: str, shape: str) -> Callable[[], object]:
    cmd = [sys.executable, "-m", "archc", "check", spec, "--input", shape, "--quiet"]
    return lambda: subprocess.run(cmd, check=True, capture_output=True)


def in_process(spec: str, shape: list[object]) -> Callable[[], object]:
    return lambda: archc.check(spec, input_shape=shape, limits=Limits())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    runs = ap.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "resnet_3k.yaml"
        big.write_text(BIG)
        rows = [("resnet50", "resnet50"), ("densenet121", "densenet121"), ("resnet, 3,155 nodes", str(big))]
        print(f"{'spec':22} {'check ms':>9} {'HxW ms':>9} {'ratio':>6}   "
              f"{'in-process ms':>13} {'HxW ms':>9} {'ratio':>6}")
        for label, spec in rows:
            whole = [median_ms(process(spec, s), runs) for s in ("3x224x224", "3xHxW")]
            inner = [median_ms(in_process(spec, s), runs) for s in ([3, 224, 224], [3, "H", "W"])]
            print(f"{label:22} {whole[0]:9.0f} {whole[1]:9.0f} {whole[1] / whole[0]:5.2f}x   "
                  f"{inner[0]:13.0f} {inner[1]:9.0f} {inner[1] / inner[0]:5.2f}x")


if __name__ == "__main__":
    main()
