"""The inference engine: an exported camid ONNX file run by onnxruntime (numpy + Pillow only).

Photos go through :func:`data.preprocess.prepare` (the rule training evaluates with), the model's
logits through the temperature-scaled softmax and the flag/review/reject rule of
:mod:`data.decision`. Everything the engine needs to know comes from the file's metadata.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image

from data.contract import ContractError, ModelContract
from data.decision import Decision, decide, scores_json, softmax
from data.dedup import sha256_file
from data.detection import DETECTOR_OUTPUTS, Box, Camera, decode_cameras, photo_verdict
from data.preprocess import decode_hint, input_to_photo, prepare
from data.zoom import (
    ZoomSettings,
    crop_inputs,
    refine_proposals,
    top_proposals,
    zoom_cameras,
)
from serve.heatmap import heatmap_overlay

log = logging.getLogger(__name__)

RELEASE_NAME = "camid-default.onnx"


def default_model_path() -> Path:
    """``<model package>/release/camid-default.onnx``, found without importing ``model`` (torch)."""
    spec = importlib.util.find_spec("model")
    if spec is not None and spec.origin is not None:
        return Path(spec.origin).parent / "release" / RELEASE_NAME
    return Path(__file__).resolve().parents[1] / "model" / "release" / RELEASE_NAME


class ModelError(RuntimeError):
    """The model file is missing, unreadable, or lacks camid metadata."""


def parse_metadata(props: Mapping[str, str], where: str = "model") -> ModelContract:
    """The :class:`ModelContract` stored in an exported file's ``camid.*`` metadata."""
    try:
        return ModelContract.from_metadata_props(props, where)
    except ContractError as exc:
        raise ModelError(str(exc)) from exc


def physical_cores() -> int:
    """Physical cores available to this process (hyper-threads do not help ORT's conv kernels)."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or available
    except ImportError:
        physical = max(1, (os.cpu_count() or 2) // 2)
    return max(1, min(available, physical))


def session_options(threads: int | None = None, fold_weights: bool = False) -> ort.SessionOptions:
    """intra-op = ``threads`` (default: physical cores), inter-op 1, all graph optimisations;
    ``fold_weights`` (an ``int8-weights`` export) folds each weight's DequantizeLinear into a float
    weight at load, so the convolutions are fused and run as fast as fp32 (else onnxruntime keeps
    them as quantisation units and dequantises every weight on every run: 4x slower)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or physical_cores()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    # idle intra-op threads sleep instead of spinning: photos are decoded beside the model, in the
    # same cores, and a spinning thread takes a decoder's time slice
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if fold_weights:
        opts.add_session_config_entry("session.disable_quant_qdq", "1")
    return opts


@dataclass(frozen=True)
class Prediction:
    """One photo's result: calibrated probabilities (sorted), top label, decision, optional heatmap."""

    label: str
    confidence: float
    decision: Decision
    probabilities: tuple[tuple[str, float], ...]
    heatmap_png: bytes | None = None
    cameras: tuple[Camera, ...] = ()
    # with ``classify(candidate_threshold=)``: the cameras at that lower threshold, from the same
    # model outputs (evaluation's AP and recall-at-false curves); never part of a result
    candidates: tuple[Camera, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"label","confidence","decision","probabilities","cameras"[, "heatmap_png" (base64)]}``."""
        out: dict[str, Any] = {
            "label": self.label,
            "confidence": self.confidence,
            "decision": self.decision,
            "probabilities": scores_json(self.probabilities),
            "cameras": [c.to_json() for c in self.cameras],
        }
        if self.heatmap_png is not None:
            out["heatmap_png"] = base64.b64encode(self.heatmap_png).decode("ascii")
        return out


def build_result(
    prediction: Prediction,
    info: ModelContract,
    *,
    width: int,
    height: int,
    sha256: str,
    phash: str,
    location: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The full classification result of ARCHITECTURE.md for one photo."""
    return {
        **prediction.to_json(),
        "model": {"name": info.name, "version": info.version},
        "image": {"width": width, "height": height, "sha256": sha256, "phash": phash},
        "location": dict(location) if location is not None else None,
    }


@dataclass(frozen=True)
class ZoomStage:
    """The crop classifier of a look-then-zoom pair (``data/zoom.py``): session, contract, settings."""

    session: ort.InferenceSession
    info: ModelContract
    settings: ZoomSettings
    path: Path


def open_session(path: Path, threads: int | None = None, hint: str = "") -> ort.InferenceSession:
    """An onnxruntime CPU session of ``path``; :class:`ModelError` (ending with ``hint``) if it fails.
    A model whose contract says ``int8-weights`` is reopened with its weights folded (see
    :func:`session_options`)."""
    try:
        session = ort.InferenceSession(
            str(path), session_options(threads), providers=["CPUExecutionProvider"]
        )
        if session.get_modelmeta().custom_metadata_map.get("camid.precision") == json.dumps("int8-weights"):
            session = ort.InferenceSession(
                str(path), session_options(threads, fold_weights=True), providers=["CPUExecutionProvider"]
            )
        return session
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"{path}: not a loadable ONNX model ({exc}){hint}") from exc


def load_zoom_stage(detector: Path, info: ModelContract, threads: int | None = None) -> ZoomStage:
    """The companion crop classifier named in a detector's ``zoom`` contract, checked by sha256."""
    assert info.zoom is not None
    path = detector.parent / str(info.zoom.get("file", ""))
    fix = f"export the pair again (`camid export --checkpoint DETECTOR --zoom ZOOM --out {detector}`)"
    if not path.is_file():
        raise ModelError(
            f"{detector}: its crop classifier {path} is missing; keep it beside the detector or {fix}"
        )
    if sha256_file(path) != info.zoom.get("sha256"):
        raise ModelError(
            f"{path}: not the crop classifier {detector} was exported with (sha256 differs); {fix}"
        )
    session = open_session(path, threads, f"; {fix}")
    crop = parse_metadata(session.get_modelmeta().custom_metadata_map, str(path))
    if crop.task != "classify" or not crop.is_crop_classifier or crop.names != info.names:
        raise ModelError(f"{path}: not a crop classifier with the classes of {detector}; {fix}")
    try:
        settings = ZoomSettings.from_json(info.zoom)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{detector}: malformed zoom settings ({exc}); {fix}") from exc
    if settings.refine and "box" not in {o.name for o in session.get_outputs()}:
        raise ModelError(f"{path}: the pair refines boxes but this crop classifier has no box output; {fix}")
    return ZoomStage(session, crop, settings, path)


class Engine:
    """An onnxruntime session plus the model's metadata; thread-safe for concurrent ``classify``.

    A detector exported with a crop classifier (``camid export --zoom``) carries it as ``zoom``:
    the detector proposes, the crop classifier decides (``data/zoom.py``).
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        info: ModelContract,
        path: Path | None = None,
        zoom: ZoomStage | None = None,
    ) -> None:
        self.session = session
        self.info = info
        self.path = path
        self.zoom = zoom
        self._targets = set(info.targets)

    @property
    def min_side(self) -> int:
        """The shorter side to decode photos at (JPEG draft): the model input's need, or the zoom
        stage's ``decode_side`` when it needs more. Callers pass it to ``load_image(min_side=)``."""
        hint = decode_hint(self.info.resize)
        return max(hint, self.zoom.settings.decode_side) if self.zoom is not None else hint

    @classmethod
    def load(cls, path: str | Path, threads: int | None = None) -> Engine:
        """Open an exported camid model; :class:`ModelError` says what is wrong and how to fix it."""
        p = Path(path)
        if not p.is_file():
            raise ModelError(f"model file not found: {p}; export one with `camid export` or pass --model")
        session = open_session(p, threads)
        info = parse_metadata(session.get_modelmeta().custom_metadata_map, str(p))
        zoom = load_zoom_stage(p, info, threads) if info.zoom is not None and info.task == "detect" else None
        log.info(
            "loaded %s %s (%s, %d classes%s) from %s",
            info.name,
            info.version,
            info.precision,
            len(info.names),
            f", zoom stage {zoom.path.name}" if zoom is not None else "",
            p,
        )
        return cls(session, info, p, zoom)

    def prepare(self, images: Sequence[Image.Image]) -> np.ndarray:
        """The uint8 ``[N,3,S,S]`` batch fed to the model (``data.preprocess.prepare`` per photo)."""
        return np.stack([prepare(img, self.info.resize) for img in images])

    def run(self, batch: np.ndarray, cam: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw model outputs for a prepared batch: ``(logits [N,C], cam [N,C,h,w] or None)``."""
        if not cam:
            (logits,) = self.session.run(["logits"], {"image": batch})
            return np.asarray(logits), None
        logits, cams = self.session.run(["logits", "cam"], {"image": batch})
        return np.asarray(logits), np.asarray(cams)

    def predict_logits(self, logits: np.ndarray) -> list[Prediction]:
        """Calibrated, sorted probabilities and decisions for raw logits ``[N,C]``."""
        probs = softmax(logits, self.info.temperature)
        return [self._prediction(p) for p in probs]

    def _prediction(self, probs: np.ndarray, heatmap_png: bytes | None = None) -> Prediction:
        labels = self.info.names
        order = sorted(range(len(labels)), key=lambda i: -probs[i])
        decision = decide(probs, labels, self._targets, self.info.thresholds)
        ranked = tuple((labels[i], float(probs[i])) for i in order)
        return Prediction(ranked[0][0], ranked[0][1], decision, ranked, heatmap_png)

    def classify(
        self,
        images: Sequence[Image.Image],
        heatmap: bool = False,
        batch_size: int = 8,
        sizes: Sequence[tuple[int, int]] | None = None,
        candidate_threshold: float | None = None,
    ) -> list[Prediction]:
        """Classify decoded photos (RGB PIL images), ``batch_size`` at a time; results in order.

        ``sizes``: each photo's original ``(width, height)`` when it was decoded smaller (JPEG
        draft), so that camera boxes come back in the original photo's pixels.
        ``candidate_threshold`` (detectors): also decode the same outputs at this lower camera
        threshold into ``Prediction.candidates``; the served cameras and verdicts are unchanged.
        """
        if self.info.task == "detect":
            sizes = sizes or [img.size for img in images]
            return self._detect(images, heatmap, batch_size, sizes, candidate_threshold)
        results: list[Prediction] = []
        for start in range(0, len(images), batch_size):
            batch = self.prepare(images[start : start + batch_size])
            logits, cams = self.run(batch, cam=heatmap)
            probs = softmax(logits, self.info.temperature)
            for i, p in enumerate(probs):
                cam = cams[i, int(p.argmax())] if cams is not None else None
                png = heatmap_overlay(cam, images[start + i], self.info.resize) if cam is not None else None
                results.append(self._prediction(p, png))
        return results

    def _detect(
        self,
        images: Sequence[Image.Image],
        heatmap: bool,
        batch_size: int,
        sizes: Sequence[tuple[int, int]],
        candidate_threshold: float | None,
    ) -> list[Prediction]:
        info, results = self.info, []
        for start in range(0, len(images), batch_size):
            batch = self.prepare(images[start : start + batch_size])
            heat, scores, cls, boxes = self.session.run(list(DETECTOR_OUTPUTS), {"image": batch})
            for i in range(len(batch)):
                w, h = sizes[start + i]
                # the cameras at a threshold, from this photo's outputs: one model run serves both
                # the served cameras and the low-threshold candidates
                cameras_at: Callable[..., tuple[list[Camera], Camera | None]]
                if self.zoom is not None:
                    proposals, probs = self._zoom(
                        images[start + i], (w, h), np.asarray(scores[i]), np.asarray(boxes[i])
                    )
                    cameras_at = functools.partial(zoom_cameras, proposals, probs, info.labels)
                else:
                    cameras_at = functools.partial(
                        decode_cameras, np.asarray(scores[i]), np.asarray(cls[i]), np.asarray(boxes[i]),
                        labels=info.labels, temperature=info.temperature,
                        to_photo=functools.partial(input_to_photo, width=w, height=h, rule=info.resize),
                    )  # fmt: skip
                cams, miss = cameras_at(threshold=info.thresholds["camera"])
                v = photo_verdict(cams, miss, info.labels, dict(info.thresholds))
                png = (
                    heatmap_overlay(np.asarray(heat[i]), images[start + i], info.resize) if heatmap else None
                )
                weak = None
                if candidate_threshold is not None:
                    weak = tuple(cameras_at(threshold=candidate_threshold)[0])
                results.append(
                    Prediction(v.label, v.confidence, v.decision, v.probabilities, png, tuple(cams), weak)
                )
        return results

    def _zoom(
        self, image: Image.Image, size: tuple[int, int], scores: np.ndarray, boxes: np.ndarray
    ) -> tuple[list[Box], np.ndarray]:
        """The look-then-zoom proposals of one photo (boxes in photo pixels: the detector's, or the
        crop classifier's with ``refine``) and the crop classifier's probabilities for each
        (``data/zoom.py``)."""
        assert self.zoom is not None
        zoom, (w, h) = self.zoom, size
        picked = top_proposals(scores, zoom.settings)
        photo_boxes: list[Box] = [
            input_to_photo((float(b[0]), float(b[1]), float(b[2]), float(b[3])), w, h, self.info.resize)
            for b in boxes[picked]
        ]
        crops = crop_inputs(image, photo_boxes, size, zoom.settings, zoom.info.resize.size)
        if not len(crops):
            return photo_boxes, np.zeros((0, len(self.info.names)))
        if zoom.settings.refine:
            logits, offsets = zoom.session.run(["logits", "box"], {"image": crops})
            photo_boxes = refine_proposals(photo_boxes, np.asarray(offsets), size, zoom.settings)
        else:
            (logits,) = zoom.session.run(["logits"], {"image": crops})
        return photo_boxes, softmax(np.asarray(logits), zoom.info.temperature)
