"""Group-aware, label-stratified train/val/test split, and a check that proves it does not leak.

Records are joined into *split groups* (union-find) before assignment:

- records with the same non-empty ``group`` (one physical camera or scene);
- byte-identical files and near-duplicate photos (pHash), whatever their ``group``;
- records with an empty ``group`` and any record within ``radius_m`` metres (haversine on
  ``lat``/``lon``): a photo without a group that was taken next to another is probably of the
  same camera.

Split groups are then assigned, largest first (ties in a seeded random order), to the split that
is furthest below its per-label target, so labels are stratified as far as groups allow.
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from data.dedup import DuplicateReport, UnionFind, find_duplicates
from data.manifest import SPLITS, Manifest, Record, write_manifest

__all__ = [
    "Leak",
    "SplitConfig",
    "SplitResult",
    "assign_splits",
    "check_split",
    "haversine_m",
    "nearby_pairs",
    "split_groups",
    "split_manifest",
    "write_split",
]

log = logging.getLogger(__name__)

EARTH_RADIUS_M = 6_371_008.8
_M_PER_DEG_LAT = math.pi * EARTH_RADIUS_M / 180.0


@dataclass(frozen=True)
class SplitConfig:
    """How to split: fractions for train/val/test, seed, GPS radius and pHash distance."""

    ratios: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 0
    radius_m: float = 50.0
    max_distance: int = 6

    def __post_init__(self) -> None:
        if len(self.ratios) != len(SPLITS) or any(r < 0 for r in self.ratios) or sum(self.ratios) <= 0:
            raise ValueError(f"ratios {self.ratios}: give three non-negative fractions, e.g. 0.7,0.15,0.15")


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def nearby_pairs(
    records: Sequence[Record], radius_m: float, *, only_ungrouped: bool = True
) -> list[tuple[int, int]]:
    """Index pairs within ``radius_m`` metres where (by default) at least one record has no group.

    A sweep over records sorted by latitude, so it stays fast for tens of thousands of photos.
    """
    located = sorted(
        (r.lat, r.lon, i) for i, r in enumerate(records) if r.lat is not None and r.lon is not None
    )
    window = radius_m / _M_PER_DEG_LAT
    pairs: list[tuple[int, int]] = []
    for a, (lat_a, lon_a, i) in enumerate(located):
        for lat_b, lon_b, j in located[a + 1 :]:
            if lat_b - lat_a > window:
                break
            if only_ungrouped and records[i].group and records[j].group:
                continue
            if haversine_m(lat_a, lon_a, lat_b, lon_b) <= radius_m:
                pairs.append((min(i, j), max(i, j)))
    return sorted(pairs)


def split_groups(manifest: Manifest, report: DuplicateReport, radius_m: float) -> list[list[int]]:
    """Record indices joined into the units that must not be split (see the module docstring)."""
    records = manifest.records
    uf = UnionFind(len(records))
    first_of_group: dict[str, int] = {}
    for i, record in enumerate(records):
        if record.group:
            uf.union(first_of_group.setdefault(record.group, i), i)
    for i, j, _ in report.duplicate_pairs():
        uf.union(i, j)
    for i, j in nearby_pairs(records, radius_m):
        uf.union(i, j)
    return uf.components()


def _fill_empty_groups(records: Sequence[Record], groups: Sequence[Sequence[int]]) -> list[str]:
    """Group names with the empty ones filled from their split group, so the output validates.

    A photo without a group takes the name of a grouped photo it was joined to (nearby or a
    duplicate), else ``auto:<path of the group's first photo>``.
    """
    names = [r.group for r in records]
    for members in groups:
        named = next((records[i].group for i in members if records[i].group), None)
        fallback = named or f"auto:{records[min(members)].path}"
        for i in members:
            if not names[i]:
                names[i] = fallback
    return names


def _deficit(counts: Counter[str], current: Counter[str], target: dict[str, float]) -> float:
    """How far below target a split is for this group's labels (relative, weighted by the group)."""
    total = sum(counts.values())
    return sum(
        n / total * (target[label] - current[label]) / target[label]
        for label, n in counts.items()
        if target[label] > 0
    )


def assign_splits(labels: Sequence[str], groups: Sequence[Sequence[int]], config: SplitConfig) -> list[str]:
    """Give every record a split; each group goes whole to the split most below its label targets."""
    totals = Counter(labels)
    weights = [r / sum(config.ratios) for r in config.ratios]
    targets = {s: {lab: w * n for lab, n in totals.items()} for s, w in zip(SPLITS, weights, strict=True)}
    current: dict[str, Counter[str]] = {s: Counter() for s in SPLITS}
    order = list(groups)
    random.Random(config.seed).shuffle(order)
    order.sort(key=len, reverse=True)  # stable: equal sizes keep the seeded order
    result = [""] * len(labels)
    open_splits = [s for s, w in zip(SPLITS, weights, strict=True) if w > 0]
    for members in order:
        counts = Counter(labels[i] for i in members)
        # max() keeps the first of equal scores, so ties favour train, then val.
        best = max(open_splits, key=lambda s: _deficit(counts, current[s], targets[s]))
        current[best].update(counts)
        for i in members:
            result[i] = best
    return result


@dataclass
class SplitResult:
    """The split manifest plus what it was built from (for reporting)."""

    manifest: Manifest
    report: DuplicateReport
    groups: list[list[int]]

    def counts(self) -> dict[str, Counter[str]]:
        """Photos per split per label."""
        out: dict[str, Counter[str]] = {s: Counter() for s in SPLITS}
        for r in self.manifest.records:
            out[r.split or ""][r.label] += 1
        return out


def split_manifest(
    manifest: Manifest,
    config: SplitConfig = SplitConfig(),  # noqa: B008 - frozen dataclass
    report: DuplicateReport | None = None,
    *,
    progress: bool = True,
) -> SplitResult:
    """Split a manifest (group-aware, stratified, seeded); returns new records with ``split`` set."""
    if report is None:
        report = find_duplicates(manifest, config.max_distance, progress=progress)
    groups = split_groups(manifest, report, config.radius_m)
    splits = assign_splits([r.label for r in manifest.records], groups, config)
    filled = _fill_empty_groups(manifest.records, groups)
    records = [replace(r, group=g, split=s) for r, g, s in zip(manifest.records, filled, splits, strict=True)]
    largest = max((len(g) for g in groups), default=0)
    log.info("%d photos in %d split groups (largest %d)", len(records), len(groups), largest)
    return SplitResult(manifest.with_records(records), report, groups)


def write_split(
    manifest_path: str | Path,
    out: str | Path | None = None,
    config: SplitConfig = SplitConfig(),  # noqa: B008 - frozen dataclass
    *,
    progress: bool = True,
) -> tuple[Path, SplitResult]:
    """Read a manifest, split it and write it (to ``out``, default: in place, atomically)."""
    from data.manifest import read_manifest

    source = Path(manifest_path)
    result = split_manifest(read_manifest(source), config, progress=progress)
    target = Path(out) if out else source
    if target.is_dir():
        raise ValueError(f"{target}: give a CSV file to write the split manifest to (--out FILE.csv)")
    return write_manifest(result.manifest, target), result


@dataclass(frozen=True)
class Leak:
    """Two records (or one group) that sit in different splits but must not."""

    kind: str  # "unassigned" | "group" | "exact" | "near" | "nearby"
    paths: tuple[str, ...]
    splits: tuple[str, ...]
    detail: str = ""

    def __str__(self) -> str:
        where = ", ".join(f"{p} [{s}]" for p, s in zip(self.paths, self.splits, strict=False))
        return f"{self.kind}: {self.detail + ': ' if self.detail else ''}{where}"


def _group_leaks(records: Sequence[Record]) -> list[Leak]:
    by_group: dict[str, dict[str, str]] = {}
    for r in records:
        if r.group and r.split:
            by_group.setdefault(r.group, {}).setdefault(r.split, r.path)
    return [
        Leak("group", tuple(seen.values()), tuple(seen), f"group {group!r} is in {len(seen)} splits")
        for group, seen in sorted(by_group.items())
        if len(seen) > 1
    ]


def _pair_leaks(records: Sequence[Record], pairs: Sequence[tuple[int, int, str]]) -> list[Leak]:
    leaks = []
    for i, j, kind in pairs:
        a, b = records[i], records[j]
        if a.split and b.split and a.split != b.split:
            leaks.append(Leak(kind, (a.path, b.path), (a.split, b.split), f"{kind} duplicates"))
    return leaks


def check_split(
    manifest: Manifest,
    report: DuplicateReport | None = None,
    *,
    radius_m: float = 50.0,
    max_distance: int = 6,
    progress: bool = True,
) -> list[Leak]:
    """Every way the split leaks: unassigned rows, groups in two splits, duplicates across splits,
    and photos without a group taken within ``radius_m`` of a photo in another split."""
    records = manifest.records
    unassigned = [r for r in records if r.split not in SPLITS]
    if unassigned:
        paths = tuple(r.path for r in unassigned[:5])
        detail = f"{len(unassigned)} rows have no train/val/test split; run `camid data split`"
        return [Leak("unassigned", paths, tuple(r.split or "" for r in unassigned[:5]), detail)]
    if report is None:
        report = find_duplicates(manifest, max_distance, progress=progress)
    nearby = [(i, j, "nearby") for i, j in nearby_pairs(records, radius_m)]
    return _group_leaks(records) + _pair_leaks(records, report.duplicate_pairs() + nearby)
