"""The model registry on disk: what it refuses, and a broken live model never replaces a working one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serve.app import create_app
from serve.lifecycle import cli as model_cli
from serve.lifecycle.registry import ModelRegistry, RegistryError
from tests.serve.apptools import settings_for
from tests.serve.lifecycle_fixtures import Variants, variant, variants

__all__ = ["variants"]  # the fixture, imported for pytest


def test_the_same_file_twice_is_one_entry_and_another_file_with_its_version_is_refused(
    variants: Variants, tiny_model: Any, tmp_path: Path
) -> None:
    registry = ModelRegistry(tmp_path / "models")
    card = tmp_path / "card.md"
    card.write_text("# card\n", encoding="utf-8")
    entry = registry.add(variants.good, card=card)
    assert registry.add(variants.good) == entry and [e.id for e in registry.entries()] == [entry.id]
    assert entry.card_path is not None and entry.card_path.read_text(encoding="utf-8") == "# card\n"
    assert entry.contract["version"] == "1.0.0" and entry.contract["name"] == "camid-tiny"
    impostor = variant(
        tiny_model.onnx, tmp_path / "other.onnx", version="1.0.0", order=(0, 1, 2, 3), scale=50.0
    )
    with pytest.raises(RegistryError, match="already registered with a different file.*--version"):
        registry.add(impostor)
    not_a_model = tmp_path / "notes.onnx"
    not_a_model.write_bytes(b"not onnx")
    with pytest.raises(RegistryError, match="not a loadable ONNX model"):
        registry.add(not_a_model)
    with pytest.raises(RegistryError, match="no earlier live model"):
        registry.rollback("test")


def test_a_missing_card_is_named_and_leaves_the_registry_as_it_was(
    variants: Variants, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models"
    card = tmp_path / "no-such-card.md"
    assert model_cli.main(["--models-dir", str(models), "add", str(variants.good), "--card", str(card)]) == 2
    assert f"{card}: no such model card" in capsys.readouterr().err
    assert model_cli.main(["--models-dir", str(models), "list"]) == 0
    assert "no models in" in capsys.readouterr().out
    assert model_cli.main(["--models-dir", str(models), "add", str(variants.good)]) == 0
    assert [e.version for e in ModelRegistry(models).entries()] == ["1.0.0"]


def test_an_add_cut_off_halfway_does_not_break_the_registry(variants: Variants, tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    registry.add(variants.good)
    staging = registry.root / ".camid-tiny-0.9.0.adding"  # killed while copying: no contract yet
    staging.mkdir()
    shutil.copy(variants.worse, staging / "model.onnx")
    assert [e.version for e in registry.entries()] == ["1.0.0"]
    assert registry.add(variants.worse).version == "0.9.0"


def test_commands_name_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert model_cli.main(["--models-dir", str(tmp_path / "models"), "list"]) == 0
    assert "no models in" in capsys.readouterr().out
    assert model_cli.main(["--models-dir", str(tmp_path / "models"), "show"]) == 2
    assert "no live model yet" in capsys.readouterr().err
    assert model_cli.main(["--models-dir", str(tmp_path / "models"), "rollback"]) == 2
    assert "no earlier live model" in capsys.readouterr().err
    missing = tmp_path / "runs" / "model.onnx"
    gate = ["--skip-verified", "--benchmark", str(tmp_path / "manifest.csv")]
    assert model_cli.main(["--models-dir", str(tmp_path / "models"), "promote", str(missing), *gate]) == 2
    assert f"{missing}: no such file" in capsys.readouterr().err


def test_a_live_model_that_does_not_load_leaves_the_served_one_in_place(
    variants: Variants, tmp_path: Path
) -> None:
    registry = ModelRegistry(tmp_path / "models")
    registry.set_live(registry.add(variants.worse), {"by": "test"})
    settings = settings_for(variants.good, tmp_path / "var", models_dir=registry.root, model_watch_s=0)
    with TestClient(create_app(settings)) as client:
        token = client.app.state.store.add_moderator("ana")  # type: ignore[attr-defined]
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/v1/model").json()["version"] == "0.9.0"  # the registry's, not model_path
        broken = registry.add(variants.good)
        (broken.folder / "model.onnx").write_bytes(b"truncated")
        registry.set_live(broken, {"by": "test"})
        answer = client.post("/v1/admin/model/reload", headers=headers)
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "model_unusable"
        assert "still serving the previous model" in answer.json()["error"]["message"]
        assert client.get("/v1/model").json()["version"] == "0.9.0"
        assert client.get("/readyz").json()["model"]["version"] == "0.9.0"
        shutil.copy(variants.good, broken.folder / "model.onnx")  # fixed: the next reload takes it
        assert client.post("/v1/admin/model/reload", headers=headers).json()["changed"] is True
        assert client.get("/v1/model").json()["version"] == "1.0.0"
    history = json.loads((registry.root / "registry.json").read_text(encoding="utf-8"))["history"]
    assert [h["id"] for h in history] == ["camid-tiny-0.9.0", "camid-tiny-1.0.0"]
