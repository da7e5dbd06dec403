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

import warnings
from pathlib import Path

import torch
import torch.nn as nn

from ..core.registry import ModelRegistry, ModelSpec
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


class TimmNet(nn.Module):
    """A timm backbone with a ``K``-way head. ``pretrained_path``: a local ``.safetensors`` /
    ``.pth`` checkpoint of the same architecture (its classifier is replaced when K differs)."""

    def __init__(self, name: str, n_classes: int, drop_rate: float = 0.1, pretrained_path: str | None = None,
                 output_stride: int | None = None, input_size: int | None = None):
        super().__init__()
        import timm

        if input_size is not None and not 16 <= int(input_size) <= 1024:
            raise ConfigError(f"input_size must be in [16, 1024] px, got {input_size}")
        self.input_size = None if input_size is None else int(input_size)
        if not timm.is_model(name):
            raise ConfigError(f"timm has no model {name!r} (see timm.list_models())")
        kwargs = dict(num_classes=n_classes, in_chans=3, drop_rate=drop_rate)
        if output_stride:
            # dilate the last stage(s) instead of striding: a 64-px cutout then ends on a 4x4 map
            # (output_stride 16) rather than 2x2, at the cost of more compute in the last stage
            kwargs["output_stride"] = int(output_stride)
        if pretrained_path and Path(pretrained_path).exists():
            # pretrained_cfg_overlay points timm at the local file: no hub or URL is consulted
            self.net = timm.create_model(name, pretrained=True,
                                         pretrained_cfg_overlay={"file": str(pretrained_path)}, **kwargs)
        else:
            if pretrained_path:
                # Training checks the file exists (fit_preprocessing); here we are rebuilding a trained
                # bundle, whose own weights replace these right away.
                warnings.warn(f"pretrained weights {pretrained_path} not found; building without them")
            self.net = timm.create_model(name, pretrained=False, **kwargs)

    def forward(self, x):
        if self.input_size is not None and x.shape[-1] != self.input_size:
            # Resizing inside the network keeps one image size for the loaders, the seed models and
            # the bundles, while the backbone runs at the size that served it best: on Galaxy Zoo 1,
            # 48 px gave the accuracy of 64 px (0.887 vs 0.884) and 96 px did worse (0.868), at half
            # the cost of 64 px. Plain bilinear, not antialiased: ONNX has no antialiased resize, and
            # at the default 64 -> 48 px every input pixel still reaches the output.
            x = nn.functional.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                                          antialias=False, align_corners=False)
        return self.net(x)


def check_pretrained(params: dict) -> None:
    """ConfigError when a pretrained-weights file is asked for but absent (never downloaded)."""
    path = params.get("pretrained_path")
    if path and not Path(path).is_file():
        raise ConfigError(f"pretrained weights file {path} does not exist; skysift never downloads weights: "
                          "put a local .safetensors/.pth checkpoint there or drop pretrained_path")


TIMM_DEFAULTS = {"drop_rate": 0.1, "pretrained_path": None, "output_stride": None, "input_size": None,
                 **AUGMENT_DEFAULTS}
#: resnet10t (a ResNet-10 with a three-conv "tiered" stem) from scratch won a CPU sweep on the real
#: GZ1 three-way split at 15 epochs: 0.887 held-out accuracy vs regnetx_002 0.866 (the previous
#: default), resnet14t 0.887 at twice the cost, lcnet_050 0.805, and 48 px as good as 64 px.
DEFAULT_BACKBONE = "resnet10t"
DEFAULT_INPUT_SIZE = 48


def _timm_net(backbone: str, p: dict, k: int) -> TimmNet:
    return TimmNet(backbone, k, p["drop_rate"], p["pretrained_path"], p["output_stride"], p.get("input_size"))


def _timm_spec(name: str) -> ModelSpec | None:
    if not name.startswith("timm:"):
        return None
    backbone = name.split(":", 1)[1]
    return ModelSpec(name, lambda p, s, k: _timm_net(backbone, p, k),
                     defaults=dict(TIMM_DEFAULTS), description=f"timm backbone {backbone}")


MODELS = ModelRegistry(fallback=_timm_spec)
MODELS.register(ModelSpec(
    "galaxy-timm", lambda p, s, k: _timm_net(p["backbone"], p, k),
    defaults={"backbone": DEFAULT_BACKBONE, **TIMM_DEFAULTS, "input_size": DEFAULT_INPUT_SIZE},
    description=f"compact timm backbone ({DEFAULT_BACKBONE}) from scratch at {DEFAULT_INPUT_SIZE} px"))
MODELS.register(ModelSpec(
    "seed-keras-cnn", lambda p, s, k: SeedKerasCNN(_input_size(s), k), defaults=dict(AUGMENT_DEFAULTS),
    description="the seed's Keras CNN: conv 8/8 3x3 stride 2 + pools, dense 16 (parity)"))
MODELS.register(ModelSpec(
    "seed-oxford-cnn", lambda p, s, k: SeedOxfordCNN(_input_size(s), k), defaults=dict(AUGMENT_DEFAULTS),
    description="the seed's Oxford CNN: conv 6/16 8x8 stride 2 + pools, FC 120-60 (parity)"))
