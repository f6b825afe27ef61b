"""Reading one e-mail: its photos, the location written in its subject or body, its sender.

Built on the standard library's ``email`` package with the modern policy. A mail that cannot be
read at all (broken MIME, no headers) still yields a :class:`ParsedMail` whose ``problems`` say
why, so an inbox poller reports it and moves on. Forwarded mails (``message/rfc822`` parts) are
read through, and HTML-only bodies are turned into text (link targets included, so a map link
behind "here" is found).
"""

from __future__ import annotations

import email
import hashlib
import html
import logging
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.utils import parseaddr, parsedate_to_datetime
from html.parser import HTMLParser

from data.geo import LatLon, parse_location
from data.images import sniff_format

__all__ = ["MailPhoto", "ParsedMail", "html_text", "parse_mail"]

log = logging.getLogger(__name__)
MAX_SUBJECT = 200


@dataclass(frozen=True)
class MailPhoto:
    """One attachment that may be a photo (the intake decides): its bytes and declared type."""

    index: int
    data: bytes
    declared_type: str


@dataclass
class ParsedMail:
    """What the intake needs from one mail; ``problems`` lists what could not be read."""

    message_id: str  # the Message-ID, or the sha256 of the raw mail when it has none
    sender: str | None
    subject: str
    text: str
    date: str | None  # ISO 8601, from the Date header
    photos: list[MailPhoto] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # attachments that are no photos, and why
    problems: list[str] = field(default_factory=list)

    def location(self) -> LatLon | None:
        """Coordinates or a map link from the subject, else from the body."""
        return parse_location(self.subject) or parse_location(self.text)


class _TextAndLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.parts.append(f" {href} ")
        elif tag in ("br", "p", "div", "li", "tr"):
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_text(markup: str) -> str:
    """The text of an HTML body with every link's target written out beside it."""
    parser = _TextAndLinks()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # noqa: BLE001 - HTMLParser is lenient; any failure leaves the raw text
        return html.unescape(markup)
    return "".join(parser.parts)


def _text_of(part: Message) -> str:
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else part.get_payload(decode=False)
    except (LookupError, ValueError, AssertionError) as exc:  # unknown charset, broken encoding
        payload = part.get_payload(decode=True)
        log.debug("mail part unreadable as text (%s); read as UTF-8", exc)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    text = content if isinstance(content, str) else ""
    return html_text(text) if part.get_content_type() == "text/html" else text


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # noqa: BLE001 - a malformed header must not lose the whole mail
        return ""
    return "" if value is None else str(value)


def _date(msg: Message) -> str | None:
    try:
        return parsedate_to_datetime(_header(msg, "Date")).isoformat()
    except (TypeError, ValueError, IndexError):
        return None


def _walk(msg: Message, mail: ParsedMail) -> None:
    texts: list[str] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        filename = part.get_filename()
        if ctype in ("text/plain", "text/html") and not filename:
            texts.append(_text_of(part))
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if part.get_content_maintype() == "image" or sniff_format(data[:64]) is not None:
            mail.photos.append(MailPhoto(len(mail.photos), data, ctype))
        else:
            mail.skipped.append(f"an attachment of type {ctype} is not a photo")
    mail.text = "\n".join(texts)


def parse_mail(raw: bytes) -> ParsedMail:
    """Read one raw RFC 5322 mail; never raises for a malformed one (see ``problems``)."""
    fallback_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    mail = ParsedMail(message_id=fallback_id, sender=None, subject="", text="", date=None)
    try:
        msg = email.message_from_bytes(raw, policy=policy.default)
    except Exception as exc:  # noqa: BLE001 - the parser is lenient, but never lose the poll
        mail.problems.append(f"not a readable mail ({type(exc).__name__})")
        return mail
    mail.message_id = _header(msg, "Message-ID").strip() or fallback_id
    address = parseaddr(_header(msg, "From"))[1]
    mail.sender = address or None
    mail.subject = " ".join(_header(msg, "Subject").split())[:MAX_SUBJECT]
    mail.date = _date(msg)
    try:
        _walk(msg, mail)
    except Exception as exc:  # noqa: BLE001 - broken MIME: keep what was read
        mail.problems.append(f"broken MIME structure ({type(exc).__name__})")
    if msg.defects and not mail.photos:
        mail.problems.append("malformed mail: " + ", ".join(type(d).__name__ for d in msg.defects[:3]))
    if not mail.photos and not mail.problems:
        mail.problems.append("no photo attached")
    return mail
