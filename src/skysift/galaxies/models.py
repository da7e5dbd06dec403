"""Networks for the galaxies task. Inputs: ``(B, 3, S, S)`` normalised images; outputs ``(B, K)`` logits.

* ``seed-keras-cnn`` and ``seed-oxford-cnn``: the seed project's two small CNNs, kept for parity.
* ``timm:<name>``: any timm backbone by name (``timm:resnet18``, ``timm:convnext_atto`` ...), with
  optional local pretrained weights (``model_params={"pretrained_path": "weights.safetensors"}``);
  nothing is ever downloaded.
* the default, ``galaxy-timm``: a compact timm backbone (``backbone`` parameter, default
  ``DEFAULT_BACKBONE``) that sees the cutout at ``input_size`` px (default 48), chosen by accuracy on
  the real Galaxy Zoo 1 cutouts and by speed on 2 CPU cores (see ``benchmarks/bench_galaxies.py``).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from ..core.backbones import TimmNet, timm_fallback
from ..core.registry import ModelRegistry, register_model
from ..errors import ConfigError
from .augment import AUGMENT_DEFAULTS


def _input_size(stats: dict) -> int:
    return int(stats.get("image_size", 64))


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


def check_pretrained(params: dict) -> None:
    """ConfigError when a pretrained-weights file is asked for but absent (never downloaded)."""
    path = params.get("pretrained_path")
    if path and not Path(path).is_file():
        raise ConfigError(f"pretrained weights file {path} does not exist; skysift never downloads weights: "
                          "put a local .safetensors/.pth checkpoint there or drop pretrained_path")


#: resnet10t (a ResNet-10 with a three-conv "tiered" stem) from scratch won a CPU sweep on the real
#: GZ1 three-way split at 15 epochs: 0.887 held-out accuracy vs regnetx_002 0.866 (the previous
#: default), resnet14t 0.887 at twice the cost, lcnet_050 0.805, and 48 px as good as 64 px.
DEFAULT_BACKBONE = "resnet10t"
DEFAULT_INPUT_SIZE = 48


def _timm_net(backbone: str, n_classes: int, drop_rate: float, pretrained_path: str | None,
              output_stride: int | None, input_size: int | None) -> TimmNet:
    if input_size is not None and not 16 <= int(input_size) <= 1024:
        raise ConfigError(f"input_size must be in [16, 1024] px, got {input_size}")
    return TimmNet(backbone, n_classes, in_chans=3, drop_rate=drop_rate, pretrained=pretrained_path,
                   output_stride=output_stride, input_size=None if input_size is None else int(input_size))


def _timm_builder(backbone: str):
    def timm_backbone(n_classes: int, stats: dict, *, drop_rate: float = 0.1, pretrained_path: str | None = None,
                      output_stride: int | None = None, input_size: int | None = None) -> TimmNet:
        """Any timm backbone by name, from scratch or from a local checkpoint (``pretrained_path``)."""
        return _timm_net(backbone, n_classes, drop_rate, pretrained_path, output_stride, input_size)

    return timm_backbone


MODELS = ModelRegistry(fallback=timm_fallback(_timm_builder, data_defaults=AUGMENT_DEFAULTS))


@register_model(MODELS, data_defaults=AUGMENT_DEFAULTS)
def galaxy_timm(n_classes: int, stats: dict, *, backbone: str = DEFAULT_BACKBONE, drop_rate: float = 0.1,
                pretrained_path: str | None = None, output_stride: int | None = None,
                input_size: int | None = DEFAULT_INPUT_SIZE) -> TimmNet:
    """compact timm backbone (resnet10t) from scratch at 48 px

    ``backbone`` any timm name; ``input_size`` the px the backbone sees (the cutout is resized
    inside the network); ``pretrained_path`` a local checkpoint (never downloaded)."""
    return _timm_net(backbone, n_classes, drop_rate, pretrained_path, output_stride, input_size)


@register_model(MODELS, data_defaults=AUGMENT_DEFAULTS)
def seed_keras_cnn(n_classes: int, stats: dict) -> SeedKerasCNN:
    """the seed's Keras CNN: conv 8/8 3x3 stride 2 + pools, dense 16 (parity)"""
    return SeedKerasCNN(_input_size(stats), n_classes)


@register_model(MODELS, data_defaults=AUGMENT_DEFAULTS)
def seed_oxford_cnn(n_classes: int, stats: dict) -> SeedOxfordCNN:
    """the seed's Oxford CNN: conv 6/16 8x8 stride 2 + pools, FC 120-60 (parity)"""
    return SeedOxfordCNN(_input_size(stats), n_classes)
