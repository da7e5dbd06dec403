"""Symmetry augmentation of galaxy images and test-time views.

A galaxy's class does not change when the image is rotated or mirrored, so the eight symmetries of
the square (the dihedral group D4: four quarter-turns, each with or without a mirror) are exact,
lossless augmentations; small-angle rotations, crops and brightness changes add the rest. Images
are ``(3, H, W)`` (one item) or ``(B, 3, H, W)`` (a batch) float tensors; the last two axes are
the image axes. The geometric part runs on whole training batches (``Task.batch_augment``), the
brightness change per item in the dataset.

Rotated copies: when the training index repeats an object (random over-sampling of rare classes,
applied by the core to the training split only), the ``c``-th copy is shown under the fixed
symmetry ``c mod 8``, as the seed up-sampled rare classes with rotated copies.
"""
from __future__ import annotations

from typing import Callable

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


class SymmetryAugment:
    """Random label-preserving augmentation of a training batch ``(B, 3, H, W)``.

    Each image gets a random one of the eight symmetries, then one affine resampling that combines
    a small rotation, a random square crop (zoom) and a shift; the brightness factor is applied per
    item by the dataset, before normalisation. Doing the geometry on the whole batch with one
    ``grid_sample`` is ~50x faster on CPU than per-image torchvision calls (measured: 7.7 ms per
    item before). Empty borders are filled by reflection, which keeps them sky-like.

    Parameters
    ----------
    max_rotation_deg : rotation angle uniform in ± this; 0 turns rotations off.
    crop_scale : the crop keeps a side fraction uniform in [crop_scale, 1], shifted at random
        within the frame; 1 turns crops off.
    """

    def __init__(self, max_rotation_deg: float = 15.0, crop_scale: float = 0.85):
        if not 0 <= max_rotation_deg <= 180:
            raise ValueError(f"max_rotation_deg must be in [0, 180], got {max_rotation_deg}")
        if not 0.3 <= crop_scale <= 1:
            raise ValueError(f"crop_scale must be in [0.3, 1], got {crop_scale}")
        self.max_rotation_deg = float(max_rotation_deg)
        self.crop_scale = float(crop_scale)

    def __call__(self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator):
        import torch.nn.functional as F

        b = inputs.shape[0]
        k = torch.randint(0, N_SYMMETRIES, (b,), generator=generator)
        out = inputs.clone()
        for sym in range(1, N_SYMMETRIES):
            sel = (k == sym).nonzero().flatten().to(inputs.device)
            if len(sel):
                out[sel] = dihedral(inputs[sel], sym)
        if self.max_rotation_deg == 0 and self.crop_scale == 1:
            return out, targets
        angle = (torch.rand(b, generator=generator) * 2 - 1) * (self.max_rotation_deg * torch.pi / 180)
        scale = self.crop_scale + (1 - self.crop_scale) * torch.rand(b, generator=generator)
        shift = (torch.rand(b, 2, generator=generator) * 2 - 1) * (1 - scale)[:, None]
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], dim=1),
                             torch.stack([sin, cos, shift[:, 1]], dim=1)], dim=1)
        theta = theta.to(device=inputs.device, dtype=out.dtype)
        grid = F.affine_grid(theta, list(out.shape), align_corners=False)
        out = F.grid_sample(out, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        return out, targets
