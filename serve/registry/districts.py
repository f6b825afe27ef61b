"""Districts from a user-supplied GeoJSON file (e.g. Belgrade's municipalities from OpenStreetMap).

Each Polygon or MultiPolygon feature is one district, named by its ``name`` property (or
``name:en``, ``NAME``, ``district``, ``municipality``, else its feature ``id``). Other geometries
are skipped. No network access: the file is the user's.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.geo import point_in_geometry

NAME_KEYS = ("name", "name:en", "NAME", "district", "municipality", "opstina")
AREAS = ("Polygon", "MultiPolygon")


@dataclass(frozen=True)
class District:
    """One named area."""

    name: str
    geometry: dict[str, Any]

    def contains(self, lat: float, lon: float) -> bool:
        return point_in_geometry(lat, lon, self.geometry)


def _name(feature: dict[str, Any], index: int) -> str:
    props = feature.get("properties") or {}
    for key in NAME_KEYS:
        if props.get(key):
            return str(props[key])
    return str(feature.get("id") or f"district {index + 1}")


def parse_districts(data: Any, where: str = "districts") -> list[District]:
    """The districts of a GeoJSON FeatureCollection; ValueError naming ``where`` when it is none."""
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise ValueError(f"{where}: not a GeoJSON FeatureCollection")
    out = []
    for i, feature in enumerate(data.get("features") or []):
        geometry = (feature or {}).get("geometry") or {}
        if geometry.get("type") in AREAS:
            out.append(District(_name(feature, i), geometry))
    if not out:
        raise ValueError(f"{where}: no Polygon or MultiPolygon features (districts are areas)")
    return out


def load_districts(path: Path) -> list[District]:
    """Read a districts file; ValueError naming the file and the problem."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the districts GeoJSON ({exc})") from exc
    return parse_districts(data, str(path))


@functools.lru_cache(maxsize=4)
def _cached(path: str, mtime_ns: int) -> tuple[District, ...]:
    return tuple(load_districts(Path(path)))


def districts_for(path: Path | None) -> tuple[District, ...]:
    """The districts of the configured file (read again when it changes), none without one."""
    if path is None:
        return ()
    try:
        mtime = Path(path).stat().st_mtime_ns
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the districts GeoJSON ({exc.strerror})") from exc
    return _cached(str(path), mtime)


def district_of(lat: float, lon: float, districts: Sequence[District]) -> str | None:
    """The first district holding the point, or None."""
    return next((d.name for d in districts if d.contains(lat, lon)), None)
