"""The normalisation every camid network carries inside itself (and so inside its ONNX graph)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def pixel_vector(values: Sequence[float]) -> torch.Tensor:
    """Per-channel fractions of 255 as a ``[1,3,1,1]`` tensor on the 0..255 scale."""
    return torch.tensor(values, dtype=torch.float32).view(1, 3, 1, 1) * 255


class PixelModel(nn.Module):
    """A module fed uint8 (or 0..255 float) RGB; ``pixel_mean`` / ``pixel_std`` (0..255 scale)
    are buffers saved in the state dict, so a checkpoint and its export carry their own
    normalisation."""

    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("pixel_mean", pixel_vector(mean))
        self.register_buffer("pixel_std", pixel_vector(std))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 / 0..255 float to the backbone's normalised float input."""
        return (x.float() - self.pixel_mean) / self.pixel_std
