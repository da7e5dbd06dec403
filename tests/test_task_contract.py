"""One contract, run over every installed task (as scikit-learn's ``parametrize_with_checks`` runs
one over every estimator): simulate → load → fit a tiny model → predict → bundle round trip →
serve one request → report. A fifth task folder is checked by this file without a line added.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import skysift
from skysift.core.task import Task, TaskInfo, get_task, task_names

TASKS = task_names()
#: objects to simulate: enough that the rarest class reaches both splits (transits: ~1.5% hosts)
SIZES = {"transits": 300, "transients": 160, "technosignatures": 60, "galaxies": 80}


@pytest.fixture(scope="module", params=TASKS)
def trained(request, tmp_path_factory):
    """``(task, data path, loaded data, trained model, run dir)`` for each task."""
    name = request.param
    task = get_task(name)
    root = tmp_path_factory.mktemp(f"contract_{name}")
    path = task.simulate(root / "data", n=SIZES.get(name, 100), seed=1)
    data = task.load(path, labelled=True)
    demo = task.info.demo
    options = {"epochs": 1, "patience": 1, "batch_size": demo.get("batch_size", 32),
               "model_params": demo.get("model_params")}
    model = skysift.train(name, path, root / "run", progress=False, **options)
    return task, Path(path), data, model, root / "run"


def test_info_and_abilities_are_declared(trained):
    task = trained[0]
    assert isinstance(task, Task) and isinstance(task.info, TaskInfo)
    assert task.info.name == task.name and task.info.description
    assert task.info.default_model in task.models.names()
    assert task.info.monitor[1] in ("min", "max")
    for ability in ("features", "requests", "open_set", "streaming"):
        assert hasattr(task, ability)  # an object or None, never discovered by an exception


def test_load_gives_valid_task_data(trained):
    task, _, data, _, _ = trained
    assert len(data) == SIZES.get(task.name, 100) or len(data) > 0
    assert len(set(map(str, data.ids))) == len(data), "ids must be unique"
    assert data.has_labels and data.hard_labels.min() >= 0 and data.hard_labels.max() < data.n_classes
    assert len(np.unique(data.hard_labels)) >= 2


def test_fit_writes_a_complete_bundle(trained):
    task, _, data, model, run = trained
    assert (run / "model.safetensors").is_file() and (run / "model.json").is_file()
    card = json.loads((run / "model.json").read_text())
    assert card["task"] == task.name and card["class_names"] == list(data.class_names)
    assert card["model"]["name"] == task.info.default_model
    assert card["data"]["n_train"] + card["data"]["n_val"] <= len(data)
    assert model.card == card


def test_predict_gives_the_submission_layout(trained):
    task, path, data, model, _ = trained
    df = model.predict(path)
    assert len(df) == len(data)
    assert df.columns[0] == task.info.id_column
    assert [str(i) for i in df.iloc[:, 0]] == [str(i) for i in data.ids]
    proba = model.predict_proba(data)
    assert proba.shape == (len(data), len(model.class_names))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def test_bundle_round_trip_gives_the_same_probabilities(trained):
    _, _, data, model, run = trained
    loaded = skysift.load(run)
    assert loaded.class_names == model.class_names
    np.testing.assert_allclose(loaded.predict_proba(data), model.predict_proba(data), atol=1e-6)
    out_fit, names_fit = model.predict_output(data)
    out_load, names_load = loaded.predict_output(data)
    assert names_fit == names_load
    np.testing.assert_allclose(out_load, out_fit, atol=1e-6)


def test_serving_one_request_and_one_upload(trained, as_upload):
    from fastapi.testclient import TestClient

    from skysift.serving import create_app

    task, path, data, _, run = trained
    client = TestClient(create_app({task.name: run}))
    expected, names = skysift.load(run).predict_output(data)
    filename, raw = as_upload(path)
    r = client.post(f"/models/{task.name}/predict", files={"file": (filename, raw)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["class_names"] == names and body["n"] == len(data)
    got = np.array([[p["probabilities"][c] for c in names] for p in body["predictions"]])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    example = task.request_example()
    if task.requests is None:
        assert example is None
        return
    r = client.post(f"/models/{task.name}/predict", json=example)
    assert r.status_code == 200, r.text
    assert r.json()["n"] == len(example.get("objects", [example]))


def test_report_is_written(trained, tmp_path):
    from skysift.report import build_report

    task, path, _, _, run = trained
    out = tmp_path / "report.html"
    build_report(run, path, out)
    html = out.read_text(encoding="utf-8")
    assert task.name in html and "<img" in html
