"""Training-time augmentation of PLAsTiCC light curves (numpy, one object at a time).

Every function takes one object as the dict :meth:`LightCurves.object` returns (observation arrays
``mjd, passband, flux, flux_err, detected`` plus the metadata scalars of
:data:`~skysift.transients.data.META_COLUMNS`) and a ``numpy.random.Generator``, and returns a
*new* dict: inputs are never modified. They run only on the training split (the core builds the
training dataset with ``train=True`` after the split), so no augmented copy can leak into
validation or test.

The physics-aware one is :func:`redshift`, the augmentation behind Kyle Boone's winning PLAsTiCC
entry (Avocado, Boone 2019, AJ 158, 257): the spectroscopic training set is much brighter and
closer than the photometric test set, so extragalactic objects are moved to a higher redshift
before the network sees them. See its docstring for what is modelled and what is approximated.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .data import PASSBAND_WAVELENGTH_NM, LightCurves

OBS_KEYS = ("mjd", "passband", "flux", "flux_err", "detected")
#: |flux| / flux_err above which PLAsTiCC flags an observation as detected; on the real training
#: set this reproduces the release's ``detected`` flag for 98.1% of the 1.42 M observations
DETECTION_SNR = 5.0
_LOG_WAVE = np.log(np.asarray(PASSBAND_WAVELENGTH_NM, dtype=np.float64))


def _with_rows(obj: dict, keep: np.ndarray) -> dict:
    """A copy of ``obj`` with the observation arrays restricted to ``keep`` (mask or indices)."""
    out = dict(obj)
    for k in OBS_KEYS:
        out[k] = np.asarray(obj[k])[keep].copy()
    return out


def _copy(obj: dict) -> dict:
    out = dict(obj)
    for k in OBS_KEYS:
        out[k] = np.array(obj[k], copy=True)
    return out


def is_extragalactic(obj: dict) -> bool:
    """PLAsTiCC marks galactic objects with host-galaxy photo-z exactly 0 (and no distmod)."""
    z = obj.get("hostgal_photoz", np.nan)
    return bool(np.isfinite(z) and z > 0)


# ---- simple augmentations ------------------------------------------------------------------
def drop_observations(obj: dict, rng: np.random.Generator, *, max_frac: float = 0.5,
                      min_keep: int = 8) -> dict:
    """Drop a random fraction (uniform in ``[0, max_frac]``) of the observations, keeping at least
    ``min_keep`` (or all of them when the object has fewer). Order is preserved."""
    n = len(obj["mjd"])
    n_keep = max(min(n, min_keep), int(round(n * (1.0 - rng.uniform(0.0, max_frac)))))
    keep = np.sort(rng.choice(n, size=n_keep, replace=False))
    return _with_rows(obj, keep)


def time_shift(obj: dict, rng: np.random.Generator, *, max_shift: float = 50.0) -> dict:
    """Shift every observation time by one offset uniform in ``[-max_shift, max_shift]`` days.
    (The networks see times relative to the object's brightest detection, so this mainly
    decorrelates the model from absolute MJD for features that use it.)"""
    out = _copy(obj)
    out["mjd"] = out["mjd"] + rng.uniform(-max_shift, max_shift)
    return out


def scale_flux(obj: dict, rng: np.random.Generator, *, max_dex: float = 0.3) -> dict:
    """Multiply flux and flux_err by ``10**u``, ``u ~ U(-max_dex, max_dex)``: the same object
    nearer or farther without changing its S/N (for galactic objects, whose distance is
    unknown to the model; extragalactic ones get :func:`redshift` instead)."""
    out = _copy(obj)
    f = np.float32(10.0 ** rng.uniform(-max_dex, max_dex))
    out["flux"] = out["flux"] * f
    out["flux_err"] = out["flux_err"] * f
    return out


def redraw_noise(obj: dict, rng: np.random.Generator, *, scale: float = 0.5) -> dict:
    """Add Gaussian noise of standard deviation ``scale * flux_err`` to every flux and widen the
    reported errors to ``flux_err * sqrt(1 + scale**2)`` so they stay honest."""
    out = _copy(obj)
    err = out["flux_err"].astype(np.float64)
    out["flux"] = (out["flux"] + rng.normal(0.0, 1.0, len(err)) * scale * err).astype(np.float32)
    out["flux_err"] = (err * np.sqrt(1.0 + scale**2)).astype(np.float32)
    out["detected"] = np.abs(out["flux"]) / out["flux_err"] > DETECTION_SNR
    return out


# ---- redshift augmentation -----------------------------------------------------------------
@lru_cache(maxsize=1)
def _distmod_grid() -> tuple[np.ndarray, np.ndarray]:
    """Distance modulus [mag] on a redshift grid, for the cosmology PLAsTiCC used (its ``distmod``
    column equals ``FlatLambdaCDM(H0=70, Om0=0.3).distmod(hostgal_photoz)`` to 0.013 mag on the
    real training set). Precomputed once: astropy's integral is ~100 µs per call."""
    from astropy.cosmology import FlatLambdaCDM

    z = np.concatenate([np.geomspace(1e-4, 0.01, 50, endpoint=False), np.linspace(0.01, 6.0, 1500)])
    return z, FlatLambdaCDM(H0=70.0, Om0=0.3).distmod(z).value


def distmod(z) -> np.ndarray:
    """Distance modulus [mag] at redshift ``z`` (array), interpolated on the precomputed grid."""
    grid_z, grid_mu = _distmod_grid()
    return np.interp(np.asarray(z, dtype=np.float64), grid_z, grid_mu)


def _reference_time(obj: dict) -> float:
    """The time of the brightest detection (the brightest observation when none is detected)."""
    flux, det = np.asarray(obj["flux"]), np.asarray(obj["detected"], dtype=bool)
    pool = np.flatnonzero(det) if det.any() else np.arange(len(flux))
    return float(np.asarray(obj["mjd"])[pool[np.argmax(flux[pool])]])


def redshift(obj: dict, rng: np.random.Generator, *, z_new: float | None = None, max_stretch: float = 1.5,
             z_max: float = 3.0, min_detections: int = 2, tries: int = 5) -> dict:
    """Move an extragalactic object to a higher redshift ``z' > z``; galactic objects come back
    as an unchanged copy.

    ``z`` is the host's spectroscopic redshift when the file has one (the training set always
    does; it is used here only to move the object, never fed to a model), else its photo-z.
    ``z'`` is drawn with ``log(1+z')`` uniform in ``[log(1+z), log((1+z) * max_stretch)]``
    capped at ``z_max`` (or given as ``z_new``). With ``s = (1+z')/(1+z)``:

    * **cadence kept, physics moved**: the output keeps the object's own observation times and
      bands (the survey's real cadence for that field). The flux at observed time ``t`` in band
      ``b`` is the original light curve read at the source time ``t_peak + (t - t_peak)/s``
      (time dilation around the brightest detection) and at the source wavelength
      ``λ_b / s`` (the same rest-frame wavelength): linear interpolation in time within each
      band (``np.interp``, flat beyond the band's first/last point), then linear interpolation in
      ``log λ`` between the two neighbouring bands. Rest wavelengths bluer than the original u
      band are read from u (a cruder approximation: the object's UV is not observed).
    * **dimming** by the distance-modulus difference, ``10**(-0.4 (μ(z') - μ(z)))``, times ``s``
      for the bandwidth compression of a per-unit-frequency flux (FLUXCAL is AB-based, f_ν).
    * **noise**: each output observation keeps its epoch's ``flux_err`` (sky-noise dominated at
      these brightnesses, so it does not depend on the source), and Gaussian noise is added so
      the interpolated, dimmed (hence already less noisy) flux has that error again:
      ``σ_add² = flux_err² - (dim · σ_interp)²``.
    * **metadata**: ``hostgal_photoz`` moves by the same ``(1+z)`` factor (its error too),
      ``distmod = μ(photo-z')`` as in the release, ``hostgal_specz = z'``.
    * **detection**: ``detected`` is recomputed as ``|flux|/flux_err > 5``; an object with fewer
      than ``min_detections`` detections would not have been in the survey's sample, so another
      ``z'`` is drawn (up to ``tries`` times) and after that the unchanged copy is returned.

    Not modelled: host-galaxy light, DDF→WFD cadence conversion, Milky-Way extinction changes
    with wavelength (``mwebv`` is kept). The feature models' survey-like copies
    (:mod:`.survey_shift`) add the cadence conversion, a 2-D Gaussian process in place of the
    linear interpolation, and photo-z redrawn with the survey's error model.
    """
    if not is_extragalactic(obj):
        return _copy(obj)
    specz = obj.get("hostgal_specz", np.nan)
    z = float(specz) if np.isfinite(specz) and specz > 0 else float(obj["hostgal_photoz"])
    hi = min(np.log1p(z) + np.log(max_stretch), np.log1p(z_max))
    if z_new is None and hi <= np.log1p(z) + 1e-6:
        return _copy(obj)
    mjd = np.asarray(obj["mjd"], dtype=np.float64)
    band = np.asarray(obj["passband"], dtype=np.int64)
    flux = np.asarray(obj["flux"], dtype=np.float64)
    err = np.asarray(obj["flux_err"], dtype=np.float64)
    t_peak = _reference_time(obj)
    present = [b for b in range(6) if np.any(band == b)]
    per_band = {b: (mjd[band == b], flux[band == b], err[band == b]) for b in present}
    log_wave_present = _LOG_WAVE[present]

    for _ in range(max(1, tries) if z_new is None else 1):
        zp = float(z_new) if z_new is not None else float(np.expm1(rng.uniform(np.log1p(z), hi)))
        s = (1.0 + zp) / (1.0 + z)
        t_src = t_peak + (mjd - t_peak) / s
        lw_src = _LOG_WAVE[band] - np.log(s)
        # neighbouring observed bands around each source wavelength, and the mixing weight
        j = np.clip(np.searchsorted(log_wave_present, lw_src) - 1, 0, len(present) - 1)
        j1 = np.minimum(j + 1, len(present) - 1)
        span = log_wave_present[j1] - log_wave_present[j]
        w = np.where(span > 0, np.clip((lw_src - log_wave_present[j]) / np.where(span > 0, span, 1), 0, 1), 0.0)
        # every present band's light curve read at every source time: (n_bands, M)
        f_at = np.stack([np.interp(t_src, per_band[b][0], per_band[b][1]) for b in present])
        e_at = np.stack([np.interp(t_src, per_band[b][0], per_band[b][2]) for b in present])
        cols = np.arange(len(mjd))
        f_src = (1.0 - w) * f_at[j, cols] + w * f_at[j1, cols]
        e_src = np.hypot((1.0 - w) * e_at[j, cols], w * e_at[j1, cols])
        dim = s * 10.0 ** (-0.4 * (distmod(zp) - distmod(z)))
        sigma_add = np.sqrt(np.maximum(err**2 - (dim * e_src) ** 2, 0.0))
        new_flux = dim * f_src + rng.normal(0.0, 1.0, len(flux)) * sigma_add
        detected = np.abs(new_flux) / err > DETECTION_SNR
        if detected.sum() >= min_detections or z_new is not None:
            break
    else:
        return _copy(obj)

    out = _copy(obj)
    out["flux"] = new_flux.astype(np.float32)
    out["detected"] = detected
    photoz = float(obj["hostgal_photoz"])
    out["hostgal_photoz"] = (1.0 + photoz) * s - 1.0
    out["hostgal_photoz_err"] = float(obj.get("hostgal_photoz_err", np.nan)) * s
    out["distmod"] = float(distmod(out["hostgal_photoz"]))
    out["hostgal_specz"] = zp
    return out


# ---- the pipeline used by the datasets and the feature path ------------------------------------
DEFAULT_AUGMENT = {"p_redshift": 0.5, "max_stretch": 1.5, "p_drop": 0.5, "drop_max_frac": 0.5,
                   "min_keep": 8, "p_noise": 0.3, "noise_scale": 0.5, "p_scale": 0.5, "scale_dex": 0.3,
                   "p_shift": 0.0, "max_shift": 50.0}


def augment_object(obj: dict, rng: np.random.Generator, params: dict | None = None) -> dict:
    """Apply the augmentations at random, each with its probability in ``params`` (defaults in
    :data:`DEFAULT_AUGMENT`): redshift (extragalactic) or flux scaling (galactic), then noise,
    then observation dropping (last, so it thins the final light curve), then a time shift."""
    p = {**DEFAULT_AUGMENT, **(params or {})}
    out = obj
    if is_extragalactic(obj):
        if rng.random() < p["p_redshift"]:
            out = redshift(out, rng, max_stretch=p["max_stretch"])
    elif rng.random() < p["p_scale"]:
        out = scale_flux(out, rng, max_dex=p["scale_dex"])
    if rng.random() < p["p_noise"]:
        out = redraw_noise(out, rng, scale=p["noise_scale"])
    if rng.random() < p["p_drop"]:
        out = drop_observations(out, rng, max_frac=p["drop_max_frac"], min_keep=p["min_keep"])
    if rng.random() < p["p_shift"]:
        out = time_shift(out, rng, max_shift=p["max_shift"])
    return _copy(out) if out is obj else out


def objects_to_lightcurves(objects: list[dict]) -> LightCurves:
    """Pack per-object dicts (as :meth:`LightCurves.object` returns) into one LightCurves."""
    from .data import META_COLUMNS

    lengths = np.array([len(o["mjd"]) for o in objects], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    cat = lambda k: (np.concatenate([np.asarray(o[k]) for o in objects])  # noqa: E731
                     if objects else np.zeros(0))
    meta = {c: np.array([float(o.get(c, np.nan)) for o in objects], dtype=np.float64) for c in META_COLUMNS}
    return LightCurves(offsets, cat("mjd"), cat("passband"), cat("flux"), cat("flux_err"), cat("detected"), meta)


def augment_lightcurves(lc: LightCurves, rng: np.random.Generator, n_copies: int = 1,
                        params: dict | None = None) -> tuple[LightCurves, np.ndarray]:
    """``n_copies`` augmented copies of every object of ``lc`` (for the feature/LightGBM path).

    Returns ``(augmented, source)``: ``augmented`` holds ``len(lc) * n_copies`` objects, copy
    ``c`` of object ``i`` at row ``c * len(lc) + i``; ``source`` ``(len(lc) * n_copies,)`` is the
    index of the original object (use it to repeat labels and to keep copies in their object's
    split group). ``lc`` is not modified.
    """
    objects = []
    for _ in range(int(n_copies)):
        for i in range(len(lc)):
            objects.append(augment_object(lc.object(i), rng, params))
    source = np.tile(np.arange(len(lc)), int(n_copies))
    return objects_to_lightcurves(objects), source
