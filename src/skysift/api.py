"""The Python API: ``skysift.train``, ``skysift.load`` and the :class:`Model` they return.

>>> import skysift
>>> data = skysift.simulate("transits", "data/", n=2000, seed=1)
>>> model = skysift.train("transits", data, "runs/kepler", epochs=20)
>>> model = skysift.load("runs/kepler")
>>> proba = model.predict_proba("kepler_test.csv")      # (N, K) calibrated probabilities
>>> model.predict("kepler_test.csv").to_csv("submission.csv", index=False)
>>> model.evaluate("kepler_test.csv")["pr_auc"]

A façade over the core: the model object is :class:`skysift.core.model.Model`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .core.data import TaskData
from .core.model import Model, load
from .core.task import get_task

__all__ = ["Model", "load", "train", "simulate", "evaluate", "predict"]


def train(task: str, data: str | Path | TaskData, out: str | Path, *, resume: bool = False,
          **options: Any) -> Model:
    """Train ``task`` on ``data`` into run directory ``out``; options are TrainConfig fields."""
    from .core.training import fit

    return fit(task, data, out, resume=resume, **options)


def simulate(task: str, out: str | Path, n: int | None = None, seed: int = 0) -> Path:
    """Write the task's embedded simulated dataset into ``out``; returns the path to load."""
    return get_task(task).simulate(out, n=n, seed=seed)


def evaluate(run_dir: str | Path, data: str | Path | TaskData, *, tta: bool | None = None,
             plots_dir: str | Path | None = None) -> dict:
    """Metrics of the model in ``run_dir`` on labelled ``data``. Where ``data`` holds objects the
    model was trained or validated on, a warning says how many, and ``"unseen"`` holds the
    metrics of the other objects alone (``"overlap"``: the counts)."""
    import warnings

    from .core.overlap import evaluate_with_overlap

    model = load(run_dir)
    if not isinstance(data, TaskData):
        data = model.read(data, labelled=True)
    return evaluate_with_overlap(model, data, tta=tta, plots_dir=plots_dir,
                                 warn=lambda m: warnings.warn(m, UserWarning, stacklevel=3))


def predict(run_dir: str | Path, data: str | Path | TaskData, out: str | Path | None = None, **kw: Any):
    """Predictions for ``data`` in the task's submission layout, written to ``out`` when given.

    Returns the DataFrame; or, when the task streams a file too large to load (PLAsTiCC test
    sets: chunk by chunk, resumable), a summary dict with the number of ``objects`` written."""
    model = load(run_dir)
    if out is None:
        return model.predict(data, **kw)
    summary = model.predict_to(data, out, **kw)
    return summary.pop("frame", summary)
