"""The learned head of the ``cadence-tracks`` model: logistic regression on the cadence-rule
features of :mod:`.tracks`.

A linear head on a few physically meaningful features (ON strength, OFF veto, their difference)
extrapolates from simulated / injected training data to real cadences better than trees would:
its score is monotone in each piece of evidence. Features are log-compressed (``sign·log1p|x|``)
before standardising, since a bright needle or RFI line can be hundreds of σ. The state is arrays
only (coefficients, intercept, standardisation), stored in safetensors.
"""
from __future__ import annotations

import numpy as np

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
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise DataError(None, f"{what} features must be a 2-D (N, F) array, got shape {X.shape}")
        if self.coef is not None and X.shape[1] != len(self.coef):
            raise DataError(None, f"{what} has {X.shape[1]} features, the model was trained on {len(self.coef)}")
        if not np.isfinite(X).all():
            raise DataError(None, f"{what} features contain NaN or infinity")
        return compress(X)

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
