"""Does each task's pipeline learn? A small simulated problem per task, learnt in seconds on CPU,
scored on the run's own test split (which no choice touched): the headline must sit well above
chance — and below what a leak would give, so that a pipeline that has stopped learning, or one
that peeks at its test objects, both fail here.
"""
from __future__ import annotations

import skysift


def _headline(model) -> tuple[float, dict]:
    metrics = model.card["test_metrics"]
    return metrics[model.task.info.headline_metric], metrics


def test_transits_learns(tmp_path):
    from skysift.transits.simulate import simulate

    data = simulate(tmp_path / "data", n=360, seed=3, positive_fraction=0.2)
    model = skysift.train("transits", data, tmp_path / "run", epochs=4, batch_size=32, progress=False,
                          model_params={"width": 8, "depth": 3, "attention_layers": 0})
    pr_auc, m = _headline(model)
    assert 0.5 < pr_auc < 0.999, m  # chance: the positive fraction, 0.2


def test_transients_learns(tmp_path):
    data = skysift.simulate("transients", tmp_path / "data", n=500, seed=3)
    model = skysift.train("transients", data, tmp_path / "run", progress=False)
    log_loss, m = _headline(model)
    assert 0.2 < log_loss < 1.6, m  # chance (uniform over 14 classes): ln 14 = 2.64
    assert m["accuracy"] > 0.45, m  # the largest class holds 30%


def test_galaxies_learns(tmp_path):
    data = skysift.simulate("galaxies", tmp_path / "data", n=360, seed=3)
    model = skysift.train("galaxies", data, tmp_path / "run", epochs=5, batch_size=32, tta=False, progress=False)
    _, m = _headline(model)
    assert 0.75 < m["roc_auc"] < 0.999, m  # macro one-vs-rest; chance 0.5
    assert m["accuracy"] > 0.62, m  # the largest class holds 58%


def test_technosignatures_learns(tmp_path):
    from skysift.technosignatures.simulate import SimulationConfig, simulate

    data = simulate(tmp_path / "data", n=200, seed=3, cfg=SimulationConfig(positive_fraction=0.4))
    model = skysift.train("technosignatures", data, tmp_path / "run", epochs=4, batch_size=32, progress=False)
    roc_auc, m = _headline(model)
    assert roc_auc > 0.75, m  # chance 0.5; needles at S/N 15-80 can all be found
