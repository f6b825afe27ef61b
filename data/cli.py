"""``camid data …``: validate, import, split, merge, check-split, stats and synth (forwarded)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from data.labels import load_labels

if TYPE_CHECKING:
    from data.importers.detection import CropOptions
    from data.split import SplitConfig, SplitResult

Handler = Callable[[argparse.Namespace], int]


def _ratios(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"{text!r}: give train,val,test fractions, e.g. 0.7,0.15,0.15")
    return values


def cmd_validate(args: argparse.Namespace) -> int:
    from data.manifest import read_manifest, validate_manifest
    from data.stats import stats_text

    labels = load_labels(args.labels)
    problems = validate_manifest(args.manifest, labels)
    for problem in problems:
        print(f"{args.manifest}: {problem}")
    if problems:
        print(f"{len(problems)} problem(s); fix them and run `camid data validate` again", file=sys.stderr)
        return 1
    print(stats_text(read_manifest(args.manifest), labels))
    print("OK")
    return 0


def _crop_options(args: argparse.Namespace) -> CropOptions:
    from data.importers.common import parse_class_map
    from data.importers.detection import CropOptions

    return CropOptions(
        class_map=parse_class_map(args.class_map),
        margin=args.margin,
        whole=args.whole,
        empty_label=args.empty_label,
        source=args.source,
        license=args.license,
    )


def cmd_import(args: argparse.Namespace) -> int:
    from data import importers
    from data.importers.common import parse_class_map
    from data.importers.sheet import SheetColumns, SheetOptions

    labels = load_labels(args.labels)
    kind = args.kind
    if kind == "folder":
        result = importers.import_folder(
            args.input, args.out, labels=labels, source=args.source, license=args.license
        )
    elif kind == "sheet":
        columns = SheetColumns(
            args.photo_col, args.model_col, args.lat_col, args.lon_col, args.date_col, args.location_col
        )
        options = SheetOptions(
            columns, parse_class_map(args.model_map), args.radius_m, args.source, args.license
        )
        result = importers.import_sheet(args.input, args.photos, args.out, options, labels=labels)
    elif kind == "coco":
        result = importers.import_coco(
            args.input, args.out, _crop_options(args), images_dir=args.images, labels=labels
        )
    elif kind == "voc":
        result = importers.import_voc(
            args.input, args.out, _crop_options(args), images_dir=args.images, labels=labels
        )
    else:
        result = importers.import_yolo(args.input, args.out, _crop_options(args), labels=labels)
    print(result.summary())
    return 0


def _report_split(args: argparse.Namespace, path: Path, result: SplitResult) -> int:
    from data.split import check_split
    from data.stats import count_table

    print(result.report.summary())
    print()
    print(count_table(result.manifest.records, lambda r: r.label, "label", load_labels(args.labels).names))
    leaks = check_split(
        result.manifest, result.report, radius_m=args.radius_m, max_distance=args.max_distance
    )
    for leak in leaks:
        print(f"LEAK {leak}")
    print(f"\n{len(result.groups)} split groups; leaks: {len(leaks)}; wrote {path}")
    return 1 if leaks else 0


def _split_config(args: argparse.Namespace) -> SplitConfig:
    from data.split import SplitConfig

    return SplitConfig(tuple(args.ratios), args.seed, args.radius_m, args.max_distance)


def cmd_split(args: argparse.Namespace) -> int:
    from data.split import write_split

    path, result = write_split(args.manifest, args.out, _split_config(args))
    return _report_split(args, path, result)


def cmd_merge(args: argparse.Namespace) -> int:
    from data.merge import merge_manifests

    path, result = merge_manifests(
        args.manifests, args.out, _split_config(args), negatives_from=args.negatives_from,
        negative=load_labels(args.labels).negative,
    )  # fmt: skip
    return _report_split(args, path, result)


def cmd_check_split(args: argparse.Namespace) -> int:
    from data.manifest import read_manifest
    from data.split import check_split

    leaks = check_split(read_manifest(args.manifest), radius_m=args.radius_m, max_distance=args.max_distance)
    for leak in leaks:
        print(f"LEAK {leak}")
    print(f"{len(leaks)} leak(s)" if leaks else "no leaks: OK")
    return 1 if leaks else 0


def cmd_stats(args: argparse.Namespace) -> int:
    from data.manifest import read_manifest
    from data.stats import stats_text

    print(stats_text(read_manifest(args.manifest), load_labels(args.labels)))
    return 0


def _add_dedup_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--radius-m", type=float, default=50.0, help="ungrouped photos this close share a group")
    p.add_argument("--max-distance", type=int, default=6, help="pHash bits for a near duplicate")


def _add_import_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    imp = sub.add_parser("import", help="import photos into a manifest (OUT/manifest.csv)")
    kinds = imp.add_subparsers(dest="kind", required=True)
    specs = {
        "folder": "a folder with one sub-folder per label (LABEL/*.jpg)",
        "coco": "a COCO JSON file (whole images + box crops)",
        "yolo": "a YOLO dataset folder (images/, labels/, data.yaml or classes.txt)",
        "voc": "a folder of Pascal VOC XML files",
        "sheet": "the verification spreadsheet (CSV) plus a folder of its photos",
    }
    for kind, help_text in specs.items():
        p = kinds.add_parser(kind, help=help_text, description=help_text)
        p.add_argument("input", type=Path)
        p.add_argument("--out", type=Path, required=True, help="folder for manifest.csv (and crops/)")
        p.add_argument("--source", default="", help="provenance written to the source column")
        p.add_argument("--license", default="", help="licence written to the license column")
        p.set_defaults(func=cmd_import)
        if kind in ("coco", "yolo", "voc"):
            p.add_argument("--class-map", action="append", help="NAME=LABEL[,NAME=LABEL…] (or NAME=skip)")
            p.add_argument("--margin", type=float, default=0.25, help="context around each box, per side")
            p.add_argument(
                "--whole", action=argparse.BooleanOptionalAction, default=True, help="keep whole images"
            )
            p.add_argument("--empty-label", help="label for images without boxes (default: skip them)")
        if kind in ("coco", "voc"):
            p.add_argument("--images", type=Path, help="image folder (default: next to the annotations)")
    sheet = kinds.choices["sheet"]
    sheet.add_argument("--photos", type=Path, required=True, help="folder holding the sheet's photos")
    for name, default in [
        ("photo", "photo"),
        ("model", "model"),
        ("lat", "lat"),
        ("lon", "lon"),
        ("date", "date"),
        ("location", "location"),
    ]:
        sheet.add_argument(
            f"--{name}-col", default=default, help=f"column with the {name} (default {default!r})"
        )
    sheet.add_argument("--model-map", action="append", help="TEXT=LABEL: model text containing TEXT -> LABEL")
    sheet.add_argument("--radius-m", type=float, default=50.0, help="photos this close share a group")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="camid data", description="Prepare camid's training data.")
    parser.add_argument("--labels", type=Path, help="labels.yaml (default: the one shipped with camid)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="list every problem of a manifest (exit 1 if any)")
    p.add_argument("manifest", type=Path)
    p.set_defaults(func=cmd_validate)
    _add_import_parsers(sub)
    p = sub.add_parser("split", help="group-aware stratified train/val/test split")
    p.add_argument("manifest", type=Path)
    p.add_argument("--out", type=Path, help="write here (default: rewrite MANIFEST in place)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ratios", type=_ratios, default=(0.7, 0.15, 0.15), help="train,val,test")
    _add_dedup_flags(p)
    p.set_defaults(func=cmd_split)
    p = sub.add_parser("merge", help="merge manifests (renders + real + exports) and split them anew")
    p.add_argument("manifests", type=Path, nargs="*")
    p.add_argument(
        "--negatives-from", type=Path, action="append", default=[], metavar="MANIFEST",
        help="merge only this manifest's photos without a camera (repeat), e.g. real photos whose "
        "camera photos must stay unseen for an honest evaluation",
    )  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="the merged manifest CSV to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ratios", type=_ratios, default=(0.7, 0.15, 0.15), help="train,val,test")
    _add_dedup_flags(p)
    p.set_defaults(func=cmd_merge)
    p = sub.add_parser("check-split", help="prove the split does not leak (exit 1 on any leak)")
    p.add_argument("manifest", type=Path)
    _add_dedup_flags(p)
    p.set_defaults(func=cmd_check_split)
    p = sub.add_parser("stats", help="counts per label, form factor and split")
    p.add_argument("manifest", type=Path)
    p.set_defaults(func=cmd_stats)
    sub.add_parser("synth", help="render synthetic photos (see `camid data synth --help`)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``camid data``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["synth"]:
        from data.synth.cli import main as synth_main

        return int(synth_main(argv[1:]))
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
