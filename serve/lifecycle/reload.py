"""Hot reload: a running server switches to the registry's live model without dropping a request.

The new model is loaded beside the old one (in a worker thread), then ``app.state.engine`` is
replaced in one assignment: requests already running finish on the engine they started with,
later ones get the new one, so no request fails or waits for the switch. It happens

- on its own within ``CAMID_MODEL_WATCH_S`` seconds (default 2) of ``camid model promote`` or
  ``rollback``: every worker process polls ``CAMID_MODELS_DIR/registry.json``;
- at once with ``POST /v1/admin/model/reload`` (moderator token), for the worker that answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serve.engine import Engine, ModelError
from serve.lifecycle.registry import REGISTRY_FILE, ModelRegistry, RegistryError
from serve.settings import Settings

__all__ = ["ModelWatch", "Reload", "live_model_path", "reload_model"]

log = logging.getLogger(__name__)


def live_model_path(settings: Settings) -> Path:
    """The model the server should run: the registry's live one when ``models_dir`` names a registry
    with a live model, else ``model_path``."""
    if settings.models_dir is not None:
        live = ModelRegistry(settings.models_dir).live()
        if live is not None:
            return live.model_path
    return settings.model_path


@dataclass(frozen=True)
class Reload:
    """What a reload did: the model now served and whether it changed."""

    changed: bool
    name: str
    version: str
    path: str
    previous: str | None

    def to_json(self) -> dict[str, Any]:
        """The answer of ``POST /v1/admin/model/reload``."""
        return {
            "changed": self.changed,
            "model": {"name": self.name, "version": self.version, "path": self.path},
            "previous_version": self.previous,
        }


def _swap(app: Any, engine: Engine) -> None:
    """Serve ``engine`` from now on; the store accepts reviews with the new model's classes."""
    store = getattr(app.state, "store", None)
    if store is not None:
        store.use_labels(engine.info.labels)
    app.state.engine = engine


async def reload_model(app: Any) -> Reload:
    """Load the live model (if it is not the one served) and swap it in; ModelError/RegistryError
    leave the served model as it is."""
    settings: Settings = app.state.settings
    path = await asyncio.to_thread(live_model_path, settings)
    current: Engine | None = app.state.engine
    if current is not None and current.path is not None and current.path.resolve() == path.resolve():
        info = current.info
        return Reload(False, info.name, info.version, str(path), info.version)
    engine = await asyncio.to_thread(Engine.load, path, threads=settings.ort_threads)
    _swap(app, engine)
    previous = current.info.version if current is not None else None
    log.info("model reloaded: %s %s from %s (was %s)", engine.info.name, engine.info.version, path, previous)
    return Reload(True, engine.info.name, engine.info.version, str(path), previous)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_ino


class ModelWatch:
    """Polls ``registry.json`` every ``interval_s`` and reloads when it changed (an asyncio task)."""

    def __init__(self, app: Any, models_dir: Path, interval_s: float) -> None:
        self.app, self.file, self.interval_s = app, Path(models_dir) / REGISTRY_FILE, interval_s
        self._seen: tuple[int, int] | None = None  # the first check compares with the served model
        self._task: asyncio.Task[None] | None = None

    def start(self) -> ModelWatch:
        """Start polling on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="camid-model-watch")
        return self

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            stamp = _stamp(self.file)
            if stamp == self._seen:
                continue
            try:
                await reload_model(self.app)
                self._seen = stamp
            except (ModelError, RegistryError, OSError) as exc:  # keep serving the old model
                log.error("model reload failed, still serving the previous model: %s", exc)
                self._seen = stamp

    async def stop(self) -> None:
        """Cancel the polling task and wait for it to end."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
