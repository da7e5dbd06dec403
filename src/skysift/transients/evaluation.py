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

#: the supernova classes whose accuracy the survey figures single out (SN Ia, SN II, SN Ibc)
SN_CLASSES = (90, 42, 62)
SN_IA = 90


def prior_decision(out: np.ndarray, columns, prior: dict) -> np.ndarray:
    """``(N,)`` class targets chosen by the Bayes decision under a stated class prior.

    The probability columns are trained and calibrated for PLAsTiCC's metric, which counts every
    class alike (times its Kaggle weight, 2 for 64 and 15): in effect they are posteriors under a prior
    proportional to the Kaggle weights, so the top column favours rare classes (SNe Ia lose it to the
    rarer Iax and 91bg). Under the ``prior`` ``{class name: fraction}`` (the training set's class
    frequencies, stored in the model) the posterior of a known class is ``p_i · prior_i / w_i``,
    renormalised over the known columns to their total ``1 − p_99``; ``p_99`` keeps its value, as no
    prior of unknown objects is known. The decision is the class of the largest of those. A column
    the prior does not name gets prior 0 and is never chosen (unless it is 99). Nothing here is fitted
    on the data being classified."""
    from .data import KAGGLE_CLASS_WEIGHTS

    out = np.asarray(out, dtype=np.float64)
    cols = np.array([int(c) for c in columns], dtype=np.int64)
    unknown = cols == 99
    factor = np.array([0.0 if u else float(prior.get(str(c), 0.0)) / float(KAGGLE_CLASS_WEIGHTS.get(int(c), 1.0))
                       for c, u in zip(cols, unknown)])
    q = out * factor[None, :]
    s = q.sum(axis=1, keepdims=True)
    known_mass = out[:, ~unknown].sum(axis=1, keepdims=True)
    q = np.where(s > 0, q / np.where(s > 0, s, 1.0) * known_mass, out * ~unknown)
    q[:, unknown] = out[:, unknown]
    return cols[q.argmax(axis=1)] if len(out) else np.zeros(0, np.int64)


def output_figures(targets, out: np.ndarray, columns, prior: dict | None = None) -> dict:
    """The figures of exactly what ``predict`` writes: ``out`` (N, C) with its C column targets
    (the 14 classes and 99), ``targets`` (N,) true PLAsTiCC targets (99 and 991..995 allowed).

    * ``plasticc_log_loss``: the official weighted log-loss over every column (Kaggle's order:
      rows renormalised, then clipped);
    * ``accuracy_output``: top column == truth, over all objects (a known object whose top column
      is 99 counts as wrong);
    * ``class_99_top_fraction``: share of known-class objects whose top column is 99;
    * ``sn_ia_auc``: SN Ia against the rest, ROC-AUC of the SN Ia column;
    * ``accuracy_sn_ia_ii_ibc``: accuracy (top column) on the SN Ia, II and Ibc objects;
    * ``class_99_auc``: when unknown objects are present, ROC-AUC of the 99 column, unknown vs known;
    * with a ``prior`` (the model's training class frequencies): ``accuracy_output_prior`` and
      ``accuracy_sn_ia_ii_ibc_prior``, the same accuracies of the declared decision rule
      :func:`prior_decision` instead of the top column.
    """
    from sklearn.metrics import roc_auc_score

    from .metrics import plasticc_log_loss

    t = np.asarray(targets, dtype=np.int64)
    t = np.where((t >= 991) & (t <= 995), 99, t)
    cols = np.array([int(c) for c in columns], dtype=np.int64)
    out = np.asarray(out, dtype=np.float64)
    top = cols[out.argmax(axis=1)] if len(out) else np.zeros(0, np.int64)
    res: dict = {"plasticc_log_loss": float(plasticc_log_loss(t, out, cols)),
                 "accuracy_output": float((top == t).mean()) if len(t) else float("nan")}
    known = t != 99
    if 99 in cols.tolist():
        res["class_99_top_fraction"] = float((top[known] == 99).mean()) if known.any() else float("nan")
        if 0 < known.sum() < len(t):
            res["class_99_auc"] = float(roc_auc_score(~known, out[:, list(cols).index(99)]))
    if SN_IA in cols.tolist() and 0 < (t == SN_IA).sum() < len(t):
        res["sn_ia_auc"] = float(roc_auc_score(t == SN_IA, out[:, list(cols).index(SN_IA)]))
    sn = np.isin(t, SN_CLASSES)
    if sn.any():
        res["accuracy_sn_ia_ii_ibc"] = float((top[sn] == t[sn]).mean())
    if prior:
        decided = prior_decision(out, cols, prior)
        res["accuracy_output_prior"] = float((decided == t).mean()) if len(t) else float("nan")
        if sn.any():
            res["accuracy_sn_ia_ii_ibc_prior"] = float((decided[sn] == t[sn]).mean())
    return res


def object_snr_and_redshift(lc: LightCurves) -> tuple[np.ndarray, np.ndarray]:
    """(N,) peak |S/N| of each object and its redshift (host spec-z where the file has one, else
    photo-z; NaN for galactic objects)."""
    obj = lc.object_index()
    snr = np.zeros(len(lc))
    if lc.n_observations:
        np.maximum.at(snr, obj, np.abs(lc.flux / lc.flux_err).astype(np.float64))
    spec, photo = lc.meta["hostgal_specz"], lc.meta["hostgal_photoz"]
    z = np.where(np.isfinite(spec) & (spec > 0), spec, photo)
    return snr, np.where(photo > 0, z, np.nan)


#: bin edges of the faint-object figures: peak |S/N| and redshift
SNR_EDGES = (0.0, 10.0, 20.0, 40.0, 80.0, 160.0, np.inf)
Z_EDGES = (0.0, 0.1, 0.2, 0.4, 0.6, 1.0, 3.5)


def metrics_by_bins(targets, out: np.ndarray, columns, values: np.ndarray, edges) -> list[dict]:
    """Accuracy (top column) and SN Ia-vs-rest ROC-AUC of the objects in each bin of ``values``;
    a bin with fewer than 10 objects, or without both SNe Ia and others, gets None for AUC."""
    from sklearn.metrics import roc_auc_score

    t = np.asarray(targets, dtype=np.int64)
    cols = [int(c) for c in columns]
    top = np.asarray(cols)[np.asarray(out).argmax(axis=1)]
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (values >= lo) & (values < hi)
        n = int(m.sum())
        ia = t[m] == SN_IA
        auc = (float(roc_auc_score(ia, np.asarray(out)[m, cols.index(SN_IA)]))
               if n >= 10 and 0 < ia.sum() < n and SN_IA in cols else None)
        rows.append({"lo": float(lo), "hi": float(hi), "n": n, "n_sn_ia": int(ia.sum()),
                     "accuracy": float((top[m] == t[m]).mean()) if n else None, "sn_ia_auc": auc})
    return rows


def plot_faint_object_figures(panels: dict[str, dict[str, list[dict]]], out: str | Path) -> Path:
    """Accuracy and SN Ia AUC against peak S/N (left) and redshift (right); ``panels`` maps a label
    (e.g. "as-is", "test-like") to ``{"snr": rows, "redshift": rows}`` of :func:`metrics_by_bins`."""
    import matplotlib.pyplot as plt

    from ..core.plots import STYLE, save

    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
        for ax, key, xlabel in ((axes[0], "snr", "peak |S/N| of the light curve"),
                                (axes[1], "redshift", "host redshift")):
            for k, (label, by) in enumerate(panels.items()):
                rows = by[key]
                x = np.arange(len(rows))
                acc = [np.nan if r["accuracy"] is None else r["accuracy"] for r in rows]
                auc = [np.nan if r["sn_ia_auc"] is None else r["sn_ia_auc"] for r in rows]
                ax.plot(x, acc, "o-", color=f"C{k}", label=f"accuracy ({label})")
                ax.plot(x, auc, "s--", color=f"C{k}", label=f"SN Ia AUC ({label})")
            rows = next(iter(panels.values()))[key]
            ax.set_xticks(np.arange(len(rows)))
            ax.set_xticklabels([f"{r['lo']:g}-{r['hi']:g}" for r in rows], rotation=30, fontsize=7)
            ax.set_xlabel(xlabel)
            ax.set_ylim(0, 1.02)
        axes[0].set_ylabel("accuracy / SN Ia ROC-AUC")
        axes[1].legend(fontsize=7, loc="lower left")
        fig.suptitle("faint and distant objects: accuracy and SN Ia AUC by bin", fontsize=10)
        fig.tight_layout()
        return save(fig, Path(out))


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
