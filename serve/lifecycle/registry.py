"""The model registry: a folder (``CAMID_MODELS_DIR``) of exported models, one of them live.

Layout::

    MODELS_DIR/
      registry.json              {"live": ID or null, "history": [every promotion and rollback]}
      ID/                        ID = <model name>-<version> from the file's contract
        model.onnx               the exported file (and its crop classifier, for a zoom pair)
        contract.json            the contract as the file carries it
        MODEL_CARD.md            the card, when one was given (or lay beside the file)
        comparison-LIVE.json/.md the promotion gate's comparisons against earlier live models

``registry.json`` is replaced atomically, so a running server that watches it
(:mod:`serve.lifecycle.reload`) reads the old live model or the new one, never half a file.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.dedup import sha256_file
from data.files import atomic_write
from serve.engine import Engine, ModelError
from serve.store.models import utcnow

__all__ = ["Entry", "ModelRegistry", "RegistryError", "entry_id"]

REGISTRY_FILE = "registry.json"
MODEL_FILE = "model.onnx"
CARD_FILE = "MODEL_CARD.md"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class RegistryError(ValueError):
    """A registry operation that cannot be done; the message says why and what to do."""


def entry_id(name: str, version: str) -> str:
    """The registry id of a model: ``<name>-<version>``, with unsafe characters replaced by ``_``."""
    return _UNSAFE.sub("_", f"{name}-{version}").strip("._") or "model"


@dataclass(frozen=True)
class Entry:
    """One registered model: its folder, file and the facts of its contract."""

    id: str
    folder: Path
    contract: Mapping[str, Any]

    @property
    def model_path(self) -> Path:
        """The registered ``model.onnx``."""
        return self.folder / MODEL_FILE

    @property
    def card_path(self) -> Path | None:
        """Its ``MODEL_CARD.md``, None when it was registered without one."""
        card = self.folder / CARD_FILE
        return card if card.is_file() else None

    @property
    def comparisons(self) -> list[Path]:
        """The gate's saved comparisons of this model (``comparison-<live>.json``)."""
        return sorted(self.folder.glob("comparison-*.json"))

    @property
    def version(self) -> str:
        """The version in its contract."""
        return str(self.contract.get("version", ""))


def _write_json(path: Path, data: Any) -> Path:
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


class ModelRegistry:
    """The registry folder; every method reads the disk afresh (several processes share it)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- reading ----------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """``registry.json``: ``{"live": ID | None, "history": [...]}`` (empty when absent)."""
        path = self.root / REGISTRY_FILE
        if not path.is_file():
            return {"live": None, "history": []}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RegistryError(f"{path}: unreadable ({exc}); restore it from a backup") from exc
        if not isinstance(data, dict):
            raise RegistryError(f"{path}: not a registry file (expected a JSON object)")
        return {"live": data.get("live"), "history": list(data.get("history") or [])}

    def entries(self) -> list[Entry]:
        """Every registered model, oldest folder name first."""
        if not self.root.is_dir():
            return []
        folders = sorted(p for p in self.root.iterdir() if not p.name.startswith("."))  # not staging
        return [self.get(p.name) for p in folders if (p / MODEL_FILE).is_file()]

    def get(self, model_id: str) -> Entry:
        """The entry ``model_id``; :class:`RegistryError` naming the known ids when absent."""
        folder = self.root / model_id
        if _UNSAFE.search(model_id) or not (folder / MODEL_FILE).is_file():
            known = ", ".join(e.id for e in self.entries()) or "none yet (camid model add FILE)"
            raise RegistryError(f"no model {model_id!r} in {self.root}; registered: {known}")
        contract = json.loads((folder / "contract.json").read_text(encoding="utf-8"))
        return Entry(model_id, folder, contract)

    def live(self) -> Entry | None:
        """The live model, or None when nothing was promoted yet."""
        live = self.state()["live"]
        return self.get(str(live)) if live else None

    # -- changing ---------------------------------------------------------------------------------

    def add(self, path: str | Path, card: str | Path | None = None) -> Entry:
        """Copy an exported model (and its crop classifier) into the registry; the same file twice is
        a no-op, another file with the same name and version is refused."""
        src = Path(path)
        if card is not None and not Path(card).is_file():
            raise RegistryError(f"{card}: no such model card")
        try:
            engine = Engine.load(src, threads=1)
        except ModelError as exc:
            raise RegistryError(str(exc)) from exc
        info = engine.info
        model_id = entry_id(info.name, info.version)
        folder = self.root / model_id
        if (folder / MODEL_FILE).is_file():
            if sha256_file(folder / MODEL_FILE) != sha256_file(src):
                raise RegistryError(
                    f"{src}: {model_id} is already registered with a different file; "
                    "export the new model with a new version (camid export --version ...)"
                )
            return self.get(model_id)
        staging = self.root / f".{model_id}.adding"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        shutil.copy2(src, staging / MODEL_FILE)
        if engine.zoom is not None:
            shutil.copy2(engine.zoom.path, staging / engine.zoom.path.name)
        card_src = Path(card) if card is not None else _card_beside(src)
        if card_src is not None:
            shutil.copy2(card_src, staging / CARD_FILE)
        _write_json(staging / "contract.json", info.to_json())
        staging.rename(folder)
        return self.get(model_id)

    def resolve(self, ref: str) -> Entry:
        """A registered id, or a path to an exported file (registered on the way)."""
        if (self.root / ref / MODEL_FILE).is_file() and not _UNSAFE.search(ref):
            return self.get(ref)
        if Path(ref).is_file():
            return self.add(ref)
        if "/" in ref or ref.endswith(".onnx"):  # meant a file
            known = ", ".join(e.id for e in self.entries()) or "none yet"
            raise RegistryError(f"{ref}: no such file (nor a registered model; registered: {known})")
        return self.get(ref)  # raises, naming the known ids

    def set_live(self, entry: Entry, event: Mapping[str, Any]) -> dict[str, Any]:
        """Make ``entry`` live and append ``event`` (who, why, forced, comparison) to the history."""
        state = self.state()
        record = {
            "event": "promote",
            **event,
            "id": entry.id,
            "previous": state["live"] or event.get("previous"),
            "at": utcnow().isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        _write_json(self.root / REGISTRY_FILE, {"live": entry.id, "history": [*state["history"], record]})
        return record

    def rollback(self, by: str, reason: str = "") -> dict[str, Any]:
        """Make the model that was live before the current one live again (recorded as a rollback)."""
        state = self.state()
        live = state["live"]
        before = [
            h
            for h in state["history"]
            if h.get("event") == "promote" and h.get("id") == live and h.get("previous")
        ]
        if not live or not before:
            raise RegistryError(f"{self.root}: no earlier live model to roll back to")
        previous = self.get(str(before[-1]["previous"]))
        return self.set_live(previous, {"event": "rollback", "by": by, "reason": reason, "forced": False})

    def save_comparison(self, entry: Entry, against: str, comparison: Mapping[str, Any], table: str) -> Path:
        """Write ``comparison-<against>.json`` and ``.md`` into the candidate's folder."""
        stem = f"comparison-{_UNSAFE.sub('_', against)}"
        atomic_write(entry.folder / f"{stem}.md", lambda tmp: tmp.write_text(table + "\n", encoding="utf-8"))
        return _write_json(entry.folder / f"{stem}.json", comparison)


def _card_beside(model: Path) -> Path | None:
    """``MODEL_CARD.md`` or ``<stem>.md`` next to an exported file, if there is one."""
    for card in (model.parent / CARD_FILE, model.with_suffix(".md")):
        if card.is_file():
            return card
    return None
