"""A throwaway Dovecot IMAP server on loopback for the intake tests: its own config, users and
Maildirs in a temporary folder, TLS with a self-signed certificate made for the test.

``start_dovecot(folder)`` skips the test (with the reason) where Dovecot or openssl is missing.
"""

from __future__ import annotations

import getpass
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


@dataclass(frozen=True)
class ImapServer:
    host: str
    port: int
    user: str
    password: str
    cafile: Path
    folder: Path

    def context(self) -> ssl.SSLContext:
        """A client TLS context that trusts this server's certificate only."""
        return ssl.create_default_context(cafile=str(self.cafile))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return cert, key


def _users() -> str:
    """Who Dovecot's own processes run as: this user, or the package's users when run as root (CI)."""
    if os.getuid() != 0:
        user = getpass.getuser()
        return f"default_internal_user = {user}\ndefault_login_user = {user}\n"
    # Logins may not run as root; auth does, to read the passwd file in the root-only tmp folder.
    return (
        "default_internal_user = dovecot\ndefault_login_user = dovenull\n"
        "service auth {\n  user = root\n}\nservice auth-worker {\n  user = root\n}\n"
    )


def _mail_owner(mail: Path) -> tuple[int, int]:
    """The uid/gid that reads the Maildirs: this user's, or the ``dovecot`` user's under root
    (Dovecot never runs a mail process as root), with a folder that user can reach."""
    if os.getuid() != 0:
        return os.getuid(), os.getgid()
    entry = pwd.getpwnam("dovecot")
    mail.mkdir(mode=0o700)
    os.chown(mail, entry.pw_uid, entry.pw_gid)
    return entry.pw_uid, entry.pw_gid


def _config(folder: Path, mail_root: Path, port: int, cert: Path, key: Path) -> Path:
    uid, gid = _mail_owner(mail_root / "mail")
    text = (
        _users()
        + f"""
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:{mail_root}/mail/%u
auth_mechanisms = plain
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail_root}/mail/%u
}}
"""
    )
    path = folder / "dovecot.conf"
    path.write_text(text, encoding="utf-8")
    return path


def _wait_listening(port: int, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    detail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
    pytest.fail(f"dovecot did not listen on port {port}:\n{detail}")


@contextmanager
def start_dovecot(folder: Path, user: str = "inbox", password: str = "s3cret-test") -> Iterator[ImapServer]:
    """Run Dovecot in the foreground on a free loopback port until the block ends."""
    if not Path(DOVECOT).is_file():
        pytest.skip("no Dovecot: apt-get install -y dovecot-imapd (make system-deps)")
    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make the test server's certificate")
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = _certificate(folder)
    (folder / "passwd").write_text(f"{user}:{{PLAIN}}{password}\n", encoding="utf-8")
    port = _free_port()
    mail_root = Path(tempfile.mkdtemp(prefix="camid-imap-"))  # outside root-only pytest folders
    mail_root.chmod(0o711)
    config = _config(folder, mail_root, port, cert, key)
    proc = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_listening(port, folder / "dovecot.log")
        yield ImapServer("127.0.0.1", port, user, password, cert, folder)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(mail_root, ignore_errors=True)
