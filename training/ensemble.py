"""``camid train --members K``: K runs that differ only in the training seed, as one model.

On 7 real camera photos one fine-tuned model finds 4 to 6 depending on its seed alone; the mean
of three seeds' probabilities found 6 and kept more real negatives than any one of them
(docs/synthetic.md). Every member trains on the same split (a manifest without a split column is
split once, here), so the ensemble's validation and test photos are unseen by all of them. The
ensemble is then calibrated (temperature, thresholds) on validation and evaluated on test like any
run, and exports to one ONNX file (``camid export``).

Layout: ``RUN/members/seed-N/`` (ordinary runs), ``RUN/checkpoint.pt`` (the ensemble),
``RUN/metrics.json`` (the ensemble's figures and each member's validation score).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path

from model.checkpoint import load_checkpoint
from model.ensemble import CamidEnsemble
from model.factory import CamidNet
from training.config import TrainConfig
from training.runinfo import remove_log_file, seed_everything
from training.train import CHECKPOINT, LAST, TrainResult, finish, run_context, start_run, train, write_metrics

log = logging.getLogger(__name__)


def _train_seconds(run_dir: Path) -> float:
    """A finished member's own training time (kept members included)."""
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    return float(metrics.get("seconds", {}).get("train_total", 0.0))


def member_dir(run_dir: Path, seed: int) -> Path:
    return run_dir / "members" / f"seed-{seed}"


def train_ensemble(
    manifest_path: str | Path, out_dir: str | Path, config: TrainConfig, *, resume: bool = False
) -> TrainResult:
    """Train ``config.members`` seeds (``config.seed``, +1, ...) and combine them; with ``resume``
    finished members are kept and an interrupted one continues from its ``last.pt``."""
    run_dir = Path(out_dir)
    seed_everything(config.seed)
    ctx = run_context(Path(manifest_path), run_dir, config, resume)
    if ctx.dist.enabled:
        raise ValueError("members > 1 trains its seeds one after another; run it without torchrun")
    shared, handler = start_run(ctx, Path(manifest_path))  # the split every member trains on
    try:
        start = time.perf_counter()
        checkpoints = []
        for i in range(config.members):
            seed = config.seed + i
            d = member_dir(run_dir, seed)
            if resume and (d / "metrics.json").is_file():
                log.info("member %d/%d (seed %d): finished, kept (%s)", i + 1, config.members, seed, d)
            else:
                log.info("member %d/%d (seed %d) -> %s", i + 1, config.members, seed, d)
                member = replace(config, members=1, seed=seed)
                train(shared, d, member, resume=resume and (d / LAST).is_file())
            checkpoints.append(d / CHECKPOINT)
        members = []
        for path in checkpoints:
            model, meta = load_checkpoint(path)
            if not isinstance(model, CamidNet) or meta.contract.labels != ctx.labels:
                raise ValueError(f"{path}: not a classifier of this run's classes; delete it and rerun")
            members.append(model)
        ensemble = CamidEnsemble(members)
        ctx.seconds["train_total"] = time.perf_counter() - start
        ctx.seconds["members_train_total"] = sum(_train_seconds(p.parent) for p in checkpoints)
        result = finish(ctx, ensemble, shared)
        write_metrics(result, ctx.seconds, members=[str(p) for p in checkpoints])
        log.info("ensemble of %d: validation macro-F1 %.4f", len(members), result.val_metrics["macro_f1"])
        return result
    finally:
        if handler is not None:
            remove_log_file(handler)
