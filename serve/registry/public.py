"""The public view of the registry: the map's cameras, their exports and statistics.

A camera is public when it is not merged into another, has a location, is of a target model, and
at least one of its photos' submissions is ``verified``. Its first and last seen are the UTC dates
of its verified photos, its photo count the number of them. Locations are rounded
(``public_location_decimals``, 4: ~10 m), dates carry no time of day, and no submitter, note or
unblurred photo is ever part of it (:mod:`serve.exports` has the same rule).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from sqlalchemy import select
from sqlalchemy.orm import Session

from data.labels import LabelSet
from serve.exports import CAMERA_CSV_COLUMNS, PUBLIC_LOCATION_DECIMALS
from serve.registry.districts import District, district_of
from serve.spreadsheet import safe_row
from serve.store import Store
from serve.store.models import Submission
from serve.store.registry_models import Camera, CameraPhoto

SOURCE = "camid moderated submissions"
PUBLIC_CSV_COLUMNS = (*CAMERA_CSV_COLUMNS, "status", "mount", "radius_m", "district")


@dataclass(frozen=True)
class PublicCamera:
    """One camera on the public map, with the latest verified photo (and box) that shows it."""

    id: str
    label: str
    lat: float
    lon: float
    radius_m: float
    mount: str | None
    status: str
    first_seen: datetime
    last_seen: datetime
    photo_count: int
    photo_submission: str
    photo_box: list[float] | None
    district: str | None


def public_cameras(
    s: Session, labels: LabelSet, districts: Sequence[District] = (), model: str | None = None
) -> list[PublicCamera]:
    """Every public camera (oldest first), optionally only of one ``model`` (a label)."""
    query = (
        select(Camera, CameraPhoto.submission_id, CameraPhoto.box, Submission.created_at)
        .join(CameraPhoto, CameraPhoto.camera_id == Camera.id)
        .join(Submission, Submission.id == CameraPhoto.submission_id)
        .where(Camera.status != "merged", Camera.lat.is_not(None), Camera.lon.is_not(None))
        .where(Submission.status == "verified")
        .order_by(Submission.created_at, CameraPhoto.id)
    )
    if model:
        query = query.where(Camera.label == model)
    groups: dict[str, list[Any]] = {}
    for row in s.execute(query).all():
        if row.Camera.label in labels and labels.is_target(row.Camera.label):
            groups.setdefault(row.Camera.id, []).append(row)
    out = []
    for rows in groups.values():
        cam: Camera = rows[0].Camera
        assert cam.lat is not None and cam.lon is not None
        latest = rows[-1]
        out.append(
            PublicCamera(
                id=cam.id,
                label=cam.label,
                lat=cam.lat,
                lon=cam.lon,
                radius_m=cam.radius_m or 0.0,
                mount=cam.mount,
                status=cam.status,
                first_seen=rows[0].created_at,
                last_seen=latest.created_at,
                photo_count=len({r.submission_id for r in rows}),
                photo_submission=latest.submission_id,
                photo_box=latest.box,
                district=district_of(cam.lat, cam.lon, districts),
            )
        )
    return sorted(out, key=lambda c: (c.first_seen, c.id))


def properties(c: PublicCamera, labels: LabelSet, decimals: int = PUBLIC_LOCATION_DECIMALS) -> dict[str, Any]:
    """The public facts of a camera: rounded location, dates only, no submitter or note."""
    info = labels.get(c.label)
    return {
        "id": c.id,
        "lat": round(c.lat, decimals),
        "lon": round(c.lon, decimals),
        "model": info.display_name,
        "label": c.label,
        "form_factor": info.form_factor,
        "first_seen": c.first_seen.date().isoformat(),
        "last_seen": c.last_seen.date().isoformat(),
        "photo_count": c.photo_count,
        "source": SOURCE,
        "status": c.status,
        "mount": c.mount,
        "radius_m": round(c.radius_m),
        "district": c.district,
        "photo_url": f"/v1/cameras/{c.id}/photo.jpg",
    }


def cameras_geojson(
    cameras: Sequence[PublicCamera], labels: LabelSet, decimals: int = PUBLIC_LOCATION_DECIMALS
) -> dict[str, Any]:
    """A GeoJSON (RFC 7946) FeatureCollection: one Point (``[lon, lat]``) per physical camera."""
    features = []
    for c in cameras:
        props = properties(c, labels, decimals)
        point = {"type": "Point", "coordinates": [props.pop("lon"), props.pop("lat")]}
        features.append({"type": "Feature", "id": c.id, "geometry": point, "properties": props})
    return {"type": "FeatureCollection", "features": features}


def cameras_csv(
    cameras: Sequence[PublicCamera], labels: LabelSet, decimals: int = PUBLIC_LOCATION_DECIMALS
) -> str:
    """One row per camera in :data:`PUBLIC_CSV_COLUMNS` (the old columns first, unchanged)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=PUBLIC_CSV_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for c in cameras:
        writer.writerow(safe_row(properties(c, labels, decimals)))  # district names: text, never formulas
    return buf.getvalue()


def cameras_kml(
    cameras: Sequence[PublicCamera], labels: LabelSet, decimals: int = PUBLIC_LOCATION_DECIMALS
) -> str:
    """KML 2.2 with one Placemark per camera (Google Earth, OsmAnd, QGIS open it)."""
    marks = []
    for c in cameras:
        p = properties(c, labels, decimals)
        seen = f"first seen {p['first_seen']}, last seen {p['last_seen']}"
        text = f"{p['model']}; {seen}; {p['photo_count']} photo(s)"
        marks.append(
            f'<Placemark id="{escape(c.id)}"><name>{escape(str(p["model"]))}</name>'
            f"<description>{escape(text)}</description>"
            f"<Point><coordinates>{p['lon']},{p['lat']},0</coordinates></Point></Placemark>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
        f"<name>camid cameras</name>{''.join(marks)}</Document></kml>\n"
    )


def stats(cameras: Sequence[PublicCamera], labels: LabelSet) -> dict[str, Any]:
    """Counts of public cameras per model, per district and per month first seen (``YYYY-MM``)."""
    models = Counter(c.label for c in cameras)
    districts = Counter(c.district or "" for c in cameras)
    months = Counter(c.first_seen.strftime("%Y-%m") for c in cameras)
    return {
        "total": len(cameras),
        "per_model": [
            {"label": label, "model": labels.get(label).display_name, "count": n}
            for label, n in sorted(models.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "per_district": [
            {"district": name or None, "count": n}
            for name, n in sorted(districts.items(), key=lambda kv: (kv[0] == "", -kv[1], kv[0]))
        ],
        "per_month": [{"month": m, "count": n} for m, n in sorted(months.items())],
    }


def load_public(
    store: Store,
    districts: Sequence[District],
    model: str | None = None,
    district: str | None = None,
) -> list[PublicCamera]:
    """The public cameras of ``store``, optionally of one model (label) and in one district."""
    with store.session() as s:
        cameras = public_cameras(s, store.labels, districts, model)
    return [c for c in cameras if district is None or c.district == district]
