"""Class-imbalance toolkit shared by every task.

All resamplers work on *indices of the training split only*: the split is made first (see
:mod:`skysift.core.splits`), then the training indices are resampled, so no copy of a validation
or test object can ever reach training. Over/under-sampling and SMOTE come from imbalanced-learn;
the weighted sampler is PyTorch's.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

from ..errors import ConfigError
from .config import RESAMPLERS, SAMPLERS  # noqa: F401  (defined beside TrainConfig, which must not import torch)


def class_weights(y: np.ndarray, n_classes: int, power: float = 1.0) -> np.ndarray:
    """Inverse-frequency weights ``(K,)``, normalised to mean 1 over present classes.

    ``power`` < 1 softens them (0.5 = inverse square root). Absent classes get weight 0.
    """
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes).astype(float)
    w = np.zeros(n_classes)
    present = counts > 0
    w[present] = (counts[present].sum() / counts[present]) ** power
    w[present] /= w[present].mean()
    return w


def weighted_sampler(y: np.ndarray, n_classes: int, seed: int, num_samples: int | None = None):
    """A ``WeightedRandomSampler`` that draws every class equally often on average."""
    w = class_weights(y, n_classes)[np.asarray(y, dtype=np.int64)]
    g = torch.Generator().manual_seed(int(seed))
    return WeightedRandomSampler(
        # torch's stub asks for Sequence[float]; the sampler converts to this tensor anyway
        torch.as_tensor(w, dtype=torch.double),  # type: ignore[arg-type]
        num_samples=int(num_samples or len(y)),
        replacement=True,
        generator=g,
    )


def resample_indices(
    train_idx: np.ndarray, y_train: np.ndarray, method: str, seed: int, ratio: float | str = "auto"
) -> np.ndarray:
    """Random over- or under-sampling of training indices with imbalanced-learn.

    Returns an index array into the *same* space as ``train_idx`` (repeats allowed for "over").
    """
    from imblearn.over_sampling import RandomOverSampler
    from imblearn.under_sampling import RandomUnderSampler

    train_idx = np.asarray(train_idx)
    if method == "none":
        return train_idx
    if len(np.unique(y_train)) < 2:
        return train_idx
    if method == "over":
        rs = RandomOverSampler(sampling_strategy=ratio, random_state=seed)
    elif method == "under":
        rs = RandomUnderSampler(sampling_strategy=ratio, random_state=seed)
    else:
        raise ConfigError(f"unknown resampling method {method!r}; choose one of {RESAMPLERS[:3]}")
    rs.fit_resample(train_idx.reshape(-1, 1), y_train)
    return train_idx[rs.sample_indices_]


def smote(
    features: np.ndarray, y: np.ndarray, seed: int, k_neighbors: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """SMOTE on feature vectors ``(N, F)`` of the training split: returns (features, labels).

    Synthetic rows interpolate between same-class neighbours; ``k_neighbors`` is reduced when the
    rarest class is too small for it.
    """
    from imblearn.over_sampling import SMOTE

    y = np.asarray(y)
    counts = np.bincount(y)
    smallest = counts[counts > 0].min()
    if smallest < 2 or len(counts[counts > 0]) < 2:
        return features, y
    k = int(min(k_neighbors, smallest - 1))
    sm = SMOTE(k_neighbors=k, random_state=seed)
    return sm.fit_resample(np.nan_to_num(features), y)
