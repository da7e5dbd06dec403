"""Networks for technosignatures. Inputs ``(B, C, t, f)`` (C = 6 scans, or 3 for the ON / ON−OFF
views); outputs ``(B, 2)`` logits.

* ``cadence-cnn`` (default): a compact VGG-style CNN (about 11 M multiply-adds at the default 32 × 64) that
  trains in minutes on 2 CPU cores. The scans are input channels, so the first layers can compare
  ON with OFF at each time × frequency pixel; global average + max pooling makes it independent of
  where the needle lies.
* ``timm:<name>``: any timm backbone (``timm:efficientnet_b0``,
  ``timm:swin_tiny_patch4_window7_224`` for parity with the seed), with ``in_chans`` = C and an
  optional ``input_size`` the batch is resized to (Swin needs 224 × 224). ``pretrained``: ``false``;
  ``true`` (weights from the local Hugging Face / torch hub cache only); or a local file path.
  Nothing is ever downloaded: asking for weights that are not on disk is a ConfigError.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.registry import ModelRegistry, ModelSpec
from ..errors import ConfigError
from .augment import AUGMENT_DEFAULTS
from .preprocess import PREPROCESS_DEFAULTS, VIEWS


def _in_channels(params: dict) -> int:
    return VIEWS.get(params.get("view", "all"), 6)


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


# ---- timm backbones --------------------------------------------------------------------------
def resolve_pretrained(backbone: str, pretrained) -> str | None:
    """Local file holding pretrained weights for ``backbone``, or None when ``pretrained`` is false.

    ``pretrained`` may be a path (must exist) or ``true`` (looked up in the local Hugging Face hub
    cache and the torch hub checkpoint folder, never fetched). ConfigError when not on disk."""
    if not pretrained:
        return None
    if isinstance(pretrained, str) and pretrained.lower() not in ("true", "1", "yes"):
        if not Path(pretrained).is_file():
            raise ConfigError(f"pretrained weights file {pretrained} does not exist; skysift never downloads "
                              "weights: put a local .safetensors/.pth checkpoint there or set pretrained=false")
        return str(pretrained)
    import timm

    if not timm.is_model(backbone):
        raise ConfigError(f"timm has no model {backbone!r} (see timm.list_models())")
    cfg = timm.models.get_pretrained_cfg(backbone) or {}
    cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    candidates = []
    if cfg.get("hf_hub_id"):
        try:
            from huggingface_hub import try_to_load_from_cache

            for fname in ("model.safetensors", "pytorch_model.bin"):
                hit = try_to_load_from_cache(cfg["hf_hub_id"], fname)
                if isinstance(hit, str):
                    candidates.append(hit)
        except ImportError:
            pass
    if cfg.get("url"):
        candidates.append(str(Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg["url"]).name))
    for c in candidates:
        if Path(c).is_file():
            return c
    raise ConfigError(f"no local pretrained weights for timm model {backbone!r} (looked in the Hugging Face cache "
                      f"for {cfg.get('hf_hub_id') or '-'} and in {torch.hub.get_dir()}/checkpoints); skysift never "
                      "downloads weights: pass pretrained=<path to a checkpoint> or pretrained=false")


class TimmNet(nn.Module):
    """A timm backbone with ``in_chans`` = the number of view channels and a 2-way head."""

    def __init__(self, backbone: str, in_channels: int, n_classes: int, pretrained=False, input_size=None,
                 drop_rate: float = 0.1):
        super().__init__()
        import timm

        if not timm.is_model(backbone):
            raise ConfigError(f"timm has no model {backbone!r} (see timm.list_models())")
        kwargs = dict(num_classes=n_classes, in_chans=in_channels, drop_rate=drop_rate)
        self.input_size = None if input_size is None else tuple(int(s) for s in input_size)
        if self.input_size is not None and "swin" in backbone:
            kwargs["img_size"] = self.input_size
        try:
            weights = resolve_pretrained(backbone, pretrained)
        except ConfigError as e:
            # training checks this first (fit_preprocessing); here we may be rebuilding a trained
            # bundle, whose own weights replace these immediately
            warnings.warn(f"{e}; building {backbone} without pretrained weights")
            weights = None
        if weights:
            # pretrained_cfg_overlay points timm at the local file: no hub or URL is consulted; timm
            # adapts the first convolution to in_chans = 6 or 3
            self.net = timm.create_model(backbone, pretrained=True, pretrained_cfg_overlay={"file": weights}, **kwargs)
        else:
            self.net = timm.create_model(backbone, pretrained=False, **kwargs)

    def forward(self, x):
        if self.input_size is not None:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False)
        return self.net(x)


COMMON_DEFAULTS = {**PREPROCESS_DEFAULTS, **AUGMENT_DEFAULTS}
TIMM_DEFAULTS = {"pretrained": False, "input_size": None, "drop_rate": 0.1, **COMMON_DEFAULTS}


def _timm_spec(name: str) -> ModelSpec | None:
    if not name.startswith("timm:"):
        return None
    backbone = name.split(":", 1)[1]
    defaults = dict(TIMM_DEFAULTS, backbone=backbone)  # recorded for the bundle and the weights check
    if "swin" in backbone:
        defaults["input_size"] = [224, 224]
    return ModelSpec(name, lambda p, s, k: TimmNet(backbone, _in_channels(p), k, p["pretrained"], p["input_size"],
                                                   p["drop_rate"]),
                     defaults=defaults, description=f"timm backbone {backbone}")


MODELS = ModelRegistry(fallback=_timm_spec)
MODELS.register(ModelSpec(
    "cadence-cnn", lambda p, s, k: CadenceCNN(_in_channels(p), k, tuple(p["widths"]), p["dropout"]),
    defaults={"widths": [16, 32, 48, 64], "dropout": 0.2, **COMMON_DEFAULTS},
    description="compact CNN over the six scans as channels (default; fast on CPU)"))
