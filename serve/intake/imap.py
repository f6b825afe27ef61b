"""The e-mail inbox: every photo attached to a mail becomes a submission (source ``email``).

:func:`poll_once` reads the folder's mails that do not carry the ``$CamidDone`` keyword, stores
their photos through the one intake path, and only then flags the mail (or moves it to another
folder). A crash between storing and flagging cannot duplicate: each photo is stored under an
exactly-once key (Message-ID + the photo's sha256) in the same transaction as its submission,
so the next poll finds it stored and just flags the mail. Senders are kept only as keyed hashes.
"""

from __future__ import annotations

import base64
import imaplib
import logging
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from serve.intake.channel import Channel, ItemOutcome, Outcome, sha256_hex, store_item
from serve.intake.intake import IntakeItem, intake_key
from serve.intake.mail import ParsedMail, parse_mail
from serve.intake.senders import hash_sender, normalise_address

__all__ = ["DONE_FLAG", "ImapConfig", "connect", "poll_once", "process_mail", "watch"]

log = logging.getLogger(__name__)
DONE_FLAG = "$CamidDone"
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


@dataclass(frozen=True)
class ImapConfig:
    """Where the inbox is and how processed mails are marked."""

    host: str
    user: str
    password: str
    port: int = 993
    folder: str = "INBOX"
    move_to: str | None = None  # None: flag processed mails with $CamidDone and leave them
    cafile: Path | None = None  # trust this certificate (a self-hosted server's) instead of the system's
    timeout_s: float = 60.0
    max_mail_bytes: int = 64_000_000


def connect(config: ImapConfig) -> imaplib.IMAP4_SSL:
    """Log in over TLS (certificate and host name checked) and select the folder."""
    context = ssl.create_default_context(cafile=str(config.cafile) if config.cafile else None)
    client = imaplib.IMAP4_SSL(config.host, config.port, ssl_context=context, timeout=config.timeout_s)
    client.login(config.user, config.password)
    status, detail = client.select(_quoted(config.folder))
    if status != "OK":
        client.logout()
        raise RuntimeError(f"IMAP folder {config.folder!r} cannot be opened: {detail!r}")
    if config.move_to:
        client.create(_quoted(config.move_to))  # fails harmlessly when it exists
    return client


def _utf7(name: str) -> str:
    """A folder name in IMAP's modified UTF-7 (RFC 3501 5.1.3): "Obrađeno" is "Obra&ARE-eno"."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            encoded = base64.b64encode("".join(run).encode("utf-16-be")).decode("ascii")
            out.append("&" + encoded.rstrip("=").replace("/", ",") + "-")
            run.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def _quoted(folder: str) -> str:
    name = _utf7(folder)
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def process_mail(channel: Channel, raw: bytes, label: str) -> Outcome:
    """Store the photos of one raw mail; the outcome of each, and the mail's own problems."""
    mail = parse_mail(raw)
    outcome = Outcome(label, problems=list(mail.problems) + mail.skipped)
    if not mail.photos:
        return outcome
    sender = None
    if mail.sender:
        sender = hash_sender(channel.sender_key, "email", normalise_address(mail.sender))
    for photo in mail.photos:
        outcome.items.append(store_item(channel, _item(mail, photo.data, photo.index, sender)))
    return outcome


def _item(mail: ParsedMail, data: bytes, index: int, sender: str | None) -> IntakeItem:
    location = mail.location()
    return IntakeItem(
        data=data,
        source="email",
        location=None if location is None else (location.lat, location.lon),
        location_source="text",
        note=mail.subject,
        sender_hash=sender,
        provenance={"channel": "email", "date": mail.date},
        key=intake_key("email", mail.message_id, sha256_hex(data)),
        index=index,
    )


def _size(client: imaplib.IMAP4, uid: str) -> int:
    _, data = client.uid("FETCH", uid, "(RFC822.SIZE)")
    for chunk in data:
        found = _SIZE.search(chunk if isinstance(chunk, bytes) else b"")
        if found:
            return int(found.group(1))
    return 0


def _fetch(client: imaplib.IMAP4, uid: str) -> bytes | None:
    status, data = client.uid("FETCH", uid, "(BODY.PEEK[])")  # PEEK: the mail stays unread
    if status != "OK":
        return None
    for chunk in data:
        if isinstance(chunk, tuple) and len(chunk) == 2:
            return bytes(chunk[1])
    return None


def mark_processed(client: imaplib.IMAP4, uid: str, move_to: str | None) -> None:
    """Flag the mail ``$CamidDone``; with ``move_to``, move it there too."""
    client.uid("STORE", uid, "+FLAGS", f"({DONE_FLAG})")
    if not move_to:
        return
    if "MOVE" in client.capabilities:
        client.uid("MOVE", uid, _quoted(move_to))
    else:
        client.uid("COPY", uid, _quoted(move_to))
        client.uid("STORE", uid, "+FLAGS", r"(\Deleted)")
        client.expunge()


def _one(client: imaplib.IMAP4, channel: Channel, config: ImapConfig, uid: str) -> Outcome:
    label = f"mail uid {uid}"
    size = _size(client, uid)
    if size > config.max_mail_bytes:
        return Outcome(label, problems=[f"mail of {size:,} bytes is over {config.max_mail_bytes:,}; skipped"])
    raw = _fetch(client, uid)
    if raw is None:
        return Outcome(label, items=[ItemOutcome("retry", "the server did not send the mail")])
    return process_mail(channel, raw, label)


def poll_once(client: imaplib.IMAP4, channel: Channel, config: ImapConfig) -> list[Outcome]:
    """Process every mail of the selected folder not flagged ``$CamidDone``; one outcome each.

    A mail is marked processed only after all its photos were stored (or refused for good); a
    mail with a photo to retry (rate limit, database down) stays as it is for the next poll.
    """
    status, data = client.uid("SEARCH", "UNKEYWORD", DONE_FLAG)
    if status != "OK":
        raise RuntimeError(f"IMAP search failed: {data!r}")
    outcomes = []
    for uid in data[0].decode().split() if data and data[0] else []:
        outcome = _one(client, channel, config, uid)
        if not outcome.retry:
            mark_processed(client, uid, config.move_to)
        outcomes.append(outcome)
    return outcomes


def watch(
    channel: Callable[[], Channel],
    config: ImapConfig,
    *,
    interval_s: float,
    stop: threading.Event,
    report: Callable[[Outcome], None],
) -> None:
    """Poll until ``stop`` is set; a lost connection is logged and opened again at the next poll.

    ``channel()`` is asked at every poll, so a server that reloads its model polls with the new one.
    """
    while not stop.is_set():
        try:
            client = connect(config)
            try:
                for outcome in poll_once(client, channel(), config):
                    report(outcome)
            finally:
                client.logout()
        except (OSError, imaplib.IMAP4.error, RuntimeError) as exc:
            log.warning("intake imap: %s:%d: %s; retrying in %g s", config.host, config.port, exc, interval_s)
        stop.wait(interval_s)
