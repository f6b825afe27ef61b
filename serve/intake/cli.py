"""``camid intake``: bring in photos from where citizens send them.

- ``camid intake imap --host mail.example.org --user camid@example.org --folder INBOX``: store the
  photos of every unprocessed mail, then flag it ``$CamidDone`` (or ``--move-to Done``); add
  ``--watch`` to keep polling. The password comes from ``$CAMID_IMAP_PASSWORD`` (or the variable
  ``--password-env`` names) or from ``--password-file``.
- ``camid intake posts FILE``: import an X archive's ``tweets.js`` or a JSON/JSONL file of posts.

Both use the server's settings (``CAMID_MODEL_PATH``, ``CAMID_DATA_DIR``, ``CAMID_DATABASE_URL``,
the photo limits) and print one line per photo or problem.
"""

from __future__ import annotations

import argparse
import imaplib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from data.images import ImageLimits
from serve.intake.channel import Channel, Outcome
from serve.intake.imap import ImapConfig, connect, poll_once, watch
from serve.intake.intake import IntakeRules
from serve.intake.posts import import_posts, read_posts, with_hashtag
from serve.intake.senders import sender_key
from serve.moderators import StoreCheckError

__all__ = ["main"]

PROG = "camid intake"
PASSWORD_ENV = "CAMID_IMAP_PASSWORD"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, help="ONNX model (default: CAMID_MODEL_PATH, the release model)"
    )
    parser.add_argument("--data-dir", type=Path, help="the server's data folder (default: CAMID_DATA_DIR)")
    parser.add_argument(
        "--new-store", action="store_true", help="create the store if the data folder has none"
    )
    parser.add_argument(
        "--per-sender-per-day",
        type=int,
        default=30,
        metavar="N",
        help="photos stored per sender (address or handle) in 24 hours; the rest wait (default 30)",
    )
    sub = parser.add_subparsers(dest="channel", required=True)
    imap = sub.add_parser("imap", help="store the photos mailed to an IMAP inbox (TLS)")
    imap.add_argument("--host", required=True)
    imap.add_argument("--port", type=int, default=993)
    imap.add_argument("--user", required=True)
    imap.add_argument("--folder", default="INBOX")
    imap.add_argument("--move-to", metavar="FOLDER", help="move processed mails there (default: flag them)")
    imap.add_argument("--password-env", default=PASSWORD_ENV, metavar="NAME", help=f"default {PASSWORD_ENV}")
    imap.add_argument("--password-file", type=Path, help="read the password from this file instead")
    imap.add_argument("--cafile", type=Path, help="trust this CA certificate (a self-hosted mail server's)")
    imap.add_argument("--watch", action="store_true", help="keep polling until stopped (Ctrl-C, SIGTERM)")
    imap.add_argument("--interval", type=float, default=60.0, help="seconds between polls (default 60)")
    posts = sub.add_parser("posts", help="import posts: an X archive's tweets.js, or JSON/JSONL post objects")
    posts.add_argument("file", type=Path)
    posts.add_argument("--author", help="the posts' author handle when the file does not say (kept hashed)")
    posts.add_argument("--hashtag", metavar="TAG", help="import only the posts with #TAG, e.g. hiljadekamera")
    return parser


def _err(text: str) -> None:
    sys.stderr.write(f"{PROG}: {text}\n")


def _password(args: argparse.Namespace) -> str:
    if args.password_file is not None:
        try:
            return str(args.password_file.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise ValueError(f"{args.password_file}: cannot read the password ({exc.strerror})") from exc
    value = os.environ.get(args.password_env)
    if not value:
        raise ValueError(f"no password: set {args.password_env} or pass --password-file FILE")
    return value


@contextmanager
def _channel(args: argparse.Namespace) -> Iterator[Channel]:
    from serve.engine import Engine
    from serve.lifecycle.reload import live_model_path
    from serve.moderators import check_store
    from serve.settings import Settings
    from serve.store import describe_store, open_store

    overrides = {k: v for k, v in (("model_path", args.model), ("data_dir", args.data_dir)) if v is not None}
    settings = Settings(**overrides)
    # --model wins; else the registry's live model (CAMID_MODELS_DIR), as `camid serve` runs it
    model_path = settings.model_path if args.model is not None else live_model_path(settings)
    if not model_path.is_file():
        raise ValueError(f"no model at {model_path}; pass --model PATH or set CAMID_MODEL_PATH")
    _err(describe_store(settings))
    for note in check_store(settings, new_store=args.new_store):  # refuses a store no server uses
        _err(note)
    engine = Engine.load(model_path, threads=settings.ort_threads)
    store = open_store(settings, engine.info.labels)
    limits = ImageLimits(
        max_bytes=settings.max_bytes,
        max_pixels=settings.max_pixels,
        max_decoded_bytes=settings.max_decoded_bytes,
    )
    try:
        rules = IntakeRules(image=limits, per_sender_per_day=args.per_sender_per_day)
        yield Channel(engine, store, rules, sender_key(store.data_dir))
    finally:
        store.close()


def _report(outcome: Outcome) -> None:
    for line in outcome.lines():
        sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _run_imap(args: argparse.Namespace, channel: Channel) -> int:
    config = ImapConfig(
        host=args.host,
        port=args.port,
        user=args.user,
        password=_password(args),
        folder=args.folder,
        move_to=args.move_to,
        cafile=args.cafile,
    )
    if args.watch:
        stop = threading.Event()

        def _stop(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        watch(lambda: channel, config, interval_s=args.interval, stop=stop, report=_report)
        return 0
    client = connect(config)
    try:
        outcomes = poll_once(client, channel, config)
    finally:
        client.logout()
    for outcome in outcomes:
        _report(outcome)
    _err(f"{len(outcomes)} mail(s) read from {args.folder}")
    return 0


def _run_posts(args: argparse.Namespace, channel: Channel) -> int:
    found = read_posts(args.file, author=args.author)
    for problem in found.problems:
        sys.stdout.write(problem + "\n")
    posts = with_hashtag(found.posts, args.hashtag) if args.hashtag else found.posts
    outcomes = import_posts(channel, posts)
    without = [o for o in outcomes if not o.items]  # most posts of an archive carry no photo
    for outcome in outcomes:
        if outcome.items:
            _report(outcome)
    stored = [i for o in outcomes for i in o.items if i.kind == "stored"]
    duplicates = sum(1 for i in stored if i.duplicate_of)
    picked = f" with #{args.hashtag.lstrip('#')}" if args.hashtag else ""
    _err(
        f"{args.file}: {len(posts)} post(s){picked}, {len(without)} without a photo, "
        f"{len(stored)} photo(s) stored ({duplicates} of them duplicates)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``camid intake imap|posts``; 2 with a message for a bad file, password or connection."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for own in ("serve", "data"):  # camid's own progress lines; other libraries' (Alembic's) only warnings
        logging.getLogger(own).setLevel(logging.INFO)
    try:
        with _channel(args) as channel:
            if args.channel == "imap":
                return _run_imap(args, channel)
            return _run_posts(args, channel)
    except ValueError as exc:
        _err(str(exc))
        return 2
    except StoreCheckError as exc:
        _err(str(exc))
        return 2
    except (OSError, RuntimeError, imaplib.IMAP4.error) as exc:
        _err(f"{type(exc).__name__}: {exc}")
        return 2
