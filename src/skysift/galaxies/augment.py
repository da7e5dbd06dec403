"""Symmetry augmentation of galaxy images and test-time views.

A galaxy's class does not change when the image is rotated or mirrored, so the eight symmetries of
the square (the dihedral group D4: four quarter-turns, each with or without a mirror) are exact,
lossless augmentations; small-angle rotations, crops and brightness changes add the rest. Images
are ``(3, H, W)`` (one item) or ``(B, 3, H, W)`` (a batch) float tensors; the last two axes are
the image axes.

Rotated copies: when the training index repeats an object (random over-sampling of rare classes,
applied by the core to the training split only), the ``c``-th copy is shown under the fixed
symmetry ``c mod 8``, as the seed up-sampled rare classes with rotated copies.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

N_SYMMETRIES = 8
#: augmentation parameters every galaxies model accepts in ``model_params``
AUGMENT_DEFAULTS = {"max_rotation_deg": 15.0, "crop_scale": 0.85, "brightness": 0.15}


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Symmetry ``k`` (0-7) of the square applied to the last two axes: ``k % 4`` quarter-turns
    counter-clockwise, then a left-right mirror when ``k >= 4``. ``k = 0`` is the identity."""
    k = int(k) % N_SYMMETRIES
    out = torch.rot90(x, k % 4, dims=(-2, -1)) if k % 4 else x
    return torch.flip(out, dims=(-1,)) if k >= 4 else out


def dihedral_views() -> list[Callable[[torch.Tensor], torch.Tensor]]:
    """The seven non-identity symmetries as functions on a batch (for test-time augmentation)."""
    return [(lambda x, k=k: dihedral(x, k)) for k in range(1, N_SYMMETRIES)]


class GalaxyAugment:
    """Random label-preserving augmentation of one ``(3, H, W)`` image in [0, 1].

    Parameters
    ----------
    max_rotation_deg : small-angle rotations are drawn uniformly in ± this (after a random one of
        the eight symmetries); 0 turns them off.
    crop_scale : random square crops keep this fraction (uniform in [crop_scale, 1]) of the side,
        resized back to the input size; 1 turns them off.
    brightness : the image is multiplied by a factor uniform in [1 - b, 1 + b].
    """

    def __init__(self, max_rotation_deg: float = 15.0, crop_scale: float = 0.85, brightness: float = 0.15):
        if not 0 <= max_rotation_deg <= 180:
            raise ValueError(f"max_rotation_deg must be in [0, 180], got {max_rotation_deg}")
        if not 0.3 <= crop_scale <= 1:
            raise ValueError(f"crop_scale must be in [0.3, 1], got {crop_scale}")
        if not 0 <= brightness < 1:
            raise ValueError(f"brightness must be in [0, 1), got {brightness}")
        self.max_rotation_deg = float(max_rotation_deg)
        self.crop_scale = float(crop_scale)
        self.brightness = float(brightness)

    def __call__(self, img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        import torchvision.transforms.v2.functional as TF

        img = dihedral(img, int(rng.integers(N_SYMMETRIES)))
        h, w = img.shape[-2:]
        if self.max_rotation_deg > 0:
            angle = float(rng.uniform(-self.max_rotation_deg, self.max_rotation_deg))
            # the corners this leaves empty are filled with 0, close to the dark sky of cutouts
            img = TF.rotate(img, angle, interpolation=TF.InterpolationMode.BILINEAR)
        if self.crop_scale < 1:
            side = max(4, int(round(h * rng.uniform(self.crop_scale, 1.0))))
            top = int(rng.integers(0, h - side + 1)) if side < h else 0
            left = int(rng.integers(0, w - side + 1)) if side < w else 0
            img = TF.resized_crop(img, top, left, side, side, [h, w], antialias=True)
        if self.brightness > 0:
            img = img * float(rng.uniform(1 - self.brightness, 1 + self.brightness))
        return img.clamp_(0, 1.5)

