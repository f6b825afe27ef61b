"""Imported posts: a small X archive (tweets.js + tweets_media) and a JSONL file with media; a
retweeted photo is linked as a duplicate of the first submission, nothing is stored twice, and
authors are kept only as keyed hashes."""

# ruff: noqa: F811 - pytest fixtures imported from tests.serve.*_fixtures
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import select, text

from serve.intake.cli import main as intake_main
from serve.intake.posts import import_posts, read_posts, with_hashtag
from serve.schemas import SubmissionView
from serve.store import Base, Store, Submission
from tests.serve.intake_fixtures import make_channel, street_photo, tiny_engine
from tests.serve.moderation_fixtures import database_url, store, store_settings

REPO = Path(__file__).resolve().parents[2]

__all__ = ["database_url", "store", "store_settings", "tiny_engine"]


def _tweet(tid: str, text: str, media: list[str], **extra: Any) -> dict[str, Any]:
    entities = {
        "media": [{"media_url_https": f"https://pbs.twimg.com/media/{m}", "type": "photo"} for m in media]
    }
    tweet = {"id_str": tid, "full_text": text, "created_at": "Fri Nov 28 10:00:00 +0000 2026", **extra}
    if media:
        tweet["entities"] = tweet["extended_entities"] = entities
    return {"tweet": tweet}


def x_archive(folder: Path) -> Path:
    """An X archive's data folder: tweets.js, account.js and the photos in tweets_media."""
    media = folder / "data" / "tweets_media"
    media.mkdir(parents=True)
    photo_a, photo_b = street_photo(21), street_photo(22)
    (media / "1001-FaAa.jpg").write_bytes(photo_a)
    (media / "1002-FbBb.jpg").write_bytes(photo_b)
    (media / "1003-FaAa.jpg").write_bytes(photo_a)  # the retweet carries the same photo
    tweets = [
        _tweet("1001", "Još jedna #hiljadekamera 44.8125, 20.4612", ["FaAa.jpg"]),
        _tweet("1002", "#hiljadekamera Autokomanda", ["FbBb.jpg"],
               geo={"coordinates": ["44.7866", "20.4489"]}),
        _tweet("1003", "RT @ana_kamere: Još jedna #hiljadekamera 44.8125, 20.4612", ["FaAa.jpg"]),
        _tweet("1004", "Bez slike danas", []),
        _tweet("1005", "Slika koje nema u arhivi", ["FcCc.jpg"]),
        {"tweet": {**_tweet("1006", "Snimak", ["thumb.jpg"])["tweet"],
                   "extended_entities": {"media": [{"type": "video", "media_url_https": "https://x/thumb.jpg"}]}}},
    ]  # fmt: skip
    path = folder / "data" / "tweets.js"
    path.write_text("window.YTD.tweets.part0 = " + json.dumps(tweets, indent=2), encoding="utf-8")
    account = [{"account": {"username": "ana_kamere", "accountId": "42"}}]
    (folder / "data" / "account.js").write_text("window.YTD.account.part0 = " + json.dumps(account))
    return path


def posts_jsonl(folder: Path) -> Path:
    """A JSONL file of post objects with media files beside it, a URL, and a broken line."""
    (folder / "media").mkdir(parents=True)
    (folder / "media" / "c.jpg").write_bytes(street_photo(23))
    (folder / "media" / "a-again.jpg").write_bytes(street_photo(21))  # tweet 1001's photo
    recompressed = io.BytesIO()
    Image.open(io.BytesIO(street_photo(21))).save(recompressed, "JPEG", quality=60)  # as a site re-encodes
    (folder / "media" / "a-recompressed.jpg").write_bytes(recompressed.getvalue())
    lines = [
        json.dumps({"url": "https://mastodon.example/@mika/1", "text": "kamera", "author": "@mika",
                    "time": "2026-11-29T08:30:00Z", "geo": {"lat": 44.8176, "lon": 20.4569},
                    "media": ["media/c.jpg"]}),
        json.dumps({"url": "https://x.com/mika/status/2", "text": "44.80, 20.46", "author": "mika",
                    "media": ["https://pbs.twimg.com/media/remote.jpg"]}),
        "{this is not json",
        json.dumps({"url": "https://mastodon.example/@mika/3", "author": "@mika", "geo": [44.8125, 20.4612],
                    "media": ["media/a-again.jpg"]}),
        json.dumps({"id": "forward-4", "text": "44.81251, 20.46119", "media": ["media/a-recompressed.jpg"]}),
    ]  # fmt: skip
    path = folder / "posts.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _submissions(store: Store) -> list[Submission]:
    with store.session() as s:
        return list(s.scalars(select(Submission).order_by(Submission.created_at)))


def test_x_archive_and_jsonl_import_with_a_retweet_as_duplicate(
    store: Store, tiny_engine: Any, tmp_path: Path
) -> None:
    channel = make_channel(store, tiny_engine)
    archive = read_posts(x_archive(tmp_path / "archive"))
    outcomes = import_posts(channel, archive.posts)
    assert [o.summary().get("stored", 0) for o in outcomes] == [1, 1, 1, 0, 0, 0]
    assert "a video, not a photo" in outcomes[5].lines()[0]
    assert "no photo in this post" in outcomes[3].lines()[0]
    assert "tweets_media/1005-FcCc.jpg: no such file" in outcomes[4].lines()[0]
    first, second, retweet = _submissions(store)
    assert retweet.duplicate_of == first.id and second.duplicate_of is None
    assert (first.lat, first.lon, first.location_source) == (44.8125, 20.4612, "post")
    assert (second.lat, second.lon) == (44.7866, 20.4489)  # the tweet's geo field
    assert first.source == "post" and first.provenance == {
        "channel": "post",
        "url": "https://x.com/i/status/1001",
        "time": "2026-11-28T10:00:00+00:00",
    }

    view = SubmissionView.model_validate(store.get(first.id))  # what moderators see
    assert view.provenance == {
        "channel": "post",
        "url": "https://x.com/i/status/1001",
        "time": first.provenance["time"],
    }
    assert view.source == "post" and view.duplicate_of is None

    found = read_posts(posts_jsonl(tmp_path / "export"))
    assert found.problems == [
        "posts.jsonl line 3: not JSON (Expecting property name enclosed in double quotes); skipped"
    ]
    outcomes = import_posts(channel, found.posts)
    lines = [line for o in outcomes for line in o.lines()]
    assert "camid does not download" in lines[1]
    subs = _submissions(store)
    assert len(subs) == 6 and subs[4].duplicate_of == first.id  # sent again elsewhere: the same photo
    assert subs[5].duplicate_of == first.id and subs[5].sha256 != first.sha256  # re-encoded: by its phash
    assert subs[3].provenance == {
        "channel": "post",
        "url": "https://mastodon.example/@mika/1",
        "time": "2026-11-29T08:30:00Z",
    }
    assert subs[3].sender_hash == subs[4].sender_hash != first.sender_hash

    again = import_posts(channel, read_posts(tmp_path / "archive" / "data" / "tweets.js").posts)
    assert sum(o.summary().get("already", 0) for o in again) == 3 and len(_submissions(store)) == 6
    with store.engine.connect() as conn:
        dump = repr([conn.execute(text(f"SELECT * FROM {t}")).all() for t in Base.metadata.tables]).lower()
    assert "ana_kamere" not in dump  # neither the author nor the retweet's mention
    assert "mika" not in dump.replace("mastodon.example/@mika/", "")  # a link as given names its author


def test_an_erased_post_photo_is_not_brought_back_by_a_new_import(
    store: Store, tiny_engine: Any, tmp_path: Path
) -> None:
    channel = make_channel(store, tiny_engine)
    tweets = x_archive(tmp_path / "archive")
    import_posts(channel, read_posts(tweets).posts)
    second = _submissions(store)[1]
    store.delete_submission(second.id, by="cli:test", reason="erasure request")
    again = import_posts(channel, read_posts(tweets).posts)
    assert again[1].items[0].kind == "already" and len(_submissions(store)) == 2


def test_only_the_posts_with_the_hashtag(tmp_path: Path) -> None:
    posts = read_posts(x_archive(tmp_path / "archive")).posts
    assert [p.post_id for p in with_hashtag(posts, "HiljadeKamera")] == ["1001", "1002", "1003"]
    assert with_hashtag(posts, "#hiljade") == []  # a whole tag, not a prefix


def test_command_imports_a_file_and_names_a_bad_one(tmp_path: Path, tiny_model: Any, capsys: Any) -> None:
    common = ["--model", str(tiny_model.onnx), "--data-dir", str(tmp_path / "var"), "posts"]
    posts = posts_jsonl(tmp_path / "export")
    assert intake_main([*common, str(posts)]) == 2  # a folder no server uses: its photos would be lost
    assert f"no camid store in {tmp_path / 'var'}" in capsys.readouterr().err
    assert not (tmp_path / "var" / "camid.sqlite3").exists()
    common.insert(-1, "--new-store")
    assert intake_main([*common, str(posts)]) == 0
    captured = capsys.readouterr()
    assert (
        "photo 0: stored as submission" in captured.out
        and "3 photo(s) stored (1 of them duplicates)" in captured.err
    )
    tweets = x_archive(tmp_path / "archive")
    assert intake_main([*common, str(tweets), "--hashtag", "hiljadekamera"]) == 0
    captured = capsys.readouterr()
    assert "no photo in this post" not in captured.out  # counted, not listed
    assert (
        "3 post(s) with #hiljadekamera, 0 without a photo, 3 photo(s) stored (2 of them duplicates)"
        in captured.err
    )
    bad = tmp_path / "tweets.js"
    bad.write_text("window.YTD.tweets.part0 = [{oops")
    assert intake_main([*common, str(bad)]) == 2
    assert f"{bad}: not JSON" in capsys.readouterr().err


def test_a_post_whose_geo_is_no_place_is_refused_not_stored(
    store: Store, tiny_engine: Any, tmp_path: Path
) -> None:
    (tmp_path / "a.jpg").write_bytes(street_photo(24))
    post = {"url": "https://x.com/mika/status/7", "geo": [91.0, 200.0], "media": ["a.jpg"]}
    (tmp_path / "posts.jsonl").write_text(json.dumps(post) + "\n", encoding="utf-8")
    outcomes = import_posts(make_channel(store, tiny_engine), read_posts(tmp_path / "posts.jsonl").posts)
    (line,) = outcomes[0].lines()
    assert line.startswith("post https://x.com/i/status/7: photo 0: invalid_location:") and "91" in line
    assert outcomes[0].items[0].kind == "refused" and _submissions(store) == []


def test_a_file_of_one_pretty_printed_post_is_one_post(tmp_path: Path) -> None:
    """A single post object saved with indentation (not JSONL, not an array) is read as one post."""
    (tmp_path / "a.jpg").write_bytes(street_photo(25))
    post = {"url": "https://x.com/mika/status/8", "text": "#hiljadekamera Slavija", "author": "@mika",
            "geo": {"lat": 44.8025, "lon": 20.4663}, "media": ["a.jpg"]}  # fmt: skip
    path = tmp_path / "post.json"
    path.write_text(json.dumps(post, indent=2) + "\n", encoding="utf-8")
    found = read_posts(path)
    assert found.problems == []
    (read,) = found.posts
    assert (read.url, read.text, read.media) == ("https://x.com/i/status/8", post["text"], ["a.jpg"])
    assert read.geo is not None and (read.geo.lat, read.geo.lon) == (44.8025, 20.4663)


def test_the_command_on_a_fresh_store_shows_only_its_own_lines(tmp_path: Path, tiny_model: Any) -> None:
    """Setting up a new database (Alembic's migrations) says nothing; camid's lines and warnings do."""
    (tmp_path / "posts.jsonl").write_text(json.dumps({"url": "https://x.com/a/status/9"}) + "\n")
    argv = ["--model", str(tiny_model.onnx), "--data-dir", str(tmp_path / "var"), "--new-store", "posts"]
    command = [sys.executable, "-m", "serve.cli", "intake", *argv, str(tmp_path / "posts.jsonl")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr
    assert "alembic" not in done.stderr and "Running upgrade" not in done.stderr
    assert "1 post(s), 1 without a photo, 0 photo(s) stored" in done.stderr
    assert "INFO serve.store store: database" in done.stderr  # camid's own log lines stay


def test_media_outside_the_posts_folder_are_not_taken_in(
    store: Store, tiny_engine: Any, tmp_path: Path
) -> None:
    """A post naming ../ or an absolute path (another folder's photo) gets a clear line, no submission."""
    export, elsewhere = tmp_path / "export", tmp_path / "elsewhere"
    export.mkdir(), elsewhere.mkdir()
    (elsewhere / "b.jpg").write_bytes(street_photo(26))
    (export / "a.jpg").write_bytes(street_photo(27))
    post = {
        "url": "https://x.com/mika/status/9",
        "media": ["../elsewhere/b.jpg", str(elsewhere / "b.jpg"), "a.jpg"],
    }
    (export / "posts.jsonl").write_text(json.dumps(post) + "\n", encoding="utf-8")
    (outcome,) = import_posts(make_channel(store, tiny_engine), read_posts(export / "posts.jsonl").posts)
    lines = outcome.lines()
    assert [line.endswith("outside the posts file's folder; skipped") for line in lines] == [
        True,
        True,
        False,
    ]
    assert len(_submissions(store)) == 1
