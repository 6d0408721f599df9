#!/usr/bin/env python
"""`archc import` over torchvision's whole classification zoo (issue 27's benchmark).

    python tools/bench_import.py                          # every model, the table on stdout
    python tools/bench_import.py resnet50 vit_b_16        # some
    python tools/bench_import.py --out /tmp/import.md     # also write the table there

Per model: exact (archc check passes, same parameter count, the source state_dict loads strict=True, outputs
equal at rtol 1e-5 on randomised weights and BatchNorm statistics) or the error, the import time (trace,
rewrite, fold and write; building the model not counted), the imported spec's lines, the lines of the
hand-written spec specs/NAME.yaml with what it extends, and their ratio; then the median ratio and how many
are exact. Models run at small inputs (64 px; ViTs built with image_size four patches wide) on one thread;
the lines do not depend on the size. Outputs are compared below --max-forward parameters (the giants are
compared by count, keys and strict load only: their forward on two CPU cores takes minutes).
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import re
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
SIZE = (3, 64, 64)
SIZES = {"inception_v3": (3, 299, 299), "maxvit_t": (3, 224, 224)}  # the aux head's 5x5 conv, the partitions


def hand_lines(name: str) -> int | None:
    """Lines of specs/NAME.yaml and of the specs it extends (None: no hand-written twin)."""
    path, total = SPECS / f"{name}.yaml", 0
    if not path.is_file():
        return None
    while True:
        text = path.read_text()
        total += len(text.splitlines())
        m = re.search(r"^extends: (\w+)$", text, re.M)
        if not m:
            return total
        path = SPECS / f"{m.group(1)}.yaml"


def builder_args(name: str) -> tuple[dict[str, Any], tuple[int, ...]]:
    """Builder arguments and input shape for one model (ViTs: an image four patches wide)."""
    m = re.fullmatch(r"vit_\w_(\d+)", name)
    if m:
        side = 4 * int(m.group(1))
        return {"image_size": side}, (3, side, side)
    return {}, SIZES.get(name, SIZE)


def randomise(model: Any) -> None:
    import torch

    with torch.no_grad():
        for key, v in model.state_dict().items():
            if v.is_floating_point():
                v.copy_(torch.rand_like(v) + 0.5 if key.endswith("running_var") else torch.randn_like(v) * 0.2)


def exact(model: Any, text: str, shape: tuple[int, ...], max_forward: int) -> str:
    """'exact' (or 'exact (no forward)' for giants), else what differs."""
    import tempfile

    import torch

    import archc

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "imported.yaml"
        path.write_text(text)
        params = sum(p.numel() for p in model.parameters())
        got = archc.check(path).params
        if got != params:
            return f"params {got:,} != {params:,}"
        randomise(model)
        twin = archc.compile(path).eval()
    twin.load_state_dict(model.state_dict(), strict=True)
    if params > max_forward:
        return "exact (no forward)"
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, out = model(x), twin(x)
    scale = float(want.abs().max())
    if not torch.allclose(out, want, rtol=1e-5, atol=1e-5 * scale) or scale < 1e-3:
        return f"outputs differ by {float((out - want).abs().max()) / scale:.1e} (relative)"
    return "exact"


def one(name: str, max_forward: int) -> dict[str, Any]:
    import torch
    import torchvision

    from archc.errors import ArchcError
    from archc.importer import from_module

    kwargs, shape = builder_args(name)
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, **kwargs).eval()
    row: dict[str, Any] = {"name": name, "hand": hand_lines(name), "lines": None, "seconds": None}
    try:
        t = time.perf_counter()
        text = from_module(model, shape, name=name, source=f"torchvision:{name}")
        row["seconds"] = time.perf_counter() - t
        row["lines"] = len(text.splitlines())
        row["result"] = exact(model, text, shape, max_forward)
    except ArchcError as e:
        row["result"] = "error: " + e.message.splitlines()[0]
    except Exception as e:  # an importer bug: reported as such, the run goes on
        row["result"] = f"internal {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
    return row


def _one_quiet(name: str, max_forward: int) -> dict[str, Any]:
    """``one`` in a worker process: one torch thread, library warnings off."""
    import warnings

    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    return one(name, max_forward)


def _progress(r: dict[str, Any]) -> None:
    print(f"{r['name']}: {r['result']} lines={r['lines']} hand={r['hand']}", file=sys.stderr, flush=True)


def table(rows: list[dict[str, Any]], command: str) -> str:
    out = [f"`{command}`", "", "| model | result | import s | lines | hand-written | ratio |",
           "|---|---|---|---|---|---|"]
    ratios = []
    for r in rows:
        ratio = r["lines"] / r["hand"] if r["lines"] and r["hand"] else None
        if ratio is not None and r["result"].startswith("exact"):
            ratios.append(ratio)
        seconds = "" if r["seconds"] is None else f"{r['seconds']:.2f}"
        shown = "" if ratio is None else f"{ratio:.2f}"
        out.append(f"| {r['name']} | {r['result']} | {seconds} | {r['lines'] or ''} | {r['hand'] or ''} | {shown} |")
    n_exact = sum(r["result"].startswith("exact") for r in rows)
    median = statistics.median(ratios) if ratios else float("nan")
    out += ["", f"**{n_exact}/{len(rows)} exact; median lines ratio {median:.2f}** (imported / hand-written, "
                f"over the {len(ratios)} exact models with a hand-written spec)"]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help="torchvision model names (default: every classification model)")
    ap.add_argument("--out", help="also write the table to this file")
    ap.add_argument("--jobs", type=int, default=1, help="models imported at once, each in its own process")
    ap.add_argument("--max-forward", type=int, default=300_000_000,
                    help="compare outputs only below this many parameters (default 3e8)")
    args = ap.parse_args(argv)
    import torch
    import torchvision

    torch.set_num_threads(1)
    names = args.models or torchvision.models.list_models(module=torchvision.models)
    rows = []
    if args.jobs > 1:  # one fresh process per model, `jobs` at a time (the table keeps the list's order)
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"),
                                 max_tasks_per_child=1) as pool:
            futures = {name: pool.submit(_one_quiet, name, args.max_forward) for name in names}
            for name in names:
                rows.append(futures[name].result())
                _progress(rows[-1])
    else:
        for name in names:
            rows.append(one(name, args.max_forward))
            _progress(rows[-1])
            gc.collect()
    given = sys.argv[1:] if argv is None else argv
    command = " ".join(["python tools/bench_import.py", *given])
    text = table(rows, command)
    sys.stdout.write(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
