"""Training augmentations that mimic citizens' phone photos, ending in the shared ``prepare``.

Evaluation uses :func:`data.preprocess.prepare` alone (the parity contract with the server);
training adds albumentations 2.x augmentations *before* the very same ``prepare`` call.
"""

from __future__ import annotations

from collections.abc import Callable

import albumentations as A
import cv2
import numpy as np
from PIL import Image

from data.preprocess import ResizeRule, prepare

Transform = Callable[[Image.Image], np.ndarray]


def build_augmentations(rule: ResizeRule, seed: int | None = None) -> A.Compose:
    """Geometry of a phone held up at a pole, light, blur, sensor noise and JPEG re-encoding."""
    fill = tuple(float(v) for v in rule.fill)
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            # zoom out (camera gets small, padded with the letterbox colour) or in, tilt, shift
            A.Affine(
                scale=(0.45, 1.25),
                translate_percent=(-0.12, 0.12),
                rotate=(-12, 12),
                shear=(-6, 6),
                border_mode=cv2.BORDER_CONSTANT,
                fill=fill,
                p=0.8,
            ),
            A.Perspective(scale=(0.02, 0.08), border_mode=cv2.BORDER_CONSTANT, fill=fill, p=0.4),
            A.RandomBrightnessContrast(brightness_limit=0.3, contrast_limit=0.3, p=0.7),
            A.HueSaturationValue(hue_shift_limit=8, sat_shift_limit=25, val_shift_limit=15, p=0.4),
            A.RandomGamma(gamma_limit=(70, 140), p=0.3),
            A.ToGray(p=0.05),
            A.OneOf(
                [
                    A.MotionBlur(blur_limit=(3, 9)),
                    A.Defocus(radius=(1, 3), alias_blur=(0.1, 0.3)),
                    A.GaussianBlur(sigma_limit=(0.3, 1.5)),
                ],
                p=0.35,
            ),
            A.OneOf(
                [A.GaussNoise(std_range=(0.01, 0.06)), A.ISONoise(intensity=(0.1, 0.4))],
                p=0.3,
            ),
            A.Downscale(scale_range=(0.35, 0.9), p=0.15),
            A.ImageCompression(quality_range=(35, 95), p=0.6),
        ],
        seed=seed,
    )


def _cap_size(img: Image.Image, max_side: int) -> Image.Image:
    """Shrink huge photos before augmenting (speed); never enlarge."""
    w, h = img.size
    if max(w, h) <= max_side:
        return img.convert("RGB")
    s = max_side / max(w, h)
    return img.convert("RGB").resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BILINEAR)


def build_train_transform(rule: ResizeRule, seed: int | None = None, augment: bool = True) -> Transform:
    """PIL photo -> augmented -> the same ``prepare`` as evaluation -> uint8 ``(3, S, S)``."""
    if not augment:
        return build_eval_transform(rule)
    aug = build_augmentations(rule, seed)

    def transform(img: Image.Image) -> np.ndarray:
        arr = np.asarray(_cap_size(img, 2 * rule.size), dtype=np.uint8)
        out = aug(image=arr)["image"]
        return prepare(Image.fromarray(out), rule)

    return transform


def build_eval_transform(rule: ResizeRule) -> Transform:
    """Exactly what the server runs: ``prepare(img, rule)``."""

    def transform(img: Image.Image) -> np.ndarray:
        return prepare(img, rule)

    return transform
