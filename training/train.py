"""``train``: one run from a manifest to a calibrated checkpoint, its curves, logs and metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Sampler, WeightedRandomSampler

from data.decision import softmax
from data.labels import LabelSet, load_labels
from data.manifest import Manifest, manifest_hash, read_manifest, write_manifest
from data.preprocess import ResizeRule, decode_hint
from model.checkpoint import read_checkpoint, save_checkpoint
from model.ensemble import CamidEnsemble
from model.factory import CamidNet, create_model
from training.calibration import Calibration, calibrate
from training.config import TrainConfig, save_config
from training.contract import create_contract
from training.dataset import CameraDataset, Splits, check_labels, class_weights, label_counts, resolve_splits
from training.distill import distill_step, load_teachers
from training.distributed import DistInfo, barrier, device_for, init_distributed
from training.features import cached, feature_key, view_features
from training.head import train_head
from training.loop import FitConfig, FitState, LossStep, fit, fit_config, predict_logits
from training.metrics import classification_metrics
from training.plots import plot_curves, plot_image_grid
from training.runinfo import add_log_file, remove_log_file, seed_everything, trained_on, write_json
from training.transforms import build_eval_transform, build_train_transform

log = logging.getLogger(__name__)

LAST = "last.pt"
CHECKPOINT = "checkpoint.pt"


@dataclass
class RunContext:
    """What every stage of a run needs."""

    config: TrainConfig
    labels: LabelSet
    manifest: Manifest
    splits: Splits
    rule: ResizeRule
    run_dir: Path
    device: torch.device
    dist: DistInfo
    mhash: str
    resume: bool = False
    histories: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainResult:
    """A finished run."""

    run_dir: Path
    checkpoint: Path
    model: CamidNet | CamidEnsemble
    calibration: Calibration | None
    val_metrics: dict[str, float]
    test_metrics: dict[str, Any] | None
    seconds: dict[str, float]


def _dataset(ctx: RunContext, split: str, augment: bool, seed: int = 0) -> CameraDataset:
    records = getattr(ctx.splits, split)
    if augment:
        transform, min_side = build_train_transform(ctx.rule, seed=seed), 2 * decode_hint(ctx.rule)
    else:
        transform, min_side = build_eval_transform(ctx.rule), decode_hint(ctx.rule)
    return CameraDataset(ctx.manifest, records, ctx.labels, transform, min_side)


def _train_loader(ctx: RunContext) -> DataLoader[Any]:
    cfg = ctx.config
    ds = _dataset(ctx, "train", cfg.augment, seed=cfg.seed * 7919 + ctx.dist.rank)
    sampler: Sampler[int] | None = None
    if ctx.dist.enabled:
        if cfg.class_balance == "sampler":
            log.warning("class_balance=sampler is not available with DDP: using the weighted loss")
        sampler = DistributedSampler(ds, ctx.dist.world_size, ctx.dist.rank, shuffle=True, seed=cfg.seed)
    elif cfg.class_balance == "sampler":
        w = class_weights(ds.targets, len(ctx.labels))[torch.as_tensor(ds.targets)]
        sampler = WeightedRandomSampler(
            w.double().tolist(), len(ds), generator=torch.Generator().manual_seed(cfg.seed)
        )
    gen = torch.Generator().manual_seed(cfg.seed)
    return DataLoader(
        ds,
        batch_size=cfg.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        num_workers=cfg.num_workers,
        drop_last=len(ds) > cfg.batch_size,
        generator=gen,
    )


def _val_loader(ctx: RunContext, split: str = "val") -> DataLoader[Any]:
    ds = _dataset(ctx, split, augment=False)
    return DataLoader(ds, batch_size=ctx.config.batch_size, shuffle=False, num_workers=ctx.config.num_workers)


def _loss_weight(ctx: RunContext) -> torch.Tensor | None:
    if ctx.config.class_balance == "none" or (ctx.config.class_balance == "sampler" and not ctx.dist.enabled):
        return None
    return class_weights([ctx.labels.index(r.label) for r in ctx.splits.train], len(ctx.labels))


def tail_modules(model: CamidNet, n_blocks: int) -> list[nn.Module]:
    """The last ``n_blocks`` stages of the backbone plus everything after them (timm EfficientNet:
    ``blocks[-n:]``, ``conv_head``, ``bn2``; ResNet: ``layer4``/``layer3``)."""
    bb = model.backbone
    if hasattr(bb, "blocks"):
        mods: list[nn.Module] = list(cast("Iterable[nn.Module]", bb.blocks))[-n_blocks:]
        mods += [m for name in ("conv_head", "bn2") if isinstance(m := getattr(bb, name, None), nn.Module)]
    elif hasattr(bb, "layer4"):
        mods = [getattr(bb, f"layer{i}") for i in range(5 - n_blocks, 5)]
    else:
        raise ValueError(f"finetune_blocks is not supported for {type(bb).__name__}; use finetune_blocks: 0")
    return mods


def _freeze_all_but(model: CamidNet, modules: list[nn.Module]) -> list[nn.Module]:
    for p in model.parameters():
        p.requires_grad_(False)
    train = [*modules, model.classifier, model.dropout]
    for m in train:
        for p in m.parameters():
            p.requires_grad_(True)
    return train


def _save_last(ctx: RunContext, stage: str) -> Any:
    def hook(state: FitState, model: nn.Module) -> None:
        if not ctx.dist.is_main:
            return
        net = _unwrap(model)
        save_checkpoint(
            ctx.run_dir / LAST,
            net,
            create_contract(ctx.config, ctx.labels, ctx.rule, net),
            config=ctx.config.to_dict(),
            extra={"stage": stage, "fit_state": state.to_dict()},
        )

    return hook


def _unwrap(model: nn.Module) -> CamidNet:
    assert isinstance(model, CamidNet)
    return model


def _resume_state(ctx: RunContext, stage: str, model: CamidNet) -> FitState | None:
    path = ctx.run_dir / LAST
    if not ctx.resume or not path.is_file():
        if ctx.resume:
            log.warning("--resume: no %s in %s, starting %s from scratch", LAST, ctx.run_dir, stage)
        return None
    obj = read_checkpoint(path)
    if obj["extra"].get("stage") != stage:
        return None
    model.load_state_dict(obj["state_dict"])
    state = FitState.from_dict(obj["extra"]["fit_state"])
    log.info("resuming %s at epoch %d from %s", stage, state.epoch, path)
    return state


def _fit_stage(
    ctx: RunContext,
    model: CamidNet,
    stage: str,
    cfg: FitConfig,
    train_modules: Any,
    initial: FitState | None = None,
    loss_step: LossStep | None = None,
) -> None:
    start = time.perf_counter()
    state = _resume_state(ctx, stage, model) or initial
    model.to(ctx.device)
    state = fit(
        model,
        _train_loader(ctx),
        _val_loader(ctx),
        cfg,
        device=ctx.device,
        dist_info=ctx.dist,
        class_weight=_loss_weight(ctx),
        train_modules=train_modules,
        state=state,
        on_epoch_end=_save_last(ctx, stage),
        desc=stage,
        loss_step=loss_step,
    )
    ctx.histories[stage] = state.history
    ctx.seconds[stage] = time.perf_counter() - start


def _features(ctx: RunContext, model: CamidNet) -> tuple[torch.Tensor, ...]:
    cfg = ctx.config
    common = {
        "manifest": ctx.mhash,
        "arch": cfg.arch,
        "pretrained": cfg.pretrained,
        "rule": ctx.rule.to_json(),
    }
    key_train = feature_key(
        {**common, "views": cfg.views_per_image, "augment": cfg.augment, "seed": cfg.seed}
    )
    key_val = feature_key({**common, "split": "val"})
    cache = ctx.run_dir / "cache"
    model.to(ctx.device)
    xt, yt = cached(
        cache / f"train-{key_train}.pt",
        lambda: view_features(
            model,
            ctx.manifest,
            ctx.splits.train,
            ctx.labels,
            ctx.rule,
            views=cfg.views_per_image,
            augment=cfg.augment,
            seed=cfg.seed,
            desc="train features",
            batch_size=cfg.batch_size,
            device=ctx.device,
            num_workers=cfg.num_workers,
        ),
    )
    xv, yv = cached(
        cache / f"val-{key_val}.pt",
        lambda: view_features(
            model,
            ctx.manifest,
            ctx.splits.val,
            ctx.labels,
            ctx.rule,
            views=1,
            augment=False,
            seed=cfg.seed,
            desc="val features",
            batch_size=cfg.batch_size,
            device=ctx.device,
            num_workers=cfg.num_workers,
        ),
    )
    return xt, yt, xv, yv


def run_fast(ctx: RunContext, model: CamidNet) -> None:
    """Cached features -> linear head -> optional fine-tuning of the last blocks."""
    cfg = ctx.config
    start = time.perf_counter()
    xt, yt, xv, yv = _features(ctx, model)
    ctx.seconds["features"] = time.perf_counter() - start
    start = time.perf_counter()
    head = train_head(xt, yt, xv, yv, len(ctx.labels), cfg, dropout=float(model.dropout.p))
    with torch.no_grad():
        model.classifier.weight.copy_(head.weight)
        model.classifier.bias.copy_(head.bias)
    ctx.histories["head"] = head.history
    ctx.seconds["head"] = time.perf_counter() - start
    if cfg.finetune_blocks > 0 and cfg.finetune_epochs > 0:
        train_modules = _freeze_all_but(model, tail_modules(model, cfg.finetune_blocks))
        fcfg = fit_config(cfg, epochs=cfg.finetune_epochs, lr=cfg.finetune_lr, warmup_epochs=0)
        # the head alone is the score to beat: fine-tuning keeps it if no epoch does better
        start_state = FitState(
            best_score=head.best_score,
            best_state={k: v.detach().clone() for k, v in model.state_dict().items()},
        )
        _fit_stage(ctx, model, "finetune_tail", fcfg, train_modules, start_state)
        for p in model.parameters():
            p.requires_grad_(True)


def run_finetune(ctx: RunContext, model: CamidNet) -> None:
    """Full fine-tuning of every layer (AMP, EMA, DDP, resume); with ``distill_from``, against the
    teachers' mean probabilities as well as the labels (training/distill.py)."""
    cfg = ctx.config
    step = None
    if cfg.distill_from:
        teacher = load_teachers(cfg.distill_from, ctx.labels, ctx.rule)
        step = distill_step(teacher, cfg.distill_weight, _loss_weight(ctx), cfg.label_smoothing)
    _fit_stage(ctx, model, "finetune", fit_config(cfg), None, loss_step=step)


def _save_augmentation_grid(ctx: RunContext, n: int = 6, views: int = 3) -> None:
    clean = _dataset(ctx, "train", augment=False)
    aug = _dataset(ctx, "train", augment=True, seed=ctx.config.seed)
    images, titles = [], []
    by_label: dict[str, list[int]] = {}
    for i, r in enumerate(clean.records):
        by_label.setdefault(r.label, []).append(i)
    spread = [i for k in range(len(clean)) for ids in by_label.values() if k < len(ids) for i in [ids[k]]]
    for i in spread[:n]:
        images.append(clean[i][0].numpy())
        titles.append(f"{clean.records[i].label} (clean)")
        for v in range(views):
            images.append(aug[i][0].numpy())
            titles.append(f"augmented {v + 1}")
    plot_image_grid(images, titles, ctx.run_dir / "augmentations.png", cols=views + 1)


def run_context(manifest_path: Path, run_dir: Path, config: TrainConfig, resume: bool) -> RunContext:
    info = init_distributed()
    labels = load_labels(Path(config.labels_path) if config.labels_path else None)
    manifest = read_manifest(manifest_path)
    check_labels(manifest, labels)
    splits = resolve_splits(manifest, config.val_fraction, config.test_fraction, config.seed)
    rule = ResizeRule(size=config.image_size, mode=config.resize_mode)
    return RunContext(
        config,
        labels,
        manifest,
        splits,
        rule,
        run_dir,
        device_for(info),
        info,
        manifest_hash(manifest),
        resume,
    )


def provenance(ctx: RunContext, manifest_path: Path) -> dict[str, Any]:
    counts = {s: label_counts(getattr(ctx.splits, s)) for s in ("train", "val", "test")}
    return trained_on(manifest_path, ctx.mhash, counts, split_source=ctx.splits.source)


def _validation_outputs(ctx: RunContext, model: CamidNet | CamidEnsemble) -> tuple[np.ndarray, np.ndarray]:
    model.to(ctx.device)
    return predict_logits(model, _val_loader(ctx), ctx.device)


def finish(ctx: RunContext, model: CamidNet | CamidEnsemble, manifest_path: Path) -> TrainResult:
    """Calibrate on validation, save the checkpoint, evaluate on test (rank 0 only)."""
    cfg = ctx.config
    logits, y = _validation_outputs(ctx, model)
    cal = calibrate(
        logits, y, ctx.labels.names, ctx.labels.targets, cfg.flag_precision, cfg.max_target_rejected
    )
    val = classification_metrics(y, softmax(logits, cal.temperature).argmax(1), ctx.labels.names)
    log.info(
        "validation: macro-F1 %.4f, accuracy %.4f, T=%.3f, thresholds %s",
        val["macro_f1"],
        val["accuracy"],
        cal.temperature,
        cal.thresholds,
    )
    metrics: dict[str, Any] = {"val": val, "ece_val_before": cal.ece_before, "ece_val_after": cal.ece_after}
    ckpt = ctx.run_dir / CHECKPOINT
    contract = create_contract(
        cfg, ctx.labels, ctx.rule, model, trained_on=provenance(ctx, manifest_path)
    ).with_updates(temperature=cal.temperature, thresholds=cal.thresholds, metrics=metrics)
    save_checkpoint(ckpt, model.cpu(), contract, config=cfg.to_dict())
    test = None
    if ctx.splits.test:
        from training.evaluate import evaluate

        ev = evaluate(
            ckpt,
            manifest_path,
            ctx.run_dir / "eval_test",
            split="test",
            n_boot=cfg.bootstrap,
        )
        test = ev.metrics
        metrics["test"] = {k: v["value"] for k, v in ev.metrics["metrics"].items()}
        save_checkpoint(ckpt, model, contract.with_updates(metrics=dict(metrics)), config=cfg.to_dict())
    return TrainResult(ctx.run_dir, ckpt, model, cal, val, test, ctx.seconds)


def write_metrics(result: TrainResult, seconds: dict[str, float], **extra: Any) -> Path:
    """``RUN/metrics.json``: validation figures, calibration, seconds, ``extra`` and test figures."""
    calibration = result.calibration
    assert calibration is not None  # rank 0's result comes from finish, which calibrates
    doc = {
        "val": result.val_metrics,
        "temperature": calibration.temperature,
        "thresholds": calibration.thresholds,
        "seconds": seconds,
        **extra,
        "test": result.test_metrics,
    }
    return write_json(result.run_dir / "metrics.json", doc)


def start_run(ctx: RunContext, manifest_path: Path) -> tuple[Path, logging.Handler | None]:
    """Create the run folder (rank 0): log file, split, config and provenance; returns the
    manifest evaluation reads (the split made here when the manifest had none) and the log handler."""
    if not ctx.dist.is_main:
        return manifest_path, None
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    handler = add_log_file(ctx.run_dir / "train.log")
    if ctx.splits.source != "manifest":  # evaluate on the split made here, not on every photo
        manifest_path = write_split(ctx, ctx.run_dir / "split.csv")
    save_config(ctx.config, ctx.run_dir / "config.yaml")
    write_json(
        ctx.run_dir / "run.json",
        {
            "trained_on": provenance(ctx, manifest_path),
            "world_size": ctx.dist.world_size,
            "device": str(ctx.device),
        },
    )
    log.info("split from %s: %s", ctx.splits.source, ctx.splits.counts())
    return manifest_path, handler


def write_split(ctx: RunContext, csv_path: Path) -> Path:
    """Save the split made for this run (manifest without a split column) next to the run."""
    records = [*ctx.splits.train, *ctx.splits.val, *ctx.splits.test]
    path = write_manifest(Manifest(ctx.manifest.root, records), csv_path)
    log.info("wrote the split used by this run to %s (evaluation reads it)", path)
    return path


def train(
    manifest_path: str | Path, out_dir: str | Path, config: TrainConfig, *, resume: bool = False
) -> TrainResult:
    """Train, calibrate and evaluate one run; everything it makes goes into ``out_dir``.

    Under ``torchrun`` every rank trains (DDP) and only rank 0 writes files. With ``members`` > 1
    the run is an ensemble of that many seeds (:func:`training.ensemble.train_ensemble`).
    """
    if config.members > 1:
        from training.ensemble import train_ensemble

        return train_ensemble(manifest_path, out_dir, config, resume=resume)
    manifest_path, run_dir = Path(manifest_path), Path(out_dir)
    seed_everything(config.seed)
    ctx = run_context(manifest_path, run_dir, config, resume)
    manifest_path, handler = start_run(ctx, manifest_path)
    if ctx.dist.is_main and config.augment:
        _save_augmentation_grid(ctx)
    barrier(ctx.dist)
    try:
        start = time.perf_counter()
        model = create_model(config.arch, len(ctx.labels), config.pretrained)
        (run_fast if config.mode == "fast" else run_finetune)(ctx, model)
        ctx.seconds["train_total"] = time.perf_counter() - start
        result = finish(ctx, model, manifest_path) if ctx.dist.is_main else None
        barrier(ctx.dist)
        if result is None:  # other DDP ranks: the weights are in ``model``, files are rank 0's
            return TrainResult(run_dir, run_dir / CHECKPOINT, model, None, {}, None, ctx.seconds)
        plot_curves(ctx.histories, run_dir / "curves.png")
        write_metrics(result, ctx.seconds, histories=ctx.histories)
        return result
    finally:
        if handler is not None:
            remove_log_file(handler)
