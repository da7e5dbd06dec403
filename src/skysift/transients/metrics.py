"""The official PLAsTiCC metric: a class-weighted multi-class log-loss.

Kaggle's definition (Malz et al. 2019, "The Photometric LSST Astronomical Time-series
Classification Challenge (PLAsTiCC): Selection of a performance metric"):

    L = − Σ_i w_i · (1/N_i) Σ_{j ∈ class i} ln p_ij  /  Σ_i w_i

where ``p_ij`` is the probability given to the true class ``i`` of object ``j`` after the Kaggle
evaluation's two steps, in its order: each row is divided by its sum, then every probability is
clipped to ``[1e-15, 1 − 1e-15]`` (so a row may then sum to slightly more than 1); ``N_i`` is the number
of objects of class ``i`` and the sum runs over the classes present in the truth only. Every class
counts equally whatever its size (up to its weight), so a rare class matters as much as SN Ia.

Written by hand (not ``sklearn.metrics.log_loss``) because sklearn weights objects, not classes,
and would need per-object weights ``w_i/N_i`` plus a separate renormalisation; the explicit form
is shorter and is what the challenge used.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .data import KAGGLE_CLASS_WEIGHTS

EPS = 1e-15


def _prepare(y_true_targets, proba, column_targets) -> tuple[np.ndarray, np.ndarray, list[int]]:
    proba = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y_true_targets).astype(np.int64)
    # the unblinded release labels the unknown classes 991..995; Kaggle scored them all as 99
    y = np.where((y >= 991) & (y <= 995), 99, y)
    cols = [int(c) for c in column_targets]
    if proba.ndim != 2 or proba.shape[1] != len(cols):
        raise ValueError(f"proba has shape {proba.shape}, expected (N, {len(cols)}) for columns {cols}")
    if len(y) != len(proba):
        raise ValueError(f"{len(y)} targets but {len(proba)} probability rows")
    if len(set(cols)) != len(cols):
        raise ValueError(f"duplicate column targets {cols}")
    missing = sorted(set(np.unique(y).tolist()) - set(cols))
    if missing:
        raise ValueError(f"targets {missing} have no probability column (columns: {cols})")
    if not np.isfinite(proba).all():
        raise ValueError("proba contains NaN or infinity")
    if (proba < 0).any():
        raise ValueError("proba contains negative values")
    sums = proba.sum(axis=1, keepdims=True)
    p = np.where(sums > 0, proba / np.where(sums > 0, sums, 1.0), 1.0 / proba.shape[1])
    p = np.clip(p, EPS, 1 - EPS)
    return y, p, cols


def per_class_log_loss(y_true_targets: Sequence[int] | np.ndarray, proba: np.ndarray,
                       column_targets: Sequence[int | str]) -> dict[int, tuple[int, float]]:
    """``{target: (n_objects, mean −ln p_true)}`` for every class present in ``y_true_targets``.

    ``proba`` is ``(N, K)`` with columns in the order of ``column_targets`` (PLAsTiCC target
    numbers, ints or their string names); clipping and renormalisation as in the official metric.
    """
    y, p, cols = _prepare(y_true_targets, proba, column_targets)
    col_of = {c: j for j, c in enumerate(cols)}
    idx = np.array([col_of[int(t)] for t in y], dtype=np.int64)
    nll = -np.log(p[np.arange(len(y)), idx])
    out = {}
    for t in sorted(set(y.tolist())):
        m = y == t
        out[int(t)] = (int(m.sum()), float(nll[m].mean()))
    return out


def plasticc_log_loss(y_true_targets: Sequence[int] | np.ndarray, proba: np.ndarray,
                      column_targets: Sequence[int | str],
                      weights: Mapping[int, float] = KAGGLE_CLASS_WEIGHTS) -> float:
    """The weighted multi-class log-loss of the PLAsTiCC challenge (lower is better).

    Parameters
    ----------
    y_true_targets : (N,) true PLAsTiCC targets (6, 15, ..., 95, and 99 for unknown objects).
    proba : (N, K) probabilities (rows need not sum to 1: they are renormalised after clipping).
    column_targets : the K targets of ``proba``'s columns, with or without a 99 column.
    weights : class weight by target; classes absent from the truth do not count.
    """
    per = per_class_log_loss(y_true_targets, proba, column_targets)
    if not per:
        raise ValueError("no objects to score")
    w = np.array([float(weights.get(t, 1.0)) for t in per])
    losses = np.array([loss for _, loss in per.values()])
    return float((w * losses).sum() / w.sum())


__all__ = ["EPS", "per_class_log_loss", "plasticc_log_loss"]
