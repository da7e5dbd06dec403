"""Normalisation statistics, geometry matching and the torch Dataset of galaxy images."""
from __future__ import annotations

import warnings

import numpy as np
import torch
from torch.utils.data import Dataset

from ..core.data import TaskData
from ..errors import DataError
from .augment import dihedral, is_mirror, mirror_permutation
from .io import DEFAULT_SIZE, LoadOptions, resize_array


def geometry(data: TaskData) -> tuple[int, float]:
    """(image size in px, central crop fraction of the original cutout) of loaded data."""
    card = data.meta.get("card", {})
    return int(np.asarray(data.x).shape[1]) if len(data) else int(card.get("image_size", DEFAULT_SIZE)), \
        float(card.get("crop", 1.0))


def fit_stats(train: TaskData, max_images: int = 4000) -> dict:
    """Per-channel mean and std (of pixel values scaled to [0, 1]) on the training images, and the
    geometry (size, crop) every later input is brought to."""
    x = np.asarray(train.x[: max_images], dtype=np.float32) / 255.0
    size, crop = geometry(train)
    return {"image_size": size, "crop": crop, "mirror_permutation": mirror_permutation(train.class_names),
            "mean": [float(v) for v in x.mean(axis=(0, 1, 2))],
            "std": [float(max(v, 1e-3)) for v in x.std(axis=(0, 1, 2))]}


def match_geometry(data: TaskData, stats: dict) -> np.ndarray:
    """The images of ``data`` at the training geometry: same central crop of the cutout, same size.

    Data read with a wider field than training (``crop`` larger) are centre-cropped further; data
    read with a narrower field cannot be widened and are refused.
    """
    x = np.asarray(data.x)
    size, crop = geometry(data)
    want_size = int(stats.get("image_size", size))
    want_crop = float(stats.get("crop", crop))
    if size == want_size and abs(crop - want_crop) < 1e-6:
        return x
    ratio = want_crop / crop
    if ratio > 1 + 1e-6:
        raise DataError(data.source, f"images were read with crop={crop} but the model was trained on "
                                     f"crop={want_crop}; read them with '#crop={want_crop}'")
    if size * ratio < want_size * 0.99:
        warnings.warn(f"{data.source}: images read at {size} px crop {crop} are upsampled to the model's "
                      f"{want_size} px crop {want_crop}; read them with '#crop={want_crop},size={want_size}'",
                      stacklevel=2)
    return resize_array(x, LoadOptions(image_size=want_size, crop=ratio), data.source)


def copy_numbers(ids: np.ndarray) -> np.ndarray:
    """For each position, how many earlier positions hold the same id (0 for a first occurrence)."""
    ids = np.asarray(ids)
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.r_[0, np.flatnonzero(sorted_ids[1:] != sorted_ids[:-1]) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(ids)]))
    out = np.empty(len(ids), dtype=np.int64)
    out[order] = np.arange(len(ids)) - run_start
    return out


class GalaxyDataset(Dataset):
    """Items ``((3, S, S) float32 normalised image, target)``.

    The target is an int64 class, a float32 ``(K,)`` vote-fraction vector, or -1 when unlabelled.
    Repeated ids (over-sampled copies) are shown under symmetry ``copy mod 8`` (labels of a
    chirality swapped by ``mirror_perm`` when that symmetry is a mirror); ``brightness`` > 0
    (training only) multiplies each image by a factor uniform in [1 - brightness, 1 + brightness]
    (the geometric augmentation runs on whole batches, see :class:`.augment.SymmetryAugment`).
    """

    def __init__(self, images: np.ndarray, y: np.ndarray | None, mean, std, *, copies: np.ndarray | None = None,
                 brightness: float = 0.0, mirror_perm: list[int] | None = None):
        if not 0 <= brightness < 1:
            raise ValueError(f"brightness must be in [0, 1), got {brightness}")
        self.images = images
        self.y = y
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.copies = np.zeros(len(images), dtype=np.int64) if copies is None else copies
        self.brightness = float(brightness)
        self.mirror_perm = mirror_perm

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        img = torch.from_numpy(np.ascontiguousarray(self.images[i])).permute(2, 0, 1).float() / 255.0
        if self.copies[i]:
            img = dihedral(img, int(self.copies[i]))
        if self.brightness > 0:
            # torch's global RNG: reproducible under seed_everything, different across epochs
            img = img * (1 + self.brightness * (2 * float(torch.rand(())) - 1))
        img = (img - self.mean) / self.std
        perm = self.mirror_perm if is_mirror(self.copies[i]) else None
        if self.y is None:
            target = torch.tensor(-1, dtype=torch.long)
        elif self.y.ndim == 2:
            target = torch.from_numpy(np.asarray(self.y[i], dtype=np.float32))
            target = target if perm is None else target[perm]
        else:
            label = int(self.y[i])
            target = torch.tensor(label if perm is None else perm[label], dtype=torch.long)
        return img, target
