from __future__ import annotations

import numpy as np

from data.decision import softmax
from training.calibration import (
    NEVER_FLAG,
    calibrate,
    decide_all,
    expected_calibration_error,
    fit_temperature,
    select_flag_threshold,
    select_reject_threshold,
)

LABELS = ("huawei_ipc6625_z30", "huawei_ipc6225_vrz_es", "other_camera", "no_camera")
TARGETS = ("huawei_ipc6625_z30", "huawei_ipc6225_vrz_es")


def _calibrated_logits(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose softmax is calibrated by construction: labels are drawn from it."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, (n, 4))
    p = softmax(logits)
    y = np.array([rng.choice(4, p=row) for row in p])
    return logits, y


def test_temperature_lowers_ece_of_overconfident_model() -> None:
    logits, y = _calibrated_logits()
    over = logits * 5  # an overconfident model
    t = fit_temperature(over, y)
    assert 3.5 < t < 7.0
    before = expected_calibration_error(softmax(over), y)
    after = expected_calibration_error(softmax(over, t), y)
    assert after < before / 3
    assert after < 0.05


def _scores(n: int = 1000, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities where higher target confidence means more often right."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    probs = np.full((n, 4), 0.0)
    for i in range(n):
        conf = rng.uniform(0.3, 1.0)
        pred = y[i] if rng.random() < conf else rng.integers(0, 4)
        probs[i] = (1 - conf) / 3
        probs[i, pred] = conf
    return probs, y


def test_flag_threshold_meets_precision_on_validation() -> None:
    probs, y = _scores()
    for target in (0.9, 0.97):
        t = select_flag_threshold(probs, y, LABELS, TARGETS, precision=target)
        assert t < NEVER_FLAG
        d = np.array(decide_all(probs, LABELS, TARGETS, {"flag": t, "reject": 0.0}))
        flagged = d == "flag"
        assert flagged.sum() > 0
        assert (probs[flagged].argmax(1) == y[flagged]).mean() >= target
        # one step lower would include a photo with lower confidence: the threshold is the lowest
        assert t == probs[flagged].max(1).min()


def test_flag_threshold_never_when_precision_unreachable() -> None:
    probs, y = _scores()
    y_wrong = (probs.argmax(1) + 1) % 4  # every prediction wrong
    assert select_flag_threshold(probs, y_wrong, LABELS, TARGETS, 0.97) == NEVER_FLAG


def test_reject_threshold_rejects_at_most_the_allowed_share_of_targets() -> None:
    probs, y = _scores()
    r = select_reject_threshold(probs, y, LABELS, TARGETS, max_rejected=0.02)
    d = np.array(decide_all(probs, LABELS, TARGETS, {"flag": NEVER_FLAG, "reject": r}))
    is_target = np.isin(y, [0, 1])
    assert (d[is_target] == "reject").mean() <= 0.02
    # a slightly larger threshold would reject more than allowed
    p_target = probs[:, :2].sum(1)[is_target]
    assert (p_target <= np.nextafter(r, 2) + 1e-12).mean() > 0.02 or r == 1.0


def test_calibrate_bundles_temperature_and_thresholds() -> None:
    logits, y = _calibrated_logits(800)
    cal = calibrate(logits * 3, y, LABELS, TARGETS, 0.9, 0.02)
    assert cal.ece_after < cal.ece_before
    assert set(cal.thresholds) == {"flag", "reject"}
