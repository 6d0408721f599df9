"""Before any tensor exists: does the model fit the task and the data? (`archc train`, `archc export`)

Training needs one input image ``[C, H, W]`` with channels the data can give, and one output per
sample: for classification a vector of one score per class (``K``), for segmentation a map of class
scores at the input's size (``K x H x W``). The task comes from the data (digits and class folders:
classification; shapes and image/mask folders: segmentation), from the output's shape for `fake`,
or from ``--task``; any other output (YOLO grids, several outputs) is refused, naming what is
supported. Each mismatch is a located usage error (exit 2) saying what to change, instead of a loss
function failing deep inside torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archc.errors import Loc, UsageError

__all__ = ["check_input", "check_output", "choose_task", "looks_channels_last", "output_task"]

# The channel counts each kind of --data can give.
_DATA_CHANNELS = {"digits": (1, 3), "fake": (1, 2, 3, 4), "shapes": (1, 2, 3, 4), "folder": (1, 3)}
_DATA_WORDS = {"digits": "--data digits images are grey (1 channel, or repeated to 3 for RGB models)",
               "fake": "--data fake makes images of 1 to 4 channels (torchvision's FakeData)",
               "shapes": "--data shapes makes images of 1 to 4 channels",
               "folder": "image folders are read as grey (1 channel) or RGB (3 channels)"}
SUPPORTED = ("archc train supports classification (output: one score per class, K) and segmentation "
             "(output: class scores per pixel, K x H x W at the input's size)")


def looks_channels_last(shape: tuple[int, ...]) -> bool:
    """``[32, 32, 1]`` or ``[224, 224, 3]``: an image written height, width, channels."""
    return len(shape) == 3 and shape[2] in (1, 3) and min(shape[:2]) >= 8


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _data_kind(data: str) -> str:
    return data if data in ("digits", "fake", "shapes") else "folder"


def check_input(graph: Any, data: str) -> None:
    """The spec's input must be one image ``[C, H, W]`` whose channels the data can give."""
    kind = _data_kind(data)
    if len(graph.inputs) != 1:
        raise UsageError(f"--data {data} gives one image per sample, but {graph.name} has "
                         f"{len(graph.inputs)} inputs ({', '.join(n for n, _ in graph.inputs)})",
                         hint="archc train handles single-input classifiers")
    shape = tuple(graph.inputs[0][1])
    if len(shape) != 3:
        raise UsageError(f"--data {data} gives images [channels, height, width], but the spec's input is "
                         f"[{', '.join(map(str, shape))}]", _loc(graph),
                         hint="declare e.g. `input: [1, 8, 8]` and flatten inside the model if it needs a vector")
    if shape[0] not in _DATA_CHANNELS[kind]:
        fix = (f"`input: [{shape[2]}, {shape[0]}, {shape[1]}]`: archc reads [channels, height, width], "
               "batch left out" if looks_channels_last(shape) else
               f"`input: [1, {shape[1]}, {shape[2]}]` or `[3, {shape[1]}, {shape[2]}]`")
        raise UsageError(f"the spec's input {_shape(shape)} has {shape[0]} channels, but {_DATA_WORDS[kind]}",
                         _loc(graph), hint=f"write {fix}")


def output_task(shape: tuple[int, ...], input_shape: tuple[int, ...]) -> str | None:
    """``(K,)``: classification; ``(K, H, W)`` at the input's H and W: segmentation; else None."""
    if len(shape) == 1:
        return "classification"
    if len(shape) == 3 and len(input_shape) == 3 and tuple(shape[1:]) == tuple(input_shape[1:]):
        return "segmentation"
    return None


def split_outputs(result: Any) -> tuple[Any, tuple[Any, ...]]:
    """A model's result as (main output, auxiliary outputs): a tuple holds the main one first
    (segmentation `aux`, Inception-v3's training-only logits follow it)."""
    return (result[0], tuple(result[1:])) if isinstance(result, tuple) else (result, ())


def _output(analysis: Any) -> tuple[str, tuple[int, ...], Any]:
    """The main output's name, per-sample shape and node. Other outputs must predict the same thing
    (an auxiliary head, shape for shape: torchvision's segmentation `aux`): they add auxiliary losses."""
    graph = analysis.graph
    out = graph.outputs[0]
    if any(tuple(analysis.shapes[o]) != tuple(analysis.shapes[out]) for o in graph.outputs[1:]):
        raise UsageError(f"{graph.name} has {len(graph.outputs)} outputs ({', '.join(graph.outputs)}) of different "
                         f"shapes: {SUPPORTED}, plus auxiliary outputs shaped like the first",
                         hint="train the single-output model, or name one output with `outputs: [...]`")
    return out, tuple(analysis.shapes[out]), graph._index().get(out)


_DATA_GIVES = {"classification": "class labels", "segmentation": "masks"}


def choose_task(analysis: Any, data: str, data_kind_task: str | None, override: str | None) -> str:
    """The task: ``--task``, else what the data implies, else (fake) the output's shape."""
    out, shape, node = _output(analysis)
    found = output_task(shape, tuple(analysis.graph.inputs[0][1]))
    if override and data_kind_task and override != data_kind_task:
        raise UsageError(f"--task {override}, but --data {data} gives {_DATA_GIVES[data_kind_task]} "
                         f"({data_kind_task})", hint="segmentation data: --data shapes or a folder with images/ and "
                         "masks/; classification data: digits, fake or class folders (train/, val/)")
    task = override or data_kind_task or found
    if task is None or (found is None and len(shape) > 3):  # a detection grid is no classifier either
        raise UsageError(f"[{out}] {analysis.graph.name}'s output is {_shape(shape)} per sample: {SUPPORTED}",
                         node.loc if node is not None else None,
                         hint="detection grids (YOLO) and other outputs need their own loss: train "
                              "archc.compile(...) in your own loop")
    return task


def check_output(analysis: Any, classes: int, params: Mapping[str, Any], user_params: Mapping[str, Any],
                 data: str, task: str = "classification") -> None:
    """Classification: one vector of ``classes`` scores per sample; segmentation: ``classes`` score maps
    at the input's size (for image/mask folders at least ``classes``: the masks are checked by value)."""
    out, shape, node = _output(analysis)
    loc = node.loc if node is not None else None
    if task == "segmentation":
        _check_segmentation(analysis, out, shape, node, classes, params, user_params, data)
        return
    if output_task(shape, tuple(analysis.graph.inputs[0][1])) is None and len(shape) != 3:
        raise UsageError(f"[{out}] the model's output is {_shape(shape)} per sample: {SUPPORTED}; --data {data} "
                         f"has {classes} classes", loc, hint=_head_hint(shape, classes))
    if len(shape) != 1:
        raise UsageError(f"[{out}] the model's output is {_shape(shape)} per sample, but classification with "
                         f"--data {data} needs one score per class: a vector of {classes}", loc,
                         hint=_head_hint(shape, classes) + ("; or, as a segmentation model, train it on --data "
                                                            "shapes or a folder with images/ and masks/"
                                                            if len(shape) == 3 else ""))
    if shape[0] != classes:
        raise UsageError(f"[{out}] the model gives {shape[0]} class scores, but --data {data} has {classes} "
                         "classes", loc, hint=_classes_hint(node, shape[0], classes, params, user_params))


def _check_segmentation(analysis: Any, out: str, shape: tuple[int, ...], node: Any, classes: int,
                        params: Mapping[str, Any], user_params: Mapping[str, Any], data: str) -> None:
    loc = node.loc if node is not None else None
    size = tuple(analysis.graph.inputs[0][1])
    if output_task(shape, size) != "segmentation":
        hint = ("end with `{op: conv2d, out_channels: \"${num_classes}\", kernel_size: 1}` on a map upsampled to "
                "the input's size" if len(shape) != 3 else
                f"upsample the scores to the input's {size[1]}x{size[2]} (e.g. `resize_to` or `interpolate`)")
        raise UsageError(f"[{out}] the model's output is {_shape(shape)} per sample, but segmentation with --data "
                         f"{data} needs class scores per pixel: K x {size[1]} x {size[2]}", loc, hint=hint)
    if data in ("shapes", "fake") and shape[0] != classes:
        what = " (background, circle, rectangle, triangle)" if data == "shapes" else ""
        raise UsageError(f"[{out}] the model gives {shape[0]} class scores per pixel, but --data {data} has "
                         f"{classes} classes{what}", loc, hint=_classes_hint(node, shape[0], classes, params,
                                                                             user_params))


def _head_hint(shape: tuple[int, ...], classes: int) -> str:
    pool = "`pool: {op: adaptive_avg_pool2d, output_size: 1}`, `flatten: flatten`"
    if len(shape) == 3 and shape[0] == classes:
        return f"its {classes} channels are the class scores: end with {pool} to average each over the map"
    if len(shape) == 3:
        return f"end with {pool} and `fc: {{op: linear, out_features: {classes}}}` (global pooling and a linear head)"
    if len(shape) == 2:
        return (f"reduce the {shape[0]} tokens to one vector (`{{op: mean, dim: 1}}`, or the class token: "
                f"`{{op: select, dim: 1, index: 0}}`), then `{{op: linear, out_features: {classes}}}`")
    return f"end with `flatten: flatten` and `fc: {{op: linear, out_features: {classes}}}`"


def _classes_hint(node: Any, got: int, classes: int, params: Mapping[str, Any],
                  user_params: Mapping[str, Any]) -> str:
    if "num_classes" in user_params:
        return (f"you set num_classes={user_params['num_classes']}: leave it out, archc train sets it from the "
                f"data ({classes})")
    width = "out_features" if node is not None and node.op == "linear" else "out_channels"
    if "num_classes" in params:
        return f"the head does not use num_classes: write `{width}: \"${{num_classes}}\"` on the last layer"
    return (f"write `{width}: {classes}`, or declare `params: {{num_classes: {classes}}}` and write "
            f"`{width}: \"${{num_classes}}\"` so that archc train sets it from the data")


def _loc(graph: Any) -> Loc | None:
    """Where the spec writes `input:` (the spec's own file, or the one it extends)."""
    from archc.resolve import find_spec
    from archc.resolve.spec import load_spec

    data = load_spec(find_spec(graph.file)).data
    return data.val_locs.get("input", data.loc)
