"""Several photo classifiers as one model: the mean of their probabilities.

Models trained alike but for the training seed disagree on real photos far more than on renders
(docs/synthetic.md); their mean is steadier than any one of them. The ensemble is an ordinary
camid classifier to everything else: its ``forward`` gives the log of the mean probabilities (so
a softmax of it *is* the mean, and a temperature calibrates it as it would one model's logits),
and its class-activation map is the mean of the members' maps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from model.factory import CamidNet


class CamidEnsemble(nn.Module):
    """uint8 (or 0..255 float) RGB ``[N,3,H,W]`` in, ``log(mean softmax)`` ``[N,C]`` out."""

    def __init__(self, members: Sequence[CamidNet]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        if len({m.num_classes for m in members}) != 1:
            raise ValueError(
                f"members predict different numbers of classes: {[m.num_classes for m in members]}"
            )
        first = members[0]
        for m in members[1:]:
            if not (
                torch.equal(m.pixel_mean, first.pixel_mean) and torch.equal(m.pixel_std, first.pixel_std)
            ):
                raise ValueError("members normalise their input differently; train them with the same arch")
        self.members = nn.ModuleList(members)

    @property
    def num_classes(self) -> int:
        return self._member(0).num_classes

    @property
    def pixel_mean(self) -> torch.Tensor:
        return self._member(0).pixel_mean

    @property
    def pixel_std(self) -> torch.Tensor:
        return self._member(0).pixel_std

    @property
    def dropout(self) -> nn.Dropout:
        return self._member(0).dropout

    def _member(self, i: int) -> CamidNet:
        m = self.members[i]
        assert isinstance(m, CamidNet)
        return m

    def _mean_log_prob(self, logits: Sequence[torch.Tensor]) -> torch.Tensor:
        log_p = torch.stack([torch.log_softmax(z.float(), dim=1) for z in logits])
        return torch.logsumexp(log_p, dim=0) - math.log(len(logits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._mean_log_prob([m(x) for m in self.members])

    def forward_cam(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log mean probabilities, the members' mean class-activation map)``."""
        outs = [self._member(i).forward_cam(x) for i in range(len(self.members))]
        cam = torch.stack([c for _, c in outs]).mean(0)
        return self._mean_log_prob([z for z, _ in outs]), cam
