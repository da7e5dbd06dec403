"""Classification metrics (scikit-learn / torchmetrics) returned as a flat, JSON-friendly dict."""
from __future__ import annotations

import warnings

import numpy as np
from sklearn import metrics as skm

from .calibration import expected_calibration_error


def best_f1_threshold(y: np.ndarray, p_pos: np.ndarray) -> float:
    """The probability threshold that maximises F1 on (y, p_pos); 0.5 when undefined."""
    if len(np.unique(y)) < 2:
        return 0.5
    prec, rec, thr = skm.precision_recall_curve(y, p_pos)
    f1 = 2 * prec * rec / np.clip(prec + rec, 1e-12, None)
    i = int(np.nanargmax(f1[:-1])) if len(thr) else 0
    return float(thr[i]) if len(thr) else 0.5


def binary_metrics(y: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> dict:
    """Metrics for a two-class problem; ``proba`` is ``(N, 2)``, column 1 the positive class."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(proba)[:, 1]
    pred = (p >= threshold).astype(int)
    out: dict = {"n": int(len(y)), "n_positive": int(y.sum()), "threshold": float(threshold)}
    both = len(np.unique(y)) == 2
    out["roc_auc"] = float(skm.roc_auc_score(y, p)) if both else None
    out["pr_auc"] = float(skm.average_precision_score(y, p)) if both else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["f1"] = float(skm.f1_score(y, pred, zero_division=0))
        out["precision"] = float(skm.precision_score(y, pred, zero_division=0))
        out["recall"] = float(skm.recall_score(y, pred, zero_division=0))
    out["accuracy"] = float(skm.accuracy_score(y, pred))
    out["balanced_accuracy"] = float(skm.balanced_accuracy_score(y, pred)) if both else None
    out["brier"] = float(skm.brier_score_loss(y, p)) if both else None
    out["log_loss"] = float(skm.log_loss(y, np.clip(proba, 1e-15, 1), labels=[0, 1]))
    out["ece"] = expected_calibration_error(proba, y)
    out["confusion_matrix"] = skm.confusion_matrix(y, pred, labels=[0, 1]).tolist()
    return out


def multiclass_metrics(y: np.ndarray, proba: np.ndarray, class_names: list[str]) -> dict:
    """Metrics for K > 2 classes; ``proba`` is ``(N, K)``."""
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    k = proba.shape[1]
    pred = proba.argmax(axis=1)
    labels = list(range(k))
    out: dict = {"n": int(len(y))}
    out["accuracy"] = float(skm.accuracy_score(y, pred))
    out["balanced_accuracy"] = float(skm.balanced_accuracy_score(y, pred))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["f1"] = float(skm.f1_score(y, pred, average="macro", labels=np.unique(y), zero_division=0))
        out["macro_f1"] = out["f1"]
        out["weighted_f1"] = float(skm.f1_score(y, pred, average="weighted", zero_division=0))
    present = np.unique(y)
    per_class_auc = {}
    for c in present:
        yc = (y == c).astype(int)
        if 0 < yc.sum() < len(yc):
            per_class_auc[class_names[c]] = float(skm.roc_auc_score(yc, proba[:, c]))
    out["roc_auc"] = float(np.mean(list(per_class_auc.values()))) if per_class_auc else None
    out["roc_auc_per_class"] = per_class_auc
    pr = []
    for c in present:
        yc = (y == c).astype(int)
        if 0 < yc.sum() < len(yc):
            pr.append(skm.average_precision_score(yc, proba[:, c]))
    out["pr_auc"] = float(np.mean(pr)) if pr else None
    out["log_loss"] = float(skm.log_loss(y, np.clip(proba, 1e-15, 1), labels=labels))
    out["ece"] = expected_calibration_error(proba, y)
    out["confusion_matrix"] = skm.confusion_matrix(y, pred, labels=labels).tolist()
    return out


def classification_metrics(y, proba, class_names, threshold: float = 0.5) -> dict:
    if np.asarray(proba).shape[1] == 2:
        return binary_metrics(y, proba, threshold)
    return multiclass_metrics(y, proba, class_names)


def headline_scores(task, class_names: list[str], targets: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    """The scores logged on the validation split every epoch: the task's headline metric (what
    early stopping and the best checkpoint watch) and, for two classes, ROC-AUC and PR-AUC.

    An undefined ranking score (a split with one class) is logged at its chance level (0.5, the
    prevalence) so that a monitor never goes missing."""
    from .calibration import softmax
    from .data import TaskData

    targets = np.asarray(targets)
    proba = softmax(np.asarray(logits, dtype=np.float64))
    n = len(targets)
    data = TaskData(ids=np.arange(n), x=np.zeros(n), y=targets, class_names=list(class_names))
    y = data.hard_labels
    metrics = classification_metrics(y, proba, list(class_names))
    headline = task.info.headline_metric
    if headline not in metrics:
        metrics.update(task.metrics(data, proba))
    chance = {"roc_auc": 0.5, "pr_auc": float((y == 1).mean()) if proba.shape[1] == 2 else 0.0}
    keys = [headline] + [k for k in ("roc_auc", "pr_auc") if proba.shape[1] == 2 and k != headline]
    return {k: float(metrics[k]) if metrics.get(k) is not None else chance.get(k, 0.0) for k in keys}
