"""Counts of a manifest per label, form factor and split, as aligned plain-text tables."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from data.labels import LabelSet, load_labels
from data.manifest import SPLITS, Manifest, Record

UNSPLIT = "(none)"


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Plain-text table: first column left-aligned, the others right-aligned."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        first = row[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))]).rstrip()

    return "\n".join([line(cells[0]), line(["-" * w for w in widths]), *(line(r) for r in cells[1:])])


def form_factor_of(record: Record, labels: LabelSet) -> str:
    """The record's ``form_factor`` column when filled, else its label's form factor."""
    given = record.extra.get("form_factor", "").strip()
    if given:
        return given
    return labels.get(record.label).form_factor if record.label in labels else "?"


def count_table(
    records: Sequence[Record], key: Callable[[Record], str], title: str, order: Sequence[str]
) -> str:
    """Counts of ``key(record)`` per split (columns only for splits that occur) plus a total."""
    splits = [s for s in SPLITS if any(r.split == s for r in records)]
    if any(r.split not in SPLITS for r in records):
        splits.append(UNSPLIT)
    counts: dict[str, Counter[str]] = {}
    for r in records:
        counts.setdefault(key(r), Counter())[r.split if r.split in SPLITS else UNSPLIT] += 1
    names = [k for k in order if k in counts] + sorted(k for k in counts if k not in order)
    rows: list[list[object]] = [[k, *(counts[k][s] for s in splits), sum(counts[k].values())] for k in names]
    rows.append(["total", *(sum(c[s] for c in counts.values()) for s in splits), len(records)])
    return format_table([title, *splits, "total"], rows)


def stats_text(manifest: Manifest, labels: LabelSet | None = None) -> str:
    """The label table and the form-factor table, separated by a blank line."""
    labels = labels or load_labels()
    records = manifest.records
    by_label = count_table(records, lambda r: r.label, "label", labels.names)
    form_factors = [labels.get(n).form_factor for n in labels.names]
    by_form = count_table(records, lambda r: form_factor_of(r, labels), "form_factor", form_factors)
    return f"{by_label}\n\n{by_form}"
