"""Tests for data.dedup: hashes, near-duplicate search and the duplicate report."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from data.dedup import find_duplicates, hamming, near_pairs, phash, sha256_bytes, sha256_file
from data.manifest import Manifest, Record
from tests.data.conftest import reencoded, smooth_photo


def test_sha256_of_file_and_bytes_agree(tmp_path: Path) -> None:
    path = smooth_photo(tmp_path / "a.jpg", seed=1)
    assert sha256_file(path) == sha256_bytes(path.read_bytes())
    assert len(sha256_file(path)) == 64


def test_hamming_counts_bits() -> None:
    assert hamming("0" * 16, "f" * 16) == 64
    assert hamming("00000000000000ff", "000000000000000f") == 4
    assert hamming("abcdef0123456789", "abcdef0123456789") == 0


def test_phash_survives_reencoding_but_separates_different_photos(tmp_path: Path) -> None:
    a = smooth_photo(tmp_path / "a.jpg", seed=1)
    a2 = reencoded(a, tmp_path / "a2.jpg", scale=3.0, quality=40)
    b = smooth_photo(tmp_path / "b.jpg", seed=2)
    ha, ha2, hb = (phash(Image.open(p)) for p in (a, a2, b))
    assert len(ha) == 16 and int(ha, 16) >= 0
    assert hamming(ha, ha2) <= 4
    assert hamming(ha, hb) > 12


def test_phash_of_flat_and_textured_images_differ() -> None:
    flat = Image.new("RGB", (64, 64), (128, 128, 128))
    stripes = Image.fromarray(np.tile(np.repeat([0, 255], 8), (64, 4)).astype(np.uint8))
    assert hamming(phash(flat), phash(stripes)) > 12


def test_near_pairs_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    base = [int(x) for x in rng.integers(0, 2**63, 40)]
    hashes = [f"{v:016x}" for v in base] + [f"{base[3] ^ 0b1011:016x}", f"{base[7] ^ (1 << 62):016x}"]
    expected = sorted(
        (i, j, hamming(hashes[i], hashes[j]))
        for i in range(len(hashes))
        for j in range(i + 1, len(hashes))
        if hamming(hashes[i], hashes[j]) <= 6
    )
    assert sorted(near_pairs(hashes, 6)) == expected
    assert (3, 40, 3) in expected and (7, 41, 1) in expected


def test_find_duplicates_reports_exact_near_and_unreadable(tmp_path: Path) -> None:
    a = smooth_photo(tmp_path / "a.jpg", seed=1)
    shutil.copy(a, tmp_path / "a_copy.jpg")
    reencoded(a, tmp_path / "a_big.jpg")
    smooth_photo(tmp_path / "b.jpg", seed=2)
    smooth_photo(tmp_path / "c.png", seed=3, fmt="PNG")
    (tmp_path / "broken.jpg").write_bytes(b"not a photo")
    names = ["a.jpg", "b.jpg", "a_copy.jpg", "a_big.jpg", "c.png", "broken.jpg"]
    manifest = Manifest(tmp_path, [Record(n, "no_camera", n) for n in names])

    report = find_duplicates(manifest, progress=False)

    assert report.exact == [[0, 2]]
    assert [(i, j) for i, j, _ in report.near_pairs] == [(0, 3)]
    assert report.near_clusters == [[0, 3]]
    assert list(report.errors) == [5]
    assert {(i, j) for i, j, _ in report.duplicate_pairs()} == {(0, 2), (0, 3)}
    text = report.summary()
    assert "exact duplicates: 1 sets (1 redundant files)" in text
    assert "a.jpg = a_copy.jpg" in text and "broken.jpg" in text
