"""Per-light-curve cleaning: gap filling, upward-outlier clipping, detrending, robust scaling.

Every step is per object, so nothing is learnt across the split. Detrending uses wotan's
time-windowed biweight (Hippke et al. 2019), the robust choice for transit searches: a window of
~3× the longest expected transit duration removes rotation and systematics and keeps the dips.
"""
from __future__ import annotations

import os

import numpy as np
from scipy.ndimage import median_filter

from .simulate import CADENCE_DAYS

DETRENDERS = ("biweight", "median", "none")


def fill_gaps(flux: np.ndarray) -> np.ndarray:
    flux = np.asarray(flux, dtype=np.float64)
    bad = ~np.isfinite(flux)
    if bad.any():
        idx = np.arange(len(flux))
        flux = flux.copy()
        flux[bad] = np.interp(idx[bad], idx[~bad], flux[~bad])
    return flux


def robust_sigma(x: np.ndarray) -> float:
    mad = np.median(np.abs(x - np.median(x)))
    return float(1.4826 * mad) or float(np.std(x)) or 1.0


def clean(flux: np.ndarray, *, detrend: str = "biweight", window_days: float = 0.75,
          clip_sigma: float = 4.0) -> tuple[np.ndarray, float]:
    """Detrend one light curve: returns (relative flux − 1 ``(L,)`` float32, robust noise σ).

    Dips below the trend are negative: a transit of depth d appears as -d. Upward outliers are
    clipped at ``clip_sigma`` σ; missing cadences are set to 0 (the trend).
    """
    if detrend not in DETRENDERS:
        raise ValueError(f"detrend must be one of {DETRENDERS}")
    raw = np.asarray(flux, dtype=np.float64)
    valid = np.isfinite(raw)
    f = fill_gaps(raw)
    med = np.median(f)
    # Kaggle fluxes can be mean-subtracted (centred near zero): shift before dividing.
    if med <= 0 or abs(med) < 5 * robust_sigma(f):
        f = f - f.min() + 10 * robust_sigma(f) + 1.0
        med = np.median(f)
    f = f / med
    if detrend == "biweight":
        from wotan import flatten

        t = np.arange(len(f)) * CADENCE_DAYS
        trend = flatten(t, f, method="biweight", window_length=window_days, return_trend=True,
                        edge_cutoff=0)[1]
        trend = fill_gaps(trend)
    elif detrend == "median":
        width = max(3, int(round(window_days / CADENCE_DAYS)) | 1)
        trend = median_filter(f, size=width, mode="reflect")
    else:
        trend = np.ones_like(f)
    r = f / trend - 1.0
    r[~valid] = 0.0
    s = robust_sigma(r[valid]) if valid.sum() > 10 else robust_sigma(r)
    # Clip only upward outliers (flares, cosmic rays); transits are downward and must survive.
    r = np.clip(r, -1.0, clip_sigma * s)
    return r.astype(np.float32), float(max(s, 1e-7))


def _clean_chunk(flux: np.ndarray, kw: dict) -> tuple[np.ndarray, np.ndarray]:
    out = [clean(row, **kw) for row in flux]
    return np.stack([r for r, _ in out]), np.array([s for _, s in out], dtype=np.float32)


def clean_batch(flux: np.ndarray, workers: int | None = None, **kw) -> tuple[np.ndarray, np.ndarray]:
    """``(N, L)`` relative fluxes and ``(N,)`` noise levels.

    wotan's biweight costs tens of milliseconds per light curve, so batches of a few hundred or
    more are spread over processes (``workers``, default: all cores); results do not depend on it.
    """
    if not len(flux):
        return np.zeros((0, flux.shape[1]), np.float32), np.zeros(0, np.float32)
    from ..core.parallel import pool_context

    workers = workers or os.cpu_count() or 1
    # no context: a daemonic process (a Dask or DataLoader worker) may not start children, and an
    # unguarded script would be re-run by them; clean in place
    ctx = pool_context()
    if workers < 2 or len(flux) < 200 or ctx is None:
        return _clean_chunk(flux, kw)
    from concurrent.futures import ProcessPoolExecutor

    chunks = np.array_split(flux, min(len(flux) // 50, workers * 4))

    # forkserver: forking a process that already runs OpenMP threads (numba, torch) is unsafe
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        parts = list(pool.map(_clean_chunk, chunks, [kw] * len(chunks)))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def to_channels(r: np.ndarray, sigma: float | np.ndarray) -> np.ndarray:
    """Network input ``(2, L)`` (or ``(N, 2, L)``): the series in noise units (what a detection
    needs) and in percent (the depth, which tells a planet from a deep eclipsing binary)."""
    sigma = np.asarray(sigma, dtype=np.float32)
    if r.ndim == 2:
        sigma = sigma[:, None]
    snr = np.clip(r / sigma, -50.0, 5.0)
    pct = np.clip(r * 100.0, -50.0, 5.0)
    return np.stack([snr, pct], axis=-2).astype(np.float32)
