"""Exact and near-duplicate photos: sha256 of the bytes and a 64-bit DCT perceptual hash (pHash).

The pHash is the classic one (as in the ``imagehash`` package): greyscale, 32x32 Lanczos resize,
2-D DCT-II, the 8x8 lowest frequencies compared with their median -> 64 bits, written as 16 hex
digits. Two photos whose hashes differ in at most ~6 bits look the same to a person (re-encodes,
resizes, small crops or noise). Torch-free: numpy and Pillow only.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from data.images import ImageError, load_image
from data.manifest import Manifest

__all__ = [
    "DuplicateReport",
    "Fingerprint",
    "UnionFind",
    "find_duplicates",
    "fingerprint",
    "hamming",
    "near_pairs",
    "phash",
    "sha256_bytes",
    "sha256_file",
]

log = logging.getLogger(__name__)

_HASH_SIZE = 8
_DCT_SIZE = 32
_CHUNK = 1024  # rows per block when comparing all hashes with all hashes


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


@cache
def _dct_matrix(n: int) -> np.ndarray:
    """Unnormalised DCT-II matrix (the same coefficients as scipy.fftpack.dct, type 2)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * i + 1) / (2 * n))


def phash(img: Image.Image) -> str:
    """64-bit DCT perceptual hash of an image as 16 hex digits."""
    grey = img.convert("L").resize((_DCT_SIZE, _DCT_SIZE), Image.Resampling.LANCZOS)
    pixels = np.asarray(grey, dtype=np.float64)
    dct = _dct_matrix(_DCT_SIZE)
    coeffs = (dct @ pixels @ dct.T)[:_HASH_SIZE, :_HASH_SIZE]
    bits = (coeffs > np.median(coeffs)).ravel()
    value = int("".join("1" if b else "0" for b in bits), 2)
    return f"{value:016x}"


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two hex hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


@dataclass(frozen=True)
class Fingerprint:
    """Exact (sha256 of the file) and perceptual (pHash of the decoded photo) identity."""

    sha256: str
    phash: str


def fingerprint(path: str | Path) -> Fingerprint:
    """Hash a photo file: sha256 of its bytes and pHash of its pixels (decoded small)."""
    data = Path(path).read_bytes()
    img = load_image(data, min_side=2 * _DCT_SIZE)
    return Fingerprint(sha256=sha256_bytes(data), phash=phash(img))


def near_pairs(hashes: Sequence[str], max_distance: int) -> list[tuple[int, int, int]]:
    """All index pairs ``(i, j, distance)`` with i < j whose pHashes differ in <= max_distance bits."""
    if len(hashes) < 2:
        return []
    values = np.array([int(h, 16) for h in hashes], dtype=np.uint64)
    pairs: list[tuple[int, int, int]] = []
    for start in range(0, len(values), _CHUNK):
        block = values[start : start + _CHUNK]
        dist = _popcount(block[:, None] ^ values[None, :])
        rows, cols = np.nonzero(dist <= max_distance)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            i = start + r
            if i < c:
                pairs.append((i, c, int(dist[r, c])))
    return pairs


_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount(values: np.ndarray) -> np.ndarray:
    """Set bits per uint64 element (numpy >= 2 has bitwise_count; older numpy uses a byte table)."""
    if hasattr(np, "bitwise_count"):
        return np.asarray(np.bitwise_count(values))
    as_bytes = values.view(np.uint8).reshape(*values.shape, 8)
    counts: np.ndarray = _BYTE_POPCOUNT[as_bytes].sum(axis=-1)
    return counts


class UnionFind:
    """Disjoint sets over 0..n-1 (path halving, union by size)."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.size = [1] * n

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]

    def components(self) -> list[list[int]]:
        """Sets with their members in index order, ordered by their first member."""
        by_root: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            by_root.setdefault(self.find(i), []).append(i)
        return sorted(by_root.values(), key=lambda members: members[0])


def _clusters(n: int, pairs: Iterable[tuple[int, int, int]]) -> list[list[int]]:
    uf = UnionFind(n)
    for i, j, _ in pairs:
        uf.union(i, j)
    return [c for c in uf.components() if len(c) > 1]


@dataclass
class DuplicateReport:
    """Duplicates among a manifest's records; indices refer to ``paths`` (the records' order).

    ``exact``: sets of records whose files are byte-identical. ``near_pairs``: pairs of records
    with different bytes but pHashes within ``max_distance`` bits; ``near_clusters``: those pairs
    joined transitively. ``errors``: records whose photo could not be read, with the reason.
    """

    paths: list[str]
    sha256: list[str | None]
    phash: list[str | None]
    max_distance: int
    exact: list[list[int]] = field(default_factory=list)
    near_pairs: list[tuple[int, int, int]] = field(default_factory=list)
    near_clusters: list[list[int]] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)

    def duplicate_pairs(self) -> list[tuple[int, int, str]]:
        """Every (i, j, kind) that must stay in one split: kind is "exact" or "near"."""
        pairs = [(c[0], other, "exact") for c in self.exact for other in c[1:]]
        return pairs + [(i, j, "near") for i, j, _ in self.near_pairs]

    def summary(self, limit: int = 10) -> str:
        """Human-readable report: counts, then up to ``limit`` examples of each kind."""
        extra = sum(len(c) - 1 for c in self.exact)
        lines = [
            f"photos: {len(self.paths)}, unreadable: {len(self.errors)}",
            f"exact duplicates: {len(self.exact)} sets ({extra} redundant files)",
            f"near duplicates (pHash distance <= {self.max_distance}): {len(self.near_pairs)} pairs "
            f"in {len(self.near_clusters)} clusters",
        ]
        lines += [f"  exact: {' = '.join(self.paths[i] for i in c)}" for c in self.exact[:limit]]
        lines += [f"  near ({d}): {self.paths[i]} ~ {self.paths[j]}" for i, j, d in self.near_pairs[:limit]]
        lines += [f"  unreadable: {self.paths[i]}: {msg}" for i, msg in list(self.errors.items())[:limit]]
        return "\n".join(lines)


def _fingerprint_all(manifest: Manifest, progress: bool) -> tuple[list[Fingerprint | None], dict[int, str]]:
    prints: list[Fingerprint | None] = []
    errors: dict[int, str] = {}
    records = tqdm(manifest.records, desc="hashing", unit="photo", disable=not progress, leave=False)
    for i, record in enumerate(records):
        try:
            prints.append(fingerprint(manifest.resolve(record)))
        except (ImageError, OSError) as exc:
            log.warning("%s: cannot hash (%s)", record.path, exc)
            errors[i] = str(exc)
            prints.append(None)
    return prints, errors


def find_duplicates(manifest: Manifest, max_distance: int = 6, *, progress: bool = True) -> DuplicateReport:
    """Find byte-identical files (sha256) and look-alike photos (pHash within ``max_distance`` bits)."""
    prints, errors = _fingerprint_all(manifest, progress)
    by_sha: dict[str, list[int]] = {}
    phash_of: dict[str, str] = {}
    for i, fp in enumerate(prints):
        if fp is not None:
            by_sha.setdefault(fp.sha256, []).append(i)
            phash_of[fp.sha256] = fp.phash
    exact = [members for members in by_sha.values() if len(members) > 1]
    # Compare one representative per distinct file; exact sets carry the rest along.
    reps = [members[0] for members in by_sha.values()]
    rep_hashes = [phash_of[sha] for sha in by_sha]
    near = [(reps[a], reps[b], d) for a, b, d in near_pairs(rep_hashes, max_distance)]
    return DuplicateReport(
        paths=[r.path for r in manifest.records],
        sha256=[fp.sha256 if fp else None for fp in prints],
        phash=[fp.phash if fp else None for fp in prints],
        max_distance=max_distance,
        exact=exact,
        near_pairs=sorted(near),
        near_clusters=_clusters(len(prints), near),
        errors=errors,
    )
