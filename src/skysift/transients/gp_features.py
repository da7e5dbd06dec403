"""Light-curve features read off a 2-D Gaussian process (Avocado's features, Boone 2019, §4).

A wide-fast-deep light curve has one observation every few nights in a random band, so the colour
at peak, the rise and the decline are rarely observed directly; the per-band features of
:mod:`.features` then see a few scattered points. The GP of :class:`.survey_shift.LightCurveGP`
(flux against time and ln λ) borrows strength across bands and epochs, and the features below are
read from its mean on a regular grid: the peak time of the summed light curve, peak colours (as
normalised flux differences of neighbouring bands, bounded in [−1, 1] and defined for negative
fluxes), the colours 15 and 30 rest-frame days after peak (SNe Ia redden fast, SNe II stay blue),
rise and decline times to 50 % / 20 % of the peak in rest-frame days (photo-z), a peak
luminosity-like magnitude using ``distmod``, and the GP's chosen time scale.

These are extracted per object in Python (one GP fit: ~3-10 ms), in a process pool for large sets.
"""
from __future__ import annotations

import numpy as np

from .data import LightCurves

GRID_STEP = 2.0  # d
WINDOW = 100.0  # d
_PAIRS = ((0, 1), (1, 2), (2, 3), (3, 4), (4, 5))
NAMES = ([f"gp_peak_colour_{a}{b}" for a, b in _PAIRS]
         + [f"gp_colour15_{a}{b}" for a, b in _PAIRS[1:4]] + [f"gp_colour30_{a}{b}" for a, b in _PAIRS[1:4]]
         + ["gp_rise50", "gp_rise20", "gp_fall50", "gp_fall20", "gp_peak_mag_abs", "gp_time_scale",
            "gp_peak_frac_observed_span", "gp_chi2_per_point"])


def _norm_diff(a, b):
    s = np.abs(a) + np.abs(b)
    return np.where(s > 0, (a - b) / np.where(s > 0, s, 1.0), np.nan)


def _crossing(t, f, peak_i, level, direction) -> float:
    """Days from the peak to where ``f`` first drops below ``level`` going ``direction`` (±1)."""
    idx = np.arange(peak_i, -1, -1) if direction < 0 else np.arange(peak_i, len(f))
    below = np.flatnonzero(f[idx] < level)
    return float(abs(t[idx[below[0]]] - t[peak_i])) if len(below) else np.nan


def object_features(obj: dict) -> np.ndarray:
    from .augment import _LOG_WAVE
    from .survey_shift import LightCurveGP

    out = np.full(len(NAMES), np.nan, np.float32)
    mjd = np.asarray(obj["mjd"], np.float64)
    if len(mjd) < 3:
        return out
    band = np.asarray(obj["passband"], np.int64)
    flux = np.asarray(obj["flux"], np.float64)
    err = np.asarray(obj["flux_err"], np.float64)
    gp = LightCurveGP(mjd, band, flux, err)
    # the grid spans ±WINDOW d around the brightest detection: the transient's peak lies there, and a
    # survey-long grid would cost ten times more predictions
    from .augment import _reference_time

    t_ref = _reference_time(obj)
    t = np.arange(t_ref - WINDOW, t_ref + WINDOW + GRID_STEP, GRID_STEP)
    nt = len(t)
    mu, _ = gp.predict(np.tile(t, 6), np.repeat(_LOG_WAVE, nt), std=False)
    grid = mu.reshape(6, nt)
    total = grid[1:5].sum(axis=0)  # g r i z: the bands every object is observed in
    p = int(np.argmax(total))
    peak = grid[:, p]
    z = obj.get("hostgal_photoz", np.nan)
    one_z = 1.0 + (z if np.isfinite(z) and z > 0 else 0.0)
    k = 0
    for a, b in _PAIRS:
        out[k] = _norm_diff(peak[a], peak[b])
        k += 1
    for days in (15.0, 30.0):
        q = min(nt - 1, p + int(round(days * one_z / GRID_STEP)))
        for a, b in _PAIRS[1:4]:
            out[k] = _norm_diff(grid[a, q], grid[b, q])
            k += 1
    top = total[p]
    for level, direction in ((0.5, -1), (0.2, -1), (0.5, 1), (0.2, 1)):
        out[k] = _crossing(t, total, p, level * top, direction) / one_z if top > 0 else np.nan
        k += 1
    mu_d = obj.get("distmod", np.nan)
    out[k] = -2.5 * np.log10(max(top, 1e-3)) - (mu_d if np.isfinite(mu_d) else 0.0)
    out[k + 1] = gp.tau
    span = mjd.max() - mjd.min()
    out[k + 2] = (t[p] - mjd.min()) / span if span > 0 else np.nan  # where in the observed span the peak lies
    fit, _ = gp.predict(mjd, _LOG_WAVE[band], std=False)
    out[k + 3] = float(np.mean(((flux - fit) / err) ** 2))
    return out


def _chunk(lc: LightCurves) -> np.ndarray:
    return np.stack([object_features(lc.object(i)) for i in range(len(lc))]) if len(lc) else \
        np.zeros((0, len(NAMES)), np.float32)


def gp_features(lc: LightCurves, *, chunk: int = 200) -> tuple[np.ndarray, list[str]]:
    """``(N, len(NAMES))`` float32 GP features (NaN where undefined) and their names."""
    from concurrent.futures import ProcessPoolExecutor

    from ..core.parallel import pool_context, worker_count
    from ..core.progress import track

    parts = [lc.take(np.arange(a, min(a + chunk, len(lc)))) for a in range(0, len(lc), chunk)]
    ctx, n = pool_context(), worker_count()
    if ctx is None or n <= 1 or len(parts) < 2:
        res = [_chunk(p) for p in parts]
    else:
        with ProcessPoolExecutor(n, mp_context=ctx) as pool:
            res = list(track(pool.map(_chunk, parts), f"GP features of {len(lc):,} objects", total=len(parts),
                             unit="chunks"))
    X = np.concatenate(res) if res else np.zeros((0, len(NAMES)), np.float32)
    return X.astype(np.float32), list(NAMES)
