"""Training data, targets and loss of the camera detector (``model/detector.py``).

Each photo goes through the same ``prepare`` (letterbox to the detector's input size) as in
serving, its boxes with it; training then cuts ``crop`` x ``crop`` windows of that input (the
scale stays the serving scale, so small cameras stay small; a share ``det_box_windows`` of them
placed to hold a box, so that more windows show a camera), flips them, may paste rendered
cutouts into them (``training.paste``), and recolours, blurs and compresses them.
Camera boxes become targets; look-alike boxes (the no-camera class) and photos without any box
whose label is the no-camera class are negatives everywhere. Photos labelled as a camera but
without boxes cannot say where the camera is: they are left out (and counted in the log).

Targets follow CenterNet: a Gaussian "centre" heatmap per photo (penalty-reduced focal loss),
the class and box regressed at each camera's centre cell.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import albumentations as A
import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from data.boxes import LabeledBox, record_boxes
from data.images import load_image, probe_image
from data.labels import LabelSet
from data.manifest import Manifest, Record
from data.preprocess import ResizeRule, photo_to_input, placement, prepare
from model.detector import LOG_SIZE_RANGE, STRIDE
from training.paste import IGNORE, Paster

log = logging.getLogger(__name__)


def usable_records(records: Sequence[Record], labels: LabelSet) -> list[Record]:
    """Records a detector can learn from: with boxes, or photos of the no-camera class."""
    keep = [r for r in records if r.label == labels.negative or record_boxes(r)]
    if len(keep) < len(records):
        log.info("detector: %d camera photos without boxes left out", len(records) - len(keep))
    return keep


def _geometry(crop: int, seed: int, box_windows: float = 0.0) -> A.Compose:
    """Scale jitter, a ``crop`` x ``crop`` window (with probability ``box_windows`` one that holds
    at least one box, a camera or a look-alike; else anywhere) and flips."""
    window: list[A.BasicTransform] = [A.RandomCrop(crop, crop)]
    if box_windows > 0:  # photos without boxes get a random window from either
        window = [
            A.OneOf(
                [
                    A.AtLeastOneBBoxRandomCrop(crop, crop, p=box_windows),
                    A.RandomCrop(crop, crop, p=1 - box_windows),
                ],
                p=1.0,
            )
        ]
    return A.Compose(
        [
            A.RandomScale(scale_limit=(-0.2, 0.25), p=0.7),
            A.PadIfNeeded(crop, crop, border_mode=0, fill=(124, 116, 104)),
            *window,
            A.HorizontalFlip(p=0.5),
        ],
        bbox_params=A.BboxParams(format="pascal_voc", label_fields=["classes"], min_visibility=0.4),
        seed=seed,
    )


def _optics(seed: int) -> A.Compose:
    """Colour, blur, noise and JPEG: after any pasting, so pasted and own pixels share them."""
    return A.Compose(
        [
            A.RandomBrightnessContrast(brightness_limit=0.3, contrast_limit=0.3, p=0.7),
            A.HueSaturationValue(hue_shift_limit=8, sat_shift_limit=25, val_shift_limit=15, p=0.4),
            A.OneOf([A.MotionBlur(blur_limit=(3, 5)), A.GaussianBlur(sigma_limit=(0.3, 1.0))], p=0.25),
            A.GaussNoise(std_range=(0.01, 0.04), p=0.3),
            A.ImageCompression(quality_range=(50, 95), p=0.5),
        ],
        seed=seed + 1,
    )


class DetectionDataset(Dataset[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]):
    """``(uint8 image [3,S,S], boxes [M,4] in input pixels, classes [M])``; class -1 = look-alike."""

    def __init__(
        self,
        manifest: Manifest,
        records: Sequence[Record],
        labels: LabelSet,
        rule: ResizeRule,
        *,
        crop: int | None = None,
        seed: int = 0,
        box_windows: float = 0.0,
        paster: Paster | None = None,
    ) -> None:
        self.manifest, self.records, self.labels, self.rule = manifest, list(records), labels, rule
        self.geometry = _geometry(crop, seed, box_windows) if crop else None
        self.optics = _optics(seed) if crop else None
        self.paster = paster
        self.cameras = labels.cameras

    def __len__(self) -> int:
        return len(self.records)

    def photo_widths(self) -> list[float]:
        """Each photo's width in input pixels (its letterboxed or cropped width, not the input's):
        what a box's width is a fraction of in the size buckets, portrait photos included."""
        out = []
        for r in self.records:
            info = probe_image(self.manifest.resolve(r))
            out.append(float(placement(info.width, info.height, self.rule).resized[0]))
        return out

    def _class(self, box: LabeledBox) -> int:
        return self.cameras.index(box.label) if box.label in self.cameras else IGNORE

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r = self.records[i]
        img = load_image(self.manifest.resolve(r))
        arr = prepare(img, self.rule).transpose(1, 2, 0)
        w, h = img.size
        labelled = record_boxes(r)
        boxes = [list(photo_to_input(b.box, w, h, self.rule)) for b in labelled]
        classes = [self._class(b) for b in labelled]
        if self.geometry is not None and self.optics is not None:
            size = float(self.rule.size)
            clipped = [[min(max(v, 0.0), size) for v in b] for b in boxes]
            ok = [k for k, b in enumerate(clipped) if b[2] - b[0] >= 1 and b[3] - b[1] >= 1]
            out = self.geometry(
                image=np.ascontiguousarray(arr),
                bboxes=np.array([clipped[k] for k in ok], dtype=np.float32).reshape(-1, 4),
                classes=[classes[k] for k in ok],
            )
            arr, boxes, classes = out["image"], [list(b) for b in out["bboxes"]], list(out["classes"])
            if self.paster is not None:
                arr, boxes, classes = self.paster(arr, boxes, classes)
            arr = self.optics(image=arr)["image"]
        image = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
        box_t = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        return image, box_t, torch.tensor(classes, dtype=torch.long)


def collate(
    batch: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, list[Any]]:
    """Stack images; keep each photo's boxes and classes as a list."""
    return torch.stack([b[0] for b in batch]), [(b[1], b[2]) for b in batch]


@dataclass(frozen=True)
class Targets:
    """Dense training targets on the stride-8 grid for a batch."""

    heat: torch.Tensor  # [N,1,h,w] Gaussian centre heatmap (1 at each camera's centre cell)
    index: torch.Tensor  # [P] flat cell index (n*h*w + y*w + x) of each camera centre
    classes: torch.Tensor  # [P]
    offset: torch.Tensor  # [P,2] sub-cell centre, 0..1
    log_size: torch.Tensor  # [P,2] log(width / STRIDE), log(height / STRIDE)


def gaussian_radius(w: float, h: float) -> float:
    """Heatmap spread in cells for a box (CenterNet-like: a third of the smaller side, >= 0.5)."""
    return max(0.5, min(w, h) / STRIDE / 3.0)


def build_targets(items: Sequence[tuple[torch.Tensor, torch.Tensor]], h: int, w: int) -> Targets:
    """Targets for a batch of ``(boxes, classes)`` on an ``h`` x ``w`` grid."""
    heat = torch.zeros(len(items), 1, h, w)
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij"
    )
    index, classes, offset, log_size = [], [], [], []
    lo, hi = LOG_SIZE_RANGE
    for n, (boxes, cls) in enumerate(items):
        for box, c in zip(boxes.tolist(), cls.tolist(), strict=True):
            if c == IGNORE:
                continue
            bw, bh = box[2] - box[0], box[3] - box[1]
            cx, cy = (box[0] + box[2]) / 2 / STRIDE, (box[1] + box[3]) / 2 / STRIDE
            ix, iy = min(max(int(cx), 0), w - 1), min(max(int(cy), 0), h - 1)
            sigma = gaussian_radius(bw, bh)
            g = torch.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sigma**2))
            heat[n, 0] = torch.maximum(heat[n, 0], g)
            index.append(n * h * w + iy * w + ix)
            classes.append(c)
            offset.append([min(max(cx - ix, 0.0), 1.0), min(max(cy - iy, 0.0), 1.0)])
            log_size.append(
                [
                    min(max(math.log(max(bw, 0.5) / STRIDE), lo), hi),
                    min(max(math.log(max(bh, 0.5) / STRIDE), lo), hi),
                ]
            )
    return Targets(
        heat,
        torch.tensor(index, dtype=torch.long),
        torch.tensor(classes, dtype=torch.long),
        torch.tensor(offset, dtype=torch.float32).reshape(-1, 2),
        torch.tensor(log_size, dtype=torch.float32).reshape(-1, 2),
    )


def focal_loss(
    logit: torch.Tensor, heat: torch.Tensor, alpha: float = 2.0, beta: float = 4.0
) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of camera centres."""
    p = torch.sigmoid(logit).clamp(1e-4, 1 - 1e-4)
    pos = heat.eq(1).float()
    pos_loss = -torch.log(p) * (1 - p) ** alpha * pos
    neg_loss = -torch.log(1 - p) * p**alpha * (1 - heat) ** beta * (1 - pos)
    return (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1)


def detection_loss(
    raw: tuple[torch.Tensor, torch.Tensor, torch.Tensor], items: Sequence[tuple[torch.Tensor, torch.Tensor]]
) -> torch.Tensor:
    """Objectness focal loss + class cross-entropy + box L1 at the camera centres, from
    :meth:`CamidDetector.forward_raw`'s outputs for a batch and its ``(boxes, classes)``."""
    obj, cls, box = raw
    n, k, h, w = cls.shape
    t = build_targets(items, h, w)
    t_heat = t.heat.to(obj.device)
    loss = focal_loss(obj.float(), t_heat)
    if len(t.index):
        idx = t.index.to(obj.device)
        cls_at = cls.float().permute(0, 2, 3, 1).reshape(-1, k)[idx]
        box_at = box.float().permute(0, 2, 3, 1).reshape(-1, 4)[idx]
        loss = loss + nn.functional.cross_entropy(cls_at, t.classes.to(obj.device))
        loss = loss + nn.functional.l1_loss(torch.sigmoid(box_at[:, :2]), t.offset.to(obj.device))
        loss = loss + 0.5 * nn.functional.l1_loss(box_at[:, 2:], t.log_size.to(obj.device))
    return loss
