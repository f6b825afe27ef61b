"""The camera catalogue (``data/cameras.yaml``): what the renderer draws for each class.

Torch-free and bpy-free. One entry per class of ``labels.yaml``: the framed subjects (device
kind, form factor, weight), the companions that may share the pole, and the class's share of
the default mix. Device kinds must be keys of :data:`data.synth.devices.DEVICE_KINDS`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from data.labels import FORM_FACTORS, LabelSet
from data.synth.devices import DEVICE_KINDS

DEFAULT_CATALOGUE_PATH = Path(__file__).parents[1] / "cameras.yaml"


@dataclass(frozen=True)
class Subject:
    """A device that may be the framed subject of a class's image."""

    kind: str
    form_factor: str
    weight: float


@dataclass(frozen=True)
class CameraClass:
    """What to render for one class."""

    name: str
    share: float
    subjects: tuple[Subject, ...]
    companions: tuple[str, ...]


@dataclass(frozen=True)
class Catalogue:
    """The classes the renderer can draw, in file order."""

    classes: tuple[CameraClass, ...]
    path: Path = DEFAULT_CATALOGUE_PATH

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def mix(self) -> dict[str, float]:
        """The default class shares (``--mix`` overrides some of them)."""
        return {c.name: c.share for c in self.classes}

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def get(self, name: str) -> CameraClass:
        """The entry of ``name``; ValueError saying to add one if it is missing."""
        for c in self.classes:
            if c.name == name:
                return c
        raise ValueError(self._missing_message([name]))

    def class_of_kind(self, kind: str, labels: LabelSet, scene: str | None = None) -> str | None:
        """The class a rendered device of ``kind`` is labelled with (its box's label).

        A kind that a class of ``labels`` frames as a camera subject (form factor other than
        ``none``) gets that class; a look-alike that no class frames as a camera (street light,
        sign) gets ``labels.negative``. A kind that several classes frame (one shape drawing two
        models) takes ``scene``, the class of the image it is in, when that is one of them. None:
        a camera whose only classes are missing from ``labels`` (it can have no label there).
        """
        framing = [
            c.name
            for c in self.classes
            if any(s.kind == kind and s.form_factor != "none" for s in c.subjects)
        ]
        if not framing:
            return labels.negative
        owners = [name for name in framing if name in labels]
        if len(owners) <= 1:
            return owners[0] if owners else None
        if scene in owners:
            return scene
        raise ValueError(
            f"{self.path}: device kind {kind!r} is a subject of {', '.join(owners)}, so its box "
            f"in a {scene or 'scene'} render has no single label; do not list it as a companion "
            f"of {scene or 'other classes'}"
        )

    def require(self, names: Iterable[str], labels_path: Path | str = "labels.yaml") -> None:
        """Fail early, naming each class of ``names`` that has no catalogue entry."""
        missing = [n for n in names if n not in self]
        if missing:
            raise ValueError(self._missing_message(missing, labels_path))

    def _missing_message(self, missing: list[str], labels_path: Path | str = "labels.yaml") -> str:
        return (
            f"synth cannot draw class(es) {', '.join(missing)} named in {labels_path}: "
            f"add an entry for each to {self.path} (subjects, companions, share; "
            f"see docs/synthetic.md, 'Adding a camera model'); catalogued: {', '.join(self.names)}"
        )


def _positive(value: Any, where: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{where}: {what} must be a positive number (got {value!r})")
    return float(value)


def _kind(value: Any, where: str) -> str:
    if value not in DEVICE_KINDS:
        raise ValueError(
            f"{where}: unknown device kind {value!r}; use one of {', '.join(DEVICE_KINDS)} "
            "(a new shape needs a DEVICE_KINDS entry in data/synth/devices.py)"
        )
    return str(value)


def _parse_subject(entry: Any, where: str) -> Subject:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: each subject needs kind, form_factor and weight (got {entry!r})")
    form = entry.get("form_factor")
    if form not in FORM_FACTORS:
        raise ValueError(f"{where}: form_factor {form!r}; use one of {', '.join(FORM_FACTORS)}")
    weight = _positive(entry.get("weight"), where, "weight")
    return Subject(_kind(entry.get("kind"), where), str(form), weight)


def _parse_class(name: str, entry: Any, path: Path) -> CameraClass:
    where = f"{path}: class {name!r}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a mapping with share, subjects and companions")
    subjects = entry.get("subjects")
    if not isinstance(subjects, list) or not subjects:
        raise ValueError(f"{where}: 'subjects' must be a non-empty list")
    companions = entry.get("companions", [])
    if not isinstance(companions, list):
        raise ValueError(f"{where}: 'companions' must be a list of device kinds")
    return CameraClass(
        name=name,
        share=_positive(entry.get("share"), where, "share"),
        subjects=tuple(_parse_subject(s, f"{where} subject {i}") for i, s in enumerate(subjects)),
        companions=tuple(_kind(c, f"{where} companions") for c in companions),
    )


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Read and check the camera catalogue (default: ``data/cameras.yaml`` shipped with camid)."""
    path = Path(path or DEFAULT_CATALOGUE_PATH)
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = doc.get("classes") if isinstance(doc, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise ValueError(f"{path}: expected a non-empty 'classes:' mapping of class name -> entry")
    return Catalogue(tuple(_parse_class(str(n), e, path) for n, e in entries.items()), path)
