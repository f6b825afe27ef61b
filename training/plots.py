"""PNG figures of a run and of an evaluation (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from training.calibration import reliability_bins  # noqa: E402


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_curves(
    histories: dict[str, list[dict[str, float]]], path: Path, score_name: str = "macro-F1"
) -> Path:
    """Train/val loss and the validation score per epoch, one colour per training stage."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    offset: float = 0
    for stage, hist in histories.items():
        if not hist:
            continue
        ep = [offset + h["epoch"] for h in hist]
        ax1.plot(ep, [h["train_loss"] for h in hist], label=f"{stage} train")
        ax1.plot(ep, [h["val_loss"] for h in hist], "--", label=f"{stage} val")
        ax2.plot(ep, [h["val_score"] for h in hist], label=stage)
        offset = ep[-1]
    ax1.set(xlabel="epoch", ylabel="loss", title="loss")
    ax2.set(xlabel="epoch", ylabel=score_name, title=f"validation {score_name}", ylim=(0, 1.02))
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    return _save(fig, path)


def plot_image_grid(images: Sequence[np.ndarray], titles: Sequence[str], path: Path, cols: int = 6) -> Path:
    """A grid of uint8 ``(3,H,W)`` images with titles (e.g. augmented training samples)."""
    rows = max(1, -(-len(images) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, title in zip(axes.flat, images, titles, strict=False):
        ax.imshow(np.asarray(img).transpose(1, 2, 0))
        ax.set_title(title, fontsize=7)
    return _save(fig, path)


def plot_confusion(cm: np.ndarray, labels: Sequence[str], path: Path) -> Path:
    """Confusion matrix (rows true, columns predicted) with counts and row-normalised colour."""
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 3, 1.0 * len(labels) + 2.5))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j,
                i,
                str(int(cm[i, j])),
                ha="center",
                va="center",
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix")
    return _save(fig, path)


def plot_reliability(probs_before: np.ndarray, probs_after: np.ndarray, y: np.ndarray, path: Path) -> Path:
    """Reliability diagram (accuracy vs confidence) before and after temperature scaling."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k:", label="perfect")
    for name, probs in (("before", probs_before), ("after (temperature)", probs_after)):
        b = reliability_bins(probs, y)
        keep = b.count > 0
        ax.plot(b.confidence[keep], b.accuracy[keep], "o-", label=name)
    ax.set(xlabel="confidence", ylabel="accuracy", title="reliability", xlim=(0, 1), ylim=(0, 1))
    ax.legend()
    return _save(fig, path)


def precision_recall(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of ``score >= t`` for every distinct threshold (descending)."""
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(positive[order])
    precision = tp / np.arange(1, len(order) + 1)
    recall = tp / max(1, positive.sum())
    return precision, recall


def plot_pr_curves(probs: np.ndarray, y: np.ndarray, labels: Sequence[str], path: Path) -> Path:
    """One-vs-rest precision–recall curve per class."""
    fig, ax = plt.subplots(figsize=(6, 5))
    for i, name in enumerate(labels):
        pos = y == i
        if not pos.any():
            continue
        p, r = precision_recall(probs[:, i], pos)
        ax.plot(np.r_[0, r], np.r_[1, p], label=f"{name} (n={int(pos.sum())})")
    ax.set(xlabel="recall", ylabel="precision", title="precision–recall per class")
    ax.set(xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(fontsize=8)
    return _save(fig, path)
