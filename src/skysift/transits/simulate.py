"""Kepler-like light curves with and without transiting planets, in the Kaggle CSV layout.

Each star gets: a ``batman`` transit model (positives: Rp/R★ 0.02–0.2, impact parameter to 0.95,
main-sequence and evolved hosts, mildly eccentric orbits, 15% with a second planet; every host's
planet passes Kepler's MES ≥ 7.1 against the star's own noise on the transit's time scale, with two
transits at least, because a survey's label set is its detections) or, for a share
of the negatives, an eclipsing binary (V-shaped grazing primaries, secondaries at phase 0.5,
ellipsoidal modulation) that a naive dip detector confuses with a planet, or a background EB diluted
to a planet-like depth; rotational modulation by evolving spots; p-mode pulsations; granulation as
red (AR(1)) noise; white noise set by the star's brightness; M-dwarf flares; Kepler systematics (a
slow drift, thermal-settling ramps after data gaps, small momentum-dump jumps, sudden sensitivity
drops, isolated low points) and gaps filled by linear interpolation, as in the Kaggle set. 3,197
cadences at 29.4 min (65.3 d). The populations are deliberately wide (amplitudes, time scales,
noise levels, false-positive kinds) so that a model trained on them learns transits rather than
this simulator; :mod:`.independent` is the separate generator that checks it.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from ..core.io import atomic_path

CADENCE_DAYS = 29.4244 / 60 / 24
N_POINTS = 3197


def _batman_flux(t, t0, period, rp, a, inc, u, ecc=0.0, w=90.0):
    import batman

    params = batman.TransitParams()
    params.t0, params.per, params.rp, params.a, params.inc = t0, period, rp, a, inc
    params.ecc, params.w, params.u, params.limb_dark = ecc, w, list(u), "quadratic"
    m = batman.TransitModel(params, t, supersample_factor=3, exp_time=CADENCE_DAYS)
    return m.light_curve(params), params, m


def _a_over_rs(period_days, rho_sun_units):
    # Kepler's third law for a star of density rho (solar units): a/R* = 4.2 P^(2/3) rho^(1/3)
    return 4.206 * period_days ** (2 / 3) * rho_sun_units ** (1 / 3)


#: Kepler's detection threshold on the multiple-event statistic: the planets of Kepler's label set
#: (TCEs, then KOIs) all passed it, so simulated positives do too.
MIN_MES = 7.1
#: the longest trend a transit search is assumed to remove (days): the noise a transit competes
#: with is the star's noise after a high-pass at this scale (or three transit durations, if longer)
MES_HIGHPASS_DAYS = 1.0


def cdpp(noise: np.ndarray, width: int) -> float:
    """The star's noise on a transit's time scale (Kepler's CDPP): the robust scatter of the
    relative noise series (variability + granulation + white noise, no transit) averaged over
    ``width`` cadences, after a running-median high-pass at max(1 d, 3 widths), the trends any
    transit search removes."""
    from scipy.ndimage import median_filter, uniform_filter1d

    width = max(int(width), 1)
    size = max(int(round(MES_HIGHPASS_DAYS / CADENCE_DAYS)), 3 * width) | 1
    high = noise - median_filter(noise, size=size, mode="nearest")
    avg = uniform_filter1d(high, size=width, mode="nearest")
    return float(1.4826 * np.median(np.abs(avg - np.median(avg))))


def n_events(flux: np.ndarray) -> int:
    """Separate transits (runs of in-transit cadences) in a relative-flux signal."""
    in_transit = flux < 1.0 - 1e-9
    return int(in_transit[0]) + int((in_transit[1:] & ~in_transit[:-1]).sum())


def multiple_event_statistic(flux: np.ndarray, sigma: float | None = None,
                             noise: np.ndarray | None = None) -> float:
    """Depth / noise on the transit's duration × √(transits): the SNR of the transit train summed
    over all events, as Kepler's transiting planet search computes it.

    ``noise`` (the star's relative noise series, without the transit) gives the noise through
    :func:`cdpp`, red noise and residual variability included; ``sigma`` alone assumes white noise
    (σ / √cadences in transit), which overstates the detectability of a transit on a star with
    granulation or fast variability.
    """
    in_transit = flux < 1.0 - 1e-9
    if not in_transit.any():
        return 0.0
    depth = float(1.0 - flux[in_transit].mean())
    n_cad = int(in_transit.sum())
    if noise is None:
        return depth / float(sigma) * float(np.sqrt(n_cad))
    n_tr = n_events(flux)
    width = max(1, int(round(n_cad / n_tr)))
    return depth / max(cdpp(noise, width), 1e-12) * float(np.sqrt(n_tr))


def planet_signal(t, rng, sigma: float | None = None, min_mes: float = MIN_MES,
                  tries: int = 50, noise: np.ndarray | None = None, hard: bool = False) -> tuple[np.ndarray, dict]:
    """Relative flux (1 = out of transit) of one transiting planet with realistic parameters.

    With the star's relative ``noise`` series (or, cruder, its white-noise ``sigma``), parameters
    are redrawn until the transit train passes Kepler's detection threshold ``min_mes``; if no
    draw does, the most detectable one's radius is scaled up until it passes, so that every
    simulated host is one a survey could have found (its label set is its detections). A
    periodic search needs two transits at least: a planet with one transit in the light curve
    (long period) is never a detection, so such draws are redrawn too.

    ``hard``: a large planet (Rp/R★ 0.06–0.2) at high impact parameter (0.6 to grazing), whose
    deep, V-shaped transit a classifier most easily takes for an eclipsing binary (training
    injections can oversample them, ``inject_hard_prob``: off by default, since 15% of them changed
    nothing on the validation sets; the simulator's own hosts never use this).
    """
    best = None
    for _ in range(tries):
        flux, meta = _draw_planet(t, rng, hard=hard)
        if sigma is None and noise is None:
            meta["mes"] = float("nan")
            return flux, meta
        meta["mes"] = multiple_event_statistic(flux, sigma, noise)
        if n_events(flux) < 2:
            continue
        if meta["mes"] >= min_mes:
            return flux, meta
        if best is None or meta["mes"] > best[1]["mes"]:
            best = (flux, meta)
    if best is None:  # no draw with two transits (cannot happen with periods <= 40 d in practice)
        return flux, meta
    flux, meta = best
    # the depth is ~ (Rp/R*)^2: deepen the transit by the missing factor (a larger planet)
    scale = min(1.05 * min_mes / max(meta["mes"], 1e-3), 1.0 / max(1 - flux.min(), 1e-6) * 0.5)
    flux = 1 - (1 - flux) * scale
    meta["mes"] = multiple_event_statistic(flux, sigma, noise)
    meta["depth"] = float(1 - flux.min())
    meta["scaled"] = float(scale)
    return flux, meta


def _draw_planet(t, rng, hard: bool = False) -> tuple[np.ndarray, dict]:
    period = float(np.exp(rng.uniform(np.log(0.5), np.log(40.0))))
    # main-sequence hosts, and 15% evolved ones (low density: long transits)
    if rng.random() < 0.85:
        rho = float(np.exp(rng.normal(0, 0.45)))
    else:
        rho = float(np.exp(rng.uniform(np.log(0.03), np.log(0.4))))
    ecc = float(min(rng.rayleigh(0.08), 0.5))
    a = max(_a_over_rs(period, rho), 2.0 / (1 - ecc))
    if hard:
        rp = float(np.exp(rng.uniform(np.log(0.06), np.log(0.2))))
        b = rng.uniform(0.6, 1.0 + 0.5 * rp)  # up to half-grazing: the planet still covers part of the star
    else:
        rp = float(np.exp(rng.uniform(np.log(0.02), np.log(0.2))))
        b = rng.uniform(0, 0.95)
    inc = float(np.degrees(np.arccos(b / a)))
    u = (float(np.clip(rng.normal(0.45, 0.1), 0.05, 0.9)), float(np.clip(rng.normal(0.2, 0.08), -0.1, 0.5)))
    t0 = rng.uniform(t[0], t[0] + min(period, t[-1] - t[0]))
    flux, _, _ = _batman_flux(t, t0, period, rp, a, inc, u, ecc=ecc, w=float(rng.uniform(0, 360)))
    return flux, {"kind": "planet", "period": period, "rp_rs": rp, "b": b, "depth": 1 - flux.min()}


def eclipsing_binary_signal(t, rng, background: bool = False) -> tuple[np.ndarray, dict]:
    """Relative flux of an eclipsing binary: deep or grazing (V-shaped) primaries, secondary
    eclipses at phase 0.5, and ellipsoidal variation at half the orbital period.

    ``background``: a background (or hierarchical-triple) eclipsing binary blended with the
    target, its light diluted 10–1000× so that its eclipses have planet-like depths — the
    false positive that depth alone cannot tell from a planet (Kepler's commonest after EBs).
    """
    period = float(np.exp(rng.uniform(np.log(0.4), np.log(25.0))))
    # binaries wider than a few days are not yet tidally circularised: eccentric orbits put the
    # secondary eclipse off phase 0.5 and give the two eclipses different durations
    ecc = float(min(rng.rayleigh(0.1), 0.5)) if period > 2.0 else 0.0
    w = float(rng.uniform(0, 360))
    a = max(_a_over_rs(period, 1.0) * rng.uniform(0.5, 1.5), 2.5 / (1 - ecc))
    ratio = rng.uniform(0.2, 1.0)
    grazing = rng.random() < 0.5
    b = rng.uniform(0.9, 1.0 + ratio * 0.8) if grazing else rng.uniform(0, 0.7)
    inc = float(np.degrees(np.arccos(min(b / a, 0.999))))
    t0 = rng.uniform(t[0], t[0] + min(period, t[-1] - t[0]))
    u = (float(rng.uniform(0.2, 0.6)), float(rng.uniform(0.1, 0.35)))
    primary, _, _ = _batman_flux(t, t0, period, ratio, a, inc, u, ecc=ecc, w=w)
    # the secondary eclipse: the same orbit seen from the other star (argument of periastron
    # + 180°), centred half an orbit later plus Sterne's (1939) eccentric offset
    t_sec = t0 + period / 2 * (1 + 4 / np.pi * ecc * np.cos(np.radians(w)))
    secondary, _, _ = _batman_flux(t, t_sec, period, ratio, a, inc, u, ecc=ecc, w=(w + 180) % 360)
    # surface-brightness ratio of the companion, log-uniform: low-mass (M-dwarf) companions are
    # ~100x fainter per area than a Sun-like primary and leave no visible secondary, the EBs that
    # look most like giant planets
    sb = float(np.exp(rng.uniform(np.log(0.003), np.log(1.0))))
    flux = primary - sb * (1 - secondary)
    ellip = rng.uniform(0, 0.004) * np.cos(4 * np.pi * (t - t0) / period)
    flux = flux - ellip
    if background:
        dilution = 1.0 - float(np.exp(rng.uniform(np.log(1e-3), np.log(0.1))))
    else:
        dilution = rng.uniform(0.0, 0.8)  # blended light from a third star shrinks the eclipses
    flux = 1 - (1 - flux) * (1 - dilution)
    return flux, {"kind": "background_eb" if background else "eclipsing_binary", "period": period,
                  "depth": float(1 - flux.min())}


def stellar_noise(t, rng) -> tuple[np.ndarray, float]:
    """Multiplicative stellar variability + white noise; returns (relative flux, white sigma)."""
    n = len(t)
    out = np.ones(n)
    # Rotation: two spot groups whose amplitude and phase wander as spots grow and decay
    # (random walks smoothed over a spot lifetime of 2-60 d)
    if rng.random() < 0.7:
        prot = float(np.exp(rng.uniform(np.log(0.5), np.log(40.0))))
        amp = float(np.exp(rng.uniform(np.log(1e-4), np.log(3e-2))))
        life = float(np.exp(rng.uniform(np.log(2.0), np.log(60.0))))
        lam = np.exp(-CADENCE_DAYS / life)

        def wander(scale):
            walk = lfilter([np.sqrt(1 - lam ** 2)], [1, -lam], rng.normal(size=n))
            return scale * walk

        env = np.clip(1 + wander(0.4), 0.1, None)
        out += amp * env * (np.sin(2 * np.pi * t / prot + rng.uniform(0, 6.3) + wander(1.0))
                            + 0.4 * np.sin(4 * np.pi * t / prot + rng.uniform(0, 6.3) + wander(1.0)))
    # Granulation: AR(1) red noise with a timescale of hours.
    tau = float(np.exp(rng.uniform(np.log(0.03), np.log(1.0))))
    phi = np.exp(-CADENCE_DAYS / tau)
    gran_sigma = float(np.exp(rng.uniform(np.log(1e-5), np.log(5e-4))))
    out += lfilter([np.sqrt(1 - phi ** 2) * gran_sigma], [1, -phi], rng.normal(size=n))
    # p-mode pulsations (δ Scuti / γ Dor stars): periods from 40 min to 10 h
    if rng.random() < 0.05:
        for _ in range(rng.integers(1, 5)):
            out += float(np.exp(rng.uniform(np.log(5e-5), np.log(4e-3)))) * np.sin(
                2 * np.pi * t / rng.uniform(0.03, 0.4) + rng.uniform(0, 6.3))
    # Flares: fast rise, exponential decay (M dwarfs flare often).
    if rng.random() < 0.15:
        for _ in range(rng.poisson(4)):
            tf = rng.uniform(t[0], t[-1])
            amp = float(np.exp(rng.uniform(np.log(1e-3), np.log(5e-2))))
            decay = rng.uniform(0.01, 0.08)
            dt = t - tf
            rise = np.exp(np.minimum(dt, 0) / 0.003)
            out += amp * np.where(dt >= 0, np.exp(-np.maximum(dt, 0) / decay), rise)
    sigma = float(np.exp(rng.uniform(np.log(4e-5), np.log(2e-3))))
    return out * (1 + rng.normal(0, sigma, n)), sigma


def systematics(t, flux, rng) -> np.ndarray:
    """Kepler-like instrumental effects; gaps are filled by linear interpolation afterwards."""
    n = len(t)
    span = t[-1] - t[0]
    x = (t - t[0]) / span
    flux = flux * (1 + rng.normal(0, 3e-3) * x + rng.normal(0, 2e-3) * x ** 2)
    # Monthly data downlinks: ~1 day gaps followed by a thermal-settling ramp.
    gap_mask = np.zeros(n, bool)
    for start in np.arange(t[0] + rng.uniform(25, 32), t[-1], rng.uniform(28, 33)):
        length = rng.uniform(0.5, 1.5)
        gap = (t >= start) & (t < start + length)
        gap_mask |= gap
        after = t >= start + length
        ramp = rng.uniform(1e-4, 3e-3) * np.exp(-(t - start - length) / rng.uniform(0.2, 1.0))
        flux = flux * (1 - np.where(after, ramp, 0))
    # Reaction-wheel momentum dumps every ~3 days: small step discontinuities for one cadence.
    for td in np.arange(t[0] + rng.uniform(0, 3), t[-1], 3.0):
        i = np.searchsorted(t, td)
        if i < n:
            flux[i] *= 1 + rng.normal(0, 5e-4)
    # Sudden sensitivity drops with a slow recovery (Kepler's SPSDs, after cosmic-ray hits on
    # the detector): single dip-like events a transit search must learn to reject.
    for _ in range(rng.poisson(0.6)):
        ts = rng.uniform(t[0], t[-1])
        drop = float(np.exp(rng.uniform(np.log(5e-5), np.log(3e-3))))
        flux = flux * (1 - np.where(t >= ts, drop * np.exp(-(t - ts) / rng.uniform(0.2, 4.0)), 0.0))
    # Isolated low points (unflagged momentum dumps, impulsive outliers)
    low = rng.random(n) < rng.uniform(0, 5e-4)
    flux[low] *= 1 - rng.uniform(2e-4, 3e-3, low.sum())
    # Random short gaps (cosmic rays, safe modes).
    for _ in range(rng.poisson(3)):
        i = rng.integers(0, n - 20)
        gap_mask[i:i + rng.integers(1, 20)] = True
    if gap_mask.any() and (~gap_mask).sum() > 2:
        idx = np.arange(n)
        flux[gap_mask] = np.interp(idx[gap_mask], idx[~gap_mask], flux[~gap_mask])
    return flux


CHUNK = 500
#: hosts with a second transiting planet (Kepler: ~20-30% of candidate hosts are multis)
MULTI_FRACTION = 0.15
#: Eclipsing binaries among Kepler targets: 2,878 in the Kepler EB catalogue out of 201,775 targets
#: (Kirk et al. 2016, AJ 151, 68), i.e. ~1.4%.
EB_FRACTION = 0.014
#: Background / hierarchical eclipsing binaries diluted to planet-like depths: roughly a third of
#: Kepler's planet candidates with a measured false-positive cause (Fressin et al. 2013 give
#: ~10% of candidates overall), i.e. ~0.5% of stars at the survey's candidate rate
BEB_FRACTION = 0.005


def simulate_light_curves(n: int, seed: int = 0, positive_fraction: float = 0.015,
                          eb_fraction: float = EB_FRACTION, n_points: int = N_POINTS, workers: int | None = None,
                          beb_fraction: float = BEB_FRACTION):
    """Return (flux ``(n, n_points)`` in e-/s, labels ``(n,)`` 1 = planet host, info list).

    Stars are made in chunks of 500 with independent seeds, in parallel processes when there are
    several chunks; the result depends only on ``(n, seed)``, not on the number of workers.
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    sizes = [min(CHUNK, n - i) for i in range(0, n, CHUNK)]
    seeds = np.random.SeedSequence(seed).spawn(len(sizes))
    args = [(k, s, positive_fraction, eb_fraction, n_points, beb_fraction) for k, s in zip(sizes, seeds)]
    workers = workers or min(len(sizes), os.cpu_count() or 1)
    from ..core.parallel import pool_context

    ctx = pool_context()  # None: an unguarded script or a daemonic worker, so no child processes
    if workers > 1 and len(sizes) > 1 and ctx is not None:
        from concurrent.futures import ProcessPoolExecutor

        # forkserver: forking a process that already runs OpenMP threads (numba, torch) can hang
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            parts = list(pool.map(_simulate_chunk, *zip(*args)))
    else:
        parts = [_simulate_chunk(*a) for a in args]
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            [i for p in parts for i in p[2]])


def _simulate_chunk(n, seed, positive_fraction, eb_fraction, n_points, beb_fraction=BEB_FRACTION):
    rng = np.random.default_rng(seed)
    t = np.arange(n_points) * CADENCE_DAYS + rng.uniform(130, 1500)
    labels = np.zeros(n, dtype=np.int64)
    n_pos = max(1, int(round(n * positive_fraction))) if n >= 20 else int(rng.random() < positive_fraction)
    labels[rng.choice(n, size=n_pos, replace=False)] = 1
    flux = np.empty((n, n_points))
    info = []
    for i in range(n):
        rel, _ = stellar_noise(t, rng)
        if labels[i] == 1:
            # detectable against the star's own noise on the transit's time scale (red noise and
            # variability included), as Kepler's MES is: a planet below it would not be a TCE
            sig, meta = planet_signal(t, rng, noise=rel - 1.0)
            if rng.random() < MULTI_FRACTION:  # a second planet, detectable or not
                sig = sig * planet_signal(t, rng)[0]
        elif (u := rng.random()) < eb_fraction + beb_fraction:
            sig, meta = eclipsing_binary_signal(t, rng, background=u >= eb_fraction)
        else:
            sig, meta = np.ones(n_points), {"kind": "none"}
        rel = systematics(t, rel * sig, rng)
        baseline = float(np.exp(rng.uniform(np.log(2e3), np.log(2e5))))
        flux[i] = baseline * rel
        info.append(meta)
    return flux, labels, info


def write_kaggle_csv(path: str | Path, flux: np.ndarray, labels: np.ndarray | None) -> Path:
    """Write the Kaggle "Kepler labelled time series" layout: ``LABEL,FLUX.1..FLUX.N`` (2 = planet)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = Path(path)
    cols, names = [], []
    if labels is not None:
        cols.append(pa.array(np.where(np.asarray(labels) == 1, 2, 1)))
        names.append("LABEL")
    rounded = np.round(flux, 2)
    for j in range(flux.shape[1]):
        cols.append(pa.array(rounded[:, j]))
        names.append(f"FLUX.{j + 1}")
    with atomic_path(path) as tmp:
        # the header is written by hand: pyarrow quotes column names, the Kaggle files do not
        with open(tmp, "wb") as fh:
            fh.write((",".join(names) + "\n").encode())
            pacsv.write_csv(pa.table(cols, names=names), fh,
                            write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return path


def simulate(out: str | Path, n: int = 2000, seed: int = 0, positive_fraction: float = 0.015) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    flux, labels, _ = simulate_light_curves(n, seed, positive_fraction)
    return write_kaggle_csv(out / "exoTrain.csv", flux, labels)
