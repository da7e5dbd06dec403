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
    rise and decline times around the brightest detection, every band's flux at fixed epochs
    around the peak (the light-curve shape), duration of the detected part, fraction detected, the
    multi-band Lomb–Scargle period of galactic objects, and an is-galactic flag
    (``hostgal_photoz == 0``).

Every feature of object ``i`` depends on object ``i`` only (no dataset statistics), so features
can be computed once for a whole file and indexed per fold. Missing values are NaN (LightGBM treats
them natively). ``hostgal_specz`` is never used: the test set mostly lacks it.

Grouped statistics are computed over the flat CSR arrays of :class:`LightCurves` with
``np.bincount`` and one sort (:func:`group_sort_order`) (hand-written rather than a pandas ``groupby`` because the
groupby of 1.4 M rows costs ~10x more time and memory, and features must also run in the server on
a handful of objects without building a DataFrame).
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import sys
from typing import Iterator

import numpy as np

from ..errors import ConfigError
from .data import PASSBANDS, LightCurves

FEATURE_SETS = ("seed", "full")

#: statistics of the seed aggregates, in column order
SEED_STATS = ("min", "max", "mean", "median", "std", "skew")
#: the per-observation quantities the seed aggregates summarise
SEED_QUANTITIES = ("flux", "flux_err", "flux_ratio_sq", "flux_by_flux_ratio_sq")


# ---- grouped statistics over flat arrays ----------------------------------------------------------
def group_sort_order(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Row order sorting by ``group``, then by ``values`` inside a group (NaN last), like
    ``np.lexsort((values, group))`` but ~6x faster: one argsort of the values gives their ranks, and
    one argsort of the integer key ``group * M + rank`` does the rest (lexsort's indirect merge
    sort was a third of the feature time). Ties may come out in another order than lexsort's,
    which changes no statistic of the values."""
    m = len(values)
    rank = np.empty(m, dtype=np.int64)
    rank[np.argsort(values)] = np.arange(m)
    return np.argsort(group.astype(np.int64) * max(m, 1) + rank)


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
        if "median" in stats or ({"min", "max"} & set(stats) and np.isnan(values).any()):
            order = group_sort_order(values, group)
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
        elif {"min", "max"} & set(stats):
            # no NaN and no median: an unbuffered ufunc.at needs no sort at all
            if "min" in stats:
                lo = np.full(n_groups, np.inf)
                np.minimum.at(lo, group, values)
                out["min"] = np.where(has, lo, np.nan)
            if "max" in stats:
                hi = np.full(n_groups, -np.inf)
                np.maximum.at(hi, group, values)
                out["max"] = np.where(has, hi, np.nan)
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


#: objects per chunk of feature extraction (progress is reported per chunk)
FEATURE_CHUNK = 1000

#: threads of the ``light-curve`` extractors when the caller names none (see :func:`feature_jobs`)
_JOBS: contextvars.ContextVar[int | None] = contextvars.ContextVar("skysift_feature_jobs", default=None)
_QUIET: contextvars.ContextVar[bool] = contextvars.ContextVar("skysift_feature_quiet", default=False)


@contextlib.contextmanager
def feature_jobs(n: int, *, progress: bool = True) -> Iterator[None]:
    """Run the ``light-curve`` extractors of this thread on ``n`` threads inside the block: a
    streamed predict that already keeps one chunk per core busy sets 1, so that the extractors'
    own threads do not oversubscribe the cores (and ``progress=False``: it shows its own)."""
    tokens = (_JOBS.set(max(1, int(n))), _QUIET.set(not progress))
    try:
        yield
    finally:
        _JOBS.reset(tokens[0])
        _QUIET.reset(tokens[1])


def default_jobs() -> int:
    """Extractor threads when none are named: :func:`feature_jobs`' value, else
    ``$SKYSIFT_FEATURE_JOBS``, else 1 inside a Dask worker (one task per worker thread: the
    cluster already fills the cores), else 2."""
    if _JOBS.get() is not None:
        return int(_JOBS.get())  # type: ignore[arg-type]
    env = os.environ.get("SKYSIFT_FEATURE_JOBS", "")
    if env.strip():
        try:
            return max(1, int(env))
        except ValueError:
            raise ConfigError(f"SKYSIFT_FEATURE_JOBS must be an integer, got {env!r}") from None
    if "distributed" in sys.modules:
        try:
            from distributed import get_worker

            get_worker()
            return 1
        except ValueError:  # not inside a worker
            pass
    return 2


def extract_features(lc: LightCurves, feature_set: str = "full", *, n_jobs: int | None = None,
                     rest_frame: bool = True) -> tuple[np.ndarray, list[str]]:
    """``(N, F)`` float32 feature matrix (NaN where undefined) and its ``F`` column names.

    ``feature_set`` is ``"seed"`` or ``"full"`` (see the module docstring); ``n_jobs`` threads
    run the ``light-curve`` extractors (None: :func:`default_jobs`); ``rest_frame=False`` leaves
    out the rest-frame block of ``"full"`` (:func:`_rest_frame_features`; models trained before it
    existed read their features this way).
    """
    n_jobs = default_jobs() if n_jobs is None else n_jobs
    if feature_set not in FEATURE_SETS:
        raise ConfigError(f"unknown feature set {feature_set!r}; choose one of: {', '.join(FEATURE_SETS)}")
    if feature_set == "seed":
        return seed_aggregates(lc)
    from ..core.parallel import one_blas_thread

    with one_blas_thread():  # the batched GP solves many 32x32 systems; see one_blas_thread
        return _extract_full(lc, n_jobs, rest_frame)


def _extract_full(lc: LightCurves, n_jobs: int, rest_frame: bool) -> tuple[np.ndarray, list[str]]:
    if len(lc) <= FEATURE_CHUNK or _QUIET.get():
        return full_features(lc, n_jobs=n_jobs, rest_frame=rest_frame)
    # ~0.5 ms of CPU per object: thousands of objects take seconds, so they go in chunks that
    # report progress, ``n_jobs`` chunks at a time on threads (each with one extractor thread): the
    # NumPy sorts and the Rust extractors release the GIL, so the whole feature path runs on every
    # core, not only the extractors. Every feature is computed per object: chunking changes no value.
    from concurrent.futures import ThreadPoolExecutor

    from ..core.progress import track

    starts = list(range(0, len(lc), FEATURE_CHUNK))

    def one(s: int) -> tuple[np.ndarray, list[str]]:
        with feature_jobs(1, progress=False):
            return full_features(lc.take(np.arange(s, min(s + FEATURE_CHUNK, len(lc)))), n_jobs=1,
                                 rest_frame=rest_frame)

    with ThreadPoolExecutor(max_workers=max(1, n_jobs), thread_name_prefix="skysift-features") as pool:
        parts = list(track(pool.map(one, starts), f"light-curve features of {len(lc):,} objects",
                           total=len(starts), unit=f"chunks of {FEATURE_CHUNK}"))
    return np.concatenate([p[0] for p in parts]), parts[0][1]


def full_features(lc: LightCurves, *, n_jobs: int | None = None, rest_frame: bool = True
                  ) -> tuple[np.ndarray, list[str]]:
    """The ``"full"`` set: seed aggregates + metadata + light-curve package + peak physics.

    Returns ``(X, names)`` with ``X`` (N, F) float32, NaN where a feature is undefined (a band
    without observations, a fit that failed, a redshift feature of a galactic object).
    """
    n_jobs = default_jobs() if n_jobs is None else n_jobs
    token = _MEMO.set({})
    try:
        package = _light_curve_package_features(lc, n_jobs)
        blocks = [seed_aggregates(lc), _meta_features(lc), package,
                  _peak_features(lc), _shape_features(lc), _multiband_period(lc, n_jobs)]
        if rest_frame:
            blocks.append(_rest_frame_features(lc, bazin=_bazin_time_scales(*package)))
    finally:
        _MEMO.reset(token)
    X = np.concatenate([b[0] for b in blocks], axis=1).astype(np.float32)
    names = [n for b in blocks for n in b[1]]
    return X, names


# ---- metadata ------------------------------------------------------------------------------------
def _meta_features(lc: LightCurves) -> tuple[np.ndarray, list[str]]:
    """Host-galaxy photo-z and its error, distance modulus, Milky-Way extinction, DDF flag, and
    the is-galactic flag (PLAsTiCC sets ``hostgal_photoz = 0`` exactly for Milky-Way objects)."""
    m = lc.meta
    photoz = m["hostgal_photoz"]
    galactic = np.where(np.isnan(photoz), np.nan, (photoz == 0).astype(np.float64))
    cols = [photoz, m["hostgal_photoz_err"], m["distmod"], m["mwebv"], m["ddf"], galactic]
    return np.stack(cols, axis=1), ["hostgal_photoz", "hostgal_photoz_err", "distmod", "mwebv",
                                    "ddf", "is_galactic"]


# ---- light-curve package, per band ---------------------------------------------------------------
# Several blocks need the same sorts of the same light curves (the (object, band) order, the peak
# row); within one full_features call each is computed once. A context variable rather than a
# module dict: each thread of a streamed predict has its own, and nothing outlives the call. The
# memo holds the light curves themselves so that no id() is reused while it lives.
_MEMO: contextvars.ContextVar[dict | None] = contextvars.ContextVar("skysift_features_memo", default=None)


def _memo(name: str, lc: LightCurves, fn):
    memo = _MEMO.get()
    if memo is None:
        return fn(lc)
    key = (name, id(lc))
    if key not in memo:
        memo[key] = (lc, fn(lc))
    return memo[key][1]


def _band_order(lc: LightCurves) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _memo("band_order", lc, _band_order_uncached)


def _band_order_uncached(lc: LightCurves) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row order grouping observations by (object, band), time-sorted inside each group, with
    the group key ``object*6 + band`` (M,) of every row and the group offsets ``(6N+1,)``."""
    g = lc.object_index()
    key = g * len(PASSBANDS) + lc.passband.astype(np.int64)
    order = np.argsort(key, kind="stable")  # stable: rows stay mjd-sorted inside a group
    counts = np.bincount(key, minlength=len(lc) * len(PASSBANDS))
    return order, key, np.concatenate([[0], np.cumsum(counts)])


#: Levenberg–Marquardt iterations of the Bazin fit (the package's default is 10). The fit was a
#: third of the feature time; 5 iterations halve its cost for no measurable change in the 5-fold
#: CV log-loss (``benchmarks/bench_transients_scale.py cv``: the paired difference and its interval
#: are in that file's docstring).
BAZIN_LMSDER_NITER = 5


def _light_curve_extractor():
    import light_curve as lcp

    return lcp.Extractor(
        lcp.Amplitude(), lcp.BeyondNStd(1.0), lcp.Cusum(), lcp.Eta(), lcp.EtaE(),
        lcp.InterPercentileRange(0.1), lcp.Kurtosis(), lcp.LinearFit(), lcp.LinearTrend(),
        lcp.MaximumSlope(), lcp.Mean(), lcp.WeightedMean(), lcp.Median(), lcp.Skew(),
        lcp.StandardDeviation(), lcp.StetsonK(), lcp.ExcessVariance(), lcp.ReducedChi2(),
        lcp.BazinFit("lmsder", lmsder_niter=BAZIN_LMSDER_NITER),
    )


def _split_copies(t, f, e, offsets) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    # contiguous copies, not views: light-curve 0.13 is ~50x slower on views into a big buffer
    return [(t[a:b].copy(), f[a:b].copy(), e[a:b].copy()) for a, b in zip(offsets[:-1], offsets[1:])]


def _light_curve_package_features(lc: LightCurves, n_jobs: int) -> tuple[np.ndarray, list[str]]:
    """Per-band features of the ``light-curve`` package on flux (not magnitudes: most PLAsTiCC
    fluxes are near zero or negative). Bazin's reference time is made relative to the object's
    peak and its amplitude/baseline relative to the band's peak flux so that they describe shape,
    not calendar date or distance."""
    ex = _light_curve_extractor()
    order, _, boff = _band_order(lc)
    t = lc.mjd[order]
    f = lc.flux[order].astype(np.float64)
    e = lc.flux_err[order].astype(np.float64)
    curves = _split_copies(t, f, e, boff)
    n_obj, n_band = len(lc), len(PASSBANDS)
    raw = ex.many(curves, sorted=True, check=False, fill_value=np.nan, n_jobs=n_jobs) if curves else \
        np.zeros((0, len(ex.names)))
    raw = np.asarray(raw, dtype=np.float64).reshape(n_obj, n_band, len(ex.names))
    names = list(ex.names)
    t_peak = _peak_time(lc)
    band_max = _band_max_flux(lc)
    with np.errstate(invalid="ignore", divide="ignore"):
        raw[:, :, names.index("bazin_fit_reference_time")] -= t_peak[:, None]
        for c in ("bazin_fit_amplitude", "bazin_fit_baseline"):
            raw[:, :, names.index(c)] /= np.abs(band_max)
    out_names = [f"{n}_{b}" for b in PASSBANDS for n in names]
    return raw.reshape(n_obj, n_band * len(names)), out_names


# ---- peak physics --------------------------------------------------------------------------------
def _peak_row(lc: LightCurves) -> np.ndarray:
    return _memo("peak_row", lc, _peak_row_uncached)


def _peak_row_uncached(lc: LightCurves) -> np.ndarray:
    """(N,) row index of the brightest detected observation of every object (brightest of all
    observations when none is detected; -1 for an object without observations)."""
    g = lc.object_index()
    n = len(lc)
    # rank detected rows above undetected ones, then by flux: one sort gives the peak per object
    m = len(lc.flux)
    flux_rank = np.empty(m, dtype=np.int64)
    flux_rank[np.argsort(lc.flux)] = np.arange(m)
    order = np.argsort(g.astype(np.int64) * (2 * max(m, 1)) + lc.detected.astype(np.int64) * m + flux_rank)
    last = lc.offsets[1:] - 1
    rows = np.where(lc.lengths > 0, order[np.clip(last, 0, None)] if len(order) else -1, -1)
    return rows if n else np.zeros(0, np.int64)


def _peak_time(lc: LightCurves) -> np.ndarray:
    rows = _peak_row(lc)
    return np.where(rows >= 0, lc.mjd[np.clip(rows, 0, None)] if len(lc.mjd) else np.nan, np.nan)


def _band_max_flux(lc: LightCurves) -> np.ndarray:
    return _memo("band_max", lc, _band_max_flux_uncached)


def _band_max_flux_uncached(lc: LightCurves) -> np.ndarray:
    """(N, 6) maximum flux per band (NaN for a band without observations)."""
    _, key, _ = _band_order(lc)
    st = grouped_stats(lc.flux, key, len(lc) * len(PASSBANDS), ("max",))
    return st["max"].reshape(len(lc), len(PASSBANDS))


def _peak_features(lc: LightCurves) -> tuple[np.ndarray, list[str]]:
    """Features around the brightest detection, the ones the Kaggle winners relied on.

    * ``peak_flux`` and ``peak_band``; per band the maximum flux, its ratio to the brightest band
      (colour at maximum light), and the flux of the observation nearest the peak time divided by
      the peak flux (colour at the peak epoch);
    * ``peak_abs_mag[_band]`` = 27.5 − 2.5 log10(max flux) − distmod: a luminosity proxy (NaN for
      galactic objects, whose distmod is unknown, or non-positive fluxes);
    * ``rise_time`` / ``decline_time`` [d]: from the first detection to the peak and from the peak to
      the last detection; ``rise_half`` / ``decline_half`` (and ``_fifth``) [d]: in the peak band,
      from the last observation before the peak fainter than 1/2 (1/5) of the peak flux, and to the
      first one after it; all also in the host's rest frame (divided by 1 + photo-z);
    * ``max_snr`` (max flux/flux_err), detected counts per band.
    """
    n, nb = len(lc), len(PASSBANDS)
    g = lc.object_index()
    flux = lc.flux.astype(np.float64)
    mjd = lc.mjd
    rows = _peak_row(lc)
    ok = rows >= 0
    r = np.clip(rows, 0, None)
    has_rows = len(flux) > 0
    peak_flux = np.where(ok, flux[r] if has_rows else np.nan, np.nan)
    t_peak = np.where(ok, mjd[r] if has_rows else np.nan, np.nan)
    peak_band = np.where(ok, lc.passband[r] if has_rows else -1, -1)
    cols: list[np.ndarray] = [peak_flux, peak_band.astype(np.float64)]
    names = ["peak_flux", "peak_band"]
    distmod = lc.meta["distmod"]
    z1 = 1.0 + lc.meta["hostgal_photoz"]
    band_max = _band_max_flux(lc)
    with np.errstate(invalid="ignore", divide="ignore"):
        cols.append(27.5 - 2.5 * np.log10(np.where(peak_flux > 0, peak_flux, np.nan)) - distmod)
        names.append("peak_abs_mag")
        ratio = band_max / np.nanmax(np.where(np.isnan(band_max), -np.inf, band_max), axis=1)[:, None]
        absmag = 27.5 - 2.5 * np.log10(np.where(band_max > 0, band_max, np.nan)) - distmod[:, None]
        # flux of the observation closest in time to the peak, per band
        _, key, _ = _band_order(lc)
        dt = np.abs(mjd - t_peak[g])
        order = group_sort_order(dt, key)
        counts = np.bincount(key, minlength=n * nb)
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        near = np.where(counts > 0, flux[order[np.clip(first, 0, max(len(order) - 1, 0))]]
                        if has_rows else np.nan, np.nan).reshape(n, nb)
        near_dt = np.where(counts > 0, dt[order[np.clip(first, 0, max(len(order) - 1, 0))]]
                           if has_rows else np.nan, np.nan).reshape(n, nb)
        near_ratio = near / peak_flux[:, None]
    for b, band in enumerate(PASSBANDS):
        cols += [band_max[:, b], ratio[:, b], absmag[:, b], near_ratio[:, b], near_dt[:, b]]
        names += [f"max_flux_{band}", f"max_flux_ratio_{band}", f"peak_abs_mag_{band}",
                  f"flux_ratio_at_peak_{band}", f"dt_nearest_peak_{band}"]

    det = lc.detected
    span = grouped_stats(mjd[det], g[det], n, ("min", "max"))
    rise, decline = t_peak - span["min"], span["max"] - t_peak
    cols += [rise, decline, rise / z1, decline / z1]
    names += ["rise_time", "decline_time", "rise_time_rest", "decline_time_rest"]

    in_peak_band = lc.passband == peak_band[g]
    before, after = mjd < t_peak[g], mjd > t_peak[g]
    for frac, label in ((0.5, "half"), (0.2, "fifth")):
        faint = in_peak_band & (flux < frac * peak_flux[g])
        last_before = grouped_stats(mjd[faint & before], g[faint & before], n, ("max",))["max"]
        first_after = grouped_stats(mjd[faint & after], g[faint & after], n, ("min",))["min"]
        r_, d_ = t_peak - last_before, first_after - t_peak
        cols += [r_, d_, r_ / z1, d_ / z1]
        names += [f"rise_{label}", f"decline_{label}", f"rise_{label}_rest", f"decline_{label}_rest"]

    snr = flux / lc.flux_err.astype(np.float64)
    cols.append(grouped_stats(snr, g, n, ("max",))["max"])
    names.append("max_snr")
    n_det_band = np.bincount(key[det], minlength=n * nb).reshape(n, nb).astype(np.float64)
    for b, band in enumerate(PASSBANDS):
        cols.append(n_det_band[:, b])
        names.append(f"n_detected_{band}")
    return np.stack(cols, axis=1), names


#: epochs relative to the peak [d, observer frame] at which every band's flux is interpolated
SHAPE_EPOCHS = (-30.0, -10.0, 10.0, 30.0, 60.0, 100.0)


def _shape_features(lc: LightCurves) -> tuple[np.ndarray, list[str]]:
    """Light-curve shape around the peak: every band's flux linearly interpolated at
    :data:`SHAPE_EPOCHS` days from the brightest detection, divided by the peak flux (NaN outside a
    band's observed time range or when the gap between the two neighbours exceeds 40 d, where a
    straight line says nothing). Rise and decline rates per band are what tell SN types apart.

    Vectorised over all objects with one ``searchsorted`` on a composite key
    ``group * span + time`` (the groups are (object, band) and the times are sorted in each).
    """
    n, nb = len(lc), len(PASSBANDS)
    names = [f"flux_{'m' if e < 0 else 'p'}{abs(int(e))}d_{b}" for b in PASSBANDS for e in SHAPE_EPOCHS]
    if lc.n_observations == 0:
        return np.full((n, len(names)), np.nan), names
    order, key, boff = _band_order(lc)
    t = lc.mjd[order]
    f = lc.flux[order].astype(np.float64)
    k = key[order]
    t0 = float(t.min())
    span = float(t.max() - t0) + 1000.0  # keeps every group's times apart from its neighbours'
    comp = k * span + (t - t0)
    t_peak = _peak_time(lc)
    peak_flux = lc.flux[np.clip(_peak_row(lc), 0, None)].astype(np.float64)
    groups = np.arange(n * nb)
    obj = groups // nb
    out = np.full((n, nb, len(SHAPE_EPOCHS)), np.nan)
    for j, e in enumerate(SHAPE_EPOCHS):
        q = t_peak[obj] + e
        qc = groups * span + (q - t0)
        hi = np.searchsorted(comp, qc, side="left")
        lo = hi - 1
        valid = (hi < len(comp)) & (lo >= 0) & np.isfinite(qc)
        hi_c, lo_c = np.clip(hi, 0, len(comp) - 1), np.clip(lo, 0, len(comp) - 1)
        valid &= (k[hi_c] == groups) & (k[lo_c] == groups) & (t[hi_c] - t[lo_c] <= 40.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.where(t[hi_c] > t[lo_c], (q - t[lo_c]) / (t[hi_c] - t[lo_c]), 0.0)
            val = f[lo_c] + w * (f[hi_c] - f[lo_c])
            out[:, :, j] = np.where(valid, val, np.nan).reshape(n, nb) / peak_flux[:, None]
    return out.reshape(n, nb * len(SHAPE_EPOCHS)), names


#: angular-frequency grid of the multi-band periodogram [rad/d]: periods down to 0.2 d (RR Lyrae,
#: contact binaries); ``linspace(0, f_max, 2**k + 1)`` is what the FFT ("fast") periodogram needs.
#: 2**14 steps resolve a 3-year baseline; 2**15 and 2**16 gave the same periods on the RR Lyrae and
#: eclipsing binaries of the training set at 2x and 4x the cost.
PERIOD_FREQS = np.linspace(0.0, 2 * np.pi / 0.2, 2 ** 14 + 1)


def _multiband_period(lc: LightCurves, n_jobs: int) -> tuple[np.ndarray, list[str]]:
    """Lomb–Scargle periods of all bands together, each band's flux median-subtracted and divided
    by its standard deviation (so a pulsating star's bands line up), for galactic objects only
    (``hostgal_photoz == 0``, NaN otherwise): periodic variables are all galactic, and the
    periodogram is the most expensive feature (~0.7 ms per object).

    The package's default frequency grid stops at the "average Nyquist" frequency, i.e. periods of
    ~20 d for PLAsTiCC's sparse cadence, which misses every RR Lyrae; hence the explicit grid.
    """
    import light_curve as lcp

    n, nb = len(lc), len(PASSBANDS)
    ex = lcp.Extractor(lcp.Periodogram(peaks=2, freqs=PERIOD_FREQS, fast=True))
    out = np.full((n, len(ex.names)), np.nan)
    names = [f"multiband_{x}" for x in ex.names]
    which = np.flatnonzero((lc.meta["hostgal_photoz"] == 0) & (lc.lengths >= 3))
    if len(which) == 0:
        return out, names
    sub = lc.take(which)
    _, key, _ = _band_order(sub)
    st = grouped_stats(sub.flux, key, len(sub) * nb, ("median", "std"))
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = (sub.flux - st["median"][key]) / np.where(st["std"][key] > 0, st["std"][key], 1.0)
    norm = np.nan_to_num(norm)
    curves = [(a, b, np.ones_like(b)) for a, b, _ in
              _split_copies(sub.mjd, norm, norm, sub.offsets)]
    out[which] = np.asarray(ex.many(curves, sorted=True, check=False, fill_value=np.nan, n_jobs=n_jobs),
                            dtype=np.float64).reshape(len(which), -1)
    return out, names


# ---- rest frame: a smoothed light curve read at rest-frame epochs and wavelengths ------------------
#: rest-frame days from the peak at which every band's smoothed flux is read
REST_EPOCHS = (-30.0, -15.0, -7.0, 0.0, 7.0, 15.0, 30.0, 45.0, 60.0)
#: rest-frame wavelengths [nm] read off the bands (≈ B, V, R): the band whose rest-frame wavelength
#: lies nearest each is used, so that an SN Ia at z = 0.1 and one at z = 0.6 are compared in the
#: same part of their spectrum (the observer-frame features compare them in different ones)
REST_WAVELENGTHS_NM = (440.0, 550.0, 700.0)
#: offsets [observer-frame days] around the brightest detection searched for the smoothed peak
_PEAK_SEARCH = np.arange(-16.0, 16.5, 4.0)
#: the light curve is read between observations off :class:`BatchGP`; a per-band Gaussian-kernel
#: (Nadaraya–Watson, σ = 4 d) smoother instead scored worse on the selection split than no rest-frame
#: block at all (test-like official log-loss 1.038 against 0.964, 4 copies), as it leaves a band
#: without a nearby point undefined where the GP borrows from the neighbouring bands
REST_NAMES = ([f"rest_absmag_peak_{w:.0f}nm" for w in REST_WAVELENGTHS_NM]
              + [f"rest_flux_{'m' if e < 0 else 'p'}{abs(int(e))}d_{w:.0f}nm" for w in REST_WAVELENGTHS_NM
                 for e in REST_EPOCHS if e != 0]
              + [f"rest_colour_{a:.0f}_{b:.0f}nm_{'m' if e < 0 else 'p'}{abs(int(e))}d"
                 for a, b in zip(REST_WAVELENGTHS_NM[:-1], REST_WAVELENGTHS_NM[1:]) for e in REST_EPOCHS]
              + ["rest_peak_shift_d", "rest_band_mismatch_550nm"]
              + [f"peak_colour_{PASSBANDS[b]}{PASSBANDS[b + 1]}" for b in range(len(PASSBANDS) - 1)]
              + [f"bazin_rise_time_rest_{b}" for b in PASSBANDS[1:5]]
              + [f"bazin_fall_time_rest_{b}" for b in PASSBANDS[1:5]])


#: the fixed-hyperparameter GP of :class:`BatchGP`: Matérn-3/2 over (time / τ, ln λ / ℓ) as the
#: survey-copy GP of :mod:`.survey_shift` (ℓ = 1, Avocado's), τ its middle time scale
GP_TIME_SCALE_D = 20.0
GP_WAVE_SCALE = 1.0
#: observations per object the GP conditions on: the nearest in time to the brightest detection
#: within ±GP_WINDOW_D (a wide-fast-deep object has ~20-60 there; 32 keeps the solve cheap: ~0.04 ms
#: per object). Chosen on the test-like official log-loss of the selection split
#: (``bench_transients_survey.py select --subset 3000``, 8 copies; 590 objects, so differences below
#: ~0.05 are noise): these 32 per object, ℓ = 1: 0.761 (SN Ia AUC 0.950); 8 per band nearest the
#: peak 0.774 (0.947); 8 per band spread over the window 0.808 (0.944); ℓ = 0.3 (less borrowing
#: across bands) 0.870 / 0.806 / 0.866 for the same three
GP_MAX_POINTS = 32
GP_WINDOW_D = 120.0


class BatchGP:
    """One fixed-hyperparameter 2-D Gaussian process per object (flux against time and ln λ),
    conditioned on all objects at once with batched linear algebra.

    Hand-written rather than scikit-learn's ``GaussianProcessRegressor`` (what ``gp_features``
    and the survey copies use, ~17 ms per object with its Python overhead and per-object
    hyperparameter choice): with fixed hyperparameters every object's solve is the same small
    dense problem, so a chunk of objects is one stacked ``np.linalg.solve`` (microseconds per
    object), which keeps the default features cheap enough for the streamed predict. The amplitude
    is each object's largest |flux|; padded slots are decoupled unit-variance points at zero."""

    def __init__(self, lc: LightCurves, t_ref: np.ndarray):
        from .data import PASSBAND_WAVELENGTH_NM

        n = len(lc)
        g = lc.object_index()
        dt = np.abs(lc.mjd - t_ref[g]) if len(g) else np.zeros(0)
        inside = np.isfinite(dt) & (dt <= GP_WINDOW_D)
        # rank inside each object by distance from the peak; keep the nearest GP_MAX_POINTS
        order = group_sort_order(np.where(inside, dt, np.inf), g)
        counts = np.bincount(g, minlength=n)
        start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order)) - np.repeat(start, counts)
        keep = inside & (rank < GP_MAX_POINTS)
        rows = np.flatnonzero(keep)
        m = max(1, int(np.bincount(g[rows], minlength=n).max())) if len(rows) else 1
        slot = rank[rows]
        self.n, self.m = n, m
        lw = np.log(np.asarray(PASSBAND_WAVELENGTH_NM))
        self.lw = lw
        T = np.zeros((n, m))
        L = np.zeros((n, m))
        F = np.zeros((n, m))
        V = np.ones((n, m))
        self.mask = np.zeros((n, m), bool)
        obj = g[rows]
        T[obj, slot] = lc.mjd[rows] - t_ref[obj]
        L[obj, slot] = lw[lc.passband[rows]]
        F[obj, slot] = lc.flux[rows]
        V[obj, slot] = lc.flux_err[rows].astype(np.float64) ** 2
        self.mask[obj, slot] = True
        amp = np.zeros(n)
        if len(rows):
            np.maximum.at(amp, obj, np.abs(lc.flux[rows]).astype(np.float64))
        self.amp2 = np.maximum(amp, 1e-3) ** 2
        self.T, self.L = T, L
        K = self._k(T[:, :, None] - T[:, None, :], L[:, :, None] - L[:, None, :])
        K *= (self.mask[:, :, None] & self.mask[:, None, :]) * self.amp2[:, None, None]
        K[:, np.arange(m), np.arange(m)] += np.where(self.mask, V, 1.0)
        self.alpha = np.linalg.solve(K, F[:, :, None])[:, :, 0] if n else np.zeros((0, m))
        self.has = self.mask.any(axis=1)

    def _k(self, dt: np.ndarray, dl: np.ndarray) -> np.ndarray:
        r = np.sqrt((dt / GP_TIME_SCALE_D) ** 2 + (dl / GP_WAVE_SCALE) ** 2) * np.sqrt(3.0)
        return (1.0 + r) * np.exp(-r)

    def predict(self, offset: np.ndarray) -> np.ndarray:
        """(N, 6) GP mean flux of every band at ``offset`` (N,) days from each object's reference
        time; NaN for an object without observations in the window."""
        ks = self._k(offset[:, None, None] - self.T[:, None, :], self.lw[None, :, None] - self.L[:, None, :])
        ks *= self.mask[:, None, :] * self.amp2[:, None, None]
        mu = np.einsum("nbm,nm->nb", ks, self.alpha)
        return np.where(self.has[:, None], mu, np.nan)


def _bazin_time_scales(X: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """The Bazin fit's rise and fall times, ``{"rise": (N, 6), "fall": (N, 6)}``, read off the
    light-curve package block ``(X, names)`` (columns ``bazin_fit_rise_time_<band>``, ...)."""
    return {what: np.stack([X[:, names.index(f"bazin_fit_{what}_time_{b}")] for b in PASSBANDS], axis=1)
            for what in ("rise", "fall")}


def _signed_colour(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a − b) / (|a| + |b|): a colour defined for negative (difference-image) fluxes; NaN where
    both are zero."""
    s = np.abs(a) + np.abs(b)
    return np.where(s > 0, (a - b) / np.where(s > 0, s, 1.0), np.nan)


def _rest_frame_features(lc: LightCurves, bazin: dict[str, np.ndarray]) -> tuple[np.ndarray, list[str]]:
    """Physically motivated, cheap features of the light curve in the host's rest frame.

    The light curve, smoothed and interpolated by a Gaussian process (:class:`BatchGP`), is read at
    :data:`REST_EPOCHS` rest-frame days (observer days ÷ (1 + photo-z)) from its peak (the epoch,
    within ±16 d of the brightest detection, where the GP's g+r+i+z flux is largest), in the band
    nearest each of :data:`REST_WAVELENGTHS_NM` in the rest frame. Features:

    * ``rest_absmag_peak_<λ>``: absolute magnitude at the peak, 27.5 − 2.5 log10(flux) − distmod
      (SNe Ia are standard candles: M_B ≈ −19.3; SNe Ibc, Iax and 91bg are fainter);
    * ``rest_flux_<epoch>_<λ>``: flux at each other rest epoch over the flux at the peak (rise and
      decline rates in rest-frame days: an SN Ia declines ~1 mag in 15 d, an SN II plateaus);
    * ``rest_colour_<λ1>_<λ2>_<epoch>``: (f1 − f2) / (|f1| + |f2|) (a colour defined for negative
      fluxes; SNe Ia redden quickly after peak, SNe II stay blue);
    * ``rest_peak_shift_d``, ``rest_band_mismatch_550nm`` (ln λ distance of the band used);
    * ``peak_colour_<b1><b2>``: the same colour of neighbouring observed bands at the peak;
    * ``bazin_rise_time_rest_<b>`` / ``bazin_fall_time_rest_<b>``: the ``light-curve`` Bazin fit's
      time scales (g r i z; ``bazin`` from :func:`_bazin_time_scales`) divided by 1 + photo-z.

    Galactic objects (photo-z 0) get the same features in their own frame, and NaN magnitudes.
    """
    from .data import PASSBAND_WAVELENGTH_NM

    n, nb = len(lc), len(PASSBANDS)
    cols: list[np.ndarray] = []
    if n == 0:
        return np.zeros((0, len(REST_NAMES))), list(REST_NAMES)
    z = np.where(np.isfinite(lc.meta["hostgal_photoz"]), np.maximum(lc.meta["hostgal_photoz"], 0.0), 0.0)
    z1 = 1.0 + z
    t_ref = _peak_time(lc)
    at = BatchGP(lc, np.nan_to_num(t_ref)).predict
    # the smoothed peak: the offset whose summed g+r+i+z smoothed flux is largest
    best, best_d = np.full(n, -np.inf), np.zeros(n)
    for d in _PEAK_SEARCH:
        tot = np.nansum(at(np.full(n, d))[:, 1:5], axis=1)
        better = tot > best
        best, best_d = np.where(better, tot, best), np.where(better, d, best_d)
    grids = np.stack([at(best_d + e * z1) for e in REST_EPOCHS], axis=1)  # (N, E, 6)
    rest_lw = np.log(np.asarray(PASSBAND_WAVELENGTH_NM))[None, :] - np.log(z1)[:, None]  # (N, 6)
    picks, mismatch = [], None
    for w in REST_WAVELENGTHS_NM:
        dist = np.abs(rest_lw - np.log(w))
        b = np.argmin(dist, axis=1)
        picks.append(grids[np.arange(n), :, b])  # (N, E)
        if w == 550.0:
            mismatch = dist[np.arange(n), b]
    i0 = REST_EPOCHS.index(0.0)
    distmod = lc.meta["distmod"]
    with np.errstate(invalid="ignore", divide="ignore"):
        for f in picks:
            cols.append(27.5 - 2.5 * np.log10(np.where(f[:, i0] > 0, f[:, i0], np.nan)) - distmod)
        for f in picks:
            peak = np.where(f[:, i0] > 0, f[:, i0], np.nan)
            for j, e in enumerate(REST_EPOCHS):
                if e != 0:
                    cols.append(f[:, j] / peak)
        for a, b in zip(picks[:-1], picks[1:]):
            for j in range(len(REST_EPOCHS)):
                cols.append(_signed_colour(a[:, j], b[:, j]))
        cols += [best_d, mismatch]
        at_peak = grids[:, i0, :]
        for b in range(nb - 1):
            cols.append(_signed_colour(at_peak[:, b], at_peak[:, b + 1]))
        for what in ("rise", "fall"):
            for b in range(1, 5):
                cols.append(bazin[what][:, b] / z1)
    return np.stack(cols, axis=1), list(REST_NAMES)


__all__ = ["FEATURE_SETS", "PASSBANDS", "REST_EPOCHS", "REST_NAMES", "REST_WAVELENGTHS_NM", "default_jobs",
           "extract_features", "feature_jobs", "full_features", "group_sort_order", "grouped_stats",
           "seed_aggregates"]
