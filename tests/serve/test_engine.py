from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.contract import ModelContract
from data.decision import softmax
from data.images import load_image
from data.preprocess import ResizeRule, decode_hint, photo_to_input
from serve.engine import Engine, ModelError, build_result, default_model_path, heatmap_overlay
from tests.conftest import make_photo
from tests.serve.conftest import LABELS, TINY_SIZE, TinyModel

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def engine(tiny_model: TinyModel) -> Engine:
    return Engine.load(tiny_model.onnx, threads=1)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("photos")
    sizes = [(96, 72), (72, 96), (200, 150), (64, 64), (120, 40)]
    return [make_photo(folder / f"p{i}.jpg", size=s, seed=i) for i, s in enumerate(sizes)]


def _images(paths: list[Path], rule: ResizeRule) -> list[Image.Image]:
    return [load_image(p, min_side=decode_hint(rule)) for p in paths]


def test_metadata_is_read(engine: Engine) -> None:
    info = engine.info
    assert info.names == LABELS and info.name == "camid-tiny" and info.version == "0.0.1"
    assert info.targets == ("huawei_ipc6625_z30", "huawei_ipc6225_vrz_es")
    assert info.input_size == TINY_SIZE and info.resize == ResizeRule(size=TINY_SIZE)
    assert info.temperature == 1.5 and info.thresholds == {"flag": 0.6, "reject": 0.2}
    assert info.architecture == "test_efficientnet" and info.precision == "fp32"
    assert info.metrics == {"macro_f1": 0.25} and json.dumps(info.to_json())


def test_probabilities_sorted_and_calibrated(engine: Engine, photos: list[Path]) -> None:
    images = _images(photos, engine.info.resize)
    preds = engine.classify(images)
    logits, _ = engine.run(engine.prepare(images))
    expected = softmax(logits, 1.5)
    for pred, p in zip(preds, expected, strict=True):
        scores = [s for _, s in pred.probabilities]
        assert scores == sorted(scores, reverse=True)
        assert abs(sum(scores) - 1.0) < 1e-9
        assert (pred.label, pred.confidence) == pred.probabilities[0]
        assert dict(pred.probabilities) == pytest.approx(dict(zip(LABELS, p, strict=True)))
    assert not np.allclose(softmax(logits, 1.0), expected)  # the temperature did something


def test_decision_follows_thresholds(engine: Engine) -> None:
    logits = (
        np.log(
            np.array(
                [[0.9, 0.04, 0.03, 0.03], [0.05, 0.05, 0.8, 0.1], [0.5, 0.1, 0.3, 0.1], [0.3, 0.2, 0.2, 0.3]]
            )
        )
        * 1.5
    )
    decisions = [p.decision for p in engine.predict_logits(logits)]
    assert decisions == ["flag", "reject", "review", "review"]


def test_batch_equals_single(engine: Engine, photos: list[Path]) -> None:
    images = _images(photos, engine.info.resize)
    together = engine.classify(images, batch_size=4)
    alone = [engine.classify([img])[0] for img in images]
    for a, b in zip(together, alone, strict=True):
        assert a.label == b.label and a.decision == b.decision
        assert np.allclose([s for _, s in a.probabilities], [s for _, s in b.probabilities], atol=1e-6)


def test_heatmap_png_decodes(engine: Engine, photos: list[Path]) -> None:
    (pred,) = engine.classify(_images(photos[:1], engine.info.resize), heatmap=True)
    assert pred.heatmap_png is not None
    png = Image.open(io.BytesIO(pred.heatmap_png))
    assert png.format == "PNG" and png.size == Image.open(photos[0]).size  # small photos: their own size
    assert (
        "heatmap_png" in pred.to_json()
        and "heatmap_png" not in engine.classify(_images(photos[:1], engine.info.resize))[0].to_json()
    )
    flat = heatmap_overlay(np.zeros((2, 2)), Image.new("RGB", (8, 6)), engine.info.resize)
    assert Image.open(io.BytesIO(flat)).size == (8, 6)


@pytest.mark.parametrize("mode", ["letterbox", "center_crop"])
@pytest.mark.parametrize("size", [(3000, 1000), (900, 1600), (640, 640)])
def test_heatmap_lines_up_with_the_photo_for_every_aspect_ratio(mode: str, size: tuple[int, int]) -> None:
    """A hot spot the model puts on a photo point shows on that point of the overlay, which has the
    photo's aspect ratio (the overlay used to be the square input, misaligned on wide photos)."""
    rule = ResizeRule(size=64, mode=mode)
    w, h = size
    target = (0.5 * w, 0.55 * h)  # inside what a centre crop keeps, too
    x, y, _, _ = photo_to_input((*target, *target), w, h, rule)
    cam = np.zeros((64, 64))
    cam[int(y), int(x)] = 1.0
    png = Image.open(io.BytesIO(heatmap_overlay(cam, Image.new("RGB", size, (128, 128, 128)), rule)))
    assert abs(png.width / png.height - w / h) < 0.01 and max(png.size) == min(1024, max(size))
    heat = np.asarray(png.convert("RGB"), dtype=np.float64)
    redness = heat[..., 0] - heat[..., 2]
    py, px = np.unravel_index(int(redness.argmax()), redness.shape)
    sx, sy = png.width / w, png.height / h
    assert abs(px - target[0] * sx) <= 0.03 * png.width and abs(py - target[1] * sy) <= 0.03 * png.height


def test_preprocessing_parity_with_training_eval(
    engine: Engine, tiny_model: TinyModel, photos: list[Path], tmp_path: Path
) -> None:
    """The engine feeds ORT exactly the tensors training evaluation builds; the logits agree too."""
    torch = pytest.importorskip("torch")
    from data.labels import load_labels
    from data.manifest import Manifest, Record
    from model.checkpoint import load_checkpoint
    from training.dataset import CameraDataset
    from training.transforms import build_eval_transform

    rule = engine.info.resize
    manifest = Manifest(
        photos[0].parent, [Record(p.name, "no_camera", f"g{i}") for i, p in enumerate(photos)]
    )
    dataset = CameraDataset(
        manifest, manifest.records, load_labels(), build_eval_transform(rule), decode_hint(rule)
    )
    training_batch = torch.stack([dataset[i][0] for i in range(len(dataset))]).numpy()
    served_batch = engine.prepare(_images(photos, rule))
    assert served_batch.dtype == np.uint8 and np.array_equal(served_batch, training_batch)
    model, _ = load_checkpoint(tiny_model.checkpoint)
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(training_batch)).numpy()
    onnx_logits, _ = engine.run(served_batch)
    assert np.abs(softmax(torch_logits, 1.5) - softmax(onnx_logits, 1.5)).max() < 1e-4


def test_build_result_matches_the_contract(engine: Engine, photos: list[Path]) -> None:
    (pred,) = engine.classify(_images(photos[:1], engine.info.resize))
    result = build_result(pred, engine.info, width=96, height=72, sha256="ab", phash="cd", location=None)
    assert set(result) == {
        "label", "confidence", "decision", "probabilities", "cameras", "model", "image", "location"
    }  # fmt: skip
    assert result["cameras"] == []  # a photo classifier has no boxes
    assert result["model"] == {"name": "camid-tiny", "version": "0.0.1"}
    assert result["image"] == {"width": 96, "height": 72, "sha256": "ab", "phash": "cd"}
    assert result["probabilities"][0] == {"label": pred.label, "score": pred.confidence}
    json.dumps(result)


def test_bad_model_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        Engine.load(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelError, match="not a loadable"):
        Engine.load(tmp_path / "junk.onnx")


def test_metadata_without_camid_keys_is_refused() -> None:
    from serve.engine import parse_metadata

    with pytest.raises(ModelError, match="camid export"):
        parse_metadata({}, "x.onnx")
    before_contract = {
        "camid.labels": json.dumps(list(LABELS)),
        "camid.resize": json.dumps({"size": 32}),
        "camid.temperature": "1.0",
        "camid.thresholds": json.dumps({"flag": 0.5, "reject": 0.1}),
    }
    with pytest.raises(ModelError, match="re-export"):  # which classes are targets is not known
        parse_metadata(before_contract, "old.onnx")
    info = parse_metadata({**before_contract, "camid.targets": json.dumps(["other_camera"])}, "old.onnx")
    assert isinstance(info, ModelContract) and info.targets == ("other_camera",)
    assert info.resize.size == 32 and info.names == LABELS


def test_default_model_path() -> None:
    assert default_model_path() == REPO / "model" / "release" / "camid-default.onnx"


def test_engine_imports_no_torch() -> None:
    code = (
        "import sys; import serve.engine, serve.predict; "
        "heavy = ('torch', 'timm', 'torchvision', 'albumentations', 'onnx', 'cv2'); "
        "bad = [m for m in heavy if m in sys.modules]; "
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"serve.engine pulled in: {proc.stdout.strip()} {proc.stderr[-500:]}"
