"""``camid export``: checkpoint -> self-describing ONNX file (parity-checked, optionally INT8)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from model.export import RELEASE_MAX_BYTES, ExportError, export_onnx, export_pair, upgrade_onnx


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="camid export", description="Export a camid checkpoint to ONNX.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="checkpoint written by `camid train`")
    src.add_argument(
        "--upgrade", type=Path, help="an .onnx exported before the model contract: rewrite its metadata"
    )
    p.add_argument("--labels", type=Path, help="with --upgrade: the labels file it was trained with")
    p.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    p.add_argument(
        "--zoom",
        type=Path,
        help="with a detector --checkpoint: its crop classifier (`camid train --mode zoom`), written "
        "as OUT's companion X.zoom.onnx (look-then-zoom)",
    )
    p.add_argument(
        "--name", default=None, help="model name stored in the metadata (default: the checkpoint's)"
    )
    p.add_argument("--version", default=None, help="model version (default: the checkpoint's)")
    p.add_argument("--int8", action="store_true", help="static INT8 quantisation (needs --calibration)")
    p.add_argument("--calibration", type=Path, help="manifest whose photos calibrate INT8 (and check parity)")
    p.add_argument("--eval", dest="evaluation", type=Path, help="manifest of photos for the agreement check")
    p.add_argument("--parity", type=Path, help="manifest of photos for the fp32 parity check")
    p.add_argument("--fp16-weights", action="store_true", help="store weights as float16 (fp32 compute)")
    p.add_argument(
        "--int8-weights",
        action="store_true",
        help="store weights as int8 per channel (fp32 compute; a quarter of the size, e.g. for an ensemble)",
    )
    p.add_argument(
        "--min-agreement", type=float, default=0.99, help="INT8/int8-weights/fp16 top-1 agreement needed"
    )
    p.add_argument("--exporter", choices=("dynamo", "legacy"), default="dynamo")
    return p


def export_main(argv: list[str] | None = None) -> int:
    """Entry point of ``camid export``; exit 1 (and no file) when a check fails."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("onnx_ir", "onnxscript", "root", "torch"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    if args.int8 + args.fp16_weights + args.int8_weights > 1:
        print("camid export: choose one of --int8, --fp16-weights and --int8-weights", file=sys.stderr)
        return 2
    if args.upgrade is not None:
        return _upgrade(args.upgrade, args.labels, args.out)
    if args.zoom is not None:
        return _pair(args)
    try:
        report = export_onnx(
            args.checkpoint,
            args.out,
            name=args.name,
            version=args.version,
            parity_manifest=args.parity,
            int8=args.int8,
            calibration=args.calibration,
            evaluation=args.evaluation,
            fp16=args.fp16_weights,
            int8_weights_only=args.int8_weights,
            min_agreement=args.min_agreement,
            exporter=args.exporter,
        )
    except (ExportError, FileNotFoundError, ValueError) as exc:
        print(f"camid export: {exc}", file=sys.stderr)
        return 1
    budget = "ok" if report.size_bytes <= RELEASE_MAX_BYTES else "OVER the 12 MB release budget"
    print(
        f"wrote {report.path} ({report.size_bytes / 1e6:.1f} MB, {budget}; {report.precision}); "
        f"max |d softmax| vs torch {report.parity_max_abs_softmax:.2e}, top-1 agreement "
        f"{100 * report.agreement:.1f}% on {report.n_photos} photos + {report.n_random} random images"
    )
    return 0


def _upgrade(old: Path, labels_path: Path | None, out: Path) -> int:
    from data.contract import ContractError
    from data.labels import load_labels

    try:
        path = upgrade_onnx(old, load_labels(labels_path), out)
    except (ExportError, ContractError, OSError, ValueError) as exc:
        print(f"camid export: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}: {old}'s weights with a full model contract")
    return 0


def _pair(args: argparse.Namespace) -> int:
    if args.int8 or args.int8_weights:
        print(
            "camid export: --zoom exports fp32 or --fp16-weights, not --int8/--int8-weights", file=sys.stderr
        )
        return 2
    try:
        det, crop = export_pair(
            args.checkpoint,
            args.zoom,
            args.out,
            name=args.name,
            version=args.version,
            exporter=args.exporter,
            fp16=args.fp16_weights,
            evaluation=args.evaluation or args.parity,
            min_agreement=args.min_agreement,
        )
    except (ExportError, FileNotFoundError, ValueError) as exc:
        print(f"camid export: {exc}", file=sys.stderr)
        return 1
    for report in (det, crop):
        agreed = f", agrees with fp32 on {100 * report.agreement:.1f}%" if report.n_photos else ""
        print(f"wrote {report.path} ({report.size_bytes / 1e6:.1f} MB, {report.precision}); "
              f"parity vs torch {report.parity_max_abs_softmax:.2e}{agreed}")  # fmt: skip
    return 0
