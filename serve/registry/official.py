"""The official (police) camera list: import it, and compare it with the cameras citizens found.

Input: CSV with a header (``id``, ``lat``/``latitude``, ``lon``/``lng``/``longitude``, optional
``address`` and ``model``; ``;`` or ``,`` separated, decimal commas accepted; UTF-8, else read as
Windows-1250) or GeoJSON Point features (``id`` from the feature or its properties). An import
replaces the list held before.

The comparison matches each official entry to the nearest public camera within
``max_distance_m``, one to one (closest pairs first), and lists the citizens' cameras that are
not on the official list, the official entries with no verified camera, and, when districts are
given, the counts per district.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from data.geo import distance_m
from serve.registry.districts import District, district_of
from serve.registry.public import PublicCamera
from serve.spreadsheet import safe_row, safe_values
from serve.store.models import utcnow
from serve.store.registry_models import OfficialCamera

ID_KEYS = ("id", "official_id", "ref")
LAT_KEYS = ("lat", "latitude", "y", "geo_lat")
LON_KEYS = ("lon", "lng", "long", "longitude", "x", "geo_lon")
FALLBACK_ENCODING = "cp1250"  # Windows-1250: Serbian Latin (and Central European) spreadsheets
OUTSIDE_DISTRICTS = "outside the districts"  # the per-district row of what lies in no district
CSV_COLUMNS = ("kind", "official_id", "camera_id", "district", "lat", "lon", "distance_m", "model", "address")


@dataclass(frozen=True)
class OfficialEntry:
    """One entry of the official list."""

    id: str
    lat: float
    lon: float
    address: str = ""
    model: str = ""


@dataclass
class Comparison:
    """The three lists and the counts per district (empty without districts; with them, a last row
    :data:`OUTSIDE_DISTRICTS` counts what lies in none)."""

    matched: list[tuple[OfficialEntry, PublicCamera, float]] = field(default_factory=list)
    citizens_only: list[PublicCamera] = field(default_factory=list)
    official_only: list[OfficialEntry] = field(default_factory=list)
    per_district: dict[str, dict[str, int]] = field(default_factory=dict)


def _number(text: Any, where: str, what: str) -> float:
    try:
        value = float(str(text).strip().replace(",", "."))
    except ValueError:
        raise ValueError(f"{where}: {what} {text!r} is not a number") from None
    limit = 90 if what == "latitude" else 180
    if not -limit <= value <= limit:
        raise ValueError(f"{where}: {what} {value} is out of range (±{limit})")
    return value


def _pick(row: dict[str, Any], keys: Sequence[str]) -> Any:
    lowered = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
    return next((lowered[k] for k in keys if lowered.get(k) not in (None, "")), None)


def _entry(row: dict[str, Any], where: str) -> OfficialEntry:
    ident, lat, lon = _pick(row, ID_KEYS), _pick(row, LAT_KEYS), _pick(row, LON_KEYS)
    if ident is None or lat is None or lon is None:
        raise ValueError(f"{where}: needs an id, a latitude and a longitude (columns id, lat, lon)")
    return OfficialEntry(
        id=str(ident).strip()[:64],
        lat=_number(lat, where, "latitude"),
        lon=_number(lon, where, "longitude"),
        address=str(_pick(row, ("address", "adresa", "location")) or "").strip(),
        model=str(_pick(row, ("model", "type")) or "").strip()[:128],
    )


def parse_csv(text: str, name: str) -> list[OfficialEntry]:
    """Entries of a CSV official list; ValueError naming the file and row."""
    try:
        dialect: Any = csv.Sniffer().sniff(text.splitlines()[0] if text else "", delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = [str(k).strip() for k in reader.fieldnames or [] if k]
    for what, keys in (("id", ID_KEYS), ("latitude", LAT_KEYS), ("longitude", LON_KEYS)):
        if header and not any(k.lower() in keys for k in header):
            raise ValueError(
                f"{name}: no {what} column (one of {', '.join(keys)}); the header has: {', '.join(header)}"
            )
    return [_entry(row, f"{name}, row {i}") for i, row in enumerate(reader, start=2)]


def parse_geojson(data: Any, name: str) -> list[OfficialEntry]:
    """Entries of a GeoJSON official list (Point features; ``[lon, lat]``)."""
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise ValueError(f"{name}: not a GeoJSON FeatureCollection")
    out = []
    for i, feature in enumerate(data.get("features") or []):
        where = f"{name}, feature {i}"
        if not isinstance(feature, dict):
            raise ValueError(f"{where}: not a GeoJSON Feature (an object with a Point geometry)")
        geometry = feature.get("geometry") or {}
        if geometry.get("type") != "Point" or len(geometry.get("coordinates") or []) < 2:
            raise ValueError(f"{where}: the official list needs Point geometries")
        props = dict(feature.get("properties") or {})
        props.setdefault("id", feature.get("id"))
        lon, lat = geometry["coordinates"][:2]
        out.append(_entry({**props, "lat": lat, "lon": lon}, where))
    return out


def decode_text(data: bytes, name: str) -> tuple[str, str]:
    """The text of a list and the encoding read: UTF-8 (a BOM or none), else Windows-1250, as Serbian
    Latin spreadsheets are often saved (č ć š ž đ). ValueError naming the file for other bytes."""
    if b"\x00" not in data:  # UTF-16 ("Unicode text"), a spreadsheet (.xlsx) or other binary
        try:
            return data.decode("utf-8-sig"), "utf-8"
        except UnicodeDecodeError:
            pass
        try:
            return data.decode(FALLBACK_ENCODING), FALLBACK_ENCODING
        except UnicodeDecodeError:
            pass
    raise ValueError(
        f"{name}: cannot read the official list: it is neither UTF-8 nor Windows-1250 text; "
        "save it as CSV UTF-8 (or GeoJSON) and import it again"
    )


def load_official(path: Path) -> tuple[list[OfficialEntry], str]:
    """Read an official list (``.csv``, ``.geojson``/``.json``) and say which encoding it was read
    in (``utf-8`` or :data:`FALLBACK_ENCODING`); ValueError naming the file and the problem."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the official list ({exc.strerror or exc})") from exc
    text, encoding = decode_text(data, str(path))
    if Path(path).suffix.lower() in (".geojson", ".json"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON ({exc})") from exc
        entries = parse_geojson(parsed, str(path))
    else:
        entries = parse_csv(text, str(path))
    ids = [e.id for e in entries]
    if dupes := sorted({i for i in ids if ids.count(i) > 1}):
        raise ValueError(f"{path}: ids repeat: {', '.join(dupes[:5])}; each entry needs its own id")
    if not entries:
        raise ValueError(f"{path}: no entries")
    return entries, encoding


def read_official(path: Path) -> list[OfficialEntry]:
    """The entries of an official list (see :func:`load_official`)."""
    return load_official(path)[0]


def store_official(s: Session, entries: Iterable[OfficialEntry], source: str) -> int:
    """Replace the stored official list with ``entries``; returns how many were stored."""
    s.execute(delete(OfficialCamera))
    now, n = utcnow(), 0
    for e in entries:
        s.add(OfficialCamera(id=e.id, lat=e.lat, lon=e.lon, address=e.address, model=e.model,
                             source=source[:255], imported_at=now))  # fmt: skip
        n += 1
    s.flush()
    return n


def official_entries(s: Session) -> list[OfficialEntry]:
    """The stored official list, by id."""
    rows = s.scalars(select(OfficialCamera).order_by(OfficialCamera.id)).all()
    return [OfficialEntry(r.id, r.lat, r.lon, r.address, r.model) for r in rows]


def compare(
    official: Sequence[OfficialEntry],
    cameras: Sequence[PublicCamera],
    max_distance_m: float,
    districts: Sequence[District] = (),
) -> Comparison:
    """Match official entries to cameras one to one, closest pairs first, within ``max_distance_m``."""
    pairs = sorted(
        (d, i, j)
        for i, e in enumerate(official)
        for j, c in enumerate(cameras)
        if (d := distance_m(e.lat, e.lon, c.lat, c.lon)) <= max_distance_m
    )
    used_o: set[int] = set()
    used_c: set[int] = set()
    out = Comparison()
    for d, i, j in pairs:
        if i not in used_o and j not in used_c:
            used_o.add(i)
            used_c.add(j)
            out.matched.append((official[i], cameras[j], d))
    out.matched.sort(key=lambda m: m[0].id)
    out.citizens_only = [c for j, c in enumerate(cameras) if j not in used_c]
    out.official_only = [e for i, e in enumerate(official) if i not in used_o]
    if districts:
        out.per_district = _per_district(out, districts)
    return out


def _per_district(result: Comparison, districts: Sequence[District]) -> dict[str, dict[str, int]]:
    """Counts per district, and a last row for what lies in none, so the rows add up to the totals."""
    keys = ("citizens", "official", "matched", "citizens_only", "official_only")
    table = {name: dict.fromkeys(keys, 0) for name in [*(d.name for d in districts), OUTSIDE_DISTRICTS]}

    def add(lat: float, lon: float, *columns: str) -> None:
        name = district_of(lat, lon, districts) or OUTSIDE_DISTRICTS
        for col in columns:
            table[name][col] += 1

    for e, c, _ in result.matched:
        add(c.lat, c.lon, "citizens", "matched")
        add(e.lat, e.lon, "official")
    for c in result.citizens_only:
        add(c.lat, c.lon, "citizens", "citizens_only")
    for e in result.official_only:
        add(e.lat, e.lon, "official", "official_only")
    return table


def comparison_rows(
    result: Comparison, districts: Sequence[District] = (), decimals: int = 4
) -> list[dict[str, Any]]:
    """One row per item of the three lists, in :data:`CSV_COLUMNS` (public: locations rounded)."""
    rows: list[dict[str, Any]] = []

    def row(kind: str, lat: float, lon: float, **values: Any) -> dict[str, Any]:
        base: dict[str, Any] = dict.fromkeys(CSV_COLUMNS, "")
        base.update(kind=kind, lat=round(lat, decimals), lon=round(lon, decimals))
        base["district"] = district_of(lat, lon, districts) or ""
        return {**base, **values}

    for e, c, d in result.matched:
        rows.append(row("matched", c.lat, c.lon, official_id=e.id, camera_id=c.id, distance_m=round(d, 1),
                        model=c.label, address=e.address))  # fmt: skip
    for c in result.citizens_only:
        rows.append(row("citizens_only", c.lat, c.lon, camera_id=c.id, model=c.label))
    for e in result.official_only:
        rows.append(row("official_only", e.lat, e.lon, official_id=e.id, model=e.model, address=e.address))
    return rows


def comparison_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The comparison's rows as CSV text (text cells safe to open in a spreadsheet)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(safe_row(r) for r in rows)  # official addresses, district names: text, never formulas
    return buf.getvalue()


def district_csv(per_district: dict[str, dict[str, int]]) -> str:
    """The per-district counts as CSV text (district names safe to open in a spreadsheet)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["district", "citizens", "official", "matched", "citizens_only", "official_only"])
    for name, c in per_district.items():
        writer.writerow(
            safe_values(
                [name, c["citizens"], c["official"], c["matched"], c["citizens_only"], c["official_only"]]
            )
        )
    return buf.getvalue()
