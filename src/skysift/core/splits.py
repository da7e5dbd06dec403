"""Leak-free splits: stratified by class, grouped by object, always made before any resampling."""
from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from ..errors import ConfigError


def _fold_count(frac: float) -> int:
    if not 0.0 < frac < 0.5:
        raise ConfigError(f"split fraction must be in (0, 0.5), got {frac}")
    return max(2, int(round(1.0 / frac)))


def split_off(
    y: np.ndarray, groups: np.ndarray, frac: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return (keep, held_out) index arrays; held_out is ~``frac`` of the data.

    Stratified on ``y`` and grouped on ``groups``: no group appears on both sides. Classes with
    fewer members than folds are placed as evenly as StratifiedGroupKFold can.
    """
    y = np.asarray(y)
    idx = np.arange(len(y))
    cv = StratifiedGroupKFold(n_splits=_fold_count(frac), shuffle=True, random_state=seed)
    # StratifiedGroupKFold warns when a class has fewer members than folds; the split is still
    # valid (every group lands on exactly one side), so the warning is noise here.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        keep, held = next(cv.split(idx, y, groups))
    return keep, held


def train_val_test_split(
    y: np.ndarray, groups: np.ndarray, val_frac: float = 0.15, test_frac: float = 0.0, seed: int = 0
) -> dict[str, np.ndarray]:
    """Index arrays ``{"train", "val", "test"}``; ``test`` is empty when ``test_frac`` is 0."""
    y = np.asarray(y)
    groups = np.asarray(groups)
    all_idx = np.arange(len(y))
    if test_frac > 0:
        rest, test = split_off(y, groups, test_frac, seed)
    else:
        rest, test = all_idx, np.array([], dtype=np.int64)
    sub_frac = val_frac / (1.0 - test_frac)
    tr, va = split_off(y[rest], groups[rest], sub_frac, seed + 1)
    return {"train": rest[tr], "val": rest[va], "test": test}


def kfold_indices(y: np.ndarray, groups: np.ndarray, k: int = 5, seed: int = 0):
    """Yield ``(train_idx, val_idx)`` for stratified, grouped k-fold cross-validation."""
    if k < 2:
        raise ConfigError(f"k-fold needs k >= 2, got {k}")
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield from cv.split(np.arange(len(y)), np.asarray(y), np.asarray(groups))
