"""report.html of a detector evaluation: headline figures with intervals, recall per size bucket,
AP per class, and galleries of the worst failures (missed cameras per size bucket, largest
first; false cameras, most confident first; right box with the wrong label), each a crop of
the photo around the box with the true cameras in green, look-alikes in orange and the
detector's cameras in red. Self-contained: thumbnails are embedded PNG ``data:`` URIs."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageDraw

from data.boxes import SIZE_BUCKETS, iou
from data.images import load_image
from training.report import CSS, format_ci, image_data_uri

if TYPE_CHECKING:
    from training.deteval import DetEvaluation, PhotoEval

Box = tuple[float, float, float, float]
GREEN, RED, ORANGE = (40, 220, 60), (235, 40, 40), (255, 160, 0)
THUMB = 200


@dataclass(frozen=True)
class Failure:
    """One card of a gallery: the photo, the box to centre on, and the caption."""

    photo: PhotoEval
    box: Box
    caption: str


def crop_window(box: Box, width: int, height: int, context: float = 3.0, min_side: float = 48.0) -> Box:
    """A square around ``box``, ``context`` times its larger side (at least ``min_side`` px),
    shifted to stay inside the ``width`` x ``height`` photo (smaller where the photo is)."""
    side = max(box[2] - box[0], box[3] - box[1]) * context
    side = min(max(side, min_side), float(width), float(height)) or 1.0
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x0 = min(max(cx - side / 2, 0.0), width - side)
    y0 = min(max(cy - side / 2, 0.0), height - side)
    return (x0, y0, x0 + side, y0 + side)


def region_thumbnail(img: Image.Image, photo: PhotoEval, focus: Box, side: int = THUMB) -> Image.Image:
    """The region of ``img`` (the decoded photo) around ``focus`` (photo pixels) at ``side`` px,
    with the photo's true cameras, look-alikes and served cameras drawn."""
    sx, sy = img.width / photo.width, img.height / photo.height
    win = crop_window(focus, photo.width, photo.height)
    crop = img.crop((round(win[0] * sx), round(win[1] * sy), round(win[2] * sx), round(win[3] * sy)))
    scale = side / max(win[2] - win[0], win[3] - win[1])
    out = crop.resize((side, side), Image.Resampling.LANCZOS)
    d = ImageDraw.Draw(out)

    def to_thumb(b: Box) -> Box:
        return (
            (b[0] - win[0]) * scale,
            (b[1] - win[1]) * scale,
            (b[2] - win[0]) * scale,
            (b[3] - win[1]) * scale,
        )

    for b in photo.lookalikes:
        d.rectangle(to_thumb(b.box), outline=ORANGE, width=2)
    for b in photo.truth:
        d.rectangle(to_thumb(b.box), outline=GREEN, width=2)
    for c in photo.finding.cameras:
        t = to_thumb(c.box)
        d.rectangle(t, outline=RED, width=2)
        d.text((t[0] + 2, max(t[1] - 11, 0)), f"{c.confidence:.2f}", fill=RED)
    return out


def _width_pct(box: Box, width: int) -> str:
    return f"{100 * (box[2] - box[0]) / max(width, 1):.1f}% wide"


def _nearby(p: PhotoEval, box: Box, negative: str) -> str:
    from training.deteval import camera_score

    near = [(camera_score(c, negative), iou(c.box, box), c) for c in p.finding.all_candidates]
    near = [n for n in near if n[1] >= 0.1]
    if not near:
        return "no candidate nearby"
    s, v, c = max(near, key=lambda n: n[0])
    return f"nearest candidate {html.escape(c.label)} score {s:.2f}, IoU {v:.2f}"


def missed_by_bucket(ev: DetEvaluation, per_bucket: int = 8) -> dict[str, list[Failure]]:
    """Missed true cameras per size bucket, the largest (relative to the photo) first."""
    from data.boxes import size_bucket

    out: dict[str, list[tuple[float, Failure]]] = {name: [] for name, _, _ in SIZE_BUCKETS}
    for p in ev.photos:
        for j in p.missed:
            b = p.truth[j]
            cap = (
                f"missed {html.escape(b.label)} ({_width_pct(b.box, p.width)})<br>"
                f"{_nearby(p, b.box, ev.labels.negative)}"
            )
            out[size_bucket(b.width, p.width)].append((b.width / p.width, Failure(p, b.box, cap)))
    return {k: [f for _, f in sorted(v, key=lambda x: -x[0])[:per_bucket]] for k, v in out.items()}


def false_cameras(ev: DetEvaluation, k: int = 16) -> list[Failure]:
    """Served cameras that match no true camera, the most confident first."""
    rows: list[tuple[float, Failure]] = []
    iou_min = ev.metrics["settings"]["iou_min"]
    for p in ev.photos:
        if p.unboxed:
            continue
        for c, j in zip(p.finding.cameras, p.matched, strict=True):
            if j >= 0:
                continue
            on = [b for b in p.lookalikes if iou(c.box, b.box) >= iou_min]
            where = f" on a look-alike {html.escape(on[0].kind or on[0].label)}" if on else ""
            cap = f"false {html.escape(c.label)} {c.confidence:.2f}{where} ({_width_pct(c.box, p.width)})"
            rows.append((c.confidence, Failure(p, c.box, cap)))
    return [f for _, f in sorted(rows, key=lambda x: -x[0])[:k]]


def wrong_labels(ev: DetEvaluation, k: int = 8) -> list[Failure]:
    """Served cameras on a true camera's box but with another label, the most confident first."""
    rows: list[tuple[float, Failure]] = []
    for p in ev.photos:
        for c, j in zip(p.finding.cameras, p.matched, strict=True):
            if j >= 0 and c.label != p.truth[j].label:
                cap = f"{html.escape(p.truth[j].label)} seen as {html.escape(c.label)} {c.confidence:.2f}"
                rows.append((c.confidence, Failure(p, p.truth[j].box, cap)))
    return [f for _, f in sorted(rows, key=lambda x: -x[0])[:k]]


def _cards(failures: Sequence[Failure], cache: dict[Path, Image.Image | None]) -> str:
    cards = []
    for f in failures:
        if f.photo.path not in cache:
            try:
                cache[f.photo.path] = load_image(f.photo.path)
            except (OSError, ValueError):
                cache[f.photo.path] = None
        img = cache[f.photo.path]
        tag = (
            f'<img src="{image_data_uri(region_thumbnail(img, f.photo, f.box), "PNG")}" alt="camera region">'
            if img is not None
            else "<div>(unreadable)</div>"
        )
        cards.append(
            f"<figure>{tag}<figcaption>{f.caption}<br><small>{html.escape(f.photo.record.path)}</small>"
            "</figcaption></figure>"
        )
    return "".join(cards) or "<p>None.</p>"


def _v(x: Any) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.3f}"


def _headline(m: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(format_ci(v))}</td></tr>"
        for k, v in m["metrics"].items()
    )
    return f"<table><tr><th>metric</th><th>value [95% CI]</th></tr>{rows}</table>"


def _bucket_table(m: dict[str, Any]) -> str:
    fpp = m["settings"]["false_per_photo"]
    free = (m["recall_at_false"].get("camera_free_photos") or {}).get("by_bucket", {})
    every = m["recall_at_false"]["all_photos"]["by_bucket"]
    rows = ""
    for name, b in m["at_threshold"]["by_bucket"].items():
        rows += (
            f"<tr><td>{html.escape(name)}</td><td>{b['total']}</td><td>{b['found']}</td><td>{_v(b['recall'])}</td>"
            f"<td>{_v(free.get(name, {}).get('recall'))}</td><td>{_v(every[name]['recall'])}</td>"
            f"<td>{b['false_cameras']}</td></tr>"
        )
    return (
        f"<table><tr><th>camera width / photo width</th><th>cameras</th><th>found (model threshold)</th>"
        f"<th>recall</th><th>recall at {fpp} false / camera-free photo</th>"
        f"<th>recall at {fpp} false / photo</th>"
        f"<th>false cameras (their width)</th></tr>{rows}</table>"
    )


def _ap_table(m: dict[str, Any]) -> str:
    n = m["counts"]["cameras_per_class"]
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{_v(v)}</td><td>{n.get(k, 0)}</td></tr>"
        for k, v in m["ap_per_class"].items()
    )
    rows += (
        f"<tr><td>(any camera)</td><td>{_v(m['ap_any_camera'])}</td><td>{m['counts']['cameras']}</td></tr>"
    )
    return f"<table><tr><th>class</th><th>AP</th><th>true cameras</th></tr>{rows}</table>"


def write_detector_report(ev: DetEvaluation, path: Path) -> Path:
    """report.html of a detector evaluation (see the module docstring)."""
    m = ev.metrics
    c, s, data, model = m["counts"], m["settings"], m.get("data", {}), m.get("model", {})
    cache: dict[Path, Image.Image | None] = {}
    misses = missed_by_bucket(ev)
    buckets = m["at_threshold"]["by_bucket"]
    missed_html = "".join(
        f"<h3>{html.escape(name)} ({buckets[name]['total'] - buckets[name]['found']} missed of "
        f"{buckets[name]['total']})</h3>{_cards(failures, cache)}"
        for name, failures in misses.items()
        if buckets[name]["total"]
    )
    th = s.get("camera_threshold")
    body = (
        f"<h1>camid detector evaluation</h1><p>model: {html.escape(str(model.get('path', '')))}<br>"
        f"data: {html.escape(str(data.get('manifest', '')))} "
        f"(hash {html.escape(str(data.get('manifest_hash', '')))}, "
        f"split {html.escape(str(data.get('split', '')))})<br>{c['photos']} photos, {c['cameras']} cameras, "
        f"{c['camera_free_photos']} camera-free photos, {c['lookalikes']} look-alikes, "
        f"{c['unboxed_camera_photos']} camera photos without boxes (photo-level metrics only)<br>"
        f"IoU &ge; {s['iou_min']}; model camera threshold {_v(th)}; "
        f"{m['at_threshold']['false_cameras_on_lookalikes']} false cameras on look-alikes<br>"
        f"{html.escape(m['bootstrap']['note'])}</p>"
        f"<h2>Headline</h2>{_headline(m)}<h2>By camera size</h2>{_bucket_table(m)}"
        f"<h2>AP per class</h2>{_ap_table(m)}"
        "<p>Thumbnails: true cameras green, look-alikes orange, the model's cameras red.</p>"
        f"<h2>Missed cameras</h2>{missed_html or '<p>None.</p>'}"
        f"<h2>False cameras</h2>{_cards(false_cameras(ev), cache)}"
        f"<h2>Right box, wrong label</h2>{_cards(wrong_labels(ev), cache)}"
    )
    page = (
        '<!doctype html><html><head><meta charset="utf-8"><title>camid detector evaluation</title>'
        f"<style>{CSS}figure{{width:{THUMB + 10}px}}img{{max-width:{THUMB}px}}</style></head>"
        f"<body>{body}</body></html>"
    )
    path.write_text(page, encoding="utf-8")
    return path
