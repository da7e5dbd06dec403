"""Networks of the galaxies task: the seed project's two small CNNs, kept for parity. Inputs
``(B, 3, S, S)`` normalised images; outputs ``(B, K)`` logits. (timm backbones are
:class:`skysift.core.networks.TimmNet`.)

The builders that make them by name are in :mod:`.models`, which imports this module only when it
builds a network: listing the models does not load torch.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import ConfigError


def _flat_size(features: nn.Module, size: int) -> int:
    with torch.no_grad():
        return int(features(torch.zeros(1, 3, size, size)).numel())


class SeedKerasCNN(nn.Module):
    """The seed's Keras CNN: Conv 8 3×3 stride 2, max-pool 2, Conv 8 3×3 stride 2, max-pool 2,
    Dense 16, softmax (here: logits; the loss applies the softmax). ReLU activations."""

    def __init__(self, size: int, n_classes: int):
        super().__init__()
        if size < 24:
            raise ConfigError(f"seed-keras-cnn needs images of at least 24 px, got {size}")
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 8, 3, stride=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(_flat_size(self.features, size), 16), nn.ReLU(),
                                  nn.Linear(16, n_classes))

    def forward(self, x):
        return self.head(self.features(x))


class SeedOxfordCNN(nn.Module):
    """The seed's Oxford-course CNN: Conv 6 8×8 stride 2, max-pool 2, Conv 16 8×8 stride 2,
    max-pool 2, FC 120, FC 60, softmax (logits here). ReLU activations."""

    def __init__(self, size: int, n_classes: int):
        super().__init__()
        if size < 64:
            raise ConfigError(f"seed-oxford-cnn needs images of at least 64 px (8x8 kernels), got {size}")
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 8, stride=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 8, stride=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(_flat_size(self.features, size), 120), nn.ReLU(),
                                  nn.Linear(120, 60), nn.ReLU(), nn.Linear(60, n_classes))

    def forward(self, x):
        return self.head(self.features(x))


__all__ = ["SeedKerasCNN", "SeedOxfordCNN"]
