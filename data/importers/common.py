"""What every importer shares: the result type, class maps and writing the manifest."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from data.labels import LabelSet, load_labels
from data.manifest import Manifest, Record, write_manifest

SKIP = frozenset({"skip", "ignore", "-"})


@dataclass
class ImportResult:
    """Where the manifest went, how many photos per label, and what could not be imported."""

    manifest_path: Path
    records: list[Record]
    problems: list[str] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(r.label for r in self.records)

    def summary(self) -> str:
        """Counts per label, then every problem, one per line."""
        lines = [f"wrote {len(self.records)} photos to {self.manifest_path}"]
        lines += [f"  {label:<24} {n:>6}" for label, n in sorted(self.counts().items())]
        if self.problems:
            lines.append(f"{len(self.problems)} not imported:")
            lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def parse_class_map(items: Iterable[str] | str | None) -> dict[str, str]:
    """Parse ``name=label`` pairs (a list, or one comma-separated string) into a dict."""
    if items is None:
        return {}
    if isinstance(items, str):
        items = [items]
    mapping: dict[str, str] = {}
    for item in items:
        for pair in filter(None, (p.strip() for p in item.split(","))):
            name, sep, label = pair.partition("=")
            if not sep or not name.strip() or not label.strip():
                raise ValueError(
                    f"class map entry {pair!r}: write it as NAME=LABEL, e.g. camera=other_camera"
                )
            mapping[name.strip()] = label.strip()
    return mapping


def check_labels(mapping: Mapping[str, str], labels: LabelSet) -> None:
    """Every target of a class map must be a camid label (or ``skip``)."""
    bad = sorted({v for v in mapping.values() if v not in labels and v not in SKIP})
    if bad:
        raise ValueError(
            f"class map names unknown label(s) {', '.join(bad)}; known: {', '.join(labels.names)} "
            "(or 'skip' to drop a class)"
        )


def resolve_labels(labels: LabelSet | None) -> LabelSet:
    return labels if labels is not None else load_labels()


def finish(out: str | Path, records: list[Record], problems: list[str]) -> ImportResult:
    """Write ``OUT/manifest.csv`` (paths relative to OUT) and build the result."""
    if not records:
        raise ValueError("nothing to import: " + ("; ".join(problems[:5]) or "no photos found"))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = write_manifest(Manifest(Path.cwd(), records), out / "manifest.csv")
    return ImportResult(path, records, problems)
