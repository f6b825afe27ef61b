from __future__ import annotations

import numpy as np

from training.metrics import bootstrap_intervals, classification_metrics, decision_metrics, macro_f1


def test_macro_f1_and_per_class() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    m = classification_metrics(y, pred, ("a", "b", "c"))
    assert m["accuracy"] == 4 / 6
    assert m["precision/b"] == 2 / 3 and m["recall/b"] == 1.0
    assert abs(m["macro_f1"] - macro_f1(y, pred, 3)) < 1e-12


def test_group_bootstrap_resamples_whole_groups() -> None:
    # two groups: all right or all wrong; a group bootstrap sees accuracy only in {0, .5, 1}
    y = np.zeros(10, dtype=int)
    pred = np.array([0] * 5 + [1] * 5)
    groups = ["a"] * 5 + ["b"] * 5
    seen: set[float] = set()

    def metric(idx: np.ndarray) -> dict[str, float]:
        acc = float((y[idx] == pred[idx]).mean())
        seen.add(acc)
        return {"accuracy": acc}

    ci = bootstrap_intervals(metric, 10, groups, n_boot=200, seed=0)
    assert seen <= {0.0, 0.5, 1.0}
    assert ci["accuracy"][0] <= 0.5 <= ci["accuracy"][1]


def test_decision_metrics_camera_vs_no_camera() -> None:
    labels = ("t", "o", "n")
    y = np.array([0, 1, 2, 2])
    pred = np.array([0, 2, 2, 1])
    d = ["flag", "review", "reject", "review"]
    m = decision_metrics(d, y, pred, labels, {"t"}, camera=[True, True, False])
    assert m["flag_precision"] == 1.0
    assert m["auto_share"] == 0.5
    assert m["camera_recall"] == 0.5 and m["camera_specificity"] == 0.5
