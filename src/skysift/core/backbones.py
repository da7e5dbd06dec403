"""timm networks for any task: :class:`TimmNet`, local-only pretrained weights, and the
``timm:<name>`` fallback of a task's model registry.

Nothing is ever downloaded: pretrained weights come from a local file, or (``pretrained=True``)
from the local Hugging Face / torch hub caches; weights that are not on disk are a ConfigError
at training time, and only a warning when rebuilding a trained bundle (its own weights replace
them right away).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from .registry import ModelSpec, spec_from_builder


def check_timm_name(name: str) -> None:
    import timm

    if not timm.is_model(name):
        raise ConfigError(f"timm has no model {name!r} (see timm.list_models())")


def resolve_pretrained(backbone: str, pretrained) -> str | None:
    """Local file holding pretrained weights for ``backbone``, or None when ``pretrained`` is false.

    ``pretrained`` may be a path (must exist) or ``true`` (looked up in the local Hugging Face hub
    cache and the torch hub checkpoint folder, never fetched). ConfigError when not on disk."""
    if not pretrained:
        return None
    if isinstance(pretrained, (str, Path)) and str(pretrained).lower() not in ("true", "1", "yes"):
        if not Path(pretrained).is_file():
            raise ConfigError(f"pretrained weights file {pretrained} does not exist; skysift never downloads "
                              "weights: put a local .safetensors/.pth checkpoint there or set pretrained=false")
        return str(pretrained)
    import timm

    check_timm_name(backbone)
    found: Any = timm.models.get_pretrained_cfg(backbone) or {}
    cfg: dict = found.to_dict() if hasattr(found, "to_dict") else dict(found)
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
    """A timm backbone with ``in_chans`` input channels and a ``K``-way head.

    ``pretrained``: false, a local ``.safetensors`` / ``.pth`` checkpoint of the same
    architecture, or true for the local caches (:func:`resolve_pretrained`); timm replaces the
    classifier when K differs and adapts the first convolution to ``in_chans``.
    ``output_stride``: dilate the last stage(s) instead of striding. ``input_size``: px (int,
    square) or ``(height, width)`` the batch is resized to inside the network.
    """

    def __init__(self, name: str, n_classes: int, *, in_chans: int = 3, drop_rate: float = 0.1,
                 pretrained=None, output_stride: int | None = None, input_size=None):
        super().__init__()
        import timm

        check_timm_name(name)
        kwargs: dict[str, Any] = dict(num_classes=n_classes, in_chans=in_chans, drop_rate=drop_rate)
        self.input_size = input_size
        self._size: tuple[int, ...] | None = None
        if input_size is not None:
            self._size = ((int(input_size),) * 2 if isinstance(input_size, (int, float))
                          else tuple(int(s) for s in input_size))
            if "swin" in name:
                kwargs["img_size"] = self._size  # Swin's window grid is fixed by its image size
        if output_stride:
            # dilate the last stage(s) instead of striding: a 64-px cutout then ends on a 4x4 map
            # (output_stride 16) rather than 2x2, at the cost of more compute in the last stage
            kwargs["output_stride"] = int(output_stride)
        try:
            weights = resolve_pretrained(name, pretrained)
        except ConfigError as e:
            # training checks this first (fit_preprocessing); here we are rebuilding a trained
            # bundle, whose own weights replace these right away
            warnings.warn(f"{e}; building {name} without pretrained weights")
            weights = None
        if weights:
            # pretrained_cfg_overlay points timm at the local file: no hub or URL is consulted
            self.net = timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": weights}, **kwargs)
        else:
            self.net = timm.create_model(name, pretrained=False, **kwargs)

    def forward(self, x):
        if self._size is not None and tuple(x.shape[-2:]) != self._size:
            # Resizing inside the network keeps one image size for the loaders, the other models
            # and the bundles, while the backbone runs at the size that serves it best (galaxies:
            # 48 px gave the accuracy of 64 px at half the cost; Swin needs 224). Plain bilinear,
            # not antialiased: ONNX has no antialiased resize, and at galaxies' 64 -> 48 px every
            # input pixel still reaches the output.
            x = nn.functional.interpolate(x, size=self._size, mode="bilinear", antialias=False,
                                          align_corners=False)
        return self.net(x)


def timm_fallback(make_builder: Callable[[str], Callable], *, prefix: str = "timm:",
                  data_defaults: dict | None = None, train_overrides: dict | None = None
                  ) -> Callable[[str], ModelSpec | None]:
    """A :class:`~skysift.core.registry.ModelRegistry` fallback turning ``timm:<backbone>`` into
    a model: ``make_builder(backbone)`` returns the task's builder function for that backbone
    (its keyword defaults may depend on the backbone, e.g. Swin's 224-px input)."""
    def fallback(name: str) -> ModelSpec | None:
        if not name.startswith(prefix):
            return None
        backbone = name[len(prefix):]
        return spec_from_builder(make_builder(backbone), name=name, data_defaults=data_defaults,
                                 train_overrides=train_overrides, description=f"timm backbone {backbone}")

    return fallback


__all__ = ["TimmNet", "check_timm_name", "resolve_pretrained", "timm_fallback"]
