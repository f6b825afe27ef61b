"""Fit a linear head on cached backbone features (the CPU fast path), with the one training loop."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from training.config import TrainConfig
from training.dataset import class_weights
from training.loop import fit, fit_config

log = logging.getLogger(__name__)


@dataclass
class HeadResult:
    """Best head weights (by validation macro-F1) and the per-epoch curves."""

    weight: torch.Tensor
    bias: torch.Tensor
    best_epoch: int
    best_score: float
    history: list[dict[str, float]]


def _loader(x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, cw: torch.Tensor) -> DataLoader[object]:
    gen = torch.Generator().manual_seed(cfg.seed)
    ds = TensorDataset(x, y)
    if cfg.class_balance == "sampler":
        sampler = WeightedRandomSampler(cw[y].tolist(), len(y), replacement=True, generator=gen)
        return DataLoader(ds, batch_size=cfg.batch_size, sampler=sampler)
    return DataLoader(ds, batch_size=cfg.batch_size, shuffle=True, generator=gen)


def train_head(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    n_classes: int,
    cfg: TrainConfig,
    *,
    dropout: float = 0.2,
    patience: int | None = None,
) -> HeadResult:
    """``Dropout -> Linear(F, C)`` trained by :func:`training.loop.fit` on feature tensors: AdamW,
    cosine schedule, class balancing and early stopping on validation macro-F1 (ties broken by the
    lower validation loss)."""
    torch.manual_seed(cfg.seed)
    head = nn.Sequential(nn.Dropout(dropout), nn.Linear(x_train.shape[1], n_classes))
    cw = class_weights(y_train.tolist(), n_classes)
    fcfg = fit_config(cfg, amp=False, warmup_epochs=0, patience=patience or cfg.patience)
    val = DataLoader(TensorDataset(x_val, y_val), batch_size=max(1, len(y_val)))
    state = fit(
        head,
        _loader(x_train, y_train, cfg, cw),
        val,
        fcfg,
        device=torch.device("cpu"),
        class_weight=cw if cfg.class_balance == "loss" else None,
        desc="head",
        progress="epochs",
    )
    linear = head[1]
    assert isinstance(linear, nn.Linear)
    log.info("head: best val macro-F1 %.4f at epoch %d", state.best_score, state.best_epoch + 1)
    return HeadResult(
        linear.weight.detach().clone(),
        linear.bias.detach().clone(),
        state.best_epoch,
        state.best_score,
        state.history,
    )


def head_logits(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor) -> np.ndarray:
    """Logits of features ``x`` under a fitted head."""
    with torch.no_grad():
        return (x @ weight.T + bias).numpy()
