"""Draw detector training windows with rendered cutouts pasted in, boxes drawn (a picture for docs).

    .venv/bin/python benchmarks/paste_sheet.py --data renders/det21/manifest.csv \
        --cutouts renders/cutouts31/manifest.csv --out docs/img/paste_windows.jpg

Green: camera boxes, orange: look-alike boxes (negatives), as the detector is taught them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from data.labels import load_labels
from data.manifest import read_manifest
from data.preprocess import ResizeRule
from training.detection import DetectionDataset
from training.paste import IGNORE, Paster, load_cutouts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, required=True, help="detector training manifest")
    ap.add_argument("--cutouts", type=Path, required=True, help="cutouts manifest")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    labels = load_labels()
    manifest = read_manifest(args.data)
    paster = Paster(load_cutouts(args.cutouts, labels), share=1.0, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    records = [manifest.records[int(i)] for i in rng.choice(len(manifest.records), args.n, replace=False)]
    ds = DetectionDataset(manifest, records, labels, ResizeRule(640, "letterbox"), crop=384, seed=args.seed,
                          paster=paster)  # fmt: skip
    tiles = []
    for i in range(len(ds)):
        image, boxes, classes = ds[i]
        tile = Image.fromarray(image.numpy().transpose(1, 2, 0))
        draw = ImageDraw.Draw(tile)
        for b, c in zip(boxes.tolist(), classes.tolist(), strict=True):
            colour = (255, 150, 0) if c == IGNORE else (0, 230, 0)
            draw.rectangle([b[0] - 2, b[1] - 2, b[2] + 2, b[3] + 2], outline=colour, width=2)
        tiles.append(tile)
    cols = 4
    rows = (len(tiles) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * 388, rows * 388), (255, 255, 255))
    for k, tile in enumerate(tiles):
        sheet.paste(tile, ((k % cols) * 388 + 2, (k // cols) * 388 + 2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=88)
    print(f"{args.out}: {len(tiles)} training windows")


if __name__ == "__main__":
    main()
