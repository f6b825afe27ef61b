"""Imported posts: an X/Twitter archive's ``tweets.js`` or a JSON/JSONL list of post objects.

Every photo of a post becomes a submission (source ``post``) through the one intake path, with
the post's URL and time as provenance and its author only as a keyed hash. The same photo posted
again (a retweet, or sent by e-mail too) is stored as a duplicate of the first submission (sha256
and perceptual hash). Importing a file twice stores nothing new: each photo is keyed by the
post's URL and the photo's sha256.

A JSONL line (or an item of a JSON array, or the one object of a JSON file) looks like::

    {"url": "https://x.com/ana/status/1", "text": "#hiljadekamera 44.8125, 20.4612",
     "author": "@ana", "time": "2026-11-28T10:00:00Z", "geo": {"lat": 44.81, "lon": 20.46},
     "media": ["media/1.jpg"]}

Media are file paths relative to the file; URLs are reported and skipped (camid never downloads).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from data.geo import LatLon, parse_location
from serve.intake.channel import Channel, ItemOutcome, Outcome, sha256_hex, store_item
from serve.intake.intake import IntakeItem, intake_key
from serve.intake.senders import hash_sender

__all__ = ["Post", "import_post", "import_posts", "read_posts", "with_hashtag"]

MAX_NOTE = 500
VIDEO = "\x00video"  # a post's video or GIF: reported, never read
_X_STATUS = re.compile(r"^/(?:[^/]+|i(?:/web)?)/status/(\d+)")
_MENTION = re.compile(r"@\w+")
X_HOSTS = frozenset({"x.com", "twitter.com", "www.twitter.com", "mobile.twitter.com", "www.x.com"})


@dataclass(frozen=True)
class Post:
    """One post as the importer reads it; ``media`` are paths (relative to ``base``) or URLs."""

    post_id: str
    url: str | None
    text: str
    author: str | None
    time: str | None
    geo: LatLon | None
    media: list[str]
    base: Path
    platform: str = "x"


@dataclass
class PostFile:
    """The posts read from one file and the entries that could not be read."""

    posts: list[Post] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _ytd_json(text: str, path: Path) -> Any:
    """The JSON after ``window.YTD.<name>.part0 =`` in an X archive's ``.js`` files."""
    head, sep, body = text.partition("=")
    if not sep or not head.strip().startswith("window.YTD."):
        raise ValueError(f"{path}: not an X archive file (expected 'window.YTD.tweets.part0 = [...]')")
    return json.loads(body.strip().rstrip(";"))


def _archive_handle(folder: Path) -> str | None:
    account = folder / "account.js"
    if not account.is_file():
        return None
    try:
        entries = _ytd_json(account.read_text(encoding="utf-8"), account)
        return str(entries[0]["account"]["username"])
    except (ValueError, LookupError, TypeError):
        return None


def _x_time(text: Any) -> str | None:
    try:
        return datetime.strptime(str(text), "%a %b %d %H:%M:%S %z %Y").isoformat()
    except ValueError:
        return None


def _x_geo(tweet: dict[str, Any]) -> LatLon | None:
    try:
        if isinstance(tweet.get("geo"), dict):  # [lat, lon]
            lat, lon = tweet["geo"]["coordinates"]
            return LatLon(float(lat), float(lon))
        if isinstance(tweet.get("coordinates"), dict):  # GeoJSON order: [lon, lat]
            lon, lat = tweet["coordinates"]["coordinates"]
            return LatLon(float(lat), float(lon))
    except (LookupError, TypeError, ValueError):
        return None
    return None


def _x_media(tweet: dict[str, Any], tweet_id: str, folder: Path) -> list[str]:
    entities = tweet.get("extended_entities") or tweet.get("entities") or {}
    names = []
    for media in entities.get("media") or []:
        if media.get("type") in ("video", "animated_gif"):
            names.append(VIDEO)
            continue
        url = str(media.get("media_url_https") or media.get("media_url") or "")
        name = f"{tweet_id}-{url.rsplit('/', 1)[-1]}"
        found = next(
            (f"{d}/{name}" for d in ("tweets_media", "tweet_media") if (folder / d / name).is_file()), None
        )
        names.append(found or f"tweets_media/{name}")
    return names


def _x_text(tweet: dict[str, Any]) -> str:
    """The tweet's text with its shortened links written out (a map link hides behind t.co)."""
    text = str(tweet.get("full_text") or tweet.get("text") or "")
    urls = (tweet.get("entities") or {}).get("urls") or []
    return " ".join([text, *(str(u.get("expanded_url", "")) for u in urls)])


def _read_x_archive(path: Path, text: str, author: str | None) -> PostFile:
    folder = path.parent
    handle = author or _archive_handle(folder)
    out = PostFile()
    for n, entry in enumerate(_ytd_json(text, path)):
        tweet = entry.get("tweet", entry) if isinstance(entry, dict) else None
        if not isinstance(tweet, dict) or not tweet.get("id_str"):
            out.problems.append(f"{path.name}: entry {n} is not a tweet; skipped")
            continue
        tid = str(tweet["id_str"])
        url = f"https://x.com/i/status/{tid}"  # X's link that does not name the author
        body = _x_text(tweet)
        geo = _x_geo(tweet) or parse_location(body)
        out.posts.append(
            Post(
                tid,
                url,
                body,
                handle,
                _x_time(tweet.get("created_at")),
                geo,
                _x_media(tweet, tid, folder),
                folder,
            )
        )
    return out


def _object_geo(obj: dict[str, Any], text: str) -> LatLon | None:
    geo = obj.get("geo")
    try:
        if isinstance(geo, dict):
            return LatLon(float(geo["lat"]), float(geo["lon"]))
        if isinstance(geo, list) and len(geo) == 2:
            return LatLon(float(geo[0]), float(geo[1]))
        if "lat" in obj and "lon" in obj:
            return LatLon(float(obj["lat"]), float(obj["lon"]))
    except (LookupError, TypeError, ValueError):
        pass
    return parse_location(geo if isinstance(geo, str) else text)


def _x_status_url(url: str | None) -> str | None:
    """An X post's link without its author's handle (``x.com/i/status/ID``); other links as given."""
    if not url:
        return None
    parts = urlsplit(url)
    found = _X_STATUS.match(parts.path)
    return f"https://x.com/i/status/{found.group(1)}" if parts.hostname in X_HOSTS and found else url


def _platform(url: str | None) -> str:
    host = (urlsplit(url).hostname or "") if url else ""
    return "x" if host in X_HOSTS else (host or "post")


def _post_object(obj: Any, where: str, base: Path, author: str | None) -> Post:
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: not a JSON object")
    media = obj.get("media") or []
    if isinstance(media, str):
        media = [media]
    if not isinstance(media, list) or not all(isinstance(m, str) for m in media):
        raise ValueError(f"{where}: 'media' must be a list of file paths")
    url = _x_status_url(str(obj["url"])) if obj.get("url") else None
    post_id = str(obj.get("id") or url or "")
    if not post_id:
        raise ValueError(f"{where}: a post needs a 'url' or an 'id'")
    text = str(obj.get("text") or "")
    handle = obj.get("author") or author
    when = str(obj["time"]) if obj.get("time") else None
    geo = _object_geo(obj, text)
    return Post(post_id, url, text, str(handle) if handle else None, when, geo, media, base, _platform(url))


def _one_object(text: str) -> dict[str, Any] | None:
    """The post when the whole file is one JSON object (a JSONL file of several lines is not)."""
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _read_objects(path: Path, text: str, author: str | None) -> PostFile:
    out = PostFile()
    stripped = text.lstrip()
    if stripped.startswith("["):
        entries = [(f"{path.name} item {n}", o) for n, o in enumerate(json.loads(stripped))]
    elif (single := _one_object(stripped)) is not None:  # one post, pretty-printed over many lines
        entries = [(path.name, single)]
    else:
        entries = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entries.append((f"{path.name} line {n}", json.loads(line)))
            except json.JSONDecodeError as exc:
                out.problems.append(f"{path.name} line {n}: not JSON ({exc.msg}); skipped")
    for where, obj in entries:
        try:
            out.posts.append(_post_object(obj, where, path.parent, author))
        except ValueError as exc:
            out.problems.append(f"{exc}; skipped")
    return out


def read_posts(path: Path, author: str | None = None) -> PostFile:
    """Read an X archive's ``tweets.js`` (its ``account.js`` beside it names the author) or a
    JSON/JSONL file of post objects. Raises ValueError naming the file when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot be read ({exc})") from exc
    try:
        if text.lstrip().startswith("window.YTD."):
            return _read_x_archive(path, text, author)
        return _read_objects(path, text, author)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from exc


def _media_bytes(post: Post, media: str, most: int) -> bytes | str:
    """The media file's bytes, or why it cannot be used."""
    if media == VIDEO:
        return "a video, not a photo; skipped (send a still of the camera)"
    if urlsplit(media).scheme in ("http", "https"):
        return (
            f"{media[:80]} is a URL; camid does not download: save the photo beside the file "
            "and list its path in 'media'"
        )
    path = (post.base / media).resolve()
    if not path.is_relative_to(post.base.resolve()):
        # an export lists its own media; a path out of its folder (../, /…) could take in any file
        # the operator can read, another citizen's stored photo included
        return f"{media}: outside the posts file's folder; skipped"
    if not path.is_file():
        return f"{media}: no such file beside the posts file"
    if path.stat().st_size > most:
        return f"{media}: over the limit of {most:,} bytes"
    return path.read_bytes()


def import_post(channel: Channel, post: Post) -> Outcome:
    """Store every photo of one post; the outcome of each."""
    label = f"post {post.url or post.post_id}"
    if not post.media:
        return Outcome(label, problems=["no photo in this post"])
    sender = hash_sender(channel.sender_key, post.platform, post.author.lstrip("@")) if post.author else None
    provenance = {"channel": "post", "url": post.url, "time": post.time}
    outcome = Outcome(label)
    for index, media in enumerate(post.media):
        data = _media_bytes(post, media, channel.rules.image.max_bytes)
        if isinstance(data, str):
            outcome.items.append(ItemOutcome("refused", data))
            continue
        item = IntakeItem(
            data=data,
            source="post",
            location=None if post.geo is None else (post.geo.lat, post.geo.lon),
            location_source="post",
            note=_MENTION.sub("@…", post.text)[:MAX_NOTE],  # no one's handle in clear
            sender_hash=sender,
            provenance=provenance,
            key=intake_key("post", post.url or post.post_id, sha256_hex(data)),
            index=index,
        )
        outcome.items.append(store_item(channel, item))
    return outcome


def with_hashtag(posts: list[Post], tag: str) -> list[Post]:
    """The posts whose text carries ``#tag`` (any case), e.g. the initiative's ``hiljadekamera``."""
    wanted = re.compile(rf"#{re.escape(tag.lstrip('#'))}(?!\w)", re.IGNORECASE)
    return [p for p in posts if wanted.search(p.text)]


def import_posts(channel: Channel, posts: list[Post]) -> list[Outcome]:
    """Store the photos of every post, in order (so the first post of a photo is the original)."""
    return [import_post(channel, post) for post in posts]
