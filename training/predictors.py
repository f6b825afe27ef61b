"""Logits of prepared photos from a torch checkpoint or an exported ONNX model, behind one interface.

Both paths see identical inputs: ``data.images.load_image(min_side=decode_hint(rule))`` then
``data.preprocess.prepare(img, rule)``, the server's code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from data.contract import ModelContract


class Predictor(Protocol):
    path: str
    kind: str  # "checkpoint" | "onnx"
    contract: ModelContract

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Raw logits ``[N,C]`` (float64) of a uint8 batch ``[N,3,S,S]``."""
        ...


class TorchPredictor:
    """A camid checkpoint run with torch on CPU (float32)."""

    kind = "checkpoint"

    def __init__(self, path: Path) -> None:
        import torch

        from model.checkpoint import load_any_checkpoint
        from model.detector import CamidDetector

        self._torch = torch
        self.path = str(path)
        model, meta = load_any_checkpoint(path)
        if isinstance(model, CamidDetector):
            raise ValueError(
                f"{path}: a camera detector checkpoint; export it first with `camid export "
                f"--checkpoint {path} --out detector.onnx` and evaluate the .onnx file (what the server runs)"
            )
        self.model = model
        self.contract = meta.contract

    def logits(self, batch: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            out = self.model(self._torch.from_numpy(np.ascontiguousarray(batch)))
        result: np.ndarray = out.double().numpy()
        return result


class OnnxPredictor:
    """An exported ``model.onnx`` run with onnxruntime (torch-free), via ``serve.engine``."""

    kind = "onnx"

    def __init__(self, path: Path) -> None:
        from serve.engine import Engine

        self.path = str(path)
        self.engine = Engine.load(path)
        self.contract = self.engine.info

    def logits(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.engine.run(np.ascontiguousarray(batch))[0], dtype=np.float64)


def load_predictor(path: str | Path) -> Predictor:
    """``*.onnx`` -> :class:`OnnxPredictor`; anything else -> :class:`TorchPredictor` (checkpoint)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model not found: {p} (give a checkpoint.pt or an exported model.onnx)")
    return OnnxPredictor(p) if p.suffix.lower() == ".onnx" else TorchPredictor(p)


def batched(items: Sequence[np.ndarray], size: int) -> list[np.ndarray]:
    """Stack prepared images into batches of at most ``size``."""
    return [np.stack(items[i : i + size]) for i in range(0, len(items), size)]
