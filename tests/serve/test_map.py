"""The public map's data over HTTP: per-camera GeoJSON (RFC 7946), CSV, KML, statistics, the
cameras' blurred photos, the moderators' registry endpoints, the comparison page and the CLI."""

# ruff: noqa: F811 - pytest fixtures imported from tests.serve.moderation_fixtures
from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serve.app import create_app
from serve.registry.cli import main as registry_main
from serve.routes.map import tile_origin
from tests.serve.apptools import settings_for
from tests.serve.moderation_fixtures import database_url  # noqa: F401 - fixtures
from tests.serve.test_exports import auth, submit, verify
from tests.serve.test_official import OFFICIAL, square

POLE = (44.8163, 20.4602)


@pytest.fixture
def districts_file(tmp_path: Path) -> Path:
    path = tmp_path / "districts.geojson"
    features = [square("Stari Grad", 20.40, 20.465), square("Vracar", 20.465, 20.50)]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


@pytest.fixture
def client(
    tiny_model: Any, tmp_path: Path, database_url: str | None, districts_file: Path
) -> Iterator[TestClient]:
    settings = settings_for(tiny_model.onnx, tmp_path / "var", database_url=database_url,
                            submissions_per_minute=1000, districts_path=districts_file)  # fmt: skip
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def token(client: TestClient) -> str:
    return str(client.app.state.store.add_moderator("ana"))  # type: ignore[attr-defined]


def at(metres_north: float, lon: float = POLE[1]) -> dict[str, str]:
    return {"lat": f"{POLE[0] + metres_north / 111_320.0:.7f}", "lon": f"{lon:.7f}"}


def assert_rfc7946(doc: dict[str, Any]) -> None:
    """A FeatureCollection of Point features with [lon, lat] positions in range (RFC 7946 3.1.1)."""
    assert doc["type"] == "FeatureCollection" and isinstance(doc["features"], list)
    for f in doc["features"]:
        assert f["type"] == "Feature" and isinstance(f["properties"], dict)
        assert isinstance(f.get("id"), str | int)
        geometry = f["geometry"]
        assert geometry["type"] == "Point" and len(geometry["coordinates"]) == 2
        lon, lat = geometry["coordinates"]
        assert all(isinstance(v, float | int) and math.isfinite(v) for v in (lon, lat))
        assert -180 <= lon <= 180 and -90 <= lat <= 90
    assert "crs" not in doc  # RFC 7946 dropped it: WGS 84 is implied


def test_geojson_has_one_feature_per_physical_camera(client: TestClient, token: str) -> None:
    first = verify(client, token, 1, **at(0))
    verify(client, token, 2, **at(10))  # the same pole, 10 m off
    verify(client, token, 3, label="huawei_ipc6225_vrz_es", **at(300))
    r = client.get("/v1/export/cameras.geojson")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    doc = json.loads(r.content)
    assert_rfc7946(doc)
    by_id = {f["id"]: f for f in doc["features"]}
    assert len(by_id) == 2
    pole = by_id[f"cam-{first}"]
    lon, lat = pole["geometry"]["coordinates"]
    assert (lon, lat) == (pytest.approx(POLE[1], abs=1e-4), pytest.approx(POLE[0] + 5 / 111_320.0, abs=1e-4))
    props = pole["properties"]
    assert props["photo_count"] == 2 and props["model"] == "Huawei IPC6625-Z30"
    assert (props["district"], props["status"], props["radius_m"]) == ("Stari Grad", "active", 10)
    assert "note" not in props and "T" not in props["first_seen"]
    only = client.get("/v1/export/cameras.geojson", params={"model": "huawei_ipc6225_vrz_es"}).json()
    assert [f["properties"]["label"] for f in only["features"]] == ["huawei_ipc6225_vrz_es"]
    bad = client.get("/v1/export/cameras.geojson", params={"model": "toaster"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_model"
    misspelt = client.get("/v1/export/cameras.geojson", params={"district": "Stari grad"})
    assert misspelt.status_code == 422 and misspelt.json()["error"]["code"] == "unknown_district"
    assert "Stari Grad" in misspelt.json()["error"]["message"]


def test_csv_kml_and_stats_agree(client: TestClient, token: str) -> None:
    verify(client, token, 1, **at(0))
    verify(client, token, 2, **at(0, lon=20.47))  # in the other district
    verify(client, token, 3, label="huawei_ipc6225_vrz_es", **at(0, lon=20.48))
    rows = client.get("/v1/export/cameras.csv").text.splitlines()
    assert rows[0].endswith(",status,mount,radius_m,district") and len(rows) == 4
    kml = client.get("/v1/export/cameras.kml")
    assert kml.headers["content-type"].startswith("application/vnd.google-earth.kml+xml")
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    marks = ET.fromstring(kml.content).findall(".//k:Placemark", ns)
    assert len(marks) == 3
    lon, lat, _ = marks[0].findtext("k:Point/k:coordinates", namespaces=ns).split(",")  # type: ignore[union-attr]
    assert float(lat) == pytest.approx(POLE[0], abs=1e-3) and float(lon) == pytest.approx(POLE[1], abs=1e-3)
    stats = client.get("/v1/stats").json()
    assert stats["total"] == 3
    assert {r["label"]: r["count"] for r in stats["per_model"]} == {
        "huawei_ipc6625_z30": 2,
        "huawei_ipc6225_vrz_es": 1,
    }
    assert {r["district"]: r["count"] for r in stats["per_district"]} == {"Stari Grad": 1, "Vracar": 2}
    assert sum(r["count"] for r in stats["per_month"]) == 3
    vracar = client.get("/v1/export/cameras.kml", params={"district": "Vracar"}).content
    assert len(ET.fromstring(vracar).findall(".//k:Placemark", ns)) == 2


def test_a_public_camera_has_a_blurred_photo(client: TestClient, token: str) -> None:
    sid = verify(client, token, 1, **at(0))
    r = client.get(f"/v1/cameras/cam-{sid}/photo.jpg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
    hidden = submit(client, 2, **at(100))  # pending: not public
    assert client.get(f"/v1/cameras/cam-{hidden}/photo.jpg").status_code == 404


def test_moderators_merge_split_and_assign_over_http(client: TestClient, token: str) -> None:
    a = verify(client, token, 1, **at(0))
    b = verify(client, token, 2, **at(40))
    assert client.get(f"/v1/submissions/{b}/cameras").status_code == 401
    r = client.get(f"/v1/submissions/{b}/cameras", headers=auth(token))
    assert r.status_code == 200, r.text
    (box,) = r.json()["boxes"]
    assert box["camera_id"] == f"cam-{b}" and box["candidates"][0]["camera_id"] == f"cam-{a}"
    assert "40 m away, 1 photo" in box["candidates"][0]["text"]
    moved = client.post(
        f"/v1/submissions/{b}/cameras", json={"boxes": {"0": f"cam-{a}"}}, headers=auth(token)
    )
    assert moved.status_code == 200 and moved.json()["boxes"][0]["camera_id"] == f"cam-{a}"
    cam = client.get(f"/v1/cameras/cam-{a}", headers=auth(token)).json()
    assert (
        cam["photo_count"] == 2
        and len(features := client.get("/v1/export/cameras.geojson").json()["features"]) == 1
    )
    assert features[0]["properties"]["photo_count"] == 2
    entry = next(p["id"] for p in cam["photos"] if p["submission_id"] == b)
    split = client.post(f"/v1/cameras/cam-{a}/split", json={"photos": [entry]}, headers=auth(token))
    assert split.status_code == 201, split.text
    new_id = split.json()["id"]
    merged = client.post(f"/v1/cameras/{new_id}/merge", json={"into": f"cam-{a}"}, headers=auth(token))
    assert merged.status_code == 200 and merged.json()["photo_count"] == 2
    again = client.post(f"/v1/cameras/{new_id}/merge", json={"into": f"cam-{a}"}, headers=auth(token))
    assert again.status_code == 409 and "merged into" in again.json()["error"]["message"]
    edit = client.patch(f"/v1/cameras/cam-{a}", json={"mount": "pole"}, headers=auth(token))
    assert edit.status_code == 200 and edit.json()["events"][-1]["by"] == "ana"
    bad = client.patch(f"/v1/cameras/cam-{a}", json={"mount": "roof"}, headers=auth(token))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_edit"
    assert client.get("/v1/cameras/nope", headers=auth(token)).status_code == 404
    # every review is still there
    assert len(client.get(f"/v1/submissions/{b}", headers=auth(token)).json()["reviews"]) == 1


def test_the_map_page_is_public_and_names_its_tile_server(client: TestClient) -> None:
    r = client.get("/map")
    assert r.status_code == 200
    assert "https://tile.openstreetmap.org" in r.headers["content-security-policy"]
    assert "/static/vendor/leaflet/leaflet.js" in r.text and "cdn" not in r.text.lower()
    assert '"Stari Grad"' in r.text  # the district filter
    assert client.get("/map/static/map.js").status_code == 200
    assert client.get("/map/static/../app.py").status_code == 404


def test_tile_origins() -> None:
    assert tile_origin("https://{s}.tile.example.org/{z}/{x}/{y}.png") == "https://*.tile.example.org"
    assert tile_origin("") == ""
    assert tile_origin("javascript:alert(1)") == ""


def test_comparison_page_and_csv(client: TestClient, token: str, tmp_path: Path) -> None:
    verify(client, token, 1, lat="44.81", lon="20.42")
    store = client.app.state.store  # type: ignore[attr-defined]
    from serve.registry import official

    far = official.OfficialEntry("far", 44.70, 20.60)  # in no district
    with store.session(write=True) as s:
        entries = [official.OfficialEntry(k, *v) for k, v in OFFICIAL.items()]
        official.store_official(s, [*entries, far], "test")
    page = client.get("/comparison")
    assert page.status_code == 200
    assert 'id="citizens-only">0<' in page.text and 'id="official-only">6<' in page.text
    assert "<td>Stari Grad</td><td>1</td><td>4</td><td>1</td><td>0</td><td>3</td>" in page.text
    assert "<td>outside the districts</td><td>0</td><td>1</td><td>0</td><td>0</td><td>1</td>" in page.text
    per_district = client.get("/v1/registry/comparison").json()["per_district"]
    assert sum(n["official"] for n in per_district.values()) == 7  # the rows add up to the total
    rows = client.get("/v1/registry/comparison.csv").text.splitlines()
    assert rows[0].startswith("kind,official_id,camera_id,district") and len(rows) == 8


def test_cli_imports_and_compares(
    tiny_model: Any, tmp_path: Path, districts_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "var"
    settings = settings_for(tiny_model.onnx, data_dir, submissions_per_minute=1000)
    with TestClient(create_app(settings)) as client:  # the server's marker and one verified camera
        token = client.app.state.store.add_moderator("ana")  # type: ignore[attr-defined]
        verify(client, token, 1, lat="44.81", lon="20.42")
    listing = tmp_path / "police.csv"
    listing.write_text("id,lat,lon\no1,44.81018,20.42\no2,44.84,20.41\no3,44.70,20.60\n", encoding="utf-8")
    assert registry_main(["--data-dir", str(data_dir), "import-official", str(listing)]) == 0
    out = tmp_path / "report.csv"
    counts = tmp_path / "districts.csv"
    argv = ["--data-dir", str(data_dir), "compare", "--model", str(tiny_model.onnx), "--districts",
            str(districts_file), "--out", str(out), "--district-counts", str(counts)]  # fmt: skip
    assert registry_main(argv) == 0
    assert [line.split(",")[0] for line in out.read_text().splitlines()[1:]] == [
        "matched",
        "official_only",
        "official_only",
    ]
    assert counts.read_text().splitlines()[1:] == [
        "Stari Grad,1,2,1,0,1",
        "Vracar,0,0,0,0,0",
        "outside the districts,0,1,0,0,1",  # o3: the rows add up to the totals
    ]
    assert "  outside the districts: 0 citizens, 1 official, 0 citizens only, 1 official only" in (
        capsys.readouterr().out
    )
    missing = tmp_path / "nope.csv"
    assert registry_main(["--data-dir", str(data_dir), "import-official", str(missing)]) == 2


def test_cli_compare_names_a_report_it_cannot_write(
    tiny_model: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "var"
    with TestClient(create_app(settings_for(tiny_model.onnx, data_dir))):
        pass  # the server's marker
    listing = tmp_path / "police.csv"
    listing.write_text("id,lat,lon\no1,44.81018,20.42\n", encoding="utf-8")
    assert registry_main(["--data-dir", str(data_dir), "import-official", str(listing)]) == 0
    out = tmp_path / "no-such-folder" / "report.csv"
    compare = ["--data-dir", str(data_dir), "compare", "--model", str(tiny_model.onnx)]
    assert registry_main([*compare, "--out", str(out)]) == 2
    assert f"{out}: cannot write" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        registry_main([*compare, "--distance", "-5"])
    assert exited.value.code == 2 and "--distance" in capsys.readouterr().err
