"""data/geo.py: distances, the locations citizens write, and districts."""

from __future__ import annotations

import pytest

from data.geo import distance_m, mean_location, parse_location, parse_map_link, point_in_geometry

# Republic Square, Belgrade
LAT, LON = 44.8163, 20.4602


def close(found: tuple[float, float] | None, lat: float = LAT, lon: float = LON, tol: float = 1e-4) -> bool:
    return found is not None and abs(found[0] - lat) < tol and abs(found[1] - lon) < tol


def test_distance_of_a_known_pair() -> None:
    # one thousandth of a degree of latitude is ~111 m everywhere
    assert distance_m(LAT, LON, LAT + 0.001, LON) == pytest.approx(111.2, abs=0.2)
    # along a parallel it shrinks with cos(latitude)
    assert distance_m(LAT, LON, LAT, LON + 0.001) == pytest.approx(78.9, abs=0.3)
    assert distance_m(LAT, LON, LAT, LON) == 0.0
    # Belgrade to Novi Sad, ~72 km
    assert distance_m(44.8163, 20.4602, 45.2551, 19.8452) / 1000 == pytest.approx(69.0, abs=3)


@pytest.mark.parametrize(
    "text",
    [
        "44.8163, 20.4602",
        "the camera is at 44.8163 20.4602 on the pole",
        "44,8163; 20,4602",
        "lat: 44.8163, lon: 20.4602",
        "lng=20.4602 lat=44.8163",
        "Latitude 44.8163 Longitude 20.4602",
        "koordinate 44.816300,20.460200.",
    ],
)
def test_decimal_coordinates(text: str) -> None:
    assert close(parse_location(text))


@pytest.mark.parametrize(
    "text",
    [
        "44°48'58.7\"N 20°27'36.7\"E",
        "44° 48′ 58.7″ N, 20° 27′ 36.7″ E",
        "N 44° 48.978' E 20° 27.612'",
        "20°27'36.7\"E 44°48'58.7\"N",  # longitude written first
        "44 48 58.7 N 20 27 36.7 E",
    ],
)
def test_dms_coordinates(text: str) -> None:
    assert close(parse_location(text), tol=1e-3)


def test_southern_and_western_hemispheres() -> None:
    found = parse_location("34°36'12\"S 58°22'54\"W")  # Buenos Aires
    assert close(found, -34.6033, -58.3817, tol=1e-3)
    assert close(parse_location("-34.6033, -58.3817"), -34.6033, -58.3817)


@pytest.mark.parametrize(
    "url",
    [
        "https://www.google.com/maps/@44.8163,20.4602,17z",
        "https://www.google.com/maps/place/Trg+Republike/@44.8170,20.4590,17z/data=!3m1!4b1!3d44.8163!4d20.4602",
        "https://maps.google.com/?q=44.8163,20.4602",
        "https://www.google.com/maps/search/?api=1&query=44.8163%2C20.4602",
        "https://www.google.com/maps?ll=44.8163,20.4602&z=16",
        "https://www.openstreetmap.org/#map=18/44.8163/20.4602",
        "https://www.openstreetmap.org/?mlat=44.8163&mlon=20.4602#map=17/44.8100/20.4500",
        "https://maps.apple.com/?ll=44.8163,20.4602&q=Dropped%20Pin",
        "https://maps.apple.com/?address=Trg%20Republike&coordinate=44.8163,20.4602",
        "geo:44.8163,20.4602?z=17",
    ],
)
def test_map_links(url: str) -> None:
    assert close(parse_map_link(url))
    assert close(parse_location(f"Kamera ovde: {url} hvala!"))


def test_a_pin_outranks_the_view_centre() -> None:
    url = "https://www.google.com/maps/place/X/@44.9000,20.5000,15z/data=!3d44.8163!4d20.4602"
    assert close(parse_location(url))
    osm = "https://www.openstreetmap.org/?mlat=44.8163&mlon=20.4602#map=12/44.7/20.3"
    assert close(parse_location(osm))


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "Bulevar kralja Aleksandra 73, Beograd",  # an address stays text
        "2 cameras, 3 poles, seen 12.05.2026",
        "https://maps.app.goo.gl/AbCdEf123",  # a short link needs the internet to resolve
        "95.1234, 20.4602",  # latitude out of range
        "44.8163, 200.4602",  # longitude out of range
    ],
)
def test_no_location(text: str | None) -> None:
    assert parse_location(text) is None


def test_minutes_of_sixty_are_not_dms() -> None:
    assert parse_location("44°61'00\"N 20°27'36\"E") is None


SQUARE = {
    "type": "Polygon",
    "coordinates": [[[20.0, 44.0], [21.0, 44.0], [21.0, 45.0], [20.0, 45.0], [20.0, 44.0]]],
}
WITH_HOLE = {
    "type": "Polygon",
    "coordinates": [
        SQUARE["coordinates"][0],
        [[20.4, 44.4], [20.6, 44.4], [20.6, 44.6], [20.4, 44.6], [20.4, 44.4]],
    ],
}


def test_point_in_polygon_uses_lon_lat_order() -> None:
    assert point_in_geometry(44.5, 20.2, SQUARE)
    assert not point_in_geometry(20.2, 44.5, SQUARE)  # swapped: outside
    assert not point_in_geometry(45.5, 20.5, SQUARE)


def test_holes_and_multipolygons() -> None:
    assert not point_in_geometry(44.5, 20.5, WITH_HOLE)
    assert point_in_geometry(44.3, 20.5, WITH_HOLE)
    far = [[[30.0, 10.0], [31.0, 10.0], [31.0, 11.0], [30.0, 10.0]]]
    multi = {"type": "MultiPolygon", "coordinates": [far, SQUARE["coordinates"]]}
    assert point_in_geometry(44.5, 20.5, multi)
    assert not point_in_geometry(12.0, 30.5, multi)


def test_non_area_geometry_is_an_error() -> None:
    with pytest.raises(ValueError, match="Point"):
        point_in_geometry(44.5, 20.5, {"type": "Point", "coordinates": [20.5, 44.5]})


def test_mean_location_and_spread() -> None:
    east = (LAT, LON + 0.0001)
    west = (LAT, LON - 0.0001)
    mean = mean_location([east, west])
    assert mean is not None
    assert close((mean.lat, mean.lon))
    assert mean.spread_m == pytest.approx(7.9, abs=0.2)
    assert mean_location([]) is None
    across = mean_location([(0.0, 179.9), (0.0, -179.9)])
    assert across is not None and abs(abs(across.lon) - 180) < 1e-6
