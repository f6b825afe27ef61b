"""The loop closes (issue #7): citizens submit, moderators review, the export trains the next model.

Photos go in through ``POST /v1/submissions`` (the tiny exported model classifies them), a
moderator confirms the model where it is right, corrects it where it is wrong and rejects one
photo; the training export holds the moderators' labels (never the model's guess, nothing
rejected or pending), validates as a manifest, and ``camid train`` fits a tiny model on it.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from data.labels import load_labels
from data.manifest import read_manifest, validate_manifest
from serve.app import create_app
from tests.serve.apptools import settings_for
from tests.serve.moderation_fixtures import photo_bytes
from tests.training.tinydata import TINY_ARCH, draw_photo

PER_CLASS = 4  # the group-aware split gives each class 2 train, 1 val, 1 test photo
SEED = 7  # photos of these seeds are at least 8 pHash bits apart: no near-duplicates to merge


def _jpeg(class_index: int, i: int) -> bytes:
    buf = io.BytesIO()
    draw_photo(class_index, SEED + 100 * class_index + i, size=96).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _submit(client: TestClient, data: bytes, n: int) -> dict[str, Any]:
    # A location per photo, ~1 km apart: each photo is its own camera and its own split group.
    where = {"lat": f"{44.70 + 0.01 * n:.2f}", "lon": "20.45", "source": "test"}
    r = client.post("/v1/submissions", files={"image": ("p.jpg", data, "image/jpeg")}, data=where)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    assert body["duplicate_of"] is None
    return body


def _review(client: TestClient, token: str, sid: str, **review: Any) -> None:
    r = client.post(
        f"/v1/submissions/{sid}/review",
        json={"revision": 0, **review},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text


def test_submissions_reviewed_exported_and_trained_on(
    tiny_model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = pytest.importorskip("torch")
    from model.checkpoint import load_checkpoint
    from training.cli import train_main

    labels = load_labels()
    settings = settings_for(tiny_model.onnx, tmp_path / "var", submissions_per_minute=1000)
    truth: dict[str, str] = {}  # submission id -> the moderators' label
    verdicts: Counter[str] = Counter()
    with TestClient(create_app(settings)) as client:
        token = client.app.state.store.add_moderator("ana")  # type: ignore[attr-defined]
        for ci, label in enumerate(labels.names):
            for i in range(PER_CLASS):
                sent = _submit(client, _jpeg(ci, i), len(truth))
                sid, guess = sent["id"], sent["result"]["label"]
                if guess == label:
                    _review(client, token, sid, verdict="confirm")
                    verdicts["confirm"] += 1
                else:
                    _review(client, token, sid, verdict="correct", label=label, note="moderator knows")
                    verdicts["correct"] += 1
                truth[sid] = label
        rejected = _submit(client, photo_bytes(99), len(truth))["id"]
        _review(client, token, rejected, verdict="reject", note="not a street photo")
        pending = _submit(client, photo_bytes(98), len(truth) + 1)["id"]  # never reviewed

        csv_text = client.get("/v1/export/training.csv", headers={"Authorization": f"Bearer {token}"}).text

    assert verdicts["confirm"] and verdicts["correct"], verdicts  # both kinds of review happened
    monkeypatch.setenv("CAMID_DATA_DIR", str(settings.data_dir))
    monkeypatch.delenv("CAMID_DATABASE_URL", raising=False)
    from serve import moderators

    assert moderators.main(["export-training", str(tmp_path / "export")]) == 0
    manifest_path = tmp_path / "export" / "manifest.csv"
    assert validate_manifest(manifest_path, labels) == []
    exported = {r.source.removeprefix("camid-submission/"): r for r in read_manifest(manifest_path).records}
    assert {sid: r.label for sid, r in exported.items()} == truth  # the moderators' labels, all of them
    assert rejected not in exported and pending not in exported
    assert len({r.group for r in exported.values()}) == len(truth)
    assert csv_text.splitlines()[1:] == manifest_path.read_text().splitlines()[1:]  # HTTP export: same rows

    torch.set_num_threads(2)
    config = tmp_path / "tiny.yaml"
    config.write_text("batch_size: 16\nviews_per_image: 1\nbootstrap: 20\nlr: 0.01\n")
    run = tmp_path / "run"
    argv = ["--data", str(manifest_path), "--out", str(run), "--config", str(config)]
    argv += ["--arch", TINY_ARCH, "--pretrained", "none", "--epochs", "1", "--image-size", "64"]
    assert train_main(argv) == 0
    _, meta = load_checkpoint(run / "checkpoint.pt")
    assert meta.contract.names == tuple(labels.names)
    counts = meta.contract.trained_on["counts"]
    trained = sum((Counter(counts[split]) for split in ("train", "val", "test")), Counter[str]())
    assert trained == Counter(truth.values())  # every exported photo, with the label it was exported with
    # the export has no split column: training splits it, keeps that split, and tests on held-out photos only
    evaluated = json.loads((run / "eval_test" / "metrics.json").read_text())
    assert (run / "split.csv").is_file()
    assert evaluated["n"] == sum(counts["test"].values()) < len(truth)


def test_a_photo_the_moderators_labelled_two_ways_is_not_exported(tmp_path: Path) -> None:
    from serve.exports import training_records
    from serve.store import open_store
    from tests.serve.moderation_fixtures import new_submission

    store = open_store(settings_for(tmp_path / "unused.onnx", tmp_path / "var"), load_labels())
    try:
        mod = store.authenticate(store.add_moderator("ana"))
        assert mod is not None
        same = photo_bytes(1)
        first = store.add_submission(new_submission(1, data=same, label="other_camera"))["id"]
        again = store.add_submission(new_submission(1, data=same, label="other_camera"))["id"]
        other = store.add_submission(new_submission(2, label="no_camera"))["id"]
        store.review(first, moderator_id=mod.id, verdict="confirm", label=None, revision=0)
        store.review(again, moderator_id=mod.id, verdict="correct", label="huawei_ipc6625_z30", revision=0)
        store.review(other, moderator_id=mod.id, verdict="confirm", label=None, revision=0)
        records = training_records(store.verified())
    finally:
        store.close()
    assert [(r.source, r.label) for r in records] == [(f"camid-submission/{other}", "no_camera")]
