"""Scale: Lightning DDP on 2 CPU processes against single-process training, and Dask batch inference
and feature extraction over a partitioned Parquet catalogue against single-process results.

DDP runs the CLI in a subprocess with ``--strategy ddp``: Lightning's ``ddp`` launcher starts the
other rank by re-running the current command line, which is right for ``skysift train`` but would
re-run pytest itself if training were called in-process (``ddp_spawn`` would work in-process but
pickles the module and dataloaders into each child and is slower to start).
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import skysift
from skysift.cli import main
from skysift.core.scale import catalogue_partitions, dask_client, features_catalogue, predict_catalogue
from skysift.errors import SkysiftError

SKYSIFT = str(Path(sys.executable).with_name("skysift"))
TINY = ["--param", "width=8", "--param", "members=1"]  # the default views-net, slim, one network


@pytest.fixture(scope="module")
def transits_data(tmp_path_factory) -> dict[str, Path]:
    from skysift.transits.io import write_parquet_catalogue
    from skysift.transits.simulate import simulate_light_curves, write_kaggle_csv

    d = tmp_path_factory.mktemp("scale")
    flux, labels, _ = simulate_light_curves(160, seed=11, positive_fraction=0.35)
    train = write_kaggle_csv(d / "train.csv", flux, labels)
    flux, labels, _ = simulate_light_curves(80, seed=12, positive_fraction=0.35)
    test = write_kaggle_csv(d / "test.csv", flux, labels)
    # the test objects again, as a catalogue of 4 Parquet partitions with unique ids
    catalogue = write_parquet_catalogue(d / "catalogue", flux, labels, n_partitions=4)
    return {"dir": d, "train": train, "test": test, "catalogue": catalogue}


def _train_cli(data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SKYSIFT_NO_PROGRESS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [SKYSIFT, "train", "transits", "--data", str(data), "--out", str(out), "--epochs", "2",
           "--batch-size", "16", "--seed", "0", "--accelerator", "cpu", *TINY, *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def single_run(transits_data) -> Path:
    out = transits_data["dir"] / "run_single"
    _train_cli(transits_data["train"], out)
    return out


@pytest.fixture(scope="module")
def bundle(transits_data) -> Path:
    """A bundle with untrained weights: equality with single-process inference needs no training."""
    from skysift.serving.testing import random_bundle

    return random_bundle("transits", transits_data["train"], transits_data["dir"] / "run_random",
                         model="resnet1d", model_params={"width": 8, "depth": 2, "attention_layers": 1})


def _steps(run: Path) -> int:
    rows = list(csv.DictReader(open(run / "logs" / "metrics.csv")))
    return max(int(r["step"]) for r in rows if r.get("step"))


@pytest.mark.slow
def test_ddp_two_cpu_processes_match_single_process(transits_data, single_run):
    ddp_run = transits_data["dir"] / "run_ddp"
    # 8 objects per process and step: the same effective batch (16) as the single-process run
    _train_cli(transits_data["train"], ddp_run, "--devices", "2", "--strategy", "ddp", "--batch-size", "8")
    single, ddp = skysift.load(single_run), skysift.load(ddp_run)
    cfg = ddp.card["train_config"]
    assert (cfg["devices"], cfg["strategy"], cfg["accelerator"]) == (2, "ddp", "cpu")
    # each rank saw half of every epoch (DistributedSampler split the data between 2 processes): with
    # half the batch it took as many steps as the single process, not twice as many
    assert abs(_steps(ddp_run) - _steps(single_run)) <= 2
    # same architecture, same classes, the same validation split (written once, seeded)
    assert ddp.class_names == single.class_names == ["no_planet", "planet"]
    s1, s2 = single.net.state_dict(), ddp.net.state_dict()
    assert s1.keys() == s2.keys() and all(s1[k].shape == s2[k].shape for k in s1)
    assert json.loads((ddp_run / "split.json").read_text()) == json.loads((single_run / "split.json").read_text())
    test = ddp.task.load(transits_data["test"], labelled=True)
    for model in (single, ddp):
        p = model.predict_proba(test)
        assert p.shape == (len(test), 2) and np.isfinite(p).all() and np.allclose(p.sum(axis=1), 1, atol=1e-5)
    m1, m2 = single.evaluate(test), ddp.evaluate(test)
    for m in (m1, m2, ddp.card["validation_metrics"]):
        assert all(0 <= m[k] <= 1 for k in ("roc_auc", "pr_auc", "accuracy", "f1"))
    print(f"single: {_steps(single_run)} steps, test ROC-AUC {m1['roc_auc']:.3f}, PR-AUC {m1['pr_auc']:.3f}; "
          f"DDP x2: {_steps(ddp_run)} steps, test ROC-AUC {m2['roc_auc']:.3f}, PR-AUC {m2['pr_auc']:.3f}")
    # similar quality: both learn the task (ROC-AUC well above chance) and neither is far behind
    assert m1["roc_auc"] > 0.7 and m2["roc_auc"] > 0.7, (m1["roc_auc"], m2["roc_auc"])
    assert abs(m1["roc_auc"] - m2["roc_auc"]) < 0.15, (m1["roc_auc"], m2["roc_auc"])


@pytest.fixture(scope="module")
def client():
    """One local cluster of 2 single-threaded worker processes for the module (it takes seconds to start)."""
    with dask_client() as c:
        assert len(c.scheduler_info()["workers"]) == 2
        yield c


def test_dask_predictions_and_features_equal_single_process(transits_data, bundle, client, tmp_path):
    catalogue = transits_data["catalogue"]
    parts = catalogue_partitions(catalogue)
    assert [p.name for p in parts] == [f"part-{i:05d}.parquet" for i in range(4)]
    model = skysift.load(bundle)
    r = predict_catalogue(bundle, catalogue, tmp_path / "preds.csv", scheduler=client)
    f = features_catalogue(bundle, catalogue, tmp_path / "features.parquet", scheduler=client)
    assert (r["n"], r["partitions"], r["workers"]) == (80, 4, 2)
    got = pd.read_csv(r["path"], dtype={"id": str})
    # reference: the whole catalogue in this process, and each partition on its own
    whole = model.predict(catalogue)
    per_part = pd.concat([model.predict(p) for p in parts], ignore_index=True)
    assert list(got.columns) == list(whole.columns) == ["id", "p_no_planet", "p_planet"]
    assert got["id"].tolist() == whole["id"].tolist() == [str(i + 1) for i in range(80)]
    np.testing.assert_array_equal(got.iloc[:, 1:].to_numpy(), per_part.iloc[:, 1:].to_numpy())
    np.testing.assert_allclose(got.iloc[:, 1:].to_numpy(), whole.iloc[:, 1:].to_numpy(), rtol=0, atol=1e-6)

    feats = pd.read_parquet(f["path"])
    data = model.task.load(catalogue, labelled=True)
    ref = model.task.features(data, model.stats, model.params)
    assert f["n_features"] == ref.shape[1] and feats["id"].tolist() == list(data.ids)
    assert feats["label"].tolist() == [data.class_names[k] for k in data.hard_labels]
    np.testing.assert_allclose(feats.filter(regex=r"^f\d+$").to_numpy(), ref, rtol=1e-6, atol=1e-9)
    assert not list(tmp_path.glob(".*parts-*"))  # per-partition files are cleaned up


def test_dask_transients_catalogue_equals_single_process(client, tmp_path):
    """PLAsTiCC-style catalogue: observations + metadata per row, whole objects per partition."""
    from skysift.core.task import get_task, task_names
    from skysift.serving.testing import random_bundle

    if "transients" not in task_names():
        pytest.skip("the transients task is not installed")
    from skysift.transients.stream import write_parquet_catalogue

    task = get_task("transients")
    data = Path(task.simulate(tmp_path / "sim", n=60, seed=3))
    parts = write_parquet_catalogue(data / "training_set.csv", data / "training_set_metadata.csv",
                                    tmp_path / "catalogue", objects_per_partition=20)
    assert len(parts) == 3
    run = random_bundle("transients", data, tmp_path / "run")
    model = skysift.load(run)
    r = predict_catalogue(run, tmp_path / "catalogue", tmp_path / "preds.csv", scheduler=client)
    assert (r["n"], r["partitions"], r["workers"]) == (60, 3, 2)
    got = pd.read_csv(r["path"], dtype={task.info.id_column: str})
    whole = model.predict(tmp_path / "catalogue")
    per_part = pd.concat([model.predict(p) for p in parts], ignore_index=True)
    assert list(got.columns) == list(whole.columns)
    assert got[task.info.id_column].tolist() == whole[task.info.id_column].astype(str).tolist()
    np.testing.assert_array_equal(got.iloc[:, 1:].to_numpy(float), per_part.iloc[:, 1:].to_numpy(float))
    np.testing.assert_allclose(got.iloc[:, 1:].to_numpy(float), whole.iloc[:, 1:].to_numpy(float), atol=1e-6)


def test_features_cli_inline_and_errors(transits_data, bundle, tmp_path, capsys):
    catalogue = transits_data["catalogue"]
    out = tmp_path / "f.parquet"
    assert main(["features", "transits", "--data", str(catalogue), "--out", str(out)]) == 0
    assert "80 x 9 features" in capsys.readouterr().out
    assert len(pd.read_parquet(out)) == 80
    # a bad partition: one error line naming the partition and the problem, no output file
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in catalogue_partitions(catalogue)[:2]:
        (bad / p.name).write_bytes(p.read_bytes())
    (bad / "part-00002.parquet").write_text("not parquet")
    assert main(["predict", str(bundle), "--data", str(bad), "--out", str(tmp_path / "p.csv"),
                 "--dask", "inline"]) == 2
    err = capsys.readouterr().err
    assert "part-00002.parquet" in err and "not a readable Parquet file" in err and "Traceback" not in err
    assert not (tmp_path / "p.csv").exists()
    with pytest.raises(SkysiftError, match="no such file"):
        predict_catalogue(bundle, tmp_path / "missing", tmp_path / "p.csv", scheduler="inline")
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        assert main(["predict", str(bundle), "--data", str(catalogue), "--out", str(tmp_path / "p.csv"),
                     "--dask", "tcp://127.0.0.1:9"]) == 2
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err
