"""Evaluate a checkpoint or an exported ONNX model on a manifest split: metrics with intervals,
calibration, decisions, figures and an HTML report of the worst errors."""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from data.decision import softmax
from data.images import load_image
from data.labels import LabelSet
from data.manifest import Manifest, Record, manifest_hash, read_manifest
from data.preprocess import decode_hint, prepare
from training.calibration import decide_all, expected_calibration_error
from training.metrics import (
    bootstrap_intervals,
    classification_metrics,
    confusion_matrix,
    decision_metrics,
    with_intervals,
)
from training.predictors import OnnxPredictor, Predictor, load_predictor

if TYPE_CHECKING:
    from training.deteval import DetEvaluation

log = logging.getLogger(__name__)


@dataclass
class Outputs:
    """Per-photo model outputs on an evaluation set (rows follow ``records``)."""

    records: list[Record]
    paths: list[Path]
    y: np.ndarray
    logits: np.ndarray
    labels: tuple[str, ...]
    temperature: float

    @property
    def probs(self) -> np.ndarray:
        return softmax(self.logits, self.temperature)


def select_records(manifest: Manifest, split: str | None) -> tuple[list[Record], str]:
    """Records of ``split``; all records (and a note saying so) when the manifest has no split."""
    if split is None or split == "all":
        return list(manifest.records), "all"
    if not any(r.split for r in manifest.records):
        log.warning("manifest has no split column: evaluating on all %d photos", len(manifest.records))
        return list(manifest.records), "all (manifest has no split column)"
    records = [r for r in manifest.records if r.split == split]
    if not records:
        raise ValueError(
            f"manifest {manifest.root} has no rows with split={split!r}; use --split train|val|test"
        )
    return records, split


def check_model_labels(records: list[Record], model_labels: tuple[str, ...]) -> None:
    """The model must know every label of the evaluation set."""
    unknown = sorted({r.label for r in records} - set(model_labels))
    if unknown:
        raise ValueError(
            f"evaluation photos have label(s) {', '.join(unknown)} the model does not predict "
            f"(model labels: {', '.join(model_labels)}); retrain with these classes in the labels file"
        )


def predict_records(
    predictor: Predictor, manifest: Manifest, records: list[Record], batch_size: int = 32
) -> Outputs:
    """Load, ``prepare`` (the server's preprocessing) and run every record through the model."""
    contract = predictor.contract
    check_model_labels(records, contract.names)
    hint = decode_hint(contract.resize)
    paths = [manifest.resolve(r) for r in records]
    chunks = []
    for i in tqdm(range(0, len(records), batch_size), desc=f"evaluate ({predictor.kind})", unit="batch"):
        batch = [prepare(load_image(p, min_side=hint), contract.resize) for p in paths[i : i + batch_size]]
        chunks.append(predictor.logits(np.stack(batch)))
    logits = np.concatenate(chunks) if chunks else np.zeros((0, len(contract.names)))
    y = np.array([contract.names.index(r.label) for r in records], dtype=np.int64)
    return Outputs(records, paths, y, logits, contract.names, contract.temperature)


def _metric_fn(
    out: Outputs, targets: tuple[str, ...], camera: list[bool], thresholds: dict[str, float]
) -> Any:
    probs = out.probs
    pred = probs.argmax(1)
    decisions = np.asarray(decide_all(probs, out.labels, targets, thresholds))

    def metric(idx: np.ndarray) -> dict[str, float]:
        m = classification_metrics(out.y[idx], pred[idx], out.labels)
        m.update(decision_metrics(decisions[idx], out.y[idx], pred[idx], out.labels, targets, camera))
        return m

    return metric, decisions


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(v) for v in obj]
    return obj


def compute_metrics(
    out: Outputs, labels: LabelSet, thresholds: dict[str, float], n_boot: int = 1000, seed: int = 0
) -> tuple[dict[str, Any], np.ndarray]:
    """metrics.json content (point values with 95 % bootstrap intervals) and per-photo decisions."""
    targets = tuple(n for n in out.labels if n in labels and labels.is_target(n))
    camera = [labels.get(n).form_factor != "none" if n in labels else True for n in out.labels]
    metric, decisions = _metric_fn(out, targets, camera, thresholds)
    everyone = np.arange(len(out.y))
    groups = [r.group for r in out.records]
    by_group = all(groups) and len(set(groups)) < len(groups)
    point = metric(everyone)
    intervals = bootstrap_intervals(metric, len(out.y), groups if all(groups) else None, n_boot, seed)
    probs_raw = softmax(out.logits, 1.0)
    pred = out.probs.argmax(1)
    return {
        "n": len(out.y),
        "n_per_class": {n: int((out.y == i).sum()) for i, n in enumerate(out.labels)},
        "metrics": with_intervals(point, intervals),
        "bootstrap": {
            "resamples": n_boot,
            "unit": "group" if all(groups) else "photo",
            "n_units": len(set(groups)) if all(groups) else len(out.y),
            "note": "95% percentile intervals; photos of one group (camera/scene) resampled together"
            if all(groups)
            else "95% percentile intervals over photos (manifest has no groups)",
            "groups_shared_by_several_photos": bool(by_group),
        },
        "confusion_matrix": {
            "labels": list(out.labels),
            "rows_true_cols_pred": confusion_matrix(out.y, pred, len(out.labels)).tolist(),
        },
        "calibration": {
            "temperature": out.temperature,
            "ece_before": expected_calibration_error(probs_raw, out.y),
            "ece_after": expected_calibration_error(out.probs, out.y),
        },
        "decisions": {
            "thresholds": dict(thresholds),
            "targets": list(targets),
            "counts": {d: int((decisions == d).sum()) for d in ("flag", "review", "reject")},
            "camera_classes": [n for n, c in zip(out.labels, camera, strict=True) if c],
        },
    }, decisions


def write_predictions(out: Outputs, decisions: np.ndarray, path: Path) -> Path:
    """predictions.csv: one row per photo with label, prediction, confidence, decision, probabilities."""
    probs = out.probs
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            ["path", "group", "label", "pred", "confidence", "decision", *[f"p_{n}" for n in out.labels]]
        )
        for i, r in enumerate(out.records):
            row = [
                str(out.paths[i]),
                r.group,
                r.label,
                out.labels[int(probs[i].argmax())],
                f"{probs[i].max():.6f}",
                decisions[i],
                *[f"{p:.6f}" for p in probs[i]],
            ]
            w.writerow(row)
    return path


@dataclass
class Evaluation:
    """What :func:`evaluate` produced."""

    metrics: dict[str, Any]
    outputs: Outputs
    decisions: np.ndarray
    out_dir: Path


def evaluate(
    model_path: str | Path,
    manifest_path: str | Path,
    out_dir: str | Path,
    *,
    split: str | None = "test",
    n_boot: int = 1000,
    batch_size: int = 32,
    report: bool = True,
) -> Evaluation:
    """Evaluate a classifier checkpoint or ONNX model on one split; writes metrics.json,
    predictions.csv, PNG figures and report.html into ``out_dir``."""
    predictor = load_predictor(model_path)
    if predictor.contract.task == "detect":
        raise ValueError(f"{model_path}: a camera detector; evaluate it with evaluate_model or deteval")
    return _evaluate_classifier(
        predictor, model_path, manifest_path, out_dir, split, n_boot, batch_size, report
    )


def evaluate_model(
    model_path: str | Path,
    manifest_path: str | Path,
    out_dir: str | Path,
    *,
    split: str | None = "test",
    n_boot: int = 1000,
    batch_size: int = 32,
    iou_min: float = 0.5,
    false_per_photo: float = 0.1,
    report: bool = True,
) -> Evaluation | DetEvaluation:
    """``camid evaluate``: a classifier as :func:`evaluate`, an exported detector (contract task
    ``detect``) as :func:`training.deteval.evaluate_detector` (boxes, size buckets, misses)."""
    predictor = load_predictor(model_path)
    if isinstance(predictor, OnnxPredictor) and predictor.contract.task == "detect":
        from training.deteval import evaluate_detector

        return evaluate_detector(
            predictor.engine, manifest_path, out_dir, split=split, iou_min=iou_min,
            false_per_photo=false_per_photo, n_boot=n_boot, batch_size=min(batch_size, 8),  # large inputs
            report=report,
        )  # fmt: skip
    return _evaluate_classifier(
        predictor, model_path, manifest_path, out_dir, split, n_boot, batch_size, report
    )


def _evaluate_classifier(
    predictor: Predictor,
    model_path: str | Path,
    manifest_path: str | Path,
    out_dir: str | Path,
    split: str | None,
    n_boot: int,
    batch_size: int,
    report: bool,
) -> Evaluation:
    from training.report import write_figures, write_report

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(manifest_path)
    records, split_name = select_records(manifest, split)
    outputs = predict_records(predictor, manifest, records, batch_size)
    contract = predictor.contract
    metrics, decisions = compute_metrics(outputs, contract.labels, dict(contract.thresholds), n_boot)
    metrics["data"] = {
        "manifest": str(Path(manifest_path).resolve()),
        "manifest_hash": manifest_hash(manifest),
        "split": split_name,
    }
    metrics["model"] = {
        "path": str(Path(model_path).resolve()),
        "kind": predictor.kind,
        "name": contract.name,
        "version": contract.version,
        "trained_on": dict(contract.trained_on),
    }
    (out_dir / "metrics.json").write_text(json.dumps(_nan_to_none(metrics), indent=2), encoding="utf-8")
    write_predictions(outputs, decisions, out_dir / "predictions.csv")
    result = Evaluation(metrics, outputs, decisions, out_dir)
    if report:
        write_figures(result)
        write_report(result)
    log.info("evaluation written to %s", out_dir)
    return result


def load_evaluation(out_dir: str | Path) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """metrics.json and predictions.csv of an earlier :func:`evaluate` (for notebooks)."""
    out_dir = Path(out_dir)
    metrics = json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))
    with (out_dir / "predictions.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return metrics, rows
