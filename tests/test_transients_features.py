"""transients: the PLAsTiCC metric, the feature sets and the LightGBM estimator."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from skysift.errors import ConfigError, DataError
from skysift.transients.data import LightCurves
from skysift.transients.features import extract_features, grouped_stats, seed_aggregates
from skysift.transients.gbm import MODEL_SPECS, LightGBMEstimator
from skysift.transients.metrics import per_class_log_loss, plasticc_log_loss

# ---- metric ---------------------------------------------------------------------------------------
# Three objects, columns (6, 15); truths 6, 6, 15; probabilities of the true class 0.5, 0.8, 0.75.
#   class 6  (weight 1): (−ln 0.5 − ln 0.8) / 2 = (0.693147 + 0.223144) / 2 = 0.458145
#   class 15 (weight 2): −ln 0.75 = 0.287682
#   L = (1 · 0.458145 + 2 · 0.287682) / (1 + 2) = 1.033509 / 3 = 0.344503
Y3 = np.array([6, 6, 15])
P3 = np.array([[0.5, 0.5], [0.8, 0.2], [0.25, 0.75]])
HAND = (1 * (-math.log(0.5) - math.log(0.8)) / 2 + 2 * -math.log(0.75)) / 3


def test_metric_hand_computed():
    assert HAND == pytest.approx(0.344503, abs=1e-6)
    assert plasticc_log_loss(Y3, P3, [6, 15]) == pytest.approx(HAND, rel=1e-12)
    per = per_class_log_loss(Y3, P3, ["6", "15"])  # string column names are accepted
    assert per[6] == (2, pytest.approx(0.458145, abs=1e-6))
    assert per[15] == (1, pytest.approx(0.287682, abs=1e-6))


def test_metric_renormalises_rows_and_ignores_absent_classes():
    # rows scaled by 0.5, 0.2, 0.25 (not summing to 1) give the same loss after renormalisation
    assert plasticc_log_loss(Y3, P3 * np.array([[0.5], [0.2], [0.25]]), [6, 15]) == pytest.approx(HAND, rel=1e-12)
    # Kaggle's order: each row divided by its sum first, then clipped to [1e-15, 1 − 1e-15]
    assert plasticc_log_loss([6], np.array([[3.0, 1.0]]), [6, 15]) == pytest.approx(-math.log(0.75), rel=1e-9)
    # a row [1, 1e-20]: renormalised to itself, then the 1e-20 is clipped up to 1e-15 (clip-first would
    # give the same here, but −ln of the true class 15 is −ln 1e-15, not −ln 1e-20)
    assert plasticc_log_loss([15], np.array([[1.0, 1e-20]]), [6, 15]) == pytest.approx(-math.log(1e-15), rel=1e-9)
    # the unblinded release's 991..995 are scored as 99
    P99 = np.array([[0.25, 0.25, 0.5]])
    assert plasticc_log_loss([993], P99, [6, 15, 99]) == plasticc_log_loss([99], P99, [6, 15, 99])
    # an extra column of a class nobody has (42): clipped to 1e-15, renormalised, not counted
    P = np.column_stack([P3, np.zeros(3)])
    assert plasticc_log_loss(Y3, P, [6, 15, 42]) == pytest.approx(HAND, rel=1e-9)


def test_metric_with_class_99_and_clipping():
    # a class-99 column with zeros changes nothing measurable
    P = np.column_stack([P3, np.zeros(3)])
    assert plasticc_log_loss(Y3, P, [6, 15, 99]) == pytest.approx(HAND, rel=1e-9)
    # a fourth object of class 99 given p=0.5: class 99 has weight 2
    y = np.array([6, 6, 15, 99])
    P = np.array([[0.5, 0.5, 0.0], [0.8, 0.2, 0.0], [0.25, 0.75, 0.0], [0.25, 0.25, 0.5]])
    expect = (1 * 0.458145 + 2 * 0.287682 + 2 * math.log(2)) / 5
    assert plasticc_log_loss(y, P, [6, 15, 99]) == pytest.approx(expect, abs=1e-6)
    # p = 0 for the truth is clipped to 1e-15: −ln 1e-15 = 34.5388
    P = np.array([[0.0, 1.0]])
    assert plasticc_log_loss([6], P, [6, 15]) == pytest.approx(-math.log(1e-15), rel=1e-9)
    # custom weights
    assert plasticc_log_loss(Y3, P3, [6, 15], weights={6: 1.0, 15: 1.0}) == pytest.approx(
        (0.458145 + 0.287682) / 2, abs=1e-6)


def test_metric_rejects_bad_input():
    with pytest.raises(ValueError, match="no probability column"):
        plasticc_log_loss([6, 90], P3[:2], [6, 15])
    with pytest.raises(ValueError, match="shape"):
        plasticc_log_loss(Y3, P3, [6, 15, 42])
    with pytest.raises(ValueError, match="NaN"):
        plasticc_log_loss(Y3, np.where(P3 == 0.5, np.nan, P3), [6, 15])


# ---- features -------------------------------------------------------------------------------------
def two_objects() -> LightCurves:
    """A: 3 observations (flux 1, 2, 6; err 1, 1, 2; detected, not, detected at mjd 0, 1, 5);
    B: 1 observation (flux −2, err 2, undetected)."""
    return LightCurves(offsets=[0, 3, 4], mjd=[0.0, 1.0, 5.0, 10.0], passband=[0, 1, 0, 2],
                       flux=[1.0, 2.0, 6.0, -2.0], flux_err=[1.0, 1.0, 2.0, 2.0],
                       detected=[1, 0, 1, 0], meta={"hostgal_photoz": [0.3, 0.0]})


def test_seed_aggregates_hand_made():
    X, names = seed_aggregates(two_objects())
    assert X.shape == (2, 27) and X.dtype == np.float32 and len(names) == 27
    f = dict(zip(names, X[0]))
    # object A, flux 1, 2, 6: deviations −2, −1, 3 → Σd² = 14, Σd³ = 18
    assert (f["flux_min"], f["flux_max"], f["flux_mean"], f["flux_median"]) == (1, 6, 3, 2)
    assert f["flux_std"] == pytest.approx(math.sqrt(14 / 2))
    b2, b3 = 14 / 3, 18 / 3
    assert f["flux_skew"] == pytest.approx(math.sqrt(3 * 2) / 1 * b3 / b2 ** 1.5, rel=1e-6)
    # (flux/err)² = 1, 4, 9 and flux·(flux/err)² = 1, 8, 54
    assert (f["flux_ratio_sq_min"], f["flux_ratio_sq_max"], f["flux_ratio_sq_median"]) == (1, 9, 4)
    assert f["flux_by_flux_ratio_sq_mean"] == pytest.approx(21.0)
    assert f["flux_err_median"] == 1 and f["flux_err_max"] == 2
    assert (f["mjd_span_detected"], f["n_detected"]) == (5, 2)
    assert f["detected_fraction"] == pytest.approx(2 / 3)
    g = dict(zip(names, X[1]))
    assert (g["flux_min"], g["flux_max"], g["flux_median"], g["flux_by_flux_ratio_sq_max"]) == (-2, -2, -2, -2)
    assert np.isnan(g["flux_std"]) and np.isnan(g["flux_skew"]) and np.isnan(g["mjd_span_detected"])
    assert (g["n_detected"], g["detected_fraction"]) == (0, 0)


def test_grouped_stats_matches_pandas():
    rng = np.random.default_rng(1)
    g = rng.integers(0, 7, 200)
    v = rng.normal(size=200) ** 3
    ours = grouped_stats(v, g, 8, ("min", "max", "mean", "median", "std", "skew", "kurtosis"))
    ref = pd.Series(v).groupby(g).agg(["min", "max", "mean", "median", "std", "skew"])
    for s in ref.columns:
        np.testing.assert_allclose(ours[s][:7], ref[s].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(ours["kurtosis"][:7], pd.Series(v).groupby(g).apply(pd.Series.kurt), rtol=1e-9)
    assert all(np.isnan(ours[s][7]) for s in ours)  # group 7 is empty


@pytest.fixture(scope="module")
def sample_lc() -> LightCurves:
    """A simulated-looking 12-object set: 3 shapes x 4, irregular cadence, all six bands."""
    rng = np.random.default_rng(0)
    parts = []
    for i in range(12):
        n = 40 + 7 * i
        t = np.sort(rng.uniform(59580, 59580 + 400, n))
        band = rng.integers(0, 6, n)
        if i % 3 == 0:  # transient
            shape = 300 * np.exp(-(t - 59700) / 30) / (1 + np.exp(-(t - 59700) / 5))
        elif i % 3 == 1:  # periodic variable
            shape = 100 * np.sin(2 * np.pi * t / 0.7)
        else:  # noise
            shape = np.zeros(n)
        err = rng.uniform(2, 10, n)
        flux = shape * (1 + 0.1 * band) + rng.normal(0, err)
        parts.append(LightCurves([0, n], t, band, flux, err, np.abs(flux) > 5 * err,
                                 {"hostgal_photoz": [0.0 if i % 3 == 1 else 0.2 + 0.01 * i],
                                  "hostgal_photoz_err": [0.05], "mwebv": [0.02], "ddf": [i % 2],
                                  "distmod": [np.nan if i % 3 == 1 else 40.0 + 0.1 * i]}))
    return LightCurves.concat(parts)


@pytest.mark.parametrize("feature_set", ["seed", "full"])
def test_features_shapes_names_and_invariance(sample_lc, feature_set):
    X, names = extract_features(sample_lc, feature_set)
    assert X.shape == (12, len(names)) and X.dtype == np.float32
    assert len(set(names)) == len(names)
    assert not np.isinf(X).any()
    # well-observed objects: everything finite except features that are undefined by construction
    col = {n: j for j, n in enumerate(names)}
    assert np.isfinite(X[:, col["flux_mean"]]).all()
    # object order does not matter, and object i does not depend on the others
    perm = np.array([5, 0, 11, 3, 1, 2, 4, 10, 6, 7, 9, 8])
    Xp, _ = extract_features(sample_lc.take(perm), feature_set)
    np.testing.assert_allclose(Xp, X[perm], rtol=1e-5, atol=1e-6, equal_nan=True)
    X3, _ = extract_features(sample_lc.take([3]), feature_set)
    np.testing.assert_allclose(X3[0], X[3], rtol=1e-5, atol=1e-6, equal_nan=True)
    if feature_set == "full":
        assert {"hostgal_photoz", "is_galactic", "peak_abs_mag", "rise_time", "bazin_fit_fall_time_r",
                "multiband_periodogram_period_0", "stetson_K_g", "flux_ratio_at_peak_i"} <= set(names)
        assert X[1, col["is_galactic"]] == 1 and X[0, col["is_galactic"]] == 0
        assert np.isnan(X[1, col["peak_abs_mag"]]) and np.isfinite(X[0, col["peak_abs_mag"]])
        # the periodic star's multi-band period is its 0.7 d (or an alias of it within 5%)
        p = X[1, col["multiband_periodogram_period_0"]]
        assert min(abs(p - 0.7), abs(p - 0.35), abs(p - 1.4)) / 0.7 < 0.05, p


def test_features_empty_and_unknown_set(sample_lc):
    X, names = extract_features(sample_lc.take([]), "full")
    assert X.shape == (0, len(names))
    with pytest.raises(ConfigError, match="feature set"):
        extract_features(sample_lc, "nope")


# ---- LightGBM estimator ---------------------------------------------------------------------------
def test_lgbm_state_round_trip_without_pickle():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    X[::7, 2] = np.nan  # missing values are allowed
    spec = MODEL_SPECS[0]
    assert spec.name == "lgbm" and spec.kind == "estimator"
    params = {**spec.defaults, "n_estimators": 30, "feature_set": "seed"}
    est = spec.build(params, {"class_names": ["6", "15", "90"]}, 3)
    est.fit(X[:200], y[:200], X[200:], y[200:], sample_weight=np.ones(200))
    logits = est.predict_logits(X[200:])
    assert logits.shape == (100, 3)
    assert (logits.argmax(1) == y[200:]).mean() > 0.8
    state = est.state()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in state.values())
    fresh = spec.build(params, {"class_names": ["6", "15", "90"]}, 3)
    fresh.load_state(state)
    np.testing.assert_array_equal(fresh.predict_logits(X[200:]), logits)
    with pytest.raises(DataError, match="features"):
        fresh.predict_logits(X[:, :4])
    with pytest.raises(ConfigError, match="unknown lgbm parameter"):
        LightGBMEstimator({"num_leafs": 3}, 3)


def test_lgbm_kaggle_weights_raise_the_weighted_classes():
    from skysift.transients.gbm import class_metric_weights

    np.testing.assert_array_equal(class_metric_weights(["6", "15", "64", "90"], 4), [1, 2, 2, 1])
    np.testing.assert_array_equal(class_metric_weights(None, 2), [1, 1])


# ---- real data ------------------------------------------------------------------------------------
@pytest.mark.realdata
def test_features_on_kaggle_sample(shared_data):
    d = shared_data / "plasticc" / "kaggle_sample"
    obs = pd.read_csv(d / "training_set.csv").sort_values(["object_id", "mjd"], kind="stable")
    meta = pd.read_csv(d / "training_set_metadata.csv").set_index("object_id")
    ids, lc = LightCurves.from_frame(obs, meta.drop(columns=["hostgal_specz"]))
    assert len(lc) == 10
    X, names = extract_features(lc, "full")
    col = {n: j for j, n in enumerate(names)}
    assert X.shape == (10, len(names)) and not np.isinf(X).any()
    # every object has observations in every band: per-band means and peaks are defined
    assert np.isfinite(X[:, [col[f"mean_{b}"] for b in "ugrizy"]]).all()
    assert np.isfinite(X[:, col["peak_flux"]]).all()
    galactic = meta.loc[ids, "hostgal_photoz"].to_numpy() == 0
    np.testing.assert_array_equal(X[:, col["is_galactic"]], galactic.astype(np.float32))
    # the seed block of "full" is the seed set itself
    Xs, seed_names = extract_features(lc, "seed")
    np.testing.assert_array_equal(X[:, : len(seed_names)], Xs)
