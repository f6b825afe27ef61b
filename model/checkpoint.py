"""camid checkpoints: one ``torch.save``d dict holding the weights and everything export needs.

Layout (``format_version`` 1)::

    {"format": "camid-checkpoint", "format_version": 1,
     "state_dict": CamidNet.state_dict(),
     "meta": {"arch", "num_classes", "drop_rate", "labels", "resize", "temperature",
              "thresholds", "metrics", "trained_on", "config", "version"},
     "extra": {...}}  # e.g. optimizer state, epoch: tensors, numbers, strings, lists, dicts only

Loading never touches the network: the model is built with ``pretrained=None`` and filled in.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from data.preprocess import ResizeRule
from model.factory import CamidNet, create_model

FORMAT = "camid-checkpoint"
FORMAT_VERSION = 1
DEFAULT_THRESHOLDS: Mapping[str, float] = {"flag": 0.8, "reject": 0.2}


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint says about its model besides the weights."""

    arch: str
    labels: tuple[str, ...]
    resize: ResizeRule
    temperature: float = 1.0
    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    metrics: Mapping[str, Any] = field(default_factory=dict)
    trained_on: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    version: str = "dev"
    extra: Mapping[str, Any] = field(default_factory=dict)


def _atomic_torch_save(obj: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(
    path: str | Path,
    model: CamidNet,
    *,
    arch: str,
    labels: Sequence[str],
    resize: ResizeRule,
    temperature: float = 1.0,
    thresholds: Mapping[str, float] | None = None,
    metrics: Mapping[str, Any] | None = None,
    trained_on: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    version: str = "dev",
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` and its metadata to ``path`` atomically (temp file + ``os.replace``)."""
    if len(labels) != model.num_classes:
        raise ValueError(f"{len(labels)} labels for a model with {model.num_classes} outputs")
    meta = {
        "arch": arch,
        "num_classes": model.num_classes,
        "drop_rate": float(model.dropout.p),
        "labels": list(labels),
        "resize": resize.to_json(),
        "temperature": float(temperature),
        "thresholds": dict(thresholds if thresholds is not None else DEFAULT_THRESHOLDS),
        "metrics": dict(metrics or {}),
        "trained_on": dict(trained_on or {}),
        "config": dict(config or {}),
        "version": version,
    }
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    obj = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "state_dict": state,
        "meta": meta,
        "extra": dict(extra or {}),
    }
    out = Path(path)
    _atomic_torch_save(obj, out)
    return out


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict, checked for format (weights_only: never runs pickled code)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint not found: {p}")
    obj = torch.load(p, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ValueError(f"{p}: not a camid checkpoint (write one with model.checkpoint.save_checkpoint)")
    if obj.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{p}: checkpoint format {obj['format_version']} is newer than this camid; upgrade camid"
        )
    return obj


def meta_from_dict(meta: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> CheckpointMeta:
    """Build :class:`CheckpointMeta` from the ``meta`` dict stored in a checkpoint."""
    return CheckpointMeta(
        arch=str(meta["arch"]),
        labels=tuple(meta["labels"]),
        resize=ResizeRule.from_json(meta["resize"]),
        temperature=float(meta.get("temperature", 1.0)),
        thresholds=dict(meta.get("thresholds", DEFAULT_THRESHOLDS)),
        metrics=dict(meta.get("metrics", {})),
        trained_on=dict(meta.get("trained_on", {})),
        config=dict(meta.get("config", {})),
        version=str(meta.get("version", "dev")),
        extra=dict(extra or {}),
    )


def load_checkpoint(path: str | Path) -> tuple[CamidNet, CheckpointMeta]:
    """The model (in eval mode, on CPU) and its metadata; never needs the network."""
    obj = read_checkpoint(path)
    meta = obj["meta"]
    model = create_model(
        meta["arch"],
        num_classes=int(meta["num_classes"]),
        pretrained=None,
        drop_rate=float(meta.get("drop_rate", 0.2)),
    )
    model.load_state_dict(obj["state_dict"], strict=True)
    model.eval()
    return model, meta_from_dict(meta, obj.get("extra"))
