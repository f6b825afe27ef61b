"""Backbone pooled features of augmented views, computed once and cached in the run folder."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from data.labels import LabelSet
from data.manifest import Manifest, Record
from data.preprocess import ResizeRule, decode_hint
from training.dataset import CameraDataset
from training.transforms import build_eval_transform, build_train_transform

log = logging.getLogger(__name__)


def feature_key(parts: dict[str, Any]) -> str:
    """Short stable hash of what determines cached features (manifest hash, arch, config …)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@torch.inference_mode()
def extract_pooled(
    model: nn.Module, loader: DataLoader[Any], device: torch.device, desc: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``model.pooled`` features ``[N,F]`` (float32, CPU) and labels ``[N]`` of a whole loader."""
    model.eval()
    feats, ys = [], []
    for x, y in tqdm(loader, desc=desc, unit="batch", leave=False):
        feats.append(model.pooled(x.to(device)).float().cpu())  # type: ignore[operator]
        ys.append(torch.as_tensor(y))
    return torch.cat(feats), torch.cat(ys)


def view_features(
    model: nn.Module,
    manifest: Manifest,
    records: Sequence[Record],
    labels: LabelSet,
    rule: ResizeRule,
    *,
    views: int,
    augment: bool,
    seed: int,
    batch_size: int,
    device: torch.device,
    num_workers: int = 0,
    desc: str = "features",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of ``views`` views of every record: augmented ones (seeded per view) when
    ``augment``, else one clean ``prepare`` view. Rows are ordered view by view."""
    xs, ys = [], []
    n_views = views if augment else 1
    for k in range(n_views):
        if augment:
            transform, min_side = build_train_transform(rule, seed=seed * 1000 + k), 2 * decode_hint(rule)
        else:
            transform, min_side = build_eval_transform(rule), decode_hint(rule)
        ds = CameraDataset(manifest, records, labels, transform, min_side)
        loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers)
        x, y = extract_pooled(model, loader, device, f"{desc} view {k + 1}/{n_views}")
        xs.append(x)
        ys.append(y)
    return torch.cat(xs), torch.cat(ys)


def cached(path: Path, compute: Callable[[], tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, ...]:
    """Load ``(x, y)`` from ``path`` if it exists, else compute and save it there."""
    if path.is_file():
        obj = torch.load(path, map_location="cpu", weights_only=True)
        log.info("features from cache %s", path)
        return obj["x"], obj["y"]
    x, y = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"x": x, "y": y}, tmp)
    tmp.replace(path)
    return x, y
