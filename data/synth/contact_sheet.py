"""Contact sheet of synthetic renders (Pillow only): a grid of tiles with the label under each."""

from __future__ import annotations

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
