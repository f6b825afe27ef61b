"""``camid train`` and ``camid evaluate``: thin argument parsers over the training library."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.config import TrainConfig


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="camid train", description="Train, calibrate and evaluate a camid model."
    )
    p.add_argument("--data", required=True, type=Path, help="manifest CSV (or folder of LABEL/*.jpg)")
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoint, curves, logs, metrics)")
    p.add_argument("--config", type=Path, help="YAML file with TrainConfig keys (CLI flags win)")
    p.add_argument("--arch", help="timm architecture (default efficientnet_lite0)")
    p.add_argument("--pretrained", help="imagenet | none | PATH to weights | timm model name")
    p.add_argument("--epochs", type=int)
    p.add_argument(
        "--mode",
        choices=["fast", "finetune", "fewshot", "detect", "zoom"],
        help="fast (CPU) | finetune (GPU) | fewshot | detect (camera boxes; image_size e.g. 640) | "
        "zoom (crop classifier of look-then-zoom; image_size default 128)",
    )
    p.add_argument(
        "--detector",
        dest="zoom_detector",
        help="with --mode zoom: detector checkpoint for hard negatives and the pair's calibration",
    )
    p.add_argument("--image-size", type=int, dest="image_size")
    p.add_argument("--finetune-blocks", type=int, choices=[0, 1, 2], dest="finetune_blocks")
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--members",
        type=int,
        help="with --mode finetune: train this many seeds (RUN/members/seed-N) on one split and "
        "combine them into one model that averages their probabilities (RUN/checkpoint.pt)",
    )
    p.add_argument(
        "--distill-from",
        nargs="+",
        dest="distill_from",
        metavar="CHECKPOINT",
        help="with --mode finetune: learn the mean probabilities of these trained models (an "
        "ensemble's) as well as the labels; one model's cost (docs/models.md)",
    )
    p.add_argument("--labels", dest="labels_path", help="labels.yaml (default: data/labels.yaml)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    return p


def train_main(argv: list[str] | None = None) -> int:
    """``camid train --data MANIFEST --out RUN_DIR [...]``."""
    args = train_parser().parse_args(argv)
    _setup_logging()
    from training.config import resolve_config

    keys: tuple[str, ...] = ("arch", "pretrained", "epochs", "mode", "image_size", "finetune_blocks", "seed")
    keys += ("labels_path", "zoom_detector", "distill_from", "members")
    try:
        config = resolve_config(args.config, **{k: getattr(args, k) for k in keys})
    except (ValueError, OSError) as e:
        print(f"camid train: {e}", file=sys.stderr)
        return 2
    if config.mode == "fewshot":
        return _fewshot(args.data, args.out, config)
    if config.mode == "detect":
        return _detect(args.data, args.out, config, args.resume)
    if config.mode == "zoom":
        return _zoom(args.data, args.out, config, args.resume)
    from training.train import train

    try:
        result = train(args.data, args.out, config, resume=args.resume)
    except ValueError as e:  # bad labels, splits or settings: say what to fix, no traceback
        print(f"camid train: {e}", file=sys.stderr)
        return 2
    if result.calibration is not None:
        summary = {
            "checkpoint": str(result.checkpoint),
            "val_macro_f1": result.val_metrics.get("macro_f1"),
            "temperature": result.calibration.temperature,
            "thresholds": result.calibration.thresholds,
            "seconds": {k: round(v, 1) for k, v in result.seconds.items()},
        }
        if result.test_metrics:
            summary["test"] = {k: result.test_metrics["metrics"][k] for k in ("accuracy", "macro_f1")}
        print(json.dumps(summary, indent=2))
    return 0


def _detect(manifest: Path, out: Path, config: TrainConfig, resume: bool) -> int:
    from training.detect import train_detector

    try:
        result = train_detector(manifest, out, config, resume=resume)
    except ValueError as e:
        print(f"camid train --mode detect: {e}", file=sys.stderr)
        return 2
    print(
        json.dumps({"checkpoint": str(result.checkpoint), "val": result.val_metrics}, indent=2, default=str)
    )
    return 0


def _zoom(manifest: Path, out: Path, config: TrainConfig, resume: bool) -> int:
    from training.zoom import train_zoom

    try:
        result = train_zoom(manifest, out, config, resume=resume)
    except ValueError as e:
        print(f"camid train --mode zoom: {e}", file=sys.stderr)
        return 2
    summary = {
        "checkpoint": str(result.checkpoint),
        "thresholds": result.thresholds,
        "val": result.val_metrics,
    }
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _fewshot(manifest: Path, out: Path, config: TrainConfig) -> int:
    from training.fewshot import train_fewshot

    try:
        report = train_fewshot(manifest, out, config, str(config.extra.get("fewshot_method", "prototype")))
    except ValueError as e:
        print(f"camid train --mode fewshot: {e}", file=sys.stderr)
        return 2
    m = report["out_of_fold"]
    for key in ("accuracy", "macro_f1"):
        lo, hi = m[key]["ci95"]
        print(f"{key:10s} {m[key]['value']:.3f}  [{lo:.3f}, {hi:.3f}] (out-of-fold, group bootstrap)")
    print(f"fold accuracy {report['fold_accuracy_mean']:.3f} ± {report['fold_accuracy_sd']:.3f}")
    n = report["samples"]
    print(f"samples: {n['boxes']} crops around boxes, {n['whole_photo']} whole photos (rows without boxes)")
    print("accuracy by box width / photo width (out-of-fold):")
    for name, row in report["by_size"].items():
        acc = "  -  " if row["accuracy"] is None else f"{row['accuracy']:.3f}"
        print(f"  {name:12s} {acc}  n={row['n']} ({row['photos']} photos)")
    print(f"checkpoint: {out / 'checkpoint.pt'}")
    return 0


def evaluate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="camid evaluate", description="Evaluate a checkpoint or exported ONNX model."
    )
    p.add_argument("--model", required=True, type=Path, help="checkpoint.pt or model.onnx")
    p.add_argument("--data", required=True, type=Path, help="manifest CSV")
    p.add_argument("--split", default="test", help="train | val | test | all (default test)")
    p.add_argument("--out", required=True, type=Path, help="folder for metrics.json, figures, report.html")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument(
        "--iou",
        type=float,
        default=0.5,
        dest="iou_min",
        help="detectors: IoU of a found camera (default 0.5)",
    )
    p.add_argument(
        "--false-per-photo",
        type=float,
        default=0.1,
        dest="false_per_photo",
        help="detectors: recall is also reported at this many false cameras per photo (default 0.1)",
    )
    return p


def evaluate_main(argv: list[str] | None = None) -> int:
    """``camid evaluate --model M --data MANIFEST [--split test] --out DIR``: a classifier's photo
    metrics, or (an exported detector) its boxes by size, AP per class and misses."""
    args = evaluate_parser().parse_args(argv)
    _setup_logging()
    from serve.engine import ModelError
    from training.deteval import DetEvaluation, summary_lines
    from training.evaluate import evaluate_model

    try:
        ev = evaluate_model(
            args.model, args.data, args.out, split=args.split, n_boot=args.bootstrap,
            iou_min=args.iou_min, false_per_photo=args.false_per_photo,
        )  # fmt: skip
    except (ValueError, FileNotFoundError, ModelError) as e:
        print(f"camid evaluate: {e}", file=sys.stderr)
        return 2
    if isinstance(ev, DetEvaluation):
        print("\n".join(summary_lines(ev.metrics)))
        print(f"report: {args.out / 'report.html'}")
        return 0
    m = ev.metrics["metrics"]
    for k in ("accuracy", "macro_f1", "flag_precision", "auto_share", "camera_recall", "camera_specificity"):
        lo, hi = m[k]["ci95"]
        print(f"{k:20s} {m[k]['value']:.3f}  [{lo:.3f}, {hi:.3f}]")
    print(f"report: {ev.out_dir / 'report.html'}")
    return 0
