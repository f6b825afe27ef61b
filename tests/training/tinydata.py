"""Tiny generated photos of 4 classes (distinct colours and shapes) for the training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from data.labels import load_labels
from data.manifest import Manifest, Record, write_manifest

COLOURS = [(230, 230, 235), (240, 200, 40), (40, 90, 220), (60, 160, 70)]
TINY_ARCH = "test_efficientnet"


def draw_photo(class_index: int, seed: int, size: int = 64) -> Image.Image:
    """A class-specific shape and colour on a noisy background."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(60, 120, 3)
    arr = np.clip(bg + rng.normal(0, 12, (size, size + 16, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr)
    d = ImageDraw.Draw(img)
    cx, cy = int(rng.integers(20, size - 4)), int(rng.integers(18, size - 18))
    r = int(rng.integers(10, 16))
    colour = tuple(int(c) for c in COLOURS[class_index])
    if class_index == 0:
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif class_index == 1:
        d.rectangle((cx - 2 * r, cy - r // 2, cx + r, cy + r // 2), fill=colour)
    elif class_index == 2:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    else:
        d.line((cx - r, cy - r, cx + r, cy + r), fill=colour, width=5)
    return img


def make_manifest(folder: Path, per_class: int = 14, split: bool = True, seed: int = 0) -> Path:
    """Photos in ``folder/LABEL/``; two photos per group; splits 8/3/3 of 14 by group."""
    labels = load_labels().names
    records = []
    for ci, label in enumerate(labels):
        for i in range(per_class):
            path = folder / label / f"{i:03d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            draw_photo(ci, seed * 10_000 + ci * 1000 + i).save(path, quality=90)
            frac = i / per_class
            s = ("train" if frac < 0.58 else "val" if frac < 0.79 else "test") if split else None
            records.append(
                Record(path=f"{label}/{i:03d}.jpg", label=label, group=f"{label}-{i // 2}", split=s)
            )
    return write_manifest(Manifest(folder, records), folder / "manifest.csv")


TINY_OVERRIDES = {
    "arch": TINY_ARCH,
    "pretrained": "none",
    "image_size": 64,
    "epochs": 2,
    "batch_size": 16,
    "views_per_image": 2,
    "bootstrap": 50,
    "lr": 1e-2,
}
