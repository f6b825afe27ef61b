"""``camid predict PATH...``: classify photos from the command line (no torch needed).

Prints one ARCHITECTURE.md result per photo (``--json``: one JSON line each, with ``"path"``
added) or an aligned table. Unreadable, too small and blank photos are reported on stderr, one
line naming the file and the problem, and skipped.
Exit status: 0 all photos classified, 1 some failed, 2 usage or model error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.images import ImageError, sniff_format
from serve.engine import Engine, ModelError, build_result, default_model_path
from serve.photos import DecodedPhoto, decode_photo, reason

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Photo:
    path: Path
    decoded: DecodedPhoto


def _is_image(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return sniff_format(f.read(64)) is not None
    except OSError:
        return False


def iter_photos(paths: Sequence[Path]) -> Iterator[Path]:
    """Files as given; directories walked recursively, keeping files whose content is an image."""
    for path in paths:
        if path.is_dir():
            yield from (p for p in sorted(path.rglob("*")) if p.is_file() and _is_image(p))
        else:
            yield path


def read_photo(path: Path, min_side: int) -> Photo:
    """Decode one photo and gather the facts the result reports; ImageError/OSError on failure."""
    return Photo(path, decode_photo(path.read_bytes(), min_side=min_side))


def _try_read(path: Path, min_side: int) -> Photo | Exception:
    """``read_photo`` that hands a decoding failure back as a value (for a thread pool's map)."""
    try:
        return read_photo(path, min_side)
    except (ImageError, OSError) as exc:
        return exc


def _os_problem(exc: Exception) -> str:
    """``No such file or directory`` rather than ``[Errno 2] No such file or directory: 'a.jpg'``."""
    text = exc.strerror if isinstance(exc, OSError) else None
    return text or str(exc)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="camid predict", description="Classify photos with an exported camid model."
    )
    p.add_argument("paths", nargs="+", type=Path, help="photos or folders (walked recursively)")
    p.add_argument("--model", type=Path, default=None, help=f"ONNX model (default: {default_model_path()})")
    p.add_argument("--json", action="store_true", help="one JSON result per line instead of a table")
    p.add_argument("--heatmap-dir", type=Path, default=None, help="write a heatmap PNG per photo here")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: physical cores)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument(
        "--decode-workers", type=int, default=0, help="threads decoding photos (default: one per core)"
    )
    return p


def _load_engine(path: Path | None, threads: int | None) -> Engine:
    model = path or default_model_path()
    if path is None and not model.is_file():
        raise ModelError(
            f"no release model at {model} yet; train and export one (`camid train`, `camid export "
            f"--out {model}`) or pass --model MODEL.onnx"
        )
    return Engine.load(model, threads=threads)


def _chunks(paths: Iterator[Path], size: int) -> Iterator[list[Path]]:
    chunk: list[Path] = []
    for p in paths:
        chunk.append(p)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _table_row(result: dict[str, Any], width: int) -> str:
    return (
        f"{result['path']:<{width}}  {result['label']:<24} {result['confidence']:>6.3f}  {result['decision']}"
    )


def _heatmap_path(folder: Path, photo: Path, used: set[str]) -> Path:
    name = f"{photo.stem}.png"
    n = 1
    while name in used:
        n += 1
        name = f"{photo.stem}-{n}.png"
    used.add(name)
    return folder / name


@dataclass(frozen=True)
class Outcome:
    """One photo of :func:`predict_paths`: its result (``result``) or why it failed (``problem``)."""

    path: Path
    result: dict[str, Any] | None = None
    heatmap_png: bytes | None = None
    problem: str = ""


def _decode_ahead(
    pool: ThreadPoolExecutor, chunks: Iterator[list[Path]], min_side: int, ahead: int
) -> Iterator[list[tuple[Path, Future[Photo | Exception]]]]:
    """Chunks whose photos are being decoded already: ``ahead`` more chunks are submitted before the
    current one is handed out, so decoding goes on while the model runs (0: decode, then classify)."""
    queued: deque[list[tuple[Path, Future[Photo | Exception]]]] = deque()
    for chunk in chunks:
        queued.append([(p, pool.submit(_try_read, p, min_side)) for p in chunk])
        if len(queued) > ahead:
            yield queued.popleft()
    yield from queued


def predict_paths(
    engine: Engine,
    paths: Sequence[Path],
    *,
    batch_size: int = 8,
    decode_workers: int | None = None,
    heatmap: bool = False,
    ahead: int = 1,
) -> Iterator[Outcome]:
    """Classify photos (files, or folders walked recursively) in order, ``batch_size`` at a time.

    JPEG entropy decoding dominates on phone photos and Pillow releases the GIL while decoding, so
    photos are decoded in ``decode_workers`` threads (default: one per core), ``ahead`` batches
    ahead of the model. Unreadable photos come back as an :class:`Outcome` with its ``problem``.
    """
    with ThreadPoolExecutor(max_workers=decode_workers or os.cpu_count() or 1) as pool:
        chunks = _chunks(iter_photos(paths), max(1, batch_size))
        for chunk in _decode_ahead(pool, chunks, engine.min_side, ahead):
            decoded = [(path, future.result()) for path, future in chunk]
            photos = [photo for _, photo in decoded if isinstance(photo, Photo)]
            predictions = iter(
                engine.classify(
                    [p.decoded.image for p in photos],
                    heatmap=heatmap,
                    sizes=[(p.decoded.width, p.decoded.height) for p in photos],
                )
                if photos
                else ()
            )
            for path, photo in decoded:  # in the order given, failures in their place
                if not isinstance(photo, Photo):
                    problem = reason(photo) if isinstance(photo, ImageError) else _os_problem(photo)
                    yield Outcome(path, problem=problem)
                    continue
                pred = next(predictions)
                result = {"path": str(path), **build_result(pred, engine.info, **photo.decoded.facts())}
                result.pop("heatmap_png", None)
                yield Outcome(path, result, pred.heatmap_png)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``camid predict``."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        engine = _load_engine(args.model, args.threads)
    except ModelError as exc:
        print(f"camid predict: {exc}", file=sys.stderr)
        return 2
    if args.heatmap_dir is not None:
        args.heatmap_dir.mkdir(parents=True, exist_ok=True)
    failed, seen = 0, 0
    results: list[dict[str, Any]] = []
    used: set[str] = set()
    outcomes = predict_paths(
        engine,
        args.paths,
        batch_size=args.batch_size,
        decode_workers=args.decode_workers or None,
        heatmap=args.heatmap_dir is not None,
    )
    for outcome in outcomes:
        seen += 1
        if outcome.result is None:
            failed += 1
            print(f"{outcome.path}: {outcome.problem}", file=sys.stderr)
            continue
        result = outcome.result
        if outcome.heatmap_png is not None:
            out = _heatmap_path(args.heatmap_dir, outcome.path, used)
            out.write_bytes(outcome.heatmap_png)
            result["heatmap"] = str(out)
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            results.append(result)
    if not seen:
        print("camid predict: no photos found in " + ", ".join(map(str, args.paths)), file=sys.stderr)
        return 1
    if results:
        width = max(len(r["path"]) for r in results)
        print(f"{'path':<{width}}  {'label':<24} {'conf':>6}  decision")
        for r in results:
            print(_table_row(r, width))
    return 1 if failed else 0
