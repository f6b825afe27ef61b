"""``camid train --mode zoom``: the crop classifier of look-then-zoom (``data/zoom.py``).

Training data are square crops (``data.crops``) around every labelled box of the training photos
(a camera box gives its camera class, a look-alike the no-camera class), ``zoom_backgrounds``
random no-camera squares per photo (sized like camera crops, holding no camera box's centre) and,
with ``--detector``, the detector's own proposals: those matching a camera box at IoU >= 0.3 as
that camera (framed as the detector frames it), the others as hard negatives. Each photo is
decoded once, as the server decodes it (shorter side >= ``zoom_decode_side``); a training crop is
kept as a JPEG patch ``PAD`` times its side so that scale and shift jitter stay inside it.

With ``zoom_refine`` the network also has a box head (:class:`~model.factory.BoxHead`) that learns
where the object of the crop is (``data.zoom.box_offsets``: the camera box of a box, proposal or
pasted crop, through the same jitter and flip as the pixels; backgrounds and missed proposals
teach only the class). The pair is then calibrated with the boxes it reads off the crops, as the
server uses them.

Every layer of a :class:`~model.factory.CamidNet` trains through ``training.loop.fit`` (progress,
``last.pt`` after every epoch, ``--resume``). The temperature is fitted on the validation crops;
with ``--detector`` the pair is then run on the validation photos exactly as the server runs it
and its thresholds are chosen there (:func:`calibrate_pair`). The checkpoint is a classifier
checkpoint whose contract has ``crop`` (the geometry and proposal settings), so ``camid export
--checkpoint DETECTOR --zoom ZOOM`` can pair them.
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from data.boxes import LabeledBox, iou, record_boxes
from data.crops import crop_square, cut_crop
from data.decision import softmax
from data.dedup import sha256_file
from data.images import load_image, probe_image
from data.labels import LabelSet
from data.manifest import Manifest, Record
from data.preprocess import decode_hint, input_to_photo, prepare
from data.zoom import (
    ZoomSettings,
    box_offsets,
    camera_probability,
    crop_inputs,
    distinct,
    refine_proposals,
    top_proposals,
    zoom_cameras,
)
from model.checkpoint import load_any_checkpoint, read_checkpoint, save_checkpoint
from model.detector import CamidDetector
from model.factory import CamidNet, create_model
from training.calibration import calibrate
from training.config import TrainConfig
from training.contract import create_contract
from training.dataset import class_weights
from training.detect import LOW_THRESHOLD, verdict_thresholds
from training.detection import usable_records
from training.detmetrics import Found, PhotoTruth, recall_at_false
from training.distributed import barrier
from training.loop import FitState, LossStep, fit, fit_config
from training.metrics import classification_metrics
from training.paste import IGNORE, Cutout, load_cutouts, paste_centred
from training.plots import plot_curves
from training.runinfo import remove_log_file, seed_everything, write_json
from training.train import CHECKPOINT, LAST, RunContext, provenance, run_context, start_run

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
PAD = 1.7  # a training patch is this many crop sides: room for scale <= 1.33 and shift <= 0.15
SCALE_JITTER = (0.75, 1.33)
SHIFT_JITTER = 0.15  # in crop sides
MATCH_IOU = 0.3  # a proposal at this IoU with a camera box is that camera
PROPOSE_CANDIDATES = (0.02, 0.05, 0.1, 0.2, 0.3)
RECALL_SLACK = 0.01  # the highest propose threshold within this much of the best recall wins
PASTE_WIDTHS = (0.008, 0.1)  # a pasted object spans this share of the photo width (log-uniform)
BOX_WEIGHT = 2.0  # the box head's smooth-L1 loss (offsets in crop sides) against cross-entropy
NO_BOX = (math.nan, math.nan, math.nan, math.nan)


@dataclass(frozen=True)
class CropSpec:
    """One crop of a photo: ``crop_square(box)`` with the run's context, its label and origin."""

    box: Box  # photo pixels
    label: str
    source: str  # "box" | "background" | "proposal" | "pasted"
    truth: Box | None = None  # the object's box (photo pixels) the box head learns, if any


@dataclass
class ValPhoto:
    """A validation photo's truth and the detector's proposals with their crop rows."""

    truth: PhotoTruth
    boxes: list[Box]  # the detector's (refined ones replace them in calibration)
    det_scores: np.ndarray
    rows: np.ndarray  # indices of the proposals' crops in the validation crop set
    size: tuple[int, int]  # the photo's width and height


@dataclass
class CropSet:
    """Training patches (JPEG bytes) or exact validation crops (uint8), labels and counts; the
    object box of each (patch pixels for training, photo pixels for validation; NaN: none)."""

    patches: list[bytes] = field(default_factory=list)
    arrays: list[np.ndarray] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)
    truths: list[Box] = field(default_factory=list)
    photos: list[ValPhoto] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class ZoomResult:
    """A finished crop-classifier run."""

    run_dir: Path
    checkpoint: Path
    model: CamidNet
    thresholds: dict[str, float]
    val_metrics: dict[str, Any]


def zoom_settings(cfg: TrainConfig, propose: float | None = None) -> ZoomSettings:
    """The geometry and proposal settings of a run (``propose``: the measured threshold)."""
    value = propose if propose is not None else cfg.zoom_propose
    return ZoomSettings(
        context=cfg.zoom_context,
        min_px=cfg.zoom_min_px,
        propose=0.05 if value is None else value,
        max_proposals=cfg.zoom_max_proposals,
        decode_side=cfg.zoom_decode_side,
        refine=cfg.zoom_refine,
    )


def box_specs(boxes: Sequence[LabeledBox], labels: LabelSet) -> list[CropSpec]:
    """A crop around every labelled box: camera classes keep their label, look-alikes are negatives."""
    cams = set(labels.cameras)
    return [CropSpec(b.box, b.label if b.label in cams else labels.negative, "box", b.box) for b in boxes]


def background_specs(
    boxes: Sequence[LabeledBox],
    width: int,
    height: int,
    n: int,
    rng: np.random.Generator,
    settings: ZoomSettings,
    labels: LabelSet,
) -> list[CropSpec]:
    """``n`` random no-camera squares of the photo, sized like its camera crops (or, without
    boxes, like crops of cameras 1-8% of the photo width), none holding a camera box's centre."""
    cams = [b for b in boxes if b.label in labels.cameras]
    centres = [((b.box[0] + b.box[2]) / 2, (b.box[1] + b.box[3]) / 2) for b in cams]
    sides = [max(settings.min_px, settings.context * max(b.width, b.height)) for b in boxes]
    out: list[CropSpec] = []
    for _ in range(n):
        for _try in range(20):
            if sides:
                side = float(rng.choice(sides)) * float(rng.uniform(0.7, 1.4))
            else:
                side = settings.context * width * float(rng.uniform(0.01, 0.08))
            side = min(max(side, settings.min_px), float(min(width, height)))
            x0 = float(rng.uniform(0, max(0.0, width - side)))
            y0 = float(rng.uniform(0, max(0.0, height - side)))
            if any(x0 <= cx <= x0 + side and y0 <= cy <= y0 + side for cx, cy in centres):
                continue
            out.append(
                CropSpec(
                    _box_of_square((x0, y0, x0 + side, y0 + side), settings), labels.negative, "background"
                )
            )
            break
    return out


def _box_of_square(square: Box, settings: ZoomSettings) -> Box:
    """The box whose ``crop_square`` is ``square`` (the centred box of side ``side / context``)."""
    cx, cy = (square[0] + square[2]) / 2, (square[1] + square[3]) / 2
    half = (square[2] - square[0]) / settings.context / 2
    return (cx - half, cy - half, cx + half, cy + half)


def proposal_specs(proposals: Sequence[Box], boxes: Sequence[LabeledBox], labels: LabelSet) -> list[CropSpec]:
    """The detector's proposals: the camera a proposal overlaps at IoU >= 0.3 (its box the truth),
    else a hard negative."""
    cams = [b for b in boxes if b.label in labels.cameras]
    out = []
    for p in proposals:
        best = max(cams, key=lambda b: iou(p, b.box), default=None)
        if best is not None and iou(p, best.box) >= MATCH_IOU:
            out.append(CropSpec(p, best.label, "proposal", best.box))
        else:
            out.append(CropSpec(p, labels.negative, "proposal"))
    return out


class _Detector:
    """A detector checkpoint run as the server runs its ONNX export (photo -> proposals)."""

    def __init__(self, path: Path) -> None:
        model, meta = load_any_checkpoint(path)
        if not isinstance(model, CamidDetector):
            raise ValueError(f"--detector {path}: not a detector checkpoint (`camid train --mode detect`)")
        self.model, self.contract, self.sha256 = model.eval(), meta.contract, sha256_file(path)

    @torch.no_grad()
    def proposals(
        self, image: Image.Image, size: tuple[int, int], settings: ZoomSettings
    ) -> tuple[list[Box], np.ndarray]:
        """Boxes (photo pixels) and scores of the top peaks scoring at least ``settings.propose``."""
        x = torch.from_numpy(prepare(image, self.contract.resize)[None])
        _, scores, _, boxes = self.model(x)
        s, b = scores[0].numpy(), boxes[0].numpy()
        picked = top_proposals(s, settings)
        rule, (w, h) = self.contract.resize, size
        photo = [
            input_to_photo((float(v[0]), float(v[1]), float(v[2]), float(v[3])), w, h, rule)
            for v in b[picked]
        ]
        return photo, s[picked]


def _patch(
    image: Image.Image, spec: CropSpec, size: tuple[int, int], settings: ZoomSettings, side: int
) -> tuple[bytes, Box]:
    """The JPEG patch ``PAD`` crop sides wide around ``spec``'s crop square, ``side`` pixels, and
    ``spec.truth`` in the patch's pixels (``NO_BOX`` without one)."""
    w, h = size
    x0, y0, x1, y1 = crop_square(spec.box, w, h, context=settings.context, min_px=settings.min_px)
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * PAD / 2
    img = cut_crop(image, (cx - half, cy - half, cx + half, cy + half), side, image.width / w)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95)
    if spec.truth is None:
        return buf.getvalue(), NO_BOX
    k, t = side / (2 * half), spec.truth
    truth = ((t[0] - cx + half) * k, (t[1] - cy + half) * k, (t[2] - cx + half) * k, (t[3] - cy + half) * k)
    return buf.getvalue(), truth


def pasted_patches(
    image: Image.Image,
    size: tuple[int, int],
    boxes: Sequence[LabeledBox],
    cutouts: Sequence[Cutout],
    n: int,
    rng: np.random.Generator,
    settings: ZoomSettings,
    labels: LabelSet,
    side: int,
    widths: tuple[float, float] = PASTE_WIDTHS,
) -> list[tuple[CropSpec, bytes, Box]]:
    """``n`` training patches of this photo with a rendered cutout pasted in the middle: one of
    its objects, drawn uniformly (a camera or a look-alike on the same pole), spans ``widths`` of
    the photo width, pasted at the decoded photo's resolution so it gets the photo's own pixel
    scale, and is the crop's label (a look-alike gives the no-camera class, so "pasted" does not
    tell the class). Places whose patch would hold a camera of the photo are not used."""
    w, h = size
    scale = image.width / w
    cams = [b.box for b in boxes if b.label in labels.cameras]
    base = np.asarray(image.convert("RGB"))
    out: list[tuple[CropSpec, bytes, Box]] = []
    for _ in range(n):
        cut = cutouts[int(rng.integers(0, len(cutouts)))]
        width = w * math.exp(float(rng.uniform(math.log(widths[0]), math.log(widths[1]))))
        half = PAD * max(settings.min_px, settings.context * width * 2.0) / 2
        for _try in range(10):
            cx, cy = (
                float(rng.uniform(half, max(half, w - half))),
                float(rng.uniform(half, max(half, h - half))),
            )
            if not any(iou((cx - half, cy - half, cx + half, cy + half), b) > 0 for b in cams):
                break
        else:
            continue
        ref = int(rng.integers(0, len(cut.boxes)))
        pixels = base.copy()
        b = paste_centred(pixels, cut, (cx * scale, cy * scale), width * scale, rng, ref)
        cls = int(cut.classes[ref])
        label = labels.negative if cls == IGNORE else labels.cameras[cls]
        photo_box = (b[0] / scale, b[1] / scale, b[2] / scale, b[3] / scale)
        spec = CropSpec(photo_box, label, "pasted", photo_box)
        out.append((spec, *_patch(Image.fromarray(pixels), spec, size, settings, side)))
    return out


def collect_crops(
    manifest: Manifest,
    records: Sequence[Record],
    labels: LabelSet,
    cfg: TrainConfig,
    *,
    detector: _Detector | None,
    train: bool,
    cutouts: Sequence[Cutout] = (),
) -> CropSet:
    """Decode each photo once (as the server does) and cut its crops: JPEG patches for training
    (with ``cutouts``, ``zoom_paste`` of them per photo pasted in), exact crops (the server's
    ``crop_inputs``) and the detector's proposals for validation."""
    settings = zoom_settings(cfg)
    propose_floor = settings if train else ZoomSettings(**{**settings.to_json(), "propose": LOW_THRESHOLD})
    hint = max(cfg.zoom_decode_side, decode_hint(detector.contract.resize) if detector else 0)
    rng = np.random.default_rng(cfg.seed + (0 if train else 1))
    out, size = CropSet(), cfg.image_size
    for r in records:
        path = manifest.resolve(r)
        info, image = probe_image(path), load_image(path, min_side=hint)
        wh = (info.width, info.height)
        boxes = record_boxes(r)
        specs = box_specs(boxes, labels)
        if train:
            specs += background_specs(boxes, *wh, cfg.zoom_backgrounds, rng, settings, labels)
        found, scores = detector.proposals(image, wh, propose_floor) if detector else ([], np.zeros(0))
        n_before = len(out.targets) + len(specs)
        specs += proposal_specs(found, boxes, labels)
        for s in specs:
            out.counts[f"{s.source}:{s.label}"] = out.counts.get(f"{s.source}:{s.label}", 0) + 1
            out.targets.append(labels.index(s.label))
        if train:
            for patch, at in (_patch(image, s, wh, settings, round(size * PAD)) for s in specs):
                out.patches.append(patch)
                out.truths.append(at)
            if cutouts and cfg.zoom_paste:
                pasted = pasted_patches(
                    image, wh, boxes, cutouts, cfg.zoom_paste, rng, settings, labels, round(size * PAD)
                )
                for spec, patch, at in pasted:
                    key = f"{spec.source}:{spec.label}"
                    out.counts[key] = out.counts.get(key, 0) + 1
                    out.targets.append(labels.index(spec.label))
                    out.patches.append(patch)
                    out.truths.append(at)
            continue
        out.arrays += list(crop_inputs(image, [s.box for s in specs], wh, settings, size))
        out.truths += [s.truth or NO_BOX for s in specs]
        truth = tuple((b.box, b.label) for b in boxes if b.label in labels.cameras)
        rows = np.arange(n_before, n_before + len(found))
        out.photos.append(ValPhoto(PhotoTruth(truth, float(info.width)), list(found), scores, rows, wh))
    return out


def crop_augmentation(seed: int) -> A.Compose:
    """Colour, blur, downscale-upscale (a camera 16 px wide in the photo is a blurry crop) and
    JPEG artefacts. Scale and shift jitter and the flip come before, from the patch
    (:class:`PatchDataset`), which moves the object's box with them."""
    return A.Compose(
        [
            A.RandomBrightnessContrast(brightness_limit=0.3, contrast_limit=0.3, p=0.7),
            A.HueSaturationValue(hue_shift_limit=8, sat_shift_limit=25, val_shift_limit=15, p=0.4),
            A.OneOf([A.MotionBlur(blur_limit=(3, 5)), A.GaussianBlur(sigma_limit=(0.3, 1.2))], p=0.3),
            A.Downscale(scale_range=(0.15, 0.6), interpolation_pair={"downscale": 3, "upscale": 1}, p=0.4),
            A.GaussNoise(std_range=(0.01, 0.04), p=0.3),
            A.ImageCompression(quality_range=(40, 95), p=0.5),
        ],
        seed=seed,
    )


class PatchDataset(Dataset[tuple[Any, ...]]):
    """Training crops: a jittered square (scale 0.75-1.33, shift +-0.15 side) of each patch,
    flipped half the time, resized to ``size`` and augmented: ``(uint8 [3,size,size], class
    index)``; with ``truths`` (each patch's object box in patch pixels, NaN for none) also the box
    head's target (``data.zoom.box_offsets`` in the jittered, flipped crop; NaN for none)."""

    def __init__(
        self,
        patches: Sequence[bytes],
        targets: Sequence[int],
        size: int,
        seed: int = 0,
        truths: Sequence[Box] | None = None,
    ) -> None:
        self.patches, self.targets, self.size = list(patches), list(targets), size
        self.truths = None if truths is None else list(truths)
        self.rng = np.random.default_rng(seed)
        self.aug = crop_augmentation(seed)

    def __len__(self) -> int:
        return len(self.patches)

    def jittered(self, i: int) -> tuple[Image.Image, Box]:
        """The jittered, maybe flipped crop of patch ``i`` and the offsets of its object's box."""
        patch = Image.open(io.BytesIO(self.patches[i])).convert("RGB")
        base = patch.width / PAD
        lo, hi = (math.log(v) for v in SCALE_JITTER)
        side = base * math.exp(float(self.rng.uniform(lo, hi)))
        dx, dy = (float(v) * base for v in self.rng.uniform(-SHIFT_JITTER, SHIFT_JITTER, 2))
        cx, cy = patch.width / 2 + dx, patch.height / 2 + dy
        box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        crop = patch.resize((self.size, self.size), Image.Resampling.BILINEAR, box=box)
        truth = NO_BOX if self.truths is None else self.truths[i]
        offsets = NO_BOX if math.isnan(truth[0]) else box_offsets(box, truth)
        if self.rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            offsets = (-offsets[0], *offsets[1:])
        return crop, offsets

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        crop, offsets = self.jittered(i)
        arr = self.aug(image=np.asarray(crop))["image"]
        x = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
        if self.truths is None:
            return x, self.targets[i]
        return x, self.targets[i], torch.tensor(offsets, dtype=torch.float32)


def boxed_step(ce: nn.Module, weight: float = BOX_WEIGHT) -> LossStep:
    """Cross-entropy plus ``weight`` times the box head's smooth-L1 loss on the crops that have an
    object box (a batch of ``(images, labels, offsets)``, NaN offsets for none)."""

    def step(model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
        x, y, target = (t.to(device, non_blocking=True) for t in batch)
        logits, offsets = model(x, boxes=True)
        loss = ce(logits.float(), y)
        has = ~torch.isnan(target[:, 0])
        if bool(has.any()):
            box_loss = nn.functional.smooth_l1_loss(offsets.float()[has], target[has], beta=0.05)
            loss = loss + weight * box_loss
        return loss, len(y)

    return step


@torch.no_grad()
def predict_crops(model: CamidNet, x: torch.Tensor, batch_size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits ``[N,C]`` of uint8 crops ``x`` and, with a box head, their box offsets ``[N,4]``."""
    model.eval()
    boxed = model.box_head is not None
    logits, offsets = [torch.zeros(0, model.num_classes)], [torch.zeros(0, 4)]
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        out, box = model(batch, boxes=True) if boxed else (model(batch), torch.zeros(0, 4))
        logits.append(out.float().cpu())
        offsets.append(box.float().cpu())
    return torch.cat(logits).numpy(), torch.cat(offsets).numpy() if boxed else None


def _truth_agnostic(t: PhotoTruth) -> PhotoTruth:
    return PhotoTruth(tuple((b, "camera") for b, _ in t.boxes), t.width)


def _pair_found(photos: Sequence[ValPhoto], p_camera: np.ndarray, propose: float) -> list[list[Found]]:
    """Each photo's proposals at ``propose`` as the pair finds them (each camera once)."""
    out = []
    for p in photos:
        keep = [k for k, s in enumerate(p.det_scores) if s >= propose]
        found = [Found(p.boxes[k], "camera", float(p_camera[p.rows[k]])) for k in keep]
        out.append([found[i] for i in distinct([f.box for f in found], [f.score for f in found])])
    return out


def calibrate_pair(
    photos: Sequence[ValPhoto], probs: np.ndarray, labels: LabelSet, cfg: TrainConfig
) -> tuple[float, dict[str, float], dict[str, Any]]:
    """The propose threshold, the pair's camera threshold (<= ``det_false_per_photo`` false cameras
    per validation photo, recall maximised) and photo flag / reject thresholds, with the figures.

    ``propose``: ``cfg.zoom_propose`` if set, else the highest of ``PROPOSE_CANDIDATES`` whose
    recall is within ``RECALL_SLACK`` of the best (fewer crops per photo for the same recall)."""
    p_camera = camera_probability(probs, labels) if len(probs) else np.zeros(0)
    truth = [_truth_agnostic(p.truth) for p in photos]
    candidates = (cfg.zoom_propose,) if cfg.zoom_propose is not None else PROPOSE_CANDIDATES
    sweep = {
        c: recall_at_false(_pair_found(photos, p_camera, c), truth, cfg.det_false_per_photo)
        for c in candidates
    }
    best = max(r.recall for r in sweep.values() if not math.isnan(r.recall)) if photos else float("nan")
    propose = max((c for c, r in sweep.items() if not r.recall < best - RECALL_SLACK), default=candidates[0])
    rec = sweep[propose]
    camera_th = max(rec.threshold, LOW_THRESHOLD)
    decoded = []
    for p in photos:
        keep = [k for k, s in enumerate(p.det_scores) if s >= propose]
        decoded.append(zoom_cameras([p.boxes[k] for k in keep], probs[p.rows[keep]], labels, camera_th))
    det_alone = [
        [Found(b, "camera", float(s)) for b, s in zip(p.boxes, p.det_scores, strict=True)] for p in photos
    ]
    det_rec = recall_at_false(det_alone, truth, cfg.det_false_per_photo)
    figures = {
        "val_recall_at_false": rec.recall,
        "val_false_per_photo": rec.false_per_photo,
        "val_recall_by_size": {k: list(v) for k, v in rec.by_bucket.items()},
        "val_detector_recall_at_false": det_rec.recall,
        "val_detector_recall_by_size": {k: list(v) for k, v in det_rec.by_bucket.items()},
        "propose_sweep": {str(c): r.recall for c, r in sweep.items()},
        "mean_proposals_per_photo": float(np.mean([sum(s >= propose for s in p.det_scores) for p in photos])),
    }
    return (
        propose,
        {"camera": camera_th, **verdict_thresholds(decoded, [p.truth for p in photos], labels, cfg)},
        figures,
    )


def box_figures(
    photos: Sequence[ValPhoto], refined: Sequence[Sequence[Box]], truths: Sequence[Box]
) -> dict[str, Any]:
    """How well the validation proposals on a camera fit it (the camera they overlap at IoU >=
    0.3), with the detector's boxes and with the ``refined`` ones (per photo): median IoU and
    share at IoU >= 0.5."""
    det, ref = [], []
    for p, boxes in zip(photos, refined, strict=True):
        for box, new, row in zip(p.boxes, boxes, p.rows, strict=True):
            truth = truths[row]
            if not math.isnan(truth[0]):
                det.append(iou(box, truth))
                ref.append(iou(new, truth))
    if not det:
        return {"proposals_on_a_camera": 0}
    return {
        "proposals_on_a_camera": len(det),
        "detector_median_iou": float(np.median(det)),
        "refined_median_iou": float(np.median(ref)),
        "detector_iou_0.5": float(np.mean(np.asarray(det) >= 0.5)),
        "refined_iou_0.5": float(np.mean(np.asarray(ref) >= 0.5)),
    }


def _loaders(train: CropSet, val: CropSet, cfg: TrainConfig) -> tuple[DataLoader[Any], DataLoader[Any]]:
    truths = train.truths if cfg.zoom_refine else None
    ds = PatchDataset(train.patches, train.targets, cfg.image_size, seed=cfg.seed, truths=truths)
    gen = torch.Generator().manual_seed(cfg.seed)
    train_loader = DataLoader(
        ds, batch_size=cfg.batch_size, shuffle=True, num_workers=cfg.num_workers, generator=gen,
        drop_last=len(ds) > cfg.batch_size,
    )  # fmt: skip
    x = (
        torch.from_numpy(np.stack(val.arrays))
        if val.arrays
        else torch.zeros(0, 3, cfg.image_size, cfg.image_size, dtype=torch.uint8)
    )
    val_ds = TensorDataset(x, torch.tensor(val.targets, dtype=torch.long))
    return train_loader, DataLoader(val_ds, batch_size=cfg.batch_size)


def _resume(ctx: RunContext, model: CamidNet) -> FitState | None:
    path = ctx.run_dir / LAST
    if not ctx.resume or not path.is_file():
        return None
    obj = read_checkpoint(path)
    if obj["extra"].get("stage") != "zoom":
        return None
    model.load_state_dict(obj["state_dict"])
    state = FitState.from_dict(obj["extra"]["fit_state"])
    log.info("resuming the crop classifier at epoch %d from %s", state.epoch, path)
    return state


def _collect(ctx: RunContext, detector: _Detector | None) -> tuple[CropSet, CropSet]:
    train_records = usable_records(ctx.splits.train, ctx.labels)
    val_records = usable_records(ctx.splits.val, ctx.labels)
    if not train_records or not val_records:
        raise ValueError("the crop classifier needs photos with boxes (a `boxes` column) in train and val")
    start = time.perf_counter()
    cfg = ctx.config
    cutouts = load_cutouts(cfg.zoom_paste_from, ctx.labels, "zoom_paste_from") if cfg.zoom_paste_from else []
    train = collect_crops(
        ctx.manifest, train_records, ctx.labels, cfg, detector=detector, train=True, cutouts=cutouts
    )
    val = collect_crops(ctx.manifest, val_records, ctx.labels, ctx.config, detector=detector, train=False)
    ctx.seconds["crops"] = time.perf_counter() - start
    log.info(
        "crops: %d training (%s), %d validation (%s)",
        len(train.targets),
        train.counts,
        len(val.targets),
        val.counts,
    )
    return train, val


def train_zoom(
    manifest_path: str | Path, out_dir: str | Path, config: TrainConfig, *, resume: bool = False
) -> ZoomResult:
    """Train the crop classifier, calibrate it (with the pair when ``config.zoom_detector`` is
    set) and save ``checkpoint.pt`` (a classifier checkpoint whose contract has ``crop``)."""
    manifest_path, run_dir = Path(manifest_path), Path(out_dir)
    seed_everything(config.seed)
    ctx = run_context(manifest_path, run_dir, config, resume)
    manifest_path, handler = start_run(ctx, manifest_path)
    barrier(ctx.dist)
    try:
        detector = _Detector(Path(config.zoom_detector)) if config.zoom_detector else None
        if detector is not None and detector.contract.names != ctx.labels.names:
            raise ValueError(
                f"--detector: its classes {list(detector.contract.names)} differ from the labels file's"
            )
        train, val = _collect(ctx, detector)
        start = time.perf_counter()
        model = create_model(config.arch, len(ctx.labels), config.pretrained, box_head=config.zoom_refine)
        train_loader, val_loader = _loaders(train, val, config)

        def save_last(state: FitState, net: nn.Module) -> None:
            assert isinstance(net, CamidNet)
            contract = create_contract(ctx.config, ctx.labels, ctx.rule, net)
            save_checkpoint(ctx.run_dir / LAST, net, contract, config=config.to_dict(),
                            extra={"stage": "zoom", "fit_state": state.to_dict()})  # fmt: skip

        model.to(ctx.device)
        weight = class_weights(train.targets, len(ctx.labels)).to(ctx.device)
        ce = nn.CrossEntropyLoss(weight=weight, label_smoothing=config.label_smoothing)
        state = fit(
            model, train_loader, val_loader, fit_config(config), device=ctx.device, dist_info=ctx.dist,
            class_weight=weight, state=_resume(ctx, model), on_epoch_end=save_last, desc="zoom",
            loss_step=boxed_step(ce) if config.zoom_refine else None,
        )  # fmt: skip
        ctx.histories["zoom"] = state.history
        ctx.seconds["train"] = time.perf_counter() - start
        return _finish(ctx, model, val, detector, manifest_path)
    finally:
        if handler is not None:
            remove_log_file(handler)


def _finish(
    ctx: RunContext, model: CamidNet, val: CropSet, detector: _Detector | None, manifest_path: Path
) -> ZoomResult:
    cfg, labels = ctx.config, ctx.labels
    logits, offsets = predict_crops(
        model.to(ctx.device), torch.from_numpy(np.stack(val.arrays)).to(ctx.device), cfg.batch_size
    )
    y = np.asarray(val.targets)
    cal = calibrate(logits, y, labels.names, labels.targets, cfg.flag_precision, cfg.max_target_rejected)
    probs = softmax(logits, cal.temperature)
    metrics: dict[str, Any] = {"val_crops": classification_metrics(y, probs.argmax(1), labels.names)}
    thresholds = {"camera": 0.5, **cal.thresholds}
    propose = cfg.zoom_propose
    photos = val.photos
    if offsets is not None:
        settings = zoom_settings(cfg)
        refined = [refine_proposals(p.boxes, offsets[p.rows], p.size, settings) for p in photos]
        metrics["val_boxes"] = box_figures(photos, refined, val.truths)
        photos = [replace(p, boxes=boxes) for p, boxes in zip(photos, refined, strict=True)]
    if detector is not None:
        propose, thresholds, metrics["val_pair"] = calibrate_pair(photos, probs, labels, cfg)
    crop = {
        **zoom_settings(cfg, propose).to_json(),
        "calibrated_with_detector": detector.sha256 if detector else None,
    }
    log.info("crop classifier: validation %s; thresholds %s; crop %s", metrics, thresholds, crop)
    contract = create_contract(
        cfg, labels, ctx.rule, model, trained_on=provenance(ctx, manifest_path)
    ).with_updates(temperature=cal.temperature, thresholds=thresholds, metrics=metrics, crop=crop)
    ckpt = save_checkpoint(ctx.run_dir / CHECKPOINT, model.cpu(), contract, config=cfg.to_dict())
    plot_curves(ctx.histories, ctx.run_dir / "curves.png")
    summary = {"val": metrics, "temperature": cal.temperature, "thresholds": thresholds, "crop": crop}
    write_json(ctx.run_dir / "metrics.json", {**summary, "seconds": ctx.seconds, "histories": ctx.histories})
    return ZoomResult(ctx.run_dir, ckpt, model, thresholds, metrics)
