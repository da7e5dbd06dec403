"""Evaluation specific to transients: scores as a function of light-curve age (as RAPID reports).

A survey classifies an object while it is still evolving, so the question that matters for follow-up
is how good the classification is ``t`` days after the first detection, not only once the whole
light curve is in. :func:`truncate_at_age` keeps what a broker would have seen by then and
:func:`metrics_by_age` re-runs the model on those partial light curves.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.data import TaskData
from .data import LightCurves

#: ages [d since first detection] at which classification is scored by default
DEFAULT_AGES = (0.0, 3.0, 7.0, 15.0, 30.0, 60.0, 120.0, float("inf"))


def first_detection_mjd(lc: LightCurves) -> np.ndarray:
    """(N,) MJD of each object's first detection; its first observation when never detected."""
    obj = lc.object_index()
    big = np.where(lc.detected, lc.mjd, np.inf)
    first = np.full(len(lc), np.inf)
    np.minimum.at(first, obj, big)
    never = ~np.isfinite(first)
    if never.any():
        starts = lc.offsets[:-1][never]
        has_obs = lc.lengths[never] > 0
        first[np.flatnonzero(never)[has_obs]] = lc.mjd[starts[has_obs]]
    return first


def truncate_at_age(lc: LightCurves, age_days: float) -> LightCurves:
    """Observations up to ``age_days`` after each object's first detection (at least one each).

    The metadata are kept whole: host redshift and extinction are known before the transient is.
    """
    if not np.isfinite(age_days):
        return lc
    obj = lc.object_index()
    cutoff = first_detection_mjd(lc) + age_days
    keep = lc.mjd <= cutoff[obj]
    keep[lc.offsets[:-1][lc.lengths > 0]] = True  # never leave an object empty
    lengths = np.bincount(obj[keep], minlength=len(lc))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return LightCurves(offsets, lc.mjd[keep], lc.passband[keep], lc.flux[keep], lc.flux_err[keep],
                       lc.detected[keep], dict(lc.meta))


def metrics_by_age(model, data: TaskData, ages=DEFAULT_AGES) -> list[dict]:
    """Accuracy, macro one-vs-rest ROC-AUC and the PLAsTiCC weighted log-loss of ``model`` on
    ``data`` truncated at each age. Returns one dict per age (``age_days`` = inf for complete)."""
    from sklearn.metrics import roc_auc_score

    from .metrics import plasticc_log_loss

    data = data.with_class_names(model.class_names)
    y = data.hard_labels
    targets = np.array([int(model.class_names[i]) for i in y])
    columns = [int(c) for c in model.class_names]
    rows = []
    for age in ages:
        part = TaskData(ids=data.ids, x=truncate_at_age(data.x, age), y=data.y, class_names=data.class_names,
                        source=data.source)
        proba = model.predict_proba(part)
        aucs = []
        for j in np.unique(y):
            yj = (y == j).astype(int)
            if 0 < yj.sum() < len(yj):
                aucs.append(roc_auc_score(yj, proba[:, j]))
        rows.append({"age_days": float(age), "mean_observations": float(part.x.lengths.mean()),
                     "accuracy": float((proba.argmax(1) == y).mean()),
                     "roc_auc": float(np.mean(aucs)) if aucs else None,
                     "plasticc_log_loss": float(plasticc_log_loss(targets, proba, columns))})
    return rows


def plot_metrics_by_age(rows: list[dict], out: str | Path, title: str = "") -> Path:
    """Accuracy and ROC-AUC (left axis) and weighted log-loss (right axis) against age."""
    import matplotlib.pyplot as plt

    from ..core.plots import STYLE, save

    finite = [r for r in rows if np.isfinite(r["age_days"])]
    full = [r for r in rows if not np.isfinite(r["age_days"])]
    x = [max(r["age_days"], 0.5) for r in finite]  # log axis: day 0 is drawn at half a day
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(x, [r["accuracy"] for r in finite], "o-", label="accuracy")
        ax.plot(x, [r["roc_auc"] for r in finite], "s-", label="macro ROC-AUC")
        for r in full:
            ax.axhline(r["accuracy"], color="C0", ls=":", lw=1)
            ax.axhline(r["roc_auc"], color="C1", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("days since first detection (dotted: complete light curves)")
        ax.set_ylabel("accuracy / ROC-AUC")
        ax.set_ylim(0, 1.02)
        ax2 = ax.twinx()
        ax2.plot(x, [r["plasticc_log_loss"] for r in finite], "^-", color="C3", label="weighted log-loss")
        ax2.set_ylabel("PLAsTiCC weighted log-loss", color="C3")
        lines = ax.get_lines()[:2] + ax2.get_lines()[:1]
        ax.legend(lines, [ln.get_label() for ln in lines], loc="center right", fontsize=8)
        ax.set_title(title or "classification against light-curve age")
        fig.tight_layout()
        return save(fig, Path(out))
