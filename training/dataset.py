"""Photos of a manifest as a torch Dataset, the train/val/test split and class weights."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from data.images import load_image
from data.labels import LabelSet
from data.manifest import SPLITS, Manifest, Record

log = logging.getLogger(__name__)

Transform = Callable[[Image.Image], np.ndarray]


def check_labels(manifest: Manifest, labels: LabelSet) -> None:
    """Raise ValueError when the manifest uses a label that labels.yaml does not define."""
    unknown = sorted({r.label for r in manifest.records} - set(labels.names))
    if unknown:
        raise ValueError(
            f"manifest {manifest.root} uses label(s) {', '.join(unknown)} that are not in labels.yaml "
            f"(known: {', '.join(labels.names)}); add each new class to data/labels.yaml "
            "(or pass labels_path) before training"
        )


@dataclass(frozen=True)
class Splits:
    """Records per split and whether the split came from the manifest or was made here."""

    train: list[Record]
    val: list[Record]
    test: list[Record]
    source: str  # "manifest" or "data.split (group-aware, seed N)"

    def counts(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def resolve_splits(manifest: Manifest, val_fraction: float, test_fraction: float, seed: int) -> Splits:
    """Use the manifest's ``split`` column; without one, split group-aware with ``data.split``."""
    if any(r.split for r in manifest.records):
        by = {s: [r for r in manifest.records if r.split == s] for s in SPLITS}
        missing = sum(1 for r in manifest.records if r.split not in SPLITS)
        if missing:
            log.warning("%d manifest rows have no train/val/test split and are ignored", missing)
        if not by["train"] or not by["val"]:
            raise ValueError(
                f"manifest {manifest.root}: split column needs train and val rows "
                f"(got {', '.join(f'{k}={len(v)}' for k, v in by.items())}); run `camid data split`"
            )
        return Splits(by["train"], by["val"], by["test"], "manifest")
    from data.split import SplitConfig, split_manifest  # group-aware; owned by the data package

    log.warning(
        "manifest has no split column: splitting group-aware here (val %.0f%%, test %.0f%%, seed %d)",
        100 * val_fraction,
        100 * test_fraction,
        seed,
    )
    ratios = (1.0 - val_fraction - test_fraction, val_fraction, test_fraction)
    split = split_manifest(manifest, SplitConfig(ratios=ratios, seed=seed), progress=False).manifest
    by = {s: [r for r in split.records if r.split == s] for s in SPLITS}
    return Splits(by["train"], by["val"], by["test"], f"data.split (group-aware, seed {seed})")


class CameraDataset(Dataset[tuple[torch.Tensor, int]]):
    """``(uint8 [3,S,S] tensor, class index)`` per record; images via ``data.images.load_image``."""

    def __init__(
        self,
        manifest: Manifest,
        records: Sequence[Record],
        labels: LabelSet,
        transform: Transform,
        min_side: int | None,
    ) -> None:
        self.manifest = manifest
        self.records = list(records)
        self.targets = [labels.index(r.label) for r in self.records]
        self.transform = transform
        self.min_side = min_side

    def __len__(self) -> int:
        return len(self.records)

    def load(self, i: int) -> Image.Image:
        return load_image(self.manifest.resolve(self.records[i]), min_side=self.min_side)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        arr = self.transform(self.load(i))
        return torch.from_numpy(arr), self.targets[i]


def class_counts(y: Sequence[int], n_classes: int) -> np.ndarray:
    """Photos per class index."""
    return np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes)


def class_weights(y: Sequence[int], n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights (mean 1 over present classes; 0 for absent classes)."""
    counts = class_counts(y, n_classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max(1, (counts > 0).sum()), 0.0)
    return torch.tensor(w, dtype=torch.float32)


def sample_weights(y: Sequence[int], n_classes: int) -> torch.Tensor:
    """Per-photo weights for a WeightedRandomSampler that balances classes."""
    return class_weights(y, n_classes)[torch.as_tensor(list(y), dtype=torch.long)]


def label_counts(records: Sequence[Record]) -> dict[str, int]:
    """Photos per label name."""
    return dict(sorted(Counter(r.label for r in records).items()))
