"""Add a camera model from a few photos: a nearest-class-mean (prototype) or linear head on backbone
features, its accuracy estimated by group-aware k-fold cross-validation.

In a citizen's photo the camera spans 1-5 % of the width, so features of the whole photo are mostly
the scene. A record with boxes (``data.boxes``) therefore gives one sample per box: the square crop
around it cut by ``data.crops`` (the geometry the look-then-zoom stage cuts at serving time) at the
model input size; training folds add jittered crops. Records without boxes fall back to the whole
photo. Samples of one photo (and one group) always share a fold.

The new class must already be in labels.yaml (the manifest is checked against it); the backbone is
``config.pretrained`` (ImageNet weights or an earlier camid checkpoint).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from data.boxes import SIZE_BUCKETS, LabeledBox, box_problems, record_boxes, size_bucket
from data.crops import crop_square, cut_crop
from data.images import load_image, probe_image
from data.labels import LabelSet, load_labels
from data.manifest import Manifest, Record, manifest_hash, read_manifest
from data.preprocess import ResizeRule
from data.zoom import ZoomSettings, crop_inputs
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

WHOLE_PHOTO = "whole photo"  # the size-bucket row of samples that are whole photos
# jitter of the training crops, in crop sides (scale is drawn log-uniformly)
CROP_SCALE = (0.8, 1.25)
CROP_SHIFT = 0.12


@dataclass(frozen=True)
class Sample:
    """One few-shot example: the crop around ``box`` of ``record``'s photo, or the whole photo."""

    record: Record
    label: str
    box: LabeledBox | None = None
    bucket: str = WHOLE_PHOTO  # size bucket of the box in its photo

    @property
    def group(self) -> str:
        return self.record.group or self.record.path


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


def group_folds(records: Sequence[Record], k: int, seed: int) -> np.ndarray:
    """Fold index per record (or per sample: pass each sample's record); rows of one group share a
    fold; largest groups placed first."""
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
    """Clean features of every sample and ``views`` augmented features of every sample."""

    clean: torch.Tensor  # [N, F]
    augmented: torch.Tensor  # [views, N, F]
    y: torch.Tensor  # [N]
    samples: list[Sample]

    def source_counts(self) -> dict[str, int]:
        """Samples cut from boxes and samples that are whole photos."""
        whole = sum(1 for s in self.samples if s.box is None)
        return {"boxes": len(self.samples) - whole, "whole_photo": whole}


def _fit(method: str, x: torch.Tensor, y: torch.Tensor, n: int, cfg: TrainConfig) -> tuple[torch.Tensor, ...]:
    if method == "prototype":
        return prototype_head(x, y, n)
    # no validation set inside a fold: train on the fold itself and keep the best epoch
    res = train_head(x, y, x, y, n, cfg, patience=cfg.epochs)
    return res.weight, res.bias


def cross_validate(
    feats: FewshotFeatures, n_classes: int, cfg: TrainConfig, method: str
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Out-of-fold logits (every sample predicted by a head that never saw its group), fold index,
    and per-fold accuracy. Augmented views are used in the training folds only."""
    folds = group_folds([s.record for s in feats.samples], cfg.fewshot_folds, cfg.seed)
    oof = np.zeros((len(feats.samples), n_classes))
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


def check_record_boxes(
    record: Record, boxes: Sequence[LabeledBox], size: tuple[int, int], labels: LabelSet
) -> None:
    """Raise ValueError naming the photo when its boxes do not fit it (unknown label, outside it)."""
    problems = box_problems(boxes, record.label, size[0], size[1], labels)
    if problems:
        raise ValueError(
            f"{record.path}: {'; '.join(problems)}; boxes are x0 y0 x1 y1 in pixels of the upright "
            "photo: fix the row's boxes column or clear it to train on the whole photo"
        )


def box_crops(
    image: Image.Image,
    boxes: Sequence[LabeledBox],
    photo_size: tuple[int, int],
    size: int,
    views: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """uint8 ``[boxes, 1 + views, 3, size, size]``: the crop around each box exactly as the zoom
    stage cuts it at serving time (:func:`data.zoom.crop_inputs`), then ``views`` crops jittered
    in scale and position (``data.crops.crop_square``'s ``scale`` and ``shift``).

    ``image`` is the photo decoded as the server decodes it (possibly smaller than ``photo_size``,
    the upright photo size the boxes are in)."""
    settings, (w, h) = ZoomSettings(), photo_size
    out = np.zeros((len(boxes), 1 + views, 3, size, size), dtype=np.uint8)
    out[:, 0] = crop_inputs(image, [b.box for b in boxes], photo_size, settings, size)
    for i, b in enumerate(boxes):
        for v in range(1, 1 + views):
            scale = float(np.exp(rng.uniform(*np.log(CROP_SCALE))))
            dx, dy = (float(d) for d in rng.uniform(-CROP_SHIFT, CROP_SHIFT, 2))
            square = crop_square(
                b.box, w, h, context=settings.context, min_px=settings.min_px, scale=scale, shift=(dx, dy)
            )
            crop = cut_crop(image, square, size, image.width / w)
            out[i, v] = np.asarray(crop, dtype=np.uint8).transpose(2, 0, 1)
    return out


def _record_crops(
    manifest: Manifest, records: Sequence[Record], labels: LabelSet, size: int, cfg: TrainConfig
) -> tuple[list[Sample], dict[int, np.ndarray]]:
    """Samples in record order (one per box; one whole-photo sample for a record without boxes) and
    the crops ``[1 + views, 3, S, S]`` of every box sample, by sample index."""
    samples: list[Sample] = []
    crops: dict[int, np.ndarray] = {}
    for ri, record in enumerate(records):
        boxes = record_boxes(record)
        if not boxes:
            samples.append(Sample(record, record.label))
            continue
        path = manifest.resolve(record)
        info = probe_image(path)
        check_record_boxes(record, boxes, (info.width, info.height), labels)
        image = load_image(path, min_side=ZoomSettings().decode_side)  # as the server decodes it
        rng = np.random.default_rng([cfg.seed, ri])
        cut = box_crops(image, boxes, (info.width, info.height), size, cfg.views_per_image, rng)
        for b, c in zip(boxes, cut, strict=True):
            crops[len(samples)] = c
            samples.append(Sample(record, b.label, b, size_bucket(b.width, info.width)))
    return samples, crops


@torch.inference_mode()
def _embed(model: nn.Module, arrays: np.ndarray, batch_size: int) -> torch.Tensor:
    """``model.pooled`` features ``[N, F]`` of uint8 inputs ``[N, 3, S, S]``."""
    model.eval()
    out = [
        model.pooled(torch.from_numpy(arrays[i : i + batch_size])).float()  # type: ignore[operator]
        for i in range(0, len(arrays), batch_size)
    ]
    return torch.cat(out)


def _whole_features(
    model: CamidNet,
    manifest: Manifest,
    records: list[Record],
    labels: LabelSet,
    rule: ResizeRule,
    cfg: TrainConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean ``[n, F]`` and augmented ``[views, n, F]`` features of whole photos."""
    kw: dict[str, Any] = {"batch_size": cfg.batch_size, "device": torch.device("cpu"), "seed": cfg.seed}
    clean, _ = view_features(model, manifest, records, labels, rule, views=1, augment=False, **kw)
    aug, _ = view_features(
        model,
        manifest,
        records,
        labels,
        rule,
        views=cfg.views_per_image,
        augment=True,
        desc="augmented",
        **kw,
    )
    return clean, aug.reshape(cfg.views_per_image, len(records), -1)


def fewshot_features(
    model: CamidNet, manifest: Manifest, labels: LabelSet, rule: ResizeRule, cfg: TrainConfig
) -> FewshotFeatures:
    """Features of every sample: box crops where the record has boxes, else the whole photo."""
    samples, crops = _record_crops(manifest, manifest.records, labels, rule.size, cfg)
    if not samples:
        raise ValueError(f"manifest {manifest.root}: no photos to learn from")
    box_idx = sorted(crops)
    whole_idx = [i for i in range(len(samples)) if i not in crops]
    parts: list[tuple[list[int], torch.Tensor, torch.Tensor]] = []
    if box_idx:
        arr = np.stack([crops[i] for i in box_idx])  # [n, 1 + views, 3, S, S]
        f = _embed(model, arr.reshape(-1, *arr.shape[2:]), cfg.batch_size).reshape(
            len(box_idx), arr.shape[1], -1
        )
        parts.append((box_idx, f[:, 0], f[:, 1:].transpose(0, 1)))
    if whole_idx:
        clean, aug = _whole_features(
            model, manifest, [samples[i].record for i in whole_idx], labels, rule, cfg
        )
        parts.append((whole_idx, clean, aug))
    dim = parts[0][1].shape[1]
    clean_all = torch.zeros(len(samples), dim)
    aug_all = torch.zeros(cfg.views_per_image, len(samples), dim)
    for idx, c, a in parts:
        clean_all[idx], aug_all[:, idx] = c, a
    y = torch.tensor([labels.index(s.label) for s in samples])
    feats = FewshotFeatures(clean_all, aug_all, y, samples)
    n = feats.source_counts()
    log.info(
        "few-shot samples: %d crops around boxes, %d whole photos (records without boxes)",
        n["boxes"],
        n["whole_photo"],
    )
    return feats


def bucket_accuracy(pred: np.ndarray, y: np.ndarray, samples: Sequence[Sample]) -> dict[str, dict[str, Any]]:
    """Out-of-fold accuracy per box size bucket (box width / photo width) and of whole photos,
    with sample and photo counts (accuracy null for an empty row)."""
    rows: dict[str, dict[str, Any]] = {}
    for name in [*(b[0] for b in SIZE_BUCKETS), WHOLE_PHOTO]:
        idx = np.array([i for i, s in enumerate(samples) if s.bucket == name], dtype=int)
        correct = int((pred[idx] == y[idx]).sum())
        rows[name] = {
            "n": len(idx),
            "photos": len({samples[i].record.path for i in idx}),
            "correct": correct,
            "accuracy": correct / len(idx) if len(idx) else None,
        }
    return rows


def cv_report(
    oof: np.ndarray, feats: FewshotFeatures, labels: LabelSet, accs: list[float], n_boot: int
) -> dict[str, Any]:
    """Out-of-fold metrics with group-bootstrap 95 % intervals, fold mean ± sd, accuracy per size
    bucket and where the samples came from."""
    pred, y = oof.argmax(1), feats.y.numpy()

    def metric(idx: np.ndarray) -> dict[str, float]:
        return classification_metrics(y[idx], pred[idx], labels.names)

    ci = bootstrap_intervals(metric, len(y), [s.group for s in feats.samples], n_boot)
    return {
        "out_of_fold": with_intervals(metric(np.arange(len(y))), ci),
        "by_size": bucket_accuracy(pred, y, feats.samples),
        "samples": feats.source_counts(),
        "fold_accuracy": accs,
        "fold_accuracy_mean": float(np.mean(accs)),
        "fold_accuracy_sd": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
        "note": "group-aware k-fold: samples of one photo or group are never in training and test "
        "of the same fold; a sample is the crop around one box, or the whole photo when the row "
        "has no boxes; size bucket = box width / photo width",
    }


def crop_contract(counts: dict[str, int]) -> dict[str, Any] | None:
    """The contract's ``crop`` field (as a ``--mode zoom`` crop classifier's) when samples were cut
    around boxes, else None (a whole-photo classifier). No detector was calibrated with it."""
    if not counts["boxes"]:
        return None
    if counts["whole_photo"]:
        log.warning(
            "trained on %d crops and %d whole photos: the checkpoint is marked as a crop classifier; "
            "add boxes to the other rows for a clean one",
            counts["boxes"],
            counts["whole_photo"],
        )
    return {**ZoomSettings().to_json(), "calibrated_with_detector": None}


def train_fewshot(
    manifest_path: str | Path, out_dir: str | Path, cfg: TrainConfig, method: str = "prototype"
) -> dict[str, Any]:
    """Cross-validate, then fit the head on every sample and save ``checkpoint.pt`` + ``cv.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    labels = load_labels(Path(cfg.labels_path) if cfg.labels_path else None)
    manifest = read_manifest(manifest_path)
    check_labels(manifest, labels)
    rule = ResizeRule(size=cfg.image_size, mode=cfg.resize_mode)
    model = create_model(cfg.arch, len(labels), cfg.pretrained)
    feats = fewshot_features(model, manifest, labels, rule, cfg)
    oof, _, accs = cross_validate(feats, len(labels), cfg, method)
    report = cv_report(oof, feats, labels, accs, cfg.bootstrap)
    cal = calibrate(
        oof, feats.y.numpy(), labels.names, labels.targets, cfg.flag_precision, cfg.max_target_rejected
    )
    x = torch.cat([feats.clean, feats.augmented.reshape(-1, feats.clean.shape[1])])
    w, b = _fit(method, x, feats.y.repeat(1 + cfg.views_per_image), len(labels), cfg)
    with torch.no_grad():
        model.classifier.weight.copy_(w)
        model.classifier.bias.copy_(b)
    counts = feats.source_counts()
    provenance = trained_on(
        Path(manifest_path),
        manifest_hash(manifest),
        {"all": label_counts(manifest.records)},
        method=f"fewshot-{method}",
        samples=counts,
    )
    report.update(
        temperature=cal.temperature,
        thresholds=cal.thresholds,
        trained_on=provenance,
        ece_oof_after=cal.ece_after,
    )
    contract = create_contract(cfg, labels, rule, model, trained_on=provenance).with_updates(
        temperature=cal.temperature,
        thresholds=cal.thresholds,
        metrics={"cv": report["out_of_fold"]},
        crop=crop_contract(counts),
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
