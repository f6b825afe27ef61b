"""Tests for data.stats: the counts tables."""

from __future__ import annotations

from pathlib import Path

from data.manifest import Manifest, Record
from data.stats import format_table, stats_text


def test_format_table_aligns_columns() -> None:
    text = format_table(["label", "n"], [["a", 5], ["longer", 123]])
    assert text.splitlines() == ["label     n", "------  ---", "a         5", "longer  123"]


def test_stats_per_label_form_factor_and_split() -> None:
    records = [
        Record("1.jpg", "huawei_ipc6625_z30", "a", split="train"),
        Record("2.jpg", "huawei_ipc6625_z30", "b", split="test"),
        Record("3.jpg", "other_camera", "c", split="train", extra={"form_factor": "box"}),
        Record("4.jpg", "other_camera", "d", split="val", extra={"form_factor": ""}),
        Record("5.jpg", "no_camera", "e"),
    ]
    label_table, form_table = stats_text(Manifest(Path("."), records)).split("\n\n")
    lines = label_table.splitlines()
    assert lines[0].split() == ["label", "train", "val", "test", "(none)", "total"]
    assert lines[2].split() == ["huawei_ipc6625_z30", "1", "0", "1", "0", "2"]
    assert lines[-1].split() == ["total", "2", "1", "1", "1", "5"]
    forms = {line.split()[0]: line.split()[1:] for line in form_table.splitlines()[2:]}
    assert forms["ptz"] == ["1", "0", "1", "0", "2"]  # from labels.yaml
    assert forms["box"] == ["1", "0", "0", "0", "1"]  # from the form_factor column
    assert forms["dome"] == ["0", "1", "0", "0", "1"]  # other_camera in labels.yaml
    assert forms["none"][-1] == "1"
