"""Training-zip export: time until the download starts and until it ends, streamed vs built first.

built-first  what ``GET /v1/export/training.zip`` did before: the whole zip is written (every
             photo blurred) before the first byte is sent
streamed     today's route: ``serve.exports.training_zip_chunks``, the manifest and then one chunk
             per blurred photo as soon as it is ready

Both start from an empty blurred-copy cache (``public/``) on the same store of N verified photos
(street-like noise, W x H px). Run: ``python benchmarks/exports.py [--n 20] [--size 2016x1512]``.
"""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from data.dedup import phash
from data.labels import load_labels
from serve import exports
from serve.store import NewSubmission, Store, open_store


def _photo(seed: int, size: tuple[int, int]) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    small = rng.integers(0, 256, (h // 16, w // 16, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((w, h), Image.Resampling.BILINEAR)


def build_store(folder: Path, n: int, size: tuple[int, int]) -> Store:
    """A store with ``n`` verified photos of ``size``."""
    store = open_store(SimpleNamespace(data_dir=folder, database_url=None), load_labels())
    mod = store.authenticate(store.add_moderator("bench"))
    assert mod is not None
    for i in range(n):
        img = _photo(i, size)
        result = {
            "label": "other_camera",
            "confidence": 0.9,
            "decision": "flag",
            "probabilities": [{"label": "other_camera", "score": 0.9}],
            "model": {"name": "bench", "version": "0"},
            "image": {"width": size[0], "height": size[1]},
        }
        sub = store.add_submission(NewSubmission(img, f"{i:064x}", phash(img), result))
        store.review(sub["id"], moderator_id=mod.id, verdict="confirm", label=None, revision=0)
    return store


def _fresh_cache(store: Store) -> None:
    shutil.rmtree(store.photos.public_root)
    store.photos.public_root.mkdir(mode=0o700)


def built_first(store: Store) -> tuple[float, float]:
    _fresh_cache(store)
    start = time.perf_counter()
    exports.write_training_zip(store, io.BytesIO())
    total = time.perf_counter() - start
    return total, total


def streamed(store: Store) -> tuple[float, float]:
    _fresh_cache(store)
    start = time.perf_counter()
    records = exports.verified_records(store)
    first = None
    for i, _chunk in enumerate(exports.training_zip_chunks(store, records)):
        if i == 1:  # the manifest went out at 0; 1 is the first photo
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    return first or total, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--size", default="2016x1512")
    args = parser.parse_args()
    size = (int(args.size.split("x")[0]), int(args.size.split("x")[1]))
    with tempfile.TemporaryDirectory() as tmp:
        store = build_store(Path(tmp) / "var", args.n, size)
        try:
            rows = [("built-first", *built_first(store)), ("streamed", *streamed(store))]
        finally:
            store.close()
    base_first = rows[0][1]
    print(f"training.zip, {args.n} verified photos of {size[0]}x{size[1]} px, empty blur cache")  # noqa: T201
    print(f"{'mode':<12} {'first photo s':>13} {'whole zip s':>11} {'start vs built-first':>20}")  # noqa: T201
    for name, first, total in rows:
        print(f"{name:<12} {first:>13.2f} {total:>11.2f} {base_first / first:>19.1f}x")  # noqa: T201


if __name__ == "__main__":
    main()
