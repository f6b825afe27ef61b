"""The inbox polled by the server itself: ``camid serve --intake-imap`` (or
``CAMID_INTAKE_IMAP_ENABLED=1``) runs :func:`serve.intake.imap.watch` in a thread beside the HTTP
service, with the server's model (reloads included) and store.

Settings come from the environment with the ``CAMID_INTAKE_IMAP_`` prefix: ``HOST``, ``USER``,
``PASSWORD`` or ``PASSWORD_FILE``, ``PORT`` (993), ``FOLDER`` (INBOX), ``MOVE_TO``, ``CAFILE``,
``INTERVAL_S`` (60), ``PER_SENDER_PER_DAY`` (30). With several ``--workers`` each one polls; the
exactly-once keys keep that from duplicating, but one poller is enough: give the flag to one
server, or run ``camid intake imap --watch`` as its own process instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from data.images import ImageLimits
from serve.intake.channel import Channel, Outcome
from serve.intake.imap import ImapConfig, watch
from serve.intake.intake import IntakeRules
from serve.intake.senders import sender_key

__all__ = ["ImapSettings", "add_imap_intake"]

log = logging.getLogger(__name__)


class ImapSettings(BaseSettings):
    """The inbox the server polls (``CAMID_INTAKE_IMAP_*``); off unless ``enabled``."""

    model_config = SettingsConfigDict(env_prefix="CAMID_INTAKE_IMAP_", env_file=".env", extra="ignore")

    enabled: bool = False
    host: str | None = None
    port: int = 993
    user: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    folder: str = "INBOX"
    move_to: str | None = None
    cafile: Path | None = None
    interval_s: float = 60.0
    per_sender_per_day: int = 30

    def config(self) -> ImapConfig:
        """The poller's configuration; ValueError saying what is missing."""
        if not self.host or not self.user:
            raise ValueError("--intake-imap needs CAMID_INTAKE_IMAP_HOST and CAMID_INTAKE_IMAP_USER")
        if self.password is not None:
            password = self.password.get_secret_value()
        elif self.password_file is not None:
            password = self.password_file.read_text(encoding="utf-8").strip()
        else:
            raise ValueError(
                "--intake-imap needs CAMID_INTAKE_IMAP_PASSWORD or CAMID_INTAKE_IMAP_PASSWORD_FILE"
            )
        return ImapConfig(
            host=self.host,
            user=self.user,
            password=password,
            port=self.port,
            folder=self.folder,
            move_to=self.move_to,
            cafile=self.cafile,
        )


def _channel_of(app: FastAPI, per_sender: int) -> Callable[[], Channel]:
    settings = app.state.settings
    limits = ImageLimits(
        max_bytes=settings.max_bytes,
        max_pixels=settings.max_pixels,
        max_decoded_bytes=settings.max_decoded_bytes,
    )
    key = sender_key(app.state.store.data_dir)
    rules = IntakeRules(image=limits, per_sender_per_day=per_sender)
    return lambda: Channel(app.state.engine, app.state.store, rules, key)  # the model now served


def _log(outcome: Outcome) -> None:
    for line in outcome.lines():
        log.info("intake imap: %s", line)


def add_imap_intake(app: FastAPI, imap: ImapSettings | None = None) -> None:
    """When enabled, poll the inbox from the app's startup (model and store loaded) to its shutdown."""
    imap = imap or ImapSettings()
    if not imap.enabled:
        return
    config = imap.config()  # refuse to build an app whose inbox settings are incomplete
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[None]:
        async with inner(application):
            stop = threading.Event()
            kwargs = {"interval_s": imap.interval_s, "stop": stop, "report": _log}
            thread = threading.Thread(
                target=watch, args=(_channel_of(app, imap.per_sender_per_day), config), kwargs=kwargs,
                name="camid-intake-imap", daemon=True,
            )  # fmt: skip
            thread.start()
            log.info("intake imap: polling %s@%s:%d/%s every %g s", config.user, config.host, config.port,
                     config.folder, imap.interval_s)  # fmt: skip
            try:
                yield
            finally:
                stop.set()
                thread.join(timeout=30)

    app.router.lifespan_context = lifespan
