"""timm backbones for any task: local-only pretrained weights and the ``timm:<name>`` fallback of a
task's model registry. The network itself, :class:`~skysift.core.networks.TimmNet`, lives in
:mod:`skysift.core.networks`: this module is imported by every task's model registry, which must
load without torch (``skysift models`` answers in a fraction of a second).

Nothing is ever downloaded: pretrained weights come from a local file, or (``pretrained=True``)
from the local Hugging Face / torch hub caches; weights that are not on disk are a ConfigError
at training time, and only a warning when rebuilding a trained bundle (its own weights replace
them right away).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    import torch

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


__all__ = ["check_timm_name", "resolve_pretrained", "timm_fallback"]
