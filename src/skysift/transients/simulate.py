"""PLAsTiCC-format light curves from physically motivated models, in the Kaggle CSV layout.

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
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.io import atomic_path
from ..errors import ConfigError
from .data import (CLASSES, EXTRAGALACTIC_CLASSES, GALACTIC_CLASSES, PASSBAND_WAVELENGTH_NM,
                   UNKNOWN_CLASS, LightCurves)

#: MJD range of the PLAsTiCC training light curves (3 years of LSST)
SURVEY_START, SURVEY_END = 59580.0, 60675.0
ZERO_POINT = 27.5
#: class counts of the PLAsTiCC training set (7,848 objects); simulated class fractions follow them
PLASTICC_TRAIN_COUNTS = {6: 151, 15: 495, 16: 924, 42: 1193, 52: 183, 53: 30, 62: 484, 64: 102,
                         65: 981, 67: 208, 88: 370, 90: 2313, 92: 239, 95: 175}
#: share of deep-drilling-field objects per class in the PLAsTiCC training set (27 % overall: the
#: spectroscopic follow-up favoured the deep fields)
DDF_FRACTION = {6: 0.05, 15: 0.02, 16: 0.18, 42: 0.25, 52: 0.38, 53: 0.13, 62: 0.27, 64: 0.02,
                65: 0.31, 67: 0.32, 88: 0.32, 90: 0.36, 92: 0.24, 95: 0.23, UNKNOWN_CLASS: 0.2}
#: A_λ / E(B-V) of the LSST bands u..y (Schlafly & Finkbeiner 2011, R_V = 3.1)
EXTINCTION_RV = np.array([4.145, 3.237, 2.273, 1.684, 1.323, 1.088])
LAMBDA_NM = np.asarray(PASSBAND_WAVELENGTH_NM, dtype=float)
#: single-visit sky-noise floor per band [FLUXCAL]: medians of flux_err of faint extragalactic
#: objects in the PLAsTiCC training set, wide-fast-deep and deep-drilling fields
SKY_NOISE_WFD = np.array([10.0, 2.45, 3.5, 5.8, 12.6, 27.8])
SKY_NOISE_DDF = np.array([2.0, 1.25, 1.2, 1.8, 2.5, 5.8])
#: FLUXCAL per photo-electron-equivalent of the source Poisson term, per band. The training set
#: is not self-consistent here (RR Lyrae errors imply gains ~1-18, eclipsing binaries ~100), so
#: these are a compromise that keeps the errors of bright variables within ~2x of the real ones
POISSON_GAIN = np.array([3.0, 10.0, 20.0, 20.0, 15.0, 8.0])
#: share of wide-fast-deep visits per band (observations per band in the training set: u 12,
#: g 11, r 22, i 21, z 29, y 33 of ~130)
WFD_BAND_PROB = np.array([12, 11, 22, 21, 29, 33], dtype=float) / 128.0
#: deep-drilling fields of the training set (ra, decl) [deg]
DDF_FIELDS = np.array([[0.9, -45.2], [34.6, -5.1], [52.8, -27.7], [150.6, 3.0], [349.3, -63.2]])
REST_REF_NM = 445.0  # rest-frame B: the reference wavelength of extragalactic absolute magnitudes
STAR_REF_NM = 622.2  # r band: the reference wavelength of stars' apparent magnitudes
MIN_DETECTIONS = 2   # the PLAsTiCC training set keeps objects with >= 2 detections

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
            norm = 1.0 + q["radius_ratio"] ** 2 * np.exp(_log_bnu(STAR_REF_NM, q["t2"]) - _log_bnu(STAR_REF_NM, q["t_peak"]))
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


# ---------------------------------------------------------------------------------------------
# sky, cadence, noise
# ---------------------------------------------------------------------------------------------
def _sky_positions(k, ddf, galactic, rng):
    """(ra, decl, gal_l, gal_b, mwebv) of k objects; DDF objects lie in one of the deep fields."""
    from astropy.coordinates import SkyCoord
    import astropy.units as un

    ra = np.empty(k)
    dec = np.empty(k)
    todo = np.arange(k)
    for _ in range(50):  # rejection sampling: galactic objects crowd towards the plane
        m = len(todo)
        if m == 0:
            break
        r = rng.uniform(0, 360, m)
        d = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(-65)), np.sin(np.radians(5)), m)))
        f = DDF_FIELDS[rng.integers(0, len(DDF_FIELDS), m)]
        rad = 1.75 * np.sqrt(rng.random(m))  # uniform over a 1.75 deg radius field
        ang = rng.uniform(0, 2 * np.pi, m)
        dd = ddf[todo]
        d = np.where(dd, f[:, 1] + rad * np.sin(ang), d)
        r = np.where(dd, (f[:, 0] + rad * np.cos(ang) / np.cos(np.radians(f[:, 1]))) % 360, r)
        b = SkyCoord(ra=r * un.deg, dec=d * un.deg).galactic.b.deg
        keep = dd | ~galactic[todo] | (rng.random(m) < np.exp(-np.abs(b) / 30.0))
        ra[todo[keep]], dec[todo[keep]] = r[keep], d[keep]
        todo = todo[~keep]
    if len(todo):  # essentially never; accept the last draws rather than loop forever
        ra[todo], dec[todo] = r[~keep], d[~keep]
    gal = SkyCoord(ra=ra * un.deg, dec=dec * un.deg).galactic
    gl, gb = gal.l.deg, gal.b.deg
    # E(B-V) grows like the dust column through a plane-parallel disc, 1/sin|b|, with patchy
    # scatter; scaled so that the median matches the training set (0.03)
    mwebv = np.clip(0.017 / np.maximum(np.sin(np.radians(np.abs(gb))), 0.05)
                    * np.exp(0.5 * rng.standard_normal(k)), 0.003, 3.0)
    return ra, dec, gl, gb, mwebv


def _cadence(ra, dec, ddf, rng):
    """LSST-like observation times and bands for each object: (offsets, mjd, passband, is_ddf rows).

    Each field is observable for a ~6-8 month season around opposition (the Sun's RA + 180°);
    wide-fast-deep objects get ~0.2 single-band visits per night in season (~130 in 3 years), deep
    fields ~19 nights per season with all six bands (~350 observations), as in the training set.
    """
    k = len(ra)
    # MJD when the Sun's right ascension is opposite the field (mean motion 0.9856 deg/day)
    centre = 51544.5 + ((ra + 180.0 - 280.46) % 360.0) / 0.9856
    centre = SURVEY_START + (centre - SURVEY_START) % 365.25
    # far-southern fields are circumpolar and observable for longer
    half = 0.5 * (170 + 50 * np.clip((-dec - 20) / 45, 0, 1)) * rng.uniform(0.92, 1.08, k)
    seasons = np.arange(-1, 4)
    s_lo = centre[:, None] + 365.25 * seasons[None, :] - half[:, None]
    s_hi = centre[:, None] + 365.25 * seasons[None, :] + half[:, None]
    s_lo, s_hi = np.clip(s_lo, SURVEY_START, SURVEY_END), np.clip(s_hi, SURVEY_START, SURVEY_END)
    length = np.maximum(s_hi - s_lo, 0)  # (k, 5) days in season within the survey
    rate = 0.225 * rng.lognormal(0, 0.05, k)  # wide-survey visit nights per day in season
    nights = rng.poisson(rate[:, None] * length)
    # deep fields follow a fixed schedule: ~56 nights in 3 years (the training set has 330-352
    # observations for most deep-field objects, a few lose some nights)
    n_ddf = 56 - rng.poisson(1.0, k) - (rng.random(k) < 0.15) * rng.integers(0, 16, k)
    share = length / np.maximum(length.sum(axis=1, keepdims=True), 1e-9)
    nights = np.where(ddf[:, None], np.floor(share * n_ddf[:, None] + rng.random((k, 1))),
                      nights).astype(np.int64)
    nn = nights.ravel()
    obj_of_night = np.repeat(np.repeat(np.arange(k), len(seasons)), nn)
    lo = np.repeat(s_lo.ravel(), nn)
    night_t = np.floor(lo + rng.random(len(lo)) * np.repeat(length.ravel(), nn))
    # LSST observes from Chile, 23-09 h UT: MJD fractions ~0.0-0.4
    night_t = night_t + rng.uniform(0.0, 0.38, len(night_t))
    is_ddf = ddf[obj_of_night]
    # WFD: one band per night (5 % of nights get a second visit in another band ~30 min later);
    # DDF: g r i z y once and u once or twice, a few minutes apart
    n_obs = np.where(is_ddf, 5 + 1 + (rng.random(len(night_t)) < 0.25),
                     1 + (rng.random(len(night_t)) < 0.05))
    t = np.repeat(night_t, n_obs)
    o = np.repeat(obj_of_night, n_obs)
    first = np.repeat(np.cumsum(n_obs) - n_obs, n_obs)
    j = np.arange(len(t)) - first  # index within the night
    dd = np.repeat(is_ddf, n_obs)
    wfd_band = rng.choice(6, len(t), p=WFD_BAND_PROB)
    # a WFD second visit takes a different band
    wfd_band = np.where((j == 1) & (wfd_band == np.roll(wfd_band, 1)), (wfd_band + 2) % 6, wfd_band)
    band = np.where(dd, np.where(j < 6, np.array([1, 2, 3, 4, 5, 0])[np.minimum(j, 5)], 0), wfd_band)
    t = t + np.where(dd, 0.0012 * j, 0.021 * j) + rng.uniform(0, 0.0005, len(t))
    order = np.lexsort((t, o))
    o, t, band = o[order], t[order], band[order]
    # two visits of one object drawn into the same instant would be duplicate rows once mjd is
    # written with 4 decimals (the loaders reject them): push the later one 2e-4 d on
    for _ in range(5):
        clash = np.flatnonzero((np.diff(t) < 2e-4) & (o[1:] == o[:-1])) + 1
        if len(clash) == 0:
            break
        t[clash] += 2e-4
    offsets = np.concatenate([[0], np.cumsum(np.bincount(o, minlength=k))]).astype(np.int64)
    return offsets, t, band.astype(np.int8)


def _observe(diff, total, band, is_ddf, rng):
    """Add noise: (flux, flux_err, detected) per row."""
    sky = np.where(is_ddf, SKY_NOISE_DDF[band], SKY_NOISE_WFD[band])
    sky = sky * rng.lognormal(0.0, 0.25, len(band))  # seeing, moon and airmass from visit to visit
    err = np.sqrt(sky ** 2 + np.maximum(total, 0) / POISSON_GAIN[band])
    flux = diff + err * rng.standard_normal(len(band))
    snr = np.abs(flux) / err
    # detection efficiency of the PLAsTiCC release: 17 % of rows at 3<|SNR|<5 are flagged,
    # 60 % at 5-7, 98 % above 7 — a smooth step centred at |SNR| = 5.5
    from scipy.special import ndtr

    detected = rng.random(len(band)) < ndtr((snr - 5.5) / 0.8)
    return flux, err, detected


# ---------------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------------
def class_counts(n: int, classes=None, class_fractions=None, unknown_fraction: float = 0.0) -> dict[int, int]:
    """Number of objects per class for ``n`` objects: proportional to the fractions (default: the
    PLAsTiCC training set, by largest remainder), raised to at least ``min(3, n // n_classes)``
    for every class of non-zero fraction; ``unknown_fraction · n`` objects of class 99 on top."""
    classes = tuple(CLASSES if classes is None else (int(c) for c in classes))
    bad = [c for c in classes if c not in CLASSES and c != UNKNOWN_CLASS]
    if bad:
        raise ConfigError(f"unknown class(es) {bad}; known: {list(CLASSES)} and {UNKNOWN_CLASS}")
    if not classes:
        raise ConfigError("classes is empty")
    if len(set(classes)) != len(classes):
        raise ConfigError("classes has duplicates")
    if not 0.0 <= unknown_fraction < 1.0:
        raise ConfigError(f"unknown_fraction must be in [0, 1), got {unknown_fraction}")
    if class_fractions is None:
        w = np.array([PLASTICC_TRAIN_COUNTS.get(c, 100) for c in classes], float)
    else:
        if isinstance(class_fractions, dict):
            missing = [c for c in classes if c not in class_fractions]
            if missing:
                raise ConfigError(f"class_fractions has no entry for class(es) {missing}")
            w = np.array([class_fractions[c] for c in classes], float)
        else:
            w = np.asarray(class_fractions, float)
        if w.shape != (len(classes),) or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
            raise ConfigError("class_fractions must be one non-negative number per class, not all 0")
    n_unknown = int(round(unknown_fraction * n))
    if unknown_fraction > 0 and n_unknown == 0:
        n_unknown = 1
    n_known = n - n_unknown
    share = w / w.sum() * n_known
    cnt = np.floor(share).astype(int)
    # largest remainder: hand out what the flooring left over
    cnt[np.argsort(-(share - cnt), kind="stable")[:n_known - cnt.sum()]] += 1
    # every requested class gets a few objects even when rare (kilonovae at n = 300), taken
    # from the most populous classes
    floor = min(3, n_known // int((w > 0).sum()))
    while ((cnt < floor) & (w > 0)).any():
        j = int(np.flatnonzero((cnt < floor) & (w > 0))[0])
        cnt[j] += 1
        cnt[int(np.argmax(cnt))] -= 1
    out = {c: int(m) for c, m in zip(classes, cnt)}
    if n_unknown:
        out[UNKNOWN_CLASS] = n_unknown
    return out


def _simulate_class(cls: int, k: int, rng: np.random.Generator, in_ddf: bool, max_rounds: int = 40):
    """``k`` objects of one class in the deep fields (``in_ddf``) or the wide survey that pass the
    detection cut: (LightCurves, truth dict)."""
    got_lc, got_truth, have = [], [], 0
    for _ in range(max_rounds):
        need = k - have
        if need <= 0:
            break
        m = max(8, int(need * 1.6) + 4)  # oversample: 30-70 % fail the cut for faint classes
        ddf = np.full(m, in_ddf)
        galactic = np.full(m, cls in GALACTIC_CLASSES)
        ra, dec, gl, gb, mwebv = _sky_positions(m, ddf, galactic, rng)
        offsets, mjd, band = _cadence(ra, dec, ddf, rng)
        obj = np.repeat(np.arange(m), np.diff(offsets))
        p = _draw_params(cls, m, rng)
        if cls == 65:
            # the flare that put this star in the sample happened near one of its observations
            pick = offsets[:-1] + (rng.random(m) * np.maximum(np.diff(offsets), 1)).astype(int)
            pick = np.minimum(pick, max(len(mjd) - 1, 0))
            p["t0"] = np.where(np.diff(offsets) > 0, mjd[pick] - rng.uniform(0, 0.05, m), p["t0"])
        diff, total = _true_flux(cls, p, mjd, band, obj, mwebv)
        flux, err, det = _observe(diff, total, band, ddf[obj], rng)
        ndet = np.bincount(obj, weights=det, minlength=m)
        ok = np.flatnonzero(ndet >= MIN_DETECTIONS)[:need]
        if len(ok) == 0:
            continue
        lc = LightCurves(offsets, mjd, band, flux, err, det,
                         {"ddf": ddf.astype(float), "mwebv": np.round(mwebv, 3)}).take(ok)
        truth = {key: v[ok] for key, v in p.items()}
        truth.update(ra=ra[ok], decl=dec[ok], gal_l=gl[ok], gal_b=gb[ok], mwebv=np.round(mwebv[ok], 3),
                     ddf=ddf[ok].astype(int), n_detected=ndet[ok].astype(int))
        got_lc.append(lc)
        got_truth.append(truth)
        have += len(ok)
    if have < k:
        raise RuntimeError(f"class {cls}: only {have} of {k} simulated objects passed the "
                           f"detection cut after {max_rounds} rounds")  # a bug in the models
    truth = {key: np.concatenate([t[key] for t in got_truth]) for key in got_truth[0]}
    return LightCurves.concat(got_lc), truth


def _host_redshifts(z, ddf, galactic, rng):
    """(hostgal_specz, hostgal_photoz, hostgal_photoz_err, distmod) as in the Kaggle metadata."""
    k = len(z)
    # photo-z of the training set: 75 % of hosts have σ ~ 0.02 (1+z), the rest are poorly
    # constrained (σ ~ 0.2-0.3 (1+z)), and ~10 % of all are catastrophic outliers (|Δz|/(1+z) > 0.15)
    poor = rng.random(k) < 0.25
    sig = np.where(poor, rng.uniform(0.12, 0.35, k), rng.lognormal(np.log(0.018), 0.4, k))
    photo = z + sig * (1 + z) * rng.standard_normal(k)
    outlier = rng.random(k) < 0.04
    photo = np.where(outlier, rng.uniform(0.02, 1.5, k), photo)
    photo = np.round(np.clip(photo, 0.001, 3.0), 4)
    err = sig * (1 + photo) * rng.lognormal(0, 0.2, k)
    specz = np.round(z, 4)
    distmod = distance_modulus(photo)  # the Kaggle distmod is computed from the photo-z
    gal = galactic
    return (np.where(gal, 0.0, specz), np.where(gal, 0.0, photo),
            np.where(gal, 0.0, np.round(err, 4)), np.where(gal, np.nan, np.round(distmod, 4)))


def simulate_objects(n: int, seed: int = 0, classes=None, class_fractions=None, *,
                     unknown_fraction: float = 0.0):
    """Simulate ``n`` objects in memory.

    Returns ``(object_ids (n,) int64, LightCurves, targets (n,) int64, truth DataFrame)``; the
    truth frame has one row per object (same order) with ``object_id, target, true_z,
    true_distmod``, the sky position, and the model parameters of :data:`PARAM_COLUMNS`.
    ``classes`` restricts the simulation to some classes; ``class_fractions`` (dict or sequence
    aligned with ``classes``) replaces the training-set class mix; ``unknown_fraction`` adds
    objects of class 99 (pair-instability SNe and intermediate-luminosity red transients).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"n must be a positive integer, got {n!r}")
    counts = class_counts(int(n), classes, class_fractions, unknown_fraction)
    rng = np.random.default_rng(seed)
    lcs, truths, targets = [], [], []
    for cls, k in counts.items():
        if k == 0:
            continue
        # one independent stream per class: adding a class does not change the others
        crng = np.random.default_rng([int(seed) & 0xFFFFFFFF, cls])
        # the deep fields pass the detection cut more often, so their share is fixed per class
        # (as in the training set) rather than drawn before the cut
        k_ddf = int(crng.binomial(k, DDF_FRACTION[cls]))
        for part, in_ddf in ((k_ddf, True), (k - k_ddf, False)):
            if part:
                lc, tr = _simulate_class(cls, part, crng, in_ddf)
                lcs.append(lc)
                truths.append(pd.DataFrame(tr))
                targets.append(np.full(part, cls))
    lc = LightCurves.concat(lcs)
    truth = pd.concat(truths, ignore_index=True)
    target = np.concatenate(targets).astype(np.int64)
    galactic = np.isin(target, GALACTIC_CLASSES)
    specz, photoz, photoz_err, distmod = _host_redshifts(truth["true_z"].to_numpy(),
                                                         truth["ddf"].to_numpy(), galactic, rng)
    lc.meta.update(hostgal_specz=specz, hostgal_photoz=photoz, hostgal_photoz_err=photoz_err,
                   distmod=distmod)
    truth["true_distmod"] = np.where(galactic, np.nan, distance_modulus(truth["true_z"].to_numpy()))
    for c, v in (("hostgal_specz", specz), ("hostgal_photoz", photoz),
                 ("hostgal_photoz_err", photoz_err), ("distmod", distmod)):
        truth[c] = v
    # shuffle so that classes are interleaved, and give Kaggle-like increasing integer ids
    order = rng.permutation(len(target))
    lc, truth, target = lc.take(order), truth.iloc[order].reset_index(drop=True), target[order]
    ids = 615 + np.cumsum(rng.integers(1, 5000, len(target))).astype(np.int64)
    truth.insert(0, "target", target)
    truth.insert(0, "object_id", ids)
    return ids, lc, target, truth


def _write_csv(path: Path, df: pd.DataFrame, float_format=None) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format=float_format, na_rep="nan")


def simulate(out: str | Path, n: int = 3000, seed: int = 0, *, labelled: bool = True,
             unknown_fraction: float = 0.0, classes=None, class_fractions=None) -> Path:
    """Write a PLAsTiCC-layout data set of ``n`` objects into folder ``out`` and return it.

    ``labelled=True``: ``training_set.csv`` and ``training_set_metadata.csv`` (with ``target``);
    ``labelled=False``: ``test_set.csv`` and ``test_set_metadata.csv`` (no ``target``). Both write
    ``truth.csv`` (``object_id, target, true_z, ...`` and the model parameters). Every file is
    written atomically.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder")
    ids, lc, target, truth = simulate_objects(n, seed, classes, class_fractions,
                                              unknown_fraction=unknown_fraction)
    obs = pd.DataFrame({
        "object_id": np.repeat(ids, lc.lengths), "mjd": np.round(lc.mjd, 4),
        "passband": lc.passband.astype(np.int64), "flux": np.round(lc.flux.astype(np.float64), 6),
        "flux_err": np.round(lc.flux_err.astype(np.float64), 6), "detected": lc.detected.astype(np.int64)})
    meta = pd.DataFrame({
        "object_id": ids, "ra": np.round(truth["ra"], 6), "decl": np.round(truth["decl"], 6),
        "gal_l": np.round(truth["gal_l"], 6), "gal_b": np.round(truth["gal_b"], 6),
        "ddf": truth["ddf"].astype(np.int64), "hostgal_specz": lc.meta["hostgal_specz"],
        "hostgal_photoz": lc.meta["hostgal_photoz"], "hostgal_photoz_err": lc.meta["hostgal_photoz_err"],
        "distmod": lc.meta["distmod"], "mwebv": lc.meta["mwebv"], "target": target})
    stem = "training_set" if labelled else "test_set"
    if not labelled:
        meta = meta.drop(columns="target")
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / f"{stem}.csv", obs)
    _write_csv(out / f"{stem}_metadata.csv", meta)
    _write_csv(out / "truth.csv", truth)
    return out
