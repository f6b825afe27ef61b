"""Detector rows of ``benchmarks/inference.py``: camid's camera pipeline against the naive one.

camid-detect  data.images.load_image(engine.min_side) + serve.engine.Engine.classify: the
              detector and, for a look-then-zoom export, its crops and crop classifier, exactly
              as ``camid predict`` runs them
naive-detect  what a user would write for the same models: PIL full decode, torchvision
              resize/pad/normalise, the torch detector eager, crops cut from the full-size
              photo with PIL and the torch crop classifier eager

With ``all_crops`` both pipelines crop every one of the pair's ``max_proposals`` strongest peaks,
however weak: the pair's worst-case cost per photo, whatever its weights (a trained detector
proposes fewer peaks on a photo without anything camera-like).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import functional as tvf

from data.crops import crop_square
from data.images import load_image
from data.preprocess import placement
from data.zoom import top_proposals
from model.checkpoint import load_any_checkpoint
from model.detector import CamidDetector
from model.factory import CamidNet
from serve.engine import Engine

Stages = tuple[Callable[[Path], Any], Callable[[Any], Any], Callable[[list[Any]], Any]]


class DetectPipelines:
    """``stages(name)`` gives (decode, prepare, run) for ``camid-detect`` and ``naive-detect``."""

    def __init__(
        self, onnx: Path, detector_ckpt: Path, zoom_ckpt: Path | None, all_crops: bool = False
    ) -> None:
        self.engine = Engine.load(onnx)
        if all_crops and self.engine.zoom is not None:
            every_peak = dataclasses.replace(self.engine.zoom.settings, propose=0.0)
            self.engine.zoom = dataclasses.replace(self.engine.zoom, settings=every_peak)
        det, meta = load_any_checkpoint(detector_ckpt)
        assert isinstance(det, CamidDetector), f"{detector_ckpt}: not a detector checkpoint"
        self.detector, self.rule = det.eval(), meta.contract.resize
        zoom = load_any_checkpoint(zoom_ckpt)[0].eval() if zoom_ckpt else None
        assert zoom is None or isinstance(zoom, CamidNet), f"{zoom_ckpt}: not a crop classifier checkpoint"
        self.zoom = zoom
        self.settings = self.engine.zoom.settings if self.engine.zoom is not None else None
        self.crop_size = self.engine.zoom.info.resize.size if self.engine.zoom is not None else 0

    def describe(self) -> str:
        zoom = ""
        if self.zoom is not None and self.settings is not None:
            n = self.settings.max_proposals
            most = f"{n} on every photo" if self.settings.propose == 0.0 else f"up to {n} a photo"
            zoom = f" + zoom crops at {self.crop_size} px ({most})"
        return f"detector @ {self.rule.size}px{zoom}; decode min side {self.engine.min_side}"

    # camid: the serving code itself
    def camid_decode(self, path: Path) -> tuple[Image.Image, tuple[int, int]]:
        with Image.open(path) as im:
            size = im.size
        return load_image(path, min_side=self.engine.min_side), size

    def camid_run(self, items: list[tuple[Image.Image, tuple[int, int]]]) -> object:
        return self.engine.classify([i for i, _ in items], sizes=[s for _, s in items])

    # naive: full decode, torchvision, eager torch
    def naive_decode(self, path: Path) -> Image.Image:
        return Image.open(path).convert("RGB")

    def naive_prep(self, img: Image.Image) -> tuple[Image.Image, torch.Tensor]:
        p = placement(img.width, img.height, self.rule)
        x = tvf.pil_to_tensor(tvf.resize(img, [p.resized[1], p.resized[0]], antialias=True))
        canvas = torch.zeros(3, self.rule.size, self.rule.size, dtype=torch.uint8)
        canvas[:, p.offset[1] : p.offset[1] + p.resized[1], p.offset[0] : p.offset[0] + p.resized[0]] = x
        return img, canvas

    @torch.no_grad()
    def naive_run(self, items: list[tuple[Image.Image, torch.Tensor]]) -> object:
        _, scores, _, boxes = self.detector(torch.stack([x for _, x in items]))
        if self.zoom is None or self.settings is None:
            return scores
        out = []
        for (img, _), s, b in zip(items, scores.numpy(), boxes.numpy(), strict=True):
            picked = top_proposals(s, self.settings)
            p = placement(img.width, img.height, self.rule)
            scale = p.resized[0] / img.width
            crops = []
            for i in picked:
                x0, y0, x1, y1 = ((b[i] - np.array([*p.offset, *p.offset])) / scale).tolist()
                sq = crop_square((x0, y0, x1, y1), img.width, img.height, context=self.settings.context,
                                 min_px=self.settings.min_px)  # fmt: skip
                crop = img.crop((sq[0], sq[1], sq[2], sq[3])).resize((self.crop_size, self.crop_size))
                crops.append(tvf.pil_to_tensor(crop))
            if crops:  # with a box head, the refined boxes come from the same pass
                out.append(self.zoom(torch.stack(crops), boxes=self.zoom.box_head is not None))
        return out

    def stages(self, name: str) -> Stages:
        if name == "naive-detect":
            return self.naive_decode, self.naive_prep, self.naive_run
        return self.camid_decode, lambda item: item, self.camid_run
