"""Does a larger letterbox input help with small cameras? Train the fast recipe at several input
sizes on the same renders/split and compare held-out metrics (run in one command, one process).

    python benchmarks/small_cameras.py --data RENDERS/manifest.csv --out /tmp/small_cams [--sizes 224 320]

Renders made by `camid data synth` record ``subject_frac`` (the share of the frame the camera is
framed to fill, 0.02-0.6); when a manifest has it, the table also reports the photos with
``subject_frac < 0.05``.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from training.config import resolve_config
from training.train import train


def _small_subset_recall(eval_dir: Path, manifest: Path, below: float = 0.05) -> float | None:
    """Accuracy on camera photos whose camera fills less than ``below`` of the frame (None if unknown)."""
    with manifest.open(newline="", encoding="utf-8") as f:
        frac = {Path(row["path"]).name: row.get("subject_frac") for row in csv.DictReader(f)}
    if not any(frac.values()):
        return None
    with (eval_dir / "predictions.csv").open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["label"] != "no_camera"]
    small = [r for r in rows if (v := frac.get(Path(r["path"]).name) or "") and float(v) < below]
    return float(np.mean([r["label"] == r["pred"] for r in small])) if small else None


def _fmt(e: dict[str, object]) -> str:
    if not e:
        return "–"
    lo, hi = e["ci95"]  # type: ignore[misc]
    return f"{e['value']:.3f} [{lo:.3f}, {hi:.3f}]"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--sizes", type=int, nargs="+", default=[224, 320])
    p.add_argument("--views", type=int, default=2)
    p.add_argument("--pretrained", default="imagenet")
    args = p.parse_args(argv)
    rows = []
    for size in args.sizes:
        cfg = resolve_config(
            None, image_size=size, views_per_image=args.views, pretrained=args.pretrained, bootstrap=200
        )
        start = time.perf_counter()
        res = train(args.data, args.out / f"size{size}", cfg)
        took = time.perf_counter() - start
        m = res.test_metrics["metrics"] if res.test_metrics else {}
        small = _small_subset_recall(args.out / f"size{size}" / "eval_test", args.data)
        rows.append((size, m.get("macro_f1", {}), m.get("camera_recall", {}), small, took))
    base = rows[0]
    print(
        f"{'input':>6} {'test macro-F1 [95% CI]':>28} {'camera recall [95% CI]':>28} {'small acc':>9} "
        f"{'train s':>8} {'F1 ratio':>8}"
    )
    for size, f1, rec, small, took in rows:
        ratio = f1.get("value", float("nan")) / max(1e-9, base[1].get("value", float("nan")))
        small_text = f"{small:.3f}" if small is not None else "–"
        print(f"{size:>6} {_fmt(f1):>28} {_fmt(rec):>28} {small_text:>9} {took:>8.0f} {ratio:>8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
