"""The lifecycle's background tasks of a running server: the registry watch and the shadow model."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from serve.engine import Engine
from serve.lifecycle.reload import ModelWatch
from serve.lifecycle.shadow import ShadowScorer
from serve.settings import Settings

__all__ = ["Background", "start_background"]

log = logging.getLogger(__name__)


@dataclass
class Background:
    """The tasks started with the app; :meth:`stop` ends them at shutdown."""

    watch: ModelWatch | None = None
    shadow: ShadowScorer | None = None

    async def stop(self) -> None:
        """Stop every task that was started."""
        for task in (self.watch, self.shadow):
            if task is not None:
                await task.stop()


async def start_background(app: Any, settings: Settings) -> Background:
    """Start the registry watch (``models_dir`` and ``model_watch_s`` > 0) and the shadow model's
    scoring (``shadow_model``); a shadow model that does not load is logged, not fatal."""
    tasks = Background()
    if settings.models_dir is not None and settings.model_watch_s > 0:
        tasks.watch = ModelWatch(app, settings.models_dir, settings.model_watch_s).start()
    if settings.shadow_model is not None:
        try:
            engine = await asyncio.to_thread(Engine.load, settings.shadow_model, threads=1)
        except Exception as exc:  # noqa: BLE001 - the live service starts without its shadow
            log.error("shadow model not started: %s", exc)
        else:
            app.state.shadow_engine = engine
            tasks.shadow = ShadowScorer(app, engine, settings.shadow_interval_s).start()
    return tasks
