"""Networks shared by tasks: :class:`TimmNet`, any timm backbone with a K-way head.

Apart from :mod:`skysift.core.backbones` because a ``nn.Module`` subclass needs torch when the
class is defined; the task builders import this module when they build a network.
"""
from __future__ import annotations

import warnings
from typing import Any

from torch import nn

from ..errors import ConfigError
from .backbones import check_timm_name, resolve_pretrained


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
            warnings.warn(f"{e}; building {name} without pretrained weights", stacklevel=2)
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


__all__ = ["TimmNet"]
