"""Networks of the technosignatures task: :class:`CadenceCNN`. Inputs ``(B, C, t, f)`` (C = 6
scans, or 3 for the ON / ON−OFF views); outputs ``(B, 2)`` logits. (timm backbones are
:class:`skysift.core.networks.TimmNet`.)

The builders that make them by name are in :mod:`.models`, which imports this module only when it
builds a network: listing the models does not load torch.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import ConfigError


def _block(c_in: int, c_out: int, n_conv: int) -> nn.Sequential:
    layers = []
    for k in range(n_conv):
        layers += [nn.Conv2d(c_in if k == 0 else c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                   nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class CadenceCNN(nn.Module):
    """Conv stages of ``widths`` (3×3 convs: two in the second stage, one elsewhere), 2×2 max-pool between
    stages, global average ⊕ max pooling, dropout, linear head."""

    def __init__(self, in_channels: int, n_classes: int, widths=(16, 32, 48, 64), dropout: float = 0.2):
        super().__init__()
        if len(widths) < 1 or min(widths) < 1:
            raise ConfigError(f"widths must be a non-empty list of positive ints, got {widths}")
        stages, c = [], in_channels
        for k, w in enumerate(widths):
            if k:
                stages.append(nn.MaxPool2d(2))
            stages.append(_block(c, int(w), 2 if k == 1 else 1))
            c = int(w)
        self.features = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * c, n_classes))

    def forward(self, x):
        h = self.features(x)
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return self.head(pooled)


__all__ = ["CadenceCNN"]
