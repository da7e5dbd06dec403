"""The survey side of the PLAsTiCC-format simulator: sky positions, LSST-like cadence, noise and
detection, and the driver that draws objects until enough of each class pass the detection cut
(see :mod:`skysift.transients.physics` for the models).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .data import CLASSES, GALACTIC_CLASSES, UNKNOWN_CLASS, LightCurves
from .physics import SURVEY_END, SURVEY_START, _draw_params, _true_flux, distance_modulus

#: class counts of the PLAsTiCC training set (7,848 objects); simulated class fractions follow them
PLASTICC_TRAIN_COUNTS = {6: 151, 15: 495, 16: 924, 42: 1193, 52: 183, 53: 30, 62: 484, 64: 102,
                         65: 981, 67: 208, 88: 370, 90: 2313, 92: 239, 95: 175}
#: share of deep-drilling-field objects per class in the PLAsTiCC training set (27 % overall: the
#: spectroscopic follow-up favoured the deep fields)
DDF_FRACTION = {6: 0.05, 15: 0.02, 16: 0.18, 42: 0.25, 52: 0.38, 53: 0.13, 62: 0.27, 64: 0.02,
                65: 0.31, 67: 0.32, 88: 0.32, 90: 0.36, 92: 0.24, 95: 0.23, UNKNOWN_CLASS: 0.2}
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
MIN_DETECTIONS = 2   # the PLAsTiCC training set keeps objects with >= 2 detections


# ---------------------------------------------------------------------------------------------
# sky, cadence, noise
# ---------------------------------------------------------------------------------------------
def _sky_positions(k, ddf, galactic, rng):
    """(ra, decl, gal_l, gal_b, mwebv) of k objects; DDF objects lie in one of the deep fields."""
    import astropy.units as un
    from astropy.coordinates import SkyCoord

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
