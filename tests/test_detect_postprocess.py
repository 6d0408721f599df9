"""Decoders of the three detection heads into one (B, 4 + nc, A) layout, and NMS (archc/detect/postprocess.py):
hand-made outputs whose boxes are known, and, when Ultralytics is installed, its Detect decoding and NMS."""

from __future__ import annotations

import math
import warnings

import pytest

torch = pytest.importorskip("torch")

from archc.detect.postprocess import decode_anchor, decode_anchor_free, decode_v1, nms  # noqa: E402


def _pred(rows: list[list[float]]) -> torch.Tensor:
    """(1, 4 + nc, A) from rows (cx, cy, w, h, scores...)."""
    return torch.tensor(rows, dtype=torch.float32).T[None]


def _close(t: torch.Tensor, rows: list[list[float]], atol: float = 1e-6) -> bool:
    expected = torch.tensor(rows, dtype=t.dtype)
    return t.shape == expected.shape and torch.allclose(t, expected, atol=atol)


# ------------------------------------------------------------------------------------------------ NMS
def test_nms_keeps_the_best_of_overlapping_boxes_per_class():
    pred = _pred([[50, 50, 20, 20, 0.9, 0.0], [52, 50, 20, 20, 0.8, 0.0],  # IoU 0.82 with the first: dropped
                  [51, 50, 20, 20, 0.0, 0.7],  # other class: kept
                  [10, 10, 8, 8, 0.2, 0.1]])  # under conf 0.25
    (out,) = nms(pred)
    assert _close(out, [[40, 40, 60, 60, 0.9, 0], [41, 40, 61, 60, 0.7, 1]])
    (agnostic,) = nms(pred, agnostic=True)
    assert agnostic[:, 4].tolist() == pytest.approx([0.9])
    (low,) = nms(pred, conf=0.15, iou=0.85)
    assert low[:, 4].tolist() == pytest.approx([0.9, 0.8, 0.7, 0.2])
    assert nms(pred, conf=0.15, iou=0.85, max_det=2)[0][:, 4].tolist() == pytest.approx([0.9, 0.8])


def test_nms_multi_label_and_empty_images():
    pred = torch.cat((_pred([[50, 50, 20, 20, 0.9, 0.6]]), _pred([[5, 5, 2, 2, 0.1, 0.1]])))
    one, empty = nms(pred)
    assert one[:, 5].tolist() == [0] and empty.shape == (0, 6)
    assert _close(nms(pred, multi_label=True)[0][:, 4:], [[0.9, 0], [0.6, 1]])


def test_nms_caps_candidates_before_suppression():
    rows = [[10 + 30 * i, 10, 8, 8, 0.3 + 0.01 * i] for i in range(10)]  # disjoint boxes
    (out,) = nms(_pred(rows), max_candidates=4)
    assert out[:, 4].tolist() == pytest.approx([0.39, 0.38, 0.37, 0.36])


def test_nms_matches_ultralytics_on_random_predictions():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from ultralytics.utils.nms import non_max_suppression
        except ImportError:
            pytest.skip("ultralytics is not installed")
    g = torch.Generator().manual_seed(0)
    xy, wh = torch.rand(2, 2, 400, generator=g) * 120, torch.rand(2, 2, 400, generator=g) * 40 + 4
    pred = torch.cat((xy, wh, torch.rand(2, 5, 400, generator=g) ** 3), 1)
    for agnostic in (False, True):
        ours = nms(pred, conf=0.001, iou=0.7, agnostic=agnostic)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = non_max_suppression(pred.clone(), 0.001, 0.7, agnostic=agnostic, max_det=300, max_time_img=10)
        for a, b in zip(ours, theirs):
            assert a.shape == b.shape and torch.allclose(a, b, atol=1e-4)


# -------------------------------------------------------------------------------------------- decoders
def test_decode_v1_gives_pixel_boxes_and_class_specific_confidence():
    out = torch.zeros(1, 2, 2, 2 * 5 + 3)
    out[0, 1, 0, 5:10] = torch.tensor([0.25, 0.5, 0.5, 0.25, 0.8])  # row 1, col 0, box 1
    out[0, 1, 0, 10:] = torch.tensor([0.1, 0.5, 1.3])  # class probabilities, clamped to [0, 1]
    dec = decode_v1(out, boxes=2, img_size=64)
    assert dec.shape == (1, 7, 8)
    col = dec[0, :, (1 * 2 + 0) * 2 + 1]  # (row, col, box) order
    assert col.tolist() == pytest.approx([(0 + 0.25) * 32, (1 + 0.5) * 32, 32, 16, 0.08, 0.4, 0.8])
    assert dec[0, 4:].abs().sum().item() == pytest.approx(0.08 + 0.4 + 0.8)  # every other box has conf 0


def test_decode_anchor_follows_yolov3_per_level_and_anchor():
    anchors = [[(10.0, 13.0), (16.0, 30.0)], [(30.0, 61.0)]]
    outs = [torch.zeros(1, 2, 4, 4, 7), torch.zeros(1, 1, 2, 2, 7)]
    outs[0][0, 1, 2, 3, :5] = torch.tensor([0.0, 2.0, math.log(2.0), 0.0, 3.0])
    outs[1][0, 0, 1, 0, 5:] = torch.tensor([10.0, -10.0])
    dec = decode_anchor(outs, anchors, [8, 16])
    assert dec.shape == (1, 6, 2 * 16 + 4)
    a = dec[0, :, 16 + 2 * 4 + 3]  # level 0, anchor 1, row 2, col 3
    s = 1 / (1 + math.exp(-2.0))
    assert a[:4].tolist() == pytest.approx([(0.5 + 3) * 8, (s + 2) * 8, 32, 30])
    assert a[4:].tolist() == pytest.approx([0.5 / (1 + math.exp(-3.0))] * 2)
    b = dec[0, :, 32 + 1 * 2 + 0]  # level 1, row 1, col 0
    assert b.tolist() == pytest.approx([8, 24, 30, 61, 0.5 / (1 + math.exp(-10)), 0.5 / (1 + math.exp(10))])
    one = decode_anchor(outs[0], anchors[0], [8])  # one level, flat anchors
    assert torch.equal(one, dec[:, :, :32])


def test_decode_anchor_free_reads_the_dfl_bins_around_each_cell_centre():
    levels = [torch.full((1, 4 * 16 + 2, 2, 2), -30.0), torch.full((1, 4 * 16 + 2, 1, 1), -30.0)]
    for side, b in enumerate((1, 2, 3, 4)):  # cell (row 1, col 0) of level 0: distances 1, 2, 3, 4 strides
        levels[0][0, side * 16 + b, 1, 0] = 30.0
    levels[0][0, 64:, 1, 0] = torch.tensor([0.0, 30.0])
    dec = decode_anchor_free(levels, 16, [8, 16])
    assert dec.shape == (1, 6, 5)
    cx, cy = 0.5 * 8, 1.5 * 8
    x1, y1, x2, y2 = cx - 8, cy - 16, cx + 24, cy + 32
    assert dec[0, :, 2].tolist() == pytest.approx([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, 0.5, 1.0],
                                                  abs=1e-5)
    (kept,) = nms(dec, conf=0.6)
    assert _close(kept, [[x1, y1, x2, y2, 1.0, 1.0]], atol=1e-4)


def test_decode_anchor_free_matches_ultralytics_detect():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from ultralytics.nn.modules.head import Detect
        except ImportError:
            pytest.skip("ultralytics is not installed")
    torch.manual_seed(0)
    head = Detect(nc=3, ch=(16, 32, 64)).eval()
    head.stride = torch.tensor([8.0, 16.0, 32.0])
    feats = [torch.randn(2, c, s, s) for c, s in ((16, 16), (32, 8), (64, 4))]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = head([f.clone() for f in feats])[0]
        raw = [torch.cat((head.cv2[i](f), head.cv3[i](f)), 1) for i, f in enumerate(feats)]
    ours = decode_anchor_free(raw, 16, [8, 16, 32])
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=2e-4)  # pixels up to ~250: float32 rounding
