"""Cut-paste for the camera detector: rendered installations pasted into its training windows.

A full street render costs tens of CPU-seconds and teaches a handful of far cameras; a cutout
(``camid data synth --cutouts``: one pole with its cameras and look-alikes on a transparent
film, about a second at 256 px) can be pasted at any size into any window. ``Paster`` puts
1 to ``max_per_window`` cutouts into a share of the training windows, each scaled so that its
widest camera (or look-alike) spans a width drawn log-uniformly from ``px_range`` input pixels
(far cameras: 1-7 % of a 640-px input), anywhere in the window but never over a box already
there. Pasting happens after the window is cut and flipped and before the colour, blur, noise
and JPEG augmentations, so pasted pixels and the window's own pixels get the same optics and
"pasted" does not tell the class: look-alike cutouts are pasted the same way as cameras.

``paste_centred`` puts one object of a cutout (a camera or a look-alike) at a given centre and
width: the crop classifier's pasted crops (``training/zoom.py:pasted_patches``). Both paths share
``sprite`` (scale, slight blur) and ``blend`` (alpha, exposure gain).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from torch.utils.data import get_worker_info

from data.boxes import iou, record_boxes
from data.labels import LabelSet
from data.manifest import read_manifest

log = logging.getLogger(__name__)
IGNORE = -1  # class index of a look-alike box: a negative, not a target
OPAQUE = 8  # alpha above this counts as part of the cutout
MIN_VISIBLE = 0.4  # a pasted box cut by the window's edge is kept when this share is inside


@dataclass(frozen=True)
class Cutout:
    """One rendered installation: RGBA pixels cropped to what is visible, and its boxes in them."""

    rgba: np.ndarray  # [H, W, 4] uint8
    boxes: np.ndarray  # [M, 4] float32, pixels of ``rgba``
    classes: np.ndarray  # [M] int64, camera index or IGNORE

    @property
    def reference(self) -> int:
        """The widest camera box (the widest look-alike when there is none): it is scaled to the
        drawn width and placed in the window."""
        widths = self.boxes[:, 2] - self.boxes[:, 0]
        cameras = self.classes != IGNORE
        if cameras.any():
            widths = np.where(cameras, widths, -1.0)
        return int(np.argmax(widths))


def load_cutouts(manifest_path: str | Path, labels: LabelSet, key: str = "det_paste_from") -> list[Cutout]:
    """Every cutout of a ``--cutouts`` set that shows at least one box; raises ``ValueError`` naming
    the file when a picture has no transparency (not a cutout) or the set has no usable cutout,
    and, when the manifest is missing, the command that renders it and the config ``key`` to give."""
    if not Path(manifest_path).exists():
        raise ValueError(
            f"{manifest_path}: no cutouts manifest; render the cutouts first (`camid data synth "
            f"--cutouts --out DIR --n 300 --size 256`) and give {key} DIR/manifest.csv"
        )
    manifest = read_manifest(Path(manifest_path))
    out = []
    for r in manifest.records:
        boxes = record_boxes(r)
        if not boxes:
            continue
        path = manifest.resolve(r)
        with Image.open(path) as im:
            if im.mode != "RGBA":
                raise ValueError(
                    f"{path}: {im.mode} picture, not a transparent cutout (camid data synth --cutouts)"
                )
            rgba = np.asarray(im)
        ys, xs = np.nonzero(rgba[:, :, 3] > OPAQUE)
        if not len(xs):
            continue
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        b = np.array([bx.box for bx in boxes], dtype=np.float32) - np.array(
            [x0, y0, x0, y0], dtype=np.float32
        )
        cls = [labels.cameras.index(bx.label) if bx.label in labels.cameras else IGNORE for bx in boxes]
        crop = fade_cut_edges(
            rgba[y0:y1, x0:x1], (x0 == 0, y0 == 0, x1 == rgba.shape[1], y1 == rgba.shape[0])
        )
        out.append(Cutout(crop, b, np.array(cls, dtype=np.int64)))
    if not out:
        raise ValueError(
            f"{manifest_path}: no cutout with a box to paste (render with camid data synth --cutouts)"
        )
    log.info("cut-paste: %d cutouts from %s", len(out), manifest_path)
    return out


def fade_cut_edges(rgba: np.ndarray, cut: tuple[bool, bool, bool, bool], share: float = 0.12) -> np.ndarray:
    """A copy whose alpha fades to 0 over ``share`` of the size towards each side in ``cut``
    (left, top, right, bottom): where the render's frame cut the pole, so that a pasted pole
    fades out instead of ending in a straight line."""
    out = np.array(rgba, copy=True)
    h, w = out.shape[:2]
    ramp_x = np.ones(w, dtype=np.float32)
    ramp_y = np.ones(h, dtype=np.float32)
    nx, ny = max(1, int(w * share)), max(1, int(h * share))
    fade_x, fade_y = (
        (np.arange(nx, dtype=np.float32) + 0.5) / nx,
        (np.arange(ny, dtype=np.float32) + 0.5) / ny,
    )
    if cut[0]:
        ramp_x[:nx] = np.minimum(ramp_x[:nx], fade_x)
    if cut[2]:
        ramp_x[w - nx :] = np.minimum(ramp_x[w - nx :], fade_x[::-1])
    if cut[1]:
        ramp_y[:ny] = np.minimum(ramp_y[:ny], fade_y)
    if cut[3]:
        ramp_y[h - ny :] = np.minimum(ramp_y[h - ny :], fade_y[::-1])
    out[:, :, 3] = np.round(out[:, :, 3] * ramp_y[:, None] * ramp_x[None, :]).astype(np.uint8)
    return out


def _hides(alpha: np.ndarray, ox: int, oy: int, boxes: Sequence[Sequence[float]], most: float = 0.2) -> bool:
    """Whether a sprite whose ``alpha`` [h, w] (0-255) sits at ``(ox, oy)`` covers more than
    ``most`` of any of ``boxes`` (a pole across a camera already in the window)."""
    h, w = alpha.shape
    for b in boxes:
        x0, y0 = max(int(b[0]), ox), max(int(b[1]), oy)
        x1, y1 = min(math.ceil(b[2]), ox + w), min(math.ceil(b[3]), oy + h)
        if x1 <= x0 or y1 <= y0:
            continue
        covered = float(alpha[y0 - oy : y1 - oy, x0 - ox : x1 - ox].sum()) / 255.0
        if covered > most * max((b[2] - b[0]) * (b[3] - b[1]), 1.0):
            return True
    return False


class Paster:
    """Pastes cutouts into a share of the windows (own RNG, seeded: the same seed, the same pastes;
    with DataLoader workers, one stream per worker)."""

    def __init__(
        self,
        cutouts: Sequence[Cutout],
        share: float,
        px_range: tuple[float, float] = (5.0, 48.0),
        max_per_window: int = 3,
        seed: int = 0,
    ) -> None:
        if not cutouts:
            raise ValueError("no cutouts to paste")
        if not 0.0 <= share <= 1.0 or not 0 < px_range[0] <= px_range[1] or max_per_window < 1:
            raise ValueError(f"paste share {share}, px_range {px_range}, max_per_window {max_per_window}")
        self.cutouts, self.share, self.px_range = list(cutouts), share, px_range
        self.max_per_window = max_per_window
        self.seed = seed
        self._rng: np.random.Generator | None = None

    @property
    def rng(self) -> np.random.Generator:
        """The paste stream, made in the process that pastes: each DataLoader worker has its own."""
        if self._rng is None:
            worker = get_worker_info()
            self._rng = np.random.default_rng([self.seed, worker.id if worker is not None else 0])
        return self._rng

    def __call__(
        self, image: np.ndarray, boxes: list[list[float]], classes: list[int]
    ) -> tuple[np.ndarray, list[list[float]], list[int]]:
        """``image`` [H, W, 3] uint8 with its boxes and classes, maybe with cutouts pasted in (a
        copy; ``image`` is left as it is)."""
        if self.rng.random() >= self.share:
            return image, boxes, classes
        out, boxes, classes = image.copy(), list(boxes), list(classes)
        for _ in range(int(self.rng.integers(1, self.max_per_window + 1))):
            cut = self.cutouts[int(self.rng.integers(0, len(self.cutouts)))]
            self._paste_one(out, cut, boxes, classes)
        return out, boxes, classes

    def _paste_one(self, out: np.ndarray, cut: Cutout, boxes: list[list[float]], classes: list[int]) -> None:
        lo, hi = self.px_range
        ref = cut.reference
        width = math.exp(self.rng.uniform(math.log(lo), math.log(hi)))
        pixels, (sx, sy) = sprite(cut, width / float(cut.boxes[ref, 2] - cut.boxes[ref, 0]), self.rng)
        win_h, win_w = out.shape[:2]
        cx, cy = (
            (cut.boxes[ref, 0] + cut.boxes[ref, 2]) / 2 * sx,
            (cut.boxes[ref, 1] + cut.boxes[ref, 3]) / 2 * sy,
        )
        new = cut.boxes * np.array([sx, sy, sx, sy], dtype=np.float32)
        for _ in range(5):  # a place that hides no box already in the window and boxes none of it
            ox = int(self.rng.uniform(0, win_w) - cx)
            oy = int(self.rng.uniform(0, win_h) - cy)
            placed = new + np.array([ox, oy, ox, oy], dtype=np.float32)
            clear = not any(iou(b, e) > 0 for b in placed.tolist() for e in boxes)
            if clear and not _hides(pixels[:, :, 3], ox, oy, boxes):
                break
        else:
            return
        if not blend(out, pixels, ox, oy, float(self.rng.uniform(0.8, 1.2))):
            return
        for b, c in zip(placed.tolist(), cut.classes.tolist(), strict=True):
            clipped = [max(b[0], 0.0), max(b[1], 0.0), min(b[2], float(win_w)), min(b[3], float(win_h))]
            area = (b[2] - b[0]) * (b[3] - b[1])
            inside = max(clipped[2] - clipped[0], 0.0) * max(clipped[3] - clipped[1], 0.0)
            if (
                area > 0
                and inside / area >= MIN_VISIBLE
                and min(clipped[2] - clipped[0], clipped[3] - clipped[1]) >= 1
            ):
                boxes.append(clipped)
                classes.append(int(c))


def sprite(cut: Cutout, scale: float, rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, float]]:
    """The cutout resized by ``scale`` (alpha-weighted; half the time slightly blurred, as a far
    object is): float32 RGBA ``[h, w, 4]`` and the exact ``(sx, sy)`` scale of its boxes."""
    h, w = cut.rgba.shape[:2]
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    img = Image.fromarray(cut.rgba).resize((sw, sh), Image.Resampling.LANCZOS)
    if rng.random() < 0.5:
        radius = float(rng.uniform(0.3, 0.8))  # premultiplied: no dark fringe
        img = img.convert("RGBa").filter(ImageFilter.GaussianBlur(radius)).convert("RGBA")
    return np.asarray(img, dtype=np.float32), (sw / w, sh / h)


def blend(out: np.ndarray, pixels: np.ndarray, ox: int, oy: int, gain: float) -> bool:
    """Alpha-blend a sprite (float RGBA) into ``out`` [H, W, 3] uint8 in place with its top-left
    corner at ``(ox, oy)`` and its colours times ``gain`` (render and photo exposures differ);
    False when it lands wholly outside."""
    sh, sw = pixels.shape[:2]
    win_h, win_w = out.shape[:2]
    x0, y0, x1, y1 = max(ox, 0), max(oy, 0), min(ox + sw, win_w), min(oy + sh, win_h)
    if x1 <= x0 or y1 <= y0:
        return False
    px = pixels[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
    alpha = px[:, :, 3:4] / 255.0
    region = out[y0:y1, x0:x1]  # only the pasted region is blended, in float
    mixed = alpha * np.minimum(px[:, :, :3] * gain, 255.0) + (1.0 - alpha) * region
    region[:] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    return True


def paste_centred(
    image: np.ndarray,
    cut: Cutout,
    centre: tuple[float, float],
    width: float,
    rng: np.random.Generator,
    ref: int | None = None,
) -> tuple[float, float, float, float]:
    """Paste ``cut`` into ``image`` [H, W, 3] uint8 (in place) so that its box ``ref`` (default:
    its reference box) is ``width`` pixels wide and centred on ``centre``; return that box in
    ``image`` pixels."""
    ref = cut.reference if ref is None else ref
    pixels, (sx, sy) = sprite(cut, width / float(cut.boxes[ref, 2] - cut.boxes[ref, 0]), rng)
    b = cut.boxes[ref] * np.array([sx, sy, sx, sy], dtype=np.float32)
    ox = round(centre[0] - (b[0] + b[2]) / 2)
    oy = round(centre[1] - (b[1] + b[3]) / 2)
    blend(image, pixels, ox, oy, float(rng.uniform(0.8, 1.2)))
    return (float(b[0] + ox), float(b[1] + oy), float(b[2] + ox), float(b[3] + oy))
