"""Export a camid checkpoint to a self-describing ONNX file, checked against torch before it is kept.

The graph takes ``image``: uint8 ``[N,3,S,S]`` (prepared by :func:`data.preprocess.prepare`) and
returns ``logits`` ``[N,C]`` and ``cam`` ``[N,C,h,w]`` (a crop classifier with a box head also
``box`` ``[N,4]``, see ``data.zoom.refined_boxes``); normalisation is inside. Everything the
server needs (labels, resize rule, temperature, thresholds ...) is in ``metadata_props`` as JSON.

Options: ``int8`` (onnxruntime static QDQ, per-channel, calibrated on a manifest's photos; kept
only when top-1 agreement with fp32 reaches ``min_agreement``) and ``fp16_weights`` (weights stored
as float16 and cast back to float32 when the session loads: half the file, fp32 compute).
"""

from __future__ import annotations

import copy
import io
import logging
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from torch import nn

from data.contract import ModelContract
from data.decision import softmax
from data.dedup import sha256_file
from data.detection import DETECTOR_OUTPUTS
from data.files import atomic_write
from data.images import ImageError, load_image
from data.labels import LabelSet
from data.manifest import read_manifest
from data.preprocess import decode_hint, prepare
from data.zoom import ZoomSettings, companion_path
from model.checkpoint import CheckpointMeta, Classifier, load_any_checkpoint
from model.detector import CamidDetector
from model.factory import CamidNet

log = logging.getLogger(__name__)

RELEASE_MAX_BYTES = 12_000_000
OPSET = 18
BOX_TOLERANCE = 1e-3  # box offsets are in crop sides: 1e-3 is a tenth of a pixel of a 96-px crop


class ExportError(RuntimeError):
    """The export could not produce a trustworthy file; nothing was written."""


class ParityError(ExportError):
    """onnxruntime and torch disagree beyond the tolerance."""


class QuantizationRefused(ExportError):
    """INT8 changed too many top-1 predictions; export without --int8 (or with --fp16-weights)."""


@dataclass(frozen=True)
class ExportReport:
    """What was written and how closely it matches torch."""

    path: Path
    size_bytes: int
    precision: str  # "fp32" | "int8" | "fp16-weights" | "int8-weights"
    parity_max_abs_softmax: float
    agreement: float  # top-1 agreement with torch fp32 on the parity / evaluation photos
    n_photos: int
    n_random: int


class _CamHead(nn.Module):
    """What the ONNX graph computes: ``image -> (logits, cam)``, or ``(logits, cam, box)`` for a
    crop classifier with a box head."""

    def __init__(self, model: Classifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        model = self.model
        if isinstance(model, CamidNet) and model.box_head is not None:
            feat = model.forward_features(image)
            cam = model.cam_from_features(feat)
            return cam.mean(dim=(2, 3)), cam, model.box_head(feat)
        return model.forward_cam(image)


def has_box_head(model: Classifier | CamidDetector) -> bool:
    """Whether ``model`` is a crop classifier that also outputs ``box``."""
    return isinstance(model, CamidNet) and model.box_head is not None


def to_onnx(
    model: Classifier | CamidDetector, size: int, *, exporter: str = "dynamo", opset: int = OPSET
) -> onnx.ModelProto:
    """Trace ``model`` (a deep copy, in eval mode) to ONNX with a dynamic batch axis; a classifier
    gives ``(logits, cam)``, a detector its decoded outputs (``data.detection.DETECTOR_OUTPUTS``)."""
    wrapper: nn.Module
    if isinstance(model, CamidDetector):
        wrapper = copy.deepcopy(model).cpu().eval()
        output_names = list(DETECTOR_OUTPUTS)
    else:
        wrapper = _CamHead(copy.deepcopy(model).cpu()).eval()  # eval: BN must not update or use batch stats
        output_names = ["logits", "cam", *(["box"] if has_box_head(model) else [])]
    example = (torch.zeros(2, 3, size, size, dtype=torch.uint8),)
    input_names = ["image"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            batch = torch.export.Dim("batch", min=1, max=4096)
            program = torch.onnx.export(
                wrapper,
                example,
                dynamo=True,
                opset_version=opset,
                dynamic_shapes=({0: batch},),
                verbose=False,
                input_names=input_names,
                output_names=output_names,
            )
            assert program is not None
            program.optimize()
            return program.model_proto
        if exporter == "legacy":
            buf = io.BytesIO()
            axes = {name: {0: "batch"} for name in [*input_names, *output_names]}
            torch.onnx.export(
                wrapper,
                example,
                buf,  # type: ignore[arg-type]  # torch annotates f as a path, the TorchScript exporter takes a file object
                dynamo=False,
                opset_version=min(opset, 17),
                dynamic_axes=axes,
                input_names=input_names,
                output_names=output_names,
            )
            return onnx.load_from_string(buf.getvalue())
    raise ValueError(f"exporter must be 'dynamo' or 'legacy', got {exporter!r}")


def metadata_for(contract: ModelContract, *, name: str, version: str, precision: str) -> dict[str, str]:
    """The ``metadata_props`` of the exported file: the checkpoint's contract, named and versioned."""
    return contract.with_updates(name=name, version=version, precision=precision).to_metadata_props()


def set_metadata(proto: onnx.ModelProto, props: dict[str, str]) -> None:
    """Replace ``camid.*`` metadata, keep everything else."""
    keep = [p for p in proto.metadata_props if p.key not in props]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    onnx.helper.set_model_props(proto, {**{p.key: p.value for p in keep}, **props})


def manifest_inputs(manifest_path: str | Path, contract: ModelContract, limit: int = 128) -> np.ndarray:
    """Up to ``limit`` photos of a manifest (spread evenly over it), prepared like serving does."""
    manifest = read_manifest(manifest_path)
    records = manifest.records
    if len(records) > limit:
        records = [records[i] for i in np.linspace(0, len(records) - 1, limit).round().astype(int)]
    arrays = []
    for rec in records:
        try:
            img = load_image(manifest.resolve(rec), min_side=decode_hint(contract.resize))
        except (ImageError, OSError) as exc:
            log.warning("skipping %s: %s", rec.path, exc)
            continue
        arrays.append(prepare(img, contract.resize))
    if not arrays:
        raise ExportError(f"{manifest_path}: no readable photos for parity/calibration")
    return np.stack(arrays)


def random_inputs(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Random uint8 images (uniform noise and smooth blobs) to probe parity off the photo manifold."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8)
    smooth = np.repeat(np.repeat(rng.integers(0, 256, (n, 3, 4, 4)), size // 4 + 1, 2), size // 4 + 1, 3)
    return np.concatenate([noise[: n - n // 2], smooth[: n // 2, :, :size, :size].astype(np.uint8)])


def _session(proto_bytes: bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(proto_bytes, opts, providers=["CPUExecutionProvider"])


def _batches(x: np.ndarray, size: int = 16) -> Iterator[np.ndarray]:
    for i in range(0, len(x), size):
        yield x[i : i + size]


def onnx_logits(proto_bytes: bytes, x: np.ndarray) -> np.ndarray:
    sess = _session(proto_bytes)
    return np.concatenate([sess.run(["logits"], {"image": b})[0] for b in _batches(x)])


def torch_logits(model: Classifier, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([model.eval()(torch.from_numpy(b)).numpy() for b in _batches(x)])


def box_difference(model: CamidNet, proto_bytes: bytes, x: np.ndarray) -> float:
    """Largest difference between onnxruntime's and torch's ``box`` outputs on ``x``."""
    sess, worst = _session(proto_bytes), 0.0
    with torch.no_grad():
        for b in _batches(x):
            _, ref = model.eval()(torch.from_numpy(b), boxes=True)
            (got,) = sess.run(["box"], {"image": b})
            worst = max(worst, float(np.abs(np.asarray(got) - ref.numpy()).max()))
    return worst


def compare(reference: np.ndarray, logits: np.ndarray, temperature: float) -> tuple[float, float]:
    """``(max |softmax difference|, top-1 agreement)`` between two logit arrays."""
    p, q = softmax(reference, temperature), softmax(logits, temperature)
    return float(np.abs(p - q).max()), float((p.argmax(1) == q.argmax(1)).mean())


class _Reader:
    """onnxruntime ``CalibrationDataReader`` over prepared uint8 photos."""

    def __init__(self, x: np.ndarray) -> None:
        self._it = iter([{"image": b} for b in _batches(x, 8)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def quantize_int8(proto: onnx.ModelProto, calibration: np.ndarray) -> onnx.ModelProto:
    """Static QDQ INT8 (per-channel weights, uint8 activations); the CAM head stays float."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    head = [n.name for n in proto.graph.node if set(n.output) & {"cam", "logits", "box"}]
    with tempfile.TemporaryDirectory() as tmp:
        src, pre, dst = Path(tmp, "fp32.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "int8.onnx")
        onnx.save(proto, src)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        pre_proto = onnx.load(pre)
        head += [n.name for n in pre_proto.graph.node if set(n.output) & {"cam", "logits", "box"}]
        quantize_static(
            str(pre),
            str(dst),
            _Reader(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=head,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
        return onnx.load(dst)


def fp16_weights(proto: onnx.ModelProto, min_elements: int = 1024) -> onnx.ModelProto:
    """Store large float32 initializers as float16, each followed by a Cast back to float32."""
    out = copy.deepcopy(proto)
    graph = out.graph
    casts = []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT or int(np.prod(init.dims)) < min_elements:
            continue
        name = init.name
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), f"{name}__fp16")
        init.CopyFrom(half)
        casts.append(onnx.helper.make_node("Cast", [half.name], [name], to=onnx.TensorProto.FLOAT))
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return out


def int8_weights(proto: onnx.ModelProto, min_elements: int = 1024) -> onnx.ModelProto:
    """Store large float32 weight tensors (2-D and more) as int8, symmetric per output channel,
    each followed by a DequantizeLinear back to float32: a quarter of the size, float compute
    (activations are not quantised, so the answers stay close to fp32's)."""
    out = copy.deepcopy(proto)
    graph = out.graph
    nodes, extra = [], []
    for init in graph.initializer:
        if (
            init.data_type != onnx.TensorProto.FLOAT
            or len(init.dims) < 2
            or int(np.prod(init.dims)) < min_elements
        ):
            continue
        name, w = init.name, numpy_helper.to_array(init)
        peak = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        q = np.clip(np.round(w / scale.reshape(-1, *([1] * (w.ndim - 1)))), -127, 127).astype(np.int8)
        init.CopyFrom(numpy_helper.from_array(q, f"{name}__int8"))
        extra += [
            numpy_helper.from_array(scale, f"{name}__scale"),
            numpy_helper.from_array(np.zeros(len(scale), dtype=np.int8), f"{name}__zero"),
        ]
        nodes.append(
            onnx.helper.make_node(
                "DequantizeLinear", [f"{name}__int8", f"{name}__scale", f"{name}__zero"], [name], axis=0
            )
        )
    graph.initializer.extend(extra)
    kept = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + kept)
    return out


def export_onnx(
    checkpoint: str | Path | tuple[Classifier, CheckpointMeta],
    out: str | Path,
    *,
    name: str | None = None,
    version: str | None = None,
    parity_manifest: str | Path | None = None,
    parity_images: np.ndarray | None = None,
    int8: bool = False,
    calibration: str | Path | None = None,
    evaluation: str | Path | None = None,
    fp16: bool = False,
    int8_weights_only: bool = False,
    tolerance: float = 1e-4,
    min_agreement: float = 0.99,
    exporter: str = "dynamo",
    n_random: int = 8,
) -> ExportReport:
    """Export, check and (only if every check passes) atomically write ``out``.

    Parity: fp32 softmax (with the checkpoint's temperature) may differ from torch by at most
    ``tolerance`` on the photos (``parity_images``, else ``parity_manifest``/``calibration``
    photos) plus ``n_random`` random images. INT8 and fp16 weights are kept only when top-1
    agreement with torch on the evaluation photos is at least ``min_agreement``.
    """
    model, ckpt_meta = load_any_checkpoint(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    if isinstance(model, CamidDetector):
        if int8:
            raise ExportError("--int8 is not available for camera detectors; use --fp16-weights or fp32")
        return export_detector(
            (model, ckpt_meta), out, name=name, version=version, exporter=exporter, tolerance=tolerance,
            fp16=fp16, evaluation=evaluation or parity_manifest or calibration, min_agreement=min_agreement,
        )  # fmt: skip
    model, meta = model.eval(), ckpt_meta.contract
    size = meta.resize.size
    photos = _photos(meta, parity_images, parity_manifest or evaluation or calibration)
    probe = np.concatenate([photos, random_inputs(n_random, size)]) if n_random else photos
    proto = to_onnx(model, size, exporter=exporter)
    onnx.checker.check_model(proto)
    reference = torch_logits(model, probe)
    diff, agreement = compare(reference, onnx_logits(proto.SerializeToString(), probe), meta.temperature)
    if diff > tolerance:
        raise ParityError(f"onnxruntime differs from torch by {diff:.2e} in softmax (> {tolerance:.0e})")
    if isinstance(model, CamidNet) and model.box_head is not None:
        box_diff = box_difference(model, proto.SerializeToString(), probe)
        if box_diff > BOX_TOLERANCE:
            raise ParityError(
                f"onnxruntime's box differs from torch's by {box_diff:.2e} (> {BOX_TOLERANCE:.0e})"
            )
    precision = "fp32"
    if int8 or fp16 or int8_weights_only:
        if int8 + fp16 + int8_weights_only > 1:
            raise ExportError("choose one of --int8, --fp16-weights and --int8-weights")
        proto, precision, diff, agreement = _reduce_precision(
            proto,
            model,
            meta,
            kind="int8" if int8 else "int8-weights" if int8_weights_only else "fp16-weights",
            calibration=calibration,
            evaluation=evaluation,
            photos=photos,
            min_agreement=min_agreement,
        )
    set_metadata(
        proto,
        metadata_for(meta, name=name or meta.name, version=version or meta.version, precision=precision),
    )
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    path = Path(out)
    atomic_write(path, lambda tmp: tmp.write_bytes(data))
    if len(data) > RELEASE_MAX_BYTES:
        log.warning(
            "%s is %.1f MB: over the 12 MB release budget (try --int8 or --fp16-weights)",
            path,
            len(data) / 1e6,
        )
    return ExportReport(path, len(data), precision, diff, agreement, len(photos), n_random)


def export_detector(
    checkpoint: str | Path | tuple[CamidDetector, CheckpointMeta],
    out: str | Path,
    *,
    name: str | None = None,
    version: str | None = None,
    exporter: str = "dynamo",
    tolerance: float = 1e-4,
    n_random: int = 4,
    fp16: bool = False,
    evaluation: str | Path | None = None,
    min_agreement: float = 0.99,
) -> ExportReport:
    """Export a camera detector after checking that onnxruntime's camera scores and boxes match
    torch's on random images; writes ``out`` atomically only when they do.

    With ``fp16``, the weights are stored as float16 and the file is kept only when the cameras it
    finds (:func:`detector_agreement`) are the fp32 model's on at least ``min_agreement`` of the
    ``evaluation`` manifest's photos (required) and the random images."""
    model, ckpt_meta = load_any_checkpoint(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    if not isinstance(model, CamidDetector):
        raise ExportError("export_detector: not a camera detector checkpoint; use export_onnx")
    meta = ckpt_meta.contract
    size = meta.resize.size
    proto = to_onnx(model, size, exporter=exporter)
    onnx.checker.check_model(proto)
    probe = random_inputs(n_random, size)
    ref = detector_outputs(model, probe)
    got = _session(proto.SerializeToString()).run(list(DETECTOR_OUTPUTS), {"image": probe})
    diff = max(
        float(np.abs(np.asarray(g) - r).max()) / max(1.0, float(np.abs(r).max()))
        for g, r in zip(got, ref, strict=True)
    )
    if diff > tolerance:
        raise ParityError(f"onnxruntime differs from torch by {diff:.2e} (relative, > {tolerance:.0e})")
    precision, agreement, n_photos = "fp32", 1.0, 0
    if fp16:
        if evaluation is None:
            raise ExportError("--fp16-weights needs photos to compare on: pass --eval MANIFEST")
        photos = manifest_inputs(evaluation, meta)
        held_out = np.concatenate([photos, probe])
        proto, precision = fp16_weights(proto), "fp16-weights"
        got = _session(proto.SerializeToString()).run(list(DETECTOR_OUTPUTS), {"image": held_out})
        agreement = detector_agreement(detector_outputs(model, held_out), got, _lowest_camera_score(meta))
        n_photos = len(photos)
        log.info("fp16-weights: fp32's cameras on %.1f%% of %d images", 100 * agreement, len(held_out))
        if agreement < min_agreement:
            raise QuantizationRefused(
                f"fp16-weights finds the fp32 model's cameras on only {100 * agreement:.1f}% of "
                f"{len(held_out)} images (needs {100 * min_agreement:.0f}%); export in fp32"
            )
    props = metadata_for(meta, name=name or meta.name, version=version or meta.version, precision=precision)
    set_metadata(proto, props)
    data = proto.SerializeToString()
    path = Path(out)
    atomic_write(path, lambda tmp: tmp.write_bytes(data))
    return ExportReport(path, len(data), precision, diff, agreement, n_photos, n_random)


def detector_outputs(model: CamidDetector, x: np.ndarray) -> list[np.ndarray]:
    """The detector's decoded outputs (``DETECTOR_OUTPUTS``) from torch, in batches."""
    parts: list[list[np.ndarray]] = []
    with torch.no_grad():
        for batch in _batches(x):
            parts.append([t.numpy() for t in model.eval()(torch.from_numpy(batch))])
    return [np.concatenate(column) for column in zip(*parts, strict=True)]


def detector_agreement(
    reference: list[np.ndarray], other: list[np.ndarray], threshold: float, box_px: float = 1.0
) -> float:
    """Share of images on which ``other`` finds the same cameras as ``reference``: the same peaks
    at or above ``threshold``, each with the same most likely class and a box within ``box_px``
    input pixels. Both are ``DETECTOR_OUTPUTS`` lists."""
    _, ref_scores, ref_classes, ref_boxes = reference
    _, scores, classes, boxes = (np.asarray(a) for a in other)
    same = []
    for n in range(len(ref_scores)):
        keep = ref_scores[n] >= threshold
        ok = bool(np.array_equal(keep, scores[n] >= threshold))
        if ok and keep.any():
            ok = bool(np.array_equal(ref_classes[n][keep].argmax(-1), classes[n][keep].argmax(-1)))
            ok = ok and float(np.abs(ref_boxes[n][keep] - boxes[n][keep]).max()) <= box_px
        same.append(ok)
    return float(np.mean(same)) if same else 1.0


def _lowest_camera_score(meta: ModelContract) -> float:
    """The lowest detector score the served pipeline acts on: the zoom stage's proposal threshold
    for a look-then-zoom pair, else the camera threshold."""
    if meta.zoom is not None:
        return ZoomSettings.from_json(meta.zoom).propose
    return float(meta.thresholds["camera"])


def zoom_contract(detector: ModelContract, crop: ModelContract, file: Path) -> ModelContract:
    """The detector's contract paired with the crop classifier in ``file``: the ``zoom`` settings
    (file name, sha256, crop geometry, proposals, decode side) and the pair's calibrated
    thresholds (the detector's own are kept under ``zoom["detector_thresholds"]``)."""
    check_pair(detector, crop)
    assert crop.crop is not None
    settings = ZoomSettings.from_json(crop.crop)
    pair = {k: float(v) for k, v in crop.thresholds.items() if k in ("camera", "flag", "reject")}
    zoom = {
        **settings.to_json(),
        "file": file.name,
        "sha256": sha256_file(file),
        "detector_thresholds": dict(detector.thresholds),
        "calibrated_with_detector": crop.crop.get("calibrated_with_detector"),
    }
    metrics = {**detector.metrics, "zoom": dict(crop.metrics)}
    return detector.with_updates(zoom=zoom, thresholds={**detector.thresholds, **pair}, metrics=metrics)


def check_pair(detector: ModelContract, crop: ModelContract) -> None:
    """Raise :class:`ExportError` unless ``crop`` is a crop classifier that fits ``detector``."""
    if detector.task != "detect":
        raise ExportError("--zoom: --checkpoint must be a camera detector (`camid train --mode detect`)")
    if crop.crop is None or crop.task != "classify":
        raise ExportError(
            "--zoom: not a crop classifier checkpoint; train one with `camid train --mode zoom`"
        )
    if crop.names != detector.names:
        raise ExportError(
            f"--zoom: the crop classifier's classes {list(crop.names)} differ from the detector's "
            f"{list(detector.names)}; train both with the same labels file"
        )
    if "camera" not in crop.thresholds:
        raise ExportError("--zoom: the crop classifier has no camera threshold; retrain it with --mode zoom")


def export_pair(
    detector: str | Path | tuple[CamidDetector, CheckpointMeta],
    crop_classifier: str | Path | tuple[CamidNet, CheckpointMeta],
    out: str | Path,
    *,
    name: str | None = None,
    version: str | None = None,
    exporter: str = "dynamo",
    tolerance: float = 1e-4,
    fp16: bool = False,
    evaluation: str | Path | None = None,
    min_agreement: float = 0.99,
) -> tuple[ExportReport, ExportReport]:
    """Export a look-then-zoom pair: the crop classifier to ``X.zoom.onnx`` beside ``out``
    (``X.onnx``), then the detector to ``out`` with the pair's contract (:func:`zoom_contract`),
    so that ``Engine.load(out)`` loads both. Each file is parity-checked before it is written;
    with ``fp16`` both store float16 weights, each kept only when it agrees with fp32 on the
    ``evaluation`` manifest's photos (as :func:`export_onnx` and :func:`export_detector` check)."""
    det, det_meta = load_any_checkpoint(detector) if isinstance(detector, (str, Path)) else detector
    crop, crop_meta = (
        load_any_checkpoint(crop_classifier) if isinstance(crop_classifier, (str, Path)) else crop_classifier
    )
    if not isinstance(det, CamidDetector) or not isinstance(crop, CamidNet):
        raise ExportError("--zoom: give a detector checkpoint (--checkpoint) and a crop classifier (--zoom)")
    check_pair(det_meta.contract, crop_meta.contract)
    calibrated = (crop_meta.contract.crop or {}).get("calibrated_with_detector")
    if calibrated is None:
        log.warning(
            "the crop classifier was trained without --detector: its camera threshold is uncalibrated"
        )
    elif isinstance(detector, (str, Path)) and calibrated != sha256_file(detector):
        log.warning(
            "the crop classifier was calibrated with another detector checkpoint; retrain it with this one"
        )
    path = Path(out)
    companion = companion_path(path)
    if fp16 and evaluation is None:
        raise ExportError("--fp16-weights needs photos to compare on: pass --eval MANIFEST")
    crop_report = export_onnx(
        (crop, crop_meta), companion, name=name and f"{name}-zoom", version=version, exporter=exporter,
        tolerance=tolerance, fp16=fp16, evaluation=evaluation, min_agreement=min_agreement,
    )  # fmt: skip
    with_zoom = zoom_contract(det_meta.contract, crop_meta.contract, companion)
    det_report = export_detector(
        (det, replace(det_meta, contract=with_zoom)), path, name=name, version=version, exporter=exporter,
        tolerance=tolerance, fp16=fp16, evaluation=evaluation, min_agreement=min_agreement,
    )  # fmt: skip
    return det_report, crop_report


def _photos(meta: ModelContract, given: np.ndarray | None, manifest: str | Path | None) -> np.ndarray:
    if given is not None:
        return np.asarray(given, dtype=np.uint8)
    if manifest is not None:
        return manifest_inputs(manifest, meta)
    log.warning("no photos given for the parity check: random images only (pass --calibration/--parity)")
    return np.zeros((0, 3, meta.resize.size, meta.resize.size), dtype=np.uint8)


def _reduce_precision(
    proto: onnx.ModelProto,
    model: Classifier,
    meta: ModelContract,
    *,
    kind: str,
    calibration: str | Path | None,
    evaluation: str | Path | None,
    photos: np.ndarray,
    min_agreement: float,
) -> tuple[onnx.ModelProto, str, float, float]:
    precision = kind
    if kind == "int8":
        if calibration is None:
            raise ExportError("--int8 needs --calibration MANIFEST (photos like the ones served)")
        calib = manifest_inputs(calibration, meta)
        reduced = quantize_int8(proto, calib)
    elif kind == "int8-weights":
        calib, reduced = photos, int8_weights(proto)
    else:
        calib, reduced = photos, fp16_weights(proto)
    held_out = (
        manifest_inputs(evaluation, meta) if evaluation is not None else (photos if len(photos) else calib)
    )
    if not len(held_out):
        raise ExportError(f"{precision} needs evaluation photos: pass --eval/--calibration MANIFEST")
    diff, agreement = compare(
        torch_logits(model, held_out), onnx_logits(reduced.SerializeToString(), held_out), meta.temperature
    )
    log.info(
        "%s: top-1 agreement %.2f%%, max |d softmax| %.3g on %d photos",
        precision,
        100 * agreement,
        diff,
        len(held_out),
    )
    if agreement < min_agreement:
        raise QuantizationRefused(
            f"{precision} agrees with fp32 on only {100 * agreement:.1f}% of {len(held_out)} photos "
            f"(needs {100 * min_agreement:.0f}%); export in fp32 or calibrate on photos like served ones"
        )
    return reduced, precision, diff, agreement


def upgrade_onnx(old: str | Path, labels: LabelSet, out: str | Path) -> Path:
    """Rewrite a file exported before the model contract with a full contract; weights untouched.

    Such files list class names and targets only; ``labels`` (the labels file the model was trained
    with) adds display names and form factors. Its names and targets must match the file's.
    """
    src = Path(old)
    proto = onnx.load(src)
    props = {p.key: p.value for p in proto.metadata_props}
    contract = ModelContract.from_metadata_props(props, str(src))
    if labels.names != contract.names or labels.targets != contract.targets:
        raise ExportError(
            f"{src}: its classes {list(contract.names)} (targets {list(contract.targets)}) differ from "
            f"the labels file's {list(labels.names)} (targets {list(labels.targets)}); "
            "pass the labels file it was trained with"
        )
    mean, std = _graph_normalisation(proto)
    set_metadata(proto, contract.with_updates(labels=labels, mean=mean, std=std).to_metadata_props())
    data = proto.SerializeToString()
    return atomic_write(Path(out), lambda tmp: tmp.write_bytes(data))


def _graph_normalisation(
    proto: onnx.ModelProto,
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """``(mean, std)`` as fractions of 255, read from the graph's ``pixel_mean``/``pixel_std``."""
    found = {}
    for init in proto.graph.initializer:
        for key in ("pixel_mean", "pixel_std"):
            if init.name.endswith(key) or init.name.endswith(f"{key}__fp16"):
                v = numpy_helper.to_array(init).astype(np.float64).ravel() / 255
                found[key] = (round(float(v[0]), 6), round(float(v[1]), 6), round(float(v[2]), 6))
    if len(found) != 2:
        raise ExportError("the graph has no pixel_mean/pixel_std: not a camid export")
    return found["pixel_mean"], found["pixel_std"]
