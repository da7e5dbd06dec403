"""Symmetry augmentation of flux series: a transit stays a transit under these."""
from __future__ import annotations

import numpy as np


def augment(x: np.ndarray, rng: np.random.Generator, *, sigma: float, noise: float = 0.3,
            scale: tuple = (0.85, 1.15)) -> np.ndarray:
    """Random time reversal, circular shift, depth scaling and added white noise (up to ``noise``
    times the light curve's own scatter ``sigma``) of a ``(L,)`` relative-flux series."""
    if rng.random() < 0.5:
        x = x[::-1]
    x = np.roll(x, int(rng.integers(0, len(x))))
    x = x * rng.uniform(*scale)
    if noise > 0:
        x = x + rng.normal(0, noise * sigma * rng.random(), len(x))
    return np.ascontiguousarray(x, dtype=np.float32)
