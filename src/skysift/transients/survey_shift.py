"""Survey-like copies of PLAsTiCC training objects: train and validate on what the survey will see.

The PLAsTiCC training set is the spectroscopically confirmed sample — bright, nearby, a quarter of it
in the deep-drilling fields — while the survey to classify is fainter, farther and almost all
wide-fast-deep (WFD). A model fitted and validated on training-like objects learns the wrong
distribution and reports a figure that does not hold on the survey. Following Kyle Boone's winning
entry (Avocado, Boone 2019, AJ 158, 257), every object gets several *survey-like copies*:

* **a 2-D Gaussian process per object** (flux against time and log-wavelength; Matérn-3/2, as
  Avocado) models the light curve between observations and between bands. scikit-learn's
  :class:`~sklearn.gaussian_process.GaussianProcessRegressor` with the measurement errors as its
  per-point noise; the wavelength length scale is fixed (1.0 in ln λ, Avocado's 6000 Å over the LSST
  range), the amplitude is the object's largest |flux| (Avocado's starting value) and the time
  length scale is the best of :data:`TIME_SCALES` by marginal likelihood — three Cholesky
  factorisations instead of an optimiser run, so the GP costs a few ms per object.
* **redshift** (extragalactic objects): ``z' = z · 10**u``, ``u`` uniform in
  ``[log10 0.95, log10 z_factor]``, capped at ``z_max``. An observation at time ``t`` in band ``b``
  reads the GP at the rest-frame time ``t_ref + (t − t_ref − Δ)/s`` and wavelength ``λ_b / s``
  (``s = (1+z')/(1+z)``: time dilation and the band moving bluewards in the rest frame), dimmed by
  ``s · 10**(−0.4 (μ(z') − μ(z)))`` (distance moduli of astropy's FlatLambdaCDM(70, 0.3), the
  release's cosmology; the factor ``s`` is the bandwidth compression of an f_ν flux). ``Δ`` is a
  random shift of the event against the survey's cadence (``max_time_shift``).
* **photo-z redrawn** at ``z'`` with the simulator's host photo-z model (σ ≈ 0.02 (1+z) for most
  hosts, broad for a quarter, 4 % catastrophic outliers), ``distmod`` recomputed from it as in the
  release; ``hostgal_specz = z'``.
* **WFD cadence**: a deep-drilling object keeps each observation with the probability that brings it
  to a WFD-like count (~130 in three years) and gets WFD single-visit errors (the simulator's sky
  noise per band, with its visit-to-visit scatter); then every object loses a random fraction
  (up to ``max_drop``) of its observations. The season gaps are the object's own (its field's).
* **noise to the survey's depth**: each kept observation keeps its own error (WFD) or the WFD error
  (ex-DDF), plus the GP's own uncertainty in quadrature, and the flux gets that much Gaussian noise;
  ``detected`` is recomputed (|S/N| > 5). A copy with fewer than two detections would not have passed
  the survey's trigger: it is redrawn (up to ``tries`` times) and otherwise dropped.

Galactic objects keep their flux and times (no redshift); they get the cadence and noise changes.

Copies are made *after* the split, from each split's own objects, so a copy always lies in its
original's split; its ``groups`` key is the original id. :func:`survey_like` runs in a process pool
(the GP is the cost) with a progress bar, and its output is cached in Parquet keyed by the input
light curves, the settings, the seed and this module's source (:mod:`.cache`).
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..core.data import TaskData
from ..errors import ConfigError
from .augment import DETECTION_SNR, _reference_time, distmod, is_extragalactic, objects_to_lightcurves
from .data import META_COLUMNS, PASSBAND_WAVELENGTH_NM, LightCurves

#: candidate time length scales [d] of the GP (observer frame); picked per object by marginal likelihood
TIME_SCALES = (8.0, 20.0, 50.0)
#: Matérn-3/2 length scale in ln λ (Avocado: 6000 Å over LSST's 3670-9710 Å, ≈ 1 in ln λ)
WAVE_SCALE = 1.0
_LOG_WAVE = np.log(np.asarray(PASSBAND_WAVELENGTH_NM, dtype=np.float64))
MIN_DETECTIONS = 2


@dataclass(frozen=True)
class ShiftSettings:
    """How survey-like copies are drawn (data parameters ``survey_*`` of the feature models)."""

    #: copies per training object (0: no survey-like training set, train on the objects as they are)
    copies: int = 4
    #: the new redshift is ``z · 10**U(log10 0.95, log10 z_factor)``
    z_factor: float = 3.0
    z_max: float = 3.0
    #: the event moves by up to this many days against the cadence
    max_time_shift: float = 50.0
    #: objects lose a fraction U(0, max_drop) of their observations
    max_drop: float = 0.3
    #: WFD-like number of observations (mean, sd) a deep-field object is thinned to
    wfd_n_obs: tuple[float, float] = (130.0, 25.0)
    tries: int = 6

    @classmethod
    def from_params(cls, params: dict) -> ShiftSettings:
        kw = {k[len("survey_"):]: v for k, v in params.items() if k.startswith("survey_")}
        unknown = set(kw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown survey settings {sorted('survey_' + k for k in unknown)}; known: "
                              f"{sorted('survey_' + k for k in cls.__dataclass_fields__)}")
        if "wfd_n_obs" in kw:
            kw["wfd_n_obs"] = tuple(kw["wfd_n_obs"])
        s = cls(**kw)
        if s.copies < 0 or s.z_factor < 1 or s.z_max <= 0 or not 0 <= s.max_drop < 1:
            raise ConfigError(f"invalid survey settings {asdict(s)}: copies >= 0, z_factor >= 1, "
                              "z_max > 0, 0 <= max_drop < 1")
        return s

    def key(self) -> str:
        return repr(sorted(asdict(self).items()))


# ---- the Gaussian process -------------------------------------------------------------------
class LightCurveGP:
    """A 2-D GP of one object's flux against (time, ln λ); see the module docstring."""

    def __init__(self, mjd, band, flux, err):
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern

        self.t0 = float(np.median(mjd)) if len(mjd) else 0.0
        amp = float(np.max(np.abs(flux))) if len(flux) else 1.0
        amp = max(amp, 1e-3)
        best = None
        for tau in TIME_SCALES:
            # anisotropic Matérn: time and log-wavelength each on their own length scale
            kernel = ConstantKernel(amp**2, "fixed") * Matern([tau, WAVE_SCALE], "fixed", nu=1.5)
            gp = GaussianProcessRegressor(kernel, alpha=np.maximum(err.astype(np.float64), 1e-6) ** 2,
                                          optimizer=None, normalize_y=False, copy_X_train=False)
            gp.fit(self._x(mjd, _LOG_WAVE[band]), flux.astype(np.float64))
            if best is None or gp.log_marginal_likelihood_value_ > best[0]:
                best = (gp.log_marginal_likelihood_value_, gp, tau)
        _, self.gp, self.tau = best

    def _x(self, t, log_wave) -> np.ndarray:
        return np.column_stack([np.asarray(t, dtype=np.float64) - self.t0, np.asarray(log_wave, np.float64)])

    def predict(self, t, log_wave, *, std: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """GP mean and standard deviation (None unless ``std``) at times ``t`` [MJD] and
        ln-wavelengths ``log_wave`` [ln nm]."""
        if len(t) == 0:
            return np.zeros(0), np.zeros(0)
        if not std:
            return self.gp.predict(self._x(t, log_wave)), None
        mu, sd = self.gp.predict(self._x(t, log_wave), return_std=True)
        return mu, sd


# ---- one copy ---------------------------------------------------------------------------------
def _thin_to_wfd(obj: dict, rng: np.random.Generator, s: ShiftSettings) -> tuple[np.ndarray, np.ndarray]:
    """Rows kept and whether each kept row needs a WFD error (it was a deep-field observation)."""
    n = len(obj["mjd"])
    is_ddf = bool(np.nan_to_num(obj.get("ddf", 0.0)) > 0.5)
    keep = np.ones(n, bool)
    if is_ddf:
        target = max(10.0, rng.normal(*s.wfd_n_obs))
        keep &= rng.random(n) < min(1.0, target / max(n, 1))
    keep &= rng.random(n) >= rng.uniform(0.0, s.max_drop)
    if keep.sum() < 5:  # never leave a copy with a handful of points: keep some at random
        keep[rng.choice(n, size=min(n, 5), replace=False)] = True
    rows = np.flatnonzero(keep)
    return rows, np.full(len(rows), is_ddf)


def _wfd_errors(band: np.ndarray, flux: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Single-visit WFD errors: the simulator's sky noise per band with its visit-to-visit scatter
    plus the source's Poisson term (the same survey model as :mod:`.survey`)."""
    from .survey import POISSON_GAIN, SKY_NOISE_WFD

    sky = SKY_NOISE_WFD[band] * rng.lognormal(0.0, 0.25, len(band))
    return np.sqrt(sky**2 + np.maximum(flux, 0.0) / POISSON_GAIN[band])


def _photoz(z_new: float, rng: np.random.Generator) -> tuple[float, float, float]:
    """(photo-z, its error, distmod) of a host at ``z_new``: the simulator's host photo-z model."""
    from .survey import _host_redshifts

    _, photo, err, mu = _host_redshifts(np.array([z_new]), np.array([False]), np.array([False]), rng)
    return float(photo[0]), float(err[0]), float(mu[0])


def survey_copy(obj: dict, rng: np.random.Generator, settings: ShiftSettings,
                gp: LightCurveGP | None = None, *, z_new: float | None = None,
                time_shift: float | None = None) -> dict | None:
    """One survey-like copy of ``obj`` (a :meth:`LightCurves.object` dict), or None when no draw
    passes the survey's trigger (two detections). ``gp`` is the object's fitted GP (made here when
    None and the object is extragalactic); ``z_new`` / ``time_shift`` fix the draws (for tests)."""
    extragalactic = is_extragalactic(obj)
    if extragalactic and gp is None:
        gp = LightCurveGP(np.asarray(obj["mjd"]), np.asarray(obj["passband"], np.int64),
                          np.asarray(obj["flux"]), np.asarray(obj["flux_err"]))
    tries = 1 if z_new is not None else max(1, settings.tries)
    for _ in range(tries):
        rows, needs_wfd = _thin_to_wfd(obj, rng, settings)
        mjd = np.asarray(obj["mjd"], np.float64)[rows]
        band = np.asarray(obj["passband"], np.int64)[rows]
        err = np.asarray(obj["flux_err"], np.float64)[rows]
        out = dict(obj)
        if extragalactic:
            specz = obj.get("hostgal_specz", np.nan)
            z = float(specz) if np.isfinite(specz) and specz > 0 else float(obj["hostgal_photoz"])
            if z_new is None:
                zp = z * 10 ** rng.uniform(np.log10(0.95), np.log10(settings.z_factor))
                zp = float(min(zp, max(settings.z_max, z)))
            else:
                zp = float(z_new)
            s = (1.0 + zp) / (1.0 + z)
            shift = rng.uniform(-settings.max_time_shift, settings.max_time_shift) if time_shift is None \
                else float(time_shift)
            t_ref = _reference_time(obj)
            mu, sd = gp.predict(t_ref + (mjd - t_ref - shift) / s, _LOG_WAVE[band] - np.log(s))
            dim = s * 10.0 ** (-0.4 * (distmod(zp) - distmod(z)))
            mean = dim * mu
            base = np.where(needs_wfd, _wfd_errors(band, mean, rng), err)
            new_err = np.sqrt(base**2 + (dim * sd) ** 2)
            new_flux = mean + rng.standard_normal(len(rows)) * new_err
            photo, photo_err, mu_host = _photoz(zp, rng)
            out.update(hostgal_specz=zp, hostgal_photoz=photo, hostgal_photoz_err=photo_err, distmod=mu_host)
        else:
            flux = np.asarray(obj["flux"], np.float64)[rows]
            wfd = np.maximum(_wfd_errors(band, flux, rng), err)
            new_err = np.where(needs_wfd, wfd, err)
            new_flux = flux + rng.standard_normal(len(rows)) * np.sqrt(np.maximum(new_err**2 - err**2, 0.0))
        detected = np.abs(new_flux) / new_err > DETECTION_SNR
        if detected.sum() >= MIN_DETECTIONS:
            out.update(mjd=mjd, passband=band.astype(np.int8), flux=new_flux.astype(np.float32),
                       flux_err=new_err.astype(np.float32), detected=detected, ddf=0.0)
            return out
    return None


# ---- many objects -----------------------------------------------------------------------------
def _object_key(oid: Any) -> int:
    """A stable integer per object id, so that an object's copies do not depend on its row."""
    try:
        return int(oid) & 0x7FFFFFFF
    except (TypeError, ValueError):
        return int.from_bytes(hashlib.sha1(str(oid).encode()).digest()[:4], "little")


def _copies_of_chunk(args) -> list[tuple[int, int, dict]]:
    """Worker: ``(row, copy, object)`` for every copy of every object of one chunk."""
    from ..core.parallel import one_blas_thread

    with one_blas_thread():
        return _copies(*args)


def _copies(lc, ids, rows, settings, n_copies, seed) -> list[tuple[int, int, dict]]:
    out = []
    for i, oid, row in zip(range(len(lc)), ids, rows):
        obj = lc.object(i)
        gp = None
        if is_extragalactic(obj):
            gp = LightCurveGP(np.asarray(obj["mjd"]), np.asarray(obj["passband"], np.int64),
                              np.asarray(obj["flux"]), np.asarray(obj["flux_err"]))
        for c in range(n_copies):
            rng = np.random.default_rng([int(seed), _object_key(oid), c])
            o = survey_copy(obj, rng, settings, gp)
            if o is not None:
                out.append((int(row), c, o))
    return out


def survey_like(data: TaskData, settings: ShiftSettings, *, n_copies: int | None = None, seed: int = 0,
                keep_originals: bool = False, what: str = "objects") -> TaskData:
    """``n_copies`` (default ``settings.copies``) survey-like copies of every object of ``data``
    (plus the objects themselves with ``keep_originals``), as a new TaskData: ids ``"<id>#<copy>"``
    (the originals keep theirs), ``groups`` the original ids, labels repeated. Cached (:mod:`.cache`)."""
    from .cache import cached_survey_like

    n_copies = settings.copies if n_copies is None else int(n_copies)
    lc = data.x

    def copies_of(idx: np.ndarray) -> list[list]:
        """Per object of ``idx``: its ``(copy, object)`` pairs."""
        from concurrent.futures import ProcessPoolExecutor

        from ..core.parallel import pool_context, worker_count
        from ..core.progress import track

        chunk = 100
        jobs = [(lc.take(part), data.ids[part], part, settings, n_copies, seed)
                for part in (idx[a:a + chunk] for a in range(0, len(idx), chunk))]
        ctx, n_workers = pool_context(), worker_count()
        flat: list = []
        desc = f"survey-like copies of {len(idx):,} {what}"
        if ctx is None or n_workers <= 1 or len(jobs) < 2:
            for r in track(map(_copies_of_chunk, jobs), desc, total=len(jobs), unit="chunks"):
                flat.extend(r)
        else:
            with ProcessPoolExecutor(n_workers, mp_context=ctx) as pool:
                for r in track(pool.map(_copies_of_chunk, jobs), desc, total=len(jobs), unit="chunks"):
                    flat.extend(r)
        per: dict[int, list] = {int(i): [] for i in idx}
        for row, c, o in flat:
            per[row].append((c, o))
        return [per[int(i)] for i in idx]

    def compute() -> tuple[LightCurves, np.ndarray, np.ndarray]:
        from .cache import memoised, object_digests

        key = f"survey:{settings.key()}|{n_copies}|{seed}"
        per_object = memoised(key, object_digests(lc, data.ids), copies_of)
        results = [(i, c, o) for i, pairs in enumerate(per_object) for c, o in pairs]
        results.sort(key=lambda r: (r[1], r[0]))  # copy-major, as the core's index order
        aug = objects_to_lightcurves([o for _, _, o in results]) if results else lc.take(np.zeros(0, np.int64))
        return (aug, np.array([r[0] for r in results], dtype=np.int64),
                np.array([r[1] for r in results], dtype=np.int64))

    aug, source, copy = cached_survey_like(lc, data.ids, settings.key(), n_copies, seed, compute)
    ids = np.array([f"{data.ids[s]}#{c}" for s, c in zip(source, copy)], dtype=object)
    groups = data.groups[source]
    y = None if data.y is None else data.y[source]
    meta = {**data.meta, "survey_like": {"copies": n_copies, "seed": seed, "settings": asdict(settings),
                                          "dropped": int(len(data) * n_copies - len(source))}}
    out = TaskData(ids=ids, x=aug, y=y, class_names=list(data.class_names), groups=groups,
                   source=f"{data.source} (survey-like copies)", meta=meta)
    if not keep_originals:
        return out
    orig = TaskData(ids=np.asarray(data.ids).astype(object), x=lc, y=data.y, class_names=list(data.class_names),
                    groups=data.groups, source=data.source, meta=dict(data.meta))
    return TaskData(ids=np.concatenate([orig.ids, out.ids]), x=LightCurves.concat([lc, aug]),
                    y=None if data.y is None else np.concatenate([data.y, y]), class_names=list(data.class_names),
                    groups=np.concatenate([np.asarray(data.groups), groups]), source=out.source, meta=meta)


__all__ = ["LightCurveGP", "META_COLUMNS", "ShiftSettings", "survey_copy", "survey_like"]
