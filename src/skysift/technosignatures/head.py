"""The learned heads of the cadence models: logistic regression on the nine cadence-rule features
of :mod:`.tracks` (``cadence-tracks``), and LightGBM on the richer multi-scale evidence of
:func:`.tracks.rich_features` (``cadence-tracks-gbm``; :class:`TrackBoostHead`), and both at once
(``cadence-tracks-blend``; :class:`TrackBlendHead`).

A linear head on a few physically meaningful features (ON strength, OFF veto, their difference)
extrapolates from simulated / injected training data to real cadences better than trees would:
its score is monotone in each piece of evidence. Features are log-compressed (``sign·log1p|x|``)
before standardising, since a bright needle or RFI line can be hundreds of σ. The state is arrays
only (coefficients, intercept, standardisation), stored in safetensors.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..core.gbm_state import best_iteration, booster_from_state, booster_state, feature_matrix
from ..core.registry import Estimator
from ..errors import ConfigError, DataError


def compress(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return np.sign(X) * np.log1p(np.abs(X))


class TrackHead(Estimator):
    """Binary logistic regression (scikit-learn) on compressed, standardised track features."""

    def __init__(self, C: float = 1.0, max_iter: int = 2000):
        if C <= 0 or max_iter < 1:
            raise ConfigError(f"C must be > 0 and max_iter >= 1, got C={C}, max_iter={max_iter}")
        self.C, self.max_iter = float(C), int(max_iter)
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.coef: np.ndarray | None = None
        self.intercept = 0.0

    def _check(self, X, what: str) -> np.ndarray:
        n_features = None if self.coef is None else len(self.coef)
        return compress(feature_matrix(X, what, n_features, allow_nan=False))

    def fit(self, X, y, X_val, y_val, sample_weight=None):
        from sklearn.linear_model import LogisticRegression

        Xc = self._check(X, "training")
        y = np.asarray(y, dtype=np.int64)
        if len(np.unique(y)) != 2:
            raise DataError(None, "the cadence-tracks head needs both classes (noise and signal) in training")
        self.mean = Xc.mean(axis=0)
        self.scale = np.maximum(Xc.std(axis=0), 1e-9)
        clf = LogisticRegression(C=self.C, max_iter=self.max_iter)
        clf.fit((Xc - self.mean) / self.scale, y, sample_weight=sample_weight)
        self.coef = clf.coef_[0].astype(np.float64)
        self.intercept = float(clf.intercept_[0])
        return self

    def predict_logits(self, X) -> np.ndarray:
        if self.coef is None or self.mean is None or self.scale is None:
            raise ConfigError("the cadence-tracks head is not fitted")
        z = ((self._check(X, "input") - self.mean) / self.scale) @ self.coef + self.intercept
        # two-class logits whose softmax is the logistic probability
        return np.stack([np.zeros_like(z), z], axis=1).astype(np.float32)

    def state(self) -> dict[str, np.ndarray]:
        if self.coef is None or self.mean is None or self.scale is None:
            raise ConfigError("the cadence-tracks head is not fitted")
        return {"mean": self.mean, "scale": self.scale, "coef": self.coef,
                "intercept": np.array([self.intercept])}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        try:
            mean, scale, coef = (np.asarray(state[k], dtype=np.float64) for k in ("mean", "scale", "coef"))
            intercept = float(np.asarray(state["intercept"]).ravel()[0])
        except KeyError as e:
            raise KeyError(f"missing {e}") from None
        if not (mean.shape == scale.shape == coef.shape) or coef.ndim != 1:
            raise ValueError(f"inconsistent head state shapes {mean.shape}, {scale.shape}, {coef.shape}")
        self.mean, self.scale, self.coef, self.intercept = mean, scale, coef, intercept


class TrackBoostHead(Estimator):
    """Binary LightGBM on the richer cadence evidence of :func:`.tracks.rich_features`.

    The logistic head needs a hand-set veto to turn "bright in ON, also in OFF" into a low score,
    and no single threshold was right for both faint needles and bright drifting RFI (issue 18);
    trees learn how much OFF evidence cancels how much ON evidence, per time scale. Early stopping
    on the validation split. The state is arrays only (:mod:`skysift.core.gbm_state`)."""

    def __init__(self, n_estimators: int = 2000, learning_rate: float = 0.05, num_leaves: int = 7,
                 min_child_samples: int = 50, colsample_bytree: float = 0.8, subsample: float = 0.8,
                 reg_lambda: float = 10.0, early_stopping_rounds: int = 100, seed: int = 0, n_jobs: int = 1,
                 monotone_constraints: list[int] | tuple[int, ...] | None = None, signs_prefix: bool = False):
        if n_estimators < 1 or num_leaves < 2 or learning_rate <= 0 or early_stopping_rounds < 1:
            raise ConfigError("n_estimators >= 1, num_leaves >= 2, learning_rate > 0 and early_stopping_rounds >= 1 "
                              f"needed; got {n_estimators}, {num_leaves}, {learning_rate}, {early_stopping_rounds}")
        mono = None if monotone_constraints is None else [int(c) for c in monotone_constraints]
        if mono is not None and any(c not in (-1, 0, 1) for c in mono):
            raise ConfigError(f"monotone_constraints must hold -1, 0 or 1 per feature, got {monotone_constraints}")
        self.params: dict[str, Any] = {
                       "objective": "binary", "learning_rate": float(learning_rate), "num_leaves": int(num_leaves),
                       "min_data_in_leaf": int(min_child_samples), "feature_fraction": float(colsample_bytree),
                       "bagging_fraction": float(subsample), "bagging_freq": 1, "lambda_l2": float(reg_lambda),
                       "seed": int(seed), "num_threads": int(n_jobs), "deterministic": True,
                       "force_col_wise": True, "verbosity": -1}
        if mono is not None:
            # the score may only rise with ON evidence and fall with OFF evidence ("advanced":
            # LightGBM's least restrictive way of enforcing it)
            self.params.update(monotone_constraints=mono, monotone_constraints_method="advanced")
        self.n_estimators, self.early_stopping_rounds = int(n_estimators), int(early_stopping_rounds)
        #: ``monotone_constraints`` are the signs of nested feature sets: use the first n of them
        self.signs_prefix = bool(signs_prefix)
        self.booster: Any = None
        self.n_features: int | None = None

    def _check(self, X, what: str) -> np.ndarray:
        return feature_matrix(X, what, self.n_features, allow_nan=False)

    def fit(self, X, y, X_val, y_val, sample_weight=None):
        import lightgbm as lgb

        X = self._check(X, "training")
        self.n_features = X.shape[1]
        # fitting leaves the constructor's parameters as they were: the trimmed constraints go into
        # this fit's own copy
        params = dict(self.params)
        mono = params.get("monotone_constraints")
        if mono is not None and len(mono) > X.shape[1] and self.signs_prefix:
            # the rich feature sets are nested ("rich" ⊂ "rich-mf" ⊂ "rich-mask", each a prefix of
            # the next), so the physical signs of the largest fit any of them
            params["monotone_constraints"] = mono = mono[:X.shape[1]]
        if mono is not None and len(mono) != X.shape[1]:
            raise ConfigError(f"{len(mono)} monotone constraints for {X.shape[1]} features")
        y = np.asarray(y, dtype=np.int64)
        if len(np.unique(y)) != 2:
            raise DataError(None, "the cadence-tracks head needs both classes (noise and signal) in training")
        train_set = lgb.Dataset(X, y, weight=sample_weight, free_raw_data=True)
        callbacks: list[Any] = [lgb.log_evaluation(period=0)]
        valid: list[Any] = []
        y_val = np.asarray(y_val, dtype=np.int64)
        if len(y_val) and len(np.unique(y_val)) == 2:
            valid = [lgb.Dataset(self._check(X_val, "validation"), y_val, reference=train_set)]
            callbacks.append(lgb.early_stopping(self.early_stopping_rounds, verbose=False))
        self.booster = lgb.train(params, train_set, num_boost_round=self.n_estimators, valid_sets=valid,
                                 callbacks=callbacks)
        return self

    def predict_logits(self, X) -> np.ndarray:
        if self.booster is None:
            raise ConfigError("the cadence-tracks head is not fitted")
        X = self._check(X, "input")
        if len(X) == 0:
            return np.zeros((0, 2), np.float32)
        z = np.asarray(self.booster.predict(X, raw_score=True, num_iteration=best_iteration(self.booster),
                                            num_threads=int(self.params["num_threads"])), dtype=np.float64)
        return np.stack([np.zeros_like(z), z], axis=1).astype(np.float32)

    def state(self) -> dict[str, np.ndarray]:
        if self.booster is None:
            raise ConfigError("the cadence-tracks head is not fitted")
        return booster_state(self.booster, int(self.n_features or 0))

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.booster, self.n_features = booster_from_state(state)


class TrackBlendHead(Estimator):
    """The mean of :class:`TrackBoostHead`'s logit (on all the rich features) and :class:`TrackHead`'s
    (on their first ``n_linear``, the nine cadence-rule features), each z-scored by its own logits
    on the training split: a rank-type average of the two heads that scores one snippet at a time.

    Why: the tree head ranks injections better and the linear one extrapolates more smoothly to
    evidence it was not trained on (issue 18); their logits are on different scales, so they are
    put on one before they are averaged."""

    def __init__(self, boost: TrackBoostHead, linear: TrackHead, n_linear: int = 9):
        if n_linear < 1:
            raise ConfigError(f"n_linear must be >= 1, got {n_linear}")
        self.boost, self.linear, self.n_linear = boost, linear, int(n_linear)
        self.z: np.ndarray | None = None  # [boost mean, boost sd, linear mean, linear sd]

    def _parts(self, X) -> tuple[np.ndarray, np.ndarray]:
        X = feature_matrix(X, "input", self.boost.n_features, allow_nan=False)
        return self.boost.predict_logits(X)[:, 1], self.linear.predict_logits(X[:, :self.n_linear])[:, 1]

    def fit(self, X, y, X_val, y_val, sample_weight=None):
        X = feature_matrix(X, "training", None, allow_nan=False)
        if X.shape[1] < self.n_linear:
            raise DataError(None, f"the blend needs at least {self.n_linear} features, got {X.shape[1]}")
        X_val = np.asarray(X_val)
        self.boost.fit(X, y, X_val, y_val, sample_weight=sample_weight)
        self.linear.fit(X[:, :self.n_linear], y, X_val[:, :self.n_linear] if len(X_val) else X_val, y_val,
                        sample_weight=sample_weight)
        b, lin = self._parts(X)
        self.z = np.array([b.mean(), max(float(b.std()), 1e-9), lin.mean(), max(float(lin.std()), 1e-9)])
        return self

    def predict_logits(self, X) -> np.ndarray:
        if self.z is None:
            raise ConfigError("the cadence-tracks head is not fitted")
        b, lin = self._parts(X)
        z = ((b - self.z[0]) / self.z[1] + (lin - self.z[2]) / self.z[3]) / 2
        return np.stack([np.zeros_like(z), z], axis=1).astype(np.float32)

    def state(self) -> dict[str, np.ndarray]:
        if self.z is None:
            raise ConfigError("the cadence-tracks head is not fitted")
        return {**{f"boost.{k}": v for k, v in self.boost.state().items()},
                **{f"linear.{k}": v for k, v in self.linear.state().items()}, "blend_z": self.z}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        if "blend_z" not in state:
            raise KeyError("missing 'blend_z'")
        self.boost.load_state({k[6:]: v for k, v in state.items() if k.startswith("boost.")})
        self.linear.load_state({k[7:]: v for k, v in state.items() if k.startswith("linear.")})
        z = np.asarray(state["blend_z"], dtype=np.float64).ravel()
        if z.shape != (4,):
            raise ValueError(f"blend_z must hold 4 values, got shape {z.shape}")
        self.z = z
