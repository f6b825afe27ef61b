"""``camid submissions``: delete submissions (erasure requests, spam, illegal content) and purge old
rejected ones; every deletion removes the photo and its copies and is kept in the audit trail.
``rescore`` re-runs the live model over the pending submissions (earlier verdicts kept).

Run the retention purge daily from cron, e.g. (``crontab -e`` as the user that runs the server)::

    17 3 * * *  cd /srv/camid && .venv/bin/camid submissions purge >> var/purge.log 2>&1

``purge`` without ``--rejected-older-than`` uses ``CAMID_REJECTED_RETENTION_DAYS`` (default 90).
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from serve.engine import physical_cores
from serve.moderators import StoreCheckError, add_store_options, open_cli_store
from serve.store import NotFoundError, Store
from serve.store.models import utcnow

__all__ = ["main"]

PROG = "camid submissions"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    add_store_options(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    delete = sub.add_parser("delete", help="delete submissions, their photos and every copy; audited")
    delete.add_argument("ids", nargs="+", metavar="ID")
    delete.add_argument(
        "--reason", required=True, help="why (kept in the audit trail), e.g. 'erasure request'"
    )
    delete.add_argument("--by", help="who asks (kept in the audit trail; default cli:<your user name>)")
    purge = sub.add_parser("purge", help="delete the submissions rejected more than DAYS ago")
    purge.add_argument(
        "--rejected-older-than",
        type=float,
        metavar="DAYS",
        help="retention period in days (default: CAMID_REJECTED_RETENTION_DAYS)",
    )
    purge.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    deletions = sub.add_parser("deletions", help="the audit trail of deletions, newest first (JSON lines)")
    deletions.add_argument("--limit", type=int, default=100)
    rescore = sub.add_parser(
        "rescore", help="re-score pending submissions with the live model; earlier verdicts kept"
    )
    rescore.add_argument("--model", type=Path, help="an exported model (default: the live model)")
    rescore.add_argument("--workers", type=int, default=physical_cores(), help="parallel workers")
    return parser


def _err(text: str) -> None:
    sys.stderr.write(f"{PROG}: {text}\n")


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _delete(store: Store, args: argparse.Namespace) -> int:
    by = args.by or f"cli:{getpass.getuser()}"
    failed = 0
    for sid in args.ids:
        try:
            row = store.delete_submission(sid, by=by, reason=args.reason)
        except (NotFoundError, ValueError) as exc:
            _err(str(exc))
            failed += 1
            continue
        kept = "" if row["photo_removed"] else " (photo kept: another submission sent the same file)"
        _out(f"deleted {sid}{kept}")
    return 1 if failed else 0


def _retention_days(args: argparse.Namespace) -> float | None:
    if args.rejected_older_than is not None:
        return float(args.rejected_older_than)
    from serve.settings import Settings

    days = Settings().rejected_retention_days
    return None if days is None else float(days)


def _purge(store: Store, args: argparse.Namespace) -> int:
    days = _retention_days(args)
    if days is None:
        _err("no retention period: pass --rejected-older-than DAYS or set CAMID_REJECTED_RETENTION_DAYS")
        return 2
    if days < 0:
        _err(f"--rejected-older-than {days:g}: the number of days cannot be negative")
        return 2
    period = timedelta(days=days)
    if args.dry_run:
        n = len(store.rejected_before(utcnow() - period))
        _out(f"{n} submission(s) rejected more than {days:g} days ago would be deleted")
        return 0
    rows = store.purge_rejected(period)
    _out(f"deleted {len(rows)} submission(s) rejected more than {days:g} days ago")
    return 0


def run(store: Store, args: argparse.Namespace) -> int:
    """Carry out one parsed ``camid submissions`` command on ``store``."""
    if args.command == "delete":
        return _delete(store, args)
    if args.command == "purge":
        return _purge(store, args)
    if args.command == "rescore":
        from serve.lifecycle.cli import rescore_command

        return rescore_command(store, args, PROG)
    rows: list[dict[str, Any]] = store.deletions(args.limit)
    for row in rows:
        _out(json.dumps(row, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``camid submissions``."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    try:
        store, _ = open_cli_store(args.data_dir, PROG)
    except StoreCheckError as exc:
        _err(str(exc))
        return 2
    try:
        return run(store, args)
    finally:
        store.close()
