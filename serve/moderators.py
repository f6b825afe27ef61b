"""``camid moderators``: add, list and revoke moderator accounts; export the moderated training set.

The database and photo folder come from the ``CAMID_*`` settings (``CAMID_DATA_DIR``,
``CAMID_DATABASE_URL``), the same ones ``camid serve`` uses.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from serve.store import NotFoundError, Store, open_store

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="camid moderators", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="create a moderator and print their token (shown only once)")
    add.add_argument("name")
    sub.add_parser("list", help="list moderators (never their tokens)")
    revoke = sub.add_parser("revoke", help="revoke a moderator's token; their reviews stay")
    revoke.add_argument("name")
    export = sub.add_parser(
        "export-training", help="write DIR/manifest.csv + DIR/photos/ (blurred) for `camid train --data`"
    )
    export.add_argument("dir", type=Path)
    return parser


def _open() -> Store:
    from serve.settings import Settings

    return open_store(Settings(), None)  # tokens only: no reviews, so no model needed


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def run(store: Store, args: argparse.Namespace) -> int:
    """Carry out one parsed ``camid moderators`` command on ``store``."""
    if args.command == "add":
        try:
            token = store.add_moderator(args.name)
        except ValueError as exc:
            sys.stderr.write(f"camid moderators: {exc}\n")
            return 1
        _out(f"moderator {args.name!r} added. Their token (shown only now; keep it secret):\n{token}")
    elif args.command == "list":
        for m in store.moderators():
            state = f"revoked {m.revoked_at:%Y-%m-%d %H:%M}" if m.revoked_at else "active"
            _out(f"{m.name}\t{state}\tadded {m.created_at:%Y-%m-%d %H:%M}")
    elif args.command == "revoke":
        try:
            store.revoke_moderator(args.name)
        except NotFoundError as exc:
            sys.stderr.write(f"camid moderators: {exc}\n")
            return 1
        _out(f"moderator {args.name!r} revoked")
    elif args.command == "export-training":
        from serve.exports import export_training

        manifest = export_training(store, args.dir)
        _out(f"wrote {manifest}; train with: camid train --data {manifest}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``camid moderators``."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    store = _open()
    try:
        return run(store, args)
    finally:
        store.close()
