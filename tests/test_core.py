"""Core building blocks: splits, resampling, losses, calibration, metrics, bundles, config."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skysift.core import sampling
from skysift.core.bundle import read_card, read_tensors, save_bundle
from skysift.core.calibration import expected_calibration_error, fit_temperature, softmax
from skysift.core.config import TrainConfig
from skysift.core.data import TaskData
from skysift.core.losses import ClassificationLoss
from skysift.core.metrics import binary_metrics, multiclass_metrics
from skysift.core.splits import kfold_indices, train_val_test_split
from skysift.errors import ConfigError, ModelFileError


def _labels(n=600, pos=0.05, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < pos).astype(int)
    groups = np.repeat(np.arange(n // 3), 3)  # three observations per object
    return y, groups


def test_split_is_grouped_and_stratified():
    y, groups = _labels()
    s = train_val_test_split(y, groups, val_frac=0.2, test_frac=0.2, seed=1)
    sets = {k: set(groups[v]) for k, v in s.items()}
    assert not sets["train"] & sets["val"] and not sets["train"] & sets["test"] and not sets["val"] & sets["test"]
    assert sum(len(v) for v in s.values()) == len(y)
    for part in ("train", "val", "test"):
        assert abs(y[s[part]].mean() - y.mean()) < 0.04


def test_kfold_covers_every_object_once():
    y, groups = _labels(300)
    seen = np.concatenate([va for _, va in kfold_indices(y, groups, k=5)])
    assert sorted(seen) == list(range(300))


@pytest.mark.parametrize("method", ["over", "under"])
def test_resampling_never_touches_held_out_objects(method):
    y, groups = _labels(900, pos=0.03)
    s = train_val_test_split(y, groups, val_frac=0.2, test_frac=0.2, seed=0)
    res = sampling.resample_indices(s["train"], y[s["train"]], method, seed=0)
    assert set(res) <= set(s["train"])
    assert not set(groups[res]) & (set(groups[s["val"]]) | set(groups[s["test"]]))
    counts = np.bincount(y[res])
    assert counts[0] == counts[1]


def test_weighted_sampler_balances_classes():
    y = np.array([0] * 950 + [1] * 50)
    drawn = np.array(list(sampling.weighted_sampler(y, 2, seed=0)))
    assert 0.4 < y[drawn].mean() < 0.6


def test_smote_interpolates_within_class():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (100, 3)), rng.normal(5, 0.1, (8, 3))])
    y = np.array([0] * 100 + [1] * 8)
    Xr, yr = sampling.smote(X, y, seed=0)
    assert (yr == 1).sum() == 100
    synth = Xr[len(X):]
    assert np.all(np.abs(synth - 5) < 1.0)


def test_class_weights_inverse_frequency():
    w = sampling.class_weights(np.array([0, 0, 0, 1]), 3)
    assert w[2] == 0 and w[1] == pytest.approx(3 * w[0])


def test_losses_match_torch_and_focal_downweights_easy():
    logits = torch.tensor([[2.0, -1.0], [0.1, 0.3], [-3.0, 3.0]])
    y = torch.tensor([0, 1, 1])
    assert ClassificationLoss("ce")(logits, y).item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    w = torch.tensor([1.0, 4.0])
    assert ClassificationLoss("ce", weight=w)(logits, y).item() == pytest.approx(
        F.cross_entropy(logits, y, weight=w).item(), rel=1e-6)
    focal = ClassificationLoss("focal", gamma=2.0)(logits, y).item()
    assert 0 < focal < F.cross_entropy(logits, y).item()
    soft = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert ClassificationLoss("ce")(logits, soft).item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)


def test_temperature_scaling_recovers_overconfidence():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 1.5, (4000, 3))
    p = softmax(true_logits)
    y = np.array([rng.choice(3, p=row) for row in p])
    t = fit_temperature(true_logits * 3.0, y)
    assert t == pytest.approx(3.0, rel=0.1)
    assert expected_calibration_error(softmax(true_logits * 3, t), y) < expected_calibration_error(
        softmax(true_logits * 3), y)


def test_bias_corrected_temperature_undoes_prior_shift():
    from skysift.core.calibration import fit_bias_corrected_temperature

    rng = np.random.default_rng(1)
    y = (rng.random(6000) < 0.05).astype(int)
    score = rng.normal(0, 1, 6000) + 2.5 * y
    # a network trained on balanced batches: logit offset by +3 in favour of the rare class
    logits = np.column_stack([np.zeros_like(score), 2 * score - 2.5 + 3.0])
    t, b = fit_bias_corrected_temperature(logits, y)
    p = softmax(logits, t, b)
    assert abs(p[:, 1].mean() - y.mean()) < 0.01
    temperature_only = softmax(logits, fit_temperature(logits, y))
    assert expected_calibration_error(p, y) < 0.3 * expected_calibration_error(temperature_only, y)


def test_metrics_hand_checked():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.35, 0.65], [0.2, 0.8]])
    m = binary_metrics(y, proba, threshold=0.5)
    assert m["roc_auc"] == pytest.approx(1.0) and m["pr_auc"] == pytest.approx(1.0)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == 1.0
    assert m["confusion_matrix"] == [[1, 1], [0, 2]]
    mm = multiclass_metrics(np.array([0, 1, 2, 2]), np.eye(3)[[0, 1, 2, 1]] * 0.9 + 0.1 / 3, ["a", "b", "c"])
    assert mm["accuracy"] == 0.75 and mm["confusion_matrix"][2] == [0, 1, 1]


def test_bundle_round_trip_and_errors(tmp_path):
    t = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    save_bundle(tmp_path, t, {"task": "x", "model": {"name": "m"}, "class_names": ["a", "b"]})
    assert read_card(tmp_path)["skysift_version"]
    assert np.array_equal(read_tensors(tmp_path)["w"], t["w"].numpy())
    assert not list(tmp_path.glob("*.tmp"))
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="model.safetensors"):
        read_tensors(tmp_path)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        read_card(tmp_path)
    with pytest.raises(ModelFileError, match="no such run"):
        read_card(tmp_path / "missing")


def test_config_validates_early():
    with pytest.raises(ConfigError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError, match="sampler"):
        TrainConfig(sampler="magic")
    with pytest.raises(ConfigError, match="checkpoint"):
        TrainConfig(checkpoint="worst")
    with pytest.raises(ConfigError, match="unknown training option"):
        TrainConfig.from_dict({"epochz": 3})


def test_taskdata_subset_keeps_alignment():
    d = TaskData(ids=np.array(["a", "b", "c"]), x=[np.zeros(2), np.ones(2), np.full(2, 2.0)],
                 y=np.array([0, 1, 0]), class_names=["n", "p"])
    s = d.subset([2, 0])
    assert list(s.ids) == ["c", "a"] and s.x[0][0] == 2.0 and list(s.y) == [0, 0]
    assert json.dumps(d.class_counts()) == '{"n": 2, "p": 1}'


def test_with_class_names_reindexes_labels_by_name():
    from skysift.core.data import TaskData

    d = TaskData(ids=np.array(["a", "b", "c"]), x=np.zeros((3, 1)), y=np.array([0, 1, 1]),
                 class_names=["15", "90"])
    r = d.with_class_names(["6", "15", "42", "90"])
    assert r.class_names == ["6", "15", "42", "90"]
    assert r.y.tolist() == [1, 3, 3]
    soft = TaskData(ids=np.array(["a"]), x=np.zeros((1, 1)), y=np.array([[0.25, 0.75]]), class_names=["x", "y"])
    assert soft.with_class_names(["y", "z", "x"]).y.tolist() == [[0.75, 0.0, 0.25]]
    with pytest.raises(ValueError, match="90"):
        d.with_class_names(["15", "42"])


def test_weighted_calibration_fits_the_weighted_loss():
    from skysift.core.calibration import fit_bias_corrected_temperature

    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(900, int), np.ones(100, int)]
    logits = np.c_[rng.normal(0, 1, 1000), rng.normal(0, 1, 1000) + 1.5 * y]
    t0, b0 = fit_bias_corrected_temperature(logits, y)
    w = np.where(y == 1, 1 / 100, 1 / 900)  # each class counts equally
    t1, b1 = fit_bias_corrected_temperature(logits, y, sample_weight=w)

    def balanced_nll(t, b):
        p = softmax(logits, t, b)[np.arange(1000), y]
        return -(np.log(p[y == 0]).mean() + np.log(p[y == 1]).mean()) / 2

    assert b1[1] - b1[0] > b0[1] - b0[0], "balanced calibration favours the rare class more"
    assert balanced_nll(t1, b1) < balanced_nll(t0, b0)
    with pytest.raises(ValueError):
        fit_bias_corrected_temperature(logits, y, sample_weight=np.ones(3))


def test_data_errors_survive_pickling_and_atomic_files_are_not_private(tmp_path):
    import os
    import pickle

    from skysift.core.io import write_text
    from skysift.errors import DataError

    e = pickle.loads(pickle.dumps(DataError("a.csv", "bad flux", where="row 3")))
    assert str(e) == "a.csv, row 3: bad flux" and e.where == "row 3"
    write_text(tmp_path / "x.txt", "hi")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_one_blas_thread_limits_the_main_thread_and_leaves_other_threads_alone():
    """In the main thread BLAS runs on one thread inside and gets its limits back outside; in a
    worker thread (the HTTP service's pool) nothing changes, so threads that enter and leave
    interleaved cannot leave the process on one BLAS thread."""
    import threading

    import scipy.linalg  # noqa: F401  (both OpenBLAS copies loaded before the first reading)
    from threadpoolctl import threadpool_info

    from skysift.core.parallel import one_blas_thread

    def blas_threads() -> list[int]:
        return sorted(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")

    before = blas_threads()
    if not before:
        pytest.skip("no BLAS library visible to threadpoolctl")
    with one_blas_thread():
        inside = blas_threads()
    assert inside == [1] * len(before) and blas_threads() == before

    seen: list[list[int]] = []

    def worker() -> None:
        with one_blas_thread():
            seen.append(blas_threads())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(10)
    assert seen == [before] and blas_threads() == before


def test_threads_option_holds_while_lightning_trains_and_gives_the_counts_back(tmp_path):
    """``threads=1`` holds while Lightning trains (a busy shared machine's remedy for spinning
    OpenMP threads), also past the transits search's numba kernels, whose OpenMP layer resets the
    count torch reads when it starts; the caller's own counts are back afterwards."""
    import lightning.pytorch as pl
    import numba

    import skysift
    from skysift.transits.simulate import simulate_light_curves, write_kaggle_csv

    seen: list[int] = []

    class RecordThreads(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            seen.append(torch.get_num_threads())

    flux, labels, _ = simulate_light_curves(60, seed=3, positive_fraction=0.2)
    csv = write_kaggle_csv(tmp_path / "train.csv", flux, labels)
    before, numba_before = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(2)
    try:
        skysift.train("transits", csv, tmp_path / "run", model="resnet1d", epochs=1, progress=False, threads=1,
                      model_params={"width": 8, "depth": 2, "attention_layers": 1}, callbacks=[RecordThreads()])
        assert seen == [1] and torch.get_num_threads() == 2
        assert numba.get_num_threads() == numba_before
        with pytest.raises(ConfigError, match="threads must be >= 1"):
            TrainConfig(threads=0)
    finally:
        torch.set_num_threads(before)
