"""Localization benchmark: camera-finding approaches side by side on the same photos.

    .venv/bin/python benchmarks/localization.py \
        --model detector=runs/det.onnx --model zoom=runs/pair.onnx \
        --renders HELDOUT/manifest.csv --real ../shared/data/real/manifest.csv --out /tmp/loc

Each ``--model NAME=FILE`` is an exported ONNX model (a detector, or a detector with its zoom
crop classifier), run exactly as the server runs it (``training.deteval.engine_finder``). Three
data sets, each reported on its own (renders never mixed with real photos):

  (i)   held-out renders at phone resolution (``camid data synth --framing far --size 1600``):
        cameras whose box is 1-5 % of the photo width found at the model's own threshold
        (IoU >= ``--renders-iou``, 0.5: the rendered boxes are exact), and false cameras per photo
        without a camera;
  (ii)  the real photos that have boxes: cameras found at IoU >= ``--real-iou`` (0.3: the given
        boxes are approximate) and false cameras on the handheld-camera look-alikes;
  (iii) all real photos, photo level: camera photos called a camera, no-camera photos kept
        (handheld cameras apart).

Photos any of the models trained or validated on (the train and val rows of the manifest each
model's contract names in ``trained_on``, its zoom stage's too), and photos of the same groups
(crops of those photos), are left out of every set, for every model, and counted: a detector
trained on some real photos without a camera is measured on the others, and all models on the
same photos.

Intervals: 95 % bootstrap over groups (camera/scene). Every model's full evaluation (metrics.json,
cameras.jsonl, report.html with the worst misses) is written under ``--out/NAME/SET``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from data.boxes import SIZE_BUCKETS, iou, record_boxes, size_bucket
from data.manifest import Manifest, Record, read_manifest
from data.merge import source_group
from serve.engine import Engine
from training.deteval import (
    DetEvaluation,
    PhotoEval,
    camera_score,
    engine_finder,
    evaluate_cameras,
    servable,
    write_outputs,
)
from training.detmetrics import Found, PhotoTruth, match
from training.metrics import bootstrap_intervals

log = logging.getLogger(__name__)
SMALL = (0.01, 0.05)  # box width as a fraction of the photo width
TOP = 6  # the candidates a look-then-zoom pair reads: its zoom_max_proposals


def _interval(
    values: Callable[[np.ndarray], dict[str, float]], photos: Sequence[PhotoEval], n_boot: int
) -> dict[str, tuple[float, float]]:
    groups = [p.record.group or str(p.path) for p in photos]
    return bootstrap_intervals(values, len(photos), groups, n_boot, 0)


def small_camera_figures(
    photos: Sequence[PhotoEval], n_boot: int, small: tuple[float, float] = SMALL
) -> dict[str, Any]:
    """Recall of cameras ``small`` (1-5 %) of the photo width and false cameras per camera-free
    photo, at the served threshold."""
    found = np.zeros(len(photos))
    total = np.zeros(len(photos))
    false = np.zeros(len(photos))
    free = np.array([p.camera_free for p in photos])
    for i, p in enumerate(photos):
        hit = set(p.matched)
        for j, b in enumerate(p.truth):
            if small[0] <= b.width / p.width < small[1]:
                total[i] += 1
                found[i] += j in hit
        false[i] = sum(j < 0 for j in p.matched)

    def values(idx: np.ndarray) -> dict[str, float]:
        t, f = total[idx].sum(), free[idx]
        return {
            "small_recall": float(found[idx].sum() / t) if t else float("nan"),
            "false_per_free_photo": float(false[idx][f].sum() / f.sum()) if f.any() else float("nan"),
        }

    point = values(np.arange(len(photos)))
    ci = _interval(values, photos, n_boot)
    return {
        "small_found": int(found.sum()),
        "small_total": int(total.sum()),
        "camera_free_photos": int(free.sum()),
        **{k: {"value": v, "ci95": list(ci[k])} for k, v in point.items()},
    }


def where_lost(
    photos: Sequence[PhotoEval], negative: str, iou_min: float, threshold: float, top: int = TOP
) -> dict[str, dict[str, int]]:
    """Where each true camera is lost, by size bucket: ``total``; ``touched``: one of the ``top``
    surest candidates has its box centre on the camera (what a look-then-zoom pair's crop
    classifier gets to read); ``boxed``: one of them has IoU >= ``iou_min``; ``found``: a candidate
    scoring at least ``threshold`` (the one that allows <= 0.1 false cameras per camera-free
    photo) matches it at IoU >= ``iou_min``, as ``recall_at_false`` counts it."""
    out = {name: dict.fromkeys(("total", "touched", "boxed", "found"), 0) for name, _, _ in SIZE_BUCKETS}
    for p in photos:
        if p.unboxed or not p.truth:
            continue
        ranked = sorted(p.finding.all_candidates, key=lambda c: -camera_score(c, negative))
        surest = ranked[:top]
        kept = [Found(c.box, "camera", camera_score(c, negative)) for c in ranked]
        kept = [f for f in kept if f.score >= threshold]
        truth = PhotoTruth(tuple((b.box, "camera") for b in p.truth), p.width)
        hits = set(match(kept, truth, iou_min, by_label=False))
        for j, b in enumerate(p.truth):
            row = out[size_bucket(b.box[2] - b.box[0], p.width)]
            row["total"] += 1
            row["touched"] += any(
                b.box[0] <= (c.box[0] + c.box[2]) / 2 <= b.box[2]
                and b.box[1] <= (c.box[1] + c.box[3]) / 2 <= b.box[3]
                for c in surest
            )
            row["boxed"] += any(iou(c.box, b.box) >= iou_min for c in surest)
            row["found"] += j in hits
    return out


def real_photo_figures(ev: DetEvaluation) -> dict[str, Any]:
    """Photo-level camera recall and specificity, handheld-camera photos apart."""
    cams = set(ev.labels.cameras)
    rows = [(p.record.label in cams, p.finding.label in cams, "handheld" in p.record.path) for p in ev.photos]
    cam = [r for r in rows if r[0]]
    neg = [r for r in rows if not r[0]]
    hand = [r for r in neg if r[2]]
    return {
        "camera_photos_found": sum(r[1] for r in cam),
        "camera_photos": len(cam),
        "no_camera_kept": sum(not r[1] for r in neg),
        "no_camera_photos": len(neg),
        "handheld_kept": sum(not r[1] for r in hand),
        "handheld_photos": len(hand),
    }


def _ci(entry: dict[str, Any]) -> str:
    v, (lo, hi) = entry["value"], entry["ci95"]
    return f"{v:.2f} [{lo:.2f}, {hi:.2f}]" if np.isfinite(v) else "–"


@dataclass(frozen=True)
class Seen:
    """What the compared models trained or validated on: photos (resolved paths) and their groups
    (a crop shares its photo's group, so a crop of a trained-on photo counts as seen too)."""

    paths: frozenset[Path] = frozenset()
    groups: frozenset[str] = frozenset()

    def __or__(self, other: Seen) -> Seen:
        return Seen(self.paths | other.paths, self.groups | other.groups)

    def holds(self, manifest: Manifest, record: Record) -> bool:
        return manifest.resolve(record) in self.paths or (bool(record.group) and record.group in self.groups)


def seen_photos(engine: Engine) -> Seen:
    """What a model (and its zoom stage) was trained or validated on: every row of the manifest
    its contract's ``trained_on`` names, but those of the test split, and their groups."""
    infos = [engine.info, *([engine.zoom.info] if engine.zoom is not None else [])]
    seen = Seen()
    for info in infos:
        source = info.trained_on.get("manifest")
        if not source:
            continue
        if not Path(source).is_file():
            log.warning("%s: its training manifest %s is gone; its training photos cannot be left out",
                        engine.path, source)  # fmt: skip
            continue
        m = read_manifest(source)
        used = [r for r in m.records if r.split != "test"]
        seen |= Seen(
            frozenset(m.resolve(r) for r in used), frozenset(source_group(r) for r in used if r.group)
        )
    return seen


def run_model(
    name: str,
    engine: Engine,
    sets: dict[str, tuple[Path, float]],
    out: Path,
    n_boot: int,
    small: tuple[float, float] = SMALL,
    seen: Seen = Seen(),  # noqa: B008 - frozen dataclass
) -> dict[str, Any]:
    finder = engine_finder(engine)
    result: dict[str, Any] = {"model": str(engine.path), "camera_threshold": engine.info.thresholds["camera"]}
    for set_name, (manifest_path, iou_min) in sets.items():
        manifest = read_manifest(manifest_path)
        unseen = [r for r in manifest.records if not seen.holds(manifest, r)]
        records, refused = servable(manifest, unseen)
        if set_name == "real_boxed":
            records = [r for r in records if record_boxes(r)]
        t0 = time.perf_counter()
        ev = evaluate_cameras(
            finder, records, manifest.root, engine.info.labels, iou_min=iou_min, n_boot=n_boot
        )
        seconds = time.perf_counter() - t0
        write_outputs(ev, out / name / set_name)
        m = ev.metrics
        entry: dict[str, Any] = {
            "photos": len(records),
            "iou": iou_min,
            "left_out_as_trained_on": len(manifest.records) - len(unseen),
            "refused_by_the_server": refused,
            "seconds_per_photo": seconds / max(1, len(records)),
            "box_recall": m["metrics"]["box_recall"],
            "false_cameras_per_camera_free_photo": m["metrics"]["false_cameras_per_camera_free_photo"],
            "camera_recall": m["metrics"]["camera_recall"],
            "camera_specificity": m["metrics"]["camera_specificity"],
            "at_threshold": m["at_threshold"],
            "ap_per_class": m["ap_per_class"],
            "recall_at_false": m["recall_at_false"],
            "counts": m["counts"],
        }
        if set_name == "renders":
            entry["small"] = small_camera_figures(ev.photos, n_boot, small)
            free = m["recall_at_false"]["camera_free_photos"]
            if free is not None:
                neg = engine.info.labels.negative
                entry["where_lost"] = where_lost(ev.photos, neg, iou_min, free["threshold"])
        else:
            entry["photo_level"] = real_photo_figures(ev)
        result[set_name] = entry
    return result


def table(results: dict[str, dict[str, Any]], renders_iou: float = 0.5, real_iou: float = 0.3) -> list[str]:
    lines = [
        f"| approach | (i) renders: 1-5 % cameras found (IoU ≥ {renders_iou:g}) | "
        "(i) false cameras / camera-free photo | (i) all cameras found at ≤ 0.1 false / camera-free photo | "
        f"(i) AP50 any camera, by class | (ii) real boxed: cameras found (IoU ≥ {real_iou:g}) | "
        "(ii) false cameras on look-alikes | (iii) real camera photos found | "
        "(iii) real no-camera kept (handheld) | s / photo |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        cells = [name]
        if "renders" in r:
            s = r["renders"]["small"]
            free = r["renders"]["recall_at_false"]["camera_free_photos"]
            aps = ", ".join(f"{v:.2f}" for v in r["renders"]["ap_per_class"].values())
            cells += [
                f"{s['small_found']}/{s['small_total']} = {_ci(s['small_recall'])}",
                f"{_ci(s['false_per_free_photo'])} ({s['camera_free_photos']} photos)",
                f"{free['found']}/{free['total']}",
                aps,
            ]
        else:
            cells += ["–", "–", "–", "–"]
        if "real_boxed" in r:
            b = r["real_boxed"]
            at = b["at_threshold"]
            found = sum(v["found"] for v in at["by_bucket"].values())
            total = sum(v["total"] for v in at["by_bucket"].values())
            cells += [
                f"{found}/{total}",
                f"{at['false_cameras_on_lookalikes']} on {b['counts']['lookalikes']}",
            ]
        else:
            cells += ["–", "–"]
        if "real_all" in r:
            p = r["real_all"]["photo_level"]
            kept = f"{p['no_camera_kept']}/{p['no_camera_photos']}"
            cells += [
                f"{p['camera_photos_found']}/{p['camera_photos']}",
                f"{kept} ({p['handheld_kept']}/{p['handheld_photos']})",
            ]
        else:
            cells += ["–", "–"]
        times = [
            v["seconds_per_photo"] for k, v in r.items() if isinstance(v, dict) and "seconds_per_photo" in v
        ]
        cells.append(f"{np.mean(times):.2f}" if times else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def lost_table(results: dict[str, dict[str, Any]], iou_min: float) -> list[str]:
    """Where each model loses the rendered cameras (all sizes, and those under 5 % of the width)."""
    lines = [
        f"| approach | cameras | a top-{TOP} candidate on it | one at IoU ≥ {iou_min:g} "
        "| found at ≤ 0.1 false per camera-free photo |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lost = r.get("renders", {}).get("where_lost")
        if not lost:
            continue
        every = {k: sum(row[k] for row in lost.values()) for k in ("total", "touched", "boxed", "found")}
        small = {k: sum(lost[b][k] for b in ("2-5%", "<2%") if b in lost) for k in every}
        cells = [f"{every[k]} ({small[k]} under 5 %)" for k in ("total", "touched", "boxed", "found")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="NAME=FILE.onnx (repeat)")
    ap.add_argument("--renders", type=Path, help="held-out renders manifest (phone resolution)")
    ap.add_argument("--real", type=Path, help="real photos manifest (../shared/data/real/manifest.csv)")
    ap.add_argument("--real-iou", type=float, default=0.3)
    ap.add_argument("--renders-iou", type=float, default=0.5)
    ap.add_argument("--bootstrap", type=int, default=500)
    ap.add_argument(
        "--small", type=float, nargs=2, default=SMALL, metavar=("LO", "HI"),
        help="camera widths (fraction of the photo width) of the renders' headline recall (0.01 0.05)",
    )  # fmt: skip
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    sets: dict[str, tuple[Path, float]] = {}
    if args.renders:
        sets["renders"] = (args.renders, args.renders_iou)
    if args.real:
        sets["real_boxed"] = (args.real, args.real_iou)
        sets["real_all"] = (args.real, args.real_iou)
    if not sets:
        ap.error("give --renders and/or --real")
    engines: dict[str, Engine] = {}
    for spec in args.model:
        name, _, file = spec.partition("=")
        if not file:
            ap.error(f"--model {spec!r}: use NAME=FILE.onnx")
        engines[name] = Engine.load(file)
    seen = Seen()
    for engine in engines.values():
        seen |= seen_photos(engine)
    results = {
        name: run_model(name, engine, sets, args.out, args.bootstrap, tuple(args.small), seen)
        for name, engine in engines.items()
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "localization.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    for set_name in sets:
        left = max(r[set_name]["left_out_as_trained_on"] for r in results.values())
        if left:
            print(f"{set_name}: left out {left} photo(s) a model trained or validated on, for every model")
    print("\n".join(table(results, args.renders_iou, args.real_iou)))
    if "renders" in sets:
        print("\nWhere the rendered cameras are lost:")
        print("\n".join(lost_table(results, args.renders_iou)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
