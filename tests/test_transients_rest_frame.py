"""The rest-frame features of the default ``lgbm`` (issue 17) on a hand-made light curve against
astropy's distance modulus and the time dilation, and the declared decision rule
(``predict --predicted-class``): the Bayes decision under the stored training class frequencies,
leaving the 15 probability columns as they are."""
from __future__ import annotations

import math

import numpy as np
import pytest

import skysift
from skysift.core.data import TaskData
from skysift.transients.augment import objects_to_lightcurves
from skysift.transients.data import KAGGLE_CLASS_WEIGHTS, PASSBAND_WAVELENGTH_NM
from skysift.transients.evaluation import output_figures, prior_decision
from skysift.transients.features import REST_NAMES, extract_features

SIGMA_T = 10.0  # d, rest-frame width of the test transient
M_ABS = -19.3  # the absolute magnitude it is given (an SN Ia's)
BAND_SCALE = (0.3, 0.8, 1.0, 0.7, 0.5, 0.4)  # a different peak flux per band: tells which band is read


#: rest-frame days of the observations (every band at each): the GP passes through noiseless points
OBSERVED_REST_DAYS = (-15.0, -7.0, 0.0, 7.0, 15.0, 30.0, 45.0)


def _object(z: float) -> dict:
    """A Gaussian transient at redshift ``z`` observed in all bands at :data:`OBSERVED_REST_DAYS`
    (time-dilated: × (1 + z) in the observer frame) with tiny errors; its brightest band (r, scale 1)
    peaks at the flux of absolute magnitude M_ABS at astropy's distance modulus."""
    from astropy.cosmology import FlatLambdaCDM

    mu = float(FlatLambdaCDM(H0=70.0, Om0=0.3).distmod(z).value)
    peak = 10 ** (-0.4 * (M_ABS + mu - 27.5))
    t = 60150.0 + np.asarray(OBSERVED_REST_DAYS) * (1 + z)
    mjd = np.repeat(t, 6) + np.tile(np.arange(6) * 0.001, len(t))
    band = np.tile(np.arange(6), len(t))
    flux = peak * np.asarray(BAND_SCALE)[band] * np.exp(-0.5 * ((mjd - 60150.0) / (SIGMA_T * (1 + z))) ** 2)
    return {"mjd": mjd, "passband": band.astype(np.int8), "flux": flux.astype(np.float32),
            "flux_err": np.full(len(mjd), peak * 1e-4, np.float32), "detected": flux > peak * 5e-3,
            "ddf": 0.0, "hostgal_specz": z, "hostgal_photoz": z, "hostgal_photoz_err": 0.01, "distmod": mu,
            "mwebv": 0.0}


def _nearest_band(z: float, rest_nm: float) -> int:
    return int(np.argmin(np.abs(np.log(np.asarray(PASSBAND_WAVELENGTH_NM) / (1 + z)) - np.log(rest_nm))))


@pytest.mark.parametrize("z", [0.1, 0.3, 0.6])
def test_rest_frame_features_of_a_hand_made_transient_match_astropy(z):
    X, names = extract_features(objects_to_lightcurves([_object(z)]), "full", n_jobs=1)
    f = dict(zip(names, X[0].astype(np.float64)))
    assert set(REST_NAMES) <= set(names)
    assert f["rest_peak_shift_d"] == 0.0
    # the band whose rest-frame wavelength is nearest: its peak magnitude minus astropy's distmod
    for rest_nm in (440.0, 550.0, 700.0):
        b = _nearest_band(z, rest_nm)
        expect = M_ABS - 2.5 * math.log10(BAND_SCALE[b])
        assert f[f"rest_absmag_peak_{rest_nm:.0f}nm"] == pytest.approx(expect, abs=0.01), rest_nm
    # 15 rest-frame days after the peak are 15 (1+z) observed days: the same decline at every z
    assert f["rest_flux_p15d_550nm"] == pytest.approx(math.exp(-0.5 * (15 / SIGMA_T) ** 2), abs=0.01)
    assert f["rest_flux_m7d_440nm"] == pytest.approx(math.exp(-0.5 * (7 / SIGMA_T) ** 2), abs=0.01)
    # the colour at peak compares the bands the rest-frame wavelengths fall in
    a, b = BAND_SCALE[_nearest_band(z, 440.0)], BAND_SCALE[_nearest_band(z, 550.0)]
    assert f["rest_colour_440_550nm_p0d"] == pytest.approx((a - b) / (a + b), abs=0.01)
    assert f["peak_colour_gr"] == pytest.approx((BAND_SCALE[1] - 1.0) / (BAND_SCALE[1] + 1.0), abs=0.01)


def test_features_without_the_rest_frame_block_for_models_trained_before_it():
    from skysift.transients.task import light_curve_features

    lc = objects_to_lightcurves([_object(0.2)])
    data = TaskData(ids=np.array([1]), x=lc, y=None, class_names=["90"])
    new = light_curve_features(data, {"rest_frame_features": True, "class_names": ["90"]},
                               {"rest_frame_features": True})
    old = light_curve_features(data, {"class_names": ["90"]}, {"rest_frame_features": True})  # an old card
    assert new.shape[1] == old.shape[1] + len(REST_NAMES)
    np.testing.assert_array_equal(new[:, :old.shape[1]], old)


def test_prior_decision_by_hand():
    cols = [15, 42, 90, 99]
    prior = {"15": 0.1, "42": 0.3, "90": 0.6}
    out = np.array([[0.40, 0.25, 0.30, 0.05],   # top column 15; 15 weighs 2 in the metric
                    [0.10, 0.10, 0.10, 0.70],   # 99 keeps its mass and wins
                    [0.05, 0.60, 0.30, 0.05]])
    w = np.array([KAGGLE_CLASS_WEIGHTS[c] for c in cols[:3]], dtype=float)
    assert w[0] == 2.0
    q = out[:, :3] * np.array([0.1, 0.3, 0.6]) / w
    q = q / q.sum(1, keepdims=True) * out[:, :3].sum(1, keepdims=True)
    expect = [cols[int(np.argmax(np.append(q[i], out[i, 3])))] for i in range(3)]
    assert expect == [90, 99, 42]
    assert prior_decision(out, cols, prior).tolist() == expect
    f = output_figures([90, 90, 42], out, cols, prior=prior)
    assert f["accuracy_output"] == pytest.approx(1 / 3)  # the top columns: 15, 99, 42
    assert f["accuracy_output_prior"] == pytest.approx(2 / 3)
    assert f["accuracy_sn_ia_ii_ibc_prior"] == pytest.approx(2 / 3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from skysift.transients.simulate import simulate_objects

    ids, lc, targets, _ = simulate_objects(60, seed=3)
    names = sorted({str(int(t)) for t in targets}, key=int)
    data = TaskData(ids=ids, x=lc, y=np.searchsorted(np.array(names, dtype=int), targets), class_names=names)
    run = tmp_path_factory.mktemp("rest") / "run"
    return skysift.train("transients", data, run, model="lgbm", model_params={"n_estimators": 5, "survey_copies": 0},
                         progress=False, test_frac=0.0), data, run


@pytest.mark.slow  # trains a model: ~8 s on a loaded 2-core machine
def test_predicted_class_uses_the_stored_training_prior_and_leaves_the_columns(trained, tmp_path):
    model, data, run = trained
    prior = model.card["preprocessing"]["class_prior"]
    train_ids = set(__import__("json").loads((run / "split.json").read_text())["train"])
    tr = data.subset(np.flatnonzero([str(i) in train_ids for i in data.ids]))
    counts = np.bincount(tr.y, minlength=len(data.class_names))
    assert prior == pytest.approx({c: n / counts.sum() for c, n in zip(data.class_names, counts)})
    unlabelled = TaskData(ids=data.ids, x=data.x, y=None, class_names=data.class_names)
    plain = model.predict(unlabelled)
    decided = model.predict(unlabelled, predicted_class=True)
    assert list(decided.columns) == [*plain.columns, "predicted_class"]
    assert len(plain.columns) == 16  # object_id + 15 probability columns, unchanged
    np.testing.assert_array_equal(decided[plain.columns].to_numpy(), plain.to_numpy())
    cols = [int(c.split("_")[1]) for c in plain.columns[1:]]
    assert decided["predicted_class"].tolist() == prior_decision(plain.iloc[:, 1:].to_numpy(), cols, prior).tolist()
    # from the bundle on disk too, through the CLI's API
    out = tmp_path / "pred.csv"
    frame = skysift.api.predict(run, unlabelled, out, predicted_class=True)
    assert frame["predicted_class"].tolist() == decided["predicted_class"].tolist()
    m = model.evaluate(data)
    assert "accuracy_output_prior" in m and "accuracy_output" in m


@pytest.mark.slow  # trains a model (fixture) and starts the service
def test_declared_decision_is_the_same_from_a_folder_over_http_and_from_a_dask_catalogue(trained, tmp_path,
                                                                                          as_upload):
    import pandas as pd
    from fastapi.testclient import TestClient

    from skysift.core.scale import predict_catalogue
    from skysift.serving import create_app
    from skysift.transients.stream import write_parquet_catalogue

    _, _, run = trained
    model = skysift.load(run)
    folder = skysift.simulate("transients", tmp_path / "sim", n=40, seed=11)
    reference = model.predict(folder, predicted_class=True)
    expected = dict(zip(reference["object_id"].astype(str), reference["predicted_class"].astype(str)))
    assert len(set(expected.values())) > 1  # a test that could tell rules apart

    name, raw = as_upload(folder)
    r = TestClient(create_app({"t": run})).post("/models/t/predict", files={"file": (name, raw)})
    assert r.status_code == 200, r.text
    assert {p["id"]: p["predicted_class"] for p in r.json()["predictions"]} == expected

    write_parquet_catalogue(folder / "training_set.csv", folder / "training_set_metadata.csv",
                            tmp_path / "catalogue", objects_per_partition=15)
    out = predict_catalogue(run, tmp_path / "catalogue", tmp_path / "p.csv", scheduler="inline",
                            predicted_class=True)
    got = pd.read_csv(out["path"], dtype={"object_id": str})
    assert dict(zip(got["object_id"], got["predicted_class"].astype(str))) == expected


def test_unlabelled_catalogues_are_not_cached_on_disk(tmp_path, monkeypatch):
    from skysift.transients import task as transients_task
    from skysift.transients.simulate import simulate_objects

    monkeypatch.setenv("SKYSIFT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(transients_task, "CACHE_MIN_OBJECTS", 5)
    ids, lc, targets, _ = simulate_objects(12, seed=4)
    names = sorted({str(int(t)) for t in targets}, key=int)
    labelled = TaskData(ids=ids, x=lc, y=np.searchsorted(np.array(names, dtype=int), targets), class_names=names)
    unlabelled = TaskData(ids=ids, x=lc, y=None, class_names=names)
    params = {"feature_set": "seed"}
    a = transients_task.light_curve_features(unlabelled, {}, params)
    assert not list((tmp_path / "cache").rglob("*.parquet"))  # a catalogue to predict leaves nothing behind
    b = transients_task.light_curve_features(labelled, {}, params)
    assert list((tmp_path / "cache").rglob("*.parquet"))  # a training set is cached
    np.testing.assert_array_equal(a, b)
