"""Needles and RFI injected with setigen into *real* cadence backgrounds.

The simulator's noise is cleaner than the sky's; real backgrounds (the real negatives and the
unlabelled test snippets of the competition, or cadences cut from a user's ``.fil`` / ``.h5``
files with :func:`skysift.technosignatures.io.load_filterbank`) carry the bandpass ripples, gain
stripes, DC spikes and interference a detector must not fire on. Here a background becomes:

* a **positive**: a needle (setigen signal) in the three ON scans only — a linear drift track
  across the cadence, a quadratic or sinusoidal path, or (``"per_scan"``) a separate drifting
  segment in each ON scan, as in some of the competition's own injections; sometimes lasting only
  part of each scan;
* a **hard negative**: an RFI-like narrow-band line in *all six* scans (drifting or not,
  sometimes intermittent), or in one or two scans including an OFF one;
* a **plain negative**: the background as it is (after a variant transform).

Each signal's amplitude is set per scan from that scan's own pixel noise (robust σ of the
background), in setigen's SNR convention (the integrated SNR over one scan), and it is added only
within the channels the path visits (``bounding_f_range``): every pixel outside stays exactly the
background's. :func:`variants` makes more backgrounds from few: frequency flips and rolls, time
reversal, ON/OFF role swaps and scan permutations, all of which keep a background free of needles.

Backgrounds are kept apart by id (``background`` column of the truth table, and ``groups``) so a
test set's backgrounds never reach training.
"""
from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from .io import OFF_SCANS, ON_SCANS, with_content_ids, write_cadence_folder
from .simulate import DF_HZ, DT_S, TRUTH_FIELDS, TRUTH_FORMATS, _path, _template

#: kinds of injection and their default proportions
KINDS = ("needle", "rfi", "plain")
#: ``transient``: interference in one ON scan only (training negatives); ``uneven``: a needle in
#: the three ON scans, bright in one and faint in the other two (positives); see :func:`draw_injection`
ALL_KINDS = (*KINDS, "transient", "uneven")
#: the kinds that are positives (a needle in the ON scans)
POSITIVE_KINDS = ("needle", "uneven")
#: an ``uneven`` needle's two fainter ON scans carry this fraction range of its brightest scan's S/N:
#: measured on the real positives' pixels (issue 18, round 7), 1004c26's needle is a 23.6 σ line
#: in ON scan 2 with nothing above 7.3 σ in ON scans 0 and 4 (a fraction ≤ 0.31), and 0024012 has
#: no line above ~10 σ in any ON scan; the competition's needles are not equally bright in every
#: ON scan
UNEVEN_GAIN = (0.1, 0.5)
NEEDLE_PATHS = ("linear", "quadratic", "sine", "per_scan")


def pixel_noise(x: np.ndarray) -> np.ndarray:
    """``(6,)`` robust pixel σ of each scan: the MAD of consecutive-step differences / √2 (immune
    to the bandpass and to lines, which change slowly in time)."""
    d = np.diff(np.asarray(x, dtype=np.float64), axis=1)
    return np.maximum(1.4826 * np.median(np.abs(d - np.median(d, axis=(1, 2), keepdims=True)), axis=(1, 2))
                      / np.sqrt(2), 1e-6)


def _frame_of(background: np.ndarray):
    """A setigen Frame of the whole cadence holding ``background`` (6·T × F)."""
    n_scans, t_scan, n_chan = background.shape
    tmpl = _template()
    if tmpl.shape != (n_scans * t_scan, n_chan):
        import setigen as stg

        tmpl = stg.Frame(fchans=n_chan, tchans=n_scans * t_scan, df=DF_HZ, dt=DT_S, fch1=6.0e9)
    frame = copy.copy(tmpl)
    frame.data = np.asarray(background, dtype=np.float64).reshape(n_scans * t_scan, n_chan).copy()
    return frame


def _scan_levels(t: np.ndarray, t_scan_s: float, levels: np.ndarray, active: np.ndarray,
                 window: tuple[float, float] | None) -> np.ndarray:
    """Intensity at times ``t``: ``levels[k]`` in active scans ``k`` (within ``window``, a fraction
    range of each scan, when given), 0 elsewhere."""
    t = np.asarray(t, dtype=np.float64)
    k = np.clip((t // t_scan_s).astype(np.int64), 0, len(levels) - 1)
    out = levels[k] * active[k]
    if window is not None:
        frac = (t - k * t_scan_s) / t_scan_s
        out = out * ((frac >= window[0]) & (frac < window[1]))
    return out


def add_signal(background: np.ndarray, rng: np.random.Generator, *, scans, snr: float, drift_hz_s: float,
               width_hz: float, path: str = "linear", start_channel: float | None = None,
               window: tuple[float, float] | None = None, legacy_placement: bool = False,
               gains: dict[int, float] | None = None) -> tuple[np.ndarray, dict]:
    """``background`` with one setigen signal in ``scans`` (indices 0..5) → ``(snippet, truth)``.

    ``gains``: scan → fraction of ``snr`` in that scan (1 for scans not named).

    ``legacy_placement``: draw the start channel as round 2 did, with the drift direction
    inverted, so that a fast needle often leaves the band after the first ON scan; only to rebuild
    the round-2 injection test law (``benchmarks/technosignatures_real.py``), never for new data."""
    import setigen as stg

    background = np.asarray(background, dtype=np.float32)
    if background.ndim != 3 or background.shape[0] != 6:
        raise DataError("background", f"expected a (6, time, frequency) cadence, got shape {background.shape}")
    if path not in NEEDLE_PATHS:
        raise ConfigError(f"path must be one of {NEEDLE_PATHS}, got {path!r}")
    n_scans, t_scan, n_chan = background.shape
    frame = _frame_of(background)
    t_scan_s = t_scan * DT_S
    active = np.zeros(n_scans)
    active[list(scans)] = 1.0
    for k, g in (gains or {}).items():
        if not 0 <= g <= 1 or k not in scans:
            raise ConfigError(f"gains must map scans of {tuple(scans)} to fractions in [0, 1], got {gains}")
        active[k] = float(g)
    sigma = pixel_noise(background)
    levels = snr * sigma / np.sqrt(t_scan)  # setigen: SNR over one scan → per-pixel intensity
    if start_channel is None:
        # where the linear part stays inside the band over the active scans when possible (a
        # needle that has left the band in two ON scans is not "in the ON scans"); the direction
        # in channels is the frame's own (setigen's frames here run up in frequency with channel)
        up = 1.0 if float(frame.fs[1]) > float(frame.fs[0]) else -1.0
        span = (-1.0 if legacy_placement else up) * drift_hz_s * t_scan_s * max(scans) / DF_HZ
        lo_c, hi_c = 10 + max(0.0, -span), n_chan - 10 - max(0.0, span)
        c0 = rng.uniform(lo_c, hi_c) if hi_c > lo_c else rng.uniform(10, n_chan - 10)
    else:
        c0 = float(start_channel)
    f0 = frame.get_frequency(c0)
    if path == "per_scan":
        # a separate segment per scan: its own start channel and drift (same sign and size range)
        starts = {k: frame.get_frequency(rng.uniform(10, n_chan - 10)) for k in range(n_scans)}
        drifts = {k: drift_hz_s * rng.uniform(0.3, 1.5) for k in range(n_scans)}

        def fpath(t):
            t = np.asarray(t, dtype=np.float64)
            k = np.clip((t // t_scan_s).astype(np.int64), 0, n_scans - 1)
            return np.array([starts[int(i)] for i in np.atleast_1d(k)]).reshape(np.shape(t)) + \
                np.array([drifts[int(i)] for i in np.atleast_1d(k)]).reshape(np.shape(t)) * (t - k * t_scan_s)
    else:
        fpath = _path(path, f0, drift_hz_s, rng)
    fs = np.asarray(frame.fs)
    ts = np.asarray(frame.ts)
    on_t = _scan_levels(ts, t_scan_s, np.ones(n_scans), active, window) > 0
    ch = (np.asarray(fpath(ts), dtype=np.float64) - fs[0]) / (fs[1] - fs[0])
    pad = 6.0 * width_hz / DF_HZ + 2
    truth = {"path": path, "snr": float(snr), "drift_hz_s": float(drift_hz_s), "width_hz": float(width_hz),
             "start_channel": float(c0), "scans": "".join(str(int(s)) for s in sorted(scans))}
    if not on_t.any():
        return background.copy(), truth
    lo = int(np.clip(np.floor(ch[on_t].min() - pad), 0, n_chan))
    hi = int(np.clip(np.ceil(ch[on_t].max() + pad + 1), 0, n_chan))
    if hi - lo < 1:
        return background.copy(), truth
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame.add_signal(fpath, lambda t: _scan_levels(t, t_scan_s, levels, active, window),
                         stg.gaussian_f_profile(width=width_hz), stg.constant_bp_profile(level=1.0),
                         bounding_f_range=(frame.get_frequency(lo), frame.get_frequency(hi)))
    out = frame.data.reshape(n_scans, t_scan, n_chan).astype(np.float32)
    truth["channels"] = (lo, hi)
    return out, truth


def variants(background: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random needle-free variant of a background: frequency flip and roll, time reversal,
    ON/OFF role swap, permutation of the ON scans among themselves and of the OFF scans."""
    x = np.asarray(background, dtype=np.float32)
    if rng.random() < 0.5:
        x = x[:, :, ::-1]
    if rng.random() < 0.5:
        x = x[:, ::-1, :]
    x = np.roll(x, int(rng.integers(0, x.shape[2])), axis=2)
    if rng.random() < 0.5:  # the OFF scans become ON ones: still no needle in "ON only"
        x = x[[1, 0, 3, 2, 5, 4]]
    order = np.empty(6, dtype=np.int64)
    order[list(ON_SCANS)] = rng.permutation(list(ON_SCANS))
    order[list(OFF_SCANS)] = rng.permutation(list(OFF_SCANS))
    return np.ascontiguousarray(x[order])


def draw_injection(background: np.ndarray, rng: np.random.Generator, kind: str,
                   snr_range=(15.0, 150.0), drift_max_hz_s: float = 0.3,
                   legacy_placement: bool = False) -> tuple[np.ndarray, dict]:
    """One injected snippet of ``kind`` (one of :data:`ALL_KINDS`) into ``background``
    (``legacy_placement``: see :func:`add_signal`)."""
    if kind not in ALL_KINDS:
        raise ConfigError(f"kind must be one of {ALL_KINDS}, got {kind!r}")
    snr = float(np.exp(rng.uniform(*np.log(snr_range))))
    width = float(np.exp(rng.uniform(np.log(2.0), np.log(15.0))))
    drift = float(rng.uniform(-drift_max_hz_s, drift_max_hz_s))
    window = None
    if rng.random() < 0.3:  # only part of each scan
        a = rng.uniform(0, 0.6)
        window = (a, a + rng.uniform(0.3, 1.0 - a))
    if kind == "needle":
        path = str(rng.choice(NEEDLE_PATHS, p=[0.4, 0.15, 0.15, 0.3]))
        x, t = add_signal(background, rng, scans=ON_SCANS, snr=snr, drift_hz_s=drift, width_hz=width,
                          path=path, window=window, legacy_placement=legacy_placement)
    elif kind == "rfi":
        if rng.random() < 0.6:
            drift = 0.0 if rng.random() < 0.5 else drift * 0.2
        if rng.random() < 0.7:
            scans: tuple = tuple(range(6))
        else:  # intermittent: one or two scans, at least one of them OFF
            scans = tuple(sorted({int(rng.choice(OFF_SCANS)), int(rng.integers(0, 6))}))
        x, t = add_signal(background, rng, scans=scans, snr=snr * rng.uniform(1, 3), drift_hz_s=drift,
                          width_hz=width, path="linear", window=window, legacy_placement=legacy_placement)
    elif kind == "uneven":
        # a linear needle in every ON scan whose brightness differs from scan to scan, as the real
        # positives' needles do: ``snr`` in one ON scan, a fraction (UNEVEN_GAIN) in the other two
        bright = int(rng.choice(ON_SCANS))
        gains = {k: float(rng.uniform(*UNEVEN_GAIN)) for k in ON_SCANS if k != bright}
        x, t = add_signal(background, rng, scans=ON_SCANS, snr=snr, drift_hz_s=drift, width_hz=width,
                          path="linear", window=window, legacy_placement=legacy_placement, gains=gains)
    elif kind == "transient":
        # a line in one ON scan only, slow enough (at most 5.4 channels a scan) and far enough from
        # the band edges that a needle with its drift would still be in the band in the other ON
        # scans: not a candidate by turboSETI's rule (a hit in every ON scan), and real negatives
        # hold such lines (issue 18, round 6). Without them, every ON-only line a model is trained
        # on is a needle, including the fast ones seen in one ON scan because they leave the band
        k = int(rng.choice(ON_SCANS))
        x, t = add_signal(background, rng, scans=(k,), snr=snr, drift_hz_s=float(rng.uniform(-0.05, 0.05)),
                          width_hz=width, path="linear", window=window,
                          start_channel=float(rng.uniform(40, background.shape[2] - 40)))
    else:
        x, t = np.asarray(background, dtype=np.float32).copy(), {"path": "", "snr": 0.0, "drift_hz_s": 0.0,
                                                                 "width_hz": 0.0, "start_channel": -1.0,
                                                                 "scans": ""}
    t["kind"] = kind
    t["window"] = "" if window is None else f"{window[0]:.3f}-{window[1]:.3f}"
    return x, t


def standardise(x: np.ndarray) -> np.ndarray:
    """Each scan to mean 0, σ 1, as the competition's snippets are."""
    x = np.asarray(x, dtype=np.float64)
    return ((x - x.mean(axis=(1, 2), keepdims=True)) / np.maximum(x.std(axis=(1, 2), keepdims=True), 1e-9)
            ).astype(np.float32)


def inject_dataset(backgrounds: dict[str, np.ndarray], out, n: int, seed: int = 0,
                   proportions=(0.5, 0.3, 0.2), snr_range=(15.0, 150.0), legacy_placement: bool = False,
                   kinds: tuple[str, ...] = KINDS) -> Path:
    """Write ``n`` injected snippets into ``backgrounds`` (id → ``(6, T, F)``) in the competition
    layout (``train/<c>/<id>.npy``, ``train_labels.csv``) plus ``truth.csv`` with each snippet's
    background id, variant-free kind (needle / rfi / plain, or those of ``kinds``: one weight each
    in ``proportions``; only needles, even or uneven, are positives) and signal parameters. Returns ``out``."""
    if n < 1 or not backgrounds:
        raise ConfigError("inject_dataset needs n >= 1 and at least one background")
    p = np.asarray(proportions, dtype=np.float64)
    if len(p) != len(kinds) or (p < 0).any() or p.sum() <= 0:
        raise ConfigError(f"proportions must be one weight per kind {tuple(kinds)}, got {proportions}")
    if unknown := set(kinds) - set(ALL_KINDS):
        raise ConfigError(f"kinds must be among {ALL_KINDS}, got {sorted(unknown)}")
    out = Path(out)
    rng = np.random.default_rng(seed)
    names = sorted(backgrounds)

    def rows():
        for i in range(n):
            bg_id = names[i % len(names)]
            kind = str(rng.choice(kinds, p=p / p.sum()))
            x, t = draw_injection(variants(backgrounds[bg_id], rng), rng, kind, snr_range=snr_range,
                                  legacy_placement=legacy_placement)
            # drawn as before (the same seed gives the same snippets), not used: ids are content ids
            rng.integers(0, 16**15, dtype=np.int64)
            yield standardise(x), int(kind in POSITIVE_KINDS), {**t, "background": bg_id}

    write_cadence_folder(out, with_content_ids(rows()), ("background", "kind", *TRUTH_FIELDS, "scans", "window"),
                         TRUTH_FORMATS)
    return out
