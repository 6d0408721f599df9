"""The seed guide's YOLOHead and specs/yolo_head.yaml return the same layout, (A, H, W, 5 + C) per image: the guide
reshapes the 1x1 conv's A * (5 + C) channels to (A, 5 + C, H, W) and permutes (0, 1, 3, 4, 2); given the same
weights both give the same tensor (archc/detect/README.md, "The anchor head's layout")."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import archc


class GuideYOLOHead(nn.Module):
    """The seed guide's head (section 4, "YOLO 계열 간단 구현"), transcribed."""

    def __init__(self, in_channels: int, num_anchors: int, num_classes: int) -> None:
        super().__init__()
        self.num_anchors, self.num_classes = num_anchors, num_classes
        self.head = nn.Sequential(nn.Conv2d(in_channels, in_channels * 2, kernel_size=3, padding=1),
                                  nn.BatchNorm2d(in_channels * 2), nn.LeakyReLU(0.1),
                                  nn.Conv2d(in_channels * 2, num_anchors * (5 + num_classes), kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(x)
        b, _, h, w = out.shape
        out = out.reshape(b, self.num_anchors, 5 + self.num_classes, h, w)  # (B, A, 5 + C, H, W)
        return out.permute(0, 1, 3, 4, 2).contiguous()  # (B, A, H, W, 5 + C)


@pytest.mark.usefixtures("one_thread")
def test_shipped_head_returns_the_guides_layout():
    params = {"classes": 4}  # a small head: the layout does not depend on the class count
    analysis = archc.check("yolo_head", params, [64, 13, 13])
    assert analysis.output_shapes == [(3, 13, 13, 9)]  # (A, H, W, 5 + C)
    assert analysis.shapes["detect.split"] == (3, 9, 13, 13)  # (A, 5 + C, H, W) is the step before
    torch.manual_seed(0)
    guide = GuideYOLOHead(64, 3, 4).eval()
    model = archc.compile("yolo_head", input_shape=[64, 13, 13], **params).eval()
    model.load_state_dict({f"detect.{k}": v for k, v in guide.state_dict().items()}, strict=True)
    x = torch.randn(2, 64, 13, 13)
    with torch.no_grad():
        assert torch.equal(model(x), guide(x))


def test_a_channels_first_head_is_refused_not_misread(tmp_path):
    """(A, 5 + C, H, W) without the permute: refused with a hint, not read as anchor levels of 8 classes."""
    from archc.detect.head import detection_head
    from archc.errors import UsageError

    root = Path(__file__).resolve().parents[1]
    (tmp_path / "yolo_head.yaml").write_text((root / "specs" / "yolo_head.yaml").read_text().replace(
        "dims: [0, 1, 3, 4, 2]", "dims: [0, 1, 2, 3, 4]"))
    (tmp_path / "det.yaml").write_text((root / "specs" / "yolo_resnet18.yaml").read_text().replace(
        "imports: [yolo_head]", "imports: [./yolo_head.yaml]"))
    assert detection_head(archc.check(root / "specs" / "yolo_resnet18.yaml")).kind == "anchor"
    with pytest.raises(UsageError, match="not anchor levels") as info:
        detection_head(archc.check(tmp_path / "det.yaml"))
    assert "permute" in (info.value.hint or "")
