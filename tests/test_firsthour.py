"""A newcomer's first hour: pools from unguarded scripts, progress in logs, the overlap warning,
class names and colours, model cards per model kind, CLI polish."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skysift.core.data import TaskData

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    return env


# ---- process pools ----------------------------------------------------------------------------
@pytest.mark.parametrize("guarded", [False, True])
def test_pool_context_follows_the_main_guard(tmp_path, guarded):
    body = "from skysift.core.parallel import pool_context\nprint('POOL', pool_context() is not None)\n"
    if guarded:
        body = "if __name__ == '__main__':\n" + "".join("    " + ln + "\n" for ln in body.splitlines())
    (tmp_path / "s.py").write_text(body)
    out = subprocess.run([sys.executable, "s.py"], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"POOL {guarded}" in out.stdout


def test_unguarded_script_simulates_several_chunks(tmp_path):
    """The README's first line as a script: 600 stars are two chunks, which used a forkserver pool
    that re-ran the script and died with BrokenProcessPool."""
    (tmp_path / "s.py").write_text(
        "import skysift\nimport numpy as np\n"
        "from skysift.transits.simulate import simulate_light_curves\n"
        "flux, labels, _ = simulate_light_curves(600, seed=3, n_points=200, workers=2)\n"
        "ref, _, _ = simulate_light_curves(600, seed=3, n_points=200, workers=1)\n"
        "print('SAME', np.array_equal(flux, ref), flux.shape)\n")
    out = subprocess.run([sys.executable, "s.py"], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "SAME True (600, 200)" in out.stdout
    assert "BrokenProcessPool" not in out.stderr


# ---- progress ---------------------------------------------------------------------------------
def test_track_prints_plain_lines_when_not_a_terminal(capsys, monkeypatch):
    from skysift.core import progress

    monkeypatch.delenv("SKYSIFT_NO_PROGRESS", raising=False)
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)
    assert list(progress.track(range(3), "work", unit="items")) == [0, 1, 2]
    with progress.step("loading x"):
        pass
    err = capsys.readouterr().err
    assert "work: 0/3 items" in err and "work: 1/3 items (" in err and "ETA" in err
    assert "work: 3/3 items done in" in err
    assert "loading x ..." in err and "loading x: done in" in err
    monkeypatch.setenv("SKYSIFT_NO_PROGRESS", "1")
    assert list(progress.track([1], "quiet")) == [1]
    assert capsys.readouterr().err == ""


# ---- overlap with the training objects --------------------------------------------------------
class _FakeModel:
    def __init__(self, run_dir):
        self.run_dir = run_dir

    def predict_logits(self, data, tta=None):
        return np.log(np.tile([0.3, 0.7], (len(data), 1)))

    def calibrate(self, logits):
        return np.exp(logits)

    def predict_proba(self, data, tta=None):
        return self.calibrate(self.predict_logits(data, tta))

    def evaluate(self, data, plots_dir=None, proba=None, logits=None):
        return {"n": len(data)}


def test_overlap_warns_once_and_scores_unseen_objects_apart(tmp_path):
    from skysift.core.overlap import evaluate_with_overlap, find_overlap

    (tmp_path / "split.json").write_text(json.dumps({"train": ["a", "b", "c"], "val": ["d"], "test": ["e"]}))
    data = TaskData(ids=np.array(["a", "b", "d", "e", "f"]), x=np.zeros((5, 2)), y=np.array([0, 1, 0, 1, 0]),
                    class_names=["x", "y"], source="file.csv")
    ov = find_overlap(tmp_path, data)
    assert ov.counts == {"train": 2, "val": 1} and ov.unseen.tolist() == [False, False, False, True, True]
    said = []
    m = evaluate_with_overlap(_FakeModel(tmp_path), data, warn=said.append)
    assert len(said) == 1 and said[0].startswith("3 of 5 objects in file.csv were seen in training")
    assert m["n"] == 5 and m["overlap"] == {"train": 2, "val": 1, "unseen": 2} and m["unseen"] == {"n": 2}
    fresh = TaskData(ids=np.array(["p", "q"]), x=np.zeros((2, 2)), y=np.array([0, 1]), class_names=["x", "y"])
    said.clear()
    assert "overlap" not in evaluate_with_overlap(_FakeModel(tmp_path), fresh, warn=said.append)
    assert said == []


# ---- class names, colours, cards --------------------------------------------------------------
def test_transient_classes_have_names_and_distinct_colours():
    from skysift.core.plots import class_colours, display_names
    from skysift.core.task import get_task
    from skysift.transients.data import CLASSES

    task = get_task("transients")
    names = display_names(task, [str(c) for c in CLASSES])
    assert names[CLASSES.index(90)] == "SN Ia (90)" and names[CLASSES.index(42)] == "SN II (42)"
    assert all("(" in n and not n.startswith(str(c)) for n, c in zip(names, CLASSES))
    colours = class_colours(len(CLASSES))
    assert len(set(colours)) == len(CLASSES) == 14
    assert len(set(class_colours(20))) == 20


def test_model_card_shows_what_applies_to_the_kind():
    from skysift.core.card import card_rows
    from skysift.core.task import task_info

    cfg = {"epochs": 5, "lr": 0.002, "sampler": "weighted", "batch_size": 64, "val_frac": 0.2, "seed": 0,
           "resample": "none", "calibrate": True}
    card = {"task": "transients", "model": {"name": "lgbm", "kind": "estimator", "params": {}},
            "class_names": ["42", "90"], "train_config": cfg,
            "calibration": {"temperature": 1.0, "threshold": 0.5}, "data": {"class_counts": {"42": 3, "90": 4}}}
    multi = {**card, "class_names": ["6", "42", "90"]}
    rows = dict(card_rows(multi, task_info("transients")))
    assert "epochs" not in rows["training"] and "lr=" not in rows["training"] and "sampler" not in rows["training"]
    assert "val_frac=0.2" in rows["training"]
    assert "decision threshold" not in rows
    assert rows["classes"] == "microlensing (6), SN II (42), SN Ia (90)"
    assert rows["class counts"].startswith("SN II (42): 3")
    net = dict(card_rows({**card, "model": {"name": "resnet1d", "kind": "torch", "params": {}}}))
    assert "epochs=5" in net["training"] and "lr=0.002" in net["training"]
    assert net["decision threshold"] == "0.500"


def test_object_statistics_of_light_curves():
    from skysift.core.task import get_task
    from skysift.transients.data import LightCurves

    lc = LightCurves(offsets=[0, 3, 5], mjd=[0, 10, 30, 5, 6], passband=[0, 1, 2, 0, 0],
                     flux=[1, 50, 2, 3, -40], flux_err=[1, 5, 1, 1, 4], detected=[0, 1, 0, 0, 1],
                     meta={"hostgal_photoz": [0.0, 0.4]})
    data = TaskData(ids=np.array([1, 2]), x=lc, y=np.array([0, 1]), class_names=["16", "90"])
    s = get_task("transients").object_statistics(data)
    assert s["observations"].tolist() == [3, 2] and s["detections"].tolist() == [1, 1]
    assert s["time span [d]"].tolist() == [30, 1] and s["peak |S/N|"].tolist() == [10, 10]
    assert np.isnan(s["host photo-z (extragalactic)"][0]) and s["host photo-z (extragalactic)"][1] == pytest.approx(0.4)


# ---- CLI polish -------------------------------------------------------------------------------
def _cli(*args, columns=80):
    env = {**_env(), "COLUMNS": str(columns), "TERM": "dumb", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "skysift", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_version_help_types_and_narrow_dataset_list():
    from skysift import __version__

    r = _cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"skysift {__version__}"
    r = _cli("train", "--help", columns=100)
    assert r.returncode == 0
    assert "<bool>" not in r.stdout and "<list[" not in r.stdout and "<int>" not in r.stdout
    assert "NAME=VALUE" in r.stdout and "INTEGER" in r.stdout
    r = _cli("datasets", "list")
    assert r.returncode == 0
    assert max(len(ln) for ln in r.stdout.splitlines()) <= 80
    assert "galaxy10_decals" in r.stdout and "n/a (manual, Kaggle account)" in r.stdout


def test_bundle_files_share_one_mode(tmp_path):
    from skysift.core.bundle import WEIGHTS, save_bundle

    save_bundle(tmp_path, {"w": np.zeros(3, np.float32)}, {"task": "t", "model": {"name": "m"}, "class_names": []})
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes[WEIGHTS] == modes["model.json"], modes


def test_gitignore_covers_what_the_readme_writes():
    ignored = subprocess.run(["git", "check-ignore", "--no-index", "data/exoTrain.csv", "test/exoTrain.csv",
                              "sim/x", "sim_test/x", "runs/kepler/model.json", "figs/roc_pr.png", "submission.csv",
                              "first50.csv", "preds.csv", "features.parquet", "transits_report.html",
                              "explore/plasticc/index.html", "demo_out/x", "readme_block_1.py"],
                             cwd=ROOT, capture_output=True, text=True)
    if ignored.returncode == 128:
        pytest.skip("not a git checkout")
    assert len(ignored.stdout.split()) == 14, ignored.stdout
