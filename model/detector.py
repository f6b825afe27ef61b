"""``CamidDetector``: every camera in the photo, each with a box and class logits.

A compact anchor-free detector in the spirit of CenterNet/FCOS on a timm EfficientNet-Lite
backbone: the stride-8, 16 and 32 feature maps are fused top-down (a small FPN) into one stride-8
map, and three 1x1 heads predict, for every cell, whether a camera's centre lies in it
(objectness), which camera class it is (class logits over the camera classes), and its box
(sub-cell centre offset and log width/height). Cameras 1-5% of a 640-px photo's width are
6-32 px: at stride 8 that is one to four cells, so each camera has its own cell.

``forward`` returns the decoded outputs that go into ONNX (post-processing stays tiny and
torch-free, ``data/detection.py``): a 3x3 max-pool keeps only local objectness peaks, so no NMS
is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from model.pixels import PixelModel

STRIDE = 8
LEVEL_STRIDES = (8, 16, 32)  # the last backbone stage at each of these strides feeds the FPN
OBJ_PRIOR = 0.01  # initial objectness: almost every cell holds no camera centre
LOG_SIZE_RANGE = (-3.0, 6.0)  # box side = STRIDE * exp(r): 0.4 .. 3200 px


class CamidDetector(PixelModel):
    """uint8 (or 0..255 float) RGB ``[N,3,S,S]`` in; per-cell camera outputs at stride 8 out."""

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        width: int = 64,
    ) -> None:
        super().__init__(mean, std)
        self.stem = nn.Sequential(cast("nn.Module", backbone.conv_stem), cast("nn.Module", backbone.bn1))
        self.blocks = cast("nn.Sequential", backbone.blocks)
        self.levels, channels = self._find_levels()
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in channels)
        self.fuse = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        self.tower = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True))
        self.objectness = nn.Conv2d(width, 1, 1)
        self.classifier = nn.Conv2d(width, num_classes, 1)
        self.box = nn.Conv2d(width, 4, 1)  # centre offset (2, through a sigmoid) and log size (2)
        with torch.no_grad():
            cast("torch.Tensor", self.objectness.bias).fill_(float(torch.logit(torch.tensor(OBJ_PRIOR))))
            self.box.weight.zero_()
            cast("torch.Tensor", self.box.bias).zero_()

    @property
    def num_classes(self) -> int:
        return self.classifier.out_channels

    def _find_levels(self) -> tuple[tuple[int, ...], list[int]]:
        """Indices and channels of the last stage at each stride of ``LEVEL_STRIDES`` (any depth)."""
        size = 128
        last: dict[int, tuple[int, int]] = {}
        with torch.no_grad():
            was = self.training
            self.eval()
            x = self.stem(torch.zeros(1, 3, size, size))
            for i, block in enumerate(self.blocks):
                x = block(x)
                last[size // int(x.shape[-1])] = (i, int(x.shape[1]))
            self.train(was)
        found = [last[s] for s in LEVEL_STRIDES if s in last]
        if LEVEL_STRIDES[0] not in last:
            raise ValueError(f"backbone has no stage at stride {LEVEL_STRIDES[0]} (strides: {sorted(last)})")
        return tuple(i for i, _ in found), [c for _, c in found]

    def _levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        out = []
        for i, block in enumerate(self.blocks):
            if i > self.levels[-1]:
                break  # later stages (and the classifier's conv_head) are not used
            x = block(x)
            if i in self.levels:
                out.append(x)
        return out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The fused stride-8 feature map ``[N, width, S/8, S/8]``."""
        levels = self._levels(self.normalize(x))
        top = self.lateral[-1](levels[-1])
        for lateral, feat in zip(list(self.lateral)[-2::-1], levels[-2::-1], strict=True):
            top = lateral(feat) + nn.functional.interpolate(top, size=feat.shape[-2:], mode="nearest")
        fused: torch.Tensor = self.tower(self.fuse(top))
        return fused

    def forward_raw(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(objectness logits [N,1,h,w], class logits [N,K,h,w], box [N,4,h,w])`` for the loss."""
        f = self.features(x)
        return self.objectness(f), self.classifier(f), self.box(f)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(objectness [N,h,w], scores [N,h*w], class_logits [N,h*w,K], boxes [N,h*w,4])``.

        ``objectness`` is the per-cell camera probability (the "where the model looked" map);
        ``scores`` is the same with everything but local 3x3 maxima set to 0; ``boxes`` are
        ``x0, y0, x1, y1`` in input pixels.
        """
        return decode_outputs(*self.forward_raw(x))


def decode_outputs(
    obj_logit: torch.Tensor, cls: torch.Tensor, box: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:meth:`CamidDetector.forward_raw`'s outputs decoded as :meth:`CamidDetector.forward` returns them."""
    heat = torch.sigmoid(obj_logit)
    peaks = heat * (nn.functional.max_pool2d(heat, 3, stride=1, padding=1) == heat).to(heat.dtype)
    n, k, h, w = cls.shape
    boxes = decode_boxes(box)
    return (
        heat[:, 0],
        peaks.reshape(n, h * w),
        cls.permute(0, 2, 3, 1).reshape(n, h * w, k),
        boxes.permute(0, 2, 3, 1).reshape(n, h * w, 4),
    )


def cell_centres(h: int, w: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-left corners (in cells) of every cell of an ``h`` x ``w`` map, as ``[h,w]`` grids."""
    ys = torch.arange(h, dtype=like.dtype, device=like.device).view(h, 1).expand(h, w)
    xs = torch.arange(w, dtype=like.dtype, device=like.device).view(1, w).expand(h, w)
    return xs, ys


def decode_boxes(box: torch.Tensor) -> torch.Tensor:
    """Raw box outputs ``[N,4,h,w]`` to ``x0, y0, x1, y1`` in input pixels ``[N,4,h,w]``."""
    _, _, h, w = box.shape
    xs, ys = cell_centres(h, w, box)
    cx = (xs + torch.sigmoid(box[:, 0])) * STRIDE
    cy = (ys + torch.sigmoid(box[:, 1])) * STRIDE
    lo, hi = LOG_SIZE_RANGE
    bw = torch.exp(box[:, 2].clamp(lo, hi)) * STRIDE
    bh = torch.exp(box[:, 3].clamp(lo, hi)) * STRIDE
    return torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=1)
