"""An independent light-curve generator, for evaluation only: a different code path with different
physics choices from :mod:`.simulate` (which trains the models), so that a score on it measures
what a model learnt about transits rather than about one simulator.

Nothing here is imported from :mod:`.simulate` except the cadence grid and the CSV writer (the
Kaggle layout is the interface both must share). The choices, side by side:

===========================  ==================================  =====================================
                             training simulator (simulate.py)    this generator
===========================  ==================================  =====================================
transit shape                batman (Mandel–Agol, quadratic LD)  trapezoid from the Winn (2010)
                                                                 T14/T23 durations, a parabolic
                                                                 limb-darkened bottom, integrated
                                                                 over the 29.4-min exposure here
planet population            P 0.5–40 d log-uniform, Rp/R★       P 0.6–35 d log-uniform, Rp/R★ from
                             0.02–0.2 log-uniform, 15% evolved    a power law dN/dk ∝ k^-1.5 on
                             hosts, 15% multis; MES ≥ 7.1         0.015–0.2, 20% subgiant hosts
                             against the star's noise averaged    (longer transits), eccentric orbits
                             over the transit (after a 1-d        (Rayleigh σ_e 0.1), 20% of hosts
                             median high-pass), ≥ 2 transits      with a second planet; SNR ≥ 7.5
                                                                 against the star's CDPP on the
                                                                 transit's time scale (variability
                                                                 included)
stellar variability          two-harmonic spot sinusoids with a  Gaussian-process draws by spectral
                             sinusoidal envelope; AR(1)          synthesis: quasi-periodic rotation
                             granulation                         (Lorentzians at f_rot and 2 f_rot,
                                                                 width from a 3–60 d spot lifetime),
                                                                 Harvey-profile granulation (red
                                                                 noise), δ Scuti pulsations in 5%
noise                        white σ log-uniform                 photon + read noise from a Kepler
                                                                 magnitude Kp 9–16.5
eclipsing binaries           batman primaries and secondaries    trapezoid eclipses, eccentric orbits
                             (eccentric above 2 d, Sterne        (secondary off phase 0.5), grazing
                             offset), companion surface          V shapes, ellipsoidal + reflection +
                             brightness log-uniform 0.003–1,     Doppler beaming; 2.5% of stars
                             ellipsoidal cos 4π
background EBs / triples     diluted 10–1000× (0.5%)             diluted 20–3000× (2%) incl.
                                                                 hierarchical triples
systematics                  linear + quadratic drift, ramps     sinusoidal thermal/pointing drift,
                             after gaps, momentum-dump jumps,    sudden pixel-sensitivity dropouts
                             gaps interpolated                   (step + exponential recovery),
                                                                 cosmic rays, single low outliers,
                                                                 gaps left as NaN (missing values)
flares                       exponential, 15% of stars           Davenport (2014) template, 10%
===========================  ==================================  =====================================
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .simulate import CADENCE_DAYS, N_POINTS, write_kaggle_csv

POSITIVE_FRACTION = 0.015
EB_FRACTION = 0.025
BEB_FRACTION = 0.02


# ---- noise and variability -----------------------------------------------------------------------
def _spectral_draw(n: int, psd, rng: np.random.Generator) -> np.ndarray:
    """A stationary Gaussian process with power spectral density ∝ ``psd(f)`` (f in 1/day), drawn
    by spectral synthesis on twice the span so that it does not wrap around; arbitrary scale."""
    m = 2 * n
    f = np.fft.rfftfreq(m, d=CADENCE_DAYS)
    spec = np.sqrt(np.maximum(psd(f), 0.0)) * (rng.normal(size=len(f)) + 1j * rng.normal(size=len(f)))
    spec[0] = 0.0
    return np.fft.irfft(spec, n=m)[:n]


def _scaled(x: np.ndarray, rms: float) -> np.ndarray:
    s = np.std(x)
    return x * (rms / s) if s > 0 else x


def stellar_signal(t: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    n = len(t)
    out = np.zeros(n)
    meta: dict = {}
    if rng.random() < 0.75:
        prot = float(np.exp(rng.uniform(np.log(0.3), np.log(45.0))))
        life = float(np.exp(rng.uniform(np.log(3.0), np.log(60.0))))
        gamma = 1.0 / (np.pi * life)
        f0 = 1.0 / prot

        def rot_psd(f, f0=f0, gamma=gamma):
            lor = lambda fc: gamma / ((f - fc) ** 2 + gamma ** 2)  # noqa: E731
            return lor(f0) + 0.3 * lor(2 * f0)

        rms = float(np.exp(rng.uniform(np.log(5e-5), np.log(2e-2))))
        out += _scaled(_spectral_draw(n, rot_psd, rng), rms)
        meta["prot"] = prot
    tau = float(np.exp(rng.uniform(np.log(0.02), np.log(0.8))))
    out += _scaled(_spectral_draw(n, lambda f: 1.0 / (1.0 + (2 * np.pi * f * tau) ** 4), rng),
                   float(np.exp(rng.uniform(np.log(1e-5), np.log(4e-4)))))
    if rng.random() < 0.05:  # δ Scuti pulsator
        for _ in range(rng.integers(2, 6)):
            out += float(np.exp(rng.uniform(np.log(1e-4), np.log(5e-3)))) * np.sin(
                2 * np.pi * t / rng.uniform(0.02, 0.3) + rng.uniform(0, 2 * np.pi))
    if rng.random() < 0.10:  # flares, Davenport et al. (2014) template
        for _ in range(rng.poisson(5)):
            out += _davenport(t, rng.uniform(t[0], t[-1]), rng.uniform(0.005, 0.05),
                              float(np.exp(rng.uniform(np.log(5e-4), np.log(3e-2)))))
    return out, meta


def _davenport(t, tpeak, fwhm, amp):
    x = (t - tpeak) / fwhm
    rise = 1 + 1.941 * x - 0.175 * x ** 2 - 2.246 * x ** 3 - 1.125 * x ** 4
    xp = np.maximum(x, 0.0)
    decay = 0.6890 * np.exp(-1.600 * xp) + 0.3030 * np.exp(-0.2783 * xp)
    return amp * np.where((x > -1) & (x <= 0), np.clip(rise, 0, None), np.where(x > 0, decay, 0.0))


def white_sigma(rng: np.random.Generator) -> tuple[float, float]:
    """Relative noise per 29.4-min cadence from photon and read noise at Kepler magnitude Kp."""
    kp = rng.uniform(9.0, 16.5)
    electrons = 1.74e5 * 10 ** (-0.4 * (kp - 12)) * 1765.5  # Kepler: ~1.74e5 e-/s at Kp 12, 29.4 min
    read = 120.0 * np.sqrt(25 * 270)  # ~25 pixels, 270 reads of ~120 e-
    sigma = float(np.sqrt(electrons + read ** 2) / electrons) * rng.uniform(1.0, 1.6)
    return sigma, electrons / 1765.5


# ---- eclipses ---------------------------------------------------------------------------------------
def _trapezoid(t, t0, period, depth, t14, t23, curvature=0.0, ecc_shift=0.0, n_sub=5):
    """Fractional flux loss of a trapezoidal eclipse train, averaged over the exposure."""
    off = (np.arange(n_sub) + 0.5) / n_sub - 0.5
    tt = t[:, None] + off[None, :] * CADENCE_DAYS
    dt = np.abs(((tt - t0 - ecc_shift) + period / 2) % period - period / 2)
    t14, t23 = max(t14, 1e-4), min(max(t23, 0.0), t14)
    ingress = max((t14 - t23) / 2, 1e-5)
    shape = np.clip((t14 / 2 - dt) / ingress, 0.0, 1.0)
    # limb darkening: the flat bottom of a trapezoid bowed into a parabola
    inner = np.clip(1 - (dt / max(t14 / 2, 1e-5)) ** 2, 0, 1)
    loss = depth * shape * (1 - curvature + curvature * 1.5 * inner)
    return loss.mean(axis=1)


def _durations(period, a_rs, k, b, ecc=0.0, omega=np.pi / 2):
    """Winn (2010) total (T14) and flat (T23) durations; T23 = 0 for a grazing eclipse."""
    inc = np.arccos(min(b / a_rs, 1.0))
    factor = np.sqrt(1 - ecc ** 2) / (1 + ecc * np.sin(omega))
    arg14 = np.sqrt(max((1 + k) ** 2 - b ** 2, 0.0)) / (a_rs * np.sin(inc))
    arg23 = np.sqrt(max((1 - k) ** 2 - b ** 2, 0.0)) / (a_rs * np.sin(inc))
    t14 = period / np.pi * np.arcsin(min(arg14, 1.0)) * factor
    t23 = period / np.pi * np.arcsin(min(arg23, 1.0)) * factor if b < 1 - k else 0.0
    return t14, t23


def _a_rs(period, rho):
    return (6.67e-11 * rho * 1408.0 * (period * 86400) ** 2 / (3 * np.pi)) ** (1 / 3)


def _cdpp(noise: np.ndarray, width: int) -> float:
    """Scatter of the star's noise (variability + white) averaged over ``width`` cadences after a
    high-pass at three widths: the noise a transit of that duration competes with (Kepler's CDPP)."""
    from scipy.ndimage import uniform_filter1d

    width = max(int(width), 1)
    high = noise - uniform_filter1d(noise, size=3 * width, mode="nearest")
    return float(np.std(uniform_filter1d(high, size=width, mode="nearest")))


def planet_loss(t, rng, noise) -> tuple[np.ndarray, dict]:
    """A transiting planet that a survey would detect: its SNR against the star's own noise on the
    transit's time scale (``noise``: the relative variability + white noise series) is ≥ 7.5."""
    for _ in range(60):
        period = float(np.exp(rng.uniform(np.log(0.6), np.log(35.0))))
        rho = float(np.exp(rng.normal(0, 0.3))) if rng.random() < 0.8 else float(rng.uniform(0.05, 0.3))
        u = rng.random()
        k = float((0.015 ** -0.5 - u * (0.015 ** -0.5 - 0.2 ** -0.5)) ** -2)  # dN/dk ∝ k^-1.5
        b = float(rng.uniform(0, 0.95))
        ecc = float(min(rng.rayleigh(0.1), 0.6))
        omega = float(rng.uniform(0, 2 * np.pi))
        a = max(_a_rs(period, rho), 1.5)
        t14, t23 = _durations(period, a, k, b, ecc, omega)
        mu = np.sqrt(max(1 - b ** 2, 0.0))
        u1 = rng.uniform(0.3, 0.6)
        depth = k ** 2 * (1 - u1 * (1 - mu)) / (1 - u1 / 3)
        t0 = rng.uniform(t[0], t[0] + min(period, t[-1] - t[0]))
        loss = _trapezoid(t, t0, period, depth, t14, t23, curvature=0.3)
        in_tr = loss > 0.5 * depth
        n_tr = len(np.unique(np.round((t[in_tr] - t0) / period))) if in_tr.any() else 0
        snr = depth / max(_cdpp(noise, round(t14 / CADENCE_DAYS)), 1e-9) * np.sqrt(n_tr)
        if snr >= 7.5:
            break
    return loss, {"kind": "planet", "period": period, "depth": depth, "snr": snr, "b": b, "k": k, "rho": rho,
                  "t14": t14, "t0": t0, "n_transits": n_tr}


def binary_loss(t, rng, dilution: float) -> tuple[np.ndarray, dict]:
    """Eclipses and out-of-eclipse modulation of a binary, with its light diluted by ``dilution``
    (the fraction of the total light from other stars: 0 for the target itself)."""
    period = float(np.exp(rng.uniform(np.log(0.3), np.log(30.0))))
    q = float(rng.uniform(0.2, 1.0))  # mass and radius ratio
    a = max(_a_rs(period, float(np.exp(rng.normal(0, 0.4)))) * (1 + q) ** (1 / 3), 2.2)
    k = q ** 0.9
    b = float(rng.uniform(0, 1 + k))
    ecc = float(min(rng.rayleigh(0.08), 0.5)) if period > 2 else 0.0
    omega = float(rng.uniform(0, 2 * np.pi))
    t14, t23 = _durations(period, a, k, min(b, 1 + k - 1e-3), ecc, omega)
    overlap = float(np.clip((1 + k - b) / (2 * k), 0, 1)) * min(k * k, 1.0)
    sb = float(q ** 3.5)  # surface brightness ratio ~ main-sequence luminosity / area
    l2 = sb * k * k
    depth1 = overlap / (1 + l2)
    depth2 = overlap * sb / (1 + l2)
    t0 = rng.uniform(t[0], t[0] + period)
    shift = period * 2 / np.pi * ecc * np.cos(omega)  # Sterne's secondary-eclipse offset
    loss = _trapezoid(t, t0, period, depth1, t14, t23, curvature=0.15)
    loss += _trapezoid(t, t0 + period / 2, period, depth2, t14, t23, curvature=0.15, ecc_shift=shift)
    phi = 2 * np.pi * (t - t0) / period
    ell = q * (1 / a) ** 3 * rng.uniform(0.5, 1.5)
    refl = 0.5 * sb * k * k * (1 / a) ** 2
    beam = 2e-4 * rng.uniform(0, 1) * q
    loss += ell * np.cos(2 * phi) - refl * np.cos(phi) - beam * np.sin(phi)
    loss *= 1 - dilution
    return loss, {"kind": "background_eb" if dilution > 0.9 else "eclipsing_binary", "period": period,
                  "depth": float(loss.max())}


# ---- instrument ----------------------------------------------------------------------------------
def instrument(t, rng) -> tuple[np.ndarray, np.ndarray]:
    """(multiplicative systematics, gap mask)."""
    n = len(t)
    x = (t - t[0]) / (t[-1] - t[0])
    sys = 1 + rng.normal(0, 2e-3) * (x - 0.5) + rng.normal(0, 5e-4) * np.sin(2 * np.pi * t / rng.uniform(2, 15))
    for _ in range(rng.poisson(1.0)):  # sudden pixel-sensitivity dropouts
        ts = rng.uniform(t[0], t[-1])
        drop = float(np.exp(rng.uniform(np.log(1e-4), np.log(2e-3))))
        sys *= 1 - np.where(t >= ts, drop * np.exp(-(t - ts) / rng.uniform(0.3, 3.0)), 0.0)
    gaps = np.zeros(n, bool)
    for start in np.arange(t[0] + rng.uniform(10, 20), t[-1], rng.uniform(25, 35)):
        gaps |= (t >= start) & (t < start + rng.uniform(0.3, 1.2))
    for _ in range(rng.poisson(4)):
        i = int(rng.integers(0, n - 10))
        gaps[i:i + int(rng.integers(1, 10))] = True
    return sys, gaps


def independent_light_curves(n: int, seed: int = 0, positive_fraction: float = POSITIVE_FRACTION,
                             n_points: int = N_POINTS):
    """(flux ``(n, n_points)`` in e-/s with NaN gaps, labels ``(n,)`` 1 = planet host, info)."""
    rng = np.random.default_rng([seed, 20240519])
    t = np.arange(n_points) * CADENCE_DAYS + rng.uniform(100, 1400)
    labels = np.zeros(n, np.int64)
    n_pos = max(1, int(round(n * positive_fraction))) if n >= 20 else int(rng.random() < positive_fraction)
    labels[rng.choice(n, size=n_pos, replace=False)] = 1
    flux = np.empty((n, n_points))
    info = []
    for i in range(n):
        sigma, rate = white_sigma(rng)
        var, _ = stellar_signal(t, rng)
        loss = np.zeros(n_points)
        if labels[i]:
            noise = var + rng.normal(0, sigma, n_points)
            loss, meta = planet_loss(t, rng, noise)
            if rng.random() < 0.2:
                loss2, _ = planet_loss(t, rng, noise)
                loss = loss + loss2
        else:
            u = rng.random()
            if u < EB_FRACTION:
                loss, meta = binary_loss(t, rng, float(rng.uniform(0, 0.7)))
            elif u < EB_FRACTION + BEB_FRACTION:
                loss, meta = binary_loss(t, rng, 1 - float(np.exp(rng.uniform(np.log(3e-4), np.log(0.05)))))
            else:
                meta = {"kind": "none"}
        sys, gaps = instrument(t, rng)
        if meta["kind"] == "planet":
            # transits with at least one cadence outside the gaps: the label rule above counts
            # transits before the gaps are cut (kept as it is; this is for the detectability check)
            half = meta["t14"] / 2
            dt = (t - meta["t0"] + meta["period"] / 2) % meta["period"] - meta["period"] / 2
            seen = (np.abs(dt) < half) & ~gaps
            n_obs = len(np.unique(np.round((t[seen] - meta["t0"]) / meta["period"])))
            meta["n_transits_observed"] = n_obs
            meta["mes_observed"] = float(meta["snr"] * np.sqrt(n_obs / max(meta["n_transits"], 1)))
        rel = (1 + var) * (1 - loss) * sys + rng.normal(0, sigma, n_points)
        cr = rng.random(n_points) < 2e-3  # cosmic rays
        rel[cr] += rng.uniform(3, 30, cr.sum()) * sigma
        low = rng.random(n_points) < 3e-4  # unflagged low points (e.g. after momentum dumps)
        rel[low] -= rng.uniform(3, 10, low.sum()) * sigma
        rel[gaps] = np.nan
        flux[i] = rel * rate * 1765.5 / 30  # roughly e-/s per 29.4-min cadence sum, any unit works
        info.append(meta)
    return flux, labels, info


#: Kepler's detection threshold on the multiple-event statistic (Jenkins et al. 2010)
KEPLER_MIN_MES = 7.1


def detectable(info: list[dict]) -> np.ndarray:
    """Which stars of :func:`independent_light_curves` host a planet Kepler's pipeline could have
    detected: this generator's own SNR (depth over its CDPP on the transit's time scale, variability
    included), counted over the transits that fall outside the gaps, ≥ 7.1 (Kepler's MES threshold),
    with ≥ 2 such transits. The labels themselves stay as generated (SNR ≥ 7.5 before the gaps, no
    transit count): this is the published criterion for a second, detection-limited score."""
    return np.array([m.get("kind") == "planet" and m.get("mes_observed", 0.0) >= KEPLER_MIN_MES
                     and m.get("n_transits_observed", 0) >= 2 for m in info])


def simulate_independent(out: str | Path, n: int = 3000, seed: int = 0,
                         positive_fraction: float = POSITIVE_FRACTION) -> Path:
    """Write an independent test set as ``out/exoTest.csv`` (Kaggle layout)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    flux, labels, _ = independent_light_curves(n, seed, positive_fraction)
    return write_kaggle_csv(out / "exoTest.csv", flux, labels)
