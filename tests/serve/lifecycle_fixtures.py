"""Model variants for the lifecycle tests, made from the tiny exported model by editing its graph.

``good`` is the tiny model with its logits scaled (confident verdicts: flags and rejects);
``worse`` is ``good`` with its class outputs swapped in pairs (the IPC6625-Z30 and IPC6225-VRZ-ES
targets trade places, and so do other_camera and no_camera), so it flags the wrong target and
calls cameras "no camera". The verified photos of the tests are labelled with ``good``'s verdicts,
so ``good`` is right on all of them and ``worse`` is wrong on all of them.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

SWAP = (1, 0, 3, 2)  # output i of the worse model is output SWAP[i] of the good one
SCALE = 100.0


def variant(src: Path, dst: Path, *, version: str, order: Sequence[int], scale: float) -> Path:
    """``src`` with its ``logits`` and ``cam`` outputs reordered by ``order`` and the logits scaled."""
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    graph.initializer.append(numpy_helper.from_array(np.asarray(order, dtype=np.int64), "variant_order"))
    graph.initializer.append(numpy_helper.from_array(np.asarray(scale, dtype=np.float32), "variant_scale"))
    raw = {"logits": "logits_raw", "cam": "cam_raw"}
    for node in graph.node:  # the original graph computes (and uses) the raw outputs
        node.input[:] = [raw.get(i, i) for i in node.input]
        node.output[:] = [raw.get(o, o) for o in node.output]
    for name in ("logits", "cam"):
        picked = f"{name}_picked" if name == "logits" else name
        graph.node.append(helper.make_node("Gather", [f"{name}_raw", "variant_order"], [picked], axis=1))
    graph.node.append(helper.make_node("Mul", ["logits_picked", "variant_scale"], ["logits"]))
    for prop in model.metadata_props:
        if prop.key == "camid.version":
            prop.value = json.dumps(version)
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst))
    return dst


@dataclass(frozen=True)
class Variants:
    good: Path
    worse: Path


@pytest.fixture(scope="session")
def variants(tiny_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Variants:
    """The good (1.0.0) and the deliberately worse (0.9.0) model."""
    folder = tmp_path_factory.mktemp("variants")
    good = variant(tiny_model.onnx, folder / "good.onnx", version="1.0.0", order=(0, 1, 2, 3), scale=SCALE)
    worse = variant(tiny_model.onnx, folder / "worse.onnx", version="0.9.0", order=SWAP, scale=SCALE)
    return Variants(good, worse)


def jpeg(seed: int, size: tuple[int, int] = (96, 72)) -> bytes:
    """A small photo-like JPEG (gradient, a coloured block, noise)."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / (w - 1), yy * 255 / (h - 1), np.full_like(xx, 128)], -1).astype(np.float64)
    x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
    base[y0 : y0 + h // 3, x0 : x0 + w // 3] = rng.integers(0, 256, 3)
    arr = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()
