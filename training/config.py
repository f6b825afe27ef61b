"""Training configuration: one frozen dataclass, optionally read from YAML, saved next to each run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

Mode = Literal["fast", "finetune", "fewshot", "detect", "zoom"]
ClassBalance = Literal["loss", "sampler", "none"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a training run does; the resolved copy goes to ``config.yaml``.

    ``mode="fast"`` (CPU default): cache backbone features of ``views_per_image`` augmented views
    per training photo, fit the linear head on them, then optionally fine-tune the last
    ``finetune_blocks`` blocks. ``mode="finetune"``: full fine-tuning (AMP, EMA, DDP via torchrun).
    """

    arch: str = "efficientnet_lite0"
    pretrained: str | None = "imagenet"
    image_size: int = 224
    resize_mode: Literal["letterbox", "center_crop"] = "letterbox"
    mode: Mode = "fast"
    seed: int = 0
    labels_path: str | None = None
    # head training (fast path) / full fine-tuning epochs
    epochs: int = 40
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    class_balance: ClassBalance = "loss"
    patience: int = 8
    views_per_image: int = 4
    augment: bool = True
    # optional fine-tuning of the last blocks after the head (fast path)
    finetune_blocks: int = 0
    finetune_epochs: int = 3
    finetune_lr: float = 1e-4
    # full fine-tuning (GPU)
    amp: bool = True
    ema_decay: float = 0.0
    warmup_epochs: int = 1
    num_workers: int = 0
    # split fallback when the manifest has no split column
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    # calibration and decisions
    flag_precision: float = 0.97
    max_target_rejected: float = 0.02
    bootstrap: int = 1000
    # few-shot cross-validation
    fewshot_folds: int = 5
    # camera detector (mode=detect): image_size is the letterboxed input, e.g. 640
    det_crop: int = 384  # training windows cut from the input at serving scale
    det_box_windows: float = 0.0  # share of training windows placed to hold a box (else anywhere)
    det_paste_from: str | None = None  # manifest of rendered cutouts (camid data synth --cutouts)
    det_paste: float = 0.0  # share of training windows that get 1-3 cutouts pasted in
    det_paste_min_px: float = 5.0  # pasted cameras span this many input pixels ...
    det_paste_max_px: float = 48.0  # ... up to this many (log-uniform)
    det_freeze_blocks: int = 2  # backbone stages kept frozen (stem and stride-2/4 stages)
    det_width: int = 64  # channels of the fused stride-8 feature map
    det_false_per_photo: float = 0.1  # the camera threshold keeps false cameras per photo at most this
    # crop classifier of look-then-zoom (mode=zoom; see training/zoom.py and data/zoom.py)
    zoom_detector: str | None = None  # detector checkpoint: hard negatives + calibration of the pair
    zoom_context: float = 2.0  # crop side = context x the box's longer side (data.crops)
    zoom_min_px: float = 24.0  # ... and at least this many photo pixels
    zoom_backgrounds: int = 3  # random no-camera squares per training photo
    zoom_decode_side: int = 1440  # photos are decoded with the shorter side >= this for crops
    zoom_max_proposals: int = 10  # the detector's top-K peaks that are zoomed into
    zoom_propose: float | None = None  # lowest detector score zoomed into; None: measured on val
    zoom_paste_from: str | None = None  # cutouts manifest (camid data synth --cutouts) ...
    zoom_paste: int = 0  # ... this many training crops per photo with a cutout pasted in the middle
    zoom_refine: bool = False  # a box head: the crop classifier also reads the camera's box off the crop
    # an ensemble (mode=finetune): this many runs, seeds seed, seed+1, ..., on the same split, as
    # one model averaging their probabilities, calibrated on validation (training/ensemble.py)
    members: int = 1
    # knowledge distillation (mode=finetune): teacher checkpoints whose mean probabilities the
    # model learns besides the labels (training/distill.py), and the share of that soft loss
    distill_from: list[str] = field(default_factory=list)
    distill_weight: float = 0.7
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML/JSON-safe) of every field."""
        return dataclasses.asdict(self)


# mode=zoom starts from these (a file or CLI flag still wins): small crops, full fine-tuning
ZOOM_DEFAULTS: dict[str, Any] = {
    "image_size": 128, "epochs": 6, "lr": 1e-3, "batch_size": 48, "patience": 3, "warmup_epochs": 1,
}  # fmt: skip


def config_fields() -> set[str]:
    """Names a config file or override may set."""
    return {f.name for f in dataclasses.fields(TrainConfig)}


def resolve_config(path: Path | None = None, **overrides: Any) -> TrainConfig:
    """Defaults, then the YAML file at ``path``, then non-None ``overrides`` (CLI flags)."""
    values: dict[str, Any] = {}
    if path is not None:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: expected a mapping of config keys, got {type(doc).__name__}")
        values.update(doc)
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(values) - config_fields())
    if unknown:
        raise ValueError(
            f"unknown config key(s) {', '.join(unknown)}; known: {', '.join(sorted(config_fields()))}"
        )
    if values.get("mode") == "zoom":
        values = {**ZOOM_DEFAULTS, **values}
    if isinstance(values.get("pretrained"), str) and values["pretrained"].lower() == "none":
        values["pretrained"] = None
    config = TrainConfig(**values)
    check_config(config)
    return config


def check_config(config: TrainConfig) -> None:
    """Raise ValueError naming the field and the accepted range for impossible settings."""
    if config.mode not in ("fast", "finetune", "fewshot", "detect", "zoom"):
        raise ValueError(f"mode {config.mode!r}: use fast, finetune, fewshot, detect or zoom")
    if config.zoom_context < 1.0 or config.zoom_backgrounds < 0 or config.zoom_max_proposals < 1:
        raise ValueError(
            f"zoom_context={config.zoom_context}, zoom_backgrounds={config.zoom_backgrounds}, "
            f"zoom_max_proposals={config.zoom_max_proposals}: use context >= 1, backgrounds >= 0, "
            "max_proposals >= 1"
        )
    if config.mode == "detect" and (config.image_size % 32 or config.det_crop % 32):
        raise ValueError(
            f"image_size={config.image_size}, det_crop={config.det_crop}: the detector needs multiples of 32"
        )
    if config.class_balance not in ("loss", "sampler", "none"):
        raise ValueError(f"class_balance {config.class_balance!r}: use loss, sampler or none")
    if not 0 <= config.finetune_blocks <= 2:
        raise ValueError(f"finetune_blocks={config.finetune_blocks}: use 0, 1 or 2")
    if config.image_size < 32:
        raise ValueError(f"image_size={config.image_size}: use at least 32")
    if config.views_per_image < 1:
        raise ValueError(f"views_per_image={config.views_per_image}: use at least 1")
    if not 0.5 <= config.flag_precision <= 1.0:
        raise ValueError(f"flag_precision={config.flag_precision}: use a value in [0.5, 1]")
    if not 0.0 <= config.det_box_windows <= 1.0:
        raise ValueError(f"det_box_windows={config.det_box_windows}: use a share in [0, 1]")
    if not 0.0 <= config.det_paste <= 1.0 or (config.det_paste > 0) != bool(config.det_paste_from):
        raise ValueError(
            f"det_paste={config.det_paste}, det_paste_from={config.det_paste_from!r}: "
            "give both (a share in [0, 1] and a cutouts manifest) or neither"
        )
    if config.zoom_paste < 0 or (config.zoom_paste > 0) != bool(config.zoom_paste_from):
        raise ValueError(
            f"zoom_paste={config.zoom_paste}, zoom_paste_from={config.zoom_paste_from!r}: "
            "give both (crops per photo >= 1 and a cutouts manifest) or neither"
        )
    if not 0 < config.det_paste_min_px <= config.det_paste_max_px:
        raise ValueError(
            f"det_paste_min_px={config.det_paste_min_px}, det_paste_max_px={config.det_paste_max_px}: "
            "need 0 < min <= max"
        )
    if config.members < 1 or (config.members > 1 and config.mode != "finetune"):
        raise ValueError(f"members={config.members}: use 1, or 2 and more with mode finetune")
    if config.distill_from and config.mode != "finetune":
        raise ValueError(
            f"distill_from needs mode finetune (the student trains every layer), not {config.mode}"
        )
    if not 0.0 <= config.distill_weight <= 1.0:
        raise ValueError(f"distill_weight={config.distill_weight}: use a share in [0, 1]")
    if not 0.0 <= config.max_target_rejected < 0.5:
        raise ValueError(f"max_target_rejected={config.max_target_rejected}: use [0, 0.5)")


def save_config(config: TrainConfig, path: Path) -> None:
    """Write the resolved config as YAML (the file ``resolve_config`` reads back)."""
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=True), encoding="utf-8")
