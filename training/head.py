"""Fit a linear head on cached backbone features (the CPU fast path)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from training.config import TrainConfig
from training.metrics import macro_f1

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeadConfig:
    """Optimisation of the linear head."""

    epochs: int = 40
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    patience: int = 8
    dropout: float = 0.2
    balance: str = "loss"  # loss | sampler | none
    seed: int = 0


def head_config(cfg: TrainConfig, **overrides: Any) -> HeadConfig:
    """The head's optimisation settings taken from a run's config (``overrides`` win)."""
    base = HeadConfig(
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        label_smoothing=cfg.label_smoothing,
        patience=cfg.patience,
        balance=cfg.class_balance,
        seed=cfg.seed,
    )
    return replace(base, **overrides)


@dataclass
class HeadResult:
    """Best head weights (by validation macro-F1) and the per-epoch curves."""

    weight: torch.Tensor
    bias: torch.Tensor
    best_epoch: int
    best_score: float
    history: list[dict[str, float]]


def _class_weight(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    counts = torch.bincount(y, minlength=n_classes).float()
    w = torch.where(counts > 0, counts.sum() / counts.clamp(min=1) / (counts > 0).sum(), torch.zeros(()))
    return w


def _batches(n: int, bs: int, gen: torch.Generator, weights: torch.Tensor | None) -> list[torch.Tensor]:
    if weights is not None:
        order = torch.multinomial(weights, n, replacement=True, generator=gen)
    else:
        order = torch.randperm(n, generator=gen)
    return list(torch.split(order, bs))


def train_head(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    n_classes: int,
    cfg: HeadConfig,
) -> HeadResult:
    """AdamW + cosine schedule on ``Linear(F, C)`` with class balancing and early stopping on
    validation macro-F1 (ties broken by lower validation loss)."""
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    head = nn.Linear(x_train.shape[1], n_classes)
    drop = nn.Dropout(cfg.dropout)
    cw = _class_weight(y_train, n_classes)
    loss_fn = nn.CrossEntropyLoss(
        weight=cw if cfg.balance == "loss" else None, label_smoothing=cfg.label_smoothing
    )
    sample_w = cw[y_train] if cfg.balance == "sampler" else None
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * math.ceil(len(y_train) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    best = (-math.inf, math.inf)
    result = HeadResult(head.weight.detach().clone(), head.bias.detach().clone(), -1, -math.inf, [])
    bad = 0
    for epoch in tqdm(range(cfg.epochs), desc="head", unit="epoch", leave=False):
        head.train()
        total = 0.0
        for idx in _batches(len(y_train), cfg.batch_size, gen, sample_w):
            loss = loss_fn(head(drop(x_train[idx])), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        head.eval()
        with torch.no_grad():
            logits = head(x_val)
            val_loss = float(nn.functional.cross_entropy(logits, y_val))
        score = macro_f1(y_val.numpy(), logits.argmax(1).numpy(), n_classes)
        result.history.append(
            {
                "epoch": epoch + 1,
                "train_loss": total / len(y_train),
                "val_loss": val_loss,
                "val_macro_f1": score,
            }
        )
        if (score, -val_loss) > (best[0], -best[1]):
            best, bad = (score, val_loss), 0
            result.weight, result.bias = head.weight.detach().clone(), head.bias.detach().clone()
            result.best_epoch, result.best_score = epoch, score
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    log.info("head: best val macro-F1 %.4f at epoch %d", result.best_score, result.best_epoch + 1)
    return result


def head_logits(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor) -> np.ndarray:
    """Logits of features ``x`` under a fitted head."""
    with torch.no_grad():
        return (x @ weight.T + bias).numpy()
