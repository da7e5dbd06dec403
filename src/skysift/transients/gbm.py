"""LightGBM on per-object light-curve features: the ``lgbm`` model of the transients task.

Gradient-boosted trees on hand-made features won most of the PLAsTiCC leaderboard; the features
are :func:`skysift.transients.features.extract_features` (the data parameter ``feature_set``),
computed by the task's ``features`` and handed to :class:`LightGBMEstimator` by the core's estimator path.

Training weights reproduce the challenge metric. The core passes inverse-class-frequency sample
weights when ``sampler == "weighted"`` (the default); multiplying them by the Kaggle class weights
(2 for TDE, kilonova) makes the training loss the PLAsTiCC weighted log-loss. The validation
objects get the same kind of weights (Kaggle weight / class count on the validation split), so the
early-stopping score, LightGBM's weighted ``multi_logloss``, *is* the PLAsTiCC metric there.

The state is arrays only, no pickle (:mod:`skysift.core.gbm_state`, shared with every task's
gradient-boosted head).
"""
from __future__ import annotations

import numpy as np

from ..core.gbm_state import best_iteration, booster_from_state, booster_state, feature_matrix
from ..core.registry import Estimator
from ..errors import ConfigError, DataError
from .data import KAGGLE_CLASS_WEIGHTS
from .features import FEATURE_SETS

# the ``lgbm`` builder lives in .models with the task's other builders (one registry, in listing
# order, that loads without this module); these names stay importable from here for older callers
from .models import LGBM_DATA_DEFAULTS as DATA_DEFAULTS
from .models import MODELS, lgbm

_LGB_KEYS = {  # our parameter name -> LightGBM's
    "num_leaves": "num_leaves", "max_depth": "max_depth", "learning_rate": "learning_rate",
    "min_child_samples": "min_data_in_leaf", "colsample_bytree": "feature_fraction",
    "subsample": "bagging_fraction", "subsample_freq": "bagging_freq", "reg_alpha": "lambda_l1",
    "reg_lambda": "lambda_l2", "max_bin": "max_bin", "n_jobs": "num_threads", "seed": "seed",
}


def class_metric_weights(class_names: list[str] | None, n_classes: int, use_kaggle: bool = True) -> np.ndarray:
    """(K,) Kaggle weight of each class column (1 for a name that is not a PLAsTiCC target)."""
    if not use_kaggle or not class_names:
        return np.ones(n_classes)
    w = []
    for c in class_names:
        try:
            w.append(float(KAGGLE_CLASS_WEIGHTS.get(int(c), 1.0)))
        except ValueError:
            w.append(1.0)
    return np.asarray(w)


class LightGBMEstimator(Estimator):
    """Multi-class LightGBM with early stopping on the validation split.

    Parameters
    ----------
    params : :data:`DEFAULTS` updated with the user's overrides.
    n_classes : K, the number of probability columns.
    class_names : the K training class names (PLAsTiCC targets as strings) for the Kaggle weights.
    """

    def __init__(self, params: dict, n_classes: int, class_names: list[str] | None = None):
        unknown = sorted(set(params) - set(DEFAULTS))
        if unknown:
            raise ConfigError(f"unknown lgbm parameter(s) {unknown}; known: {', '.join(DEFAULTS)}")
        self.params = {**DEFAULTS, **params}
        if self.params["feature_set"] not in FEATURE_SETS:
            raise ConfigError(f"feature_set must be one of {FEATURE_SETS}, got {self.params['feature_set']!r}")
        if int(self.params["n_estimators"]) < 1:
            raise ConfigError(f"n_estimators must be >= 1, got {self.params['n_estimators']}")
        self.n_classes = int(n_classes)
        self.class_names = list(class_names) if class_names else None
        if self.class_names is not None and len(self.class_names) != self.n_classes:
            raise ConfigError(f"{len(self.class_names)} class names for {self.n_classes} classes")
        self.booster = None
        self.n_features: int | None = None

    def _lgb_params(self) -> dict:
        p = {_LGB_KEYS[k]: self.params[k] for k in _LGB_KEYS}
        p.update(objective="multiclass", num_class=self.n_classes, metric="multi_logloss",
                 verbosity=-1, deterministic=True, force_col_wise=True)
        return p

    def _check_X(self, X, what: str) -> np.ndarray:
        return feature_matrix(X, what, self.n_features, allow_nan=True, dtype=np.float32)

    def _val_weights(self, y_val: np.ndarray, w_class: np.ndarray) -> np.ndarray:
        counts = np.bincount(y_val, minlength=self.n_classes).astype(float)
        return (w_class / np.maximum(counts, 1))[y_val] * len(y_val)

    def fit(self, X, y, X_val, y_val, sample_weight=None):
        """Train on ``X`` (N, F), ``y`` (N,) class indices; early-stop on ``X_val``, ``y_val``.

        ``sample_weight`` (N,) — the core's inverse-frequency weights — is multiplied by the
        Kaggle weight of each object's class."""
        import lightgbm as lgb

        X = self._check_X(X, "training")
        self.n_features = X.shape[1]
        X_val = self._check_X(X_val, "validation")
        y = np.asarray(y, dtype=np.int64)
        y_val = np.asarray(y_val, dtype=np.int64)
        if len(y) != len(X) or len(y_val) != len(X_val):
            raise DataError(None, "features and labels differ in length")
        for name, t in (("training", y), ("validation", y_val)):
            if len(t) and (t.min() < 0 or t.max() >= self.n_classes):
                raise DataError(None, f"{name} labels must be class indices in 0..{self.n_classes - 1}")
        w_class = class_metric_weights(self.class_names, self.n_classes, self.params["kaggle_weights"])
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        w = w * w_class[y]
        train_set = lgb.Dataset(X, y, weight=w, free_raw_data=True)
        callbacks = [lgb.log_evaluation(period=0)]
        valid_sets = []
        if len(y_val):
            valid_sets = [lgb.Dataset(X_val, y_val, weight=self._val_weights(y_val, w_class),
                                      reference=train_set)]
            callbacks.append(lgb.early_stopping(int(self.params["early_stopping_rounds"]), verbose=False))
        self.booster = lgb.train(self._lgb_params(), train_set,
                                 num_boost_round=int(self.params["n_estimators"]),
                                 valid_sets=valid_sets, callbacks=callbacks)
        return self

    @property
    def best_iteration(self) -> int:
        return best_iteration(self.booster)

    def predict_logits(self, X) -> np.ndarray:
        """(N, K) raw multi-class scores (softmax gives the probabilities)."""
        if self.booster is None:
            raise ConfigError("the LightGBM model is not trained")
        X = self._check_X(X, "input")
        if len(X) == 0:
            return np.zeros((0, self.n_classes), np.float32)
        out = self.booster.predict(X, raw_score=True, num_iteration=self.best_iteration,
                                   num_threads=int(self.params["n_jobs"]))
        return np.asarray(out, dtype=np.float32).reshape(len(X), self.n_classes)

    def state(self) -> dict[str, np.ndarray]:
        """Arrays only (:mod:`skysift.core.gbm_state`): the text model, feature and class counts."""
        if self.booster is None:
            raise ConfigError("the LightGBM model is not trained")
        return booster_state(self.booster, int(self.n_features or 0), n_classes=self.n_classes)

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.booster, self.n_features = booster_from_state(state, n_classes=self.n_classes)


#: every ``lgbm`` parameter with its default (data + model): what :class:`LightGBMEstimator` accepts
DEFAULTS: dict = {**DATA_DEFAULTS, **MODELS.get("lgbm").defaults}


def build_lgbm(params: dict, stats: dict, n_classes: int) -> LightGBMEstimator:
    """``ModelSpec.build`` of ``lgbm`` (kept for callers of the old name)."""
    return MODEL_SPECS[0].build(params, stats, n_classes)


MODEL_SPECS = [MODELS.get("lgbm")]

__all__ = ["DATA_DEFAULTS", "DEFAULTS", "LightGBMEstimator", "MODEL_SPECS", "build_lgbm", "class_metric_weights",
           "lgbm"]
