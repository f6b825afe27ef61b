"""The moderators' workflow with several people: claims on items, four-eyes publication, and a
queue that pages by cursor so no item is skipped while others review (SQLite and PostgreSQL)."""
# ruff: noqa: F811 - pytest fixtures imported from tests.serve.moderation_fixtures

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from data.labels import load_labels
from serve.store import ClaimedError, CursorError, ReviewPolicy, Store, open_store
from serve.store.models import Submission, utcnow
from tests.serve.moderation_fixtures import (  # noqa: F401 - fixtures
    database_url,
    new_submission,
    store,
    store_settings,
)
from tests.serve.test_submissions import auth, moderation_app

Z30 = "huawei_ipc6625_z30"


def _add(store: Store, n: int, **result: Any) -> list[str]:
    return [
        store.add_submission(new_submission(1000 + i, lat=44.8, lon=20.4, **result))["id"] for i in range(n)
    ]


def _confirm(store: Store, sid: str, moderator_id: int, label: str | None = None) -> dict[str, Any]:
    rev = store.get(sid)["revision"]
    verdict = "confirm" if label is None else "correct"
    return store.review(sid, moderator_id=moderator_id, verdict=verdict, label=label, revision=rev)


@pytest.fixture
def four_eyes(store_settings: SimpleNamespace) -> Iterator[Store]:
    s = open_store(store_settings, load_labels(), ReviewPolicy(four_eyes=True))
    try:
        yield s
    finally:
        s.close()


def _ids(store: Store) -> tuple[int, int, int]:
    store.add_moderator("ana"), store.add_moderator("bo"), store.add_moderator("cy")
    by_name = {m.name: m.id for m in store.moderators()}
    return by_name["ana"], by_name["bo"], by_name["cy"]


# -- four eyes ---------------------------------------------------------------------------------


def test_four_eyes_a_camera_goes_public_only_after_a_second_moderator_agrees(four_eyes: Store) -> None:
    ana, bo, _ = _ids(four_eyes)
    (sid,) = _add(four_eyes, 1, label=Z30)
    first = _confirm(four_eyes, sid, ana)
    assert first["status"] == "awaiting_second" and four_eyes.verified() == []
    again = _confirm(four_eyes, sid, ana)  # the same person twice is still one pair of eyes
    assert again["status"] == "awaiting_second" and four_eyes.verified() == []
    second = _confirm(four_eyes, sid, bo)
    assert second["status"] == "verified" and [s.id for s in four_eyes.verified()] == [sid]
    assert [r["moderator"] for r in second["reviews"]] == ["ana", "ana", "bo"]
    assert four_eyes.review_counts()["verified"] == 1


def test_four_eyes_disagreement_waits_for_a_third_opinion(four_eyes: Store) -> None:
    ana, bo, cy = _ids(four_eyes)
    (sid,) = _add(four_eyes, 1, label=Z30)
    _confirm(four_eyes, sid, ana)
    corrected = _confirm(four_eyes, sid, bo, label="other_camera")  # bo disagrees with ana
    assert corrected["status"] == "awaiting_second" and corrected["final_label"] == "other_camera"
    agreed = _confirm(four_eyes, sid, cy, label="other_camera")
    assert agreed["status"] == "verified" and agreed["final_label"] == "other_camera"
    rejected = four_eyes.review(
        sid, moderator_id=ana, verdict="reject", label=None, revision=agreed["revision"]
    )
    assert rejected["status"] == "rejected"  # a reject needs no second pair of eyes


def test_without_four_eyes_one_moderator_publishes(store: Store) -> None:
    ana, _, _ = _ids(store)
    (sid,) = _add(store, 1, label=Z30)
    assert _confirm(store, sid, ana)["status"] == "verified"


# -- claims ------------------------------------------------------------------------------------


def test_a_claim_keeps_other_moderators_off_the_item_until_it_runs_out(store: Store) -> None:
    ana, bo, _ = _ids(store)
    a, b = _add(store, 2, decision="review", confidence=0.5)
    held = store.claim(a, "ana")
    assert held["claimed_by"] == "ana" and store.get(a)["claim"]["moderator"] == "ana"
    with pytest.raises(ClaimedError, match="ana is reviewing"):
        store.claim(a, "bo")
    with pytest.raises(ClaimedError):
        _confirm(store, a, bo)
    assert store.get(a)["revision"] == 0  # bo's refused review stored nothing
    # bo's queue leaves ana's item out; ana's own queue keeps it
    assert [i["id"] for i in store.page(status="pending", unclaimed_for="bo").items] == [b]
    assert {i["id"] for i in store.page(status="pending", unclaimed_for="ana").items} == {a, b}
    with store.session(write=True) as s:  # the lease runs out
        s.execute(
            update(Submission).where(Submission.id == a).values(claimed_until=utcnow() - timedelta(seconds=1))
        )
    assert store.claim(a, "bo")["claimed_by"] == "bo"
    done = _confirm(store, a, bo)
    assert done["status"] == "verified" and "claim" not in done  # a review ends the claim
    assert store.claim(b, "ana") and store.release(b, "ana") and "claim" not in store.get(b)


def test_two_moderators_racing_for_one_item_get_one_claim(store: Store) -> None:
    from concurrent.futures import ThreadPoolExecutor

    (sid,) = _add(store, 1)
    names = [f"m{i}" for i in range(8)]

    def grab(name: str) -> str | None:
        try:
            return str(store.claim(sid, name)["claimed_by"])
        except ClaimedError:
            return None

    with ThreadPoolExecutor(4) as pool:
        winners = [w for w in pool.map(grab, names) if w]
    assert len(winners) == 1 and store.get(sid)["claim"]["moderator"] == winners[0]


# -- cursor pagination -------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["uncertainty", "time", "-time"])
def test_paging_never_skips_an_item_while_others_review(store: Store, order: str) -> None:
    """Page through the pending queue 5 at a time while another moderator reviews items, some
    already seen and some not yet: every item still pending when its turn comes is shown, once.
    (An offset skips: 5 items seen and reviewed move the next page's start past 5 unseen ones.)"""
    ana, _, _ = _ids(store)
    rng = random.Random(7)
    for i in range(23):  # ties on purpose: equal confidences order by time, then id
        store.add_submission(
            new_submission(
                2000 + i, decision=rng.choice(["review", "flag"]), confidence=rng.choice([0.4, 0.6, 0.9])
            )
        )
    shown: list[str] = []
    reviewed: set[str] = set()
    cursor = None
    while True:
        page = store.page(status="pending", order=order, limit=5, cursor=cursor)  # type: ignore[arg-type]
        shown += [i["id"] for i in page.items]
        pending = [i["id"] for i in store.page(status="pending", order=order, limit=100).items]  # type: ignore[arg-type]
        unseen = [p for p in pending if p not in shown]
        for sid in shown[-2:] + unseen[:2]:  # the other moderator works on both sides of the cursor
            if sid not in reviewed:
                _confirm(store, sid, ana)
                reviewed.add(sid)
        cursor = page.next_cursor
        if cursor is None:
            break
    everything = [i["id"] for i in store.page(order=order, limit=100).items]  # type: ignore[arg-type]
    assert len(shown) == len(set(shown))
    never_reviewed_before_shown = [s for s in everything if s not in reviewed]
    assert set(never_reviewed_before_shown) <= set(shown)
    assert all(s not in shown[: shown.index(s)] for s in shown)


def test_a_foreign_cursor_is_refused(store: Store) -> None:
    _add(store, 3)
    cursor = store.page(order="time", limit=1).next_cursor
    assert cursor
    with pytest.raises(CursorError, match="another order"):
        store.page(order="uncertainty", cursor=cursor)
    with pytest.raises(CursorError):
        store.page(cursor="not-a-cursor")


# -- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def team(tiny_model: Any, tmp_path: Path, database_url: str | None) -> Iterator[tuple[TestClient, str, str]]:
    app = moderation_app(
        tiny_model.onnx, tmp_path / "var", database_url, submissions_per_minute=1000, four_eyes=True
    )
    with TestClient(app) as c:
        store = c.app.state.store  # type: ignore[attr-defined]
        yield c, store.add_moderator("ana"), store.add_moderator("bo")


def test_http_claims_four_eyes_and_cursor(team: tuple[TestClient, str, str]) -> None:
    client, ana, bo = team
    store = client.app.state.store  # type: ignore[attr-defined]
    ids = _add(store, 4, label=Z30)
    claimed = client.post(f"/v1/submissions/{ids[0]}/claim", headers=auth(ana))
    assert claimed.status_code == 200 and claimed.json()["claimed_by"] == "ana"
    taken = client.post(f"/v1/submissions/{ids[0]}/claim", headers=auth(bo))
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "claimed"
    assert "ana is reviewing" in taken.json()["error"]["message"]
    review = {"verdict": "confirm", "label": None, "note": "", "revision": 0}
    refused = client.post(f"/v1/submissions/{ids[0]}/review", json=review, headers=auth(bo))
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "claimed"
    mine = client.get("/v1/submissions", params={"status": "pending", "unclaimed": "true"}, headers=auth(bo))
    assert ids[0] not in [i["id"] for i in mine.json()["items"]]

    first = client.post(f"/v1/submissions/{ids[0]}/review", json=review, headers=auth(ana))
    assert first.status_code == 200 and first.json()["status"] == "awaiting_second"
    geo = client.get("/v1/export/cameras.geojson").json()
    assert geo["features"] == []  # not public after one pair of eyes
    review["revision"] = first.json()["revision"]
    second = client.post(f"/v1/submissions/{ids[0]}/review", json=review, headers=auth(bo))
    assert second.json()["status"] == "verified"
    assert len(client.get("/v1/export/cameras.geojson").json()["features"]) == 1

    page1 = client.get("/v1/submissions", params={"status": "pending", "limit": 2}, headers=auth(ana)).json()
    assert len(page1["items"]) == 2 and page1["next_cursor"] and page1["total"] == 3
    page2 = client.get(
        "/v1/submissions",
        params={"status": "pending", "limit": 2, "cursor": page1["next_cursor"]},
        headers=auth(ana),
    ).json()
    assert [i["id"] for i in page2["items"]] == [
        i for i in ids[1:] if i not in [j["id"] for j in page1["items"]]
    ]
    assert page2["next_cursor"] is None
    bad = client.get("/v1/submissions", params={"cursor": "garbage"}, headers=auth(ana))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"
    assert client.delete(f"/v1/submissions/{ids[1]}/claim", headers=auth(ana)).status_code == 204

    # while it waits for the second pair of eyes, the registry panel proposes the first moderator's box
    box = {"box": [4.0, 4.0, 40.0, 30.0], "label": "huawei_ipc6225_vrz_es"}
    corrected = {**review, "verdict": "correct", "label": box["label"], "revision": 0, "boxes": [box]}
    assert (
        client.post(f"/v1/submissions/{ids[3]}/review", json=corrected, headers=auth(ana)).status_code == 200
    )
    proposal = client.get(f"/v1/submissions/{ids[3]}/cameras", headers=auth(bo)).json()["boxes"]
    assert [(b["label"], b["box"]) for b in proposal] == [(box["label"], box["box"])]
