"""The transients task through the core: training every kind of model, bundles, class 99 in the
Kaggle submission, evaluation by light-curve age, request parsing, CLI, and the real training set."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import skysift
from skysift.cli import main
from skysift.core.task import get_task
from skysift.errors import DataError
from skysift.transients.data import CLASSES, LightCurves, submission_columns
from skysift.transients.evaluation import first_detection_mjd, metrics_by_age, truncate_at_age

TASK = get_task("transients")
SMALL_GBM = {"n_estimators": 40, "num_leaves": 7}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    d = tmp_path_factory.mktemp("tn")
    train = TASK.simulate(d / "train", n=700, seed=1)
    test = TASK.simulate(d / "test", n=250, seed=2)
    return train, test


@pytest.fixture(scope="module")
def gbm_run(sim, tmp_path_factory):
    run = tmp_path_factory.mktemp("tn_run") / "lgbm"
    skysift.train("transients", sim[0], run, model="lgbm", model_params=SMALL_GBM, progress=False)
    return run


def test_lgbm_trains_predicts_and_round_trips(gbm_run, sim):
    model = skysift.load(gbm_run)
    assert model.kind == "estimator" and len(model.class_names) == 14
    test = TASK.load(sim[1], labelled=True)
    m = model.evaluate(test)
    assert 0 < m["plasticc_log_loss"] < 2.0, m["plasticc_log_loss"]
    assert m["accuracy"] > 0.4
    again = skysift.load(gbm_run).predict_proba(test)
    assert np.allclose(again, model.predict_proba(test))
    card = json.loads((gbm_run / "model.json").read_text())
    assert "open_set" in card["task_extras"]


def test_submission_has_kaggle_columns_and_class_99(gbm_run, sim):
    model = skysift.load(gbm_run)
    df = model.predict(sim[1])
    assert list(df.columns) == submission_columns([str(c) for c in CLASSES])
    p = df.drop(columns="object_id").to_numpy()
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-6)
    assert (p[:, -1] > 0).all() and (p[:, -1] < 1).all()
    assert df["object_id"].is_monotonic_increasing


def test_prediction_frame_fills_untrained_classes_with_zero():
    proba = np.array([[0.7, 0.3]])
    df = TASK.prediction_frame(np.array([5]), proba, ["15", "90"])
    assert list(df.columns) == submission_columns([str(c) for c in CLASSES])
    assert df.loc[0, "class_15"] == 0.7 and df.loc[0, "class_90"] == 0.3 and df.loc[0, "class_6"] == 0


def test_evaluate_refuses_classes_the_model_does_not_know(gbm_run, sim, tmp_path):
    model = skysift.load(gbm_run)
    test = TASK.load(sim[1], labelled=True)
    odd = test.subset(np.arange(5))
    odd.class_names = ["991" if c == odd.class_names[odd.y[0]] else c for c in odd.class_names]
    with pytest.raises(DataError, match="991"):
        model.evaluate(odd)


def test_sequence_models_train_through_the_core(sim, tmp_path):
    for name in ("seed-lstm", TASK.models.names()[-1]):
        run = tmp_path / name
        model = skysift.train("transients", sim[0], run, model=name, epochs=1, batch_size=64, progress=False)
        proba = model.predict_proba(sim[1])
        assert proba.shape == (250, 14) and np.allclose(proba.sum(1), 1, atol=1e-5)
        assert np.isfinite(model.card["validation_metrics"]["plasticc_log_loss"])


def test_truncation_keeps_only_early_observations():
    # object 0: detections at 10 and 30 d; object 1: never detected
    lc = LightCurves([0, 4, 6], [0.0, 10.0, 20.0, 30.0, 5.0, 9.0], [0, 1, 2, 3, 0, 1],
                     [1, 50, 60, 70, 1, 2], [1, 1, 1, 1, 1, 1], [0, 1, 0, 1, 0, 0], {})
    assert first_detection_mjd(lc).tolist() == [10.0, 5.0]
    t = truncate_at_age(lc, 5.0)
    assert t.lengths.tolist() == [2, 2] and t.mjd.tolist() == [0.0, 10.0, 5.0, 9.0]
    assert truncate_at_age(lc, 0.0).lengths.tolist() == [2, 1]
    assert truncate_at_age(lc, float("inf")) is lc


def test_metrics_by_age_improve_with_more_data(gbm_run, sim):
    model = skysift.load(gbm_run)
    test = TASK.load(sim[1], labelled=True)
    rows = metrics_by_age(model, test, ages=(0.0, 30.0, float("inf")))
    assert [r["age_days"] for r in rows][:2] == [0.0, 30.0]
    assert rows[0]["mean_observations"] < rows[1]["mean_observations"] < rows[2]["mean_observations"]
    assert rows[-1]["accuracy"] >= rows[0]["accuracy"]


def test_request_parsing_and_validation():
    body = TASK.request_example()
    data = TASK.parse_request(body)
    assert len(data) == 1 and data.x.n_observations == len(body["objects"][0]["mjd"])
    obs = body["objects"][0]
    rows = [{"mjd": m, "passband": p, "flux": f, "flux_err": e}
            for m, p, f, e in zip(obs["mjd"], obs["passband"], obs["flux"], obs["flux_err"])]
    alt = TASK.parse_request({"id": 7, "observations": rows[::-1], "metadata": obs["metadata"]})
    assert np.all(np.diff(alt.x.mjd) >= 0), "observations are sorted by mjd"
    bad = [({"objects": [{**obs, "passband": [9] * len(obs["mjd"])}]}, "passband"),
           ({"objects": [{**obs, "flux_err": [0.0] * len(obs["mjd"])}]}, "flux_err"),
           ({"objects": [{**obs, "flux": obs["flux"][:-1]}]}, "has"),
           ({"objects": [{**obs, "metadata": {"redshift": 1}}]}, "unknown metadata"),
           ({"objects": [{k: v for k, v in obs.items() if k != "mjd"}]}, "mjd"),
           ({"objects": [obs, obs]}, "duplicate")]
    for payload, msg in bad:
        with pytest.raises(DataError, match=msg):
            TASK.parse_request(payload)


def test_serving_returns_class_99(gbm_run):
    from fastapi.testclient import TestClient

    from skysift.serving.app import create_app

    client = TestClient(create_app([skysift.load(gbm_run)]))
    r = client.post("/predict", json=TASK.request_example())
    assert r.status_code == 200, r.text
    probs = r.json()["predictions"][0]["probabilities"]
    assert "99" in probs and abs(sum(probs.values()) - 1) < 1e-6
    r = client.post("/predict", json={"objects": [{"mjd": [1.0], "passband": [1], "flux": ["a"], "flux_err": [1.0]}]})
    assert 400 <= r.status_code < 500


def test_cli_cycle(sim, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "transients", "--data", str(sim[0]), "--out", str(run), "--model", "lgbm",
                 "--param", "n_estimators=20", "--param", "num_leaves=7"]) == 0
    assert main(["evaluate", str(run), "--data", str(sim[1]), "--json"]) == 0
    out = capsys.readouterr().out
    assert "plasticc_log_loss" in out
    assert main(["predict", str(run), "--data", str(sim[1]), "--out", str(tmp_path / "sub.csv")]) == 0
    sub = pd.read_csv(tmp_path / "sub.csv")
    assert sub.columns[0] == "object_id" and sub.columns[-1] == "class_99" and len(sub) == 250


@pytest.mark.realdata
def test_real_training_set_trains_a_small_gbm(shared_data, tmp_path):
    data = TASK.load(shared_data / "plasticc", labelled=True)
    assert len(data) == 7848 and data.class_names == [str(c) for c in CLASSES]
    sub = data.subset(np.arange(0, len(data), 4))  # a quarter keeps the test quick
    model = skysift.train("transients", sub, tmp_path / "run", model="lgbm", model_params=SMALL_GBM,
                          progress=False)
    m = model.card["validation_metrics"]
    assert m["plasticc_log_loss"] < 1.6 and m["accuracy"] > 0.5


def test_large_files_are_streamed_resumably_with_the_same_predictions(gbm_run, sim, tmp_path, monkeypatch):
    from skysift.transients import io

    whole = skysift.predict(gbm_run, sim[1])
    monkeypatch.setattr(io, "is_streamable", lambda path: True)  # as for a 20 GB test set
    monkeypatch.setattr(TASK.streaming, "chunk_rows", 5000)
    out = tmp_path / "sub.csv"
    summary = skysift.predict(gbm_run, sim[1], out)
    assert isinstance(summary, dict) and summary["objects"] == 250 and summary["chunks"] > 1
    streamed = pd.read_csv(out)
    assert list(streamed.columns) == list(whole.columns)
    assert np.allclose(streamed.drop(columns="object_id").to_numpy(), whole.drop(columns="object_id").to_numpy(),
                       atol=1e-6)


def test_cli_usage_errors_are_one_line_not_a_traceback(capsys):
    assert main(["predict"]) == 2
    captured = capsys.readouterr()
    assert "error:" in captured.out + captured.err and "Traceback" not in captured.out + captured.err
