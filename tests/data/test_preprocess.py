import numpy as np
import pytest
from PIL import Image

from data.preprocess import ResizeRule, decode_hint, prepare


def test_letterbox_keeps_the_whole_photo_and_pads() -> None:
    img = Image.new("RGB", (400, 200), (255, 0, 0))
    out = prepare(img, ResizeRule(size=64))
    assert out.shape == (3, 64, 64) and out.dtype == np.uint8
    assert tuple(out[:, 32, 32]) == (255, 0, 0)  # photo in the middle
    assert tuple(out[:, 0, 32]) == (124, 116, 104)  # padding above
    assert tuple(out[:, 63, 32]) == (124, 116, 104)  # padding below


def test_camera_at_the_edge_survives_letterbox_but_not_center_crop() -> None:
    img = Image.new("RGB", (400, 200), (0, 0, 0))
    img.paste((0, 255, 0), (380, 90, 400, 110))  # a small green "camera" at the right edge
    boxed = prepare(img, ResizeRule(size=64))
    cropped = prepare(img, ResizeRule(size=64, mode="center_crop"))
    assert boxed[1].max() > 200
    assert cropped[1].max() < 50


def test_rule_round_trips_through_json_and_rejects_nonsense() -> None:
    rule = ResizeRule(size=320, mode="center_crop", crop_pct=0.875, interpolation="bicubic")
    assert ResizeRule.from_json(rule.to_json()) == rule
    assert decode_hint(rule) == 366
    with pytest.raises(ValueError, match="mode"):
        ResizeRule(mode="stretch")  # type: ignore[arg-type]


def test_non_rgb_input_is_converted() -> None:
    out = prepare(Image.new("L", (50, 50), 200), ResizeRule(size=32))
    assert out.shape == (3, 32, 32) and int(out[0, 16, 16]) == 200
