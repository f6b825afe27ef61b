"""Photo-pipeline throughput against its floor: `camid predict`'s end-to-end path on 12-MP JPEGs
vs Pillow decoding the same files at the scale the pipeline needs, with the same threads, in one run.

    .venv/bin/python benchmarks/throughput.py [--model M.onnx] [--photos 32] [--rounds 3] [--real DIR]

decode-only: read the file, ``Image.open`` + ``draft`` (the model's ``min_side``) + ``load``, in a
pool of ``--workers`` threads (default: one per core). end-to-end: ``serve.predict.predict_paths``
(decode + EXIF orientation + RGB, size/blank checks, GPS, sha256, perceptual hash, preprocessing,
onnxruntime, result JSON) with the same decode threads. Goal: end-to-end ≥ 80% of decode-only.
Rounds alternate the two, and each figure is the median of its rounds. Torch-free.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from photos import phone_photo  # benchmarks/ is on sys.path when run
from PIL import Image

from serve.engine import Engine, default_model_path
from serve.photos import decode_photo
from serve.predict import predict_paths

GOAL = 0.80


def decode_only(paths: list[Path], min_side: int, workers: int) -> None:
    """Pillow's decode of every file at the scale the pipeline asks for (the floor)."""

    def decode(path: Path) -> None:
        img = Image.open(io.BytesIO(path.read_bytes()))
        img.draft("RGB", (min_side, min_side))
        img.load()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(decode, paths))


def end_to_end(engine: Engine, paths: list[Path], workers: int, batch: int, ahead: int = 1) -> None:
    """What `camid predict --json` does for these files, printing aside (``ahead=0``: each batch is
    decoded, then classified, as `camid predict` did before decoding ran ahead of the model)."""
    outcomes = predict_paths(engine, paths, batch_size=batch, decode_workers=workers, ahead=ahead)
    for outcome in outcomes:
        if outcome.result is None:
            raise SystemExit(f"{outcome.path}: {outcome.problem}")
        json.dumps(outcome.result)


def costs(model: Path, paths: list[Path], batch: int) -> dict[str, float]:
    """Milliseconds of one core per photo for each step (one thread each, one after the other)."""
    engine = Engine.load(model, threads=1)
    data = [p.read_bytes() for p in paths[: 2 * batch]]
    side = engine.min_side

    def ms(run: Callable[[], object]) -> float:  # the quickest of three: the least disturbed
        times = []
        for _ in range(3):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return 1000 * min(times) / len(data)

    def pillow() -> None:
        for d in data:
            img = Image.open(io.BytesIO(d))
            img.draft("RGB", (side, side))
            img.load()

    photos = [decode_photo(d, min_side=side) for d in data]
    sizes = [(p.width, p.height) for p in photos]
    engine.classify([p.image for p in photos], sizes=sizes)  # warm-up: the first run allocates
    return {
        "Pillow draft decode": ms(pillow),
        "camid decode + checks + hashes": ms(lambda: [decode_photo(d, min_side=side) for d in data]),
        "prepare + model": ms(lambda: engine.classify([p.image for p in photos], sizes=sizes)),
    }


def photos_per_s(run: Callable[[], None], n: int) -> float:
    start = time.perf_counter()
    run()
    return n / (time.perf_counter() - start)


def test_photos(folder: Path, count: int, real: Path | None) -> list[Path]:
    """``count`` 12-MP JPEGs: copies of the real ones in ``real`` (≥ 10 MP), else generated."""
    if real is not None:
        big = [p for p in sorted(real.rglob("*.jp*g")) if _megapixels(p) >= 10]
        if not big:
            raise SystemExit(f"{real}: no JPEG of 10 MP or more")
        out = []
        for i in range(count):
            copy = folder / f"real{i}.jpg"
            copy.write_bytes(big[i % len(big)].read_bytes())
            out.append(copy)
        return out
    return [phone_photo(folder / f"p{i}.jpg", (4032, 3024), i) for i in range(count)]


def _megapixels(path: Path) -> float:
    with Image.open(path) as img:
        return img.width * img.height / 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="exported .onnx (default: the release model)")
    ap.add_argument("--photos", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="decode threads, both sides")
    ap.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: cores)")
    ap.add_argument("--real", type=Path, default=None, help="copy these real ≥ 10-MP JPEGs instead")
    args = ap.parse_args(argv)
    model = args.model or default_model_path()
    engine = Engine.load(model, threads=args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        paths = test_photos(Path(tmp), args.photos, args.real)
        mb = sum(p.stat().st_size for p in paths) / len(paths) / 1e6
        end_to_end(engine, paths[: args.batch], args.workers, args.batch)  # warm-up
        floor, pipeline, serial = [], [], []
        n = len(paths)
        for _ in range(args.rounds):
            floor.append(photos_per_s(lambda: decode_only(paths, engine.min_side, args.workers), n))
            pipeline.append(photos_per_s(lambda: end_to_end(engine, paths, args.workers, args.batch), n))
            serial.append(photos_per_s(lambda: end_to_end(engine, paths, args.workers, args.batch, 0), n))
        cost = costs(model, paths, args.batch)
    d, e, e0 = statistics.median(floor), statistics.median(pipeline), statistics.median(serial)
    setup = f"{args.workers} decode threads, {args.photos} JPEGs of {mb:.1f} MB, batch {args.batch}"
    model = f"{engine.info.name} {engine.info.version} (min_side {engine.min_side})"
    print(f"{model}: {setup}, {args.rounds} rounds, medians")
    print(f"{'decode-only (Pillow draft)':<28} {d:6.1f} photos/s")
    print(f"{'end-to-end (camid predict)':<28} {e:6.1f} photos/s   {100 * e / d:3.0f}%")
    print(f"{'  same, no decoding ahead':<28} {e0:6.1f} photos/s   {100 * e0 / d:3.0f}%")
    for step, ms in cost.items():
        print(f"  {step:<34} {ms:6.1f} ms of one core per photo")
    spent = cost["camid decode + checks + hashes"] + cost["prepare + model"]
    ceiling = 100 * cost["Pillow draft decode"] / spent
    print(f"ceiling with every core busy: {ceiling:.0f}% (Pillow's decode / all the work)")
    verdict = "meets" if e / d >= GOAL else "below"
    print(f"end-to-end / decode-only: {100 * e / d:.0f}% ({verdict} the {100 * GOAL:.0f}% goal)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
