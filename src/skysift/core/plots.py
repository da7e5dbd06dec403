"""Standard evaluation figures (matplotlib, Agg backend), saved as PNG atomically."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn import metrics as skm  # noqa: E402

from .calibration import reliability_curve  # noqa: E402
from .io import atomic_path  # noqa: E402

STYLE = {"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
         "axes.spines.right": False, "font.size": 10}


#: distinct colours for classes: matplotlib's tab10, then ten more chosen to stay apart from those
#: and from each other (a 10-colour cycle gave PLAsTiCC's 6/88, 15/90, 16/92 and 42/95 one colour)
CLASS_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
    "#17becf", "#000000", "#1a1a6e", "#ffd92f", "#00a087", "#b2007a", "#800000", "#a6cee3", "#4d7a00",
    "#f4a582", "#6a51a3",
)


def class_colours(n: int) -> list[str]:
    """``n`` colours, one per class, the same in every figure and page (PNG and plotly alike);
    past 20 classes the list repeats."""
    return [CLASS_COLOURS[k % len(CLASS_COLOURS)] for k in range(n)]


def display_names(task, class_names) -> list[str]:
    """The names figures and tables show: ``"SN Ia (90)"`` where the task's labels are codes."""
    return [task.class_label(c) for c in class_names] if task is not None else [str(c) for c in class_names]


def save(fig, path: Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)
    return path


def roc_pr(y, proba, class_names, out: Path) -> Path:
    """ROC and precision-recall curves side by side (one-vs-rest per class when K > 2)."""
    with plt.rc_context(STYLE):
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.3))
        k = proba.shape[1]
        cols = [1] if k == 2 else range(k)
        colours = class_colours(k)
        for c in cols:
            yc = (y == c).astype(int)
            if yc.sum() == 0 or yc.sum() == len(yc):
                continue
            fpr, tpr, _ = skm.roc_curve(yc, proba[:, c])
            prec, rec, _ = skm.precision_recall_curve(yc, proba[:, c])
            lab = class_names[c]
            colour = colours[0] if k == 2 else colours[c]
            auc, ap = skm.auc(fpr, tpr), skm.average_precision_score(yc, proba[:, c])
            a.plot(fpr, tpr, lw=1.6, color=colour, label=f"{lab} (AUC {auc:.3f})")
            b.plot(rec, prec, lw=1.6, color=colour,
                   label=f"{lab}: AUC {auc:.3f}, AP {ap:.3f}" if k > 6 else f"{lab} (AP {ap:.3f})")
            if k == 2:
                b.axhline(yc.mean(), color="grey", ls=":", lw=1, label=f"chance ({yc.mean():.3f})")
        a.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
        a.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
        b.set(xlabel="recall", ylabel="precision", title="Precision-recall", ylim=(0, 1.02))
        if k > 6:  # 14 entries would hide the curves: one legend outside, beside the PR panel
            b.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
        else:
            for ax in (a, b):
                ax.legend(fontsize=7 if k > 4 else 9, loc="lower right" if ax is a else "lower left")
        return save(fig, out)


def confusion(y, pred, class_names, out: Path) -> Path:
    """Row-normalised confusion matrix with counts in each cell."""
    k = len(class_names)
    cm = skm.confusion_matrix(y, pred, labels=list(range(k)))
    norm = cm / np.clip(cm.sum(axis=1, keepdims=True), 1, None)
    size = max(4.5, 0.55 * k + 2)
    with plt.rc_context({**STYLE, "axes.grid": False}):
        fig, ax = plt.subplots(figsize=(size, size * 0.9))
        im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for i in range(k):
            for j in range(k):
                if cm[i, j]:
                    ax.text(j, i, f"{cm[i, j]}", ha="center", va="center", fontsize=8 if k > 6 else 10,
                            color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xticks(range(k), class_names, rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center")
        ax.set_yticks(range(k), class_names)
        ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix (colour: row fraction)")
        fig.colorbar(im, ax=ax, fraction=0.046)
        return save(fig, out)


def reliability(y, proba, out: Path, proba_uncalibrated=None) -> Path:
    """Reliability diagram (top-label confidence vs accuracy) with the confidence histogram."""
    with plt.rc_context(STYLE):
        fig, (a, b) = plt.subplots(2, 1, figsize=(5, 5.6), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
        a.plot([0, 1], [0, 1], color="grey", ls=":", lw=1, label="perfect")
        series = [("calibrated", proba, "C0")]
        if proba_uncalibrated is not None:
            series.insert(0, ("before calibration", proba_uncalibrated, "C1"))
        for name, p, colour in series:
            _, acc, conf, count = reliability_curve(p, y)
            m = count > 0
            a.plot(conf[m], acc[m], "o-", color=colour, label=name)
            b.hist(p.max(axis=1), bins=20, range=(0, 1), color=colour, alpha=0.5)
        a.set(ylabel="accuracy", title="Reliability", xlim=(0, 1), ylim=(0, 1.02))
        a.legend()
        b.set(xlabel="confidence (top-class probability)", ylabel="count")
        return save(fig, out)


def training_curves(history_csv: Path, out: Path) -> Path | None:
    import pandas as pd

    if not Path(history_csv).exists():
        return None
    df = pd.read_csv(history_csv)
    if "epoch" not in df:
        return None
    df = df.groupby("epoch").last()
    with plt.rc_context(STYLE):
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
        for col in ("train_loss", "val_loss"):
            if col in df:
                a.plot(df.index, df[col], "o-", label=col)
        a.set(xlabel="epoch", ylabel="loss", title="Loss")
        a.legend()
        for col in ("val_acc", "val_roc_auc"):
            if col in df:
                b.plot(df.index, df[col], "o-", label=col)
        b.set(xlabel="epoch", title="Validation metrics")
        b.legend()
        return save(fig, out)


def standard_plots(out_dir: Path, y, proba, class_names, *, threshold: float = 0.5,
                   history_csv: Path | None = None, proba_uncalibrated=None) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    y = np.asarray(y)
    pred = (proba[:, 1] >= threshold).astype(int) if proba.shape[1] == 2 else proba.argmax(axis=1)
    files = [roc_pr(y, proba, class_names, out_dir / "roc_pr.png"),
             confusion(y, pred, class_names, out_dir / "confusion.png"),
             reliability(y, proba, out_dir / "reliability.png", proba_uncalibrated)]
    if history_csv is not None:
        f = training_curves(history_csv, out_dir / "training_curves.png")
        if f:
            files.append(f)
    return files


def gallery(task, data, indices, out: Path, *, proba=None, title: str = "", max_n: int = 36) -> Path | None:
    """A grid of objects drawn by ``task.draw_object``, each titled with its id, true class and,
    when ``proba`` ``(len(indices), K)`` is given, the predicted class and its probability (red
    when wrong). Used by ``explore`` (examples per class), ``report`` and training figures."""
    indices = np.asarray(indices, dtype=np.int64)[:max_n]
    if len(indices) == 0:
        return None
    max_cols, width, height = task.gallery_layout
    ncols = min(max_cols, len(indices))
    nrows = int(np.ceil(len(indices) / ncols))
    hard = data.hard_labels if data.has_labels else None
    # pages show a gallery at ~10 inches wide whatever its size: titles are sized for that, else a
    # 13-inch grid of six cadences came out with ~4-pixel text
    scale = max(1.0, width * ncols / 10.0)
    title_size = min(11.0, 7.5 * scale)
    with plt.rc_context({**STYLE, "axes.grid": False}):
        # constrained layout reserves room for each panel's title: with tight_layout the titles of a
        # row of images (equal aspect, axes off) were drawn under the images of the row above
        fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows + (0.5 if title else 0)),
                                 squeeze=False, layout="constrained")
        for ax in axes.ravel()[len(indices):]:
            ax.axis("off")
        for row, (ax, i) in enumerate(zip(axes.ravel(), indices)):
            task.draw_object(ax, data, int(i))
            lines = [str(data.ids[i])[:24]]
            colour = "black"
            if hard is not None:
                lines.append(f"true: {task.class_label(data.class_names[hard[i]])}")
            if proba is not None:
                k = int(np.argmax(proba[row]))
                name = data.class_names[k] if k < len(data.class_names) else str(k)
                lines.append(f"pred: {task.class_label(name)} ({proba[row, k]:.2f})")
                if hard is not None and k != hard[i]:
                    colour = "crimson"
            extra = task.describe_object(data, int(i))
            if extra:
                lines[0] += f"  {extra}"
            ax.set_title("\n".join(lines), fontsize=title_size, color=colour, loc="left")
            ax.tick_params(labelsize=6 * scale)
        if title:
            fig.suptitle(title, fontsize=10 * scale)
        return save(fig, out)
