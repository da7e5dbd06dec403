"""The core's LightGBM state encoding, shared by the transients and technosignatures heads."""
from __future__ import annotations

import numpy as np
import pytest

from skysift.core.gbm_state import booster_from_state, booster_state, feature_matrix
from skysift.errors import DataError

lgb = pytest.importorskip("lightgbm")


@pytest.fixture(scope="module")
def booster():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    params = {"objective": "binary", "num_leaves": 4, "verbosity": -1, "num_threads": 1, "deterministic": True}
    return lgb.train(params, lgb.Dataset(X, y), num_boost_round=20), X


def test_round_trip_gives_identical_scores_and_only_arrays(booster):
    model, X = booster
    state = booster_state(model, 4, n_classes=2)
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert state["lgbm_model"].dtype == np.uint8 and int(state["lgbm_n_classes"][0]) == 2
    rebuilt, n_features = booster_from_state(state, n_classes=2)
    assert n_features == 4
    np.testing.assert_array_equal(rebuilt.predict(X, raw_score=True), model.predict(X, raw_score=True))


def test_bad_states_raise_value_error_naming_the_problem(booster):
    model, _ = booster
    state = booster_state(model, 4, n_classes=2)
    with pytest.raises(ValueError, match="n_classes=2, the model expects 15"):
        booster_from_state(state, n_classes=15)
    with pytest.raises(ValueError, match="not a LightGBM state"):
        booster_from_state({k: v for k, v in state.items() if k != "lgbm_model"})
    with pytest.raises(ValueError, match="not a LightGBM text model"):
        booster_from_state({**state, "lgbm_model": np.frombuffer(b"garbage", np.uint8).copy()})
    with pytest.raises(ValueError, match="has 4 features, its state says 3"):
        booster_from_state({**state, "lgbm_n_features": np.array([3])})


def test_feature_matrix_checks_shape_width_and_missing_values():
    X = np.array([[1.0, np.nan]])
    assert feature_matrix(X, "input", 2, allow_nan=True, dtype=np.float32).dtype == np.float32
    with pytest.raises(DataError, match="NaN or infinity"):
        feature_matrix(X, "input", 2, allow_nan=False)
    with pytest.raises(DataError, match="infinity"):
        feature_matrix(np.array([[np.inf, 0.0]]), "input", 2, allow_nan=True)
    with pytest.raises(DataError, match="has 2 features, the model was trained on 3"):
        feature_matrix(X, "input", 3, allow_nan=True)
    with pytest.raises(DataError, match="2-D"):
        feature_matrix(np.zeros(3), "input", None, allow_nan=True)
