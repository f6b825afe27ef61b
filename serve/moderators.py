"""``camid moderators``: add, list, rotate and revoke moderator accounts; export the training set.

The database and data folder come from ``--data-dir`` or the ``CAMID_*`` settings
(``CAMID_DATA_DIR``, ``CAMID_DATABASE_URL``), the same ones ``camid serve`` uses; every command
prints which it uses, and refuses to work on a folder that holds no store (so a command run from
the wrong folder does not create a second, empty one) or on a database other than the one the
server started on this data folder uses (``<data_dir>/server.json``, written by ``camid serve``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from serve.store import (
    NotFoundError,
    Store,
    describe_store,
    open_store,
    server_marker,
    shown_url,
    store_url,
)

__all__ = ["StoreCheckError", "add_store_options", "main", "open_cli_store"]


class StoreCheckError(RuntimeError):
    """The command would use a store the server does not (or none at all); the message says why."""


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """``--data-dir``, shared by the commands that open the store."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="the server's data folder (default: CAMID_DATA_DIR, else ./var); "
        "the database is CAMID_DATABASE_URL, else <data-dir>/camid.sqlite3",
    )


def _settings(data_dir: Path | None) -> Any:
    from serve.settings import Settings

    return Settings() if data_dir is None else Settings(data_dir=data_dir)


def check_store(settings: Any, *, new_store: bool = False) -> list[str]:
    """Refuse (StoreCheckError) a data folder without a store or a database the server does not use;
    returns notes to print (for example that no server has used this store yet)."""
    data_dir = Path(settings.data_dir).resolve()
    url = store_url(settings)
    marker = server_marker(data_dir)
    how = (
        "pass --data-dir (or CAMID_DATA_DIR, and CAMID_DATABASE_URL if the server has it) as the server does"
    )
    if marker is not None:
        if marker.get("database") != shown_url(url):
            raise StoreCheckError(
                f"the server that uses {data_dir} keeps its database at {marker.get('database')}, "
                f"but this command would use {shown_url(url)}; set CAMID_DATABASE_URL to the server's"
            )
        return [f"the server started on {marker.get('started_at')} ({marker.get('host')}) uses this store"]
    sqlite_file = url.split("///", 1)[-1] if url.startswith("sqlite") else None
    if sqlite_file is not None and not Path(sqlite_file).is_file() and not new_store:
        raise StoreCheckError(
            f"there is no camid store in {data_dir} (no {sqlite_file}, and no server has used that "
            f"folder); what is stored there would reach no server. Run the command where `camid serve` "
            f"runs, or {how}; pass --new-store to create a store there on purpose"
        )
    return [
        f"no server has started on {data_dir} yet (no server.json): what is stored here is seen by a "
        f"server started with CAMID_DATA_DIR={data_dir}"
        + ("" if sqlite_file else f" and CAMID_DATABASE_URL={shown_url(url)}")
    ]


def open_cli_store(data_dir: Path | None, prog: str, *, new_store: bool = False) -> tuple[Store, list[str]]:
    """The store a command works on, after printing which it is and checking it (StoreCheckError)."""
    settings = _settings(data_dir)
    sys.stderr.write(f"{prog}: {describe_store(settings)}\n")
    notes = check_store(settings, new_store=new_store)
    return open_store(settings, None), notes  # no reviews here, so no model needed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="camid moderators", description=__doc__.splitlines()[0])
    add_store_options(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser(
        "add", help="create a moderator (or reissue a revoked one) and print their token (shown only once)"
    )
    add.add_argument("name")
    add.add_argument("--new-store", action="store_true", help="create the store if the data folder has none")
    sub.add_parser("list", help="list moderators (never their tokens)")
    rotate = sub.add_parser("rotate", help="give a moderator a new token; the old one stops working at once")
    rotate.add_argument("name")
    revoke = sub.add_parser("revoke", help="revoke a moderator's token; their reviews stay")
    revoke.add_argument("name")
    export = sub.add_parser(
        "export-training", help="write DIR/manifest.csv + DIR/photos/ (blurred) for `camid train --data`"
    )
    export.add_argument("dir", type=Path)
    return parser


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(f"camid moderators: {text}\n")


def run(store: Store, args: argparse.Namespace, notes: list[str] | None = None) -> int:
    """Carry out one parsed ``camid moderators`` command on ``store``."""
    if args.command == "add":
        revoked = {m.name for m in store.moderators() if not m.active}
        try:
            token = store.add_moderator(args.name)
        except ValueError as exc:
            _err(str(exc))
            return 1
        done = "reissued (was revoked)" if args.name.strip() in revoked else "added"
        _out(f"moderator {args.name!r} {done}. Their token (shown only now; keep it secret):\n{token}")
        for note in notes or ():
            _err(note)
    elif args.command == "rotate":
        try:
            token = store.rotate_moderator(args.name)
        except NotFoundError as exc:
            _err(str(exc))
            return 1
        _out(f"moderator {args.name!r} has a new token; the old one no longer works:\n{token}")
        for note in notes or ():
            _err(note)
    elif args.command == "list":
        for m in store.moderators():
            state = f"revoked {m.revoked_at:%Y-%m-%d %H:%M}" if m.revoked_at else "active"
            _out(f"{m.name}\t{state}\tadded {m.created_at:%Y-%m-%d %H:%M}")
    elif args.command == "revoke":
        try:
            store.revoke_moderator(args.name)
        except NotFoundError as exc:
            _err(str(exc))
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
    try:
        store, notes = open_cli_store(
            args.data_dir, "camid moderators", new_store=getattr(args, "new_store", False)
        )
    except StoreCheckError as exc:
        _err(str(exc))
        return 2
    try:
        return run(store, args, notes)
    finally:
        store.close()
