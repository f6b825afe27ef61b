"""A small, camera-agnostic training loop: AMP, EMA, early stopping, resume state, DDP-aware."""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from training.config import TrainConfig
from training.distributed import DistInfo, sync_state
from training.metrics import macro_f1

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitConfig:
    """Optimisation settings of one :func:`fit` call."""

    epochs: int
    lr: float
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    patience: int = 5
    amp: bool = True
    ema_decay: float = 0.0
    warmup_epochs: int = 0


@dataclass
class FitState:
    """Everything needed to continue a run where it stopped (saved after every epoch)."""

    epoch: int = 0  # epochs completed
    best_score: float = -math.inf
    best_val_loss: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None
    optimizer: dict[str, Any] | None = None
    scaler: dict[str, Any] | None = None
    ema: dict[str, torch.Tensor] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FitState:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def fit_config(cfg: TrainConfig, **overrides: Any) -> FitConfig:
    """The optimisation settings of a run's config (``overrides`` win, e.g. a stage's own lr)."""
    base = FitConfig(
        epochs=cfg.epochs,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        label_smoothing=cfg.label_smoothing,
        patience=cfg.patience,
        amp=cfg.amp,
        ema_decay=cfg.ema_decay,
        warmup_epochs=cfg.warmup_epochs,
    )
    return replace(base, **overrides)


EpochHook = Callable[[FitState, nn.Module], None]
# (model, batch, device) -> (mean loss of the batch, number of samples in it)
LossStep = Callable[[nn.Module, Any, torch.device], tuple[torch.Tensor, int]]
# (model, val loader, device, autocast dtype, show progress) -> (score to maximise, validation loss)
Validation = Callable[
    [nn.Module, DataLoader[Any], torch.device, "torch.dtype | None", bool], tuple[float, float]
]


def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """bf16 on GPUs that have it, else fp16 on GPUs; no autocast on CPU."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def set_train_mode(model: nn.Module, train_modules: Sequence[nn.Module] | None) -> None:
    """Train mode for the modules being trained only; frozen parts keep BatchNorm statistics."""
    if train_modules is None:
        model.train()
        return
    model.eval()
    for m in train_modules:
        m.train()


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    loader: DataLoader[Any],
    device: torch.device,
    dtype: torch.dtype | None = None,
    show_progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of a whole loader, in order, as float32 numpy arrays."""
    model.eval()
    outs, ys = [], []
    for x, y in tqdm(loader, desc="predict", leave=False, unit="batch", disable=not show_progress):
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            outs.append(model(x.to(device, non_blocking=True)).float().cpu())
        ys.append(torch.as_tensor(y))
    return torch.cat(outs).numpy(), torch.cat(ys).numpy()


def _lr_factor(step: int, total: int, warmup: int) -> float:
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _train_epoch(
    model: nn.Module,
    loader: DataLoader[Any],
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    loss_step: LossStep,
    scaler: torch.amp.GradScaler,
    device: torch.device,
    dtype: torch.dtype | None,
    on_step: Callable[[], None],
    desc: str,
    show_progress: bool,
) -> float:
    total, n = 0.0, 0
    for batch in tqdm(loader, desc=desc, leave=False, unit="batch", disable=not show_progress):
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss, size = loss_step(model, batch, device)
        opt.zero_grad(set_to_none=True)
        scaled: Any = scaler.scale(loss)  # torch's stubs leave Tensor.backward untyped
        scaled.backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
        on_step()
        total += float(loss.detach()) * size
        n += size
    return total / max(1, n)


def classification_step(
    loss_fn: nn.Module,
) -> LossStep:
    """The loss of an ``(images, labels)`` batch under ``loss_fn`` (cross-entropy by default)."""

    def step(model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
        x, y = batch
        x, y = x.to(device, non_blocking=True), torch.as_tensor(y).to(device)
        return loss_fn(model(x).float(), y), len(y)

    return step


def classification_validation(
    model: nn.Module, loader: DataLoader[Any], device: torch.device, dtype: torch.dtype | None, progress: bool
) -> tuple[float, float]:
    """``(macro-F1, cross-entropy)`` of a classifier on a validation loader."""
    logits, y = predict_logits(model, loader, device, dtype, progress)
    score = macro_f1(y, logits.argmax(1), logits.shape[1])
    return score, float(nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y)))


def _make_optimizer(params: Sequence[nn.Parameter], cfg: FitConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def fit(
    model: nn.Module,
    train_loader: DataLoader[Any],
    val_loader: DataLoader[Any],
    cfg: FitConfig,
    *,
    device: torch.device,
    dist_info: DistInfo = DistInfo(),  # noqa: B008 - frozen
    class_weight: torch.Tensor | None = None,
    train_modules: Sequence[nn.Module] | None = None,
    state: FitState | None = None,
    on_epoch_end: EpochHook | None = None,
    desc: str = "train",
    progress: Literal["batches", "epochs"] = "batches",
    loss_step: LossStep | None = None,
    validate: Validation = classification_validation,
) -> FitState:
    """Train ``model`` (only parameters with ``requires_grad``) with AdamW and a cosine schedule,
    evaluate on validation after each epoch (``validate``: macro-F1 by default; a detector passes
    its own loss and score as hooks), stop after ``patience`` epochs without
    improvement (ties broken by the lower validation loss), and leave the best weights (of the EMA
    model when ``ema_decay`` > 0) in ``model``. ``progress="epochs"`` shows one bar over epochs
    instead of one per epoch over batches (for many short epochs, as on cached features).
    """
    from timm.utils.model_ema import ModelEmaV3

    state = state or FitState()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = _make_optimizer(params, cfg)
    total_steps = cfg.epochs * len(train_loader)
    warmup = cfg.warmup_epochs * len(train_loader)
    dtype = amp_dtype(device, cfg.amp)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    ema = ModelEmaV3(model, decay=cfg.ema_decay) if cfg.ema_decay > 0 else None
    done_steps = -1
    if state.optimizer is not None:
        opt.load_state_dict(state.optimizer)  # carries each group's initial_lr for the schedule
        done_steps = state.epoch * len(train_loader) - 1
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: _lr_factor(s, total_steps, warmup), last_epoch=done_steps
    )
    if state.optimizer is not None:
        if state.scaler:
            scaler.load_state_dict(state.scaler)
        if ema is not None and state.ema is not None:
            ema.module.load_state_dict(state.ema)
    net: nn.Module = model
    if dist_info.enabled:
        ids = [device.index] if device.type == "cuda" else None
        net = DDP(model, device_ids=ids)
    weight = class_weight.to(device) if class_weight is not None else None
    step = loss_step or classification_step(
        nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)
    )
    eval_model = ema.module if ema is not None else model

    epochs = range(state.epoch, cfg.epochs)
    bar = tqdm(epochs, desc=desc, unit="epoch", leave=False) if progress == "epochs" else epochs
    for epoch in bar:
        if isinstance(train_loader.sampler, DistributedSampler):
            train_loader.sampler.set_epoch(epoch)
        set_train_mode(model, train_modules)
        loss = _train_epoch(
            net,
            train_loader,
            opt,
            sched,
            step,
            scaler,
            device,
            dtype,
            (lambda: ema.update(model)) if ema is not None else (lambda: None),
            f"{desc} {epoch + 1}/{cfg.epochs}",
            progress == "batches",
        )
        sync_state(model, dist_info)
        if ema is not None:
            sync_state(ema.module, dist_info)
        score, val_loss = validate(eval_model, val_loader, device, dtype, progress == "batches")
        _record_epoch(state, epoch, loss, val_loss, score, float(opt.param_groups[0]["lr"]), eval_model)
        state.optimizer, state.scaler = opt.state_dict(), scaler.state_dict()
        state.ema = copy.deepcopy(ema.module.state_dict()) if ema is not None else None
        if on_epoch_end is not None:
            on_epoch_end(state, eval_model)
        if state.bad_epochs >= cfg.patience:
            log.info(
                "early stop after epoch %d (best %d, score %.4f)",
                epoch + 1,
                state.best_epoch + 1,
                state.best_score,
            )
            break
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    return state


def _record_epoch(
    state: FitState, epoch: int, loss: float, val_loss: float, score: float, lr: float, model: nn.Module
) -> None:
    state.epoch = epoch + 1
    state.history.append(
        {"epoch": epoch + 1, "train_loss": loss, "val_loss": val_loss, "val_score": score, "lr": lr}
    )
    log.info("epoch %d: train loss %.4f, val loss %.4f, val score %.4f", epoch + 1, loss, val_loss, score)
    better = score > state.best_score + 1e-9
    tie = abs(score - state.best_score) <= 1e-9 and val_loss < state.best_val_loss
    if better or tie:
        state.best_score, state.best_val_loss = score, val_loss
        state.best_epoch, state.bad_epochs = epoch, 0
        state.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    else:
        state.bad_epochs += 1
