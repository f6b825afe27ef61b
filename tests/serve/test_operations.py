"""Operating the service: the store commands say which database they use and refuse a wrong one,
tokens rotate, the trusted-proxy setting gives the rate limit the real client address, the API
docs work offline, and ``camid submissions`` deletes and purges."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from serve import app as app_module
from serve import moderators, submissions_cli
from serve.app import create_app
from serve.store import open_store
from serve.store.models import Submission, utcnow
from tests.serve.apptools import settings_for
from tests.serve.moderation_fixtures import new_submission


@pytest.fixture(autouse=True)
def _no_store_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CAMID_DATA_DIR", "CAMID_DATABASE_URL", "CAMID_FORWARDED_ALLOW_IPS"):
        monkeypatch.delenv(name, raising=False)


def _server(tiny_model: Any, data_dir: Path, **overrides: Any) -> TestClient:
    return TestClient(create_app(settings_for(tiny_model.onnx, data_dir, **overrides)))


def _token(out: str) -> str:
    return out.strip().splitlines()[-1]


def test_store_commands_print_the_database_and_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "var"
    assert moderators.main(["--data-dir", str(data_dir), "add", "ana", "--new-store"]) == 0
    err = capsys.readouterr().err
    assert f"database sqlite:///{data_dir}/camid.sqlite3, data folder {data_dir}" in err
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CAMID_DATA_DIR", "var")  # relative: printed as the absolute folder it is
    for command in (moderators.main, submissions_cli.main):
        args = ["list"] if command is moderators.main else ["deletions"]
        assert command(args) == 0
        assert f"data folder {data_dir}" in capsys.readouterr().err


def test_add_refuses_a_folder_that_holds_no_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # "run from another folder": ./var does not exist here
    assert moderators.main(["add", "ana"]) == 2
    err = capsys.readouterr().err
    assert f"no camid store in {tmp_path / 'var'}" in err and "--data-dir" in err
    assert not (tmp_path / "var").exists()  # and nothing was created there
    assert capsys.readouterr().out == ""


def test_add_refuses_a_database_other_than_the_servers(
    tiny_model: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "var"
    other = tmp_path / "other.sqlite3"
    with _server(tiny_model, data_dir, database_url=f"sqlite:///{other}"):
        pass  # the server started once on data_dir, with its database elsewhere
    assert moderators.main(["--data-dir", str(data_dir), "add", "ana"]) == 2
    err = capsys.readouterr().err
    assert f"keeps its database at sqlite:///{other}" in err and "CAMID_DATABASE_URL" in err


def test_a_token_from_the_command_works_on_the_server_and_rotation_refuses_the_old_one(
    tiny_model: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "var"
    with _server(tiny_model, data_dir) as client:
        assert moderators.main(["--data-dir", str(data_dir), "add", "ana"]) == 0
        out = capsys.readouterr()
        assert "uses this store" in out.err  # the server's server.json matched
        old = _token(out.out)
        me = client.get("/v1/moderators/me", headers={"Authorization": f"Bearer {old}"})
        assert me.status_code == 200 and me.json()["name"] == "ana"

        assert moderators.main(["--data-dir", str(data_dir), "rotate", "ana"]) == 0
        new = _token(capsys.readouterr().out)
        assert client.get("/v1/moderators/me", headers={"Authorization": f"Bearer {old}"}).status_code == 401
        assert client.get("/v1/moderators/me", headers={"Authorization": f"Bearer {new}"}).status_code == 200

        assert moderators.main(["--data-dir", str(data_dir), "revoke", "ana"]) == 0
        assert client.get("/v1/moderators/me", headers={"Authorization": f"Bearer {new}"}).status_code == 403
        assert moderators.main(["--data-dir", str(data_dir), "add", "ana"]) == 0
        out = capsys.readouterr().out
        assert "reissued" in out
        again = {"Authorization": f"Bearer {_token(out)}"}
        assert client.get("/v1/moderators/me", headers=again).status_code == 200
        assert moderators.main(["--data-dir", str(data_dir), "add", "ana"]) == 1
        assert "camid moderators rotate ana" in capsys.readouterr().err


def test_submissions_delete_and_purge_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "var"
    store = open_store(settings_for(Path("unused.onnx"), data_dir), None)
    try:
        ids = [store.add_submission(new_submission(seed))["id"] for seed in range(3)]
        with store.session(write=True) as s:  # two rejected, 100 and 10 days ago (reviews set this)
            for sid, days in ((ids[1], 100), (ids[2], 10)):
                values = {"status": "rejected", "updated_at": utcnow() - timedelta(days=days)}
                s.execute(update(Submission).where(Submission.id == sid).values(**values))
        photo = store.photo_path(ids[0])
    finally:
        store.close()
    base = ["--data-dir", str(data_dir)]

    assert submissions_cli.main([*base, "delete", ids[0], "--reason", "erasure request", "--by", "ana"]) == 0
    assert f"deleted {ids[0]}" in capsys.readouterr().out and not photo.exists()
    assert submissions_cli.main([*base, "delete", "nope", "--reason", "x"]) == 1
    assert "no submission 'nope'" in capsys.readouterr().err

    assert submissions_cli.main([*base, "purge", "--dry-run"]) == 0  # the default: 90 days
    assert capsys.readouterr().out.startswith("1 submission(s)")
    assert submissions_cli.main([*base, "purge", "--rejected-older-than", "30"]) == 0
    assert "deleted 1 submission(s) rejected more than 30 days ago" in capsys.readouterr().out
    assert submissions_cli.main([*base, "purge", "--rejected-older-than", "5"]) == 0
    assert submissions_cli.main([*base, "deletions"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [r["submission_id"] for r in rows] == [ids[2], ids[1], ids[0]]
    assert rows[-1]["deleted_by"] == "ana" and rows[0]["deleted_by"] == "retention"


def _limited(client: TestClient, address: str) -> bool:
    """Whether a submission said to come from ``address`` (X-Forwarded-For) is rate-limited (429)."""
    files = {"image": ("p.jpg", b"not a photo", "image/jpeg")}  # refused after the rate limit counted it
    status = client.post("/v1/submissions", files=files, headers={"X-Forwarded-For": address}).status_code
    assert status in (415, 429)
    return status == 429


def test_behind_a_trusted_proxy_each_citizen_has_their_own_rate_limit(
    tiny_model: Any, tmp_path: Path
) -> None:
    with _server(tiny_model, tmp_path / "a", submissions_per_minute=1, forwarded_allow_ips="*") as client:
        assert [_limited(client, ip) for ip in ("203.0.113.7", "203.0.113.8", "203.0.113.7")] == [
            False,
            False,  # another citizen behind the same proxy
            True,
        ]
    with _server(tiny_model, tmp_path / "b", submissions_per_minute=1) as client:  # no proxy trusted
        assert [_limited(client, ip) for ip in ("203.0.113.7", "203.0.113.8")] == [False, True]
    with _server(
        tiny_model, tmp_path / "c", submissions_per_minute=1, forwarded_allow_ips="10.0.0.1"
    ) as client:
        assert [_limited(client, ip) for ip in ("203.0.113.7", "203.0.113.8")] == [
            False,
            True,
        ]  # not that proxy


def test_camid_serve_passes_the_proxy_and_data_dir_options(
    tiny_model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(kw))
    argv = [
        "--model",
        str(tiny_model.onnx),
        "--data-dir",
        str(tmp_path / "var"),
        "--trusted-proxy",
        "127.0.0.1",
    ]
    assert app_module.main(argv) == 0
    from serve.settings import Settings

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.forwarded_allow_ips == "127.0.0.1" and settings.data_dir == tmp_path / "var"
    err = capsys.readouterr().err
    assert f"data folder {tmp_path / 'var'}" in err and "X-Forwarded-For of 127.0.0.1" in err


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_load_only_local_files(tmp_path: Path, page: str) -> None:
    client = TestClient(create_app(settings_for(Path("unused.onnx"), tmp_path)))  # no model needed
    html = client.get(page)
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", html.text)
    assert urls, html.text
    for url in urls:
        assert url.startswith("/"), f"{page} loads {url} from elsewhere"
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 500, url
    assert "http://" not in html.text and "https://" not in html.text
    assert client.get("/docs/static/../../settings.py").status_code == 404
