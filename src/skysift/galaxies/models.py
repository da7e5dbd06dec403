"""Models of the galaxies task by name. Inputs: ``(B, 3, S, S)`` normalised images; outputs ``(B, K)`` logits.

* ``seed-keras-cnn`` and ``seed-oxford-cnn``: the seed project's two small CNNs, kept for parity.
* ``timm:<name>``: any timm backbone by name (``timm:resnet18``, ``timm:convnext_atto`` ...), with
  optional local pretrained weights (``model_params={"pretrained_path": "weights.safetensors"}``);
  nothing is ever downloaded.
* the default, ``galaxy-timm``: a compact timm backbone (``backbone`` parameter, default
  ``DEFAULT_BACKBONE``) that sees the cutout at ``input_size`` px (default 48), chosen by accuracy on
  the real Galaxy Zoo 1 cutouts and by speed on 2 CPU cores (see ``benchmarks/bench_galaxies.py``).

The networks are in :mod:`.networks` and :mod:`skysift.core.networks`; each builder imports them in
its body, so that this registry (what ``skysift models`` lists) loads without torch.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..core.backbones import timm_fallback
from ..core.registry import ModelRegistry, register_model
from ..errors import ConfigError
from .defaults import AUGMENT_DEFAULTS

if TYPE_CHECKING:
    from ..core.networks import TimmNet
    from .networks import D4GroupCNN, MultiScaleNet, SeedKerasCNN, SeedOxfordCNN


def _input_size(stats: dict) -> int:
    return int(stats.get("image_size", 64))


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
    from ..core.networks import TimmNet

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
    from .networks import SeedKerasCNN

    return SeedKerasCNN(_input_size(stats), n_classes)


@register_model(MODELS, data_defaults=AUGMENT_DEFAULTS)
def seed_oxford_cnn(n_classes: int, stats: dict) -> SeedOxfordCNN:
    """the seed's Oxford CNN: conv 6/16 8x8 stride 2 + pools, FC 120-60 (parity)"""
    from .networks import SeedOxfordCNN

    return SeedOxfordCNN(_input_size(stats), n_classes)


@register_model(MODELS, data_defaults=AUGMENT_DEFAULTS)
def galaxy_d4cnn(n_classes: int, stats: dict, *, widths: list = [6, 12, 24, 48], blocks: int = 1,  # noqa: B006
                 drop_rate: float = 0.1, input_size: int = DEFAULT_INPUT_SIZE) -> D4GroupCNN:
    """D4-equivariant group CNN (rotations by 90 deg and mirrors built in), from scratch at 48 px

    ``widths`` fields per stage (8 channels each); ``blocks`` group convolutions per stage. A candidate
    against the default on the frozen GZ1 outer split (benchmarks/protocol.md), not the default:
    accuracy 0.854 [0.833, 0.875] there, 0.024 [0.008, 0.040] below it (early-stopped at epoch 10)."""
    from .networks import D4GroupCNN

    return D4GroupCNN(n_classes, widths=tuple(widths), blocks=blocks, drop_rate=drop_rate, input_size=input_size)


@register_model(MODELS, data_defaults=AUGMENT_DEFAULTS)
def galaxy_multiscale(n_classes: int, stats: dict, *, backbone: str = DEFAULT_BACKBONE, centre: float = 0.5,
                      drop_rate: float = 0.1, input_size: int = DEFAULT_INPUT_SIZE) -> MultiScaleNet:
    """timm backbone on the whole cutout and its centre, features concatenated (read wider: crop 0.6)

    ``centre`` the central fraction of the cutout for the second view. Meant for cutouts read with
    twice the default field of view (GZ1: crop 0.6, so the centre view is the default's 0.3). A
    candidate against the default on the frozen GZ1 outer split, not the default: accuracy 0.885
    [0.867, 0.904] there, +0.007 [-0.004, +0.019] over it, at twice the training cost."""
    from .networks import MultiScaleNet

    return MultiScaleNet(backbone, n_classes, centre=centre, drop_rate=drop_rate, input_size=input_size)
