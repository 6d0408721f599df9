"""`archc build`, `archc export`, `archc bench`: the commands that compile a torch module."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, cast

from archc.cli.options import _int_from, _limits, _parse_input, _parse_set, _weights_options, spec_command
from archc.errors import UsageError


def _build(args: argparse.Namespace) -> int:
    from archc import compile

    params, weights = _parse_set(args.set), args.weights
    if weights:
        from archc.backend.weights import is_torchvision, run_weights

        if not is_torchvision(weights):
            weights, trained_with = run_weights(weights)  # a run's num_classes etc., unless --set says otherwise
            params = {**trained_with, **params}
    module = compile(args.spec, device=args.device, input_shape=_parse_input(args.input), limits=_limits(args),
                     **params)
    left_out = ""
    if weights:
        from archc.backend.weights import load_any

        report = load_any(module, weights, strict=not args.no_strict)
        left_out = "; ".join(f"{k}: {len(v)}" for k, v in report.items() if v)
    graph = cast(Any, module).archc_graph
    n = sum(p.numel() for p in module.parameters())
    print(f"built {graph.name}: {type(module).__name__}, {n:,} parameters, {len(graph.nodes)} nodes"
          + (f", weights from {args.weights}" if weights else "") + (f" (keys not loaded: {left_out})"
                                                                       if left_out else ""))
    if args.output:
        from safetensors.torch import save

        from archc.fileio import atomic_write

        tensors = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
        atomic_write(args.output, save(tensors, metadata={"archc_spec": graph.name}))
        print(f"wrote {args.output} ({len(tensors)} tensors)")
    return _build_reports(module, args)


def _build_reports(module: Any, args: argparse.Namespace) -> int:
    """--structure prints the module tree with static shapes; --forward runs one checked forward."""
    from archc.analyze.build_report import forward_check, structure

    if args.structure:
        print(structure(module, args.depth))
    if args.forward:
        report = forward_check(module, args.batch)
        print(report.text())
        return 0 if report.ok else 1
    return 0


def add_build(sub: Any) -> None:
    b = spec_command(sub, "build", _build, "compile a spec into a torch module; -o writes its weights (safetensors)")
    b.add_argument("-o", "--output", help="write the weights as .safetensors")
    _weights_options(b, "torchvision (the twin's default pretrained weights), torchvision:NAME (e.g. "
                     "IMAGENET1K_V2), a run directory of archc train or a weights file (default: initial weights)")
    b.add_argument("--device", default=None, help="cpu, cuda or meta")
    b.add_argument("--structure", action="store_true",
                   help="print the module's tree with each submodule's static output shape and parameters")
    b.add_argument("--depth", type=_int_from(0), default=None, help="with --structure: fold the tree below this depth")
    b.add_argument("--forward", action="store_true",
                   help="run one forward on random inputs and check the output shapes against the analysis")
    b.add_argument("--batch", type=_int_from(1), default=1, help="with --forward: the batch size (default 1)")


def _export(args: argparse.Namespace) -> int:
    from archc import compile
    from archc.export import FORMATS, export

    params, weights = _parse_set(args.set), None
    if args.weights:
        from archc.backend.weights import load_weights, run_weights

        weights, trained_with = run_weights(args.weights)  # a run's num_classes etc., unless --set says otherwise
        params = {**trained_with, **params}
    module = compile(args.spec, input_shape=_parse_input(args.input), limits=_limits(args), **params)
    if weights is not None:
        load_weights(module, weights, strict=not args.no_strict)
    else:
        print("warning: no --weights: the exported model holds random initial weights (pass --weights RUN_DIR, "
              "e.g. runs/NAME/1, or a .safetensors/.pth file)", file=sys.stderr)
    graph = cast(Any, module).archc_graph
    target = export(module, args.format, args.output or f"{graph.name}{FORMATS[args.format]}", static=args.static,
                    python_weights=weights is not None)
    print(f"wrote {target}" + (f" (weights from {weights})" if weights is not None else ""), file=sys.stderr)
    if args.format == "python" and weights is not None:
        from archc.export.exporters import weights_path

        print(f"wrote {weights_path(target)}: the weights; load_model() in {target.name} reads them", file=sys.stderr)
    return 0


def add_export(sub: Any) -> None:
    e = spec_command(sub, "export", _export, "write the model as ONNX, TorchScript, a torch.export program or Python")
    e.add_argument("--format", required=True, choices=("onnx", "torchscript", "exported-program", "python"))
    e.add_argument("-o", "--output", help="output file; default NAME + extension")
    _weights_options(e, "trained weights: a run directory of archc train (its best.safetensors and "
                     "num_classes), a .safetensors or a state_dict .pth (default: random initial weights); with "
                     "--format python they are written beside the file as NAME.pt, read by its load_model()")
    e.add_argument("--static", action="store_true",
                   help="fix the batch size at 1 (ONNX, exported-program); by default the batch axis is dynamic")


def _bench(args: argparse.Namespace) -> int:
    try:
        sizes = tuple(int(b) for b in args.batch_sizes.split(","))
    except ValueError:
        raise UsageError(f"--batch-sizes expects e.g. 1,8,32, got '{args.batch_sizes}'") from None
    if min(sizes) < 1:
        raise UsageError(f"--batch-sizes must be positive, got '{args.batch_sizes}'", hint="e.g. --batch-sizes 1,8,32")
    from archc.benchmark import bench, format_rows

    rows = bench(args.spec, args.against, args.device, sizes, args.repeats, args.compile, _parse_set(args.set),
                 _parse_input(args.input))
    print(json.dumps(rows, indent=1) if args.json else format_rows(rows))
    return 0


def add_bench(sub: Any) -> None:
    bn = spec_command(sub, "bench", _bench, "latency and throughput next to the torchvision twin, same run")
    bn.add_argument("--against", help="torchvision:NAME (default: the spec's reference)")
    bn.add_argument("--device", default="cpu")
    bn.add_argument("--batch-sizes", default="1,8")
    bn.add_argument("--repeats", type=_int_from(1), default=20)
    bn.add_argument("--compile", action="store_true", help="torch.compile both models first")
    bn.add_argument("--json", action="store_true")
