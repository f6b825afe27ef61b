"""Contact sheets (Pillow only): a grid of renders with the label under each, and the blind
test: renders and real photos shuffled together, numbered, with the answer key kept apart.

    python -m data.synth.contact_sheet --renders RENDERS/manifest.csv \
        --real ../shared/data/real/manifest.csv --out docs/img/renders_vs_real.jpg \
        --real-from streetcomplete_negatives undo_cctv_detection
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from data.manifest import read_manifest


def pick_across_classes(labels: list[str], n: int) -> list[int]:
    """Indices of ``n`` rows taken round-robin across labels (keeps the manifest order inside one)."""
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    queues = [list(v) for _, v in sorted(by_label.items())]
    out: list[int] = []
    while len(out) < n and any(queues):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop(0))
    return out


def contact_sheet(
    manifest: str | Path,
    out_png: str | Path,
    n: int = 48,
    tile: int = 160,
    cols: int = 8,
    max_bytes: int = 1_000_000,
) -> Path:
    """Write a PNG grid of ``n`` images from a manifest with ``label · condition`` under each tile."""
    m = read_manifest(manifest)
    picks = pick_across_classes([r.label for r in m.records], n)
    rows = (len(picks) + cols - 1) // cols
    caption = 14
    sheet = Image.new("RGB", (cols * tile, rows * (tile + caption)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for k, i in enumerate(picks):
        rec = m.records[i]
        with Image.open(m.resolve(rec)) as im:
            thumb = im.convert("RGB").resize((tile, tile), Image.Resampling.LANCZOS)
        x, y = (k % cols) * tile, (k // cols) * (tile + caption)
        sheet.paste(thumb, (x, y))
        text = rec.label.replace("huawei_", "") + " · " + rec.extra.get("condition", "")
        draw.text((x + 3, y + tile + 1), text, fill=(0, 0, 0), font=font)
    return save_small_png(sheet, Path(out_png), max_bytes)


def save_small_png(img: Image.Image, out: Path, max_bytes: int) -> Path:
    """Save as PNG; if larger than ``max_bytes``, save a 256-colour dithered version instead."""
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out, optimize=True)
    if out.stat().st_size > max_bytes:
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(
            out, optimize=True
        )
    return out


def square_tile(path: Path, side: int) -> Image.Image:
    """The photo's central square at ``side`` pixels (no caption, nothing that gives it away)."""
    with Image.open(path) as opened:
        im = opened.convert("RGB")
        short = min(im.size)
        left, top = (im.width - short) // 2, (im.height - short) // 2
        return im.crop((left, top, left + short, top + short)).resize((side, side), Image.Resampling.LANCZOS)


def blind_sheet(
    renders: str | Path,
    real: str | Path,
    out_png: str | Path,
    n_renders: int = 24,
    n_real: int = 8,
    tile: int = 224,
    cols: int = 8,
    seed: int = 0,
    real_from: tuple[str, ...] = (),
) -> list[dict[str, str]]:
    """Renders (across classes) and real photos (at random) shuffled into one numbered grid;
    returns the answer key (tile number, ``render``/``real``, label, path) and writes it beside
    the picture as ``.key.json`` (an ``out_png`` ending in .jpg is written as a full-colour JPEG).
    ``real_from``: draw the real photos only from rows whose path starts with one of these
    folders (photos of the scenes the renders show, so that the subject does not tell a real
    photo from a render); empty means every row."""
    rm, qm = read_manifest(renders), read_manifest(real)
    pool = [r for r in qm.records if not real_from or r.path.startswith(real_from)]
    if len(pool) < n_real:
        raise ValueError(
            f"{real}: {len(pool)} real photos under {', '.join(real_from) or '.'}, {n_real} needed"
        )
    picks = [
        ("render", rm, rm.records[i]) for i in pick_across_classes([r.label for r in rm.records], n_renders)
    ]
    rng = random.Random(seed)
    picks += [("real", qm, r) for r in rng.sample(pool, n_real)]
    rng.shuffle(picks)
    rows = (len(picks) + cols - 1) // cols
    number = 16
    sheet = Image.new("RGB", (cols * tile, rows * (tile + number)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    key = []
    for k, (kind, m, rec) in enumerate(picks):
        x, y = (k % cols) * tile, (k // cols) * (tile + number)
        sheet.paste(square_tile(m.resolve(rec), tile), (x, y))
        draw.text((x + 3, y + tile + 2), str(k + 1), fill=(0, 0, 0), font=font)
        key.append(
            {"tile": str(k + 1), "kind": kind, "label": rec.label, "path": rec.path, "license": rec.license}
        )
    out = Path(out_png)
    if out.suffix.lower() in (".jpg", ".jpeg"):  # full colour: a 256-colour PNG bands every sky
        out.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(out, quality=90, subsampling=0)
    else:
        out = save_small_png(sheet, out, max_bytes=1_000_000)
    out.with_suffix(".key.json").write_text(json.dumps(key, indent=1), encoding="utf-8")
    return key


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="renders and real photos shuffled into one numbered sheet")
    p.add_argument("--renders", type=Path, required=True, help="a render set's manifest.csv")
    p.add_argument("--real", type=Path, required=True, help="a manifest of real photos")
    p.add_argument("--out", type=Path, required=True, help="the PNG to write (the key goes beside it)")
    p.add_argument("--n-renders", type=int, default=24)
    p.add_argument("--n-real", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--real-from",
        nargs="+",
        default=[],
        metavar="FOLDER",
        help="draw the real photos only from these folders of the real manifest (e.g. street "
        "scenes and surveillance cameras, not close-ups of handheld cameras), so that content "
        "does not give them away",
    )
    args = p.parse_args(argv)
    for path in (args.renders, args.real):
        if not path.is_file():
            print(f"{path}: no such manifest", file=sys.stderr)  # noqa: T201
            return 2
    try:
        key = blind_sheet(
            args.renders, args.real, args.out, args.n_renders, args.n_real, seed=args.seed,
            real_from=tuple(f.rstrip("/") + "/" for f in args.real_from),
        )  # fmt: skip
    except ValueError as e:
        print(e, file=sys.stderr)  # noqa: T201
        return 2
    real = ", ".join(k["tile"] for k in key if k["kind"] == "real")
    print(f"wrote {args.out} ({len(key)} tiles); the real photos are tiles {real}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
