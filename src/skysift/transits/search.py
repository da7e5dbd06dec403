"""Transit search and its views: fast detrending, a box-least-squares search, folded views.

What the classifiers of the field feed their networks (AstroNet, Shallue & Vanderburg 2018;
ExoMiner, Valizadegan et al. 2022): the light curve is detrended, searched for a periodic box-shaped
dip, and folded on the best period. The network then sees

* a **global view** (the whole orbit, ``n_global`` phase bins): secondary eclipses, ellipsoidal
  modulation, other dips;
* a **local view** (± ``local_width`` transit durations, ``n_local`` bins): the transit's shape;
* the local view of **odd** and of **even** transits (an eclipsing binary found at half its period
  alternates primary and secondary eclipses) and of **phase 0.5** (the secondary eclipse);
* **scalars**: period, duration, depth, SNR, signal detection efficiency, odd/even depth
  difference, secondary depth, V-vs-U shape, duration against the duration a Sun-like star gives;
  and (``shape_fit``) a trapezoid fitted to the local view, with the impact parameter and stellar
  density a planet would need for it (:func:`shape_scalars`).

The search runs ``n_candidates`` times (default 2; the later searches on a coarser period grid,
``next_n_periods``), each time with the previous candidate's transits masked, and every candidate
gets its own views (the feature vector is their concatenation, strongest first): a planet behind a
stronger spurious signal, or a second planet, is not lost.

Views are in units of the fitted depth (the transit bottom sits at -1), so the shape is compared
across depths; depth and SNR are scalars. Everything is decided by :class:`SearchSettings`, which
the model's bundle stores, so every input path (CSV, FITS, JSON) gets the same views.

Speed: every light curve of a set shares one cadence grid, so the folding index of every trial
period is computed once and reused (the search itself is compiled with numba and runs over light
curves in threads). Results are cached per input file (content hash + settings), see
:func:`views_cached`.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from .simulate import CADENCE_DAYS, _a_over_rs

log = logging.getLogger("skysift")

#: bump when the views change meaning, so that stale cache entries are never read
VIEWS_VERSION = 7
#: light curves searched at once (the search runs over them in threads)
CHUNK = 1024


@dataclass(frozen=True)
class SearchSettings:
    """Everything that decides the views of a light curve (stored in the bundle)."""

    length: int = 3197
    detrend: str = "median"  # median (fast, default) | biweight (wotan) | none
    window_days: float = 1.0
    window_min_days: float = 0.25
    #: residual scatter / cadence-to-cadence scatter above which the window is halved
    adapt_ratio: float = 1.6
    clip_sigma: float = 4.0
    #: the first search runs on 2-cadence (59 min) bins (views use every cadence): on validation
    #: hosts (seeds 950-953, 150-300 per generator) the finer phase grid found 1.6-2.7% more of the
    #: independent generator's hosts than 3-cadence bins (0.4-1.3% more of the training
    #: simulator's), mostly short, shallow transits of faint stars that an 88-min bin smears, for
    #: ~10% more preprocessing CPU; bundles written before keep 3
    bin_cadences: int = 2
    period_min: float = 0.5
    period_max: float = 32.0
    #: 1,500 trial periods per pass: recall (injected planets found) is the same as with 2,000 or
    #: 4,000, and the second pass (below) costs less than the 500 periods saved twice
    n_periods: int = 1500
    #: in bins of the search (``bin_cadences``): 1-14 h with 2-cadence bins, the range the
    #: earlier (1, 2, 3, 4, 5, 7, 9) spanned on 3-cadence bins
    durations_bins: tuple = (1, 2, 3, 4, 6, 8, 11, 14)
    max_duty_cycle: float = 0.12
    red_noise: bool = True
    #: searched durations span this range around the central-transit duration of a Sun-like star
    duration_range: tuple = (0.25, 2.5)
    n_global: int = 201
    n_local: int = 61
    local_width: float = 2.5  # half-width of the local view in transit durations
    #: candidates per star: after each search the candidate's transits are masked and the search
    #: runs again (as Kepler's pipeline does for multi-planet systems), each candidate gets its own
    #: views, and the network scores a star by its most planet-like candidate
    n_candidates: int = 2
    #: trial periods and time bins of the searches after the first (0 = as the first). The second
    #: search raised the preprocessing cost by ~30%, nearly all of it the folding (a scatter-add of
    #: every time bin for every trial period); on validation stars (seeds 500/600, 400 hosts each)
    #: 750 periods found as many hosts with either candidate as 1,500 (93%/82%) for ~20% more
    #: light curves per CPU-second; 6-cadence bins instead lost 2% of the independent hosts
    next_n_periods: int = 750
    #: the later searches stay on 3-cadence bins: 2-cadence bins there too found 0.6-1% more
    #: validation hosts for twice the extra cost
    next_bin_cadences: int = 3
    #: the period is chosen by the dip power minus this many times the *bump* power (the best
    #: upward box at the same period and duration): the inverted-light-curve check of transit
    #: surveys, applied inside the periodogram. Residual stellar variability that a running median
    #: cannot follow (fast rotation, pulsation) leaves troughs *and* crests, a transit only dips.
    #: Validation seeds 902/903/904 (250 hosts per generator each; search recall by either
    #: candidate, ``benchmarks/transits_search_recall.py --anti-weight W``): 0 -> 1.5 raised it from
    #: 0.85/0.83/0.84 to 0.88/0.85/0.86 (independent generator) and 0.90/0.94/0.92 to 0.92/0.95/0.95
    #: (training simulator); 1, 2 and 3 were lower than 1.5 on every seed but one
    anti_weight: float = 1.5
    #: after each search, the period is halved when the box at phase 0.5 is as deep (> 0.7×) and
    #: significant (SNR > 7) as the transit, and doubled when odd or even transits alone hold the
    #: dip (the other half < 0.3× as deep): Kepler's data validation checks of the period's
    #: harmonics. The search alone picked twice or half the true period for 4–8% of validation hosts
    #: (seeds 902/903), whose views then read as eclipsing binaries (a flat or alternating phase 0.5);
    #: with the check the exact period is found for 84/82% instead of 79/78% of the independent
    #: generator's hosts, 88/91% instead of 85/88% of the training simulator's (either candidate).
    #: The thresholds were set once, beforehand, and not tuned
    harmonic_check: bool = True
    #: five more scalars per candidate from a trapezoid fitted to the local view (ingress
    #: fraction, total duration, depth, and the impact parameter and stellar density a planet of
    #: radius ratio √depth would need to make that shape; :func:`shape_scalars`); bundles written
    #: before have none
    shape_fit: bool = True

    @classmethod
    def from_stats(cls, stats: dict) -> SearchSettings:
        names = cls.__dataclass_fields__
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in stats.items() if k in names}
        kw.setdefault("n_candidates", 1)  # bundles written before the iterated search had one
        kw.setdefault("next_n_periods", 0)  # ... and before the coarser later searches, the same grid
        kw.setdefault("next_bin_cadences", 0)
        kw.setdefault("bin_cadences", 3)  # ... and every bundle before the 2-cadence first search
        kw.setdefault("durations_bins", (1, 2, 3, 4, 5, 7, 9))
        kw.setdefault("anti_weight", 0.0)  # ... and before the bump-power contrast
        kw.setdefault("harmonic_check", False)  # ... and before the harmonic check
        kw.setdefault("shape_fit", False)  # ... and before the trapezoid scalars
        return cls(**kw)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["durations_bins"] = list(self.durations_bins)
        d["duration_range"] = list(self.duration_range)
        return d

    @property
    def scalar_names(self) -> tuple:
        return SCALAR_NAMES + (SHAPE_SCALAR_NAMES if self.shape_fit else ())

    @property
    def n_scalars(self) -> int:
        return len(self.scalar_names)

    @property
    def n_per_candidate(self) -> int:
        return self.n_global + 4 * self.n_local + self.n_scalars

    @property
    def n_features(self) -> int:
        return self.n_candidates * self.n_per_candidate


SCALAR_NAMES = (
    "log10_period", "log10_duration", "log10_depth", "log10_snr", "sde", "log10_noise",
    "odd_even_sigma", "secondary_snr", "secondary_ratio", "max_other_dip_snr", "v_shape",
    "log10_duration_ratio", "log10_n_transits", "ellipsoidal_snr", "oot_scatter_ratio", "log10_depth_pct",
    "max_single_event_share", "log10_event_depth_chi2",
)
#: appended to every candidate's scalars when ``SearchSettings.shape_fit`` (see :func:`shape_scalars`)
SHAPE_SCALAR_NAMES = ("ingress_fraction", "log10_trapezoid_duration_ratio", "log10_trapezoid_depth",
                      "implied_impact", "log10_implied_density")


# ---- detrending ---------------------------------------------------------------------------------
def detrend_batch(flux: np.ndarray, s: SearchSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(relative flux − 1, valid mask, robust σ)`` of ``(N, L)`` raw fluxes (NaN = missing).

    The default is a running median over ``window_days`` (scipy's C filter over the whole batch:
    ~1 ms per light curve, 20–30× faster than wotan's biweight, which stays available as
    ``detrend="biweight"``). Upward outliers (flares, cosmic rays) are clipped; dips are kept.
    """
    from .preprocess import clean, fill_gaps, robust_sigma

    flux = np.asarray(flux, dtype=np.float64)
    valid = np.isfinite(flux)
    if s.detrend == "biweight":
        out = [clean(row, detrend="biweight", window_days=s.window_days, clip_sigma=s.clip_sigma)
               for row in flux]
        rel = np.stack([r for r, _ in out]).astype(np.float64) if out else np.zeros_like(flux)
        sig = np.array([v for _, v in out])
        return rel, valid, sig
    # a light curve with no valid cadence at all (a request may hold one) is flat, not an error
    f = (np.stack([fill_gaps(r) if v.any() else np.ones_like(r) for r, v in zip(flux, valid)])
         if (~valid).any() else flux.copy())
    med = np.median(f, axis=1)
    # the MAD is at most the largest deviation: only rows that this bound cannot clear need their
    # MAD (a median per row, a tenth of the detrending's cost otherwise)
    maybe = np.flatnonzero((med <= 0) | (np.abs(med) < 5 * (1.4826 * np.abs(f - med[:, None]).max(axis=1))))
    shifted = maybe[(med[maybe] <= 0) | (np.abs(med[maybe]) < 5 * _mad(f[maybe]))] if len(maybe) else maybe
    for i in shifted:
        # Kaggle fluxes can be mean-subtracted (centred near zero): shift before dividing
        f[i] = f[i] - f[i].min() + 10 * robust_sigma(f[i]) + 1.0
    if len(shifted):
        med[shifted] = np.median(f[shifted], axis=1)
    f /= med[:, None]
    # the residual scatter of a row measured in the window search below is its final noise too,
    # unless the row changes afterwards (a shorter window, or zeroed gaps)
    known = np.full(len(f), np.nan)
    if s.detrend == "median":
        rel = f / _median_trend(f, s.window_days) - 1.0
        # fast rotators and pulsators leave variability a 1-day window cannot follow: where the
        # residual is far above the cadence-to-cadence scatter, halve the window (down to
        # window_min_days; shorter windows start to eat the transits themselves)
        window = s.window_days
        rows = np.arange(len(f))  # a row left alone once stays alone: only the halved are retested
        while window / 2 >= s.window_min_days - 1e-9:
            resid = _mad(rel[rows])
            known[rows] = resid
            p2p = _mad(np.diff(rel[rows], axis=1)) / np.sqrt(2)
            redo = rows[resid > s.adapt_ratio * p2p]
            if not len(redo):
                break
            known[redo] = np.nan
            window /= 2
            rel[redo] = f[redo] / _median_trend(f[redo], window) - 1.0
            rows = redo
    elif s.detrend == "none":
        rel = f - 1.0
    else:
        raise ValueError(f"unknown detrending {s.detrend!r}")
    rel[~valid] = 0.0
    sig = known
    need = np.flatnonzero(np.isnan(sig) | ~valid.all(axis=1))
    if len(need):
        sig[need] = _mad(rel[need])
    # missing cadences sit at the trend (0): harmless when they are a few %, but a quarter with
    # long gaps would get a far too small noise; those rows are measured on valid cadences only
    gappy = np.flatnonzero(valid.mean(axis=1) < 0.95)
    for i in gappy:
        v = rel[i, valid[i]]
        sig[i] = 1.4826 * np.median(np.abs(v - np.median(v))) if len(v) > 10 else sig[i]
    rel = np.minimum(rel, s.clip_sigma * sig[:, None])
    # a lone low cadence between two normal ones is an outlier, not a transit: at 29.4-min cadence
    # even the shortest transits (~1 h) span two cadences
    low = rel < -s.clip_sigma * sig[:, None]
    calm = rel > -1.5 * sig[:, None]
    lone = low.copy()
    lone[:, 1:] &= calm[:, :-1]
    lone[:, :-1] &= calm[:, 1:]
    lone[:, [0, -1]] = False
    rel[lone] = 0.0
    valid = valid & ~lone
    return rel, valid, np.maximum(sig, 1e-7)


def _median_trend(f: np.ndarray, window_days: float) -> np.ndarray:
    """Running median over ``window_days``, computed on 3-cadence means and interpolated back:
    9x cheaper than at full resolution, and the trend is smooth on that scale anyway."""
    from scipy.ndimage import median_filter

    k = 3
    n = f.shape[1] // k * k
    parts = [f[:, :n].reshape(len(f), -1, k).mean(axis=2)]
    if n < f.shape[1]:
        parts.append(f[:, n:].mean(axis=1, keepdims=True))
    binned = np.concatenate(parts, axis=1)
    width = max(3, int(round(window_days / (k * CADENCE_DAYS))) | 1)
    smooth = median_filter(binned, size=(1, width), mode="nearest")
    centres = np.minimum(np.arange(binned.shape[1]) * k + (k - 1) / 2, f.shape[1] - 1)
    grid = np.arange(f.shape[1])
    return np.stack([np.interp(grid, centres, row) for row in smooth])


def _mad(x: np.ndarray) -> np.ndarray:
    med = np.median(x, axis=1, keepdims=True)
    return 1.4826 * np.median(np.abs(x - med), axis=1)


def expected_duration(period):
    """Central-transit duration [d] of a planet around a Sun-like star at ``period`` days."""
    return 0.54 * (np.asarray(period) / 365.25) ** (1 / 3)


# ---- box least squares ----------------------------------------------------------------------------
_GRIDS: dict = {}


def search_grid(s: SearchSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Trial periods (uniform in frequency^(1/3), Ofir 2014: the transit duration scales as
    P^(1/3), so this spacing keeps the phase error a fixed fraction of a duration), the phase-bin
    index of every time bin for every period, the phase-bin count and the first and last allowed
    duration (indices into ``durations_bins``) per period."""
    key = (s.length, s.bin_cadences, s.period_min, s.period_max, s.n_periods, s.durations_bins, s.max_duty_cycle,
           s.duration_range)
    if key not in _GRIDS:
        u = np.linspace((1 / s.period_max) ** (1 / 3), (1 / s.period_min) ** (1 / 3), s.n_periods)
        periods = 1.0 / u ** 3
        bw = s.bin_cadences * CADENCE_DAYS
        m = s.length // s.bin_cadences
        tb = (np.arange(m) + 0.5) * bw
        nb = np.ceil(periods / bw).astype(np.int64)
        idx = np.floor((tb[None, :] % periods[:, None]) / bw).astype(np.int16)
        durs = np.asarray(s.durations_bins, dtype=np.int64)
        expected = expected_duration(periods) / bw
        lo, hi = s.duration_range
        d_lo = np.zeros(len(periods), np.int64)
        d_hi = np.zeros(len(periods), np.int64)
        for p, n in enumerate(nb):
            ok = np.flatnonzero((durs <= max(s.max_duty_cycle * n, 1)) & (durs >= lo * expected[p])
                                & (durs <= hi * expected[p]))
            if not len(ok):  # at least the duration nearest the expected one
                ok = [int(np.argmin(np.abs(durs - expected[p])))]
            d_lo[p], d_hi[p] = ok[0], ok[-1] + 1
        _GRIDS[key] = (periods, idx, nb, np.stack([d_lo, d_hi], axis=1))
    return _GRIDS[key]


@functools.lru_cache(maxsize=1)
def _bls_kernel():
    # Hand-written because astropy's BoxLeastSquares costs ~90 ms per Kepler light curve on this
    # grid (measured), 20x too slow for the throughput target; this is the same binned algorithm
    # (Kovács et al. 2002) with the folding index shared across light curves. A test checks that
    # it finds the period astropy finds.
    import numba

    @numba.njit(parallel=True, cache=True, fastmath=True)
    def bls(sx, w_bin, idx, nb, durs, n_dur, inv_beta, anti, power, score):
        n_lc, m = sx.shape
        n_p = idx.shape[0]
        n_d = len(durs)
        w_tot = w_bin * m
        # periods outermost: each period's folding index is read once for all light curves, and
        # the weights of every window (cadences per phase bin) are shared by all of them
        for p in numba.prange(n_p):
            k = nb[p]
            s = np.zeros(2 * k + 1)
            c = np.zeros(2 * k + 1)
            fac = np.zeros((n_d, k))
            row = idx[p]
            for i in range(m):
                c[row[i] + 1] += w_bin
            for j in range(1, k + 1):
                c[k + j] = c[j]
            for j in range(1, 2 * k + 1):
                c[j] += c[j - 1]
            for di in range(n_dur[p, 0], n_dur[p, 1]):
                d = durs[di]
                for j in range(k):
                    cc = c[j + d] - c[j]
                    if cc > 0.0 and cc < w_tot:
                        fac[di, j] = 1.0 / (cc * (1.0 - cc / w_tot))
            for b in range(n_lc):
                for j in range(2 * k + 1):
                    s[j] = 0.0
                for i in range(m):
                    s[row[i] + 1] += sx[b, i]
                # cumulative sums over two turns of the phase, so windows may wrap
                for j in range(1, k + 1):
                    s[k + j] = s[j]
                for j in range(1, 2 * k + 1):
                    s[j] += s[j - 1]
                best = 0.0
                up = 0.0
                for di in range(n_dur[p, 0], n_dur[p, 1]):
                    d = durs[di]
                    # epochs a third of a duration apart: the usual BLS phase oversampling;
                    # branch-free so that the loop vectorises (the epoch is found afterwards)
                    step = max(1, d // 3)
                    bd = 0.0
                    bu = 0.0
                    for j in range(0, k, step):
                        v = s[j + d] - s[j]
                        vn = min(v, 0.0)
                        vp = max(v, 0.0)
                        bd = max(bd, vn * vn * fac[di, j])
                        bu = max(bu, vp * vp * fac[di, j])
                    best = max(best, bd * inv_beta[b, di])
                    up = max(up, bu * inv_beta[b, di])
                power[b, p] = best
                score[b, p] = max(best - anti * up, 0.0)

    return bls


def bls_search(rel: np.ndarray, valid: np.ndarray, s: SearchSettings) -> dict:
    """Best period, epoch, duration, depth, SNR and SDE of each of ``(N, L)`` detrended series."""
    periods, idx, nb, n_dur = search_grid(s)
    k = s.bin_cadences
    m = s.length // k
    # missing cadences are set to the mean level and keep their weight: the weights of every
    # window are then the same for all light curves (computed once per period), at the cost of
    # diluting a transit that falls partly in a gap
    x = np.where(valid, rel, np.nan)[:, : m * k]
    mean = np.nan_to_num(np.nanmean(x, axis=1))
    x = np.where(np.isfinite(x), x, mean[:, None]) - mean[:, None]
    sx = x.reshape(len(rel), m, k).sum(axis=2)
    n = len(rel)
    power = np.zeros((n, len(periods)))
    score = np.zeros((n, len(periods)))
    durs = np.asarray(s.durations_bins, dtype=np.int64)
    inv_beta = 1.0 / red_noise_beta(sx, durs) if s.red_noise else np.ones((n, len(durs)))
    _bls_kernel()(np.ascontiguousarray(sx), float(k), idx, nb, durs, n_dur, np.ascontiguousarray(inv_beta),
                  float(s.anti_weight), power, score)
    # the period by the contrast; the reported power (the views' SNR) is the dip's own
    p = score.argmax(axis=1)
    bw = k * CADENCE_DAYS
    period, t0, duration = periods[p], np.zeros(n), np.zeros(n)
    for b in range(n):
        # the best period's epoch and duration, by the same statistic
        fold = np.bincount(idx[p[b]], weights=sx[b], minlength=nb[p[b]])
        cnt = np.bincount(idx[p[b]], minlength=nb[p[b]]) * float(k)
        kk = nb[p[b]]
        cs = np.concatenate([[0.0], np.cumsum(np.concatenate([fold, fold]))])
        cc = np.concatenate([[0.0], np.cumsum(np.concatenate([cnt, cnt]))])
        best, bj, bd = -1.0, 0, int(durs[n_dur[p[b], 0]])
        for di in range(n_dur[p[b], 0], n_dur[p[b], 1]):
            d = int(durs[di])
            ss = np.minimum(cs[d:d + kk] - cs[:kk], 0.0)
            w = cc[d:d + kk] - cc[:kk]
            pw = np.where((w > 0) & (w < cnt.sum()), ss ** 2 / np.maximum(w * (1 - w / cnt.sum()), 1e-12), 0.0)
            j = int(pw.argmax())
            if pw[j] > best:
                best, bj, bd = float(pw[j]), j, d
        t0[b] = ((bj + bd / 2.0) * bw) % period[b]
        duration[b] = bd * bw
    r = np.arange(n)
    step = np.gradient(periods)[p] / period  # the grid's relative spacing at the best period
    period, t0, duration = refine_search(rel, valid, period, t0, duration, step)
    if s.harmonic_check:
        period, t0 = resolve_harmonics(rel, valid, period, t0, duration, s)
    pw_mean, pw_std = score.mean(axis=1), score.std(axis=1) + 1e-30
    return {"period": period, "t0": t0, "duration": duration, "power": power[r, p],
            "sde": (score[r, p] - pw_mean) / pw_std}


@functools.lru_cache(maxsize=1)
def _harmonic_kernel():
    import numba

    @numba.njit(parallel=True, cache=True)
    def depths(x, valid, period, t0, half, cadence, out):
        # per light curve: mean depth and count in the box at the epoch, at phase 0.5, and in the
        # odd and the even transits (one pass over the cadences)
        n, m = x.shape
        for b in numba.prange(n):
            acc = np.zeros(8)
            p = period[b]
            for i in range(m):
                if not valid[b, i]:
                    continue
                u = i * cadence - t0[b]
                dt = (u + p / 2) % p - p / 2
                dt2 = (dt + p) % p - p / 2
                if abs(dt) < half[b]:
                    acc[0] -= x[b, i]
                    acc[1] += 1.0
                    if np.floor(u / p + 0.5) % 2 == 1:
                        acc[4] -= x[b, i]
                        acc[5] += 1.0
                    else:
                        acc[6] -= x[b, i]
                        acc[7] += 1.0
                if abs(dt2) < half[b]:
                    acc[2] -= x[b, i]
                    acc[3] += 1.0
            for k in range(0, 8, 2):
                out[b, k] = acc[k] / max(acc[k + 1], 1.0)
                out[b, k + 1] = acc[k + 1]

    return depths


def resolve_harmonics(rel: np.ndarray, valid: np.ndarray, period: np.ndarray, t0: np.ndarray,
                      duration: np.ndarray, s: SearchSettings) -> tuple[np.ndarray, np.ndarray]:
    """Period and epoch of each candidate, halved when the box at phase 0.5 is as deep as the
    transit (the search found twice the period) or doubled when only odd or only even transits
    dip (half the period); see :attr:`SearchSettings.harmonic_check`."""
    period, t0 = np.array(period, dtype=np.float64), np.array(t0, dtype=np.float64)
    x = np.ascontiguousarray(np.where(valid, rel, 0.0), dtype=np.float64)
    sig = np.maximum(_mad(x), 1e-9)
    out = np.zeros((len(x), 8))
    _harmonic_kernel()(x, np.ascontiguousarray(valid), period, t0, np.asarray(duration, np.float64) / 2,
                       CADENCE_DAYS, out)
    d1, n1, d2, n2, d_odd, n_odd, d_even, n_even = out.T
    halve = ((n1 > 0) & (n2 > 0) & (d1 > 0) & (period / 2 >= s.period_min) & (d2 > 0.7 * d1)
             & (d2 / sig * np.sqrt(n2) > 7))
    odd_deeper = d_odd > d_even
    hi = np.where(odd_deeper, d_odd, d_even)
    lo = np.where(odd_deeper, d_even, d_odd)
    n_hi = np.where(odd_deeper, n_odd, n_even)
    double = (~halve & (n_odd > 2) & (n_even > 2) & (2 * period <= 1.05 * s.period_max) & (lo < 0.3 * hi)
              & (hi / sig * np.sqrt(n_hi) > 7))
    t0 = np.where(double & odd_deeper, t0 + period, t0)
    period = np.where(halve, period / 2, np.where(double, 2 * period, period))
    return period, t0 % period


def red_noise_beta(sx: np.ndarray, durs: np.ndarray) -> np.ndarray:
    """``(N, n_durations)`` red-noise factors β ≥ 1 (Pont et al. 2006): the variance of the
    series averaged over each trial duration, against what white noise would give. Granulation and
    residual variability make long boxes far noisier than the cadence scatter says; dividing the
    box-least-squares power by β stops them from posing as long-period transits. Robust (MAD)
    variances, so that the transits themselves (< 12% of the boxes) barely raise β."""
    cs = np.concatenate([np.zeros((len(sx), 1)), np.cumsum(sx, axis=1)], axis=1)
    white = (1.4826 * np.median(np.abs(sx - np.median(sx, axis=1, keepdims=True)), axis=1)) ** 2
    out = np.ones((len(sx), len(durs)))
    for i, d in enumerate(durs):
        box = cs[:, d:] - cs[:, :-d]
        var = (1.4826 * np.median(np.abs(box - np.median(box, axis=1, keepdims=True)), axis=1)) ** 2
        out[:, i] = np.maximum(var / np.maximum(d * white, 1e-30), 1.0)
    return out


@functools.lru_cache(maxsize=1)
def _refine_kernel():
    import numba

    @numba.njit(parallel=True, cache=True)
    def refine(x, w, period, t0, duration, rel_step, n_trials, cadence):
        n, m = x.shape
        for b in numba.prange(n):
            w_tot = 0.0
            mean = 0.0
            for i in range(m):
                w_tot += w[b, i]
                mean += x[b, i] * w[b, i]
            mean /= max(w_tot, 1.0)
            d0 = max(1, int(round(duration[b] / cadence)))
            best = -1.0
            bp, bt, bd = period[b], t0[b], duration[b]
            for it in range(n_trials):
                trial = period[b] * (1 + (-1.5 + 3.0 * it / (n_trials - 1)) * rel_step[b])
                nb = int(np.ceil(trial / cadence))
                sx = np.zeros(2 * nb + 1)
                cw = np.zeros(2 * nb + 1)
                for i in range(m):
                    q = min(int(((i * cadence) % trial) / cadence), nb - 1) + 1
                    sx[q] += (x[b, i] - mean) * w[b, i]
                    cw[q] += w[b, i]
                for j in range(1, nb + 1):
                    sx[nb + j] = sx[j]
                    cw[nb + j] = cw[j]
                for j in range(1, 2 * nb + 1):
                    sx[j] += sx[j - 1]
                    cw[j] += cw[j - 1]
                for f in (0.67, 0.83, 1.0, 1.2, 1.5):
                    d = max(1, int(round(d0 * f)))
                    if d >= nb:
                        continue
                    for j in range(nb):
                        ss = sx[j + d] - sx[j]
                        c = cw[j + d] - cw[j]
                        if ss < 0.0 and c > 0.0 and c < w_tot:
                            pw = ss * ss / (c * (1.0 - c / w_tot))
                            if pw > best:
                                best = pw
                                bp = trial
                                bt = ((j + d / 2.0) * cadence) % trial
                                bd = d * cadence
            period[b], t0[b], duration[b] = bp, bt, bd

    return refine


def refine_search(rel, valid, period, t0, duration, rel_step, n_trials: int = 9):
    """Period, epoch and duration refined at full (one-cadence) resolution around the coarse
    search's best, so that the folded views are sharp (in place on copies; returned)."""
    period, t0, duration = (np.array(v, dtype=np.float64) for v in (period, t0, duration))
    x = np.ascontiguousarray(np.where(valid, rel, 0.0), dtype=np.float64)
    _refine_kernel()(x, np.ascontiguousarray(valid, dtype=np.float64), period, t0, duration,
                     np.asarray(rel_step, np.float64), n_trials, CADENCE_DAYS)
    return period, t0, duration


# ---- views -----------------------------------------------------------------------------------------
def _binned_mean(pos: np.ndarray, y: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``y`` in ``n`` equal bins of ``pos`` ∈ [0, 1) and the count per bin; empty bins 0."""
    k = np.clip((pos * n).astype(np.int64), 0, n - 1)
    cnt = np.bincount(k, minlength=n).astype(np.float64)
    tot = np.bincount(k, weights=y, minlength=n)
    return np.where(cnt > 0, tot / np.maximum(cnt, 1), 0.0), cnt


def _box(dt: np.ndarray, y: np.ndarray, half: float) -> tuple[float, int]:
    sel = np.abs(dt) < half
    return (float(-y[sel].mean()) if sel.any() else 0.0), int(sel.sum())


def views_one(rel: np.ndarray, valid: np.ndarray, sigma: float, period: float, t0: float, duration: float,
              power: float, sde: float, s: SearchSettings) -> np.ndarray:
    """The flat feature vector ``[global | local, odd, even, secondary | scalars]`` of one star."""
    t = (np.arange(len(rel)) * CADENCE_DAYS)[valid]
    y = rel[valid]
    epoch = np.floor((t - t0) / period + 0.5)
    dt = t - t0 - epoch * period  # time from the nearest transit centre, in [-P/2, P/2)
    half = duration / 2
    depth, n_in = _box(dt, y, half)
    depth = max(depth, 0.5 * sigma / np.sqrt(max(n_in, 1)), 1e-6)
    snr = np.sqrt(power) / sigma
    unit = 1.0 / depth

    glob, _ = _binned_mean(dt / period + 0.5, y, s.n_global)
    width = s.local_width * max(duration, 1.5 * CADENCE_DAYS)

    def local_bins(shift: float) -> tuple[np.ndarray, np.ndarray]:
        d = (dt + shift + period / 2) % period - period / 2
        keep = np.abs(d) < width
        return keep, np.clip(((d[keep] + width) / (2 * width) * s.n_local).astype(np.int64), 0, s.n_local - 1)

    def mean_in(k: np.ndarray, w: np.ndarray) -> np.ndarray:
        cnt = np.bincount(k, minlength=s.n_local).astype(np.float64)
        return np.where(cnt > 0, np.bincount(k, weights=w, minlength=s.n_local) / np.maximum(cnt, 1), 0.0)

    odd = (epoch % 2) == 1
    # the odd and even local views are subsets of the local view's bins (folded once)
    keep, k_loc = local_bins(0.0)
    y_loc, odd_loc = y[keep], odd[keep]
    keep2, k_sec = local_bins(period / 2)
    views = [glob * unit, mean_in(k_loc, y_loc) * unit, mean_in(k_loc[odd_loc], y_loc[odd_loc]) * unit,
             mean_in(k_loc[~odd_loc], y_loc[~odd_loc]) * unit, mean_in(k_sec, y[keep2]) * unit]

    d_odd, n_odd = _box(dt[odd], y[odd], half)
    d_even, n_even = _box(dt[~odd], y[~odd], half)
    if n_odd and n_even:
        # a floor of 3% of the depth: at SNR in the hundreds the residue of an imperfect period or
        # detrending differs more than the photon noise allows, in planets too
        odd_even = (d_odd - d_even) / np.hypot(sigma * np.sqrt(1 / n_odd + 1 / n_even), 0.03 * depth)
    else:
        odd_even = 0.0
    dt2 = (dt + period) % period - period / 2  # time from phase 0.5
    d_sec, n_sec = _box(dt2, y, half)
    sec_snr = d_sec / sigma * np.sqrt(max(n_sec, 1))
    # the deepest other dip anywhere in the orbit, at the transit's duration, away from the transit
    n_g = s.n_global
    dur_bins = max(1, int(round(duration / period * n_g)))
    g_sum = np.convolve(np.concatenate([glob, glob[:dur_bins]]), np.ones(dur_bins), "valid")[:n_g] / dur_bins
    centres = (np.arange(n_g) + dur_bins / 2) / n_g - 0.5
    far = np.abs(centres) * period > 2 * duration
    other = float(-g_sum[far].min()) if far.any() else 0.0
    per_bin = max(len(y) / n_g, 1.0)
    other_snr = other / sigma * np.sqrt(per_bin * dur_bins)
    # V vs U: the inner half of a U-shaped transit is as deep as the whole; a V is deeper inside
    d_inner, _ = _box(dt, y, half / 2)
    v_shape = d_inner / depth
    expected = float(expected_duration(period))
    n_tr = len(np.unique(epoch[np.abs(dt) < half]))
    out_of = np.abs(dt) > 2 * duration
    phase = dt / period * 2 * np.pi
    ell = 0.0
    oot = 1.0
    if out_of.sum() > 20:
        yo, po = y[out_of], phase[out_of]
        # ellipsoidal variation: a cos(2φ) term at the orbital period
        a = 2 * np.mean(yo * np.cos(2 * po))
        ell = -a / sigma * np.sqrt(out_of.sum() / 2)
        glob_oot = glob[np.abs((np.arange(n_g) + 0.5) / n_g - 0.5) * period > 2 * duration]
        oot = float(np.std(glob_oot) / (sigma / np.sqrt(per_bin))) if len(glob_oot) > 2 else 1.0
    # every transit of a planet has the same depth; dips of residual variability or systematics
    # that line up by chance do not, and one strong event dominates (Kepler's single-event checks)
    inside = np.abs(dt) < half
    ses_share, chi2 = 1.0, 0.0
    if inside.any():
        _, inv = np.unique(epoch[inside], return_inverse=True)
        cnt = np.bincount(inv).astype(np.float64)
        d_i = -np.bincount(inv, weights=y[inside]) / cnt
        s_i = sigma / np.sqrt(cnt)
        ses = np.maximum(d_i / s_i, 0.0)
        ses_share = float(ses.max() / max(np.sqrt((ses ** 2).sum()), 1e-9))
        if len(d_i) > 1:
            chi2 = float((((d_i - depth) / np.hypot(s_i, 0.05 * depth)) ** 2).sum() / (len(d_i) - 1))
    scalars = np.array([
        np.log10(period), np.log10(duration), np.log10(depth), np.log10(max(snr, 1e-3)), sde / 10,
        np.log10(sigma) + 3, odd_even / 5, sec_snr / 10, d_sec / depth, other_snr / 10, v_shape,
        np.log10(duration / expected), np.log10(max(n_tr, 1)), ell / 10, np.log10(max(oot, 1e-3)),
        np.log10(depth * 100) / 2, ses_share, np.log10(1 + chi2),
    ])
    flat = np.concatenate([np.clip(np.concatenate(views), -5.0, 3.0), np.clip(scalars, -20, 20)])
    return np.nan_to_num(flat).astype(np.float32)


#: exposure smear of the trapezoid templates, in units of the local view's duration unit
#: (a cadence over max(duration, 1.5 cadences): 0 to 2/3)
_SMEARS = np.linspace(0.0, 0.7, 15)


def _trapezoid_grid() -> tuple[np.ndarray, np.ndarray]:
    """Total durations (in units of the local view's duration unit) and ingress fractions τ/T
    (0 = box, 0.5 = V) of the trapezoid templates, one pair per template."""
    durs = np.geomspace(0.3, 2.4, 20)
    fracs = np.linspace(0.0, 0.5, 13)
    T, f = np.meshgrid(durs, fracs, indexing="ij")
    return T.ravel(), f.ravel()


@functools.lru_cache(maxsize=64)
def _trapezoid_bank(n_local: int, local_width: float, bank: int) -> np.ndarray:
    """``(K, n_local)`` unit-depth trapezoids (negative, bin-averaged) on the local view's bins,
    smeared by the exposure time ``_SMEARS[bank]``; built on first use, so that a small request
    pays only for the banks its light curves need."""
    sub = 9
    u = ((np.arange(n_local * sub) + 0.5) / (n_local * sub) * 2 - 1) * local_width
    T, f = _trapezoid_grid()
    ramp = np.maximum(f * T, 1e-9)[:, None]
    smear = _SMEARS[bank]
    shape = np.mean([-np.clip((T[:, None] / 2 - np.abs(u + o)[None, :]) / ramp, 0.0, 1.0)
                     for o in np.linspace(-smear / 2, smear / 2, 15)], axis=0)
    return shape.reshape(len(T), n_local, sub).mean(axis=2)


def shape_scalars(block: np.ndarray, s: SearchSettings) -> np.ndarray:
    """``(N, 5)`` scalars (:data:`SHAPE_SCALAR_NAMES`) of one candidate's ``(N, n_per_candidate)``
    views without them: the least-squares trapezoid of the local view (a fixed grid of templates,
    smeared by the 29.4-min exposures, so a few matrix products for the batch, not a per-star
    optimiser) gives the ingress fraction τ/T, the total duration T (against a Sun-like star's
    central transit at that period) and the depth δ; then Seager & Mallén-Ornelas (2003): the impact
    parameter b and stellar density ρ★ a planet of radius ratio k = √δ needs to make that shape in
    that time. Why: an eclipsing binary (diluted, or with a faint companion) has a depth that does
    not match its shape and duration, so the ρ★ and b it implies are implausible for the star,
    while a planet's are not — what the network would otherwise have to infer from the view and
    three separate scalars. Hand-written: no library fits a trapezoid to a batch of folded views."""
    g, lo = s.n_global, s.n_local
    local = block[:, g: g + lo].astype(np.float64)  # in units of the box depth: the bottom near -1
    base = block[:, g + 4 * lo:]
    period, duration, depth = (10.0 ** base[:, i].astype(np.float64) for i in range(3))
    T, f = _trapezoid_grid()
    unit = np.maximum(duration, 1.5 * CADENCE_DAYS)  # the local view's half-width is local_width units
    bank = np.abs(CADENCE_DAYS / unit[:, None] - _SMEARS[None, :]).argmin(axis=1)
    best = np.zeros(len(block), np.int64)
    amp = np.zeros(len(block))
    for b in np.unique(bank):
        rows = np.flatnonzero(bank == b)
        tmpl = _trapezoid_bank(lo, float(s.local_width), int(b))
        norm = (tmpl ** 2).sum(axis=1)
        dot = local[rows] @ tmpl.T
        k_best = np.argmax(np.where(dot > 0, dot ** 2 / norm, -np.inf), axis=1)
        best[rows] = k_best
        amp[rows] = np.maximum(dot[np.arange(len(rows)), k_best] / norm[k_best], 0.0)
    t_tot = T[best] * unit
    frac = f[best]
    delta = np.clip(amp * depth, 1e-6, 0.9)
    k = np.sqrt(delta)
    r = 1 - 2 * np.maximum(frac, 0.01)  # flat-bottom / total duration
    b2 = np.clip(((1 - k) ** 2 - r ** 2 * (1 + k) ** 2) / (1 - r ** 2), 0.0, (1 + k) ** 2)
    s2 = np.sin(np.pi * np.minimum(t_tot / period, 0.5)) ** 2
    a_rs = np.sqrt(np.maximum((1 + k) ** 2 - b2 * (1 - s2), 1e-9) / s2)
    rho = (a_rs / _a_over_rs(period, 1.0)) ** 3  # the simulator's Kepler's third law, inverted: solar units
    return np.column_stack([frac, np.log10(t_tot / expected_duration(period)), np.log10(delta), np.sqrt(b2),
                            np.clip(np.log10(rho), -4, 4)]).astype(np.float32)


def with_shape_scalars(block: np.ndarray, s: SearchSettings) -> np.ndarray:
    """One candidate's views with :func:`shape_scalars` appended (unchanged without ``shape_fit``)."""
    if not s.shape_fit:
        return block
    return np.concatenate([block, np.nan_to_num(shape_scalars(block, s))], axis=1)


def compute_views(flux: np.ndarray, s: SearchSettings, *, with_search: bool = False):
    """``(N, n_features)`` float32 views of ``(N, L)`` raw fluxes (and the search results)."""
    flux = np.asarray(flux)
    if flux.ndim != 2:
        raise ValueError("flux must be (N, L)")
    if flux.shape[1] != s.length:
        from .io import fit_length

        flux = np.stack([fit_length(r, s.length) for r in flux]) if len(flux) else np.zeros((0, s.length))
    if not len(flux):
        out = np.zeros((0, s.n_features), np.float32)
        return (out, {}) if with_search else out
    if len(flux) > CHUNK:  # bounded memory: the periodogram holds n_periods values per curve
        parts = [compute_views(flux[i:i + CHUNK], s, with_search=True) for i in range(0, len(flux), CHUNK)]
        feats = np.concatenate([f for f, _ in parts])
        found = {k: np.concatenate([r[k] for _, r in parts]) for k in parts[0][1]}
        return (feats, found) if with_search else feats
    rel, valid, sigma = detrend_batch(flux, s)
    t = np.arange(rel.shape[1]) * CADENCE_DAYS
    blocks, results = [], []
    later = replace(s, n_periods=s.next_n_periods or s.n_periods, bin_cadences=s.next_bin_cadences or s.bin_cadences)
    for k in range(s.n_candidates):
        if k:
            # the previous candidate's transits (± one duration) are masked before the next search,
            # which finds the planet behind a stronger spurious signal, or a second planet
            prev = results[-1]
            per = prev["period"][:, None]
            dt = (t[None, :] - prev["t0"][:, None] + per / 2) % per - per / 2
            masked = np.abs(dt) < prev["duration"][:, None]
            valid = valid & ~masked
            rel = np.where(masked, 0.0, rel)
        found = bls_search(rel, valid, s if not k else later)
        block = np.stack([views_one(rel[i], valid[i], float(sigma[i]), float(found["period"][i]),
                                    float(found["t0"][i]), float(found["duration"][i]),
                                    float(found["power"][i]), float(found["sde"][i]), s)
                          for i in range(len(rel))])
        blocks.append(with_shape_scalars(block, s))
        results.append(found)
    feats = np.concatenate(blocks, axis=1)
    found = {**results[0], "sigma": sigma}
    for k, r in enumerate(results[1:], start=2):
        found.update({f"{name}_{k}": v for name, v in r.items()})
    return (feats, found) if with_search else feats


def candidate_scalars(feats: np.ndarray, s: SearchSettings, candidate: int = 0) -> np.ndarray:
    """The scalars (:attr:`SearchSettings.scalar_names`) of one candidate (0 = the strongest) of ``(N, n_features)``
    views."""
    end = (candidate + 1) * s.n_per_candidate
    return feats[:, end - s.n_scalars: end]


# ---- cache -----------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """``$SKYSIFT_CACHE_DIR/transits`` (default ``~/.cache/skysift/transits``)."""
    root = os.environ.get("SKYSIFT_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "skysift")
    return Path(root) / "transits"


def cache_key(flux: np.ndarray, s: SearchSettings) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"v": VIEWS_VERSION, **s.to_dict()}, sort_keys=True).encode())
    a = np.ascontiguousarray(flux)
    h.update(str((a.dtype.str, a.shape)).encode())
    h.update(a.tobytes())
    return h.hexdigest()[:40]


_MEMO: OrderedDict = OrderedDict()


def views_cached(flux: np.ndarray, s: SearchSettings, *, persist: bool = True) -> np.ndarray:
    """:func:`compute_views`, with ``persist`` (data read from a file) memoised in memory and on
    disk, keyed by the content of the light curves and every setting, so a changed file or a
    changed setting recomputes.

    A training run computes the views of its training file once; ``evaluate`` and ``predict``
    on the same file reuse them."""
    if not persist:  # a request: computed afresh (hashing would cost more than it saves)
        return compute_views(flux, s)
    key = cache_key(flux, s)
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]
    path = cache_dir() / f"{key}.npy"
    out = None
    if path.exists():
        try:
            out = np.load(path, allow_pickle=False)
            if out.shape != (len(flux), s.n_features):
                out = None
        except (OSError, ValueError):
            out = None
    if out is None:
        out = compute_views(flux, s)
        from ..core.io import atomic_path

        try:
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, out, allow_pickle=False)
        except OSError as e:  # a read-only cache must not stop a prediction
            log.debug("transit views not cached: %s", e)
    _MEMO[key] = out
    while len(_MEMO) > 8:
        _MEMO.popitem(last=False)
    return out
