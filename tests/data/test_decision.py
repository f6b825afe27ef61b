import numpy as np
import pytest

from data.decision import decide, softmax

LABELS = ("huawei_ipc6625_z30", "huawei_ipc6225_vrz_es", "other_camera", "no_camera")
TARGETS = {"huawei_ipc6625_z30", "huawei_ipc6225_vrz_es"}
THRESHOLDS = {"flag": 0.9, "reject": 0.05}


def test_softmax_sums_to_one_and_temperature_flattens() -> None:
    logits = np.array([[4.0, 1.0, 0.0, -1.0]])
    sharp, flat = softmax(logits, 1.0), softmax(logits, 3.0)
    assert np.allclose(sharp.sum(-1), 1.0) and np.allclose(flat.sum(-1), 1.0)
    assert flat.max() < sharp.max()
    with pytest.raises(ValueError):
        softmax(logits, 0.0)


@pytest.mark.parametrize(
    "probs, expected",
    [
        ([0.95, 0.02, 0.02, 0.01], "flag"),  # confident target
        ([0.80, 0.10, 0.05, 0.05], "review"),  # target, not confident enough
        ([0.02, 0.01, 0.90, 0.07], "reject"),  # confidently another camera
        ([0.01, 0.01, 0.01, 0.97], "reject"),  # confidently no camera
        ([0.04, 0.04, 0.90, 0.02], "review"),  # other camera, but 8% target mass: a human looks
    ],
)
def test_decision_rule(probs: list[float], expected: str) -> None:
    assert decide(np.array(probs), LABELS, TARGETS, THRESHOLDS) == expected


def test_wrong_number_of_probabilities_is_an_error() -> None:
    with pytest.raises(ValueError, match="expected 4"):
        decide(np.array([0.5, 0.5]), LABELS, TARGETS, THRESHOLDS)


def test_flag_threshold_of_one_means_never_flag_even_for_a_saturated_softmax() -> None:
    probs = np.array([1.0, 0.0, 0.0, 0.0])
    assert decide(probs, LABELS, TARGETS, {"flag": 1.0, "reject": 0.05}) == "review"
