"""The label taxonomy: read once from ``labels.yaml``, the only place that names a class."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

FORM_FACTORS = ("ptz", "bullet", "dome", "box", "fisheye", "none")
DEFAULT_LABELS_PATH = Path(__file__).with_name("labels.yaml")


@dataclass(frozen=True)
class ClassInfo:
    """One class: its machine name, what people see, its shape and whether it is a target."""

    name: str
    display_name: str
    form_factor: str
    target: bool
    description: str = ""


@dataclass(frozen=True)
class LabelSet:
    """The ordered classes of a model; the order is the order of the model's outputs."""

    classes: tuple[ClassInfo, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes if c.target)

    @property
    def cameras(self) -> tuple[str, ...]:
        """Classes that are a camera (form factor other than ``none``): what a detector finds."""
        return tuple(c.name for c in self.classes if c.form_factor != "none")

    @property
    def negative(self) -> str:
        """The class of a photo without any camera (the first class of form factor ``none``)."""
        for c in self.classes:
            if c.form_factor == "none":
                return c.name
        raise ValueError("the label set has no class with form_factor 'none' for photos without a camera")

    def index(self, name: str) -> int:
        """Position of ``name`` in the model's output; ValueError naming the known labels."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(
                f"unknown label {name!r}; known labels: {', '.join(self.names)} "
                "(add new classes to data/labels.yaml)"
            ) from None

    def get(self, name: str) -> ClassInfo:
        return self.classes[self.index(name)]

    def is_target(self, name: str) -> bool:
        return self.get(name).target

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __len__(self) -> int:
        return len(self.classes)

    def __iter__(self) -> Iterator[ClassInfo]:
        return iter(self.classes)


def _parse_class(entry: object, where: str) -> ClassInfo:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise ValueError(f"{where}: each class needs at least a 'name' string")
    name = entry["name"]
    form_factor = str(entry.get("form_factor", "none"))
    if form_factor not in FORM_FACTORS:
        raise ValueError(
            f"{where}: class {name!r} has form_factor {form_factor!r}; use one of {', '.join(FORM_FACTORS)}"
        )
    return ClassInfo(
        name=name,
        display_name=str(entry.get("display_name", name)),
        form_factor=form_factor,
        target=bool(entry.get("target", False)),
        description=str(entry.get("description", "")),
    )


def load_labels(path: Path | None = None) -> LabelSet:
    """Read the label taxonomy (default: ``data/labels.yaml`` shipped with camid)."""
    path = path or DEFAULT_LABELS_PATH
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    entries = doc.get("classes") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a non-empty 'classes:' list")
    classes = tuple(_parse_class(e, str(path)) for e in entries)
    names = [c.name for c in classes]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{path}: duplicate class names: {', '.join(dupes)}")
    return LabelSet(classes)
