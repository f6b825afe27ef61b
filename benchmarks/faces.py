"""Are bystanders' faces blurred? Recall per face size and false blurs per photo, for the Haar
cascades the exports used before (#14) and the tiled DNN detector they use now, in one run.

    python benchmarks/faces.py [--data ../shared/data] [--photos 12] [--seed 0]

Photos: 4032x3024 (12 MP) street scenes, each a 4x3 mosaic of StreetComplete photos
(``real/streetcomplete_negatives``, CC0/CC-BY/CC-BY-SA, see the manifest) upscaled to 1008 px;
``--data`` or ``$CAMID_SHARED_DATA`` points at the shared data folder.

Faces: two real photos that ship inside scikit-image (the dev extra), pasted at known boxes with a
feathered oval mask, mirrored at random and dimmed (brightness x0.6-1.1):

- frontal: ``skimage.data.astronaut()`` (Eileen Collins, NASA; public domain);
- turned: ``skimage.data.camera()`` (a man filming, head turned ~60-70 degrees away from the
  viewer, between three-quarter and profile; CC0 by Lav Varshney).

Every photo gets two faces of each kind in each size bucket (face height 20-40, 40-80 and
80-240 px). A face counts as blurred when at least 70 % of its box lies inside the blurred regions
(each detection grown by the blur margin, as the exports do). A false blur is a blurred region
that touches no pasted face (the StreetComplete photos show a few distant pedestrians, whose faces
are too small to find; one found would count as a false blur).

A second table runs both detectors on the real 12 MP camera photos of ``real/undo_cctv_detection``
(nobody in them): every blur there is false, and a blur touching the camera's box (manifest
``bbox``) spoils the photo for training.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from serve.privacy import FACE_CASCADES, MARGIN, Region, detect_cascades, detect_faces

SIZE = (4032, 3024)
CELL = 1008
BUCKETS = {"20-40": (20, 40), "40-80": (40, 80), ">80": (80, 240)}
COVERED = 0.7  # share of a face box that must be blurred
CONTEXT = 0.45  # hair, ears and background pasted around the face box, per side, as a share of it
# (image, face box x0, y0, x1, y1) per kind; boxes drawn by hand from hairline to chin
FACE_BOXES = {"frontal": (176, 60, 276, 176), "turned": (168, 92, 258, 200)}


@dataclass(frozen=True)
class Face:
    bucket: str
    kind: str
    box: tuple[int, int, int, int]


def face_sources() -> dict[str, Image.Image]:
    """The two face photos from scikit-image's bundled data (no download)."""
    from skimage import data as skdata

    return {
        "frontal": Image.fromarray(skdata.astronaut()).convert("RGB"),
        "turned": Image.fromarray(skdata.camera()).convert("RGB"),
    }


def face_sprite(
    src: Image.Image, box: tuple[int, int, int, int], height: int, rng: random.Random
) -> tuple[Image.Image, Image.Image, tuple[int, int, int, int]]:
    """The face scaled to ``height`` px, its paste mask and the face box inside the sprite."""
    x0, y0, x1, y1 = box
    fw, fh = x1 - x0, y1 - y0
    crop = src.crop(
        (
            round(x0 - CONTEXT * fw),
            round(y0 - CONTEXT * fh),
            round(x1 + CONTEXT * fw),
            round(y1 + CONTEXT * fh),
        )
    )
    s = height / fh
    sprite = crop.resize(
        (max(1, round(crop.width * s)), max(1, round(crop.height * s))), Image.Resampling.LANCZOS
    )
    if rng.random() < 0.5:
        sprite = sprite.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    sprite = ImageEnhance.Brightness(sprite).enhance(rng.uniform(0.6, 1.1))
    w, h = sprite.size
    mask = Image.new("L", sprite.size, 0)
    ImageDraw.Draw(mask).ellipse((0.08 * w, 0.04 * h, 0.92 * w, 0.97 * h), fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(max(1.0, w / 20)))
    fx, fy = round(CONTEXT * fw * s), round(CONTEXT * fh * s)
    return sprite, mask, (fx, fy, fx + round(fw * s), fy + round(fh * s))


def street_mosaic(paths: list[Path], rng: random.Random) -> Image.Image:
    """A 12 MP photo made of upscaled street photos."""
    out = Image.new("RGB", SIZE)
    for row in range(SIZE[1] // CELL):
        for col in range(SIZE[0] // CELL):
            with Image.open(rng.choice(paths)) as im:
                out.paste(
                    im.convert("RGB").resize((CELL, CELL), Image.Resampling.LANCZOS), (col * CELL, row * CELL)
                )
    return out


def make_photo(
    paths: list[Path], sources: dict[str, Image.Image], rng: random.Random, per_kind: int = 1
) -> tuple[Image.Image, list[Face]]:
    """A street mosaic with ``per_kind`` faces of each kind in each size bucket, at known boxes."""
    img = street_mosaic(paths, rng)
    faces: list[Face] = []
    taken: list[tuple[int, int, int, int]] = []
    for bucket, (lo, hi) in BUCKETS.items():
        for kind in sorted(sources) * per_kind:
            sprite, mask, (fx0, fy0, fx1, fy1) = face_sprite(
                sources[kind], FACE_BOXES[kind], round(rng.uniform(lo, hi)), rng
            )
            for _ in range(200):  # a free spot (sprites never overlap)
                x, y = rng.randrange(SIZE[0] - sprite.width), rng.randrange(SIZE[1] - sprite.height)
                spot = (x, y, x + sprite.width, y + sprite.height)
                if not any(_touches(spot, t) for t in taken):
                    break
            taken.append(spot)
            img.paste(sprite, (x, y), mask)
            faces.append(Face(bucket, kind, (x + fx0, y + fy0, x + fx1, y + fy1)))
    return img, faces


def _touches(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return not (a[2] <= b[0] or a[0] >= b[2] or a[3] <= b[1] or a[1] >= b[3])


def _grown(r: Region) -> tuple[float, float, float, float]:
    dx, dy = r.w * MARGIN, r.h * MARGIN
    return (r.x - dx, r.y - dy, r.x + r.w + dx, r.y + r.h + dy)


def covered(face: tuple[int, int, int, int], regions: list[Region]) -> float:
    """The share of ``face`` that the blur of ``regions`` covers."""
    x0, y0, x1, y1 = face
    mask = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    for r in regions:
        a0, b0, a1, b1 = _grown(r)
        c0, r0 = max(0, int(a0) - x0), max(0, int(b0) - y0)
        c1, r1 = min(x1, int(np.ceil(a1))) - x0, min(y1, int(np.ceil(b1))) - y0
        if c1 > c0 and r1 > r0:
            mask[r0:r1, c0:c1] = True
    return float(mask.mean())


def cascades(img: Image.Image) -> list[Region]:
    """Before #14: the frontal and profile Haar cascades on a 1024 px copy."""
    return detect_cascades(img, FACE_CASCADES)


def dnn_tiled(img: Image.Image) -> list[Region]:
    """Now: the DNN face detector on full-resolution tiles and halved copies."""
    return [
        Region("face", round(b.x0), round(b.y0), round(b.x1 - b.x0), round(b.y1 - b.y0))
        for b in detect_faces(img)
    ]


DETECTORS: dict[str, Callable[[Image.Image], list[Region]]] = {"cascades": cascades, "dnn-tiled": dnn_tiled}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = Path(
        os.environ.get("CAMID_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared/data")
    )
    p.add_argument("--data", type=Path, default=default_data, help="the shared data folder (holds real/)")
    p.add_argument("--photos", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", type=Path, help="write the first photo with its face boxes drawn here")
    args = p.parse_args(argv)
    folder = args.data / "real" / "streetcomplete_negatives" / "images"
    paths = sorted(folder.glob("*.jpg"))
    if not paths:
        p.error(f"{folder}: no street photos (*.jpg); pass --data or set CAMID_SHARED_DATA")
    sources, rng = face_sources(), random.Random(args.seed)
    hits = {name: {(b, k): 0 for b in BUCKETS for k in sources} for name in DETECTORS}
    total = dict.fromkeys(hits["cascades"], 0)
    false_blurs, seconds = dict.fromkeys(DETECTORS, 0), dict.fromkeys(DETECTORS, 0.0)
    for i in range(args.photos):
        img, faces = make_photo(paths, sources, rng)
        for f in faces:
            total[f.bucket, f.kind] += 1
        for name, detect in DETECTORS.items():
            start = time.perf_counter()
            regions = detect(img)
            seconds[name] += time.perf_counter() - start
            for f in faces:
                hits[name][f.bucket, f.kind] += covered(f.box, regions) >= COVERED
            false_blurs[name] += sum(not any(_touches(_grown(r), f.box) for f in faces) for r in regions)
        if i == 0 and args.save:
            draw = ImageDraw.Draw(img)
            for f in faces:
                draw.rectangle(f.box, outline=(255, 0, 0), width=3)
            img.save(args.save, quality=90)
    _print_table(hits, total, false_blurs, seconds, args.photos)
    _real_camera_photos(args.data / "real")
    return 0


def _real_camera_photos(real: Path) -> None:
    """False blurs on real, unscaled 12 MP photos of cameras with nobody in them, and blurs on the camera."""
    from data.images import load_image

    rows = []
    with (real / "manifest.csv").open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["path"].startswith("undo_cctv_detection/images/")]
    if not rows:
        print(f"(no real 12 MP camera photos under {real}/undo_cctv_detection: second table skipped)")
        return
    print(f"\n{len(rows)} real camera photos (undo_cctv_detection, 12 MP, nobody in them)")
    print(f"{'detector':>10} {'false/photo':>11} {'on the camera':>13} {'s/photo':>8}")
    for name, detect in DETECTORS.items():
        blurs = on_camera = 0
        took = 0.0
        for row in rows:
            img = load_image(real / row["path"])
            start = time.perf_counter()
            regions = detect(img)
            took += time.perf_counter() - start
            blurs += len(regions)
            if row.get("bbox"):
                x0, y0, x1, y1 = (float(v) for v in row["bbox"].split())
                on_camera += sum(_touches(_grown(r), (x0, y0, x1, y1)) for r in regions)
        print(f"{name:>10} {blurs / len(rows):>11.2f} {on_camera:>13} {took / len(rows):>8.2f}")


def _print_table(
    hits: dict[str, dict[tuple[str, str], int]],
    total: dict[tuple[str, str], int],
    false_blurs: dict[str, int],
    seconds: dict[str, float],
    photos: int,
) -> None:
    cols = list(total)
    print(f"{photos} photos of {SIZE[0]}x{SIZE[1]}; recall = faces blurred / faces pasted")
    head = " ".join(f"{b + ' ' + k:>14}" for b, k in cols)
    print(f"{'detector':>10} {head} {'all':>9} {'false/photo':>11} {'s/photo':>8}")
    for name, h in hits.items():
        cells = " ".join(f"{f'{h[c]}/{total[c]} {h[c] / total[c]:.2f}':>14}" for c in cols)
        found, n = sum(h.values()), sum(total.values())
        tail = f"{found / n:>9.2f} {false_blurs[name] / photos:>11.2f} {seconds[name] / photos:>8.2f}"
        print(f"{name:>10} {cells} {tail}")
    base = max(1, sum(hits["cascades"].values()))
    print(f"dnn-tiled blurs {sum(hits['dnn-tiled'].values()) / base:.1f}x as many faces as the cascades")


if __name__ == "__main__":
    raise SystemExit(main())
