"""Networks of the galaxies task: the seed project's two small CNNs, kept for parity, and a
group-equivariant CNN (:class:`D4GroupCNN`). Inputs ``(B, 3, S, S)`` normalised images; outputs
``(B, K)`` logits. (timm backbones are :class:`skysift.core.networks.TimmNet`.)

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


# ---- D4 (p4m) group convolutions -------------------------------------------------------------------
# An element (m, r) of D4 acts on a filter as "mirror m times, then rotate by r quarter turns".
# (m1, r1)(m2, r2) = (m1 ^ m2, r1 + (-1)^m1 r2 mod 4); every mirror is its own inverse.
_D4 = [(m, r) for m in (0, 1) for r in range(4)]


def _mul(a, b):
    return (a[0] ^ b[0], (a[1] + (-1) ** a[0] * b[1]) % 4)


def _inv(a):
    return a if a[0] else (0, -a[1] % 4)


def _act(w: torch.Tensor, g) -> torch.Tensor:
    """The spatial action of g on the last two axes of ``w``."""
    return torch.rot90(torch.flip(w, (-1,)) if g[0] else w, g[1], (-2, -1))


#: _PERM[g][h] = index of g⁻¹h: how a filter's group axis is permuted under g
_PERM = [[_D4.index(_mul(_inv(g), h)) for h in _D4] for g in _D4]


class D4Conv(nn.Module):
    """A convolution equivariant to the 8 rotations-by-90° and mirrors of the pixel grid (exactly,
    not approximately as for 45° steps). ``lift``: the input is a plain image (C_in channels),
    else C_in fields of 8 channels, one per group element; the output is C_out fields of 8.
    One weight tensor, expanded to its 8 transformed copies at every call."""

    def __init__(self, c_in: int, c_out: int, k: int, lift: bool = False):
        super().__init__()
        self.lift, self.c_out, self.k = lift, c_out, k
        shape = (c_out, c_in, k, k) if lift else (c_out, c_in, 8, k, k)
        self.weight = nn.Parameter(torch.empty(shape))
        fan_in = c_in * k * k * (1 if lift else 8)
        nn.init.kaiming_normal_(self.weight.view(c_out, -1), nonlinearity="relu")
        self.weight.data.mul_((2.0 / fan_in) ** 0.5 / self.weight.data.std().clamp_min(1e-8))

    def expanded(self) -> torch.Tensor:
        w = self.weight
        if self.lift:
            ws = [_act(w, g) for g in _D4]  # each (C_out, C_in, k, k)
        else:
            ws = [_act(w[:, :, _PERM[i]], g) for i, g in enumerate(_D4)]  # each (C_out, C_in, 8, k, k)
        w = torch.stack(ws, 1)  # (C_out, 8, ...)
        return w.reshape(self.c_out * 8, -1, self.k, self.k)

    def forward(self, x):
        return nn.functional.conv2d(x, self.expanded(), padding=self.k // 2)


class _D4Block(nn.Module):
    """D4Conv → batch norm shared over each field's 8 channels → ReLU."""

    def __init__(self, c_in: int, c_out: int, k: int, lift: bool = False):
        super().__init__()
        self.conv = D4Conv(c_in, c_out, k, lift)
        self.bn = nn.BatchNorm3d(c_out)

    def forward(self, x):
        z = self.conv(x)
        b, _, h, w = z.shape
        return nn.functional.relu(self.bn(z.view(b, -1, 8, h, w)).view(b, -1, h, w))


class D4GroupCNN(nn.Module):
    """A group-equivariant CNN (Cohen & Welling 2016's p4m; the symmetry Dieleman et al. 2015 built
    into their Galaxy Zoo network by hand): a galaxy has no preferred orientation or handedness on
    the sky, so every layer is built to commute with the 8 rotations by 90° and mirrors, and the
    output is invariant after pooling over the group. Smaller rotations are left to augmentation.

    A lifting block, then ``blocks`` group-conv blocks of ``widths`` fields (8 channels each), max
    pooling by 2 between stages; max over the group, global average, dropout, linear head.
    ``input_size``: px the batch is resized to inside the network, as TimmNet does.
    """

    def __init__(self, n_classes: int, *, widths=(6, 12, 24, 48), blocks: int = 1, drop_rate: float = 0.1,
                 input_size: int | None = 48):
        super().__init__()
        if input_size is not None and int(input_size) % 2 ** (len(widths) - 1):
            # max pooling commutes with quarter turns only on even-sized maps
            raise ConfigError(f"input_size must be divisible by {2 ** (len(widths) - 1)}, got {input_size}")
        self.input_size = None if input_size is None else int(input_size)
        layers: list[nn.Module] = [_D4Block(3, int(widths[0]), 5, lift=True)]
        c = int(widths[0])
        for i, w in enumerate(widths):
            if i > 0:
                layers.append(nn.MaxPool2d(2))
            for _ in range(int(blocks) if i > 0 else int(blocks) - 1):
                layers.append(_D4Block(c, int(w), 3))
                c = int(w)
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(drop_rate), nn.Linear(c, n_classes))

    def forward(self, x):
        if self.input_size is not None and tuple(x.shape[-2:]) != (self.input_size,) * 2:
            x = nn.functional.interpolate(x, size=(self.input_size,) * 2, mode="bilinear", antialias=False,
                                          align_corners=False)
        z = self.body(x)
        b, _, h, w = z.shape
        z = z.view(b, -1, 8, h, w).amax(2).mean((2, 3))  # invariant: max over the group, mean over space
        return self.head(z)


class MultiScaleNet(nn.Module):
    """One timm trunk run on two views of each cutout, their pooled features concatenated: the whole
    cutout (the galaxy's surroundings: companions, tidal features) and its central ``centre``
    fraction (the galaxy's own structure), each resized to ``input_size`` px."""

    def __init__(self, backbone: str, n_classes: int, *, centre: float = 0.5, drop_rate: float = 0.1,
                 input_size: int = 48):
        super().__init__()
        import timm

        if not 0.1 <= centre < 1:
            raise ConfigError(f"centre must be in [0.1, 1), got {centre}")
        self.centre, self.input_size = float(centre), int(input_size)
        self.trunk = timm.create_model(backbone, pretrained=False, num_classes=0, drop_rate=0.0)
        self.head = nn.Sequential(nn.Dropout(drop_rate), nn.Linear(2 * self.trunk.num_features, n_classes))

    def forward(self, x):
        s = x.shape[-1]
        c = max(1, int(round(self.centre * s)))
        lo = (s - c) // 2
        size = (self.input_size,) * 2
        views = [nn.functional.interpolate(v, size=size, mode="bilinear", antialias=False, align_corners=False)
                 for v in (x, x[..., lo:lo + c, lo:lo + c])]
        f = self.trunk(torch.cat(views))  # one pass over both views: the trunk's batch norm sees both
        return self.head(torch.cat(f.chunk(2), 1))


__all__ = ["D4Conv", "D4GroupCNN", "MultiScaleNet", "SeedKerasCNN", "SeedOxfordCNN"]
