"""camid checkpoints: one ``torch.save``d dict holding the weights and everything export needs.

Layout (``format_version`` 2)::

    {"format": "camid-checkpoint", "format_version": 1,
     "state_dict": CamidNet.state_dict(),
     "meta": {"contract": ModelContract.to_json(), "num_classes", "drop_rate", "config"},
     "extra": {...}}  # e.g. optimizer state, epoch: tensors, numbers, strings, lists, dicts only

Loading never touches the network: the model is built with ``pretrained=None`` and filled in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from data.contract import ContractError, ModelContract
from data.files import atomic_write
from model.detector import CamidDetector
from model.ensemble import CamidEnsemble
from model.factory import CamidNet, create_detector, create_model

Classifier = CamidNet | CamidEnsemble
AnyModel = CamidNet | CamidEnsemble | CamidDetector

FORMAT = "camid-checkpoint"
FORMAT_VERSION = 2


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint holds besides the weights: the model's contract, the run config, extras."""

    contract: ModelContract
    config: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)


def save_checkpoint(
    path: str | Path,
    model: AnyModel,
    contract: ModelContract,
    *,
    config: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` and its contract to ``path`` atomically (temp file, fsync, rename)."""
    classes = contract.labels.cameras if isinstance(model, CamidDetector) else contract.labels.names
    if len(classes) != model.num_classes:
        raise ValueError(
            f"{len(classes)} labels in the contract for a model with {model.num_classes} outputs"
        )
    meta: dict[str, Any] = {
        "contract": contract.to_json(),
        "num_classes": model.num_classes,
        "config": dict(config or {}),
    }
    if isinstance(model, CamidDetector):
        meta.update(model="detector", width=model.classifier.in_channels)
    elif isinstance(model, CamidEnsemble):
        meta.update(model="ensemble", members=len(model.members), drop_rate=float(model.dropout.p))
    else:
        meta.update(model="classifier", drop_rate=float(model.dropout.p), box_head=model.box_head is not None)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    obj = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "state_dict": state,
        "meta": meta,
        "extra": dict(extra or {}),
    }
    out = Path(path)
    atomic_write(out, lambda f: torch.save(obj, f))
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


def meta_from_dict(
    meta: Mapping[str, Any], extra: Mapping[str, Any] | None = None, where: str = "checkpoint"
) -> CheckpointMeta:
    """Build :class:`CheckpointMeta` from the ``meta`` dict stored in a checkpoint."""
    if "contract" not in meta:
        raise ContractError(
            f"{where}: written by a camid from before the model contract (no targets stored); "
            "retrain it with `camid train`"
        )
    return CheckpointMeta(
        contract=ModelContract.from_json(meta["contract"], where),
        config=dict(meta.get("config", {})),
        extra=dict(extra or {}),
    )


def load_checkpoint(path: str | Path) -> tuple[Classifier, CheckpointMeta]:
    """The classifier or ensemble of classifiers (in eval mode, on CPU) and its metadata; never
    needs the network."""
    model, info = load_any_checkpoint(path)
    if not isinstance(model, (CamidNet, CamidEnsemble)):
        raise ValueError(f"{path}: a camera detector checkpoint, not a photo classifier")
    return model, info


def load_any_checkpoint(path: str | Path) -> tuple[AnyModel, CheckpointMeta]:
    """The classifier or detector (in eval mode, on CPU) and its metadata."""
    obj = read_checkpoint(path)
    meta = obj["meta"]
    info = meta_from_dict(meta, obj.get("extra"), str(path))
    model: AnyModel
    if meta.get("model") == "detector":
        model = create_detector(
            info.contract.architecture,
            num_classes=int(meta["num_classes"]),
            pretrained=None,
            width=int(meta["width"]),
        )
    else:
        members = [
            create_model(
                info.contract.architecture,
                num_classes=int(meta["num_classes"]),
                pretrained=None,
                drop_rate=float(meta.get("drop_rate", 0.2)),
                box_head=bool(meta.get("box_head", False)),
            )
            for _ in range(int(meta.get("members", 1)))
        ]
        model = CamidEnsemble(members) if meta.get("model") == "ensemble" else members[0]
    model.load_state_dict(obj["state_dict"], strict=True)
    model.eval()
    return model, info
