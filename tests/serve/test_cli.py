"""The `camid` dispatcher: help, unknown commands, and what a serving-only install says."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from serve import cli
from tests.conftest import make_photo


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("data", "train", "evaluate", "export", "predict", "serve", "moderators"):
        assert f"  {name} " in out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["trian"]) == 2
    assert "unknown command 'trian'" in capsys.readouterr().err
    assert cli.main([]) == 2


def test_training_command_without_torch_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def without_torch(name: str, *args: Any) -> Any:
        return None if name == "torch" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_torch)
    with pytest.raises(SystemExit, match=r"pip install -e '\.\[train\]'.*missing: torch"):
        cli.main(["train", "--data", "x.csv", "--out", "run"])


def test_commands_are_forwarded_with_their_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_photo(tmp_path / "no_camera" / "a.jpg")
    assert cli.main(["data", "validate", str(tmp_path)]) == 0
    assert "OK" in capsys.readouterr().out
    (tmp_path / "no_camera" / "b.jpg").write_bytes(b"not a photo")
    assert cli.main(["data", "validate", str(tmp_path)]) == 1
