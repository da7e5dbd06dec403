"""A LightGBM model as named arrays, for model files that hold no pickle.

LightGBM's own persistence is a text model (``Booster.model_to_string``); a bundle stores only
arrays (safetensors), so the text travels as ``uint8`` bytes and is rebuilt with
``lightgbm.Booster(model_str=...)``. Every task with a gradient-boosted head uses these helpers, so
the encoding, its integrity checks and its errors are the same everywhere; :func:`feature_matrix`
checks the input of any head on feature vectors (the logistic one too). LightGBM is imported
lazily: the core must import without it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["best_iteration", "booster_state", "booster_from_state", "feature_matrix"]

MODEL_KEY = "lgbm_model"
N_FEATURES_KEY = "lgbm_n_features"


def best_iteration(booster: Any) -> int:
    """The early-stopped iteration, or the last one when training ran without a validation set."""
    return int(booster.best_iteration or booster.current_iteration())


def booster_state(booster: Any, n_features: int, **counts: int) -> dict[str, np.ndarray]:
    """``booster`` (cut at its best iteration) and its shape facts as named arrays.

    ``counts`` are further integers the owner checks on load (e.g. ``n_classes=15``); each is
    stored as ``lgbm_<name>``."""
    text = booster.model_to_string(num_iteration=best_iteration(booster))
    state: dict[str, np.ndarray] = {MODEL_KEY: np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy(),
             N_FEATURES_KEY: np.array([int(n_features)], dtype=np.int64)}
    for name, value in counts.items():
        state[f"lgbm_{name}"] = np.array([int(value)], dtype=np.int64)
    return state


def booster_from_state(state: dict[str, np.ndarray], **expected: int) -> tuple[Any, int]:
    """Rebuild a booster from :func:`booster_state`; returns ``(booster, n_features)``.

    Each ``expected`` count must equal the stored one. Raises ``ValueError`` naming what is wrong,
    which the core's bundle loader reports as a model-file error."""
    import lightgbm as lgb

    try:
        text = np.asarray(state[MODEL_KEY], dtype=np.uint8).tobytes().decode("utf-8")
        n_features = int(np.asarray(state[N_FEATURES_KEY]).ravel()[0])
        stored = {name: int(np.asarray(state[f"lgbm_{name}"]).ravel()[0]) for name in expected}
    except (KeyError, IndexError, UnicodeDecodeError) as e:
        raise ValueError(f"not a LightGBM state: {type(e).__name__} {e}") from None
    for name, want in expected.items():
        if stored[name] != int(want):
            raise ValueError(f"LightGBM state has {name}={stored[name]}, the model expects {want}")
    try:
        booster = lgb.Booster(model_str=text)
    except lgb.basic.LightGBMError as e:
        raise ValueError(f"not a LightGBM text model: {str(e).splitlines()[0]}") from None
    if booster.num_feature() != n_features:
        raise ValueError(f"LightGBM model has {booster.num_feature()} features, its state says {n_features}")
    return booster, n_features


def feature_matrix(X: Any, what: str, n_features: int | None, *, allow_nan: bool,
                   dtype: Any = np.float64) -> np.ndarray:
    """``X`` as a 2-D ``(N, F)`` array, refusing a wrong width and infinities (and NaN unless
    ``allow_nan``, for models that treat NaN as "missing")."""
    X = np.asarray(X, dtype=dtype)
    if X.ndim != 2:
        raise DataError(None, f"{what} features must be a 2-D (N, F) array, got shape {X.shape}")
    if n_features is not None and X.shape[1] != n_features:
        raise DataError(None, f"{what} has {X.shape[1]} features, the model was trained on {n_features}")
    if allow_nan:
        if np.isinf(X).any():
            raise DataError(None, f"{what} features contain infinity (NaN is allowed for missing)")
    elif not np.isfinite(X).all():
        raise DataError(None, f"{what} features contain NaN or infinity")
    return X
