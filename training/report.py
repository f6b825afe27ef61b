"""Figures and a self-contained report.html (thumbnails embedded as base64 JPEGs) of an evaluation."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from data.decision import softmax
from data.images import load_image
from training.plots import plot_confusion, plot_pr_curves, plot_reliability

if TYPE_CHECKING:
    from training.evaluate import Evaluation

FIGURES = {"confusion": "confusion_matrix.png", "reliability": "reliability.png", "pr": "pr_curves.png"}


def write_figures(ev: Evaluation) -> dict[str, Path]:
    """confusion_matrix.png, reliability.png and pr_curves.png in the evaluation folder."""
    out, d = ev.outputs, ev.out_dir
    cm = np.asarray(ev.metrics["confusion_matrix"]["rows_true_cols_pred"])
    return {
        "confusion": plot_confusion(cm, out.labels, d / FIGURES["confusion"]),
        "reliability": plot_reliability(
            softmax(out.logits, 1.0), out.probs, out.y, d / FIGURES["reliability"]
        ),
        "pr": plot_pr_curves(out.probs, out.y, out.labels, d / FIGURES["pr"]),
    }


def worst_errors(ev: Evaluation, k: int = 24) -> list[int]:
    """Indices of misclassified photos, most confident mistakes first."""
    probs = ev.outputs.probs
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != ev.outputs.y)
    return [int(i) for i in wrong[np.argsort(-probs[wrong].max(1), kind="stable")][:k]]


def image_data_uri(img: Image.Image, fmt: str = "JPEG") -> str:
    """An image as a ``data:`` URI (``JPEG`` at quality 80, or ``PNG`` for crisp drawn boxes)."""
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, "JPEG", quality=80)
    else:
        img.save(buf, fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thumbnail_data_uri(path: Path, side: int = 160) -> str:
    """A small JPEG of the photo as a ``data:`` URI (empty string when it cannot be read)."""
    try:
        img = load_image(path, min_side=side)
    except (OSError, ValueError):
        return ""
    img.thumbnail((side, side))
    return image_data_uri(img)


def format_ci(entry: dict[str, Any] | None) -> str:
    if not entry or entry.get("value") is None:
        return "–"
    lo, hi = entry.get("ci95") or (None, None)
    ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
    return f"{entry['value']:.3f}{ci}"


def _metrics_table(metrics: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(format_ci(v))}</td></tr>"
        for k, v in metrics["metrics"].items()
    )
    return f"<table><tr><th>metric</th><th>value [95% CI]</th></tr>{rows}</table>"


def _error_cards(ev: Evaluation) -> str:
    out, probs = ev.outputs, ev.outputs.probs
    cards = []
    for i in worst_errors(ev):
        uri = thumbnail_data_uri(out.paths[i])
        pred = out.labels[int(probs[i].argmax())]
        text = (
            f"true: {html.escape(out.labels[out.y[i]])}<br>pred: {html.escape(pred)} "
            f"({probs[i].max():.2f}, {html.escape(str(ev.decisions[i]))})"
        )
        img = f'<img src="{uri}" alt="photo">' if uri else "<div>(unreadable)</div>"
        cards.append(
            f"<figure>{img}<figcaption>{text}<br><small>{html.escape(out.records[i].path)}</small>"
            "</figcaption></figure>"
        )
    return "".join(cards) or "<p>No errors.</p>"


CSS = (  # shared with training.detreport
    "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}figure{display:inline-block;"
    "width:180px;margin:6px;vertical-align:top;font-size:12px}img{max-width:170px}"
)


def write_report(ev: Evaluation) -> Path:
    """report.html: data provenance, metrics with intervals, figures and the worst errors."""
    m = ev.metrics
    data = m.get("data", {})
    figs = "".join(f'<img src="{name}" style="max-width:480px">' for name in FIGURES.values())
    body = (
        f"<h1>camid evaluation</h1><p>model: {html.escape(str(m.get('model', {}).get('path', '')))} "
        f"({html.escape(str(m.get('model', {}).get('kind', '')))})<br>data: "
        f"{html.escape(str(data.get('manifest', '')))} "
        f"(hash {html.escape(str(data.get('manifest_hash', '')))}, "
        f"split {html.escape(str(data.get('split', '')))}), n = {m['n']}<br>"
        f"{html.escape(m['bootstrap']['note'])}</p>"
        f"<h2>Metrics</h2>{_metrics_table(m)}"
        f"<p>ECE before/after temperature: {m['calibration']['ece_before']:.4f} / "
        f"{m['calibration']['ece_after']:.4f} (T = {m['calibration']['temperature']:.3f})</p>"
        f"<h2>Figures</h2>{figs}<h2>Worst errors</h2>{_error_cards(ev)}"
    )
    page = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>camid evaluation</title>'
        f"<style>{CSS}</style></head><body>{body}</body></html>"
    )
    path = ev.out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def headline(metrics: dict[str, Any]) -> dict[str, str]:
    """``{metric: "value [lo, hi]"}`` for the metrics people look at first."""
    keys = ("accuracy", "macro_f1", "flag_precision", "auto_share", "camera_recall", "camera_specificity")
    return {k: format_ci(metrics["metrics"].get(k)) for k in keys}


def worst_error_rows(rows: list[dict[str, str]], k: int = 12) -> list[dict[str, str]]:
    """Rows of predictions.csv that are wrong, most confident first."""
    wrong = [r for r in rows if r["label"] != r["pred"]]
    return sorted(wrong, key=lambda r: -float(r["confidence"]))[:k]


def errors_html(rows: list[dict[str, str]], side: int = 140) -> str:
    """HTML cards (thumbnail, true and predicted label) for predictions.csv rows."""
    cards = []
    for r in rows:
        uri = thumbnail_data_uri(Path(r["path"]), side)
        img = f'<img src="{uri}" style="max-width:{side}px">' if uri else "(unreadable)"
        cards.append(
            f'<figure style="display:inline-block;width:{side + 20}px;font-size:11px">{img}<figcaption>'
            f"true {html.escape(r['label'])}<br>pred {html.escape(r['pred'])} "
            f"({float(r['confidence']):.2f}, {html.escape(r['decision'])})</figcaption></figure>"
        )
    return "".join(cards) or "<p>No errors.</p>"
