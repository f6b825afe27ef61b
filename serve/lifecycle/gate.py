"""The promotion gate: a candidate model and the live one side by side on the same photos.

Both models classify every photo of each evaluation set (the verified submissions from the
training export, and a fixed benchmark manifest). For each set the gate reports, per model, the
flag precision (flagged photos whose label is right), the camera recall (photos showing a camera
that the model gives a camera class), the camera specificity (photos without a camera that it
gives no camera class) and the accuracy, each with a 95% interval, and the paired
difference candidate - live with its own interval. Intervals come from a bootstrap that resamples
whole groups (the manifest's ``group``: photos of one camera or place), so the photos of one
camera are never split between resamples. The candidate is refused when, on any set, its flag
precision, camera recall or camera specificity is worse than the live model's beyond the interval
(the difference's upper bound is below zero).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from data.images import ImageError
from data.manifest import Record, read_manifest
from serve.engine import Engine
from serve.photos import decode_photo

__all__ = ["GATED", "EvalSet", "compare", "format_table", "load_set", "score_set"]

log = logging.getLogger(__name__)

# the metrics a candidate must not lose: camera_specificity too, or a model calling every photo a
# camera would pass on camera recall while flooding the moderators' queue
GATED = ("flag_precision", "camera_recall", "camera_specificity")
SHOWN = (*GATED, "accuracy")
BATCH = 16


@dataclass(frozen=True)
class EvalSet:
    """Photos with their true labels and groups, read from a manifest."""

    name: str
    root: Path
    records: tuple[Record, ...]


def load_set(name: str, manifest: Path) -> EvalSet:
    """An :class:`EvalSet` from a manifest CSV (or a ``LABEL/*.jpg`` folder)."""
    m = read_manifest(manifest)
    return EvalSet(name, m.root, tuple(m.records))


@dataclass(frozen=True)
class Scored:
    """What one model said about each photo of a set (photos that could not be read left out)."""

    labels: tuple[str, ...]
    decisions: tuple[str, ...]


def _decode(path: Path, min_side: int) -> Any:
    try:
        return decode_photo(path.read_bytes(), min_side=min_side)
    except (ImageError, OSError) as exc:
        log.warning("gate: %s left out (%s)", path, exc)
        return None


def _chunks(records: Sequence[Record], size: int) -> Iterator[Sequence[Record]]:
    for start in range(0, len(records), size):
        yield records[start : start + size]


def score_set(
    engines: Sequence[Engine], evalset: EvalSet, progress: Callable[[int], None] | None = None
) -> tuple[list[str], list[str], list[Scored]]:
    """Decode each photo once and classify it with every engine: (true labels, groups, scores)."""
    min_side = max(e.min_side for e in engines)
    truth: list[str] = []
    groups: list[str] = []
    said: list[tuple[list[str], list[str]]] = [([], []) for _ in engines]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for chunk in _chunks(evalset.records, BATCH):
            photos = list(pool.map(lambda r: _decode(evalset.root / r.path, min_side), chunk))
            kept = [(r, p) for r, p in zip(chunk, photos, strict=True) if p is not None]
            images, sizes = [p.image for _, p in kept], [(p.width, p.height) for _, p in kept]
            truth += [r.label for r, _ in kept]
            groups += [r.group or r.path for r, _ in kept]
            for engine, (labels, decisions) in zip(engines, said, strict=True):
                for pred in engine.classify(images, sizes=sizes) if images else []:
                    labels.append(pred.label)
                    decisions.append(pred.decision)
            if progress is not None:
                progress(len(chunk))
    return truth, groups, [Scored(tuple(a), tuple(b)) for a, b in said]


def _ratio_parts(
    metric: str, truth: np.ndarray, s: Scored, cameras: frozenset[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-photo numerator and denominator indicators of a ratio metric."""
    pred = np.asarray(s.labels, dtype=object)
    right = pred == truth
    if metric == "flag_precision":
        flagged = np.asarray(s.decisions, dtype=object) == "flag"
        return right & flagged, flagged
    if metric in ("camera_recall", "camera_specificity"):
        true_cam = np.array([t in cameras for t in truth], dtype=bool)
        pred_cam = np.array([p in cameras for p in pred], dtype=bool)
        if metric == "camera_recall":
            return pred_cam & true_cam, true_cam
        return ~pred_cam & ~true_cam, ~true_cam
    return right, np.ones(len(truth), dtype=bool)


def _per_group(values: np.ndarray, group_index: np.ndarray, n_groups: int) -> np.ndarray:
    return np.bincount(group_index, weights=values.astype(np.float64), minlength=n_groups)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1e-12), np.nan)


def _interval(samples: np.ndarray) -> list[float | None]:
    ok = samples[~np.isnan(samples)]
    if not len(ok):
        return [None, None]
    return [float(np.percentile(ok, 2.5)), float(np.percentile(ok, 97.5))]


def _value(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _metric_row(
    metric: str,
    truth: np.ndarray,
    scored: Sequence[Scored],
    gi: np.ndarray,
    pick: np.ndarray,
    cameras: frozenset[str],
) -> dict[str, Any]:
    """Both models' value, interval and count, and the paired difference, for one metric."""
    n_groups = int(gi.max()) + 1 if len(gi) else 0
    row: dict[str, Any] = {}
    boot: list[np.ndarray] = []
    points: list[float] = []
    for who, s in zip(("live", "candidate"), scored, strict=True):
        num, den = _ratio_parts(metric, truth, s, cameras)
        gnum, gden = _per_group(num, gi, n_groups), _per_group(den, gi, n_groups)
        point = float(_ratio(np.array([gnum.sum()]), np.array([gden.sum()]))[0])
        samples = _ratio(gnum[pick].sum(axis=1), gden[pick].sum(axis=1))
        row[who] = {"value": _value(point), "ci95": _interval(samples), "n": int(den.sum())}
        boot.append(samples)
        points.append(point)
    diff = points[1] - points[0]
    diff_ci = _interval(boot[1] - boot[0])
    row["difference"] = {"value": _value(diff), "ci95": diff_ci}
    row["gated"] = metric in GATED
    row["worse"] = bool(metric in GATED and diff_ci[1] is not None and diff_ci[1] < 0)
    return row


def compare_scores(
    name: str,
    truth: Sequence[str],
    groups: Sequence[str],
    scored: Sequence[Scored],
    cameras: frozenset[str],
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """One set's table: every metric of :data:`SHOWN` for live (``scored[0]``) and candidate."""
    _, gi = np.unique(np.asarray(groups, dtype=object), return_inverse=True)
    n_groups = int(gi.max()) + 1 if len(gi) else 0
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, max(n_groups, 1), size=(n_boot, n_groups))
    t = np.asarray(truth, dtype=object)
    metrics = {m: _metric_row(m, t, scored, gi, pick, cameras) for m in SHOWN}
    return {"name": name, "photos": len(truth), "groups": n_groups, "metrics": metrics}


def compare(
    live: Engine, candidate: Engine, sets: Sequence[EvalSet], n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """The gate's comparison of ``candidate`` against ``live`` on every set, and its verdict."""
    cameras = frozenset(live.info.labels.cameras) | frozenset(candidate.info.labels.cameras)
    tables = []
    for evalset in sets:
        truth, groups, scored = score_set([live, candidate], evalset)
        tables.append(compare_scores(evalset.name, truth, groups, scored, cameras, n_boot, seed))
    reasons = [
        f"{t['name']}: {m} worse than the live model beyond the 95% interval "
        f"(difference {_fmt(r['difference'])})"
        for t in tables
        for m, r in t["metrics"].items()
        if r["worse"]
    ]
    if not any(t["photos"] for t in tables):
        reasons.append("no photo to evaluate on: verify submissions or pass --benchmark MANIFEST")
    return {
        "live": _model_json(live),
        "candidate": _model_json(candidate),
        "bootstrap": {"resamples": n_boot, "seed": seed, "unit": "group"},
        "sets": tables,
        "refused": bool(reasons),
        "reasons": reasons,
    }


def _model_json(engine: Engine) -> dict[str, str]:
    return {"name": engine.info.name, "version": engine.info.version, "path": str(engine.path)}


def _num(x: float | None) -> str:
    return "  n/a" if x is None else f"{x:+.3f}" if x < 0 else f"{x:.3f}"


def _fmt(cell: dict[str, Any]) -> str:
    lo, hi = cell["ci95"]
    return f"{_num(cell['value'])} [{_num(lo)}, {_num(hi)}]"


def format_table(comparison: dict[str, Any]) -> str:
    """The comparison as a plain-text table (also saved as Markdown-friendly text next to the model)."""
    live, cand = comparison["live"], comparison["candidate"]
    lines = [
        f"live      {live['name']} {live['version']}",
        f"candidate {cand['name']} {cand['version']}",
        "95% intervals: bootstrap over groups (photos of one camera or place resampled together)",
        "",
        f"{'set':<12} {'photos':>6} {'groups':>6}  {'metric':<18} {'live':<24} {'candidate':<24} "
        "candidate - live",
    ]
    for t in comparison["sets"]:
        for metric, r in t["metrics"].items():
            flag = "  WORSE" if r["worse"] else ""
            lines.append(
                f"{t['name']:<12} {t['photos']:>6} {t['groups']:>6}  {metric:<18} {_fmt(r['live']):<24} "
                f"{_fmt(r['candidate']):<24} {_fmt(r['difference']):<26}{flag}".rstrip()
            )
    verdict = "REFUSED: " + "; ".join(comparison["reasons"]) if comparison["refused"] else "passed"
    return "\n".join([*lines, "", f"gate: {verdict}"])
