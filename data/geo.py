"""Places on the Earth, torch-free: distances, coordinates written by people, districts.

- ``distance_m``: great-circle distance in metres (haversine on a 6,371 km sphere; under 0.5 %
  off the ellipsoid, plenty for "same pole" decisions).
- ``parse_location``: the first location in a citizen's text -- decimal degrees ("44.8125,
  20.4612", "44,8125; 20,4612", "lat 44.81 lon 20.46"), degrees-minutes-seconds
  (``44°48'45"N 20°27'40"E``, ``N 44° 48.750' E 20° 27.672'``), ``geo:`` URIs and Google Maps,
  OpenStreetMap and Apple Maps links. Addresses and short links (``goo.gl``, ``maps.app.goo.gl``)
  carry no coordinates and give ``None``: they stay text for a moderator (nothing is geocoded).
- ``point_in_geometry``: whether a point lies in a GeoJSON Polygon or MultiPolygon (holes
  respected); GeoJSON positions are ``[lon, lat]`` (RFC 7946).
- ``mean_location``: one location refined from several, with its spread in metres.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "EARTH_RADIUS_M",
    "LatLon",
    "Spread",
    "distance_m",
    "mean_location",
    "parse_location",
    "parse_map_link",
    "point_in_geometry",
]

EARTH_RADIUS_M = 6_371_008.8


class LatLon(NamedTuple):
    """A point in decimal degrees (WGS 84), latitude first."""

    lat: float
    lon: float


class Spread(NamedTuple):
    """A location refined from several: the mean point and how far its sources lie from it."""

    lat: float
    lon: float
    spread_m: float  # the largest distance of a source point from the mean


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points given in decimal degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def valid_point(lat: float, lon: float) -> LatLon | None:
    """The point, or None when it is no place (not finite, latitude beyond ±90, longitude ±180)."""
    if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
        return None
    return LatLon(lat, lon)


# --- links -------------------------------------------------------------------------------------

_URL = re.compile(r"(?:https?://|geo:)[^\s<>\"')\]]+", re.IGNORECASE)
_NUM = r"[-+]?\d{1,3}(?:\.\d+)?"
_PAIR = re.compile(rf"^\s*({_NUM})\s*,\s*({_NUM})")
_AT = re.compile(rf"@({_NUM}),({_NUM})")  # Google: /@lat,lon,17z
_PIN = re.compile(rf"!3d({_NUM})!4d({_NUM})")  # Google: the dropped pin or place itself
_OSM_HASH = re.compile(rf"map=\d+(?:\.\d+)?/({_NUM})/({_NUM})")
_PAIR_KEYS = ("q", "query", "ll", "sll", "coordinate", "center", "destination", "daddr", "saddr")


def _pair(text: str) -> LatLon | None:
    match = _PAIR.match(unquote(text).replace("+", " "))
    return valid_point(float(match[1]), float(match[2])) if match else None


def _from_query(query: Mapping[str, list[str]]) -> LatLon | None:
    if "mlat" in query and "mlon" in query:  # OpenStreetMap's marker
        return _pair(f"{query['mlat'][0]},{query['mlon'][0]}")
    for key in _PAIR_KEYS:
        for value in query.get(key, ()):
            found = _pair(value.removeprefix("loc:"))
            if found:
                return found
    return None


def parse_map_link(url: str) -> LatLon | None:
    """Coordinates in one map link (Google Maps, OpenStreetMap, Apple Maps, ``geo:``), else None.

    A marked place (Google's ``!3d…!4d…``, OpenStreetMap's ``mlat``/``mlon``, a ``q``/``ll``
    query) outranks the centre of the view (``/@lat,lon,zoom``, ``#map=zoom/lat/lon``).
    """
    if url.lower().startswith("geo:"):
        return _pair(url[4:])
    parts = urlsplit(url)
    text = unquote(url)
    match = _PIN.search(text)
    if match:
        return valid_point(float(match[1]), float(match[2]))
    found = _from_query(parse_qs(parts.query)) or _from_query(parse_qs(parts.fragment))
    if found:
        return found
    match = _OSM_HASH.search(text) or _AT.search(text)
    return valid_point(float(match[1]), float(match[2])) if match else None


# --- degrees, minutes, seconds -----------------------------------------------------------------

_DEG = r"(\d{1,3}(?:[.,]\d+)?)\s*(?:°|º|˚|deg\b|\s)\s*"
_MIN = r"(?:(\d{1,2}(?:[.,]\d+)?)\s*(?:'|′|’|min\b|\s)\s*)?"
_SEC = r"(?:(\d{1,2}(?:[.,]\d+)?)\s*(?:\"|″|”|''|′′|sec\b)?\s*)?"
_PRE = rf"([NSEW])\s*{_DEG}{_MIN}{_SEC}"  # N 44° 48.978'
_POST = rf"{_DEG}{_MIN}{_SEC}([NSEW])\b"  # 44°48'58.7"N
_DMS_PRE = re.compile(rf"\b{_PRE}[\s,;/]*{_PRE}", re.IGNORECASE)
_DMS_POST = re.compile(rf"{_POST}[\s,;/]*{_POST}", re.IGNORECASE)


def _dms_value(deg: str, minutes: str | None, seconds: str | None) -> float:
    def num(s: str | None) -> float:
        return float(s.replace(",", ".")) if s else 0.0

    m, s = num(minutes), num(seconds)
    if m >= 60 or s >= 60:
        raise ValueError("minutes and seconds are below 60")
    return num(deg) + m / 60 + s / 3600


def _dms_matches(text: str) -> Iterator[tuple[list[str], list[float]]]:
    """(hemispheres, values) of every DMS pair, in either writing (N 44° … or 44° … N)."""
    for pattern, hemi_at, parts_at in ((_DMS_PRE, (0, 4), (1, 5)), (_DMS_POST, (3, 7), (0, 4))):
        for match in pattern.finditer(text):
            g = match.groups()
            try:
                values = [_dms_value(*g[i : i + 3]) for i in parts_at]
            except ValueError:
                continue
            yield [g[i].upper() for i in hemi_at], values


def _parse_dms(text: str) -> LatLon | None:
    for hemis, values in _dms_matches(text):
        if hemis[0] in "EW" and hemis[1] in "NS":  # written lon first
            hemis.reverse()
            values.reverse()
        if hemis[0] not in "NS" or hemis[1] not in "EW":
            continue
        lat = -values[0] if hemis[0] == "S" else values[0]
        lon = -values[1] if hemis[1] == "W" else values[1]
        found = valid_point(lat, lon)
        if found:
            return found
    return None


# --- decimal degrees ---------------------------------------------------------------------------

_DEC = r"([-+−]?\d{1,3}[.,]\d{2,})"
_LABELLED = re.compile(
    rf"\b(lat(?:itude)?|lon(?:gitude)?|lng)\b\s*[:=]?\s*{_DEC}\s*[,;]?\s*"
    rf"\b(lat(?:itude)?|lon(?:gitude)?|lng)\b\s*[:=]?\s*{_DEC}",
    re.IGNORECASE,
)
# "44.8125, 20.4612", "44.8125 20.4612", "44,8125; 20,4612" (a decimal comma needs ';' or spaces)
_DEC_PAIR = re.compile(
    r"(?<![\w.,])([-+−]?\d{1,2}\.\d{2,})\s*[,;\s]\s*([-+−]?\d{1,3}\.\d{2,})(?!\w|\.\d)"
    r"|(?<![\w.,])([-+−]?\d{1,2},\d{2,})\s*(?:;\s*|\s+)([-+−]?\d{1,3},\d{2,})(?!\w|,\d)"
)


def _float(text: str) -> float:
    return float(text.replace(",", ".").replace("−", "-"))


def _parse_decimal(text: str) -> LatLon | None:
    match = _LABELLED.search(text)
    if match:
        first, second = match[1].lower(), match[3].lower()
        if first.startswith("lat") != second.startswith("lat"):
            a, b = _float(match[2]), _float(match[4])
            found = valid_point(a, b) if first.startswith("lat") else valid_point(b, a)
            if found:
                return found
    for match in _DEC_PAIR.finditer(text):
        lat, lon = (match[1], match[2]) if match[1] else (match[3], match[4])
        found = valid_point(_float(lat), _float(lon))
        if found:
            return found
    return None


def parse_location(text: str | None) -> LatLon | None:
    """The first location written in ``text``: a map link, DMS or decimal degrees; else None.

    Links are read first (a Google Maps link's pin outranks its view's centre), then
    degrees-minutes-seconds with hemisphere letters, then decimal pairs (latitude first, at
    least two decimals each, so that "2 cameras, 3 poles" is not a place). Out-of-range values
    (latitude beyond 90, longitude beyond 180) are no location.
    """
    if not text:
        return None
    for url in _URL.findall(text):
        found = parse_map_link(url)
        if found:
            return found
    rest = _URL.sub(" ", text)
    return _parse_dms(rest) or _parse_decimal(rest)


# --- polygons ----------------------------------------------------------------------------------


def _in_ring(lon: float, lat: float, ring: Sequence[Sequence[float]]) -> bool:
    inside = False
    n = len(ring)
    for i in range(n):
        x1, y1 = ring[i][0], ring[i][1]
        x2, y2 = ring[(i + 1) % n][0], ring[(i + 1) % n][1]
        if (y1 > lat) != (y2 > lat) and lon < (x2 - x1) * (lat - y1) / (y2 - y1) + x1:
            inside = not inside
    return inside


def _in_polygon(lon: float, lat: float, rings: Sequence[Sequence[Sequence[float]]]) -> bool:
    if not rings or not _in_ring(lon, lat, rings[0]):
        return False
    return not any(_in_ring(lon, lat, hole) for hole in rings[1:])


def point_in_geometry(lat: float, lon: float, geometry: Mapping[str, Any]) -> bool:
    """Whether (lat, lon) lies inside a GeoJSON Polygon or MultiPolygon (``[lon, lat]`` positions).

    Holes are respected. Raises ValueError for any other geometry type.
    """
    kind = geometry.get("type")
    coords = geometry.get("coordinates") or []
    if kind == "Polygon":
        return _in_polygon(lon, lat, coords)
    if kind == "MultiPolygon":
        return any(_in_polygon(lon, lat, polygon) for polygon in coords)
    raise ValueError(f"geometry type {kind!r} is not an area; use a Polygon or MultiPolygon")


# --- several points ----------------------------------------------------------------------------


def mean_location(points: Iterable[tuple[float, float]]) -> Spread | None:
    """The mean of several (lat, lon) points and their spread (largest distance from it), or None.

    Averaged on the unit sphere so that points across the antimeridian do not average to 0°.
    """
    pts = list(points)
    if not pts:
        return None
    x = y = z = 0.0
    for lat, lon in pts:
        p, lam = math.radians(lat), math.radians(lon)
        x, y, z = x + math.cos(p) * math.cos(lam), y + math.cos(p) * math.sin(lam), z + math.sin(p)
    lat0 = math.degrees(math.atan2(z, math.hypot(x, y)))
    lon0 = math.degrees(math.atan2(y, x))
    spread = max(distance_m(lat0, lon0, lat, lon) for lat, lon in pts)
    return Spread(lat0, lon0, spread)
