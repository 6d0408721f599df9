"""What kind of detection head a spec has, read statically from its analysis (no tensors).

Three kinds (archc/detect/README.md has the layouts):
- ``grid``: YOLOv1, one output ``(S, S, B*5 + C)`` (params ``grid``, ``boxes``, ``classes``);
- ``anchor``: YOLOv2/v3, one output per level ``(A, H, W, 5 + C)``; anchors in input pixels from the
  param ``anchor_sizes`` (a list of ``[w, h]`` per level, or one flat list for one level) and the strides
  from ``strides`` (else input size / grid size);
- ``anchor_free``: YOLOv8/YOLO11, an eval output ``(4 + C, A)`` (boxes in pixels and class scores) and
  train-only level maps ``(4 * reg_max + C, H, W)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archc.errors import UsageError

__all__ = ["Head", "detection_head", "is_detection_spec", "make_detection_loss", "YOLOV3_ANCHORS"]

# YOLOv3's COCO anchors at 416 px (w, h), largest level first (stride 32, 16, 8)
YOLOV3_ANCHORS = (((116, 90), (156, 198), (373, 326)), ((30, 61), (62, 45), (59, 119)),
                  ((10, 13), (16, 30), (33, 23)))


@dataclass(frozen=True)
class Head:
    kind: str  # grid | anchor | anchor_free
    classes: int
    size: tuple[int, int]  # the input's (H, W)
    channels: int
    grid: int = 0  # grid: cells per side
    boxes: int = 0  # grid: boxes per cell
    anchors: tuple[tuple[tuple[float, float], ...], ...] = ()  # anchor: per level, (w, h) in input pixels
    strides: tuple[int, ...] = ()  # anchor, anchor_free: per level
    reg_max: int = 16  # anchor_free: distribution bins per side
    levels: tuple[tuple[int, int], ...] = field(default=())  # (H, W) per level


def _shape(analysis: Any, name: str) -> tuple[int, ...]:
    return tuple(int(s) for s in analysis.shapes[name])


def _anchor_sizes(params: dict[str, Any], levels: int, size: int) -> tuple[tuple[tuple[float, float], ...], ...]:
    given = params.get("anchor_sizes")
    if given is None:  # YOLOv3's anchors scaled to the input (largest objects on the coarsest level first)
        scale = size / 416
        return tuple(tuple((w * scale, h * scale) for w, h in lv) for lv in YOLOV3_ANCHORS[:levels])
    rows = [given] if given and isinstance(given[0][0], (int, float)) else list(given)
    return tuple(tuple((float(w), float(h)) for w, h in lv) for lv in rows)


def is_detection_spec(analysis: Any) -> bool:
    try:
        detection_head(analysis)
    except UsageError:
        return False
    return True


def detection_head(analysis: Any) -> Head:
    """The head of a detection spec, or a usage error that says which output layouts are understood."""
    graph = analysis.graph
    params = dict(graph.params)
    _, h, w = (int(s) for s in graph.inputs[0][1])
    channels = int(graph.inputs[0][1][0])
    outs = [_shape(analysis, o) for o in graph.outputs]
    first = outs[0]
    if len(first) == 3 and {"grid", "boxes", "classes"} <= set(params) and \
            first == (params["grid"], params["grid"], params["boxes"] * 5 + params["classes"]):
        return Head("grid", int(params["classes"]), (h, w), channels, grid=int(params["grid"]),
                    boxes=int(params["boxes"]))
    if all(len(o) == 4 for o in outs) and len({o[-1] for o in outs}) == 1 and first[-1] > 5:
        classes = first[-1] - 5
        if any(o[1] > h or o[2] > w or h % o[1] or w % o[2] or h // o[1] != w // o[2] for o in outs):
            raise UsageError(f"{graph.name}'s outputs {outs} are not anchor levels (A, H, W, 5 + C) of a {h}x{w} "
                             "input: each level's H and W must divide the input by one stride",
                             hint="a (A, 5 + C, H, W) head (channels before the grid) needs a permute to "
                                  "(A, H, W, 5 + C), as the seed's YOLOHead forward does")
        anchors = _anchor_sizes(params, len(outs), max(h, w))
        strides = tuple(int(params["strides"][i]) if "strides" in params else h // o[1] for i, o in enumerate(outs))
        if any(len(a) != o[0] for a, o in zip(anchors, outs)) or len(anchors) != len(outs):
            raise UsageError(f"{graph.name}: anchor_sizes gives {[len(a) for a in anchors]} anchors per level, the "
                             f"outputs have {[o[0] for o in outs]}",
                             hint="list one [w, h] per anchor and level in the param anchor_sizes")
        return Head("anchor", classes, (h, w), channels, anchors=anchors, strides=strides,
                    levels=tuple((o[1], o[2]) for o in outs))
    train = [_shape(analysis, o) for o in getattr(graph, "train_outputs", ())]
    if len(first) == 2 and train and all(len(t) == 3 for t in train):
        classes = first[0] - 4
        reg_max = (train[0][0] - classes) // 4
        return Head("anchor_free", classes, (h, w), channels, strides=tuple(h // t[1] for t in train),
                    reg_max=reg_max, levels=tuple((t[1], t[2]) for t in train))
    raise UsageError(f"{graph.name}'s outputs {outs} are no detection head archc trains",
                     hint="a YOLOv1 grid (S, S, B*5 + C) with params grid/boxes/classes, anchor levels "
                          "(A, H, W, 5 + C), or an anchor-free head (4 + C, A) with train-only level maps "
                          "(4 * reg_max + C, H, W), as specs/yolov1_resnet18.yaml, yolo_resnet18.yaml, yolov8n.yaml")


def make_detection_loss(head: Head) -> Any:
    """The loss that fits the head: YOLOv1's sum-squared error, YOLOv3's objectness/box/class loss, or
    the anchor-free task-aligned loss with DFL (archc.detect.losses)."""
    from archc.detect.losses import AnchorFreeLoss, AnchorLoss, YoloV1Loss

    if head.kind == "grid":
        return YoloV1Loss(head.grid, head.boxes, head.classes, img_size=head.size[0])
    if head.kind == "anchor":
        return AnchorLoss(head.anchors, head.strides, head.classes)
    return AnchorFreeLoss(head.classes, head.reg_max, head.strides)
