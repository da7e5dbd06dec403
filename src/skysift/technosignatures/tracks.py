"""Per-scan drift search and the cadence (ON/OFF) rule: the features of the ``cadence-tracks`` model.

The detector is ON/OFF-aware by construction, as turboSETI's event filter is: a narrow-band line
counts only when it is present in the ON scans and absent, at the same frequencies, from the OFF
scans. No network is free to ignore that rule; a small learned head (logistic regression,
:mod:`.head`) only weighs the evidence it produces.

turboSETI / hyperseti are not installed and work on whole filterbank files; setigen and blimpy
provide no drift search; so the search is written here with numpy, as in :mod:`.dedoppler`.

For a snippet ``(6, T, F)``:

1. :func:`flatten_scans` — time-binned; each scan's bandpass is the OFF scans' median spectrum
   (it holds ripples too fine for any smoothing, and no needle) fitted to that scan with a gain
   and an offset (scan-to-scan gain jumps) plus a running median of the rest (slope changes);
   then each time step minus a running median over frequency (broadband bursts, the partial-band
   gain stripes of real data); a robust σ; saturated values clipped; channels bright in all six
   scans (the DC spike of most real snippets) blanked;
2. :func:`drift_maps` — per scan, ``D_k(d, f)``: the sum along the line starting at channel ``f``
   with total drift ``d`` over the scan, calibrated by the map's own robust scatter; also over
   each half scan (needles that last part of a scan);
3. the rule — *tracks*: a linear track ``(d, f0)`` lies at channel ``f0 + d·k`` at the start of
   scan ``k``. ON evidence: ``D_k`` there, tolerant by ±``on_tolerance`` channels and one drift
   step; OFF evidence: the track extrapolated to each OFF scan (±3 drift steps, ±``off_margin``
   channels) or a non-drifting line anywhere in the channels it crosses there. *Loose*: each ON
   scan's best line against OFF lines at the same place, with no common drift (the competition's
   own injected needles need not line up from scan to scan). An OFF line vetoes (:func:`_vetoed`)
   when it is above 6 σ or 15 % of the ON line; otherwise the OFF strength is subtracted.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.ndimage import maximum_filter, maximum_filter1d, median_filter

from ..errors import ConfigError
from .defaults import TRACK_DEFAULTS
from .io import OFF_SCANS, ON_SCANS

#: only cadence-rule evidence: ON strength, OFF veto and their difference (no "brightest line
#: anywhere" feature that a head could use to fire on interference)
FEATURE_NAMES = (
    "best_score",       # min(ON) − max(OFF, 0) of the best track
    "best_on_min", "best_on_mean", "best_off_max", "best_off_mean",
    # per ON scan: its best line − OFF lines at the same place; no common drift; min, median, mean
    "loose_min", "loose_median", "loose_mean",
    "n_on_detected",    # ON scans whose track value exceeds 5 σ
)


def check_track_params(params: dict) -> dict:
    p = {k: params.get(k, v) for k, v in TRACK_DEFAULTS.items()}
    if not 0 <= float(p["max_drift"]) <= 2:
        raise ConfigError(f"max_drift must be in [0, 2] channels per time step, got {p['max_drift']}")
    for k in ("time_bin", "bandpass_window"):
        if int(p[k]) < 1:
            raise ConfigError(f"{k} must be >= 1, got {p[k]}")
    for k in ("on_tolerance", "off_margin"):
        if int(p[k]) < 0:
            raise ConfigError(f"{k} must be >= 0, got {p[k]}")
    if float(p["clip"]) <= 0:
        raise ConfigError(f"clip must be > 0, got {p['clip']}")
    return p


def flatten_scans(x: np.ndarray, bandpass_window: int = 15, clip: float = 30.0, persistent: float = 2.0,
                  time_bin: int = 1) -> np.ndarray:
    """``(6, T, F)`` → per-scan flattened, robust-standardised float32 ``(6, T // time_bin, F)``
    (step 1), time-binned by ``time_bin`` and in units of the binned pixels' σ."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    n = x.shape[1] // int(time_bin)
    if n < 1:
        raise ConfigError(f"time_bin {time_bin} exceeds the {x.shape[1]} time steps of a scan")
    x = x[:, :n * time_bin].reshape(x.shape[0], n, time_bin, x.shape[2]).mean(axis=2)
    # the bandpass of each scan: the OFF scans' median spectrum B (which holds no needle, and
    # holds ripples too fine for any smoothing) fitted to the scan's own time-median spectrum
    # with a gain and an offset (scan-to-scan gain jumps), plus a running median of what is left
    # (slope changes). A needle in an ON scan is not in B, so it survives, even without drift.
    spec = np.median(x, axis=1)  # (6, F)
    base = np.median(spec[list(OFF_SCANS)], axis=0)
    design = np.stack([base, np.ones_like(base)], axis=1)
    bp = np.empty_like(spec)
    for k in range(x.shape[0]):
        keep = np.ones(len(base), dtype=bool)
        for _ in range(2):  # one robust re-fit without the channels it fits worst (lines)
            coef, *_ = np.linalg.lstsq(design[keep], spec[k, keep], rcond=None)
            resid = spec[k] - design @ coef
            mad = 1.4826 * np.median(np.abs(resid - np.median(resid))) + 1e-9
            keep = np.abs(resid - np.median(resid)) < 3 * mad
        bp[k] = design @ coef + median_filter(resid, size=int(bandpass_window), mode="nearest")
    z = x - bp[:, None, :]
    # each time step minus a running median over frequency: broadband bursts and the
    # partial-band gain stripes of real data go, a narrow line stays
    z = z - median_filter(z, size=(1, 1, int(bandpass_window)), mode="nearest")
    med = np.median(z, axis=(1, 2), keepdims=True)
    mad = 1.4826 * np.median(np.abs(z - med), axis=(1, 2), keepdims=True)
    z = np.clip((z - med) / np.maximum(mad, 1e-6), -clip, clip)
    # a channel bright all scan long in two or more OFF scans is interference by the cadence rule
    # itself (e.g. the DC spike of a coarse channel, in most real snippets, whose brightness varies
    # from scan to scan): blank it (and its neighbours) in every scan before the search, so that
    # the drift sums of real lines crossing it are not swamped. A needle is in no OFF scan.
    level = np.median(z[list(OFF_SCANS)], axis=1)  # (3, F)
    bad = np.flatnonzero((level > persistent).sum(axis=0) >= 2)
    if len(bad):
        cols = np.unique(np.clip(np.concatenate([bad - 1, bad, bad + 1]), 0, z.shape[2] - 1))
        z[:, :, cols] = 0.0
    return z


@lru_cache(maxsize=8)
def _gather_index(n_rows: int, n_chan: int, n_half: int) -> np.ndarray:
    """``(2·n_half+1, n_rows, n_chan)`` int32 flat indices into a ``(n_rows, n_chan + 2·n_half)``
    scan (padded by ``n_half`` each side) of the line with total drift ``s`` channels over the
    scan, s = −n_half..n_half (int32 and a flat take: half the memory traffic of 2-D fancy indexing)."""
    s = np.arange(-n_half, n_half + 1)[:, None, None]
    r = np.arange(n_rows)[None, :, None]
    f = np.arange(n_chan)[None, None, :]
    frac = r / max(n_rows - 1, 1)
    col = f + np.rint(s * frac).astype(np.int64) + n_half
    return (r * (n_chan + 2 * n_half) + col).astype(np.int32)


def drift_maps(zb: np.ndarray, n_half: int) -> np.ndarray:
    """``(6, n_drifts, F)`` de-Doppler maps of time-binned scans ``zb`` (6, R, F): the line sum in
    units of σ for total drifts −n_half..n_half channels over a scan (step 2)."""
    n_scans, n_rows, n_chan = zb.shape
    idx = _gather_index(n_rows, n_chan, n_half)
    out = np.empty((n_scans, 2 * n_half + 1, n_chan), dtype=np.float32)
    padded = np.zeros((n_rows, n_chan + 2 * n_half), dtype=np.float32)
    for k in range(n_scans):
        padded[:, n_half:n_half + n_chan] = zb[k]
        out[k] = np.take(padded.ravel(), idx).sum(axis=1) / np.sqrt(n_rows)
    return out


def _robust_scale(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each scan's median and robust scatter (1.4826 MAD, at least 1e-6) of its line sums."""
    m_med = np.median(maps, axis=(1, 2), keepdims=True)
    m_mad = 1.4826 * np.median(np.abs(maps - m_med), axis=(1, 2), keepdims=True)
    return m_med, np.maximum(m_mad, 1e-6)


def _calibrated(maps: np.ndarray, scale: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Each scan's line sums over their own robust scatter: real scans hold correlated structure
    (gain stripes, ripples) that makes a line sum's noise larger than √rows·σ. ``scale``: another
    map's :func:`_robust_scale` instead (masked scans are scaled like the unmasked ones)."""
    m_med, m_mad = _robust_scale(maps) if scale is None else scale
    return (maps - m_med) / m_mad


def _along(m: np.ndarray, pos: np.ndarray, fill: float) -> np.ndarray:
    """``m[d, pos[d, f]]`` for a ``(drifts, F)`` map and channel positions ``pos`` of the same
    shape: a line sum read where a track sits in a scan, ``fill`` where it is out of the band."""
    n_chan = m.shape[1]
    ok = (pos >= 0) & (pos < n_chan)
    return np.where(ok, np.take_along_axis(m, np.clip(pos, 0, n_chan - 1), axis=1), fill)


def track_values(x: np.ndarray, params: dict | None = None) -> dict:
    """The cadence rule on one ``(6, T, F)`` snippet: per track ``(d, f0)`` the ON values
    ``(3, n_drifts, F)``, OFF veto values ``(3, n_drifts, F)``, and the per-scan maps."""
    p = check_track_params(params or {})
    zb = flatten_scans(x, int(p["bandpass_window"]), float(p["clip"]), time_bin=int(p["time_bin"]))
    t_raw = x.shape[1]
    n_chan = x.shape[2]
    n_half = int(np.ceil(float(p["max_drift"]) * t_raw))
    raw = drift_maps(zb, n_half)  # (6, nd, F)
    scale = _robust_scale(raw)
    maps = _calibrated(raw, scale)
    # segments: the same search over each half of every scan (same channels-per-scan grid, so a
    # half's drift index means twice the rate) finds needles that last part of a scan only
    half = zb.shape[1] // 2
    half_raw = [drift_maps(zb[:, a:b], n_half) for a, b in ((0, half), (half, 2 * half))]
    half_scales = [_robust_scale(h) for h in half_raw]
    seg = np.maximum(maps, np.maximum(*(_calibrated(h, sc) for h, sc in zip(half_raw, half_scales))))
    nd = maps.shape[1]
    tol = int(p["on_tolerance"])
    # ON: tolerant by ±tol channels and one drift step; OFF: the brightest line at any drift
    on_maps = maximum_filter(maps[list(ON_SCANS)], size=(1, 3, 2 * tol + 1), mode="constant", cval=-np.inf)
    drift_ch = np.arange(-n_half, n_half + 1, dtype=np.float64)  # channels per scan
    f0 = np.arange(n_chan)[None, :]
    on_vals = np.full((3, nd, n_chan), -np.inf, dtype=np.float32)
    off_vals = np.full((3, nd, n_chan), 0.0, dtype=np.float32)
    for j, k in enumerate(ON_SCANS):
        start = f0 + np.rint(drift_ch[:, None] * k).astype(np.int64)  # (nd, F)
        on_vals[j] = _along(on_maps[j], start, -np.inf)
    margin = int(p["off_margin"])
    # OFF, turboSETI's rule: power on the track extrapolated to the OFF scan (tolerant by a few
    # drift steps and ±margin channels) ...
    off_maps = maximum_filter(maps[list(OFF_SCANS)], size=(1, 7, 2 * margin + 1), mode="constant", cval=0.0)
    # ... or a non-drifting line anywhere in the channels the track crosses during that scan
    still = maps[list(OFF_SCANS), n_half]  # (3, F): zero-drift line sums
    for j, k in enumerate(OFF_SCANS):
        start = f0 + np.rint(drift_ch[:, None] * k).astype(np.int64)
        inside = (start >= 0) & (start < n_chan)
        track = np.take_along_axis(off_maps[j], np.clip(start, 0, n_chan - 1), axis=1)
        for di, s in enumerate(drift_ch):
            half = int(np.ceil(abs(s) / 2)) + margin
            veto = maximum_filter1d(still[j], size=2 * half + 1, mode="constant", cval=0.0)
            pos = np.arange(n_chan) + int(np.rint(s * k + s / 2))
            ok = (pos >= 0) & (pos < n_chan)
            track[di] = np.maximum(track[di], np.where(ok, veto[np.clip(pos, 0, n_chan - 1)], 0.0))
        # a track outside the band in an OFF scan cannot be vetoed there
        off_vals[j] = np.where(inside, track, 0.0)
    return {"on": on_vals, "off": off_vals, "maps": maps, "n_half": n_half, "off_margin": margin,
            "seg": seg, "zb": zb, "scale": scale, "half_scales": half_scales}


#: an OFF line vetoes an ON line (turboSETI's rule: "also seen in an OFF scan") when it is above
#: OFF_ABS σ or above OFF_REL of the ON line: interference varies in brightness from scan to scan,
#: so subtracting the OFF strength alone leaves a bright line's excess in an ON scan as a detection
OFF_ABS, OFF_REL = 6.0, 0.15


def _vetoed(on: np.ndarray, off: np.ndarray) -> np.ndarray:
    return off > np.maximum(OFF_ABS, OFF_REL * on)


def _features_from(tv: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(features, (2, 6) per-scan values)`` of :func:`track_values`' output."""
    on, off = tv["on"], tv["off"]
    on_min = on.min(axis=0)
    off_max = off.max(axis=0)
    score = np.where(_vetoed(on_min, off_max), -np.inf, on_min - np.maximum(off_max, 0.0))
    score = np.where(np.isfinite(score), score, -np.inf)
    if not np.isfinite(score).any():  # every track vetoed: fall back to the plain difference
        score = np.where(np.isfinite(on_min), on_min - np.maximum(off_max, 0.0), -np.inf)
    d_best, f_best = np.unravel_index(int(np.argmax(score)), score.shape)
    best_on = on[:, d_best, f_best]
    best_off = off[:, d_best, f_best]
    # loose: each ON scan's best line (whole scan or either half) minus any OFF line with a similar
    # drift (± 3 drift steps, ± margin channels) at the same place or where that line would have
    # drifted to by the OFF scan's time (a drifting RFI line moves between scans); no common drift
    # across the ON scans (the competition's injected needles need not line up from scan to scan)
    seg = tv["seg"]
    margin = int(tv["off_margin"])
    n_half = int(tv["n_half"])
    n_drift, n_chan = seg.shape[1:]
    near = maximum_filter(seg[list(OFF_SCANS)], size=(1, 7, 2 * margin + 1))  # (3, nd, F)
    same_place = near.max(axis=0)
    drift_ch = np.arange(-n_half, n_half + 1)[:, None]
    f = np.arange(n_chan)[None, :]
    loose = []
    for k in ON_SCANS:
        veto = same_place.copy()
        for j, off_k in enumerate(OFF_SCANS):
            veto = np.maximum(veto, _along(near[j], f + drift_ch * (off_k - k), 0))
        v = np.where(_vetoed(seg[k], veto), -np.inf, seg[k] - np.maximum(veto, 0))
        loose.append(float(v.max()) if np.isfinite(v).any() else 0.0)
    loose_a = np.sort(loose)
    feats = np.array([
        score[d_best, f_best], best_on.min(), best_on.mean(), best_off.max(), best_off.mean(),
        loose_a[0], loose_a[1], loose_a.mean(), float((best_on > 5).sum()),
    ], dtype=np.float32)
    # per-scan values along the best track, in cadence order (for galleries)
    per_scan = np.empty((2, 6), dtype=np.float32)
    per_scan[0, list(ON_SCANS)] = best_on
    per_scan[0, list(OFF_SCANS)] = best_off
    per_scan[1] = np.nan
    per_scan[1, list(ON_SCANS)] = loose
    return feats, per_scan


def track_features(x: np.ndarray, params: dict | None = None) -> np.ndarray:
    """``(len(FEATURE_NAMES),)`` float32 features of one ``(6, T, F)`` snippet."""
    return _features_from(track_values(x, params))[0]


def per_scan_scores(x: np.ndarray, params: dict | None = None, *, loose: bool = False) -> np.ndarray:
    """``(6,)`` line strength (σ) of each scan along the snippet's best track: ON scans the track's
    own value, OFF scans the brightest line it crosses there. With ``loose``, ``(2, 6)``: that and,
    for each ON scan (NaN for OFF), its best line after the OFF veto with no common drift."""
    both = _features_from(track_values(x, params))[1]
    return both if loose else both[0]


def feature_matrix(x, params: dict | None = None) -> np.ndarray:
    """``(N, n_features)`` of a sequence of snippets (a SnippetStack or an ``(N, 6, T, F)`` array)."""
    rows = [track_features(np.asarray(x[i], dtype=np.float32), params) for i in range(len(x))]
    return np.stack(rows) if rows else np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32)


# ---- richer evidence for a learned head (``cadence-tracks`` with ``features: "rich"``) ----------
def _segment_maps(zb: np.ndarray, n_parts: int, n_half: int) -> np.ndarray:
    """``(6, 2·n_half+1, F)``: each scan's best calibrated line sum over ``n_parts`` equal time
    segments (a needle lasting part of a scan is diluted in the whole-scan sum). Drift index ``s``
    means ``s`` channels over one segment, i.e. ``s·n_parts`` over a scan."""
    rows = zb.shape[1] // n_parts
    parts = [_calibrated(drift_maps(zb[:, i * rows:(i + 1) * rows], n_half)) for i in range(n_parts)]
    return np.max(parts, axis=0)


def _per_scan_evidence(maps: np.ndarray, n_half: int, margin: int, rate: float) -> np.ndarray:
    """``(3, 7)`` per ON scan: [hard-vetoed best line, best line − OFF evidence (no hard veto),
    raw best line, OFF evidence at that raw best line, drift (channels per scan) and channel of
    the hard-vetoed best line, whether the raw best line is vetoed]. OFF evidence at an ON line ``(d, f)``: the
    brightest OFF line with a similar drift (± 3 steps, ± ``margin`` channels) at the same place
    or where the ON line would have drifted to by that OFF scan (``rate`` scans-per-index factor)."""
    n_drift, n_chan = maps.shape[1:]
    near = maximum_filter(maps[list(OFF_SCANS)], size=(1, 7, 2 * margin + 1))
    same_place = near.max(axis=0)
    drift_ch = np.arange(-n_half, n_half + 1)[:, None] * rate
    f = np.arange(n_chan)[None, :]
    out = np.zeros((3, 7), dtype=np.float32)
    for j, k in enumerate(ON_SCANS):
        veto = same_place.copy()
        for jj, off_k in enumerate(OFF_SCANS):
            veto = np.maximum(veto, _along(near[jj], f + np.rint(drift_ch * (off_k - k)).astype(np.int64), 0))
        m = maps[k]
        hard = np.where(_vetoed(m, veto), -np.inf, m - np.maximum(veto, 0))
        soft = m - np.maximum(veto, 0)
        a = int(np.argmax(m))
        h_d, h_f = np.unravel_index(int(np.argmax(hard)), hard.shape)
        out[j] = (float(hard.max()) if np.isfinite(hard).any() else 0.0, float(soft.max()),
                  float(m.flat[a]), float(veto.flat[a]), float(drift_ch[h_d, 0]), float(h_f),
                  float(_vetoed(m.flat[a], veto.flat[a])))
    return out


#: the names of :func:`rich_features`: the 9 of :data:`FEATURE_NAMES`, then per scale (whole
#: scan, best half, best quarter, whole scan of 3-channel sums for wide lines) the per-ON-scan
#: evidence of :func:`_per_scan_evidence` summarised over the three ON scans, then track sums
RICH_SCALES = ("whole", "half", "quarter", "wide")
RICH_FEATURE_NAMES = FEATURE_NAMES + tuple(
    f"{s}_{n}" for s in RICH_SCALES for n in (
        "hard_min", "hard_med", "hard_max", "n_hard", "soft_min", "soft_med", "soft_max", "raw_min", "raw_med",
        "veto_max", "veto_med", "veto_ratio_max", "top_n_in_band", "top_min_in_band", "hard_to_raw_min",
        "hard_to_raw_med", "n_raw_vetoed")) + (
    "track_min_soft", "track_sum_soft", "track_sum_vetoed", "best_off_1", "best_off_2", "best_off_3",
    "off_ratio", "off_self_max", "off_self_med",
    # matched filter along one exact linear track (no tolerance, so no noise-maximum bias): the
    # three ON scans' line sums added (√3 more S/N for a faint needle than any one scan)
    "mf_on_max", "mf_diff_max", "mf_on_at_diff", "mf_off_at_diff", "mf_on_min_at_diff", "mf_diff_half_max")


def _physical_sign(name: str) -> int:
    """+1: ON-only evidence (a brighter ON line, or one that survives the OFF veto, can never make
    a snippet less needle-like); −1: OFF evidence at the ON line's place (a brighter OFF line there
    can never make it more needle-like); 0: no physical sign (raw ON brightness, which interference
    raises as much as a needle; how busy the OFF scans are; how many ON scans a track stays in)."""
    if name.startswith(("best_off_", "off_ratio")) or name.endswith(
            ("veto_max", "veto_med", "veto_ratio_max", "n_raw_vetoed")):
        return -1
    if name == "mf_off_at_diff":
        return -1
    if "_raw_m" in name or name.endswith("top_n_in_band") or name.startswith(("off_self", "mf_on_max")):
        return 0
    return 1


#: the last rich features, the matched filter (added in round 4; ``features: "rich"`` bundles lack them)
N_MATCHED_FILTER = sum(n.startswith("mf_") for n in RICH_FEATURE_NAMES)

#: the physical sign of each rich feature, for LightGBM's ``monotone_constraints``: a tree head
#: fitted on simulated / injected data may not learn a sharp rule that more ON evidence lowers the
#: score (or more OFF evidence raises it) — such rules fit the training noise and do not transfer
RICH_FEATURE_SIGNS = tuple(_physical_sign(n) for n in RICH_FEATURE_NAMES)


def _top(a: np.ndarray) -> float:
    """The largest finite value of ``a`` (NaN and ±inf ignored: −inf marks vetoed or out-of-band
    tracks), 0.0 when there is none."""
    fin = np.isfinite(a)
    return float(a[fin].max()) if fin.any() else 0.0


def _exact_track(maps: np.ndarray, n_half: int, scans, fill: float) -> np.ndarray:
    """``(len(scans), n_drifts, F)``: each scan's line sum on the linear track ``(d, f0)`` of the
    cadence, which starts scan ``k`` at channel ``f0 + d·k`` (``fill`` where it is out of band)."""
    d = np.arange(-n_half, n_half + 1)[:, None]
    f0 = np.arange(maps.shape[2])[None, :]
    return np.array([_along(maps[k], f0 + d * k, fill) for k in scans])


def _matched_filter(maps: np.ndarray, seg: np.ndarray, n_half: int) -> np.ndarray:
    """The ``mf_*`` features of :data:`RICH_FEATURE_NAMES`: along each exact track, the ON line
    sums added over the three ON scans (/√3) against the OFF ones (positive part), on whole-scan
    maps and on each scan's best half (``seg``)."""
    on = _exact_track(maps, n_half, ON_SCANS, -np.inf)
    on_s = on.sum(axis=0) / np.sqrt(3.0)
    off_s = _exact_track(maps, n_half, OFF_SCANS, 0.0).sum(axis=0) / np.sqrt(3.0)
    diff = np.where(np.isfinite(on_s), on_s - np.maximum(off_s, 0.0), -np.inf)
    i = np.unravel_index(int(np.argmax(diff)), diff.shape)
    on_h = _exact_track(seg, n_half, ON_SCANS, -np.inf).sum(axis=0) / np.sqrt(3.0)
    off_h = _exact_track(seg, n_half, OFF_SCANS, 0.0).sum(axis=0) / np.sqrt(3.0)
    diff_h = np.where(np.isfinite(on_h), on_h - np.maximum(off_h, 0.0), -np.inf)

    return np.array([_top(on_s), _top(diff), on_s[i], off_s[i], float(on[:, i[0], i[1]].min()), _top(diff_h)],
                    dtype=np.float32)


# ---- the OFF scans' lines masked over the whole cadence (``features: "rich-mask"``) --------------
#: an OFF line (local maximum of an OFF scan's calibrated drift map) above this many σ is masked
MASK_OFF_SIGMA = 6.0
#: at most this many lines per OFF scan (the brightest); a busy background is masked this far only
MASK_MAX_LINES = 12
#: a channel whose raw time-median OFF spectrum stands this many robust σ above its running
#: median in two or more OFF scans holds a non-drifting line
MASK_STILL_SIGMA = 8.0
#: channels masked either side of a non-drifting line or a channel :func:`flatten_scans` blanked
MASK_STILL_PAD = 4
MASK_FEATURE_NAMES = ("m_on_min", "m_on_med", "m_on_max", "m_seg_min", "m_seg_med", "m_seg_max", "m_off_rest",
                      "m_mf_diff", "m_mf_on", "m_mf_off", "m_n_off_lines", "m_masked_frac", "m_top_n_in_band",
                      "m_top_min_in_band", "m_top_rel_in_band")
#: drift step (channels per scan) of the masked matched filter: whole-channel steps put a fast
#: needle up to two channels off its track by the last ON scan
MASK_MF_STEP = 0.25


def _off_lines(maps: np.ndarray) -> list[tuple[int, float, float]]:
    """``[(OFF scan, drift index offset, start channel)]``: each OFF scan's brightest local maxima
    of its calibrated drift map above :data:`MASK_OFF_SIGMA` (at most :data:`MASK_MAX_LINES`)."""
    n_half = (maps.shape[1] - 1) // 2
    out = []
    for k in OFF_SCANS:
        m = maps[k]
        d_i, f_i = np.nonzero((m == maximum_filter(m, size=(7, 11))) & (m > MASK_OFF_SIGMA))
        for o in np.argsort(-m[d_i, f_i])[:MASK_MAX_LINES]:
            out.append((k, float(d_i[o] - n_half), float(f_i[o])))
    return out


def _cadence_mask(x: np.ndarray, zb: np.ndarray, off_lines: list[tuple[int, float, float]],
                  pad: int = 3) -> np.ndarray:
    """``(6, R, F)`` pixels explained by interference seen in the OFF scans (``off_lines``:
    :func:`_off_lines`). A drifting interferer
    moves on one track through the whole cadence, so each OFF line is extended over all six scans
    (its width growing by half a channel per scan away from the OFF scan, for the drift's
    uncertainty); channels of non-drifting lines in the raw OFF spectra (which the OFF-median
    bandpass of :func:`flatten_scans` subtracts, leaving residuals where the scans' levels differ)
    and channels it blanked are masked with their wings. A needle is in no OFF scan: not masked."""
    n_s, n_rows, n_chan = zb.shape
    mask = np.zeros(zb.shape, dtype=bool)
    t = np.arange(n_s)[:, None] + np.arange(n_rows)[None, :] / n_rows  # (6, R) time in scans
    ch = np.arange(n_chan)[None, None, :]
    for k, d, f in off_lines:
        width = pad + 0.5 * np.abs(t - k) + abs(d) / n_rows
        mask |= np.abs(ch - (f + d * (t - k))[:, :, None]) <= width[:, :, None]
    spec = np.median(np.asarray(x, dtype=np.float32)[list(OFF_SCANS)], axis=1)  # (3, F)
    res = spec - median_filter(spec, size=(1, 15), mode="nearest")
    scale = 1.4826 * np.median(np.abs(res - np.median(res, axis=1, keepdims=True)), axis=1, keepdims=True)
    still = np.flatnonzero(((res / np.maximum(scale, 1e-9)) > MASK_STILL_SIGMA).sum(axis=0) >= 2)
    blank = np.union1d(np.flatnonzero((zb == 0).all(axis=(0, 1))), still)
    if len(blank):
        near = (blank[:, None] + np.arange(-MASK_STILL_PAD, MASK_STILL_PAD + 1)[None, :]).ravel()
        mask[:, :, np.unique(np.clip(near, 0, n_chan - 1))] = True
    return mask


def masked_features(x: np.ndarray, tv: dict) -> np.ndarray:
    """``(len(MASK_FEATURE_NAMES),)``: the turboSETI veto on pixels. The OFF scans' lines are
    masked over the whole cadence (:func:`_cadence_mask`) and the ON scans searched again: each ON
    scan's best line (whole scan, best half), the brightest line left in any OFF scan, a matched
    filter along fractional-drift tracks (ON sums against OFF sums), how many OFF lines were
    masked and what fraction of the ON pixels. Bright RFI through all six scans, and its side
    responses at other drifts, leave nothing; a needle in the ON scans stays whole."""
    zb, maps, n_half = tv["zb"], tv["maps"], int(tv["n_half"])
    off_lines = _off_lines(maps)
    mask = _cadence_mask(x, zb, off_lines)
    zm = np.where(mask, 0.0, zb).astype(np.float32)
    # masking lowers a scan's scatter: a line must not gain significance from it, so the masked
    # maps are scaled like the unmasked ones (the scales track_values found)
    mm = _calibrated(drift_maps(zm, n_half), tv["scale"])
    half = zb.shape[1] // 2
    on = list(ON_SCANS)
    seg = np.maximum(*(_calibrated(drift_maps(zm[on, a:b], n_half), (sc[0][on], sc[1][on]))
                       for (a, b), sc in zip(((0, half), (half, 2 * half)), tv["half_scales"])))
    on_max = [float(mm[k].max()) for k in ON_SCANS]
    on_best = np.sort(on_max)
    on_seg = np.sort([float(s.max()) for s in seg])
    off_rest = max(float(mm[k].max()) for k in OFF_SCANS)
    n_chan = zb.shape[2]
    drift = np.arange(-n_half, n_half + 1e-9, MASK_MF_STEP)
    rows = mm[:, np.rint(drift).astype(np.int64) + n_half]  # (6, n_drift, F)
    vals = np.array([_along(rows[k], np.rint(np.arange(n_chan)[None, :] + drift[:, None] * k).astype(np.int64),
                            np.nan) for k in range(6)])
    on_v, off_v = vals[list(ON_SCANS)], vals[list(OFF_SCANS)]
    s_on = np.nansum(on_v, axis=0) / np.sqrt(3.0)
    s_off = np.nansum(np.maximum(off_v, 0), axis=0) / np.sqrt(3.0)
    diff = np.where(np.isfinite(on_v).any(axis=0), s_on - s_off, -np.inf)
    i = np.unravel_index(int(np.argmax(diff)), diff.shape)
    # the brightest ON line left: where its drift puts it in the other ON scans. A needle that
    # leaves the band is seen in one ON scan only; a line that should still be in the band and is
    # not there is no needle's (turboSETI asks for a hit in every ON scan)
    top = int(np.argmax(on_max))
    k_top = ON_SCANS[top]
    d_i, f_i = np.unravel_index(int(np.argmax(mm[k_top])), mm[k_top].shape)
    near = maximum_filter(mm[list(ON_SCANS)], size=(1, 3, 5), mode="constant", cval=-np.inf)
    there = []
    for j, k in enumerate(ON_SCANS):
        pos = int(np.rint(f_i + (d_i - n_half) * (k - k_top)))
        if k != k_top and 0 <= pos < n_chan:
            there.append(float(near[j, d_i, pos]))
    seen = min(there) if there else 0.0
    out = np.array([*on_best, *on_seg, off_rest, diff[i], s_on[i], s_off[i], float(len(off_lines)),
                    float(mask[list(ON_SCANS)].mean()), float(len(there)), seen,
                    seen / max(on_max[top], 1.0)], dtype=np.float32)
    return np.nan_to_num(out, nan=0.0, posinf=1e4, neginf=-1e4)


def rich_features(x: np.ndarray, params: dict | None = None, *, matched_filter: bool = True,
                  mask: bool = False) -> np.ndarray:
    """``(len(RICH_FEATURE_NAMES),)`` float32: richer cadence evidence for a learned (tree) head
    (without ``matched_filter``, round 3's first 86 features, which its bundles were trained on).

    The 9 rule features, and without any hand-set veto threshold, so the head learns how much OFF
    evidence cancels how much ON evidence: each ON scan's best line at several time scales (whole,
    best half, best quarter — part-scan needles) and for wide lines (3-channel sums), beside the
    OFF evidence at that line (the same place, or where it would have drifted to); the best
    consistent track's ON sum against its OFF power; each OFF scan's power on that track; and how
    bright the OFF scans' own lines are (a busy background). ``mask``: then
    :func:`masked_features` (the OFF scans' lines masked over the whole cadence)."""
    p = check_track_params(params or {})
    tv = track_values(x, p)
    base, _ = _features_from(tv)
    zb = tv["zb"]
    n_half, margin = int(tv["n_half"]), int(tv["off_margin"])
    maps = tv["maps"]
    n_half_h = int(np.ceil(n_half / 2)) + 1
    n_half_q = int(np.ceil(n_half / 4)) + 1
    wide = (zb[:, :, :-2] + zb[:, :, 1:-1] + zb[:, :, 2:]) / np.sqrt(3.0)
    wide = np.concatenate([wide[:, :, :1], wide, wide[:, :, -1:]], axis=2)
    scales = {"whole": (maps, n_half, 1.0), "half": (_segment_maps(zb, 2, n_half_h), n_half_h, 2.0),
              "quarter": (_segment_maps(zb, 4, n_half_q), n_half_q, 4.0),
              "wide": (_calibrated(drift_maps(wide, n_half)), n_half, 1.0)}
    feats = [base]
    for name in RICH_SCALES:
        m, nh, rate = scales[name]
        ev = _per_scan_evidence(m, nh, margin, rate)
        hard, soft, raw, veto = (np.sort(ev[:, i]) for i in range(4))
        ratio = ev[:, 3] / np.maximum(ev[:, 2], 1.0)
        # a line left after the OFF veto that is faint beside a vetoed bright one in the same scan
        # is often the bright one's side response at another drift (a needle is the brightest)
        h_r = ev[:, 0] / np.maximum(ev[:, 2], 1.0)
        # a fast needle can leave the band: where would the strongest ON line be in the other ON
        # scans, and how strong are the ON scans where it should still be in the band
        top = int(np.argmax(ev[:, 0]))
        pred = ev[top, 5] + ev[top, 4] * (np.array(ON_SCANS) - ON_SCANS[top])
        in_band = (pred >= 0) & (pred < m.shape[2])
        feats.append(np.array([hard[0], hard[1], hard[2], float((ev[:, 0] > 6).sum()), soft[0], soft[1], soft[2],
                               raw[0], raw[1], veto[2], veto[1], ratio.max(), float(in_band.sum()),
                               float(ev[in_band, 0].min()), *np.sort(h_r)[:2], float(ev[:, 6].sum())],
                              dtype=np.float32))
    on, off = tv["on"], tv["off"]
    off_max = np.maximum(off.max(axis=0), 0.0)
    on_min = on.min(axis=0)
    on_sum = on.sum(axis=0) / np.sqrt(3.0)
    fin = np.isfinite(on_min)
    min_soft = np.where(fin, on_min - off_max, -np.inf)
    sum_soft = np.where(fin, on_sum - np.sqrt(3.0) * off_max, -np.inf)
    sum_vetoed = np.where(fin & ~_vetoed(on_min, off_max), on_sum, -np.inf)
    d_b, f_b = np.unravel_index(int(np.argmax(min_soft)), min_soft.shape)
    best_off = np.sort(off[:, d_b, f_b])
    off_self = np.sort(maps[list(OFF_SCANS)].max(axis=(1, 2)))

    feats.append(np.array([_top(min_soft), _top(sum_soft), _top(sum_vetoed), *best_off,
                           best_off[2] / max(float(on_min[d_b, f_b]), 1.0), off_self[2], off_self[1]],
                          dtype=np.float32))
    if matched_filter:
        feats.append(_matched_filter(maps, tv["seg"], n_half))
    if mask:
        feats.append(masked_features(x, tv))
    out = np.concatenate(feats).astype(np.float32)
    return np.nan_to_num(out, nan=0.0, posinf=1e4, neginf=-1e4)


#: the ``features: "rich-mask"`` set: the rich features, then :func:`masked_features`
RICH_MASK_FEATURE_NAMES = RICH_FEATURE_NAMES + MASK_FEATURE_NAMES
#: physical signs of the masked features (ON evidence left after masking +1, OFF −1, the rest 0)
RICH_MASK_FEATURE_SIGNS = RICH_FEATURE_SIGNS + tuple(
    -1 if n == "m_mf_off" else 0 if n in ("m_off_rest", "m_n_off_lines", "m_masked_frac", "m_top_n_in_band") else 1
    for n in MASK_FEATURE_NAMES)


def rich_feature_matrix(x, params: dict | None = None, *, matched_filter: bool = True,
                        mask: bool = False) -> np.ndarray:
    if mask and not matched_filter:
        raise ConfigError("the masked features come after the matched filter: mask needs matched_filter")
    rows = [rich_features(np.asarray(x[i], dtype=np.float32), params, matched_filter=matched_filter, mask=mask)
            for i in range(len(x))]
    n = len(RICH_FEATURE_NAMES) - (0 if matched_filter else N_MATCHED_FILTER) + (len(MASK_FEATURE_NAMES) if mask else 0)
    return np.stack(rows) if rows else np.zeros((0, n), dtype=np.float32)
