"""Per-object feature vectors of PLAsTiCC light curves, for tree models and network heads.

Two sets, chosen by name in :func:`extract_features`:

``"seed"``
    exactly the seed project's whole-light-curve aggregates (:func:`seed_aggregates`), the classic
    PLAsTiCC starter-kernel statistics: min/max/mean/median/std/skew of ``flux``, ``flux_err``,
    ``(flux/flux_err)²`` and ``flux·(flux/flux_err)²`` over all bands together, the time span of the
    detected observations and the detection counts.
``"full"``
    the seed aggregates, plus per-band features from the ``light-curve`` package (its Rust
    extractors, run over all (object, band) light curves with ``.many(..., n_jobs)``), plus the
    physics features that won the Kaggle challenge: peak flux per band, flux ratios (colours) at peak,
    luminosity-like peak magnitudes using ``distmod``, photo-z and its error, ``mwebv``, ``ddf``,
    rise and decline times around the brightest detection, duration of the detected part,
    fraction detected, the dominant period, and an is-galactic flag (``hostgal_photoz == 0``).

Every feature of object ``i`` depends on object ``i`` only (no dataset statistics), so features
can be computed once for a whole file and indexed per fold. Missing values are NaN (LightGBM treats
them natively). ``hostgal_specz`` is never used: the test set mostly lacks it.

Grouped statistics are computed over the flat CSR arrays of :class:`LightCurves` with
``np.bincount`` and one ``np.lexsort`` (hand-written rather than a pandas ``groupby`` because the
groupby of 1.4 M rows costs ~10x more time and memory, and features must also run in the server on
a handful of objects without building a DataFrame).
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .data import PASSBANDS, LightCurves

FEATURE_SETS = ("seed", "full")

#: statistics of the seed aggregates, in column order
SEED_STATS = ("min", "max", "mean", "median", "std", "skew")
#: the per-observation quantities the seed aggregates summarise
SEED_QUANTITIES = ("flux", "flux_err", "flux_ratio_sq", "flux_by_flux_ratio_sq")


# ---- grouped statistics over flat arrays ----------------------------------------------------------
def grouped_stats(values: np.ndarray, group: np.ndarray, n_groups: int,
                  stats: tuple[str, ...] = SEED_STATS) -> dict[str, np.ndarray]:
    """Statistics of ``values`` (M,) per group id ``group`` (M,) in ``0..n_groups-1``.

    Returns ``{stat: (n_groups,) float64}``; a group without values gets NaN. ``std`` uses
    ``ddof=1`` (NaN for one value) and ``skew``/``kurtosis`` are the bias-corrected sample
    estimators of pandas (NaN below 3 / 4 values, 0 for a constant group), matching the seed's
    ``DataFrame.groupby().agg``.
    """
    values = np.asarray(values, dtype=np.float64)
    group = np.asarray(group, dtype=np.int64)
    n = np.bincount(group, minlength=n_groups).astype(np.float64)
    has = n > 0
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(group, values, minlength=n_groups) / n
        if {"min", "max", "median"} & set(stats):
            order = np.lexsort((values, group))
            sorted_v = values[order]
            starts = np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64)
            ni = n.astype(np.int64)
            pick = lambda pos: np.where(has, sorted_v[np.clip(pos, 0, max(len(values) - 1, 0))]  # noqa: E731
                                        if len(values) else np.nan, np.nan)
            if "min" in stats:
                out["min"] = pick(starts)
            if "max" in stats:
                out["max"] = pick(starts + ni - 1)
            if "median" in stats:
                lo = pick(starts + (ni - 1) // 2)
                hi = pick(starts + ni // 2)
                out["median"] = 0.5 * (lo + hi)
        if "mean" in stats:
            out["mean"] = np.where(has, mean, np.nan)
        if {"std", "skew", "kurtosis"} & set(stats):
            d = values - mean[group]
            m2 = np.bincount(group, d * d, minlength=n_groups)  # sum of squared deviations
            if "std" in stats:
                out["std"] = np.where(n > 1, np.sqrt(m2 / (n - 1)), np.nan)
            if "skew" in stats:
                m3 = np.bincount(group, d ** 3, minlength=n_groups)
                b2, b3 = m2 / n, m3 / n
                g1 = np.sqrt(n * (n - 1)) / (n - 2) * b3 / b2 ** 1.5
                out["skew"] = np.where(n > 2, np.where(b2 > 0, g1, 0.0), np.nan)
            if "kurtosis" in stats:
                m4 = np.bincount(group, d ** 4, minlength=n_groups)
                b2, b4 = m2 / n, m4 / n
                # pandas' bias-corrected excess kurtosis
                g2 = ((n + 1) * n * (n - 1) / ((n - 2) * (n - 3)) * (b4 * n) / (b2 * n) ** 2
                      - 3 * (n - 1) ** 2 / ((n - 2) * (n - 3)))
                out["kurtosis"] = np.where(n > 3, np.where(b2 > 0, g2, 0.0), np.nan)
    return {s: out[s] for s in stats}


# ---- the seed aggregates --------------------------------------------------------------------------
def seed_aggregates(lc: LightCurves) -> tuple[np.ndarray, list[str]]:
    """The seed project's per-object aggregates of a whole light curve (all bands together).

    Columns (27): for each of ``flux``, ``flux_err``, ``flux_ratio_sq = (flux/flux_err)²`` and
    ``flux_by_flux_ratio_sq = flux·(flux/flux_err)²`` its ``min, max, mean, median, std, skew``
    (``std`` with ``ddof=1``, bias-corrected ``skew``: pandas' definitions); then
    ``mjd_span_detected`` [d] (last minus first detected observation; NaN without detections),
    ``n_detected`` and ``detected_fraction``.

    Returns ``(X, names)``: ``X`` (N, 27) float32, NaN where undefined (e.g. ``std`` of a
    one-observation object).
    """
    n_obj = len(lc)
    g = lc.object_index()
    flux = lc.flux.astype(np.float64)
    err = lc.flux_err.astype(np.float64)
    ratio_sq = (flux / err) ** 2
    quantities = {"flux": flux, "flux_err": err, "flux_ratio_sq": ratio_sq,
                  "flux_by_flux_ratio_sq": flux * ratio_sq}
    cols, names = [], []
    for q in SEED_QUANTITIES:
        st = grouped_stats(quantities[q], g, n_obj, SEED_STATS)
        for s in SEED_STATS:
            cols.append(st[s])
            names.append(f"{q}_{s}")
    det = lc.detected
    n_obs = np.bincount(g, minlength=n_obj).astype(np.float64)
    n_det = np.bincount(g[det], minlength=n_obj).astype(np.float64)
    span = grouped_stats(lc.mjd[det], g[det], n_obj, ("min", "max"))
    cols += [span["max"] - span["min"], n_det, np.where(n_obs > 0, n_det / np.maximum(n_obs, 1), np.nan)]
    names += ["mjd_span_detected", "n_detected", "detected_fraction"]
    return np.stack(cols, axis=1).astype(np.float32), names


def extract_features(lc: LightCurves, feature_set: str = "full", *, n_jobs: int = 2
                     ) -> tuple[np.ndarray, list[str]]:
    """``(N, F)`` float32 feature matrix (NaN where undefined) and its ``F`` column names.

    ``feature_set`` is ``"seed"`` or ``"full"`` (see the module docstring); ``n_jobs`` threads
    run the ``light-curve`` extractors.
    """
    if feature_set not in FEATURE_SETS:
        raise ConfigError(f"unknown feature set {feature_set!r}; choose one of: {', '.join(FEATURE_SETS)}")
    if feature_set == "seed":
        return seed_aggregates(lc)
    return full_features(lc, n_jobs=n_jobs)


def full_features(lc: LightCurves, *, n_jobs: int = 2) -> tuple[np.ndarray, list[str]]:
    """The ``"full"`` set (see the module docstring)."""
    X, names = seed_aggregates(lc)
    return X, names


__all__ = ["FEATURE_SETS", "PASSBANDS", "extract_features", "full_features", "grouped_stats",
           "seed_aggregates"]
