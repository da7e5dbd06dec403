"""Open-set scoring: the probability that an object belongs to none of the trained classes
(PLAsTiCC's class 99), on top of any 14-class model.

The PLAsTiCC test set holds classes absent from training (binary microlenses, ILOTs, Ca-rich
transients, pair-instability SNe: 991-994, scored together as class 99). A scorer is fitted
after training on the *validation* split (objects of known classes only) and turns a model's
outputs into ``p99`` ``(N,)``; :func:`with_unknown` appends it as the last column and shrinks
the other columns so every row sums to 1.

Scorers work from the ``(N, K)`` logits of any model (a network, or LightGBM's raw scores),
and the distance-based one also from a feature vector per object (a network's
``embed(inputs)``, or the LightGBM path's feature matrix):

* :class:`ProductScorer` — the baseline of the public Kaggle kernels: ``c = prior · Π(1 − pᵢ)
  / mean_val Π(1 − pᵢ)``, appended as an extra column and the row renormalised, i.e.
  ``p99 = c / (1 + c)``. The kernels took the mean over the test predictions; here it is taken
  over validation at fit time, so a prediction does not depend on which other objects share
  its batch.
* :class:`EnergyScorer` — the free energy ``−T · logsumexp(logits / T)`` (Liu et al. 2020):
  high (less negative) when no class explains the object well.
* :class:`MahalanobisScorer` — the smallest Mahalanobis distance to a class mean, with one
  covariance shared by all classes (Lee et al. 2018), shrunk with scikit-learn's Ledoit-Wolf
  estimator (a 128-d covariance from ~1,500 validation objects is otherwise ill-conditioned).

Energy and Mahalanobis scores are mapped to ``p99`` by the same documented rule
(:func:`gaussian_quantile_posterior`): the score is replaced by its quantile among the
*in-distribution validation* scores, Gaussianised ``z = Φ⁻¹(quantile)``, so that known objects
have ``z ~ N(0, 1)`` by construction; unknown objects are assumed to have ``z ~ N(μ, 1)``
(equal-variance Gaussian model, μ = ``separation``). Bayes' rule with a prior ``π`` for the
unknown class then gives ``logit p99 = logit π + μ z − μ²/2``. ``π`` defaults to 2/18: under
PLAsTiCC's metric every class counts by its weight, not its frequency, and class 99 holds 2 of
the 18 weight units of the 15 columns, so that is its effective prior whatever the unknown rate
in the data. ``μ`` is the one number that cannot be learnt from known classes alone; the default
comes from held-out-class experiments on the real training set (see
``benchmarks/bench_transients_openset.py`` and :data:`DEFAULT_SEPARATIONS`).

Measured there (LightGBM on the task's features, 5 held-out class pairs × 3 seeds, μ set
leave-one-pair-out, weighted log-loss incl. class 99 ×2): product 0.819 ± 0.165, energy
0.790 ± 0.100, :class:`CombinedScorer` with the *logits* as its vectors 0.744 ± 0.070 (better on
9 of 15 runs, 3 of 5 pairs; worse where the unknowns are look-alikes of a known class, SN Iax + 91bg
among the SNe Ia, TDE + kilonova), with the feature matrix as vectors 0.795 ± 0.061. The paired
difference combined − product, −0.074 [−0.152, +0.007] (bootstrap 95 % CI over runs), includes 0,
so the task's default (``transients.task.OPEN_SET_SCORER``) is the product rule.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from scipy.special import expit, logit, logsumexp
from scipy.stats import norm

from ..errors import ConfigError
from .data import KAGGLE_CLASS_WEIGHTS

#: effective prior of class 99 under the PLAsTiCC metric: its weight over the total weight
UNKNOWN_PRIOR = KAGGLE_CLASS_WEIGHTS[99] / sum(KAGGLE_CLASS_WEIGHTS.values())
#: default separation μ (in-distribution standard deviations) of unknown objects' Gaussianised
#: scores, per scorer: the mean Gaussianised score of the held-out classes over the 10 runs of
#: ``benchmarks/bench_transients_openset.py`` (5 held-out pairs × 2 seeds, LightGBM on the real
#: training set): energy 0.76, Mahalanobis on logits 1.06, energy+Mahalanobis on logits 1.23
DEFAULT_SEPARATION = 1.0
DEFAULT_SEPARATIONS = {"energy": 0.75, "mahalanobis": 1.0, "combined": 1.2, "product-mahalanobis": 1.0}
_Z_CLIP = 4.0  # |z| beyond 4σ says nothing more than 4σ with ~1,500 validation objects


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def with_unknown(proba: np.ndarray, p99: np.ndarray) -> np.ndarray:
    """``(N, K+1)``: the ``(N, K)`` class probabilities scaled by ``1 − p99``, then ``p99``.
    Rows sum to 1 (to float rounding) when the rows of ``proba`` do."""
    proba = np.asarray(proba, dtype=np.float64)
    p99 = np.asarray(p99, dtype=np.float64).reshape(-1)
    if proba.ndim != 2 or len(p99) != len(proba):
        raise ConfigError(f"with_unknown needs proba (N, K) and p99 (N,), got {proba.shape} and {p99.shape}")
    p99 = np.clip(p99, 0.0, 1.0)
    rows = proba / np.clip(proba.sum(axis=1, keepdims=True), 1e-300, None)
    return np.column_stack([rows * (1.0 - p99)[:, None], p99])


def gaussian_quantile_posterior(z: np.ndarray, separation: float, prior: float) -> np.ndarray:
    """``p99`` for Gaussianised scores ``z`` (see the module docstring):
    ``σ(logit π + μ z − μ²/2)``."""
    z = np.clip(np.asarray(z, dtype=np.float64), -_Z_CLIP, _Z_CLIP)
    return expit(logit(prior) + separation * z - 0.5 * separation**2)


class OpenSetScorer(ABC):
    """Common API. ``fit(logits, y, features=None)`` on validation; ``score`` (higher = more
    unusual); ``p_unknown`` ``(N,)``; ``state() -> (json dict, arrays dict)`` and
    :func:`scorer_from_state` to rebuild."""

    kind: ClassVar[str]
    needs_features: ClassVar[bool] = False

    @abstractmethod
    def fit(self, logits: np.ndarray, y: np.ndarray, features: np.ndarray | None = None) -> OpenSetScorer: ...

    @abstractmethod
    def score(self, logits: np.ndarray, features: np.ndarray | None = None) -> np.ndarray: ...

    @abstractmethod
    def p_unknown(self, logits: np.ndarray, features: np.ndarray | None = None) -> np.ndarray: ...

    @abstractmethod
    def state(self) -> tuple[dict, dict[str, np.ndarray]]: ...

    @classmethod
    @abstractmethod
    def _from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> OpenSetScorer: ...

    def to_json(self) -> dict:
        """The whole state as one JSON-serialisable dict (arrays as nested lists), for a task's
        ``fit_extras``; :func:`scorer_from_state` reads it back."""
        meta, arrays = self.state()
        return {**meta, "arrays": {k: np.asarray(v).tolist() for k, v in arrays.items()}}

    def _check_logits(self, logits) -> np.ndarray:
        z = np.asarray(logits, dtype=np.float64)
        if z.ndim != 2 or not np.all(np.isfinite(z)):
            raise ConfigError(f"{self.kind} scorer needs finite (N, K) logits, got shape {z.shape}")
        return z


class _QuantileMapped(OpenSetScorer):
    """Scores mapped to p99 through their in-distribution validation quantiles."""

    def __init__(self, separation: float | None = None, prior: float = UNKNOWN_PRIOR):
        if separation is None:
            separation = DEFAULT_SEPARATIONS.get(self.kind, DEFAULT_SEPARATION)
        if not 0 < prior < 1:
            raise ConfigError(f"the unknown-class prior must be in (0, 1), got {prior}")
        self.separation = float(separation)
        self.prior = float(prior)
        self.reference: np.ndarray | None = None  # sorted in-distribution validation scores

    def _set_reference(self, scores: np.ndarray) -> None:
        s = np.sort(np.asarray(scores, dtype=np.float64))
        if len(s) < 2:
            raise ConfigError(f"{self.kind} scorer needs at least 2 validation objects to calibrate on")
        self.reference = s

    def z(self, logits: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """Gaussianised in-distribution quantile of the score (``N(0,1)`` on known objects)."""
        if self.reference is None:
            raise ConfigError(f"{self.kind} scorer is not fitted")
        s = self.score(logits, features)
        n = len(self.reference)
        # mid-rank empirical CDF, kept inside (0, 1) so Φ⁻¹ stays finite
        rank = 0.5 * (np.searchsorted(self.reference, s, "left") + np.searchsorted(self.reference, s, "right"))
        return norm.ppf((rank + 0.5) / (n + 1.0))

    def p_unknown(self, logits: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        return gaussian_quantile_posterior(self.z(logits, features), self.separation, self.prior)

    def _base_meta(self) -> dict:
        return {"kind": self.kind, "separation": self.separation, "prior": self.prior}


class ProductScorer(OpenSetScorer):
    """The Kaggle kernels' baseline ``p99 ∝ Π(1 − pᵢ)`` (see the module docstring).

    ``prior`` (default 0.14, the value of the widely copied kernel) is the mean of the appended
    column ``c`` on validation before renormalisation. ``p_unknown`` takes logits and applies a
    softmax; pass ``proba=`` to use already-calibrated probabilities instead."""

    kind = "product"

    def __init__(self, prior: float = 0.14):
        self.prior = float(prior)
        self.mean_product: float | None = None

    @staticmethod
    def _product(proba: np.ndarray) -> np.ndarray:
        return np.prod(1.0 - np.clip(proba, 0.0, 1.0), axis=1)

    def fit(self, logits, y=None, features=None, *, proba: np.ndarray | None = None) -> ProductScorer:
        p = softmax(self._check_logits(logits)) if proba is None else np.asarray(proba, dtype=np.float64)
        self.mean_product = float(max(np.mean(self._product(p)), 1e-300))
        return self

    def score(self, logits, features=None, *, proba: np.ndarray | None = None) -> np.ndarray:
        p = softmax(self._check_logits(logits)) if proba is None else np.asarray(proba, dtype=np.float64)
        return self._product(p)

    def p_unknown(self, logits, features=None, *, proba: np.ndarray | None = None) -> np.ndarray:
        if self.mean_product is None:
            raise ConfigError("product scorer is not fitted")
        c = self.prior * self.score(logits, proba=proba) / self.mean_product
        return c / (1.0 + c)

    def state(self):
        return {"kind": self.kind, "prior": self.prior, "mean_product": self.mean_product}, {}

    @classmethod
    def _from_state(cls, meta, arrays):
        out = cls(prior=meta["prior"])
        out.mean_product = meta["mean_product"]
        return out


class EnergyScorer(_QuantileMapped):
    """Free energy ``−T · logsumexp(logits / T)`` of the logits; mapped to p99 by quantiles."""

    kind = "energy"

    def __init__(self, temperature: float = 1.0, **kw):
        super().__init__(**kw)
        if not temperature > 0:
            raise ConfigError(f"energy temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def fit(self, logits, y=None, features=None) -> EnergyScorer:
        self._set_reference(self.score(logits))
        return self

    def score(self, logits, features=None) -> np.ndarray:
        z = self._check_logits(logits)
        return -self.temperature * logsumexp(z / self.temperature, axis=1)

    def state(self):
        return {**self._base_meta(), "temperature": self.temperature}, {"reference": self.reference}

    @classmethod
    def _from_state(cls, meta, arrays):
        out = cls(temperature=meta["temperature"], separation=meta["separation"], prior=meta["prior"])
        out.reference = np.asarray(arrays["reference"], dtype=np.float64)
        return out


class MahalanobisScorer(_QuantileMapped):
    """Smallest Mahalanobis distance of a feature vector to the class means (shared Ledoit-Wolf
    covariance), mapped to p99 by quantiles.

    ``features`` ``(N, D)``: a network's embedding or a feature matrix. NaN (undefined tree
    features) are imputed with the validation medians, and every column is rescaled with
    validation statistics before the covariance is fitted: ``transform="standard"`` subtracts
    the median and divides by the standard deviation (for network embeddings);
    ``"robust"`` divides by the inter-quartile range / 1.349 and then applies ``asinh``, which
    keeps the order of extreme values but stops a handful of light-curve features spanning
    decades (peak fluxes, periods) from dominating the distance (for hand-made feature vectors).
    Classes with fewer than 2 validation members are skipped (their mean would be one point).

    The reference scores are distances of the validation objects to means fitted on those same
    objects — slightly optimistic (they pulled the means toward themselves); with ≥ 20 objects a
    class the effect on the quantiles is small, and it errs on the side of calling objects unknown.
    """

    kind = "mahalanobis"
    needs_features = True

    def __init__(self, transform: str = "standard", **kw):
        super().__init__(**kw)
        if transform not in ("standard", "robust"):
            raise ConfigError(f"Mahalanobis transform must be 'standard' or 'robust', got {transform!r}")
        self.transform = transform
        self.center = self.scale = self.means = self.precision = None

    def _prepare(self, features) -> np.ndarray:
        if features is None:
            raise ConfigError("the Mahalanobis scorer needs a feature vector (embedding) per object")
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2:
            raise ConfigError(f"the Mahalanobis scorer needs (N, D) features, got shape {x.shape}")
        if self.center is not None:
            if x.shape[1] != len(self.center):
                raise ConfigError(f"features have {x.shape[1]} columns, the scorer was fitted on {len(self.center)}")
            x = np.where(np.isfinite(x), x, self.center)
            x = (x - self.center) / self.scale
            if self.transform == "robust":
                x = np.arcsinh(x)
        return x

    def fit(self, logits, y, features=None) -> MahalanobisScorer:
        from sklearn.covariance import LedoitWolf

        self.center = self.scale = self.means = self.precision = None  # a refit starts afresh
        x = np.asarray(self._prepare(features), dtype=np.float64)
        y = np.asarray(y, dtype=np.int64)
        if len(y) != len(x):
            raise ConfigError(f"{len(y)} labels for {len(x)} feature vectors")
        x = np.where(np.isfinite(x), x, np.nan)
        center = np.zeros(x.shape[1])
        some = np.isfinite(x).any(axis=0)  # an all-NaN column (undefined for every object) stays 0
        center[some] = np.nanmedian(x[:, some], axis=0)
        x = np.where(np.isfinite(x), x, center)
        if self.transform == "robust":
            q75, q25 = np.percentile(x, [75, 25], axis=0)
            scale = (q75 - q25) / 1.349
            scale = np.where(scale > 1e-12, scale, x.std(axis=0))
        else:
            scale = x.std(axis=0)
        self.center, self.scale = center, np.where(scale > 1e-12, scale, 1.0)
        x = (x - self.center) / self.scale
        if self.transform == "robust":
            x = np.arcsinh(x)
        classes = [c for c in np.unique(y) if np.sum(y == c) >= 2]
        if not classes:
            raise ConfigError("the Mahalanobis scorer needs at least one class with 2 validation objects")
        self.means = np.stack([x[y == c].mean(axis=0) for c in classes])
        keep = np.isin(y, classes)
        resid = x[keep] - self.means[np.searchsorted(classes, y[keep])]
        self.precision = LedoitWolf(assume_centered=True).fit(resid).precision_
        self._set_reference(self.score(logits, self._raw(features)))
        return self

    @staticmethod
    def _raw(features):
        return np.asarray(features, dtype=np.float64)

    def score(self, logits, features=None) -> np.ndarray:
        if self.means is None:
            raise ConfigError("mahalanobis scorer is not fitted")
        x = self._prepare(features)
        d = x[:, None, :] - self.means[None, :, :]  # (N, C, D)
        return np.einsum("ncd,de,nce->nc", d, self.precision, d).min(axis=1)

    def state(self):
        return {**self._base_meta(), "transform": self.transform}, {
            "center": self.center, "scale": self.scale, "means": self.means,
                                   "precision": self.precision, "reference": self.reference}

    @classmethod
    def _from_state(cls, meta, arrays):
        out = cls(transform=meta.get("transform", "standard"), separation=meta["separation"], prior=meta["prior"])
        for k in ("center", "scale", "means", "precision", "reference"):
            setattr(out, k, np.asarray(arrays[k], dtype=np.float64))
        return out


class CombinedScorer(_QuantileMapped):
    """Energy (from logits) and Mahalanobis (from features) together: the score is the sum of
    their two Gaussianised validation quantiles ``z_E + z_M``, itself mapped through its own
    validation quantiles like any other score (so it is again ``N(0,1)`` on known objects). The
    two see different
    failures: energy, objects no class claims; Mahalanobis, objects one class claims confidently
    while lying far from its members."""

    kind = "combined"
    needs_features = True

    def __init__(self, temperature: float = 1.0, transform: str = "standard", **kw):
        super().__init__(**kw)
        self.energy = EnergyScorer(temperature=temperature)
        self.mahalanobis = MahalanobisScorer(transform=transform)

    def fit(self, logits, y, features=None) -> CombinedScorer:
        self.energy.fit(logits)
        self.mahalanobis.fit(logits, y, features)
        self._set_reference(self.score(logits, features))
        return self

    def score(self, logits, features=None) -> np.ndarray:
        return self.energy.z(logits) + self.mahalanobis.z(logits, features)

    def state(self):
        e_meta, e_arr = self.energy.state()
        m_meta, m_arr = self.mahalanobis.state()
        arrays = {"reference": self.reference, **{f"energy.{k}": v for k, v in e_arr.items()},
                  **{f"mahalanobis.{k}": v for k, v in m_arr.items()}}
        return {**self._base_meta(), "energy": e_meta, "mahalanobis": m_meta}, arrays

    @classmethod
    def _from_state(cls, meta, arrays):
        out = cls(temperature=meta["energy"]["temperature"], transform=meta["mahalanobis"].get("transform", "standard"),
                  separation=meta["separation"], prior=meta["prior"])
        sub = lambda p: {k[len(p):]: v for k, v in arrays.items() if k.startswith(p)}  # noqa: E731
        out.energy = EnergyScorer._from_state(meta["energy"], sub("energy."))
        out.mahalanobis = MahalanobisScorer._from_state(meta["mahalanobis"], sub("mahalanobis."))
        out.reference = np.asarray(arrays["reference"], dtype=np.float64)
        return out


class ProductMahalanobisScorer(OpenSetScorer):
    """The product baseline times a Mahalanobis likelihood ratio: two independent pieces of
    evidence multiplied, as in naive Bayes.

    ``c = prior · [Π(1−pᵢ) / mean_val Π(1−pᵢ)] · exp(μ z − μ²/2)``, ``p99 = c / (1 + c)``, where
    ``z`` is the Gaussianised validation quantile of the Mahalanobis distance
    (:class:`MahalanobisScorer`). The first factor is the Kaggle kernels' rule (what the classifier's
    confidence says); the second is the likelihood ratio of the equal-variance Gaussian model of
    the module docstring (what the distance from every known class says): its mean over known
    objects is 1, so it leaves the overall rate alone and moves p99 up for objects far from every
    class and down for typical ones. With ``separation`` μ = 0 this is exactly
    :class:`ProductScorer`."""

    kind = "product-mahalanobis"
    needs_features = True

    def __init__(self, prior: float = 0.14, separation: float | None = None, transform: str = "standard"):
        if separation is None:
            separation = DEFAULT_SEPARATIONS["product-mahalanobis"]
        self.product = ProductScorer(prior=prior)
        self.mahalanobis = MahalanobisScorer(transform=transform, separation=separation)
        self.separation = float(separation)

    def fit(self, logits, y, features=None, *, proba: np.ndarray | None = None) -> ProductMahalanobisScorer:
        self.product.fit(logits, proba=proba)
        self.mahalanobis.fit(logits, y, features)
        return self

    def score(self, logits, features=None, *, proba: np.ndarray | None = None) -> np.ndarray:
        """log c − log prior (higher = more unusual)."""
        prod = self.product.score(logits, proba=proba) / self.product.mean_product
        z = np.clip(self.mahalanobis.z(logits, features), -_Z_CLIP, _Z_CLIP)
        return np.log(np.clip(prod, 1e-300, None)) + self.separation * z - 0.5 * self.separation**2

    def p_unknown(self, logits, features=None, *, proba: np.ndarray | None = None) -> np.ndarray:
        if self.product.mean_product is None:
            raise ConfigError("product-mahalanobis scorer is not fitted")
        c = self.product.prior * np.exp(np.minimum(self.score(logits, features, proba=proba), 700.0))
        return c / (1.0 + c)

    def state(self):
        p_meta, _ = self.product.state()
        m_meta, m_arr = self.mahalanobis.state()
        return ({"kind": self.kind, "separation": self.separation, "product": p_meta, "mahalanobis": m_meta},
                {f"mahalanobis.{k}": v for k, v in m_arr.items()})

    @classmethod
    def _from_state(cls, meta, arrays):
        out = cls(prior=meta["product"]["prior"], separation=meta["separation"],
                  transform=meta["mahalanobis"].get("transform", "standard"))
        out.product = ProductScorer._from_state(meta["product"], {})
        sub = {k[len("mahalanobis."):]: v for k, v in arrays.items() if k.startswith("mahalanobis.")}
        out.mahalanobis = MahalanobisScorer._from_state(meta["mahalanobis"], sub)
        return out


SCORERS = {c.kind: c for c in (ProductScorer, EnergyScorer, MahalanobisScorer, CombinedScorer,
                               ProductMahalanobisScorer)}


def make_scorer(kind: str, **kw) -> OpenSetScorer:
    if kind not in SCORERS:
        raise ConfigError(f"unknown open-set scorer {kind!r}; choose one of: {', '.join(SCORERS)}")
    return SCORERS[kind](**kw)


def scorer_from_state(meta: dict, arrays: dict[str, np.ndarray] | None = None) -> OpenSetScorer:
    """Rebuild a scorer from ``state()`` (``meta`` + ``arrays``) or from ``to_json()`` (arrays
    inside ``meta["arrays"]``)."""
    if not isinstance(meta, dict) or meta.get("kind") not in SCORERS:
        kind = meta.get("kind") if isinstance(meta, dict) else meta
        raise ConfigError(f"not an open-set scorer state: kind {kind!r}")
    arrays = dict(arrays or {})
    for k, v in (meta.get("arrays") or {}).items():
        arrays.setdefault(k, np.asarray(v, dtype=np.float64))
    return SCORERS[meta["kind"]]._from_state(meta, arrays)


def network_embeddings(net, dataset, *, collate_fn, batch_size: int = 256) -> np.ndarray:
    """``(N, D)`` ``net.embed(inputs)`` over a dataset of ``(inputs, target)`` items, in order
    (the vectors the Mahalanobis scorer reads for the sequence networks)."""
    import torch
    from torch.utils.data import DataLoader

    from ..core.inference import to_device

    if not hasattr(net, "embed"):
        raise ConfigError(f"{type(net).__name__} has no embed(inputs); use logits-only scorers (energy, product)")
    device = next(net.parameters()).device
    net.eval()
    out = []
    with torch.no_grad():
        for inputs, _ in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_fn):
            out.append(net.embed(to_device(inputs, device)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)
