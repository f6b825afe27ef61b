"""Promotion: the gate's comparison, saved next to the candidate, then the live pointer moved.

:func:`promote` is what ``camid model promote`` calls. The live model it compares against is the
registry's live one, or, before the first promotion, the model the server runs today
(``baseline``: ``CAMID_MODEL_PATH``, else the release model).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serve.engine import Engine
from serve.exports import export_training
from serve.lifecycle.gate import EvalSet, compare, format_table, load_set
from serve.lifecycle.registry import Entry, ModelRegistry, RegistryError, entry_id
from serve.store import Store

__all__ = ["Outcome", "promote", "verified_set"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a promotion did: the comparison and its table, and whether the candidate went live."""

    entry: Entry
    comparison: dict[str, Any]
    table: str
    promoted: bool
    saved: Path


def verified_set(store: Store, folder: Path) -> EvalSet:
    """The verified submissions as the training export writes them (blurred photos), each photo
    in the group of its registry camera (:mod:`serve.registry.groups`)."""
    return load_set("verified", export_training(store, folder))


def _sets(store: Store | None, benchmark: Path | None, work: Path) -> list[EvalSet]:
    sets = []
    if store is not None:
        sets.append(verified_set(store, work / "verified"))
    if benchmark is not None:
        sets.append(load_set("benchmark", benchmark))
    return sets


def _live_engine(registry: ModelRegistry, baseline: Path | None) -> tuple[Engine, str]:
    live = registry.live()
    if live is not None:
        return Engine.load(live.model_path, threads=1), live.id
    if baseline is None or not baseline.is_file():
        raise RegistryError(
            "no live model to compare with: promote needs the registry's live model or the one the "
            "server runs (CAMID_MODEL_PATH / --baseline)"
        )
    engine = Engine.load(baseline, threads=1)
    return engine, entry_id(engine.info.name, engine.info.version)


def promote(
    registry: ModelRegistry,
    candidate: str,
    *,
    store: Store | None,
    benchmark: Path | None = None,
    baseline: Path | None = None,
    force: bool = False,
    reason: str = "",
    by: str = "",
    n_boot: int = 1000,
) -> Outcome:
    """Compare ``candidate`` (a registered id or an exported file) with the live model and make it
    live unless the gate refuses it; ``force`` (with a ``reason``) overrides a refusal, recorded."""
    if force and not reason.strip():
        raise RegistryError("--force needs --reason 'why the gate is overridden' (kept in the history)")
    entry = registry.resolve(candidate)
    live, live_id = _live_engine(registry, baseline)
    if live_id == entry.id:
        raise RegistryError(f"{entry.id} is already the live model")
    cand = Engine.load(entry.model_path, threads=1)
    with tempfile.TemporaryDirectory(prefix="camid-gate-") as tmp:
        comparison = compare(live, cand, _sets(store, benchmark, Path(tmp)), n_boot=n_boot)
    comparison["forced"] = bool(force and comparison["refused"])
    comparison["reason"] = reason
    table = format_table(comparison)
    saved = registry.save_comparison(entry, live_id, comparison, table)
    promoted = not comparison["refused"] or force
    if promoted:
        event = {"by": by, "reason": reason, "forced": comparison["forced"], "comparison": saved.name}
        if registry.live() is None and baseline is not None:  # the first promotion: a rollback
            event["previous"] = registry.add(baseline).id  # returns to the model the server ran
        registry.set_live(entry, event)
        log.info("promoted %s (was %s)", entry.id, live_id)
    return Outcome(entry, comparison, table, promoted, saved)
