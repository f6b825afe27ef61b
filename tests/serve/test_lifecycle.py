"""A new model goes live safely: the registry and its promotion gate, hot reload on a running
server, and re-scoring of the pending queue with the old verdicts kept."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from serve import submissions_cli
from serve.app import create_app
from serve.engine import Engine
from serve.lifecycle import cli as model_cli
from serve.lifecycle.registry import ModelRegistry
from serve.photos import decode_photo
from serve.store import Store, open_store, write_server_marker
from tests.serve.apptools import files, settings_for, wait_for
from tests.serve.lifecycle_fixtures import Variants, jpeg, variants
from tests.serve.moderation_fixtures import database_url, store_settings  # noqa: F401

__all__ = ["variants"]  # the fixture, imported for pytest

N_PHOTOS = 24


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CAMID_DATA_DIR", "CAMID_DATABASE_URL", "CAMID_MODELS_DIR", "CAMID_MODEL_PATH"):
        monkeypatch.delenv(name, raising=False)


def _truth(good: Path, seeds: range) -> list[str]:
    """The good model's label for each photo: the ground truth of these tests."""
    engine = Engine.load(good, threads=1)
    return [engine.classify([decode_photo(jpeg(s)).image])[0].label for s in seeds]


def _verified_store(data_dir: Path, good: Path) -> None:
    """A store (as a server leaves it) whose verified photos carry the good model's labels."""
    store = open_store(settings_for(good, data_dir), Engine.load(good).info.labels)
    try:
        write_server_marker(store)
        token = store.add_moderator("ana")
        moderator = store.authenticate(token)
        assert moderator is not None
        for seed, label in zip(range(N_PHOTOS), _truth(good, range(N_PHOTOS)), strict=True):
            store_one(store, seed, label, moderator.id)
    finally:
        store.close()


def store_one(store: Store, seed: int, label: str, moderator_id: int) -> None:
    from tests.serve.moderation_fixtures import new_submission

    sub = store.add_submission(new_submission(seed, data=jpeg(seed), label="no_camera", decision="review"))
    store.review(sub["id"], moderator_id=moderator_id, verdict="correct", label=label, revision=0)


def _benchmark(folder: Path, good: Path) -> Path:
    """A fixed benchmark manifest of other photos, also labelled by the good model."""
    seeds = range(100, 100 + N_PHOTOS)
    rows = ["path,label,group,source,license,lat,lon"]
    for seed, label in zip(seeds, _truth(good, seeds), strict=True):
        (folder / f"{seed}.jpg").parent.mkdir(parents=True, exist_ok=True)
        (folder / f"{seed}.jpg").write_bytes(jpeg(seed))
        rows.append(f"{seed}.jpg,{label},g{seed // 2},test,CC0-1.0,,")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder / "manifest.csv"


def _promote(registry: Path, data_dir: Path, bench: Path, *extra: str) -> int:
    return model_cli.main(
        [
            "--models-dir",
            str(registry),
            "promote",
            *extra,
            "--data-dir",
            str(data_dir),
            "--benchmark",
            str(bench),
        ]
    )


def test_a_worse_candidate_is_refused_with_the_table_and_a_better_one_promoted(
    variants: Variants, tiny_model: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir, registry = tmp_path / "var", tmp_path / "models"
    _verified_store(data_dir, variants.good)
    bench = _benchmark(tmp_path / "bench", variants.good)
    baseline = ["--baseline", str(tiny_model.onnx)]

    # the first candidate is worse than the model the server runs today: refused, then forced
    assert _promote(registry, data_dir, bench, str(variants.worse), *baseline) == 1
    out = capsys.readouterr()
    assert "camera_recall" in out.out and "WORSE" in out.out and "REFUSED" in out.out
    assert "not promoted" in out.err and ModelRegistry(registry).live() is None
    forced = [str(variants.worse), *baseline, "--force", "--reason", "only model that reads the new class"]
    assert _promote(registry, data_dir, bench, *forced) == 0
    assert "camid-tiny-0.9.0 is live (gate overridden" in capsys.readouterr().out

    # a better candidate passes the gate on the verified photos and the benchmark
    assert _promote(registry, data_dir, bench, str(variants.good)) == 0
    passed = capsys.readouterr().out
    assert "gate: passed" in passed and "verified" in passed and "benchmark" in passed
    assert ModelRegistry(registry).live().id == "camid-tiny-1.0.0"  # type: ignore[union-attr]

    # the worse one again, now against the good live model: refused with the table, live unchanged
    assert _promote(registry, data_dir, bench, "camid-tiny-0.9.0") == 1
    table = capsys.readouterr().out
    line = next(ln for ln in table.splitlines() if ln.startswith("verified") and "flag_precision" in ln)
    assert "1.000 [1.000, 1.000]" in line and "WORSE" in line  # live: every flag right
    reg = ModelRegistry(registry)
    assert reg.live().id == "camid-tiny-1.0.0"  # type: ignore[union-attr]
    saved = json.loads((reg.get("camid-tiny-0.9.0").folder / "comparison-camid-tiny-1.0.0.json").read_text())
    assert (
        saved["refused"] and saved["sets"][0]["photos"] == N_PHOTOS and saved["sets"][0]["groups"] == N_PHOTOS
    )
    history = reg.state()["history"]
    assert [h["id"] for h in history] == ["camid-tiny-0.9.0", "camid-tiny-1.0.0"]
    assert history[0]["forced"] and history[0]["reason"] == "only model that reads the new class"

    assert model_cli.main(["--models-dir", str(registry), "list"]) == 0
    assert "* camid-tiny-1.0.0" in capsys.readouterr().out
    assert model_cli.main(["--models-dir", str(registry), "rollback", "--reason", "test"]) == 0
    assert reg.live().id == "camid-tiny-0.9.0"  # type: ignore[union-attr]
    assert model_cli.main(["--models-dir", str(registry), "show"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["version"] == "0.9.0"


def test_force_needs_a_reason_and_unknown_models_are_named(
    variants: Variants, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = tmp_path / "models"
    bench = _benchmark(tmp_path / "bench", variants.good)
    args = ["--models-dir", str(registry), "promote", str(variants.worse), "--skip-verified"]
    assert model_cli.main([*args, "--benchmark", str(bench), "--force"]) == 2
    assert "--force needs --reason" in capsys.readouterr().err
    assert model_cli.main(["--models-dir", str(registry), "show", "nope"]) == 2
    assert "no model 'nope'" in capsys.readouterr().err


def test_the_first_promotion_rolls_back_to_the_model_the_server_ran(
    variants: Variants, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = tmp_path / "models"
    bench = _benchmark(tmp_path / "bench", variants.good)
    gate = ["--baseline", str(variants.worse), "--skip-verified", "--benchmark", str(bench)]
    assert model_cli.main(["--models-dir", str(registry), "promote", str(variants.good), *gate]) == 0
    assert model_cli.main(["--models-dir", str(registry), "rollback", "--reason", "test"]) == 0
    assert "camid-tiny-0.9.0 is live again (was camid-tiny-1.0.0)" in capsys.readouterr().out
    assert ModelRegistry(registry).live().id == "camid-tiny-0.9.0"  # type: ignore[union-attr]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_server(variants: Variants, tmp_path: Path) -> Iterator[tuple[str, ModelRegistry]]:
    """uvicorn serving the registry's live model (the worse one), watching the registry."""
    uvicorn = pytest.importorskip("uvicorn")
    registry = ModelRegistry(tmp_path / "models")
    registry.set_live(registry.add(variants.worse), {"by": "test"})
    settings = settings_for(variants.good, tmp_path / "var", models_dir=registry.root, model_watch_s=0.2)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), timeout=60)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}", registry
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _keep_asking(base: str, stop: threading.Event, seen: list[tuple[int, str]]) -> None:
    """Classify a photo and read /v1/model over and over; (status, model version) of each answer."""
    photo = jpeg(7)
    with httpx.Client(base_url=base, timeout=30) as client:
        while not stop.is_set():
            try:
                r = client.post("/v1/classify", files=files(photo))
                seen.append(
                    (r.status_code, r.json()["results"][0]["model"]["version"] if r.is_success else "")
                )
                m = client.get("/v1/model")
                seen.append((m.status_code, m.json().get("version", "")))
            except httpx.HTTPError as exc:
                seen.append((0, type(exc).__name__))


def test_a_promoted_model_is_served_within_seconds_while_clients_get_answers(
    live_server: tuple[str, ModelRegistry], variants: Variants, tmp_path: Path
) -> None:
    base, registry = live_server
    bench = _benchmark(tmp_path / "bench", variants.good)
    assert httpx.get(f"{base}/readyz").json()["model"]["version"] == "0.9.0"
    stop, seen = threading.Event(), list[tuple[int, str]]()
    clients = [threading.Thread(target=_keep_asking, args=(base, stop, seen)) for _ in range(3)]
    for c in clients:
        c.start()
    try:
        wait_for(lambda: len(seen) > 10, timeout=30)
        promote = ["promote", str(variants.good), "--skip-verified", "--benchmark", str(bench)]
        assert model_cli.main(["--models-dir", str(registry.root), *promote]) == 0  # the gate passes it
        # served within seconds: the registry watch looks every 0.2 s here (CAMID_MODEL_WATCH_S)
        wait_for(lambda: httpx.get(f"{base}/v1/model").json()["version"] == "1.0.0", timeout=10)
        n_before = len(seen)
        wait_for(lambda: len(seen) > n_before + 10, timeout=30)
    finally:
        stop.set()
        for c in clients:
            c.join(timeout=30)
    assert [s for s in seen if s[0] != 200] == []  # zero errors across the switch
    versions = [v for _, v in seen]
    assert "0.9.0" in versions and versions[-1] == "1.0.0"
    assert httpx.get(f"{base}/readyz").json()["model"] == {"name": "camid-tiny", "version": "1.0.0"}


def _moderator(client: TestClient) -> tuple[dict[str, str], int]:
    """A moderator's headers and id on the app's store."""
    store = client.app.state.store  # type: ignore[attr-defined]
    token = store.add_moderator("ana")
    return {"Authorization": f"Bearer {token}"}, store.authenticate(token).id


def _queue(client: TestClient, headers: dict[str, str]) -> list[tuple[str, str, str]]:
    """The pending queue in the moderators' order: (id, model label, decision)."""
    page = client.get("/v1/submissions", params={"status": "pending"}, headers=headers).json()
    return [(i["id"], i["result"]["label"], i["result"]["decision"]) for i in page["items"]]


def test_rescoring_changes_pending_verdicts_and_keeps_the_old_ones(
    variants: Variants,
    tiny_model: Any,
    store_settings: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data_dir, url = store_settings.data_dir, store_settings.database_url
    if url:
        monkeypatch.setenv("CAMID_DATABASE_URL", url)
    # submitted while the untuned model (0.0.1: every verdict "review") was live
    with TestClient(create_app(settings_for(tiny_model.onnx, data_dir, database_url=url))) as client:
        headers, moderator = _moderator(client)
        ids = [client.post("/v1/submissions", files=files(jpeg(s))).json()["id"] for s in range(8)]
        reviewed = ids[0]
        client.app.state.store.review(  # type: ignore[attr-defined]
            reviewed, moderator_id=moderator, verdict="reject", label=None, revision=0
        )
        before = _queue(client, headers)
    assert {d for _, _, d in before} == {"review"}

    base = ["--data-dir", str(data_dir)]
    assert submissions_cli.main([*base, "rescore", "--model", str(variants.good), "--workers", "3"]) == 0
    assert "re-scored 7 of 7 pending submission(s) with camid-tiny 1.0.0" in capsys.readouterr().out

    with TestClient(create_app(settings_for(variants.good, data_dir, database_url=url))) as client:
        after = _queue(client, headers)
        assert sorted(i for i, _, _ in after) == sorted(i for i, _, _ in before)  # the reviewed one stays out
        assert {d for _, _, d in after} > {"review"}  # confident verdicts now: flags and rejects
        assert [i for i, _, _ in after] != [i for i, _, _ in before]  # the queue re-sorted
        for sid, label, decision in before:
            history = client.get(f"/v1/submissions/{sid}/verdicts", headers=headers).json()
            assert history["current"]["model"]["version"] == "1.0.0"
            assert [(v["model"]["version"], v["label"], v["decision"]) for v in history["earlier"]] == [
                ("0.0.1", label, decision)
            ]
        untouched = client.get(f"/v1/submissions/{reviewed}/verdicts", headers=headers).json()
        assert untouched["earlier"] == [] and untouched["current"]["model"]["version"] == "0.0.1"
        # each review names the model whose verdict the moderator saw
        client.app.state.store.review(  # type: ignore[attr-defined]
            after[0][0], moderator_id=moderator, verdict="confirm", label=None, revision=0
        )
        for sid, version in ((reviewed, "0.0.1"), (after[0][0], "1.0.0")):
            review = client.get(f"/v1/submissions/{sid}", headers=headers).json()["reviews"][-1]
            assert review["model_version"] == version

    assert submissions_cli.main([*base, "rescore", "--model", str(variants.good)]) == 0
    assert "re-scored 0 of 0" in capsys.readouterr().out  # nothing left for this model


def test_admin_reload_and_background_rescore(variants: Variants, tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    registry.set_live(registry.add(variants.worse), {"by": "test"})
    settings = settings_for(variants.good, tmp_path / "var", models_dir=registry.root, model_watch_s=0)
    with TestClient(create_app(settings)) as client:
        headers, _ = _moderator(client)
        ids = [client.post("/v1/submissions", files=files(jpeg(s))).json()["id"] for s in range(6)]
        assert client.post("/v1/admin/model/reload").status_code == 401
        assert client.post("/v1/admin/model/reload", headers=headers).json()["changed"] is False
        registry.set_live(registry.add(variants.good), {"by": "test"})
        done = client.post("/v1/admin/model/reload", headers=headers).json()
        assert done["changed"] and done["model"]["version"] == "1.0.0" and done["previous_version"] == "0.9.0"
        assert client.get("/v1/model").json()["version"] == "1.0.0"

        started = client.post("/v1/admin/rescore", headers=headers)
        assert started.status_code == 202
        wait_for(lambda: not client.get("/v1/admin/rescore", headers=headers).json()["running"], timeout=60)
        job = client.get("/v1/admin/rescore", headers=headers).json()
        assert job["total"] == 6 and job["changed"] + job["same"] == 6 and job["changed"] > 0
        history = client.get(f"/v1/submissions/{ids[0]}/verdicts", headers=headers).json()
        assert [v["model"]["version"] for v in history["earlier"]] == ["0.9.0"]
        assert client.get("/v1/submissions/nope/verdicts", headers=headers).status_code == 404


def test_a_shadow_model_scores_new_submissions_without_changing_decisions(
    variants: Variants, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "var"
    settings = settings_for(variants.good, data_dir, shadow_model=variants.worse, shadow_interval_s=0.1)
    with TestClient(create_app(settings)) as client:
        headers, moderator = _moderator(client)
        created = [client.post("/v1/submissions", files=files(jpeg(s))).json() for s in range(6)]
        assert {c["result"]["model"]["version"] for c in created} == {"1.0.0"}  # the live model answers
        client.app.state.store.review(  # type: ignore[attr-defined]
            created[0]["id"], moderator_id=moderator, verdict="confirm", label=None, revision=0
        )

        def scored() -> int:
            models = client.get("/v1/admin/shadow", headers=headers).json()["models"]
            return int(models.get("0.9.0", {}).get("scored", 0))

        wait_for(lambda: scored() == 6, timeout=30)
        report = client.get("/v1/admin/shadow", headers=headers).json()
        stats = report["models"]["0.9.0"]
        assert stats["same_label"] == 0 and report["disagreement_count"] == 6  # it swaps every class
        assert (stats["verified"], stats["live_right"], stats["shadow_right"]) == (1, 1, 0)
        for c in created:  # decisions and history untouched
            history = client.get(f"/v1/submissions/{c['id']}/verdicts", headers=headers).json()
            assert history["current"]["label"] == c["result"]["label"] and history["earlier"] == []
        assert client.get("/v1/admin/shadow").status_code == 401

    assert model_cli.main(["shadow-report", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "shadow 0.9.0: 6 scored, same label 0" in out and "live right 1, shadow right 0" in out
    assert created[1]["id"] in out
