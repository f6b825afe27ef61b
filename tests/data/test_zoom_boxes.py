"""The zoom stage's box geometry: refined boxes from the crop classifier, each camera once."""

from __future__ import annotations

import numpy as np
import pytest

from data.boxes import iou
from data.labels import load_labels
from data.zoom import ZoomSettings, box_offsets, crop_squares, distinct, refined_boxes, zoom_cameras


@pytest.mark.parametrize(
    "box", [(100.0, 50.0, 120.0, 62.0), (10.0, 10.0, 11.0, 30.0), (300.0, 200.0, 420.0, 260.0)]
)
def test_offsets_give_back_the_box_in_its_crop_and_in_a_shifted_crop(box: tuple[float, ...]) -> None:
    (square,) = crop_squares([box], (640, 480), ZoomSettings(min_px=16))
    moved = (square[0] + 7, square[1] - 5, square[2] + 7, square[3] - 5)
    for sq in (square, moved):
        (back,) = refined_boxes([sq], np.array([box_offsets(sq, box)]))
        assert np.allclose(back, box, atol=1e-6)


def test_a_box_read_off_a_crop_is_placed_in_photo_pixels() -> None:
    square = (200.0, 100.0, 264.0, 164.0)  # a 64-px crop centred on (232, 132)
    # a quarter-crop-wide box, a tenth of the crop right of the centre, half as high as wide
    (box,) = refined_boxes([square], np.array([[0.1, 0.0, np.log(0.25), np.log(0.125)]]))
    assert np.allclose(box, (232 + 6.4 - 8, 132 - 4, 232 + 6.4 + 8, 132 + 4))
    (huge,) = refined_boxes([square], np.array([[0.0, 0.0, 9.0, 9.0]]))  # a wild output stays bounded
    assert huge[2] - huge[0] <= 64 * np.e + 1e-6
    # in a 250 x 150 photo the box is clipped to the photo, as the detector's boxes are
    (edge,) = refined_boxes([square], np.array([[0.5, 0.3, np.log(0.5), np.log(0.5)]]), within=(250, 150))
    assert edge == (232 + 32 - 16, 132 + 19.2 - 16, 250.0, 150.0)


def test_the_same_camera_proposed_twice_is_one_camera() -> None:
    labels = load_labels()
    p = np.zeros((3, len(labels)))
    p[:, labels.index("huawei_ipc6625_z30")] = [0.9, 0.8, 0.7]
    p[:, labels.index("no_camera")] = [0.1, 0.2, 0.3]
    boxes = [(100.0, 100.0, 120.0, 120.0), (101.0, 101.0, 121.0, 121.0), (130.0, 100.0, 150.0, 120.0)]
    cameras, _ = zoom_cameras(boxes, p, labels, threshold=0.5)
    # the second box is the first camera again; the third, beside it on the pole, is its own camera
    assert [c.box for c in cameras] == [boxes[0], boxes[2]]
    assert iou(boxes[0], boxes[1]) > 0.5 and distinct(boxes, [0.8, 0.9, 0.7]) == [1, 2]
