"""The e-mail inbox against a real IMAP server (Dovecot on loopback, TLS): photos become
submissions with their locations, malformed mails are reported and skipped, a crash between
storing and flagging does not duplicate, and the sender is nowhere in the database in clear."""

# ruff: noqa: F811 - pytest fixtures imported from tests.serve.*_fixtures
from __future__ import annotations

import imaplib
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from serve.intake import imap as imap_module
from serve.intake.cli import main as intake_main
from serve.intake.imap import DONE_FLAG, ImapConfig, connect, poll_once, watch
from serve.store import Base, Store, Submission
from tests.serve.apptools import wait_for
from tests.serve.imap_server import ImapServer, start_dovecot
from tests.serve.intake_fixtures import make_channel, street_photo, tiny_engine
from tests.serve.moderation_fixtures import database_url, store, store_settings

__all__ = ["database_url", "store", "store_settings", "tiny_engine"]

SENDER = "Ana.Petrovic@example.org"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ImapServer]:
    with start_dovecot(tmp_path / "dovecot") as srv:
        yield srv


def _config(srv: ImapServer, **kw: Any) -> ImapConfig:
    return ImapConfig(
        host=srv.host, port=srv.port, user=srv.user, password=srv.password, cafile=srv.cafile, **kw
    )


def _mail(subject: str, body: str = "", *, sender: str = SENDER, html: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = f"Ana <{sender}>", "kamere@example.org", subject
    msg["Message-ID"] = f"<{abs(hash((subject, body, sender)))}@example.org>"
    msg["Date"] = "Fri, 28 Nov 2026 10:00:00 +0100"
    if html is not None:
        msg.set_content(html, subtype="html")
    else:
        msg.set_content(body)
    return msg


def _photo(msg: EmailMessage, data: bytes, subtype: str = "jpeg") -> EmailMessage:
    msg.add_attachment(data, maintype="image", subtype=subtype, filename=f"IMG_0001.{subtype}")
    return msg


def _deliver(srv: ImapServer, *mails: EmailMessage | bytes) -> None:
    client = imaplib.IMAP4_SSL(srv.host, srv.port, ssl_context=srv.context())
    client.login(srv.user, srv.password)
    for mail in mails:
        client.append("INBOX", None, None, mail if isinstance(mail, bytes) else mail.as_bytes())
    client.logout()


def _poll(srv: ImapServer, channel: Any, **kw: Any) -> list[Any]:
    client = connect(_config(srv, **kw))
    try:
        return poll_once(client, channel, _config(srv, **kw))
    finally:
        client.logout()


def _unflagged(srv: ImapServer, folder: str = "INBOX") -> list[bytes]:
    client = imaplib.IMAP4_SSL(srv.host, srv.port, ssl_context=srv.context())
    client.login(srv.user, srv.password)
    client.select(folder)
    _, data = client.uid("SEARCH", "UNKEYWORD", DONE_FLAG)
    client.logout()
    return list(bytes(data[0]).split())


def _submissions(store: Store) -> list[Submission]:
    with store.session() as s:
        return list(s.scalars(select(Submission).order_by(Submission.created_at)))


def _forwarded(photo: bytes) -> EmailMessage:
    inner = _photo(_mail("kamera kod Slavije", "Pogledajte ovu kameru.", sender="drug@example.net"), photo)
    outer = _mail(
        "Fwd: kamera 44.7866 N, 20.4489 E", "Prosleđujem.\n\n---------- Forwarded message ---------"
    )
    outer.add_attachment(inner)  # message/rfc822
    return outer


def test_photos_become_submissions_with_their_locations(
    server: ImapServer, store: Store, tiny_engine: Any
) -> None:
    png = street_photo(2, "PNG")
    link = "https://www.google.com/maps/place/Kamera/@44.8043,20.4651,17z"
    _deliver(
        server,
        _photo(_mail("Kamera", "Ugao Kneza Miloša i Nemanjine: 44.8125, 20.4612\n-- \nAna"), street_photo(1)),
        _photo(_mail("Huawei", html=f"<p>Kamera je <a href='{link}'>ovde</a>.</p>"), png, "png"),
        _forwarded(street_photo(3)),
    )  # fmt: skip
    outcomes = _poll(server, make_channel(store, tiny_engine))
    assert [o.summary().get("stored") for o in outcomes] == [1, 1, 1], [o.lines() for o in outcomes]
    subs = _submissions(store)
    assert [(s.lat, s.lon) for s in subs] == [(44.8125, 20.4612), (44.8043, 20.4651), (44.7866, 20.4489)]
    assert {s.source for s in subs} == {"email"} and {s.location_source for s in subs} == {"text"}
    assert subs[0].note == "Kamera" and subs[0].provenance == {
        "channel": "email",
        "date": "2026-11-28T10:00:00+01:00",
    }
    assert _unflagged(server) == []
    assert _poll(server, make_channel(store, tiny_engine)) == []  # nothing is processed twice
    assert len(_submissions(store)) == 3


def test_malformed_mails_are_reported_and_skipped(server: ImapServer, store: Store, tiny_engine: Any) -> None:
    no_photo = _mail("Kamera na uglu", "Zaboravila sam sliku, 44.81, 20.46")
    pdf = _mail("Prijava", "U prilogu.")
    pdf.add_attachment(b"%PDF-1.4 not a photo", maintype="application", subtype="pdf", filename="prijava.pdf")
    huge = _photo(_mail("Velika slika", "44.81, 20.46"), street_photo(4, size=(1600, 1200)))
    broken = (
        b"From: x@example.org\r\nSubject: broken\r\nMessage-ID: <broken@example.org>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="zzz"\r\n\r\n--zzz\r\nContent-Type: image/jpeg\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n"  # no closing boundary
    )
    tiny = _photo(_mail("Ikonica", "44.81, 20.46"), street_photo(5, "PNG", size=(16, 16)), "png")
    good = _photo(_mail("Kamera", "44.8176, 20.4569"), street_photo(6))
    _deliver(server, no_photo, pdf, huge, broken, tiny, good)
    outcomes = _poll(server, make_channel(store, tiny_engine, max_bytes=60_000))
    lines = [line for o in outcomes for line in o.lines()]
    assert any("no photo attached" in line for line in lines), lines
    assert any("application/pdf is not a photo" in line for line in lines), lines
    assert any("too_large" in line for line in lines), lines
    assert any("too_small" in line for line in lines), lines
    assert sum(o.summary().get("stored", 0) for o in outcomes) == 1
    assert [(s.lat, s.lon) for s in _submissions(store)] == [(44.8176, 20.4569)]
    assert _unflagged(server) == []  # reported once, not retried on every poll


def test_a_mail_over_the_size_limit_is_not_downloaded(
    server: ImapServer, store: Store, tiny_engine: Any
) -> None:
    _deliver(server, _photo(_mail("Velika", "44.81, 20.46"), street_photo(17, size=(800, 600))))
    (outcome,) = _poll(server, make_channel(store, tiny_engine), max_mail_bytes=10_000)
    assert outcome.items == [] and "is over 10,000; skipped" in outcome.problems[0]
    assert _submissions(store) == [] and _unflagged(server) == []


def test_a_crash_between_storing_and_flagging_does_not_duplicate(
    server: ImapServer, store: Store, tiny_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _deliver(server, _photo(_mail("Kamera", "44.8125, 20.4612"), street_photo(7)))

    def crash(*args: Any) -> None:
        raise ConnectionResetError("the process died before flagging")

    monkeypatch.setattr(imap_module, "mark_processed", crash)
    with pytest.raises(ConnectionResetError):
        _poll(server, make_channel(store, tiny_engine))
    assert len(_submissions(store)) == 1 and len(_unflagged(server)) == 1
    monkeypatch.undo()
    (outcome,) = _poll(server, make_channel(store, tiny_engine))
    assert outcome.summary() == {"problems": 0, "already": 1}
    assert len(_submissions(store)) == 1 and _unflagged(server) == []


def test_moved_when_asked(server: ImapServer, store: Store, tiny_engine: Any) -> None:
    _deliver(server, _photo(_mail("Kamera", "44.8125, 20.4612"), street_photo(8)))
    _poll(server, make_channel(store, tiny_engine), move_to="Obrađeno")
    assert _unflagged(server) == [] and len(_submissions(store)) == 1
    client = imaplib.IMAP4_SSL(server.host, server.port, ssl_context=server.context())
    client.login(server.user, server.password)
    assert client.select("INBOX")[1] == [b"0"]
    assert client.select('"Obra&ARE-eno"')[1] == [b"1"]  # modified UTF-7
    client.logout()


def test_watch_keeps_polling_until_stopped(server: ImapServer, store: Store, tiny_engine: Any) -> None:
    stop = threading.Event()
    seen: list[Any] = []
    kwargs = {"interval_s": 0.2, "stop": stop, "report": seen.append}
    channel = make_channel(store, tiny_engine)
    thread = threading.Thread(target=watch, args=(lambda: channel, _config(server)), kwargs=kwargs)
    thread.start()
    try:
        _deliver(server, _photo(_mail("1", "44.8125, 20.4612"), street_photo(14)))
        wait_for(lambda: len(_submissions(store)) == 1, timeout=30)
        _deliver(server, _photo(_mail("2", "44.8043, 20.4651"), street_photo(15)))
        wait_for(lambda: len(_submissions(store)) == 2, timeout=30)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive() and len(seen) == 2 and _unflagged(server) == []


def test_the_server_polls_the_inbox_with_intake_imap(
    server: ImapServer, tiny_model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from tests.serve.test_submissions import moderation_app

    env = {"ENABLED": "1", "HOST": server.host, "PORT": str(server.port), "USER": server.user}
    env |= {"PASSWORD": server.password, "CAFILE": str(server.cafile), "INTERVAL_S": "0.2"}
    for name, value in env.items():
        monkeypatch.setenv(f"CAMID_INTAKE_IMAP_{name}", value)
    app = moderation_app(tiny_model.onnx, tmp_path / "var", None)
    _deliver(server, _photo(_mail("Kamera", "44.8125, 20.4612"), street_photo(16)))
    with TestClient(app):
        wait_for(lambda: app.state.store.list_submissions()[1] == 1, timeout=30)
        (item,) = app.state.store.list_submissions()[0]
        assert item["source"] == "email" and item["result"]["location"]["lat"] == 44.8125
    assert not any(t.name == "camid-intake-imap" for t in threading.enumerate())
    monkeypatch.delenv("CAMID_INTAKE_IMAP_HOST")
    with pytest.raises(ValueError, match="needs CAMID_INTAKE_IMAP_HOST"):
        moderation_app(tiny_model.onnx, tmp_path / "var", None)


def _database_text(store: Store) -> str:
    with store.engine.connect() as conn:
        rows = [conn.execute(text(f"SELECT * FROM {t}")).all() for t in Base.metadata.tables]
    return repr(rows)


def test_senders_are_kept_as_keyed_hashes_only(server: ImapServer, store: Store, tiny_engine: Any) -> None:
    _deliver(
        server,
        _photo(_mail("1", "44.8125, 20.4612"), street_photo(9)),
        _photo(_mail("2", "44.8043, 20.4651", sender=SENDER.upper()), street_photo(10)),
        _photo(_mail("3", "44.7866, 20.4489"), street_photo(11)),
        _photo(_mail("4", "44.8176, 20.4569", sender="someone.else@example.net"), street_photo(12)),
    )
    outcomes = _poll(server, make_channel(store, tiny_engine, per_sender_per_day=2))
    assert [o.summary().get("stored", 0) for o in outcomes] == [1, 1, 0, 1]
    assert outcomes[2].retry and "rate_limited" in outcomes[2].items[0].detail
    assert len(_unflagged(server)) == 1  # the third mail waits for the next day's quota
    hashes = [s.sender_hash for s in _submissions(store)]
    assert hashes[0] == hashes[1] != hashes[2] and all(h and len(h) == 64 for h in hashes)
    dump = _database_text(store).lower()
    for clear in ("ana.petrovic", "example.org", "someone.else", "example.net", "ana <"):
        assert clear not in dump
    key = (store.data_dir / "sender.key").stat()
    assert key.st_mode & 0o777 == 0o600


def test_command_polls_the_inbox(server: ImapServer, tmp_path: Path, tiny_model: Any, capsys: Any) -> None:
    _deliver(server, _photo(_mail("Kamera", "44.8125, 20.4612"), street_photo(13)))
    secret = tmp_path / "imap-password"
    secret.write_text(server.password + "\n")
    common = ["--model", str(tiny_model.onnx), "--data-dir", str(tmp_path / "var"), "--new-store", "imap"]
    where = [
        "--host",
        server.host,
        "--port",
        str(server.port),
        "--user",
        server.user,
        "--cafile",
        str(server.cafile),
    ]
    assert intake_main([*common, *where, "--password-file", str(secret)]) == 0
    assert "photo 0: stored as submission" in capsys.readouterr().out
    secret.write_text("wrong\n")
    assert intake_main([*common, *where, "--password-file", str(secret)]) == 2
    assert "AUTHENTICATIONFAILED" in capsys.readouterr().err
    assert (
        intake_main([*common, "--host", server.host, "--port", str(server.port), "--user", server.user]) == 2
    )
    assert "no password: set CAMID_IMAP_PASSWORD" in capsys.readouterr().err
