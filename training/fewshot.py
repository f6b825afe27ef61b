"""Add a camera model from a few photos: a nearest-class-mean (prototype) or linear head on backbone
features, its accuracy estimated by group-aware k-fold cross-validation.

The new class must already be in labels.yaml (the manifest is checked against it); the backbone is
``config.pretrained`` (ImageNet weights or an earlier camid checkpoint).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from data.labels import LabelSet, load_labels
from data.manifest import Manifest, Record, manifest_hash, read_manifest
from data.preprocess import ResizeRule
from model.checkpoint import save_checkpoint
from model.factory import CamidNet, create_model
from training.calibration import calibrate
from training.config import TrainConfig, save_config
from training.contract import create_contract
from training.dataset import check_labels, label_counts
from training.features import view_features
from training.head import train_head
from training.metrics import bootstrap_intervals, classification_metrics, with_intervals
from training.runinfo import seed_everything, trained_on, write_json

log = logging.getLogger(__name__)


def prototype_head(x: torch.Tensor, y: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest-class-mean as a linear layer: ``-||x - mu_c||^2 = 2 mu_c.x - ||mu_c||^2 + const``.

    Classes without photos get a bias of -1e4 (never predicted)."""
    dim = x.shape[1]
    weight, bias = torch.zeros(n_classes, dim), torch.full((n_classes,), -1e4)
    scale = 1.0 / max(1e-6, float(x.var(0).sum()))  # keeps logits O(1) for any feature scale
    for c in range(n_classes):
        sel = x[y == c]
        if len(sel):
            mu = sel.mean(0)
            weight[c], bias[c] = 2 * mu * scale, -(mu @ mu) * scale
    return weight, bias


def group_folds(records: list[Record], k: int, seed: int) -> np.ndarray:
    """Fold index per record; photos of one group share a fold; largest groups placed first."""
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault(r.group or r.path, []).append(i)
    names = list(groups)
    rng.shuffle(names)
    names.sort(key=lambda g: -len(groups[g]))
    sizes, fold = np.zeros(k, dtype=int), np.zeros(len(records), dtype=int)
    for g in names:
        f = int(sizes.argmin())
        fold[groups[g]] = f
        sizes[f] += len(groups[g])
    return fold


@dataclass
class FewshotFeatures:
    """Clean features of every photo and ``views`` augmented features of every photo."""

    clean: torch.Tensor  # [N, F]
    augmented: torch.Tensor  # [views, N, F]
    y: torch.Tensor  # [N]


def _fit(method: str, x: torch.Tensor, y: torch.Tensor, n: int, cfg: TrainConfig) -> tuple[torch.Tensor, ...]:
    if method == "prototype":
        return prototype_head(x, y, n)
    # no validation set inside a fold: train on the fold itself and keep the best epoch
    res = train_head(x, y, x, y, n, cfg, patience=cfg.epochs)
    return res.weight, res.bias


def cross_validate(
    feats: FewshotFeatures, records: list[Record], n_classes: int, cfg: TrainConfig, method: str
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Out-of-fold logits (every photo predicted by a head that never saw its group), fold index,
    and per-fold accuracy."""
    folds = group_folds(records, cfg.fewshot_folds, cfg.seed)
    oof = np.zeros((len(records), n_classes))
    accs = []
    for f in range(cfg.fewshot_folds):
        test, train = folds == f, folds != f
        if not test.any():
            continue
        views = feats.augmented[:, torch.from_numpy(train)]
        x = torch.cat([feats.clean[torch.from_numpy(train)], views.reshape(-1, views.shape[-1])])
        y = feats.y[torch.from_numpy(train)].repeat(1 + views.shape[0])
        w, b = _fit(method, x, y, n_classes, cfg)
        oof[test] = (feats.clean[torch.from_numpy(test)] @ w.T + b).numpy()
        accs.append(float((oof[test].argmax(1) == feats.y.numpy()[test]).mean()))
    return oof, folds, accs


def _features(
    model: CamidNet, manifest: Manifest, labels: LabelSet, rule: ResizeRule, cfg: TrainConfig
) -> FewshotFeatures:
    kw: dict[str, Any] = {"batch_size": cfg.batch_size, "device": torch.device("cpu"), "seed": cfg.seed}
    clean, y = view_features(model, manifest, manifest.records, labels, rule, views=1, augment=False, **kw)
    aug, _ = view_features(
        model,
        manifest,
        manifest.records,
        labels,
        rule,
        views=cfg.views_per_image,
        augment=True,
        desc="augmented",
        **kw,
    )
    return FewshotFeatures(clean, aug.reshape(cfg.views_per_image, len(y), -1), y)


def cv_report(
    oof: np.ndarray, y: np.ndarray, records: list[Record], labels: LabelSet, accs: list[float], n_boot: int
) -> dict[str, Any]:
    """Out-of-fold metrics with group-bootstrap 95 % intervals, and fold mean ± sd."""
    pred = oof.argmax(1)

    def metric(idx: np.ndarray) -> dict[str, float]:
        return classification_metrics(y[idx], pred[idx], labels.names)

    ci = bootstrap_intervals(metric, len(y), [r.group or r.path for r in records], n_boot)
    return {
        "out_of_fold": with_intervals(metric(np.arange(len(y))), ci),
        "fold_accuracy": accs,
        "fold_accuracy_mean": float(np.mean(accs)),
        "fold_accuracy_sd": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
        "note": "group-aware k-fold: photos of one group are never in training and test of the same fold",
    }


def train_fewshot(
    manifest_path: str | Path, out_dir: str | Path, cfg: TrainConfig, method: str = "prototype"
) -> dict[str, Any]:
    """Cross-validate, then fit the head on every photo and save ``checkpoint.pt`` + ``cv.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    labels = load_labels(Path(cfg.labels_path) if cfg.labels_path else None)
    manifest = read_manifest(manifest_path)
    check_labels(manifest, labels)
    rule = ResizeRule(size=cfg.image_size, mode=cfg.resize_mode)
    model = create_model(cfg.arch, len(labels), cfg.pretrained)
    feats = _features(model, manifest, labels, rule, cfg)
    oof, _, accs = cross_validate(feats, manifest.records, len(labels), cfg, method)
    report = cv_report(oof, feats.y.numpy(), manifest.records, labels, accs, cfg.bootstrap)
    cal = calibrate(
        oof, feats.y.numpy(), labels.names, labels.targets, cfg.flag_precision, cfg.max_target_rejected
    )
    x = torch.cat([feats.clean, feats.augmented.reshape(-1, feats.clean.shape[1])])
    w, b = _fit(method, x, feats.y.repeat(1 + cfg.views_per_image), len(labels), cfg)
    with torch.no_grad():
        model.classifier.weight.copy_(w)
        model.classifier.bias.copy_(b)
    provenance = trained_on(
        Path(manifest_path),
        manifest_hash(manifest),
        {"all": label_counts(manifest.records)},
        method=f"fewshot-{method}",
    )
    report.update(
        temperature=cal.temperature,
        thresholds=cal.thresholds,
        trained_on=provenance,
        ece_oof_after=cal.ece_after,
    )
    contract = create_contract(cfg, labels, rule, model, trained_on=provenance).with_updates(
        temperature=cal.temperature, thresholds=cal.thresholds, metrics={"cv": report["out_of_fold"]}
    )
    save_checkpoint(out / "checkpoint.pt", model, contract, config=cfg.to_dict())
    save_config(cfg, out / "config.yaml")
    write_json(out / "cv.json", report)
    log.info(
        "few-shot CV accuracy %.3f ± %.3f over %d folds",
        report["fold_accuracy_mean"],
        report["fold_accuracy_sd"],
        len(accs),
    )
    return report
