"""Honest figures: a test split that no choice touches, and leak guards that a broken pipeline trips.

Each guard is tested twice: a correct run passes it, and a deliberately broken pipeline (a split
that shares objects, a resampler that reaches outside the training split, test labels that would
move a choice) is caught.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import skysift
from skysift.core import sampling, training
from skysift.core.leakage import LeakError, check_disjoint, check_training_set
from skysift.transits.simulate import simulate_light_curves, write_kaggle_csv

TINY = {"width": 8, "depth": 3, "attention_layers": 0}
OPTIONS = {"model": "resnet1d", "epochs": 2, "batch_size": 32, "model_params": TINY, "progress": False}


@pytest.fixture(scope="module")
def stars(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("honest")
    flux, labels, _ = simulate_light_curves(240, seed=11, positive_fraction=0.1)
    return write_kaggle_csv(d / "exoTrain.csv", flux, labels)


@pytest.fixture(scope="module")
def run(stars, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("honest_run") / "run"
    skysift.train("transits", stars, out, resample="over", **OPTIONS)
    return out


def test_three_disjoint_splits_and_test_metrics_in_the_card(run, stars):
    split = json.loads((run / "split.json").read_text())
    parts = [set(split[k]) for k in ("train", "val", "test")]
    assert all(parts) and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    card = json.loads((run / "model.json").read_text())
    n = skysift.get_task("transits").load(stars).ids.size
    assert card["data"]["n_train"] + card["data"]["n_val"] + card["data"]["n_test"] == n
    assert card["data"]["n_test"] == len(split["test"]) > 0
    assert {"roc_auc", "pr_auc"} <= set(card["test_metrics"]) and card["test_metrics"]["n"] == len(split["test"])
    assert "test split, which no choice touched" in card["protocol"]
    assert json.loads((run / "metrics_test.json").read_text()) == card["test_metrics"]


def test_no_test_split_when_asked(stars, tmp_path):
    model = skysift.train("transits", stars, tmp_path / "r", test_frac=0, **OPTIONS)
    assert "test_metrics" not in model.card and model.card["data"]["n_test"] == 0
    assert "no held-out test split" in model.card["protocol"]


def test_the_guards_pass_a_correct_split_and_catch_shared_groups():
    groups = np.array(["a", "b", "c", "d", "a2"])
    check_disjoint(groups, {"train": np.array([0, 1]), "val": np.array([2]), "test": np.array([3, 4])})
    with pytest.raises(LeakError, match="share 1 object group"):
        check_disjoint(np.array(["a", "b", "a", "d"]), {"train": np.array([0, 1]), "val": np.array([2, 3])})
    check_training_set(np.array(["a", "a", "b"]), np.array(["a", "b"]), np.array(["c"]))
    with pytest.raises(LeakError, match="held-out"):
        check_training_set(np.array(["a", "c"]), np.array(["a", "b"]), np.array(["c"]))


def test_a_split_that_shares_objects_stops_training(stars, tmp_path, monkeypatch):
    real = training.train_val_test_split

    def leaky(y, groups, **kw):
        split = real(y, groups, **kw)
        return {**split, "train": np.concatenate([split["train"], split["val"][:1]])}

    monkeypatch.setattr(training, "train_val_test_split", leaky)
    with pytest.raises(LeakError, match="train and val splits share"):
        skysift.train("transits", stars, tmp_path / "r", **OPTIONS)
    assert not (tmp_path / "r" / "model.json").exists()


def test_a_resampler_that_reaches_outside_the_training_split_stops_training(stars, tmp_path, monkeypatch):
    # the classic bug: over-sampling the whole data set, then training on it
    n = skysift.get_task("transits").load(stars).ids.size
    monkeypatch.setattr(sampling, "resample_indices", lambda idx, y, method, seed, **kw: np.arange(n))
    with pytest.raises(LeakError, match="held-out object group"):
        skysift.train("transits", stars, tmp_path / "r", resample="over", **OPTIONS)
    assert not (tmp_path / "r" / "model.json").exists()


def test_the_test_split_moves_no_choice(run, stars, tmp_path):
    """Relabel every test object and train again on the same split: the weights, the calibration,
    the threshold and the validation metrics must not move; only the test metrics may."""
    task = skysift.get_task("transits")
    data = task.load(stars)
    split = json.loads((run / "split.json").read_text())
    pos = {str(i): k for k, i in enumerate(data.ids)}
    test = np.array([pos[i] for i in split["test"]])
    y = data.y.copy()
    y[test] = 1 - y[test]
    flipped = data.subset(np.arange(len(data)))
    flipped.y = y
    again = tmp_path / "again"
    again.mkdir()
    for f in ("split.json", "preprocessing.json"):  # the same split and statistics, as on resume
        shutil.copy(run / f, again / f)
    model = skysift.train("transits", flipped, again, resume=True, resample="over", **OPTIONS)
    from safetensors.numpy import load_file

    first = json.loads((run / "model.json").read_text())
    # equal to float rounding: two threads may sum in another order (a choice that moved would
    # move whole epochs of weights, the temperature and the threshold)
    w0, w1 = load_file(str(run / "model.safetensors")), load_file(str(again / "model.safetensors"))
    assert w0.keys() == w1.keys()
    for k in w0:
        np.testing.assert_allclose(w1[k], w0[k], rtol=1e-3, atol=1e-4, err_msg=k)
    assert [h["epoch"] for h in model.card["history"]] == [h["epoch"] for h in first["history"]]
    for key in ("temperature", "threshold"):
        assert model.card["calibration"][key] == pytest.approx(first["calibration"][key], rel=1e-3, abs=1e-4)
    assert model.card["validation_metrics"]["roc_auc"] == pytest.approx(first["validation_metrics"]["roc_auc"],
                                                                         abs=1e-6)
    assert model.card["test_metrics"]["accuracy"] != pytest.approx(first["test_metrics"]["accuracy"], abs=1e-3)
