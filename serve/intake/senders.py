"""Senders as keyed hashes: repeated senders are recognised (and rate limited), never identified.

The key is ``CAMID_INTAKE_SENDER_KEY`` when set, else 32 random bytes kept in
``<data_dir>/sender.key`` (created 0600 on first use). Without the key a hash cannot be tested
against a guessed address; keep the file out of backups that leave the server.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

__all__ = ["KEY_ENV", "hash_sender", "normalise_address", "sender_key"]

KEY_ENV = "CAMID_INTAKE_SENDER_KEY"
KEY_FILE = "sender.key"


def sender_key(data_dir: Path, configured: str | None = None) -> bytes:
    """The hashing key: ``configured`` (or ``$CAMID_INTAKE_SENDER_KEY``), else the data folder's file."""
    text = configured or os.environ.get(KEY_ENV)
    if text:
        return text.encode("utf-8")
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:  # another process created it first
            pass
        else:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_hex(32) + "\n")
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise ValueError(f"{path}: the sender key is too short; delete the file to make a new one")
    return key.encode("ascii")


def normalise_address(address: str) -> str:
    """An e-mail address as it is hashed: trimmed and lower-cased."""
    return address.strip().strip("<>").strip().lower()


def hash_sender(key: bytes, kind: str, identity: str) -> str:
    """HMAC-SHA256 hex of ``kind:identity`` (``email:ana@example.org``, ``x:ana``)."""
    message = f"{kind}:{identity.strip().lower()}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()
