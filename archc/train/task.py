"""Before any tensor exists: does the model fit the task and the data? (`archc train`, `archc export`)

Classification needs one input image ``[C, H, W]`` with channels the data can give, and one
output per sample: a vector of one score per class. Each mismatch is a located usage error (exit
2) saying what to change, instead of a loss function failing deep inside torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archc.errors import Loc, UsageError

__all__ = ["check_input", "check_output", "looks_channels_last"]

# The channel counts each kind of --data can give.
_DATA_CHANNELS = {"digits": (1, 3), "fake": (1, 2, 3, 4), "folder": (1, 3)}
_DATA_WORDS = {"digits": "--data digits images are grey (1 channel, or repeated to 3 for RGB models)",
               "fake": "--data fake makes images of 1 to 4 channels (torchvision's FakeData)",
               "folder": "image folders are read as grey (1 channel) or RGB (3 channels)"}


def looks_channels_last(shape: tuple[int, ...]) -> bool:
    """``[32, 32, 1]`` or ``[224, 224, 3]``: an image written height, width, channels."""
    return len(shape) == 3 and shape[2] in (1, 3) and min(shape[:2]) >= 8


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _data_kind(data: str) -> str:
    return data if data in ("digits", "fake") else "folder"


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


def check_output(analysis: Any, classes: int, params: Mapping[str, Any], user_params: Mapping[str, Any],
                 data: str) -> None:
    """The model must give one vector of ``classes`` scores per sample, the loss's logits."""
    graph = analysis.graph
    if len(graph.outputs) != 1:
        raise UsageError(f"{graph.name} has {len(graph.outputs)} outputs ({', '.join(graph.outputs)}), but "
                         "classification training needs one: the class scores",
                         hint="train the single-output model, or name one output with `outputs: [...]`")
    out = graph.outputs[0]
    node = graph._index().get(out)
    loc = node.loc if node is not None else None
    shape = tuple(analysis.shapes[out])
    if len(shape) != 1:
        raise UsageError(f"[{out}] the model's output is {_shape(shape)} per sample, but classification with "
                         f"--data {data} needs one score per class: a vector of {classes}", loc,
                         hint=_head_hint(shape, classes))
    if shape[0] != classes:
        raise UsageError(f"[{out}] the model gives {shape[0]} class scores, but --data {data} has {classes} "
                         "classes", loc, hint=_classes_hint(node, shape[0], classes, params, user_params))


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
