"""End to end: a tiny model trained, resumed, trained with DDP on 2 CPU processes."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch
import yaml

from model.checkpoint import load_checkpoint, read_checkpoint
from tests.training.tinydata import TINY_OVERRIDES
from training.config import resolve_config
from training.train import LAST, train


def test_fast_run_writes_everything(tiny_run) -> None:  # type: ignore[no-untyped-def]
    d = tiny_run.run_dir
    for name in (
        "config.yaml",
        "run.json",
        "train.log",
        "curves.png",
        "augmentations.png",
        "checkpoint.pt",
        "metrics.json",
        "eval_test/metrics.json",
        "eval_test/report.html",
    ):
        assert (d / name).is_file(), name
    assert list((d / "cache").glob("train-*.pt")) and list((d / "cache").glob("val-*.pt"))
    run = json.loads((d / "run.json").read_text())
    assert run["trained_on"]["manifest_hash"] and run["trained_on"]["split_source"] == "manifest"
    assert yaml.safe_load((d / "config.yaml").read_text())["arch"] == TINY_OVERRIDES["arch"]
    model, meta = load_checkpoint(d / "checkpoint.pt")
    assert meta.contract.temperature == pytest.approx(tiny_run.calibration.temperature)
    assert set(meta.contract.thresholds) == {"flag", "reject"}
    assert meta.contract.trained_on["counts"]["train"]
    assert "finetune_tail" in json.loads((d / "metrics.json").read_text())["histories"]
    assert tiny_run.val_metrics["macro_f1"] > 0.4  # colours and shapes are easy


def test_resume_continues_at_saved_epoch(tiny_manifest: Path, tmp_path: Path) -> None:
    over = {**TINY_OVERRIDES, "mode": "finetune", "views_per_image": 1}
    first = train(tiny_manifest, tmp_path, resolve_config(None, **{**over, "epochs": 1}))
    state1 = read_checkpoint(tmp_path / LAST)["extra"]["fit_state"]
    assert state1["epoch"] == 1
    train(tiny_manifest, tmp_path, resolve_config(None, **{**over, "epochs": 2}), resume=True)
    state2 = read_checkpoint(tmp_path / LAST)["extra"]["fit_state"]
    assert state2["epoch"] == 2
    assert first.val_metrics and state2["history"][0] == state1["history"][0]
    steps = [s["step"] for s in state2["optimizer"]["state"].values()]
    assert float(steps[0]) == 2 * float(next(iter(state1["optimizer"]["state"].values()))["step"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_ddp_two_processes_gloo_identical_weights(tiny_manifest: Path, tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    from tests.training.ddp_worker import run_rank

    over = {**TINY_OVERRIDES, "mode": "finetune", "epochs": 2, "bootstrap": 20}
    mp.spawn(run_rank, args=(2, _free_port(), str(tiny_manifest), str(tmp_path), over), nprocs=2, join=True)
    w0 = torch.load(tmp_path / "weights-rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "weights-rank1.pt", weights_only=True)
    assert w0.keys() == w1.keys()
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
    assert json.loads((tmp_path / "run" / "run.json").read_text())["world_size"] == 2
