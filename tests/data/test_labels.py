from pathlib import Path

import pytest

from data.labels import load_labels


def test_default_labels_are_the_four_classes_in_model_order() -> None:
    labels = load_labels()
    assert labels.names == ("huawei_ipc6625_z30", "huawei_ipc6225_vrz_es", "other_camera", "no_camera")
    assert labels.targets == ("huawei_ipc6625_z30", "huawei_ipc6225_vrz_es")
    assert labels.get("huawei_ipc6625_z30").form_factor == "ptz"
    assert labels.get("no_camera").form_factor == "none"
    assert labels.index("other_camera") == 2


def test_unknown_label_error_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known labels: huawei_ipc6625_z30"):
        load_labels().index("hikvision")


def test_added_class_is_picked_up_from_yaml(tmp_path: Path) -> None:
    text = Path("data/labels.yaml").read_text() + (
        "  - name: huawei_new\n    display_name: New\n    form_factor: box\n    target: true\n"
    )
    (tmp_path / "labels.yaml").write_text(text)
    labels = load_labels(tmp_path / "labels.yaml")
    assert labels.names[-1] == "huawei_new" and "huawei_new" in labels.targets


@pytest.mark.parametrize(
    "body, message",
    [
        ("classes: []\n", "non-empty"),
        ("classes:\n  - name: a\n    form_factor: blob\n", "form_factor"),
        ("classes:\n  - name: a\n  - name: a\n", "duplicate"),
    ],
)
def test_bad_label_files_are_explained(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "labels.yaml").write_text(body)
    with pytest.raises(ValueError, match=message):
        load_labels(tmp_path / "labels.yaml")


def test_a_contract_with_an_undefined_metric_survives_the_onnx_round_trip() -> None:
    # F1 of a class the model never predicted is NaN; JSON has no NaN, so it is stored as null
    from data.contract import ModelContract
    from data.preprocess import ResizeRule

    contract = ModelContract(
        labels=load_labels(), architecture="efficientnet_lite0", resize=ResizeRule(224, "letterbox")
    ).with_updates(metrics={"val": {"f1/no_camera": float("nan"), "accuracy": 0.5}})
    back = ModelContract.from_metadata_props(contract.to_metadata_props())
    assert back == contract
    assert back.metrics["val"] == {"f1/no_camera": None, "accuracy": 0.5}
