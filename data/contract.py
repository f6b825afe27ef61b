"""The model contract: every fact about a trained model, in one frozen, torch-free dataclass.

Training creates a :class:`ModelContract`, the checkpoint stores its JSON, export writes the same
JSON into the ONNX file's ``metadata_props`` (one ``camid.<field>`` key per field), and the
engine, ``camid predict``, evaluation of an ONNX file, the store and ``GET /v1/model`` read it
back with :meth:`ModelContract.from_metadata_props`. A loaded model never consults
``data/labels.yaml``: its classes, with their target flags, travel inside the contract.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from data.labels import FORM_FACTORS, ClassInfo, LabelSet
from data.preprocess import ResizeRule

CONTRACT_VERSION = 1
PREFIX = "camid."
DEFAULT_THRESHOLDS: Mapping[str, float] = {"flag": 0.8, "reject": 0.2}
# ImageNet statistics as fractions of 255 (timm's IMAGENET_DEFAULT_MEAN / _STD)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ContractError(ValueError):
    """A contract (in a checkpoint or an ONNX file) is missing or malformed; says how to fix it."""


@dataclass(frozen=True)
class Output:
    """One named model output and its shape (symbolic axes as strings)."""

    name: str
    shape: tuple[str, ...]
    description: str = ""


DEFAULT_OUTPUTS = (
    Output("logits", ("N", "C"), "raw class scores; softmax(logits / temperature) is calibrated"),
    Output("cam", ("N", "C", "h", "w"), "class-activation map: where the model looked, per class"),
)

BOX_OUTPUT = Output(
    "box", ("N", "4"), "a crop classifier's box of the crop's object: centre offset, log width, log height"
)

DETECTOR_OUTPUT_SPECS = (
    Output("objectness", ("N", "h", "w"), "camera probability per stride-8 cell: where the model looked"),
    Output("scores", ("N", "M"), "camera probability at local peaks (0 elsewhere), M = h*w cells"),
    Output("class_logits", ("N", "M", "K"), "camera-class logits per cell; K = the camera classes"),
    Output("boxes", ("N", "M", "4"), "x0, y0, x1, y1 per cell in model-input pixels"),
)


@dataclass(frozen=True)
class ModelContract:
    """What a model is, how to feed it and how to read its outputs (see the module docstring)."""

    labels: LabelSet
    architecture: str
    resize: ResizeRule = field(default_factory=ResizeRule)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    outputs: tuple[Output, ...] = DEFAULT_OUTPUTS
    temperature: float = 1.0
    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    name: str = "camid"
    version: str = "dev"
    precision: str = "fp32"
    trained_on: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    # a crop classifier (look-then-zoom): the crop geometry of data.crops and the pair's settings
    crop: Mapping[str, Any] | None = None
    # a detector paired with a crop classifier: its companion file and the pair's settings
    zoom: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ContractError(f"temperature must be > 0, got {self.temperature}")
        missing = [k for k in DEFAULT_THRESHOLDS if k not in self.thresholds]
        if missing:
            raise ContractError(f"thresholds need {', '.join(missing)}; got {dict(self.thresholds)}")
        # an undefined metric (e.g. F1 of a class never predicted) is null: JSON has no NaN
        object.__setattr__(self, "metrics", _nan_to_none(dict(self.metrics)))

    @property
    def names(self) -> tuple[str, ...]:
        return self.labels.names

    @property
    def targets(self) -> tuple[str, ...]:
        return self.labels.targets

    @property
    def task(self) -> str:
        """``detect`` for a camera detector (boxes per camera), ``classify`` for a photo classifier."""
        return "detect" if any(o.name == "boxes" for o in self.outputs) else "classify"

    @property
    def is_crop_classifier(self) -> bool:
        """A classifier of square crops around proposals (``camid train --mode zoom``)."""
        return self.crop is not None

    @property
    def input_size(self) -> int:
        return self.resize.size

    def with_updates(self, **changes: Any) -> ModelContract:
        """A copy with some fields replaced (``dataclasses.replace``)."""
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values, one per field (``targets`` and ``input_size`` derived, for readers)."""
        return {
            "contract_version": CONTRACT_VERSION,
            "labels": [_class_json(c) for c in self.labels],
            "targets": list(self.targets),
            "architecture": self.architecture,
            "input_size": [3, self.resize.size, self.resize.size],
            "resize": self.resize.to_json(),
            "normalisation": {"mean": list(self.mean), "std": list(self.std), "scale": 255},
            "outputs": [
                {"name": o.name, "shape": list(o.shape), "description": o.description} for o in self.outputs
            ],
            "temperature": self.temperature,
            "thresholds": dict(self.thresholds),
            "name": self.name,
            "version": self.version,
            "precision": self.precision,
            "trained_on": dict(self.trained_on),
            "metrics": dict(self.metrics),
            **({"crop": dict(self.crop)} if self.crop is not None else {}),
            **({"zoom": dict(self.zoom)} if self.zoom is not None else {}),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], where: str = "model") -> ModelContract:
        """Inverse of :meth:`to_json`; :class:`ContractError` names what is missing and where."""
        missing = [k for k in ("labels", "architecture", "resize") if k not in doc]
        if missing:
            raise ContractError(f"{where}: contract lacks {', '.join(missing)}")
        version = int(doc.get("contract_version", 0))
        if version > CONTRACT_VERSION:
            raise ContractError(
                f"{where}: contract version {version} is newer than this camid; upgrade camid"
            )
        norm = doc.get("normalisation") or {}
        try:
            return cls(
                labels=_labels_from_json(doc["labels"], doc.get("targets"), where),
                architecture=str(doc["architecture"]),
                resize=ResizeRule.from_json(doc["resize"]),
                mean=_triple(norm.get("mean", IMAGENET_MEAN)),
                std=_triple(norm.get("std", IMAGENET_STD)),
                outputs=tuple(
                    Output(str(o["name"]), tuple(str(a) for a in o["shape"]), str(o.get("description", "")))
                    for o in doc.get("outputs", [])
                )
                or DEFAULT_OUTPUTS,
                temperature=float(doc.get("temperature", 1.0)),
                thresholds={str(k): float(v) for k, v in doc.get("thresholds", DEFAULT_THRESHOLDS).items()},
                name=str(doc.get("name", "camid")),
                version=str(doc.get("version", "dev")),
                precision=str(doc.get("precision", "fp32")),
                trained_on=dict(doc.get("trained_on", {})),
                metrics=dict(doc.get("metrics", {})),
                crop=_optional_mapping(doc.get("crop")),
                zoom=_optional_mapping(doc.get("zoom")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ContractError):
                raise
            raise ContractError(
                f"{where}: malformed model contract ({exc}); re-export with `camid export`"
            ) from exc

    def to_metadata_props(self) -> dict[str, str]:
        """ONNX ``metadata_props``: ``camid.<field>`` -> the field's JSON (the one encoding)."""
        return {PREFIX + k: json.dumps(v, sort_keys=True) for k, v in self.to_json().items()}

    @classmethod
    def from_metadata_props(cls, props: Mapping[str, str], where: str = "model") -> ModelContract:
        """Read the contract back from ``metadata_props`` (also those of models exported before it)."""
        if PREFIX + "labels" not in props:
            raise ContractError(
                f"{where}: no camid metadata (camid.labels missing); export the model with `camid export`"
            )
        try:
            doc = {k.removeprefix(PREFIX): json.loads(v) for k, v in props.items() if k.startswith(PREFIX)}
        except json.JSONDecodeError as exc:
            raise ContractError(
                f"{where}: camid metadata is not JSON ({exc}); re-export with `camid export`"
            ) from exc
        if "architecture" not in doc:  # exported before the contract: nothing else was missing then
            doc["architecture"] = "unknown"
        return cls.from_json(doc, where)


def contract_fields() -> tuple[str, ...]:
    """The dataclass field names (for tests comparing two contracts field by field)."""
    return tuple(f.name for f in fields(ModelContract))


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(v) for v in value]
    return value


def _optional_mapping(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a mapping, got {type(value).__name__}")
    return dict(value)


def _class_json(c: ClassInfo) -> dict[str, Any]:
    return {
        "name": c.name,
        "display_name": c.display_name,
        "form_factor": c.form_factor,
        "target": c.target,
        "description": c.description,
    }


def _labels_from_json(entries: Any, targets: Any, where: str) -> LabelSet:
    if not isinstance(entries, list) or not entries:
        raise ContractError(f"{where}: contract labels must be a non-empty list")
    if all(isinstance(e, str) for e in entries):
        # models exported before the contract: names only, targets listed apart
        if targets is None:
            raise ContractError(
                f"{where}: this model names its classes but not which are targets; "
                "re-export it with `camid export CHECKPOINT`"
            )
        wanted = {str(t) for t in targets}
        return LabelSet(tuple(ClassInfo(n, n, "none", n in wanted) for n in entries))
    classes = []
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            raise ContractError(f"{where}: each contract label needs a 'name' ({e!r})")
        ff = str(e.get("form_factor", "none"))
        if ff not in FORM_FACTORS:
            raise ContractError(f"{where}: label {e['name']!r} has unknown form factor {ff!r}")
        classes.append(
            ClassInfo(
                name=e["name"],
                display_name=str(e.get("display_name", e["name"])),
                form_factor=ff,
                target=bool(e.get("target", False)),
                description=str(e.get("description", "")),
            )
        )
    return LabelSet(tuple(classes))


def _triple(values: Any) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return (a, b, c)
