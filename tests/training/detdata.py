"""Tiny photos with drawn "cameras" (a white disc, a yellow bar) and their boxes, for detector tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from data.boxes import LabeledBox, format_boxes
from data.manifest import Manifest, Record, write_manifest

SIZE = 96
SHAPES = {"huawei_ipc6625_z30": "disc", "huawei_ipc6225_vrz_es": "bar"}

# a detector that learns the drawn cameras in about a minute on 2 cores
DETECTOR_OVERRIDES: dict[str, Any] = {
    "arch": "test_efficientnet", "pretrained": "none", "mode": "detect", "image_size": SIZE,
    "det_crop": 64, "det_freeze_blocks": 0, "det_width": 32, "epochs": 60, "batch_size": 8,
    "lr": 5e-3, "patience": 60, "warmup_epochs": 1, "bootstrap": 50, "flag_precision": 0.6,
}  # fmt: skip


def draw_cameras(rng: np.random.Generator, n_cameras: int) -> tuple[Image.Image, list[LabeledBox]]:
    """A 96 x 72 noisy photo with ``n_cameras`` (0-2) drawn cameras, left and right, and their boxes."""
    arr = np.clip(rng.integers(50, 110, 3) + rng.normal(0, 10, (SIZE * 3 // 4, SIZE, 3)), 0, 255)
    img = Image.fromarray(arr.astype(np.uint8))
    d = ImageDraw.Draw(img)
    boxes: list[LabeledBox] = []
    slots = [(4, 30), (50, 76)]  # left and right half: cameras never overlap
    for k in range(n_cameras):
        label = ["huawei_ipc6625_z30", "huawei_ipc6225_vrz_es"][int(rng.integers(0, 2))]
        x0 = int(rng.integers(*slots[k]))
        y0 = int(rng.integers(6, 50))
        s = int(rng.integers(12, 17))
        if SHAPES[label] == "disc":
            box = (x0, y0, x0 + s, y0 + s)
            d.ellipse(box, fill=(235, 235, 240))
        else:
            box = (x0, y0, x0 + s, y0 + s // 2)
            d.rectangle(box, fill=(240, 200, 40))
        boxes.append(LabeledBox(label, (float(box[0]), float(box[1]), float(box[2]), float(box[3]))))
    return img, boxes


def make_box_manifest(folder: Path, n: int = 96, seed: int = 0) -> Path:
    """``n`` photos with 0, 1, 2 cameras in turn (``boxes`` column); splits 2/3 train, 1/6 val, 1/6 test."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        img, boxes = draw_cameras(rng, [0, 1, 2][i % 3])
        path = folder / f"{i:03d}.jpg"
        img.save(path, quality=92)
        label = boxes[0].label if boxes else "no_camera"
        split = "train" if i < n * 2 // 3 else "val" if i < n * 5 // 6 else "test"
        records.append(
            Record(f"{i:03d}.jpg", label, f"g{i}", split=split, extra={"boxes": format_boxes(boxes)})
        )
    return write_manifest(Manifest(folder, records), folder / "manifest.csv")
