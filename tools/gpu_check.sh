#!/usr/bin/env bash
# GPU check (one H200, under five minutes): for every zoo spec with a torchvision twin, compile on
# CUDA, compare outputs with torchvision in fp32 and in bf16 + channels_last, and print the
# throughput ratio. Run: bash tools/gpu_check.sh   (output goes into docs/benchmarks.md by hand)
set -euo pipefail
cd "$(dirname "$0")/.."
python - <<'PY'
import time, torch, torchvision, archc
from archc.resolve import builtin_dir, builtin_names

assert torch.cuda.is_available(), "no CUDA device"
print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
print(f"{'spec':<18} {'fp32 maxdiff':>12} {'bf16 maxdiff':>12} {'archc/tv time':>14}")
for name in builtin_names():
    a = archc.check(builtin_dir() / f"{name}.yaml")
    twin = a.graph.twin()
    if twin is None:
        continue
    torch.manual_seed(0)
    tv = getattr(torchvision.models, twin[0])(**twin[1]).eval().cuda()
    m = archc.compile(name, device="cuda").eval()
    m.load_state_dict(tv.state_dict())
    x = torch.randn(8, *a.graph.inputs[0][1], device="cuda")
    with torch.no_grad():
        d32 = (m(x) - tv(x)).abs().max().item()
        mc, tc = m.to(memory_format=torch.channels_last), tv.to(memory_format=torch.channels_last)
        xc = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            d16 = (mc(xc).float() - tc(xc).float()).abs().max().item()
            times = {}
            for key, net in (("archc", mc), ("tv", tc)):
                for _ in range(3):
                    net(xc)
                torch.cuda.synchronize()
                t = time.perf_counter()
                for _ in range(10):
                    net(xc)
                torch.cuda.synchronize()
                times[key] = time.perf_counter() - t
    print(f"{name:<18} {d32:>12.2e} {d16:>12.2e} {times['archc'] / times['tv']:>14.3f}", flush=True)
PY
