"""Compare archc with its torchvision twins on a device, on random weights; exit 1 on a mismatch.

Weights come from tests.helpers.randomize_ (fresh torchvision weights make ViT's output exactly 0
and hide ConvNeXt's blocks), full input size, batch 2, fp32 without TF32, and the zoo test's rule:
max|archc - torchvision| <= rtol * max|torchvision| + atol, with a non-trivial reference.
Run from the repository root: PYTHONPATH=. python tools/gpu_check.py [--device cpu] [--specs a,b]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import archc
from tests.helpers import compare_with_twin, random_twin

DEFAULT_SPECS = "resnet50,vit_b_16,efficientnet_b0,convnext_tiny"


def check_one(name: str, device: str) -> str | None:
    """None when the spec's compiled model matches its randomised twin on `device`."""
    analysis = archc.check(name)
    tv = random_twin(analysis).to(device)
    model = archc.compile(name, device=device).eval()
    model.load_state_dict(tv.state_dict(), strict=True)
    start = time.perf_counter()
    problem = compare_with_twin(model, tv, analysis, device)
    print(f"{name:<18} {'MISMATCH ' + problem if problem else 'ok'} ({time.perf_counter() - start:.2f}s)", flush=True)
    return problem


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--specs", default=DEFAULT_SPECS, help=f"comma-separated spec names ({DEFAULT_SPECS})")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            print("gpu_check: no CUDA device (use --device cpu)", file=sys.stderr)
            return 2
        torch.backends.cuda.matmul.allow_tf32 = False  # an fp32 comparison, not a TF32 one
        torch.backends.cudnn.allow_tf32 = False
        print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    start, failed = time.perf_counter(), []
    for name in args.specs.split(","):
        problem = check_one(name, args.device)
        if problem is not None:
            failed.append(name)
    print(f"{len(failed)} mismatch(es) in {time.perf_counter() - start:.1f}s: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
