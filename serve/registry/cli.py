"""``camid registry``: import the official camera list and compare it with the verified cameras.

    camid registry import-official police.csv          # or .geojson; replaces the list held before
    camid registry compare --districts opstine.geojson --out comparison.csv --district-counts districts.csv

The comparison matches each official entry to the nearest verified camera within ``--distance``
metres (default ``CAMID_OFFICIAL_MATCH_M``, 50) and prints the three counts; the CSV lists every
camera found by citizens that is not on the official list, every official entry with no verified
camera, and the matches.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from data.labels import LabelSet
from serve.moderators import StoreCheckError, add_store_options, open_cli_store
from serve.registry import official
from serve.registry.districts import District, load_districts
from serve.registry.public import public_cameras
from serve.store import Store

__all__ = ["main"]

PROG = "camid registry"


def _metres(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of metres") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: the match radius must be more than 0 metres")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    add_store_options(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import-official", help="import the official list (CSV or GeoJSON); replaces it")
    imp.add_argument("file", type=Path)
    cmp = sub.add_parser("compare", help="compare the official list with the verified cameras")
    cmp.add_argument(
        "--distance", type=_metres, help="match radius in metres (default CAMID_OFFICIAL_MATCH_M)"
    )
    cmp.add_argument(
        "--districts", type=Path, help="GeoJSON polygons of districts (default CAMID_DISTRICTS_PATH)"
    )
    cmp.add_argument("--out", type=Path, help="write the three lists as CSV here")
    cmp.add_argument("--district-counts", type=Path, help="write the per-district counts as CSV here")
    cmp.add_argument("--model", type=Path, help="the served model, for its labels (default CAMID_MODEL_PATH)")
    return parser


def _err(text: str) -> None:
    sys.stderr.write(f"{PROG}: {text}\n")


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _import(store: Store, path: Path) -> int:
    try:
        entries, encoding = official.load_official(path)
    except ValueError as exc:
        _err(str(exc))
        return 2
    if encoding != "utf-8":
        _out(f"{path}: not UTF-8; read as Windows-1250 ({encoding})")
    with store.session(write=True) as s:
        n = official.store_official(s, entries, path.name)
    _out(f"imported {n} official entries from {path} (the list held before is replaced)")
    return 0


def _labels(model: Path | None) -> LabelSet:
    """The served model's classes (which are targets, their names), read from its metadata."""
    from serve.engine import open_session, parse_metadata
    from serve.settings import Settings

    path = model or Settings().model_path
    session = open_session(path, threads=1, hint="; pass --model PATH")
    return parse_metadata(session.get_modelmeta().custom_metadata_map, str(path)).labels


def _compare(store: Store, args: argparse.Namespace) -> int:
    from serve.settings import Settings

    settings = Settings()
    try:
        labels = _labels(args.model)
        path = args.districts or settings.districts_path
        districts: list[District] = load_districts(path) if path else []
    except (ValueError, RuntimeError) as exc:
        _err(str(exc))
        return 2
    distance = args.distance or settings.official_match_m
    with store.session() as s:
        entries = official.official_entries(s)
        cameras = public_cameras(s, labels, districts)
    if not entries:
        _err("no official list in the store; run `camid registry import-official FILE` first")
        return 2
    result = official.compare(entries, cameras, distance, districts)
    matched = f"matched within {distance:g} m: {len(result.matched)}"
    _out(f"official entries: {len(entries)}, verified cameras: {len(cameras)}, {matched}")
    _out(f"found by citizens, not on the official list: {len(result.citizens_only)}")
    _out(f"on the official list, no verified camera: {len(result.official_only)}")
    for name, c in result.per_district.items():
        only = f"{c['citizens_only']} citizens only, {c['official_only']} official only"
        _out(f"  {name}: {c['citizens']} citizens, {c['official']} official, {only}")
    reports = []
    if args.out:
        rows = official.comparison_rows(result, districts, settings.public_location_decimals)
        reports.append((args.out, official.comparison_csv(rows)))
    if args.district_counts:
        reports.append((args.district_counts, official.district_csv(result.per_district)))
    for path, text in reports:
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            _err(f"{path}: cannot write ({exc.strerror})")
            return 2
        _out(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``camid registry``."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    try:
        store, _ = open_cli_store(args.data_dir, PROG)
    except StoreCheckError as exc:
        _err(str(exc))
        return 2
    try:
        if args.command == "import-official":
            return _import(store, args.file)
        return _compare(store, args)
    finally:
        store.close()
