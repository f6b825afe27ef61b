"""``camid train --mode detect``: train, calibrate and check the camera detector.

The same run folder as a classifier run (``train.log``, ``split.csv``, ``config.yaml``,
``run.json``, ``last.pt`` after every epoch for ``--resume``, ``checkpoint.pt``, ``curves.png``,
``metrics.json``), trained by the one loop (``training.loop.fit``) with the detector's loss and
validation score (class-agnostic AP50) as hooks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from data.detection import Camera, decode_cameras, photo_verdict
from data.labels import LabelSet
from model.checkpoint import read_checkpoint, save_checkpoint
from model.detector import CamidDetector, decode_outputs
from model.factory import create_detector
from training.calibration import fit_temperature, select_flag_threshold, select_reject_threshold
from training.config import TrainConfig
from training.contract import create_contract
from training.detection import DetectionDataset, collate, detection_loss, usable_records
from training.detmetrics import Found, PhotoTruth, ap_per_class, match, recall_at_false
from training.distributed import barrier
from training.loop import FitState, fit, fit_config
from training.paste import IGNORE, Paster, load_cutouts
from training.plots import plot_curves
from training.runinfo import remove_log_file, seed_everything, write_json
from training.train import CHECKPOINT, LAST, RunContext, provenance, run_context, start_run

log = logging.getLogger(__name__)
LOW_THRESHOLD = 0.02  # peaks kept when measuring (the calibrated threshold is chosen from them)


@dataclass
class DetectResult:
    """A finished detector run."""

    run_dir: Path
    checkpoint: Path
    model: CamidDetector
    val_metrics: dict[str, Any]


@dataclass(frozen=True)
class RawPeaks:
    """One photo's detector peaks in input pixels: scores ``[M]``, class logits ``[M,K]``, boxes."""

    scores: np.ndarray
    class_logits: np.ndarray
    boxes: np.ndarray


def frozen_and_trained(model: CamidDetector, freeze_blocks: int) -> list[nn.Module]:
    """Freeze the stem and the first ``freeze_blocks`` stages; return the modules that train."""
    frozen = [model.stem, *list(model.blocks)[:freeze_blocks]]
    for m in frozen:
        for p in m.parameters():
            p.requires_grad_(False)
    return [*list(model.blocks)[freeze_blocks:], model.lateral, model.fuse, model.tower,
            model.objectness, model.classifier, model.box]  # fmt: skip


@torch.no_grad()
def detector_peaks(
    model: nn.Module, loader: DataLoader[Any], device: torch.device, top: int = 50
) -> tuple[list[RawPeaks], list[Any], float]:
    """Every photo's ``top`` strongest peaks and its ``(boxes, classes)`` truth, in order, and the
    mean detection loss: one pass over the loader."""
    assert isinstance(model, CamidDetector)
    model.eval()
    peaks, truth, losses = [], [], []
    for images, items in loader:
        raw = model.forward_raw(images.to(device))
        losses.append(float(detection_loss(raw, items)))
        _, scores, cls, boxes = decode_outputs(*raw)
        for n in range(len(images)):
            order = torch.argsort(scores[n], descending=True)[:top]
            peaks.append(
                RawPeaks(
                    scores[n, order].cpu().numpy(), cls[n, order].cpu().numpy(), boxes[n, order].cpu().numpy()
                )
            )
        truth.extend(items)
    return peaks, truth, float(np.mean(losses)) if losses else 0.0


def _truths(items: Sequence[Any], cameras: Sequence[str], widths: Sequence[float]) -> list[PhotoTruth]:
    """Each photo's cameras (look-alikes left out) with the photo's width in input pixels."""
    out = []
    for (boxes, classes), width in zip(items, widths, strict=True):
        kept = tuple(
            (tuple(b), cameras[c])
            for b, c in zip(boxes.tolist(), classes.tolist(), strict=True)
            if c != IGNORE
        )
        out.append(PhotoTruth(kept, width))
    return out


def _found(peaks: Sequence[RawPeaks], labels: LabelSet, temperature: float) -> list[list[Found]]:
    out = []
    for p in peaks:
        cams, _ = decode_cameras(
            p.scores, p.class_logits, p.boxes, labels=labels, temperature=temperature,
            threshold=LOW_THRESHOLD, to_photo=lambda b: b, max_cameras=len(p.scores),
        )  # fmt: skip
        out.append([Found(c.box, c.label, 1.0 - dict(c.probabilities)[labels.negative]) for c in cams])
    return out


def _agnostic(found: Sequence[Found]) -> list[Found]:
    return [Found(f.box, "camera", f.score) for f in found]


def _agnostic_truth(t: PhotoTruth) -> PhotoTruth:
    return PhotoTruth(tuple((b, "camera") for b, _ in t.boxes), t.width)


def detection_validation(labels: LabelSet, widths: Sequence[float]) -> Any:
    """The fit hook: ``(class-agnostic AP50, mean detection loss)`` on the validation loader
    (``widths``: its photos' widths in input pixels, in order)."""

    def validate(
        model: nn.Module, loader: DataLoader[Any], device: torch.device, dtype: Any, progress: bool
    ) -> tuple[float, float]:
        peaks, items, loss = detector_peaks(model, loader, device)
        found = [_agnostic(fs) for fs in _found(peaks, labels, 1.0)]
        truth = [_agnostic_truth(t) for t in _truths(items, labels.cameras, widths)]
        ap = ap_per_class(found, truth, ["camera"])["camera"]
        return (0.0 if np.isnan(ap) else ap), loss

    return validate


def calibrate_detector(
    peaks: Sequence[RawPeaks],
    items: Sequence[Any],
    labels: LabelSet,
    cfg: TrainConfig,
    widths: Sequence[float],
) -> tuple[float, dict[str, float], dict[str, Any]]:
    """Temperature of the class logits, the camera threshold (<= ``det_false_per_photo`` false
    cameras per validation photo) and the photo flag / reject thresholds, with the figures
    (size buckets by each photo's own width in input pixels, ``widths``)."""
    truth = _truths(items, labels.cameras, widths)
    # temperature: class logits of the strongest peak matched to each true camera
    agnostic = _found(peaks, labels, 1.0)
    logits, ys = [], []
    for p, t, fs in zip(peaks, truth, agnostic, strict=True):
        m = match(_agnostic(fs), _agnostic_truth(t), 0.5, by_label=False)
        for i, j in enumerate(m):
            if j >= 0:
                logits.append(p.class_logits[i])
                ys.append(labels.cameras.index(t.boxes[j][1]))
    temperature = fit_temperature(np.array(logits), np.array(ys)) if len(set(ys)) > 1 else 1.0
    found = _found(peaks, labels, temperature)
    rec = recall_at_false(
        [_agnostic(fs) for fs in found], [_agnostic_truth(t) for t in truth], cfg.det_false_per_photo
    )
    camera_th = max(rec.threshold, LOW_THRESHOLD)
    decoded = [
        decode_cameras(
            p.scores,
            p.class_logits,
            p.boxes,
            labels=labels,
            temperature=temperature,
            threshold=camera_th,
            to_photo=lambda b: b,
        )  # fmt: skip
        for p in peaks
    ]
    thresholds = {"camera": camera_th, **verdict_thresholds(decoded, truth, labels, cfg)}
    figures = {
        "val_recall_at_false": rec.recall,
        "val_false_per_photo": rec.false_per_photo,
        "val_recall_by_size": {k: list(v) for k, v in rec.by_bucket.items()},
        "val_ap50": ap_per_class(found, truth, labels.cameras),
    }
    return temperature, thresholds, figures


def verdict_thresholds(
    decoded: Sequence[tuple[Sequence[Camera], Camera | None]],
    truth: Sequence[PhotoTruth],
    labels: LabelSet,
    cfg: TrainConfig,
) -> dict[str, float]:
    """The photo ``flag`` / ``reject`` thresholds, chosen as for the classifier, from each
    validation photo's ``(cameras, best miss)`` at the calibrated camera threshold."""
    probs, pred, y = [], [], []
    for (cams, miss), t in zip(decoded, truth, strict=True):
        v = photo_verdict(cams, miss, labels)
        d = dict(v.probabilities)
        probs.append([d[n] for n in labels.names])
        pred.append(labels.index(v.label))
        y.append(labels.index(_photo_truth_label(t, labels)))
    pa, ya = np.array(probs).reshape(-1, len(labels)), np.array(y, dtype=np.int64)
    return {
        "flag": select_flag_threshold(
            pa, ya, labels.names, labels.targets, cfg.flag_precision, np.array(pred, dtype=np.int64)
        ),
        "reject": select_reject_threshold(pa, ya, labels.names, labels.targets, cfg.max_target_rejected),
    }


def _photo_truth_label(t: PhotoTruth, labels: LabelSet) -> str:
    targets = [label for _, label in t.boxes if label in labels.targets]
    if targets:
        return targets[0]
    return t.boxes[0][1] if t.boxes else labels.negative


def _loaders(ctx: RunContext) -> tuple[DataLoader[Any], DataLoader[Any]]:
    cfg = ctx.config
    train = usable_records(ctx.splits.train, ctx.labels)
    val = usable_records(ctx.splits.val, ctx.labels)
    if not train or not val:
        raise ValueError("the detector needs photos with boxes (a `boxes` column) in train and val")
    paster = None
    if cfg.det_paste_from:
        cutouts = load_cutouts(cfg.det_paste_from, ctx.labels)
        px = (cfg.det_paste_min_px, cfg.det_paste_max_px)
        paster = Paster(cutouts, cfg.det_paste, px, seed=cfg.seed)
    ds = DetectionDataset(
        ctx.manifest,
        train,
        ctx.labels,
        ctx.rule,
        crop=cfg.det_crop,
        seed=cfg.seed,
        box_windows=cfg.det_box_windows,
        paster=paster,
    )
    gen = torch.Generator().manual_seed(cfg.seed)
    train_loader = DataLoader(
        ds, batch_size=cfg.batch_size, shuffle=True, collate_fn=collate, num_workers=cfg.num_workers,
        generator=gen, drop_last=len(ds) > cfg.batch_size,
    )  # fmt: skip
    val_ds = DetectionDataset(ctx.manifest, val, ctx.labels, ctx.rule)
    val_loader = DataLoader(val_ds, batch_size=max(1, cfg.batch_size // 2), collate_fn=collate)
    return train_loader, val_loader


def _resume(ctx: RunContext, model: CamidDetector) -> FitState | None:
    path = ctx.run_dir / LAST
    if not ctx.resume or not path.is_file():
        return None
    obj = read_checkpoint(path)
    model.load_state_dict(obj["state_dict"])
    state = FitState.from_dict(obj["extra"]["fit_state"])
    log.info("resuming the detector at epoch %d from %s", state.epoch, path)
    return state


def train_detector(
    manifest_path: str | Path, out_dir: str | Path, config: TrainConfig, *, resume: bool = False
) -> DetectResult:
    """Train the camera detector, calibrate it on validation and save ``checkpoint.pt``."""
    manifest_path, run_dir = Path(manifest_path), Path(out_dir)
    seed_everything(config.seed)
    ctx = run_context(manifest_path, run_dir, config, resume)
    manifest_path, handler = start_run(ctx, manifest_path)
    barrier(ctx.dist)
    try:
        start = time.perf_counter()
        model = create_detector(
            config.arch, len(ctx.labels.cameras), config.pretrained, width=config.det_width
        )
        trained = frozen_and_trained(model, config.det_freeze_blocks)
        train_loader, val_loader = _loaders(ctx)
        assert isinstance(val_loader.dataset, DetectionDataset)
        val_widths = val_loader.dataset.photo_widths()

        def save_last(state: FitState, net: nn.Module) -> None:
            assert isinstance(net, CamidDetector)
            contract = create_contract(ctx.config, ctx.labels, ctx.rule, net)
            save_checkpoint(ctx.run_dir / LAST, net, contract, config=config.to_dict(),
                            extra={"stage": "detect", "fit_state": state.to_dict()})  # fmt: skip

        def step(net: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
            assert isinstance(net, CamidDetector)
            images, items = batch
            return detection_loss(net.forward_raw(images.to(device)), items), len(images)

        model.to(ctx.device)
        state = fit(
            model, train_loader, val_loader, fit_config(config),
            device=ctx.device, dist_info=ctx.dist, train_modules=trained, state=_resume(ctx, model),
            on_epoch_end=save_last, desc="detect", loss_step=step,
            validate=detection_validation(ctx.labels, val_widths),
        )  # fmt: skip
        ctx.histories["detect"] = state.history
        ctx.seconds["train_total"] = time.perf_counter() - start
        peaks, items, _ = detector_peaks(model, val_loader, ctx.device)
        temperature, thresholds, figures = calibrate_detector(peaks, items, ctx.labels, config, val_widths)
        log.info("detector validation: %s; thresholds %s", figures, thresholds)
        contract = create_contract(
            config, ctx.labels, ctx.rule, model, trained_on=provenance(ctx, manifest_path)
        ).with_updates(temperature=temperature, thresholds=thresholds, metrics={"val": figures})
        ckpt = save_checkpoint(run_dir / CHECKPOINT, model.cpu(), contract, config=config.to_dict())
        plot_curves(ctx.histories, run_dir / "curves.png", score_name="AP50")
        write_json(run_dir / "metrics.json", {"val": figures, "temperature": temperature,
                                               "thresholds": thresholds, "seconds": ctx.seconds,
                                               "histories": ctx.histories})  # fmt: skip
        return DetectResult(run_dir, ckpt, model, figures)
    finally:
        if handler is not None:
            remove_log_file(handler)
