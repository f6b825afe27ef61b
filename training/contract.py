"""The one place a training run creates its :class:`~data.contract.ModelContract`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from data.contract import BOX_OUTPUT, DEFAULT_OUTPUTS, DETECTOR_OUTPUT_SPECS, ModelContract
from data.labels import LabelSet
from data.preprocess import ResizeRule
from model.detector import CamidDetector
from model.ensemble import CamidEnsemble
from model.factory import CamidNet
from training.config import TrainConfig


def model_name(arch: str) -> str:
    """``efficientnet_lite0`` -> ``camid-effnet-lite0``; other architectures keep their name."""
    return "camid-" + arch.replace("efficientnet_", "effnet-").replace("_", "-")


def create_contract(
    cfg: TrainConfig,
    labels: LabelSet,
    rule: ResizeRule,
    model: CamidNet | CamidEnsemble | CamidDetector,
    *,
    trained_on: Mapping[str, Any] | None = None,
) -> ModelContract:
    """The contract of a model being trained (temperature and thresholds come with calibration)."""
    mean = tuple(round(float(v) / 255, 6) for v in model.pixel_mean.flatten().tolist())
    std = tuple(round(float(v) / 255, 6) for v in model.pixel_std.flatten().tolist())
    extra: dict[str, Any] = {}
    if isinstance(model, CamidDetector):
        extra["outputs"] = DETECTOR_OUTPUT_SPECS
        extra["thresholds"] = {"flag": 0.8, "reject": 0.2, "camera": 0.3}
    elif isinstance(model, CamidNet) and model.box_head is not None:
        extra["outputs"] = (*DEFAULT_OUTPUTS, BOX_OUTPUT)
    return ModelContract(
        **extra,
        labels=labels,
        architecture=cfg.arch,
        resize=rule,
        mean=(mean[0], mean[1], mean[2]),
        std=(std[0], std[1], std[2]),
        name=model_name(cfg.arch) + (f"-x{len(model.members)}" if isinstance(model, CamidEnsemble) else ""),
        trained_on=dict(trained_on or {}),
    )
