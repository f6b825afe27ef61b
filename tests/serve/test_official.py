"""The official list: import (CSV, GeoJSON), and the comparison on a small synthetic city."""

# ruff: noqa: F811 - pytest fixtures imported from tests.serve.moderation_fixtures
from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from data.labels import load_labels
from serve.registry import official
from serve.registry.cli import main as registry_main
from serve.registry.districts import load_districts
from serve.registry.public import PublicCamera, public_cameras
from serve.store import Store, open_store
from tests.serve.moderation_fixtures import database_url, new_submission, store, store_settings  # noqa: F401
from tests.serve.test_registry import verify

M_PER_DEG_LAT = 111_320.0
OUTSIDE = "outside the districts"  # the per-district row of what lies in no district


def north_of(lat: float, lon: float, metres: float) -> tuple[float, float]:
    return lat + metres / M_PER_DEG_LAT, lon


def square(name: str, lon0: float, lon1: float) -> dict[str, object]:
    ring = [[lon0, 44.80], [lon1, 44.80], [lon1, 44.85], [lon0, 44.85], [lon0, 44.80]]
    return {
        "type": "Feature",
        "properties": {"name": name},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


CAMERAS = {"c1": (44.81, 20.42), "c2": (44.82, 20.43), "c3": (44.81, 20.47), "c4": (44.83, 20.48)}
OFFICIAL = {
    "o1": north_of(*CAMERAS["c1"], 20),  # matched to c1
    "o6": north_of(*CAMERAS["c1"], -35),  # also near c1, but c1 is taken by the closer o1
    "o2": (44.84, 20.41),
    "o3": north_of(*CAMERAS["c3"], 30),  # matched to c3
    "o4": (44.845, 20.46),
    "o5": north_of(*CAMERAS["c3"], 70),  # beyond 50 m
}


@pytest.fixture
def city(tmp_path: Path) -> tuple[Path, Path]:
    """The official list (CSV, ';' and decimal commas as a spreadsheet writes it) and two districts."""
    lines = ["id;lat;lon;address;model"]
    lines += [
        f"{k};{lat:.6f};{lon:.6f};Ulica {k};IPC6625".replace(".", ",") for k, (lat, lon) in OFFICIAL.items()
    ]
    listing = tmp_path / "police.csv"
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    districts = tmp_path / "districts.geojson"
    features = [square("Stari Grad", 20.40, 20.45), square("Zvezdara", 20.45, 20.50)]
    districts.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return listing, districts


def test_the_comparison_of_a_small_city(store: Store, city: tuple[Path, Path]) -> None:
    listing, districts_file = city
    ids = {k: verify(store, seed, where)["id"] for seed, (k, where) in enumerate(CAMERAS.items(), start=1)}
    with store.session(write=True) as s:
        assert official.store_official(s, official.read_official(listing), listing.name) == 6
    districts = load_districts(districts_file)
    with store.session() as s:
        entries = official.official_entries(s)
        cameras = public_cameras(s, load_labels(), districts)
    result = official.compare(entries, cameras, 50.0, districts)
    cam = {f"cam-{v}": k for k, v in ids.items()}
    assert sorted((e.id, cam[c.id]) for e, c, _ in result.matched) == [("o1", "c1"), ("o3", "c3")]
    assert sorted(cam[c.id] for c in result.citizens_only) == ["c2", "c4"]
    assert sorted(e.id for e in result.official_only) == ["o2", "o4", "o5", "o6"]
    expected = {"citizens": 2, "official": 3, "matched": 1, "citizens_only": 1, "official_only": 2}
    none = dict.fromkeys(expected, 0)
    assert result.per_district == {"Stari Grad": expected, "Zvezdara": expected, OUTSIDE: none}
    rows = official.comparison_rows(result, districts)
    kinds = [r["kind"] for r in rows]
    assert (
        kinds.count("matched") == 2
        and kinds.count("citizens_only") == 2
        and kinds.count("official_only") == 4
    )
    parsed = list(csv.DictReader(io.StringIO(official.comparison_csv(rows))))
    o1 = next(r for r in parsed if r["official_id"] == "o1")
    assert (o1["kind"], o1["district"], o1["address"]) == ("matched", "Stari Grad", "Ulica o1")
    assert float(o1["distance_m"]) == pytest.approx(20.0, abs=0.5)


def _camera(ident: str, lat: float, lon: float) -> PublicCamera:
    when = datetime(2026, 12, 1, tzinfo=UTC)
    return PublicCamera(ident, "huawei_ipc6625_z30", lat, lon, 5.0, None, "verified", when, when, 1, ident,
                        None, None)  # fmt: skip


def test_what_lies_outside_every_district_has_its_own_row(city: tuple[Path, Path]) -> None:
    """The per-district rows add up to the totals: what lies in no district is counted on its own row."""
    districts = load_districts(city[1])
    entries = [official.OfficialEntry(k, *where) for k, where in OFFICIAL.items()]
    entries.append(official.OfficialEntry("far", 44.70, 20.60))  # beyond both districts
    cameras = [_camera(k, *where) for k, where in CAMERAS.items()]
    cameras += [_camera("c-far", 44.90, 20.30), _camera("c-near-far", *north_of(44.70, 20.60, 10))]
    result = official.compare(entries, cameras, 50.0, districts)
    outside = result.per_district[OUTSIDE]
    assert outside == {"citizens": 2, "official": 1, "matched": 1, "citizens_only": 1, "official_only": 0}
    assert list(result.per_district)[-1] == OUTSIDE
    rows = result.per_district.values()
    assert sum(r["citizens"] for r in rows) == len(cameras)
    assert sum(r["official"] for r in rows) == len(entries)
    table = official.district_csv(result.per_district).splitlines()
    assert table[-1] == "outside the districts,2,1,1,1,0"
    assert official.compare(entries, cameras, 50.0).per_district == {}  # no districts, no table


def test_an_import_replaces_the_list(store: Store, tmp_path: Path) -> None:
    geo = tmp_path / "list.geojson"
    feature = {"type": "Feature", "id": "A-1", "properties": {"address": "Knez Mihailova 1"},
               "geometry": {"type": "Point", "coordinates": [20.4573, 44.8176]}}  # fmt: skip
    geo.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}), encoding="utf-8")
    with store.session(write=True) as s:
        official.store_official(s, [official.OfficialEntry("old", 1.0, 2.0)], "before.csv")
        official.store_official(s, official.read_official(geo), geo.name)
    with store.session() as s:
        (entry,) = official.official_entries(s)
    assert (entry.id, entry.lat, entry.lon, entry.address) == ("A-1", 44.8176, 20.4573, "Knez Mihailova 1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,lat,lon\n1,44.8,\n", "row 2: needs an id, a latitude and a longitude"),
        ("id;latitude\n1;44.8\n", "no longitude column .*the header has: id, latitude"),
        ("id,lat,lon\n1,north,20.4\n", "row 2: latitude 'north' is not a number"),
        ("id,lat,lon\n1,144.8,20.4\n", "row 2: latitude 144.8 is out of range"),
        ("id,lat,lon\n1,44.8,20.4\n1,44.9,20.4\n", "ids repeat: 1"),
        ("id,lat,lon\n", "no entries"),
    ],
)
def test_bad_lists_are_refused_with_the_row(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as err:
        official.read_official(path)
    assert str(path) in str(err.value)


def test_geojson_needs_points(tmp_path: Path) -> None:
    path = tmp_path / "bad.geojson"
    line = {
        "type": "Feature",
        "id": "x",
        "geometry": {"type": "LineString", "coordinates": [[20, 44], [21, 45]]},
    }
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [line]}), encoding="utf-8")
    with pytest.raises(ValueError, match="feature 0: the official list needs Point geometries"):
        official.read_official(path)


def test_geojson_features_must_be_objects(tmp_path: Path) -> None:
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": ["P1"]}), encoding="utf-8")
    with pytest.raises(ValueError, match="feature 0: not a GeoJSON Feature"):
        official.read_official(path)


def _cli_store(tmp_path: Path) -> Path:
    """A data folder with an empty SQLite store, as `camid registry` finds it."""
    data_dir = tmp_path / "var"
    open_store(SimpleNamespace(data_dir=data_dir, database_url=None), None).close()
    return data_dir


def test_a_windows_1250_list_keeps_its_letters_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Serbian Latin spreadsheets are often saved as Windows-1250, not UTF-8."""
    path = tmp_path / "policija.csv"
    addresses = ["Čika Ljubina 15, Đure Jakšića ćošak", "Žička 3"]
    text = f"id;lat;lon;adresa\nP-1;44,8125;20,4612;{addresses[0]}\nP-2;44,80;20,45;{addresses[1]}\n"
    path.write_bytes(text.encode("cp1250"))
    assert [e.address for e in official.read_official(path)] == addresses
    data_dir = _cli_store(tmp_path)
    assert registry_main(["--data-dir", str(data_dir), "import-official", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: not UTF-8; read as Windows-1250 (cp1250)" in out
    assert "imported 2 official entries" in out
    utf8 = tmp_path / "utf8.csv"
    utf8.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))  # with a BOM, as Excel writes "CSV UTF-8"
    assert registry_main(["--data-dir", str(data_dir), "import-official", str(utf8)]) == 0
    assert "Windows-1250" not in capsys.readouterr().out
    stored = open_store(SimpleNamespace(data_dir=data_dir, database_url=None), None)
    try:
        with stored.session() as s:
            assert official.official_entries(s)[0].address == addresses[0]
    finally:
        stored.close()


def test_an_unreadable_list_is_refused_with_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "policija.csv"
    path.write_bytes("id\tlat\tlon\nP-1\t44.81\t20.46\n".encode("utf-16"))  # Excel's "Unicode text"
    with pytest.raises(ValueError, match="save it as CSV UTF-8") as err:
        official.read_official(path)
    assert str(path) in str(err.value)
    data_dir = _cli_store(tmp_path)
    assert registry_main(["--data-dir", str(data_dir), "import-official", str(path)]) == 2
    assert f"{path}: cannot read the official list" in capsys.readouterr().err


def test_the_comparison_csv_never_holds_a_formula(tmp_path: Path) -> None:
    """Text from the official list and the districts file opens in a spreadsheet as text (CSV injection)."""
    evil_district = '=HYPERLINK("http://evil.example","Stari Grad")'
    districts_file = tmp_path / "districts.geojson"
    area = square(evil_district, 20.40, 20.45)
    districts_file.write_text(json.dumps({"type": "FeatureCollection", "features": [area]}), encoding="utf-8")
    districts = load_districts(districts_file)
    formulas = ["=1+1", "+381 11 123", "-2+3+cmd|' /C calc'!A0", "@SUM(A1:A2)", "\tTab", "\rCR"]
    addresses = [*formulas, "Knez Mihailova 1"]
    entries = [official.OfficialEntry(f"o{i}", 44.81 + i / 100, 20.42, a) for i, a in enumerate(addresses)]
    entries.append(official.OfficialEntry("=o-far", -33.8688, -151.2093, "Sydney"))  # numbers stay numbers
    result = official.compare(entries, [], 50.0, districts)
    text = official.comparison_csv(official.comparison_rows(result, districts))
    by_id = {r["official_id"]: r for r in csv.DictReader(io.StringIO(text, newline=""))}
    shown = [by_id[f"o{i}"]["address"] for i in range(len(addresses))]
    assert shown == [*("'" + f.replace("\r", "\n") for f in formulas), "Knez Mihailova 1"]  # a CR: a new line
    assert by_id["o0"]["district"] == "'" + evil_district
    far = by_id["'=o-far"]
    assert (far["lat"], far["lon"]) == ("-33.8688", "-151.2093")
    counts = list(csv.reader(io.StringIO(official.district_csv(result.per_district), newline="")))
    assert counts[1][0] == "'" + evil_district and counts[-1][0] == OUTSIDE
