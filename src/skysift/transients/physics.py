"""The physics of the PLAsTiCC-format simulator: model parameters and noiseless light curves.

Every object is a model with a few physical parameters, observed through an LSST-like cadence:

* **Extragalactic transients** (SN Ia, Ia-91bg, Iax, II, Ibc, SLSN-I, TDE, kilonova, and the
  open-set class 99): a rest-frame light-curve shape ``L(τ)`` (Bazin rise/fall with a radioactive
  tail, a II-P plateau, a TDE ``t^-5/3`` power law), normalised to a peak absolute AB magnitude at
  rest-frame 445 nm (B), and a blackbody colour temperature ``T(τ)``. An observed band of effective
  wavelength λ samples the rest-frame SED at λ/(1+z), time is dilated by (1+z), and the flux is
  dimmed by the distance modulus of ``astropy.cosmology`` (flat ΛCDM, H0=70, Ωm=0.3).
* **AGN**: a power-law continuum varying as a damped random walk in magnitude, one process per band,
  correlated across bands, with larger amplitude in bluer rest-frame bands.
* **Galactic variables** (RR Lyrae, eclipsing binaries, Miras, M-dwarf flares, microlensing): a
  quiescent star (blackbody colours) whose temperature, eclipsed area, flares or lensing
  magnification change with time. The survey measures *difference* fluxes against a template, so
  these objects show both positive and negative fluxes and a Poisson noise term from the whole star.

Milky Way dust dims each band by ``R_b · E(B-V)`` (Schlafly & Finkbeiner 2011). Noise is a per-band
sky floor (lower in deep-drilling fields) plus a source Poisson term; ``detected`` follows the
detection efficiency of the PLAsTiCC release (50 % at |flux/flux_err| ≈ 5.5). As in the PLAsTiCC
training set, an object enters the sample only with at least two detections, so parameters are
redrawn until enough objects of each class pass.

Numbers that were read off the real PLAsTiCC training set (observations per band, noise floors,
redshift quantiles, class counts, DDF fractions) are marked in comments; everything else comes from
the cited astrophysics. Units: ``mjd`` [d], fluxes in FLUXCAL (zero point 27.5 AB mag), λ [nm], T [K].
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .data import CLASSES, EXTRAGALACTIC_CLASSES, GALACTIC_CLASSES, PASSBAND_WAVELENGTH_NM, UNKNOWN_CLASS

#: MJD range of the PLAsTiCC training light curves (3 years of LSST)
SURVEY_START, SURVEY_END = 59580.0, 60675.0
ZERO_POINT = 27.5
#: A_λ / E(B-V) of the LSST bands u..y (Schlafly & Finkbeiner 2011, R_V = 3.1)
EXTINCTION_RV = np.array([4.145, 3.237, 2.273, 1.684, 1.323, 1.088])
LAMBDA_NM = np.asarray(PASSBAND_WAVELENGTH_NM, dtype=float)
REST_REF_NM = 445.0  # rest-frame B: the reference wavelength of extragalactic absolute magnitudes
STAR_REF_NM = 622.2  # r band: the reference wavelength of stars' apparent magnitudes

HC_OVER_K_NM_K = 1.4387769e7  # h c / k_B in nm K

#: parameter columns of truth.csv (NaN where a class does not use one); with ``target``, ``true_z``
#: and ``mwebv`` they determine the noiseless light curve (see :func:`model_flux`)
PARAM_COLUMNS = (
    "submodel", "t0", "peak_absmag", "ref_mag", "rise", "fall", "tail", "tail_frac", "plateau",
    "t_peak", "t_late", "t_cool", "host_ebv", "uv_cut", "bump", "stretch", "colour", "period",
    "amplitude", "t2", "radius_ratio", "eclipse_area", "eclipse_width", "eclipse_shape", "u0",
    "blend", "flare_rate", "tau_drw", "sf_inf", "drw_corr", "model_seed")


# ---------------------------------------------------------------------------------------------
# physics helpers
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _distmod_grid() -> tuple[np.ndarray, np.ndarray]:
    from astropy.cosmology import FlatLambdaCDM

    # astropy integrates the luminosity distance per call (~ms); a log-spaced grid interpolated
    # linearly is accurate to < 1e-4 mag and costs nothing per object
    z = np.geomspace(1e-4, 5.0, 2000)
    return np.log(z), FlatLambdaCDM(H0=70.0, Om0=0.3).distmod(z).value


def distance_modulus(z) -> np.ndarray:
    """μ(z) [mag] in flat ΛCDM (H0 = 70 km/s/Mpc, Ωm = 0.3), for z in [1e-4, 5]."""
    lz, mu = _distmod_grid()
    return np.interp(np.log(np.clip(np.asarray(z, float), 1e-4, 5.0)), lz, mu)


def _log_bnu(lam_nm, temp_k):
    """ln of the Planck function B_ν up to a constant: 3 ln ν − ln(exp(hν/kT) − 1)."""
    x = HC_OVER_K_NM_K / (np.asarray(lam_nm) * np.asarray(temp_k))
    # ln(expm1(x)) = x + ln(1 − e^-x): finite for the x ~ 20-40 of cool stars in the u band
    return -3.0 * np.log(lam_nm) - (x + np.log1p(-np.exp(-x)))


def bb_ratio(lam_nm, temp_k, ref_nm):
    """B_ν(λ, T) / B_ν(λ_ref, T): the colour of a blackbody relative to its reference wavelength."""
    return np.exp(_log_bnu(lam_nm, temp_k) - _log_bnu(ref_nm, temp_k))


def _host_extinction(lam_rest_nm, ebv):
    # A power law A_λ = E(B-V) · 3.1 (λ/551 nm)^-1.3 tracks the Cardelli et al. (1989) R_V=3.1 law
    # to ~10 % over 300-1000 nm; host dust is a nuisance parameter here, a full law adds nothing.
    return 10.0 ** (-0.4 * ebv * 3.1 * (lam_rest_nm / 551.0) ** -1.3)


# ---------------------------------------------------------------------------------------------
# parameter draws per class (each returns arrays of length k)
# ---------------------------------------------------------------------------------------------
#: lognormal redshift distributions (median, σ of ln z): quantiles of true_z in the training set,
#: median raised a little because the detection cut removes the faint high-z tail again
Z_DIST = {90: (0.36, 0.45), 67: (0.24, 0.38), 52: (0.24, 0.5), 42: (0.2, 0.65), 62: (0.19, 0.55),
          95: (1.2, 0.42), 15: (0.23, 0.6), 64: (0.085, 0.5), 88: (0.8, 0.65),
          UNKNOWN_CLASS: (0.3, 0.6)}


def _lognormal(rng, median, sigma, k):
    return median * np.exp(sigma * rng.standard_normal(k))


def _draw_params(cls: int, k: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Physical parameters of ``k`` objects of class ``cls`` (times in rest-frame days)."""
    p: dict[str, np.ndarray] = {c: np.full(k, np.nan) for c in PARAM_COLUMNS}
    p["submodel"] = np.ones(k)
    p["model_seed"] = rng.integers(0, 2**31 - 1, k).astype(float)
    u = lambda lo, hi: rng.uniform(lo, hi, k)  # noqa: E731
    n = lambda mu, sd: rng.normal(mu, sd, k)  # noqa: E731
    if cls in EXTRAGALACTIC_CLASSES or cls == UNKNOWN_CLASS:
        zmed, zsig = Z_DIST[cls]
        z = np.clip(_lognormal(rng, zmed, zsig, k), 0.01, 3.4)
    else:
        z = np.zeros(k)
    # peak / reference times uniform over the survey and a little beyond, so that some transients
    # are seen only on the rise or only in the tail
    p["t0"] = u(SURVEY_START - 40, SURVEY_END + 20)
    p["host_ebv"] = np.zeros(k)
    p["uv_cut"] = np.zeros(k)
    p["bump"] = np.zeros(k)
    p["tail"] = np.full(k, 80.0)
    p["tail_frac"] = np.zeros(k)
    if cls == 90:  # SN Ia, SALT2-like stretch x1 and colour c
        x1, c = n(0, 1), n(0, 0.1)
        s = 1 + 0.09 * x1
        p.update(stretch=x1, colour=c, host_ebv=c, peak_absmag=-19.4 - 0.14 * x1 + n(0, 0.12),
                 rise=3.8 * s, fall=12.0 * s, tail=72 * s, tail_frac=np.full(k, 0.05),
                 t_peak=u(10500, 12500), t_late=u(5500, 6500), t_cool=12 * s,
                 uv_cut=np.full(k, 2.0), bump=u(0.25, 0.5))
    elif cls == 67:  # SN Ia-91bg: faint, fast, red
        p.update(peak_absmag=n(-18.3, 0.35), rise=u(2.0, 2.8), fall=u(7.5, 10.0), tail=u(40, 60),
                 tail_frac=np.full(k, 0.1), t_peak=u(7000, 8000), t_late=u(4200, 5000),
                 t_cool=u(6, 10), uv_cut=np.full(k, 3.0), host_ebv=np.abs(n(0, 0.05)))
    elif cls == 52:  # SN Iax: faint (broad luminosity range), fast
        p.update(peak_absmag=u(-19.0, -16.8), rise=u(2.2, 3.5), fall=u(9, 15), tail=u(50, 90),
                 tail_frac=np.full(k, 0.15), t_peak=u(7500, 9500), t_late=u(4500, 5500),
                 t_cool=u(8, 14), uv_cut=np.full(k, 2.5), host_ebv=rng.exponential(0.08, k))
    elif cls == 42:  # SN II: 1 = II-P (plateau), 2 = IIn (slow, luminous), 3 = II-L (linear)
        sub = rng.choice([1, 2, 3], k, p=[0.55, 0.35, 0.10]).astype(float)
        p["submodel"] = sub
        p.update(peak_absmag=np.where(sub == 1, n(-17.1, 0.8), np.where(sub == 2, n(-18.5, 0.9),
                                                                         n(-17.8, 0.6))),
                 rise=np.where(sub == 1, u(1.5, 3.5), np.where(sub == 2, u(8, 15), u(2.5, 4))),
                 fall=np.where(sub == 1, u(100, 300), np.where(sub == 2, u(30, 80), u(25, 40))),
                 plateau=np.where(sub == 1, u(60, 100), np.nan), tail=np.full(k, 111.3),
                 tail_frac=np.where(sub == 1, u(0.04, 0.12), np.where(sub == 2, 0.0, 0.15)),
                 t_peak=np.where(sub == 2, u(9000, 12000), u(12000, 16000)),
                 t_late=np.where(sub == 2, u(6500, 8000), u(5500, 6500)),
                 t_cool=np.where(sub == 2, u(40, 80), u(10, 20)), uv_cut=np.full(k, 1.5),
                 host_ebv=rng.exponential(0.1, k))
    elif cls == 62:  # SN Ibc: 1 = Ib, 2 = Ic (slightly faster, brighter)
        sub = rng.choice([1, 2], k, p=[0.36, 0.64]).astype(float)
        p["submodel"] = sub
        p.update(peak_absmag=np.where(sub == 1, n(-17.7, 0.6), n(-18.0, 0.7)),
                 rise=np.where(sub == 1, u(3.0, 4.5), u(2.5, 4.0)),
                 fall=np.where(sub == 1, u(11, 17), u(9, 15)), tail=u(60, 100),
                 tail_frac=u(0.05, 0.15), t_peak=u(8000, 10000), t_late=u(4500, 5500),
                 t_cool=u(10, 20), uv_cut=np.full(k, 3.0), host_ebv=rng.exponential(0.15, k))
    elif cls == 95:  # SLSN-I: luminous, slow, blue
        s = _lognormal(rng, 1.0, 0.3, k)
        p.update(peak_absmag=n(-22.2, 0.5), rise=11 * s, fall=45 * s, stretch=s,
                 t_peak=u(14000, 18000), t_late=u(8000, 10000), t_cool=55 * s,
                 uv_cut=np.full(k, 0.5))
    elif cls == 15:  # TDE: hot, constant temperature, t^-5/3 decline
        tt = u(20000, 40000)
        p.update(peak_absmag=n(-19.8, 0.6), rise=u(5, 15), fall=u(6, 20), t_peak=tt, t_late=tt,
                 t_cool=np.full(k, 1.0))
    elif cls == 64:  # kilonova: very fast, cooling quickly from blue to red
        p.update(peak_absmag=n(-15.4, 0.5), rise=u(0.15, 0.4), fall=u(0.8, 2.0),
                 t_peak=u(6500, 9000), t_late=u(1800, 2600), t_cool=u(1.5, 3.0))
    elif cls == UNKNOWN_CLASS:  # 1 = pair-instability SN, 2 = intermediate-luminosity red transient
        sub = rng.choice([1, 2], k).astype(float)
        p["submodel"] = sub
        z = np.where(sub == 2, np.clip(_lognormal(rng, 0.03, 0.5, k), 0.005, 0.1), z)
        p.update(peak_absmag=np.where(sub == 1, n(-20.6, 0.5), n(-13.8, 0.8)),
                 rise=np.where(sub == 1, u(30, 50), u(5, 10)),
                 fall=np.where(sub == 1, u(100, 160), u(60, 100)),
                 t_peak=np.where(sub == 1, u(7000, 9000), u(3500, 4500)),
                 t_late=np.where(sub == 1, u(4500, 5500), u(3000, 3800)),
                 t_cool=np.where(sub == 1, u(80, 140), u(40, 80)), uv_cut=np.full(k, 2.0))
    elif cls == 88:  # AGN: mean luminosity and damped random walk
        p.update(peak_absmag=n(-21.5, 1.2), tau_drw=_lognormal(rng, 200.0, 0.5, k),
                 sf_inf=_lognormal(rng, 0.42, 0.35, k), drw_corr=u(0.75, 0.97),
                 colour=n(0.5, 0.3))  # f_ν ∝ λ^colour: quasar continua have α_ν ≈ -0.5
    elif cls == 92:  # RR Lyrae: temperature pulsation with a sawtooth, 0.4-0.8 d
        p.update(ref_mag=u(15.5, 19.0), period=u(0.4, 0.8), t0=u(SURVEY_START, SURVEY_START + 1),
                 t_peak=u(6000, 6700), amplitude=u(700, 1400), rise=u(0.1, 0.2))
    elif cls == 16:  # eclipsing binary
        t1 = u(4500, 9000)
        p.update(ref_mag=np.clip(n(18.8, 1.2), 15.0, 22.0),
                 period=np.exp(u(np.log(0.3), np.log(10.0))), t0=u(SURVEY_START, SURVEY_START + 10),
                 t_peak=t1, t2=t1 * u(0.55, 1.0), radius_ratio=u(0.4, 1.0),
                 eclipse_area=u(0.03, 0.4), eclipse_width=u(0.02, 0.06),
                 eclipse_shape=u(1.0, 3.0), amplitude=u(0.0, 0.01))
    elif cls == 53:  # Mira: long period, huge optical amplitude
        # a TiO-blanketed M giant is far redder than a blackbody at its T_eff: use colour T
        p.update(ref_mag=n(18.8, 1.0), period=u(100, 500), t0=u(SURVEY_START, SURVEY_START + 500),
                 t_peak=u(2300, 2700), amplitude=u(200, 350), radius_ratio=u(0.05, 0.15))
    elif cls == 65:  # M dwarf with flares
        p.update(ref_mag=n(21.2, 1.0), t_peak=u(2500, 2900), t2=u(9000, 13000),
                 flare_rate=np.exp(u(np.log(0.02), np.log(0.5))), fall=_lognormal(rng, 0.03, 0.6, k),
                 amplitude=np.exp(u(np.log(0.3), np.log(8.0))))
    elif cls == 6:  # single-lens microlensing (2 = strongly blended source)
        sub = rng.choice([1, 2], k).astype(float)
        p["submodel"] = sub
        p.update(ref_mag=n(20.0, 1.0), t_peak=u(4000, 7000), u0=u(0.02, 1.0),
                 fall=_lognormal(rng, 50.0, 0.5, k), blend=np.where(sub == 1, u(0.8, 1.0), u(0.2, 0.8)))
    else:  # pragma: no cover - the class list is checked by the caller
        raise ConfigError(f"no model for class {cls}")
    p["true_z"] = z
    return p


# ---------------------------------------------------------------------------------------------
# noiseless fluxes
# ---------------------------------------------------------------------------------------------
def _bazin(tau, rise, fall, tail, tail_frac):
    """Bazin rise/fall with a slower radioactive tail, peak normalised to 1 near τ = 0."""
    # the Bazin peak sits at t* = rise · ln(fall/rise − 1); shift so that τ = 0 is the peak
    tstar = rise * np.log(np.maximum(fall / rise - 1.0, 1.0 + 1e-6))
    def f(t):
        t = np.clip(t, -60 * rise, None)  # exp(60) << float max; flux there is ~0 anyway
        return (((1 - tail_frac) * np.exp(-t / fall) + tail_frac * np.exp(-t / tail))
                / (1 + np.exp(-t / rise)))
    return f(tau + tstar) / f(tstar)


def _transient_flux(cls, p, tau, lam_rest):
    """Rest-frame luminosity relative to peak at the observation's rest wavelength."""
    sub = p["submodel"]
    if cls == 15:
        # Gaussian rise to peak, then the fallback-rate power law (1 + τ/τ0)^-5/3
        shape = np.where(tau < 0, np.exp(-0.5 * (tau / p["rise"]) ** 2),
                         (1 + np.maximum(tau, 0) / p["fall"]) ** (-5 / 3))
    elif cls == 42:
        baz = _bazin(tau, p["rise"], p["fall"], p["tail"], p["tail_frac"])
        # II-P, τ from explosion: exponential rise, slowly declining plateau, drop onto the
        # 56Co tail (e-folding 111.3 d)
        te = np.maximum(tau, 0)
        plat = ((1 - np.exp(-te / p["rise"])) * np.exp(-te / p["fall"])
                / (1 + np.exp((te - np.nan_to_num(p["plateau"])) / 4.0))
                + p["tail_frac"] * np.exp(-te / 111.3) / (1 + np.exp(-(te - np.nan_to_num(p["plateau"])) / 4.0)))
        plat = np.where(tau > 0, plat, 0.0)
        shape = np.where(sub == 1, plat, baz)
    else:
        shape = _bazin(tau, p["rise"], p["fall"], p["tail"], p["tail_frac"])
    temp = p["t_late"] + (p["t_peak"] - p["t_late"]) * np.exp(-np.maximum(tau, 0) / p["t_cool"])
    sed = bb_ratio(lam_rest, temp, REST_REF_NM)
    # line blanketing: rest-frame UV below 400 nm is suppressed relative to a blackbody
    sed = sed * np.where(lam_rest < 400.0, (lam_rest / 400.0) ** p["uv_cut"], 1.0)
    if cls == 90:
        # SN Ia secondary maximum in the rest-frame near-IR ~ 25-30 d after peak
        red = np.clip((lam_rest - 650.0) / 250.0, 0, 1)
        shape = shape * (1 + p["bump"] * red * 4 * np.exp(-0.5 * ((tau - 27 * p["stretch"]) / 7) ** 2))
    return shape * sed * _host_extinction(lam_rest, p["host_ebv"])


def _drw(p, mjd, band, obj):
    """Damped-random-walk magnitude offsets per observation row of AGN (one process per band).

    ``p`` holds per-object parameters, ``obj`` maps rows to objects."""
    grid = np.arange(SURVEY_START - 60, SURVEY_END + 60, 1.0)
    out = np.zeros(len(mjd))
    z = p["true_z"]
    for i in np.unique(obj):
        rows = np.flatnonzero(obj == i)
        rng = np.random.default_rng(int(p["model_seed"][i]))
        tau = p["tau_drw"][i] * (1 + z[i])  # observed-frame damping time
        a = np.exp(-1.0 / tau)
        eps = rng.standard_normal((7, len(grid)))
        eps[:, 1:] *= np.sqrt(1 - a * a)
        # x_k = a x_{k-1} + σ√(1−a²) ε_k (an AR(1) on a 1-day grid is the exact DRW there;
        # sub-day DRW variability is negligible for τ of months, so linear interpolation is fine)
        from scipy.signal import lfilter

        x = lfilter([1.0], [1.0, -a], eps, axis=1)
        rho = p["drw_corr"][i]
        per_band = np.sqrt(rho) * x[0] + np.sqrt(1 - rho) * x[1:]  # (6, G), unit variance
        lam_rest = LAMBDA_NM / (1 + z[i])
        # structure function grows to the blue (MacLeod et al. 2010: SF ∝ λ^-0.5 roughly)
        sf = p["sf_inf"][i] * (lam_rest / 400.0) ** -0.5 / np.sqrt(2)
        for b in range(6):
            rb = rows[band[rows] == b]
            out[rb] = sf[b] * np.interp(mjd[rb], grid, per_band[b])
    return out


def _flare_flux(p, mjd, obj):
    """Sum of flares (rise ~ τ/10, exponential decay τ) at each row, in units of the flare peak."""
    out = np.zeros(len(mjd))
    for i in np.unique(obj):
        rows = np.flatnonzero(obj == i)
        rng = np.random.default_rng(int(p["model_seed"][i]))
        span = SURVEY_END - SURVEY_START + 100
        nf = rng.poisson(p["flare_rate"][i] * span)
        tf = SURVEY_START - 50 + span * rng.random(nf)
        # flare energies follow a steep power law: most flares are small
        amp = (rng.pareto(1.0, nf) + 1.0) * 0.2
        decay = p["fall"][i] * np.exp(0.5 * rng.standard_normal(nf))
        if not np.isnan(p["t0"][i]):
            # the flare that got this star into the sample (a spectroscopic trigger)
            tf = np.append(tf, p["t0"][i])
            amp = np.append(amp, 1.0)
            decay = np.append(decay, p["fall"][i])
        dt = mjd[rows, None] - tf[None, :]
        prof = np.where(dt >= 0, np.exp(-np.maximum(dt, 0) / decay),
                        np.exp(np.minimum(dt, 0) / (0.1 * decay)))
        out[rows] = (prof * amp).sum(axis=1)
    return out


def _true_flux(cls: int, p: dict[str, np.ndarray], mjd: np.ndarray, band: np.ndarray,
               obj: np.ndarray, mwebv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Noiseless (difference flux, total source flux) [FLUXCAL] of the rows of one class.

    ``p`` holds per-object arrays, ``obj`` maps rows to objects; ``mwebv`` is per object.
    """
    q = {k: v[obj] for k, v in p.items()}  # per-row parameters
    lam = LAMBDA_NM[band]
    mw = 10.0 ** (-0.4 * EXTINCTION_RV[band] * mwebv[obj])
    if cls in GALACTIC_CLASSES:
        ref = 10.0 ** (-0.4 * (q["ref_mag"] - ZERO_POINT))
        if cls == 92:
            phase = ((mjd - q["t0"]) / q["period"]) % 1.0
            r = q["rise"]
            def light(ph):
                # sawtooth: fast rise over a fraction r of the cycle, slow linear decline
                saw = np.where(ph < r, ph / r, 1 - (ph - r) / (1 - r)) - 0.5
                temp = q["t_peak"] + q["amplitude"] * saw
                # ~5 % radius change in antiphase with temperature, as in RRab pulsation
                return ref * (1 - 0.1 * saw) * np.exp(_log_bnu(lam, temp) - _log_bnu(STAR_REF_NM, q["t_peak"]))
            total, tmpl = light(phase), _phase_average(light)
        elif cls == 16:
            phase = ((mjd - q["t0"]) / q["period"]) % 1.0
            f1 = bb_ratio(lam, q["t_peak"], STAR_REF_NM)
            f2 = q["radius_ratio"] ** 2 * np.exp(_log_bnu(lam, q["t2"]) - _log_bnu(STAR_REF_NM, q["t_peak"]))
            log_ratio = _log_bnu(STAR_REF_NM, q["t2"]) - _log_bnu(STAR_REF_NM, q["t_peak"])
            norm = 1.0 + q["radius_ratio"] ** 2 * np.exp(log_ratio)
            def light(ph):
                d1 = np.abs(((ph + 0.5) % 1.0) - 0.5)  # phase distance to primary eclipse
                d2 = np.abs(ph - 0.5)
                prof = lambda d: np.clip(1 - (d / q["eclipse_width"]) ** q["eclipse_shape"], 0, 1)  # noqa: E731
                # the eclipsed area blocks a fraction of each star's disc
                b1 = q["eclipse_area"] * prof(d1)
                b2 = np.minimum(q["eclipse_area"] / q["radius_ratio"] ** 2, 1.0) * prof(d2)
                ell = 1 - q["amplitude"] * np.cos(4 * np.pi * ph)
                return ref * ell * (f1 * (1 - b1) + f2 * (1 - b2)) / norm
            # the training set's EB difference fluxes are symmetric about 0: a phase-averaged template
            total, tmpl = light(phase), _phase_average(light)
        elif cls == 53:
            phase = ((mjd - q["t0"]) / q["period"]) % 1.0
            def light(ph):
                wave = np.sin(2 * np.pi * ph) + 0.25 * np.sin(4 * np.pi * ph + 1.0)
                temp = q["t_peak"] + q["amplitude"] * wave
                return ref * (1 + q["radius_ratio"] * wave) * np.exp(
                    _log_bnu(lam, temp) - _log_bnu(STAR_REF_NM, q["t_peak"]))
            total, tmpl = light(phase), _phase_average(light)
        elif cls == 65:
            tmpl = ref * bb_ratio(lam, q["t_peak"], STAR_REF_NM)
            # flare: a ~10,000 K blackbody whose peak r-band flux is `amplitude` x quiescent r
            flare = ref * q["amplitude"] * bb_ratio(lam, q["t2"], STAR_REF_NM) * _flare_flux(p, mjd, obj)
            total = tmpl + flare
        elif cls == 6:
            uu = np.sqrt(q["u0"] ** 2 + ((mjd - q["t0"]) / q["fall"]) ** 2)
            magn = (uu ** 2 + 2) / (uu * np.sqrt(uu ** 2 + 4))  # Paczynski (1986), achromatic
            tmpl = ref * bb_ratio(lam, q["t_peak"], STAR_REF_NM)
            total = tmpl * (1 + q["blend"] * (magn - 1))
        else:  # pragma: no cover
            raise ConfigError(f"no model for class {cls}")
        return (total - tmpl) * mw, total * mw
    z = q["true_z"]
    mu = distance_modulus(z)
    lam_rest = lam / (1 + z)
    amp = 10.0 ** (-0.4 * (q["peak_absmag"] + mu - ZERO_POINT)) * (1 + z)  # (1+z): f_ν K-correction
    if cls == 88:
        mean = amp * (lam_rest / REST_REF_NM) ** q["colour"]
        total = mean * 10.0 ** (-0.4 * _drw(p, mjd, band, obj))
        # AGN errors in the training set show no Poisson excess from the mean (template) flux,
        # only from the varying part
        return (total - mean) * mw, np.abs(total - mean) * mw
    tau = (mjd - q["t0"]) / (1 + z)  # rest-frame days: cosmological time dilation
    flux = amp * _transient_flux(cls, q, tau, lam_rest)
    return flux * mw, flux * mw


def _phase_average(light, n: int = 48):
    """Mean over one cycle of a periodic model ``light(phase)`` per row: the template flux."""
    return np.mean([light(np.full(1, (j + 0.5) / n)) for j in range(n)], axis=0)


def model_flux(truth: pd.Series | dict, mjd, passband, *, z: float | None = None) -> np.ndarray:
    """Noiseless observed flux [FLUXCAL] of one simulated object at times ``mjd`` in ``passband``.

    ``truth`` is a row of ``truth.csv`` (or of the truth frame of :func:`simulate_objects`);
    ``z`` replaces its redshift, to see the same explosion at another distance (extragalactic
    classes only). Returns the difference flux, shape ``(len(mjd),)``.
    """
    truth = dict(truth)
    cls = int(truth["target"])
    if cls not in CLASSES and cls != UNKNOWN_CLASS:
        raise ConfigError(f"unknown class {cls}")
    mjd = np.atleast_1d(np.asarray(mjd, float))
    band = np.broadcast_to(np.asarray(passband, np.int64), mjd.shape)
    if band.min() < 0 or band.max() > 5:
        raise ConfigError("passband must be in 0..5")
    p = {c: np.array([float(truth.get(c, np.nan))]) for c in PARAM_COLUMNS}
    p["true_z"] = np.array([float(truth["true_z"] if z is None else z)])
    if z is not None and cls in GALACTIC_CLASSES:
        raise ConfigError("z can only be changed for extragalactic classes")
    obj = np.zeros(len(mjd), np.int64)
    diff, _ = _true_flux(cls, p, mjd, band, obj, np.array([float(truth["mwebv"])]))
    return diff
