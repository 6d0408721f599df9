"""The `archc` command: check, build, summary, list, blocks, schema."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from archc.errors import ArchcError, UsageError, format_error

__all__ = ["main"]


def _parse_set(items: list[str]) -> dict[str, Any]:
    from archc.load import load_text

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects name=value, got '{item}'", hint="e.g. --set num_classes=10")
        try:
            out[key.strip()] = load_text(raw, f"--set {key.strip()}")
        except ArchcError as e:
            raise UsageError(f"--set {key}: {e.message}") from None
    return out


def _parse_input(text: str | None) -> list[int | str] | None:
    """`3x224x224`, or with symbolic sizes `3xHxW` (letters name the unknown sizes)."""
    if text is None:
        return None
    dims: list[int | str] = []
    for part in text.replace(",", "x").split("x"):
        part = part.strip()
        if part.isdigit() and int(part) > 0:
            dims.append(int(part))
        elif part.isidentifier() and part.upper() == part and dims:
            dims.append(part)
        else:
            raise UsageError(f"--input expects sizes like 3x224x224 or 3xHxW, got '{text}'")
    return dims


def _int_from(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``low`` (a count, size, depth or batch); anything else is
    a usage error (exit 2) naming the option, never a negative figure later."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {'positive' if low == 1 else f'at least {low}'}, got {value}")
        return value

    parse.__name__ = "int"
    return parse


def _real(low: float, *, above: bool = False, below: float | None = None) -> Callable[[str], float]:
    """An argparse type: a finite number of at least ``low`` (more than ``low`` with ``above``; less than
    ``below`` when given); anything else is a usage error (exit 2) naming the option."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
        if not math.isfinite(value) or value < low or (above and value == low) or (below is not None
                                                                                     and value >= below):
            span = f"{'>' if above else '>='} {low:g}" + (f" and < {below:g}" if below is not None else "")
            raise argparse.ArgumentTypeError(f"must be {span}, got {text}")
        return value

    parse.__name__ = "float"
    return parse


def _weights_options(sp: argparse.ArgumentParser, what: str) -> None:
    """--weights and --no-strict, declared once for every command that loads weights (build, train, predict,
    export); ``what`` is what --weights takes there."""
    sp.add_argument("--weights", help=what)
    sp.add_argument("--no-strict", action="store_true", help="load only the weights that fit and report the "
                    "keys left out (e.g. after changing num_classes); by default every key must fit")


def _limits(args: argparse.Namespace) -> Any:
    from archc.resolve import Limits

    return Limits(max_nodes=args.max_nodes, max_params=args.max_params, max_activation=args.max_activation,
                  max_steps=args.max_steps)


def _check(args: argparse.Namespace) -> int:
    from archc import check
    from archc.analyze.summary import fmt_count

    status = 0
    for spec in args.specs:
        try:
            a = check(spec, _parse_set(args.set), _parse_input(args.input), _limits(args))
        except ArchcError as e:
            if isinstance(e, UsageError):
                raise
            print(format_error(e), file=sys.stderr)
            status = 1
            continue
        warnings = _warnings(spec, a, args.input)
        for warning in warnings:
            print(warning, file=sys.stderr)
        if warnings and args.strict:  # --strict: an unsilenced warning fails the check
            status = 1
        shapes = ", ".join("x".join(map(str, s)) for s in a.output_shapes)
        if a.graph.train_outputs:  # returned after the others in training mode only
            shapes += " (in training also " + ", ".join(
                f"{o} {'x'.join(map(str, a.shapes[o]))}" for o in a.graph.train_outputs if o in a.shapes) + ")"
        inputs = ", ".join("x".join(map(str, s)) for _, s in a.graph.inputs)
        if a.symbolic is not None:
            shapes = ", ".join("x".join(a.symbolic.shapes.get(o, ("?",))) for o in a.graph.outputs)
            sym = a.symbolic
            size = "x".join(str(d) for i, d in enumerate(a.graph.inputs[0][1]) if i in sym.symbols)
            inputs = "x".join(str(sym.symbols.get(i, d)) for i, d in enumerate(a.graph.inputs[0][1]))
            shapes += f"; valid inputs: {sym.constraint}" + (f"; {sym.note}" if sym.note else "") + \
                f"; MACs = {sym.formula('macs')} (figures at {size})"
        if not args.quiet:
            print(f"ok  {spec}: {a.graph.name}, {len(a.graph.nodes)} nodes, {a.params:,} parameters, "
                  f"{fmt_count(a.macs)}MACs, input {inputs}, output {shapes}")
    return status


def _warnings(spec: str, a: Any, override: str | None) -> list[str]:
    """`file:line:col: warning: ...` for what is valid but probably not meant: the lints (archc.analyze.lint:
    dead branches, channel vectors broadcast along W, `repeat: 0`, strides over the kernel) and an input that
    looks channels-last. `archc check` prints them and still succeeds."""
    from archc.analyze.lint import LintWarning, lint

    found: list[Any] = []
    for _, shape in a.graph.inputs:
        if len(shape) == 3 and shape[2] in (1, 3) and min(shape[:2]) >= 8:  # as archc.train.task.looks_channels_last
            c, h, w = shape
            written, meant = (f"--input {c}x{h}x{w}", f"{w}x{c}x{h}") if override else \
                (f"input [{c}, {h}, {w}]", f"[{w}, {c}, {h}]")
            found.append(LintWarning(
                "W005", f"{written} looks channels-last: archc reads [channels, height, width] (batch left out), "
                f"so this is {c} channels of {h}x{w}", None if override else _input_loc(spec),
                hint=f"did you mean {meant}?"))
    return [format_error(w) for w in lint(a, extra=found)]  # W005 first, silenced like the others


def _input_loc(spec: str) -> Any:
    """Where the spec (or the spec it extends) writes `input:`."""
    from archc.resolve import find_spec
    from archc.resolve.spec import load_spec

    data = load_spec(find_spec(spec)).data
    return data.val_locs.get("input", data.loc)


def _build(args: argparse.Namespace) -> int:
    from archc import compile

    params, weights = _parse_set(args.set), args.weights
    if weights:
        from archc.train.weights import is_torchvision, run_weights

        if not is_torchvision(weights):
            weights, trained_with = run_weights(weights)  # a run's num_classes etc., unless --set says otherwise
            params = {**trained_with, **params}
    module = compile(args.spec, device=args.device, input_shape=_parse_input(args.input), limits=_limits(args),
                     **params)
    left_out = ""
    if weights:
        from archc.train.weights import load_any

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
    return 0


def _summary(args: argparse.Namespace) -> int:
    from archc import check
    from archc.analyze.summary import to_json, to_text

    a = check(args.spec, _parse_set(args.set), _parse_input(args.input), _limits(args))
    if args.json:
        print(json.dumps(to_json(a, args.depth, args.batch, args.dtype), indent=1))
    else:
        print(to_text(a, args.depth, args.batch, args.dtype))
    return 0


def _diff(args: argparse.Namespace) -> int:
    from archc import check
    from archc.analyze.diff import diff, diff_text

    limits = _limits(args)
    a = check(args.spec, None, _parse_input(args.input), limits)
    b = check(args.other or args.spec, _parse_set(args.set), _parse_input(args.input), limits)
    labels = (str(args.spec), " ".join([str(args.other or args.spec), *(f"--set {x}" for x in args.set or [])]))
    fmt = next((f for f in ("svg", "png", "pdf", "html") if getattr(args, f)), None)
    if fmt is None:
        result = diff(a, b, labels)
        print(json.dumps(result, indent=1) if args.json else diff_text(result))
        return 0
    from archc.fileio import atomic_write
    from archc.render.output import render_diff
    from archc.render.report import diff_page

    data = (diff_page(a, b, labels, args.depth).encode() if fmt == "html" else
            render_diff(a, b, fmt, labels, args.depth, rankdir=args.rankdir))
    target = args.output or f"diff.{fmt}"
    atomic_write(target, data)
    print(f"wrote {target}", file=sys.stderr)
    return 0


def _render(args: argparse.Namespace) -> int:
    from archc.api import analyse
    from archc.fileio import atomic_write
    from archc.render.output import FORMATS, render

    fmt = next(f for f in FORMATS if getattr(args, f))
    analysis = analyse(args.spec, _parse_set(args.set), _parse_input(args.input), _limits(args))
    data = render(analysis, fmt, None if args.expand else args.depth, args.expand, args.rankdir,
                  not args.no_definitions)
    ext = {"mermaid": "mmd"}.get(fmt, fmt)
    target = args.output or f"{analysis.graph.name}.{ext}"
    if target == "-":
        sys.stdout.buffer.write(data)
    else:
        atomic_write(target, data)
        print(f"wrote {target}", file=sys.stderr)
    for err in analysis.errors:
        print(format_error(err), file=sys.stderr)
    return 1 if analysis.errors else 0


def _report(args: argparse.Namespace) -> int:
    from archc import check
    from archc.fileio import atomic_write
    from archc.render.report import report
    from archc.resolve import find_spec

    analysis = check(args.spec, _parse_set(args.set), _parse_input(args.input), _limits(args))
    source = find_spec(args.spec).read_text(encoding="utf-8")
    target = args.output or f"{analysis.graph.name}.html"
    atomic_write(target, report(analysis, source))
    print(f"wrote {target}", file=sys.stderr)
    return 0


def _train(args: argparse.Namespace) -> int:
    from archc.detect import cli as detect

    if detect.is_detection(args):  # a YOLO head (or a detection run to resume): archc.detect's loop
        return detect.train(args)
    from archc.train import TrainConfig, train

    if args.resume:
        run_json = Path(args.resume) / "run.json"
        if not run_json.is_file():
            raise UsageError(f"--resume {args.resume}: no run.json there", hint="give a run directory of archc train")
        saved = json.loads(run_json.read_text())
        saved = {k: v for k, v in saved.items() if k in TrainConfig.__dataclass_fields__}  # not frozen, classes
        cfg = TrainConfig(**{**saved, "out": args.resume, "epochs": args.epochs or saved["epochs"],
                             "stop_after": args.stop_after})
        _train_done(cfg, train(cfg, resume=args.resume))
        return 0
    if not args.spec:
        raise UsageError("archc train needs a spec (or --resume RUN_DIR)")
    cfg = TrainConfig(
        spec=args.spec, data=args.data, params=_parse_set(args.set), epochs=args.epochs or 5,
        batch_size=args.batch_size, lr=args.lr, backbone_lr=args.backbone_lr, weight_decay=args.weight_decay,
        warmup_epochs=args.warmup, label_smoothing=args.label_smoothing, clip=args.clip, device=args.device,
        amp=args.amp, channels_last=args.channels_last, compile=args.compile, seed=args.seed, out=args.out,
        exist_ok=args.exist_ok, freeze=[f for f in (args.freeze or "").split(",") if f], train_last=args.train_last,
        weights=args.weights, strict=not args.no_strict, workers=args.workers, fake_size=args.fake_size,
        stop_after=args.stop_after, task=args.task, input=_parse_input(args.input),
        train_size=args.train_size or TrainConfig.train_size, val_size=args.val_size, loss=args.loss,
        aux_weight=args.aux_weight)
    _train_done(cfg, train(cfg))
    return 0


def _train_done(cfg: Any, history: list[dict[str, float]]) -> None:
    """The last word of a run: finished, or paused with the command that continues it."""
    if int(os.environ.get("RANK", 0)) != 0:
        return
    key, what = ("val_miou", "mIoU") if history and "val_miou" in history[0] else ("val_acc", "accuracy")
    best = max(h[key] for h in history) if history else float("nan")
    done = len(history)
    if done < cfg.epochs:
        print(f"paused after epoch {done} of {cfg.epochs} (best validation {what} {best:.4f}); continue with: "
              f"archc train --resume {cfg.out}")
    else:
        print(f"done: best validation {what} {best:.4f}; run directory {cfg.out}")


def _predict(args: argparse.Namespace) -> int:
    from archc.detect import cli as detect

    if detect.detection_run(args.spec):  # a detection run: boxes drawn on each image
        return detect.predict(args)
    from archc.train.predict import predict

    results = predict(args.spec, args.images, args.weights, _parse_set(args.set), _parse_input(args.input),
                      args.out, args.top_k, args.overlay, strict=not args.no_strict)
    for r in results:
        shares = ", ".join(f"{name} {p:.3f}" for name, p in r.top)
        also = f" and {r.overlay}" if r.overlay else ""
        print(f"{r.image}: {'wrote ' + str(r.mask) + also + ' (' + shares + ')' if r.mask else shares}")
    return 0


def _detect_cli() -> Any:
    from archc.detect import cli

    return cli


def _val(args: argparse.Namespace) -> int:
    return int(_detect_cli().val(args))


def _export(args: argparse.Namespace) -> int:
    from archc import compile
    from archc.export import FORMATS, export

    params, weights = _parse_set(args.set), None
    if args.weights:
        from archc.train.weights import load_weights, run_weights

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


def _list(args: argparse.Namespace) -> int:
    from archc import check
    from archc.resolve import builtin_dir, builtin_names

    rows = []
    for name in builtin_names():
        a = check(builtin_dir() / f"{name}.yaml")
        ref = a.graph.meta.get("reference", "")
        rows.append({"name": name, "example": "/" in name,  # specs/examples/NAME.yaml: examples/NAME
                     "family": a.graph.meta.get("family", ""), "params": a.params, "input": list(a.graph.inputs[0][1]),
                     "reference": ref if isinstance(ref, str) else dict(ref)})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        print(f"{r['name']:<22} {r['family']:<14} {r['params']:>14,}  {'x'.join(map(str, r['input'])):<12} "
              f"{_reference_text(r['reference'])}")
    return 0


def _reference_text(ref: Any) -> str:
    if isinstance(ref, str):
        return ref
    for key in ("torchvision", "paper", "timm", "library", "url"):
        if ref.get(key):
            return f"timm:{ref[key]}" if key == "timm" else str(ref[key])
    return ""


def _blocks(args: argparse.Namespace) -> int:
    from archc import blocks

    for name in blocks.names():
        b = blocks.get(name)
        params = ", ".join(k if p.default is blocks.REQUIRED else f"{k}={p.default!r}" for k, p in b.params.items())
        print(f"{name}({params})\n    {b.doc.split(':', 1)[-1].strip()}")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from archc.schema import schema_text

    sys.stdout.write(schema_text())
    return 0


def _lsp(args: argparse.Namespace) -> int:
    try:
        from archc.lsp import serve

        serve()
    except ImportError as e:
        if (e.name or "").partition(".")[0] not in ("pygls", "lsprotocol", "cattrs"):
            raise
        raise UsageError("archc lsp needs pygls, which is not installed", hint="pip install 'archc[lsp]'") from None
    return 0


def _parser() -> argparse.ArgumentParser:
    from archc import __version__

    p = argparse.ArgumentParser(prog="archc", description="Compile YAML architecture specs into PyTorch models.")
    p.add_argument("--version", action="version", version=f"archc {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def spec_cmd(name: str, fn: Callable[[argparse.Namespace], int], help_: str, many: bool = False) -> Any:
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("specs" if many else "spec", nargs="+" if many else None,
                        help="spec file(s) or built-in name(s)")
        sp.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a spec parameter")
        sp.add_argument("--input", metavar="CxHxW", help="input shape without batch, e.g. 3x224x224")
        sp.add_argument("--max-nodes", type=_int_from(1), default=50_000, help="refuse specs with more nodes")
        sp.add_argument("--max-params", type=_int_from(1), default=20_000_000_000, help="refuse larger models")
        sp.add_argument("--max-activation", type=_int_from(1), default=250_000_000,
                        help="refuse a per-sample tensor (input included) with more elements (default: 1 GB fp32)")
        sp.add_argument("--max-steps", type=_int_from(1), default=100_000,
                        help="refuse specs whose expansion (nodes, groups, each items, expressions) takes more steps")
        sp.set_defaults(fn=fn)
        return sp

    c = spec_cmd("check", _check, "validate specs and infer every shape (no torch)", many=True)
    c.add_argument("-q", "--quiet", action="store_true")
    c.add_argument("--strict", action="store_true",
                   help="exit 1 when there are lint warnings (silence one with `lint: {ignore: {CODE: reason}}`)")
    b = spec_cmd("build", _build, "compile a spec into a torch module; -o writes its weights (safetensors)")
    b.add_argument("-o", "--output", help="write the weights as .safetensors")
    _weights_options(b, "torchvision (the twin's default pretrained weights), torchvision:NAME (e.g. "
                     "IMAGENET1K_V2), a run directory of archc train or a weights file (default: initial weights)")
    b.add_argument("--device", default=None, help="cpu, cuda or meta")
    s = spec_cmd("summary", _summary, "per-node table: shapes, parameters, MACs")
    s.add_argument("--depth", type=_int_from(1), default=None, help="collapse to this many path levels")
    s.add_argument("--json", action="store_true")
    s.add_argument("--batch", type=_int_from(1), default=1, help="batch size for the memory estimates")
    s.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default="fp32")
    d = spec_cmd("diff", _diff, "compare two specs, or a spec with and without --set overrides")
    d.description = ("Compare A (the first spec, as written) with B (the second spec, or A again); --set "
                     "overrides apply to B only. Without a format flag prints the differences; --svg/--png/--pdf/"
                     "--html draw the union of both in the folded view, coloured added / removed / changed.")
    next(x for x in d._actions if x.dest == "set").help = "override a parameter of B (the right side) only"
    d.add_argument("other", nargs="?", help="B, the second spec (default: A again, with the --set overrides)")
    d.add_argument("--json", action="store_true")
    dfmt = d.add_mutually_exclusive_group()
    for f in ("svg", "png", "pdf", "html"):
        dfmt.add_argument(f"--{f}", action="store_true", help=f"write the diff diagram as {f.upper()}")
    d.add_argument("-o", "--output", help="diagram file; default diff.EXT")
    d.add_argument("--depth", type=_int_from(0), default=None, help="open this many levels of the hierarchy")
    d.add_argument("--rankdir", choices=("TB", "LR"), default="TB")
    r = spec_cmd("render", _render, "draw the model (Graphviz or Mermaid); repeated blocks folded")
    fmt = r.add_mutually_exclusive_group(required=True)
    for f in ("svg", "png", "pdf", "dot", "mermaid"):
        fmt.add_argument(f"--{f}", action="store_true")
    r.add_argument("-o", "--output", help="output file ('-' for stdout); default NAME.EXT")
    r.add_argument("--depth", type=_int_from(0), default=None, help="open this many levels of the hierarchy")
    r.add_argument("--expand", action="store_true", help="draw every layer (no folding)")
    r.add_argument("--rankdir", choices=("TB", "LR"), default="TB")
    r.add_argument("--no-definitions", action="store_true",
                   help="leave out the definitions drawn beside the graph (each folded block, once)")
    rep = spec_cmd("report", _report, "one self-contained HTML page: diagram, chart, table, spec source")
    rep.add_argument("-o", "--output", help="output file; default NAME.html")
    t = sub.add_parser("train", help="train or fine-tune a spec (digits, FakeData or an ImageFolder)",
                       description="Train a classifier or a segmentation model. Each run gets a new folder "
                       "runs/<spec name>/1, 2, ... "
                       "(printed); it holds the spec, run.json, metrics, plot.png, best/last.safetensors, state.pt.")
    t.add_argument("spec", nargs="?", help="spec file or built-in name")
    t.add_argument("--data", default="digits", help="digits (scikit-learn's 8x8 grey digits, no download; "
                   "default), fake, shapes (synthetic segmentation: circles, rectangles, triangles), a folder with "
                   "train/ and val/ class sub-folders, or a folder with images/ and masks/ (segmentation)")
    t.add_argument("--task", choices=("classification", "segmentation"), default=None,
                   help="default: from the data (fake: from the model's output shape)")
    t.add_argument("--input", metavar="CxHxW", help="train at this input size instead of the spec's, e.g. 1x64x64")
    t.add_argument("--train-size", type=_int_from(1), default=None,
                   help="training images --data shapes makes (default: 4096)")
    t.add_argument("--val-size", type=_int_from(1), default=128, help="validation images of --data shapes "
                   "(default: %(default)s)")
    t.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="override a spec parameter (num_classes is set from the data)")
    t.add_argument("--epochs", type=_int_from(1), default=None, help="default: 5 (with --resume: the run's)")
    t.add_argument("--batch-size", type=_int_from(1), default=None, help="default: 64 (segmentation: 16)")
    t.add_argument("--lr", type=_real(0, above=True), default=1e-3, help="head learning rate (default: %(default)s)")
    t.add_argument("--backbone-lr", type=_real(0, above=True), default=None, help="default: lr (lr/10 with --weights)")
    t.add_argument("--weight-decay", type=_real(0), default=0.05, help="AdamW's (default: %(default)s)")
    t.add_argument("--warmup", type=_real(0), default=0.5, help="warm-up epochs (default: %(default)s)")
    t.add_argument("--loss", choices=("ce", "dice", "ce+dice"), default=None,
                   help="cross-entropy, Dice (segmentation: softmax probabilities, mean over classes) or their sum "
                   "(default: ce; segmentation: ce+dice)")
    t.add_argument("--aux-weight", type=_real(0), default=0.5,
                   help="loss weight of each auxiliary output shaped like the main one (segmentation `aux`, "
                   "Inception-v3's training-only logits; default: %(default)s)")
    t.add_argument("--label-smoothing", type=_real(0, below=1), default=0.0, help="default: %(default)s")
    t.add_argument("--clip", type=_real(0, above=True), default=1.0,
                   help="gradient norm clipping (default: %(default)s)")
    t.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    t.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    t.add_argument("--channels-last", action="store_true")
    t.add_argument("--compile", action="store_true", help="torch.compile the model")
    t.add_argument("--seed", type=_int_from(0), default=0, help="default: %(default)s")
    t.add_argument("--out", default=None, metavar="RUN_DIR",
                   help="run directory (default: a new runs/<spec name>/N); must be new or empty")
    t.add_argument("--exist-ok", action="store_true", help="let --out name a folder that already holds files")
    t.add_argument("--freeze", help="comma-separated node paths to freeze, e.g. conv1,bn1,layer1")
    t.add_argument("--train-last", type=_int_from(1), default=None, help="train only the last N top-level nodes")
    _weights_options(t, "initial weights: torchvision (the twin's default pretrained weights, from "
                     "torchvision's cache or downloaded once), torchvision:NAME (e.g. IMAGENET1K_V2), .safetensors "
                     "or a state_dict .pth")
    t.add_argument("--workers", type=_int_from(0), default=0, help="data loader processes (default: %(default)s)")
    t.add_argument("--fake-size", type=_int_from(1), default=512, help="images in --data fake (default: %(default)s)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a run where it stopped")
    t.add_argument("--stop-after", type=_int_from(1), default=None,
                   help="stop after this epoch, keeping the schedule of --epochs (continue with --resume)")
    _detect_cli().add_train_options(t)
    t.set_defaults(fn=_train)
    pr = sub.add_parser("predict", help="run a trained model on images: top classes, or a mask PNG per image")
    pr.add_argument("spec", help="spec file, built-in name, or a run directory of archc train")
    pr.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG images")
    _weights_options(pr, "a run directory of archc train (its best weights, params, input size and "
                     "class names), a weights file, or torchvision / torchvision:NAME (the twin's pretrained "
                     "weights, their class names and preprocessing)")
    pr.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a spec parameter")
    pr.add_argument("--input", metavar="CxHxW", help="model input size (default: the run's, else the spec's)")
    pr.add_argument("-o", "--out", help="segmentation: the mask file (one image) or a folder (default: "
                    "NAME_mask.png beside each image)")
    pr.add_argument("--overlay", action="store_true", help="segmentation: also write NAME_overlay.png, the "
                    "classes' colours over the image")
    pr.add_argument("--top-k", type=_int_from(1), default=5, help="classes printed per image (default: %(default)s)")
    _detect_cli().add_predict_options(pr)
    pr.set_defaults(fn=_predict)
    _detect_cli().add_val_parser(sub, _val)
    e = spec_cmd("export", _export, "write the model as ONNX, TorchScript, a torch.export program or Python")
    e.add_argument("--format", required=True, choices=("onnx", "torchscript", "exported-program", "python"))
    e.add_argument("-o", "--output", help="output file; default NAME + extension")
    _weights_options(e, "trained weights: a run directory of archc train (its best.safetensors and "
                     "num_classes), a .safetensors or a state_dict .pth (default: random initial weights); with "
                     "--format python they are written beside the file as NAME.pt, read by its load_model()")
    e.add_argument("--static", action="store_true",
                   help="fix the batch size at 1 (ONNX, exported-program); by default the batch axis is dynamic")
    bn = spec_cmd("bench", _bench, "latency and throughput next to the torchvision twin, same run")
    bn.add_argument("--against", help="torchvision:NAME (default: the spec's reference)")
    bn.add_argument("--device", default="cpu")
    bn.add_argument("--batch-sizes", default="1,8")
    bn.add_argument("--repeats", type=_int_from(1), default=20)
    bn.add_argument("--compile", action="store_true", help="torch.compile both models first")
    bn.add_argument("--json", action="store_true")
    ls = sub.add_parser("list", help="the built-in specs")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(fn=_list)
    sub.add_parser("blocks", help="the block library").set_defaults(fn=_blocks)
    sub.add_parser("schema", help="print the JSON Schema of specs").set_defaults(fn=_schema)
    sub.add_parser("lsp", help="a Language Server Protocol server over stdio (editors)").set_defaults(fn=_lsp)
    __import__("archc.importer.cli", fromlist=["add_parser"]).add_parser(sub)  # `archc import` (issue 27)
    return p


# The extra each command needs (pyproject's optional-dependencies); the other commands need none.
COMMAND_EXTRAS = {"build": "torch", "train": "train", "predict": "train", "val": "train", "export": "export",
                  "bench": "bench"}


def _missing_extra(e: Exception, command: str) -> UsageError | None:
    """The error naming the extra to install when ``e`` is a failed import of an optional module."""
    from archc.api import missing_extra

    m = missing_extra(e, f"archc {command}", COMMAND_EXTRAS.get(command)) if isinstance(e, ImportError) else None
    return None if m is None else UsageError(f"{m.what} needs {m.module}, which is not installed",
                                             hint=f"pip install 'archc[{m.extra}]'")


def _stdout_gone() -> bool:
    """Whether standard output itself is a pipe whose reader has left (`archc ... | head`). Asked of the
    file descriptor (poll: a pipe without readers reports POLLERR), since the failed write has already
    emptied Python's buffer, so flushing it again succeeds; flushing is the fallback where poll is missing."""
    try:
        import select

        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLNVAL) == select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), or no descriptor (a test's capture)
        pass
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):
        return False
    return False


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except UsageError as e:
        print(format_error(e), file=sys.stderr)
        return 2
    except ArchcError as e:
        print(format_error(e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError as e:  # `archc summary ... | head`: the reader left; not an error
        if not _stdout_gone():
            print(f"archc: internal error: {type(e).__name__}: {e}", file=sys.stderr)
            return 3  # a pipe to a subprocess broke, not ours: never silence our own stdout for that
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # a bug in archc, never the user's fault: no traceback unless asked
        missing = _missing_extra(e, args.command)
        if missing is not None:  # an optional dependency (torch, onnx ...) is not installed
            print(format_error(missing), file=sys.stderr)
            return 2
        if os.environ.get("ARCHC_DEBUG"):
            raise
        print(f"archc: internal error: {type(e).__name__}: {e}\n  (set ARCHC_DEBUG=1 for a traceback "
              "and please report it)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
