"""Survey-like copies (issue 17): the physics of a redshifted copy against astropy, copies never
crossing a split, the Parquet cache and its invalidation, and the official 15-column score."""
from __future__ import annotations

import math

import numpy as np
import pytest

import skysift
from skysift.core.data import TaskData
from skysift.core.task import get_task
from skysift.transients import survey_shift
from skysift.transients.data import PASSBAND_WAVELENGTH_NM, LightCurves
from skysift.transients.evaluation import output_figures
from skysift.transients.survey_shift import ShiftSettings, survey_copy, survey_like

TASK = get_task("transients")
G, R = 1, 2
SIGMA_T = 12.0  # d, width of the test transient


def _spectrum(lam_nm):
    """A blue spectrum (f_ν peaking at 400 nm, Gaussian in ln λ)."""
    return np.exp(-0.5 * (np.log(lam_nm / 400.0) / 0.35) ** 2)


def _transient(z=0.1, amp=2000.0, step=3.0) -> dict:
    """A Gaussian-in-time transient observed densely in all six bands with tiny errors."""
    t = np.arange(60020.0, 60200.0, step)
    mjd = np.repeat(t, 6) + np.tile(np.arange(6) * 0.01, len(t))
    band = np.tile(np.arange(6), len(t))
    lam = np.asarray(PASSBAND_WAVELENGTH_NM)[band]
    flux = amp * _spectrum(lam) * np.exp(-0.5 * ((mjd - 60100.0) / SIGMA_T) ** 2)
    return {"mjd": mjd, "passband": band.astype(np.int8), "flux": flux.astype(np.float32),
            "flux_err": np.full(len(mjd), 0.05, np.float32), "detected": np.abs(flux) > 0.25,
            "ddf": 0.0, "hostgal_specz": z, "hostgal_photoz": z, "hostgal_photoz_err": 0.01,
            "distmod": 38.3, "mwebv": 0.02}


def _peak_and_width(o: dict, band: int) -> tuple[float, float]:
    m = np.asarray(o["passband"]) == band
    t, f = np.asarray(o["mjd"])[m], np.asarray(o["flux"], np.float64)[m]
    w = np.where(f > 0.2 * f.max(), f, 0.0)  # the core of the peak: the noise wings would bias the moment
    mean = (w * t).sum() / w.sum()
    return float(f.max()), float(np.sqrt((w * (t - mean) ** 2).sum() / w.sum()))


def test_redshifted_copy_is_fainter_longer_and_redder_by_the_right_factors():
    from astropy.cosmology import FlatLambdaCDM

    obj = _transient(z=0.1)
    # choose z' so that the copy's r band sees the rest-frame wavelength of the original g band
    s = PASSBAND_WAVELENGTH_NM[R] / PASSBAND_WAVELENGTH_NM[G]
    z_new = s * 1.1 - 1.0
    copy = survey_copy(obj, np.random.default_rng(0), ShiftSettings(max_drop=0.0), z_new=z_new, time_shift=0.0)
    assert copy is not None and copy["hostgal_specz"] == pytest.approx(z_new)
    cosmo = FlatLambdaCDM(H0=70.0, Om0=0.3)
    d_old, d_new = cosmo.luminosity_distance([0.1, z_new]).value
    dimming = s * (d_old / d_new) ** 2  # f_ν per unit frequency: (1+z) / D_L², relative
    peak_g0, width_g0 = _peak_and_width(obj, G)
    peak_r1, width_r1 = _peak_and_width(copy, R)
    assert peak_r1 == pytest.approx(dimming * peak_g0, rel=0.05)      # fainter, by astropy's factor
    assert width_r1 == pytest.approx(s * width_g0, rel=0.05)          # longer: time dilation
    # redder: the copy's g/r colour is the original's colour one band bluer, so g/r falls
    peak_g1, _ = _peak_and_width(copy, G)
    peak_r0, _ = _peak_and_width(obj, R)
    assert peak_g1 / peak_r1 < 0.9 * peak_g0 / peak_r0
    # the release's metadata follow: distmod of the new photo-z, WFD, detection recomputed
    assert copy["ddf"] == 0.0 and copy["distmod"] > obj["distmod"]
    assert np.array_equal(copy["detected"], np.abs(copy["flux"]) / copy["flux_err"] > 5)
    assert np.array_equal(obj["flux"], _transient(z=0.1)["flux"])  # the input is not modified


def test_galactic_objects_keep_their_flux_and_deep_fields_get_wfd_noise():
    obj = _transient(z=0.0)
    obj.update(hostgal_photoz=0.0, hostgal_specz=0.0, distmod=np.nan, ddf=1.0)
    copy = survey_copy(obj, np.random.default_rng(1), ShiftSettings(max_drop=0.0))
    assert copy is not None and copy["ddf"] == 0.0 and copy["hostgal_photoz"] == 0.0
    assert len(copy["mjd"]) < 0.6 * len(obj["mjd"])          # thinned to a WFD-like count
    assert np.median(copy["flux_err"]) > 10 * np.median(obj["flux_err"])  # WFD single-visit depth


def test_undetectable_copies_are_dropped():
    obj = _transient(z=0.1, amp=30.0)
    obj["flux_err"] = np.full(len(obj["mjd"]), 5.0, np.float32)
    assert survey_copy(obj, np.random.default_rng(2), ShiftSettings(), z_new=2.5, time_shift=0.0) is None


@pytest.fixture(scope="module")
def small():
    from skysift.transients.simulate import simulate_objects

    ids, lc, targets, _ = simulate_objects(60, seed=3)
    names = sorted({str(int(t)) for t in targets}, key=int)
    y = np.searchsorted(np.array(names, dtype=int), targets)
    return TaskData(ids=ids, x=lc, y=y, class_names=names)


def test_copies_stay_in_their_objects_split_and_are_deterministic(small, monkeypatch):
    monkeypatch.setenv("SKYSIFT_WORKERS", "0")
    monkeypatch.setenv("SKYSIFT_CACHE_DIR", "off")
    train, val = small.subset(np.arange(0, 40)), small.subset(np.arange(40, 60))
    s = ShiftSettings(copies=2)
    tr = survey_like(train, s, seed=0, keep_originals=True)
    va = survey_like(val, s, n_copies=1, seed=1)
    assert set(tr.groups.tolist()) <= set(train.ids.tolist())
    assert set(va.groups.tolist()) <= set(val.ids.tolist())
    assert not set(tr.groups.tolist()) & set(va.groups.tolist())
    assert len(tr) > len(train) and len(va) <= len(val)
    # labels follow the copies; an object's copies do not depend on its neighbours
    for i, g in enumerate(tr.groups):
        assert tr.y[i] == train.y[list(train.ids).index(g)]
    alone = survey_like(train.subset(np.arange(5, 6)), s, seed=0)
    first = [i for i, g in enumerate(tr.groups) if g == train.ids[5] and "#" in str(tr.ids[i])]
    if len(alone):
        assert np.array_equal(alone.x.object(0)["flux"], tr.x.object(first[0])["flux"])


def test_training_uses_copies_and_reports_both_figures(small, tmp_path):
    model = skysift.train("transients", small, tmp_path / "run", model="lgbm",
                          model_params={"n_estimators": 5, "survey_copies": 1, "survey_val_copies": 1},
                          progress=False, val_frac=0.3, test_frac=0.2)
    card = model.card
    assert card["data"]["n_train_copies"] > card["data"]["n_train"]  # the objects plus their copies
    for key in ("validation_metrics", "validation_metrics_as_is", "test_metrics", "test_metrics_test_like"):
        assert math.isfinite(card[key]["plasticc_log_loss"]), key
        assert "plasticc_log_loss_14" in card[key] and "class_99_top_fraction" in card[key]
    assert "test-like copies" in card["protocol"]


def test_cache_hits_and_invalidation(small, tmp_path, monkeypatch):
    monkeypatch.setenv("SKYSIFT_WORKERS", "0")
    monkeypatch.setenv("SKYSIFT_CACHE_DIR", str(tmp_path))
    calls = []
    real = survey_shift._copies_of_chunk
    monkeypatch.setattr(survey_shift, "_copies_of_chunk", lambda a: calls.append(1) or real(a))
    part = small.subset(np.arange(20))
    a = survey_like(part, ShiftSettings(copies=1), seed=0)
    n = len(calls)
    b = survey_like(part, ShiftSettings(copies=1), seed=0)
    assert len(calls) == n  # served from the cache
    assert np.array_equal(a.x.flux, b.x.flux) and list(a.ids) == list(b.ids)
    survey_like(part, ShiftSettings(copies=1, z_factor=2.0), seed=0)
    assert len(calls) > n  # a changed setting is a new entry
    m = len(calls)
    survey_like(part, ShiftSettings(copies=1), seed=1)
    assert len(calls) > m  # so is another seed
    # feature matrices: keyed by the light curves and the feature set
    from skysift.transients.cache import cached_features

    fcalls = []

    def compute():
        fcalls.append(1)
        return np.arange(len(part) * 2, dtype=np.float32).reshape(-1, 2), ["a", "b"]

    x1, names = cached_features(part.x, "full", compute)
    x2, _ = cached_features(part.x, "full", compute)
    assert len(fcalls) == 1 and np.array_equal(x1, x2) and names == ["a", "b"]
    cached_features(part.x, "seed", compute)
    moved = LightCurves(part.x.offsets, part.x.mjd + 1.0, part.x.passband, part.x.flux, part.x.flux_err,
                        part.x.detected, part.x.meta)
    cached_features(moved, "full", compute)
    assert len(fcalls) == 3
    assert len(list(tmp_path.rglob("*.parquet"))) >= 8


def test_official_score_of_fifteen_columns_by_hand():
    # columns 90, 42, 99; truths 90, 42, 991 (scored as 99), 90
    cols = [90, 42, 99]
    out = np.array([[0.6, 0.2, 0.2], [0.1, 0.5, 0.4], [0.2, 0.2, 0.6], [0.1, 0.2, 0.7]])
    f = output_figures([90, 42, 991, 90], out, cols)
    # class 90: (−ln .6 − ln .1)/2, class 42: −ln .5, class 99 (weight 2): −ln .6
    l90 = (-math.log(0.6) - math.log(0.1)) / 2
    expect = (l90 - math.log(0.5) + 2 * -math.log(0.6)) / 4
    assert f["plasticc_log_loss"] == pytest.approx(expect, rel=1e-9)
    assert f["accuracy_output"] == pytest.approx(3 / 4)        # the last SN Ia's top column is 99
    assert f["class_99_top_fraction"] == pytest.approx(1 / 3)
    assert f["accuracy_sn_ia_ii_ibc"] == pytest.approx(2 / 3)
    # SN Ia scores 0.6, 0.1 against 0.1, 0.2: pairs won 1 + 1 + ½ (tie) + 0 of 4
    assert f["sn_ia_auc"] == pytest.approx(0.625)
    assert f["class_99_auc"] == pytest.approx(2 / 3)  # 0.6 ranks above 0.2 and 0.4, below 0.7
    # rows renormalised first, then clipped: scaling a row changes nothing
    g = output_figures([90, 42, 991, 90], out * np.array([[2.0], [1.0], [3.0], [0.5]]), cols)
    assert g["plasticc_log_loss"] == pytest.approx(expect, rel=1e-9)


def test_evaluate_scores_what_predict_writes_with_class_99_labels(small, tmp_path):
    model = skysift.train("transients", small, tmp_path / "run", model="lgbm",
                          model_params={"n_estimators": 5, "survey_copies": 0}, progress=False, test_frac=0.0)
    data = small.subset(np.arange(20))
    y_names = [*data.class_names, "99"]
    y = data.y.copy()
    y[:4] = len(y_names) - 1  # four objects of no known class
    labelled = TaskData(ids=data.ids, x=data.x, y=y, class_names=y_names)
    m = model.evaluate(labelled)
    frame = model.predict(TaskData(ids=data.ids, x=data.x, y=None, class_names=y_names))
    out = frame.drop(columns="object_id").to_numpy()
    cols = [int(c.split("_")[1]) for c in frame.columns[1:]]
    targets = [int(y_names[i]) for i in y]
    assert m["plasticc_log_loss"] == pytest.approx(output_figures(targets, out, cols)["plasticc_log_loss"], rel=1e-6)
    assert len(cols) == 15 and cols[-1] == 99
    known = model.evaluate(data.subset(np.arange(4, 20)))
    assert m["plasticc_log_loss_14"] == pytest.approx(known["plasticc_log_loss_14"], rel=1e-9)


def test_gp_features_read_a_gaussian_transient_right():
    """The opt-in GP features (``--param gp_features=true``) on a dense Gaussian-in-time transient:
    half-maximum rise and fall of σ·√(2 ln 2) in rest-frame days, a blue peak colour (g brighter than r),
    and a GP that fits the points it was given."""
    from skysift.transients.gp_features import GRID_STEP, NAMES, object_features

    z = 0.1
    f = dict(zip(NAMES, object_features(_transient(z=z))))
    half = SIGMA_T * math.sqrt(2 * math.log(2)) / (1 + z)
    # a crossing is the first grid point past the level: late by less than one grid step
    for key in ("gp_rise50", "gp_fall50"):
        assert half - 0.5 <= f[key] <= half + GRID_STEP / (1 + z), key
    g_r = (_spectrum(PASSBAND_WAVELENGTH_NM[G]) - _spectrum(PASSBAND_WAVELENGTH_NM[R])) / \
        (_spectrum(PASSBAND_WAVELENGTH_NM[G]) + _spectrum(PASSBAND_WAVELENGTH_NM[R]))
    assert f["gp_peak_colour_12"] == pytest.approx(g_r, abs=0.05)
    assert f["gp_chi2_per_point"] < 5.0
