"""``skysift explore TASK --data PATH --out DIR``: look at a dataset before training on it.

Works for every task through the :class:`~skysift.core.task.Task` interface only:

* ``class_balance.png``: objects per class (bar chart, log scale when the classes differ by >20x);
* ``examples_<class>.png``: a few objects of each class drawn by ``task.plot_gallery``;
* ``class_summary.csv`` / ``.md`` / ``.html``: per class, the count and fraction, and the median and
  interquartile range of the task's per-object statistics (``task.object_statistics``: numbers of
  observations, time span, peak S/N, redshift for light curves; brightness, size, colour for
  galaxies; S/N for cadences), or of simple statistics of ``task.raw_matrix`` rows where the task
  defines none;
* ``embedding_pca.png`` (and ``embedding_umap.png`` when ``umap-learn`` is installed): a 2-D scatter
  of the standardised ``raw_matrix`` coloured by class;
* ``embedding_pca_3d.html``: the first three principal components as an interactive plotly
  scatter, self-contained (plotly.js inlined, no CDN: it opens offline);
* ``index.html``: one page with all of the above (relative links to the PNGs).
"""
from __future__ import annotations

import html
import time
from pathlib import Path

import numpy as np

from .core.data import TaskData
from .core.io import atomic_path, write_text
from .errors import DataError

#: about this many objects go into PCA/UMAP and the summary statistics (drawn per class)
MAX_EMBED = 5000
EXAMPLES_PER_CLASS = 6


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))[:60] or "class"


def _stratified_subset(labels: np.ndarray, max_n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of about ``max_n`` objects (a little more when rare classes are topped up), keeping
    every class's share but at least
    ``min(count, 50)`` of each class, so rare classes still show up in the scatter."""
    n = len(labels)
    if n <= max_n:
        return np.arange(n)
    keep = []
    classes, counts = np.unique(labels, return_counts=True)
    for c, cnt in zip(classes, counts):
        take = max(min(cnt, 50), int(round(max_n * cnt / n)))
        keep.append(rng.choice(np.flatnonzero(labels == c), size=min(take, cnt), replace=False))
    return np.sort(np.concatenate(keep))


def _savefig(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _class_balance(counts: dict[str, int], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .core.plots import class_colours

    names = list(counts)
    values = np.array([counts[n] for n in names])
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(names) + 2), 3.8))
    bars = ax.bar(range(len(names)), values, color=class_colours(len(names)))
    ax.bar_label(bars, labels=[f"{v:,}" for v in values], fontsize=8)
    crowded = len(names) > 6 or sum(len(n) for n in names) > 40  # labels would overlap
    ax.set_xticks(range(len(names)), names, rotation=35 if crowded else 0, ha="right" if crowded else "center")
    ax.set_ylabel("objects")
    positive = values[values > 0]
    if len(positive) and positive.max() > 20 * positive.min():
        ax.set_yscale("log")
        ax.set_ylabel("objects (log scale)")
    ax.set_title(f"{title}: {values.sum():,} objects in {len(names)} classes")
    return _savefig(fig, path)


def _row_stats(X: np.ndarray) -> dict[str, np.ndarray]:
    """Per-object statistics of the raw input rows ``X`` (N, F) → dict of (N,) arrays."""
    import warnings

    finite = np.isfinite(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows give NaN, reported as such
        return {
            "row_mean": np.nanmean(np.where(finite, X, np.nan), axis=1),
            "row_std": np.nanstd(np.where(finite, X, np.nan), axis=1),
            "row_min": np.nanmin(np.where(finite, X, np.nan), axis=1),
            "row_max": np.nanmax(np.where(finite, X, np.nan), axis=1),
            "missing_fraction": 1.0 - finite.mean(axis=1),
        }


def _summary_table(labels, class_names, counts_all: dict[str, int], stats: dict[str, np.ndarray]):
    """Per class: count, fraction, and the median and interquartile range of each per-object
    statistic (medians: a few extreme objects would decide a mean)."""
    import pandas as pd

    total = sum(counts_all.values())
    rows = []
    for k, (code, name) in enumerate(class_names):
        sel = labels == k
        row = {"class": name, "count": counts_all.get(code, 0),
               "fraction": counts_all.get(code, 0) / total if total else np.nan, "sampled": int(sel.sum())}
        for key, v in stats.items():
            vv = np.asarray(v, dtype=np.float64)[sel]
            vv = vv[np.isfinite(vv)]
            q1, med, q3 = np.percentile(vv, [25, 50, 75]) if len(vv) else (np.nan,) * 3
            row[f"{key} median"] = float(med)
            row[f"{key} IQR"] = float(q3 - q1)
        rows.append(row)
    return pd.DataFrame(rows)


def _prepare_matrix(X: np.ndarray) -> np.ndarray:
    """Impute missing values with the column median and standardise robustly (PCA on raw units
    would be dominated by whichever input has the largest numbers)."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    X = np.where(np.isfinite(X), X, np.nan)
    keep = ~np.all(np.isnan(X), axis=0)
    X = X[:, keep]
    if X.shape[1] == 0:
        raise ValueError("every column of the raw matrix is missing")
    X = SimpleImputer(strategy="median").fit_transform(X)
    # robust standardisation (median, IQR) clipped at ±5: with the mean and standard deviation a
    # handful of extreme objects (flares, bad cadences) took whole principal components to
    # themselves and squeezed every other object into one point of the 3-D view
    med = np.median(X, axis=0)
    q1, q3 = np.percentile(X, [25, 75], axis=0)
    scale = (q3 - q1) / 1.349
    std = X.std(axis=0)
    scale = np.where(scale > 1e-12, scale, np.where(std > 1e-12, std, 1.0))
    Z = np.clip((X - med) / scale, -5, 5)
    return StandardScaler(with_mean=True, with_std=False).fit_transform(Z)


def _scatter_png(Z: np.ndarray, labels, class_names, path: Path, title: str, axes=("PC 1", "PC 2")) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .core.plots import class_colours

    colours = class_colours(len(class_names))
    fig, ax = plt.subplots(figsize=(7.5, 6))
    # big classes first so that rare ones are drawn on top
    order = np.argsort([-np.sum(labels == k) for k in range(len(class_names))])
    for k in order:
        sel = labels == k
        if sel.any():
            ax.scatter(Z[sel, 0], Z[sel, 1], s=6, alpha=0.6, color=colours[k],
                       label=f"{class_names[k]} ({sel.sum()})", rasterized=True)
    # a few extreme objects (flares, bad cadences) would squeeze the bulk into a corner: the view
    # spans the central 99% of each axis and says how many objects lie outside it
    lo, hi = np.percentile(Z[:, :2], [0.5, 99.5], axis=0)
    pad = 0.05 * np.maximum(hi - lo, 1e-12)
    ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
    ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    outside = int(np.sum(np.any((Z[:, :2] < lo - pad) | (Z[:, :2] > hi + pad), axis=1)))
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(title + (f"\n({outside} objects outside the central 99% view)" if outside else ""), fontsize=10)
    ax.legend(markerscale=2.5, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return _savefig(fig, path)


def _scatter_3d_html(Z: np.ndarray, labels, class_names, ids, path: Path, title: str, var) -> Path:
    import plotly.graph_objects as go

    from .core.plots import class_colours

    colours = class_colours(len(class_names))
    fig = go.Figure()
    for k, name in enumerate(class_names):
        sel = labels == k
        if not sel.any():
            continue
        fig.add_trace(go.Scatter3d(
            x=Z[sel, 0], y=Z[sel, 1], z=Z[sel, 2], mode="markers", name=f"{name} ({sel.sum()})",
            marker={"size": 2.5, "opacity": 0.75, "color": colours[k]}, text=[str(i) for i in ids[sel]],
            hovertemplate="id %{text}<extra>" + html.escape(str(name)) + "</extra>"))
    # axes span the central 99% of each component, as in the 2-D view: the few objects beyond
    # stay in the data (zoom out to see them) but no longer set the scale
    lo, hi = np.percentile(Z[:, :3], [0.5, 99.5], axis=0)
    pad = 0.05 * np.maximum(hi - lo, 1e-12)
    lo, hi = lo - pad, hi + pad
    outside = int(np.sum(np.any((Z[:, :3] < lo) | (Z[:, :3] > hi), axis=1)))
    if outside:
        title += f" ({outside} objects outside the central 99% view)"
    fig.update_layout(title=title, height=720, legend={"itemsizing": "constant"},
                      scene={"xaxis": {"title": f"PC 1 ({var[0]:.0%})", "range": [lo[0], hi[0]]},
                             "yaxis": {"title": f"PC 2 ({var[1]:.0%})", "range": [lo[1], hi[1]]},
                             "zaxis": {"title": f"PC 3 ({var[2]:.0%})", "range": [lo[2], hi[2]]},
                             "aspectmode": "cube"})
    # include_plotlyjs=True inlines plotly.js: the page works offline and from file://
    text = fig.to_html(include_plotlyjs=True, full_html=True, config={"displaylogo": False})
    write_text(path, text)
    return path


def explore(task, data: str | Path | TaskData, out: str | Path, *, max_n: int = MAX_EMBED,
            examples_per_class: int = EXAMPLES_PER_CLASS, seed: int = 0, umap: bool | None = None) -> dict[str, Path]:
    """Write exploration figures and tables for ``data`` into folder ``out``.

    Parameters
    ----------
    task : a Task instance or a task name.
    data : a path the task's loader reads (labels required), or loaded TaskData.
    max_n : about this many objects are used for the embeddings and summary statistics (a
        stratified sample that keeps at least ``min(count, 50)`` of every class).
    umap : also a UMAP embedding; default: when ``umap-learn`` is installed.

    Returns a dict ``{name: path}`` of the files written (``timings`` are in ``explore.json``).
    """
    from .core.io import write_json
    from .core.task import Task, get_task

    if not isinstance(task, Task):
        task = get_task(str(task))
    if max_n < 10:
        raise ValueError(f"max_n must be >= 10, got {max_n}")
    t_start = time.perf_counter()
    timings = {}
    from .core.plots import display_names
    from .core.progress import step, track

    if not isinstance(data, TaskData):
        with step(f"loading {data}"):
            data = task.load(data, labelled=True)
    timings["load_s"] = time.perf_counter() - t_start
    if not data.has_labels:
        raise DataError(data.source or None, "explore needs labelled data (class balance, colours by class)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    labels_all = data.hard_labels
    names = [str(c) for c in data.class_names]
    shown = display_names(task, names)  # "SN Ia (90)" where the labels are codes
    counts = {n: int(c) for n, c in zip(names, np.bincount(labels_all, minlength=len(names)))}
    title = f"{task.name} - {Path(data.source).name if data.source else 'data'}"

    t = time.perf_counter()
    written["class_balance"] = _class_balance(dict(zip(shown, counts.values())), out / "class_balance.png",
                                              title)
    timings["class_balance_s"] = time.perf_counter() - t

    t = time.perf_counter()
    rng = np.random.default_rng(seed)
    galleries = {}
    for k, name in track(list(enumerate(names)), "explore: galleries", unit="classes"):
        members = np.flatnonzero(labels_all == k)
        if len(members) == 0:
            continue
        idx = np.sort(rng.choice(members, size=min(examples_per_class, len(members)), replace=False))
        p = task.plot_gallery(data, idx, out / f"examples_{k:02d}_{_safe(name)}.png",
                              title=f"{shown[k]}: {len(idx)} of {len(members):,}")
        if p is not None:
            galleries[shown[k]] = Path(p)
            written[f"examples_{name}"] = Path(p)
    timings["galleries_s"] = time.perf_counter() - t

    t = time.perf_counter()
    sub = _stratified_subset(labels_all, max_n, rng)
    sub_data = data.subset(sub)
    with step(f"explore: features of {len(sub):,} objects"):
        X = np.asarray(task.raw_matrix(sub_data, max_n=len(sub)), dtype=np.float64)
        stats = task.object_statistics(sub_data)
    if X.ndim != 2 or len(X) != len(sub):
        raise ValueError(f"task {task.name!r}: raw_matrix returned shape {X.shape} for {len(sub)} objects")
    labels = labels_all[sub]
    timings["raw_matrix_s"] = time.perf_counter() - t

    if stats is None:
        stats = _row_stats(X)
    table = _summary_table(labels, list(zip(names, shown)), counts, stats)
    for ext, text in (("csv", table.to_csv(index=False)),
                      ("md", _markdown(table)),
                      ("html", table.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, na_rep="—"))):
        write_text(out / f"class_summary.{ext}", text)
        written[f"class_summary_{ext}"] = out / f"class_summary.{ext}"

    t = time.perf_counter()
    from sklearn.decomposition import PCA

    with step("explore: PCA"):
        Xs = _prepare_matrix(X)
        n_comp = min(3, Xs.shape[1], Xs.shape[0])
        pca = PCA(n_components=n_comp, random_state=seed)
        Z = pca.fit_transform(Xs)
    if n_comp < 3:
        Z = np.column_stack([Z, np.zeros((len(Z), 3 - n_comp))])
    var = list(pca.explained_variance_ratio_) + [0.0] * (3 - n_comp)
    written["embedding_pca"] = _scatter_png(
        Z, labels, shown, out / "embedding_pca.png",
        f"{title}: PCA of {X.shape[1]} inputs (robustly scaled), {len(sub):,} objects",
        (f"PC 1 ({var[0]:.0%} of variance)", f"PC 2 ({var[1]:.0%})"))
    written["embedding_pca_3d"] = _scatter_3d_html(Z, labels, shown, sub_data.ids, out / "embedding_pca_3d.html",
                                                   f"{title}: PCA (3-D)", var)
    timings["pca_s"] = time.perf_counter() - t

    if umap is None:
        import importlib.util

        umap = importlib.util.find_spec("umap") is not None
    if umap:
        t = time.perf_counter()
        import umap as umap_lib

        with step("explore: UMAP"):
            Zu = umap_lib.UMAP(n_components=2, random_state=seed).fit_transform(Xs)
        written["embedding_umap"] = _scatter_png(Zu, labels, shown, out / "embedding_umap.png",
                                                 f"{title}: UMAP, {len(sub):,} objects", ("UMAP 1", "UMAP 2"))
        timings["umap_s"] = time.perf_counter() - t

    written["index"] = _index_page(out, title, counts, table, written, galleries, var, X.shape, len(data))
    timings["total_s"] = time.perf_counter() - t_start
    write_json(out / "explore.json", {"task": task.name, "source": data.source, "n_objects": len(data),
                                      "n_embedded": len(sub), "raw_features": X.shape[1],
                                      "pca_explained_variance": var, "timings": timings,
                                      "files": {k: p.name for k, p in written.items()}})
    written["summary_json"] = out / "explore.json"
    return written


def _markdown(table) -> str:
    """A GitHub-style markdown table. Written here because pandas' ``to_markdown`` needs the
    ``tabulate`` package for what is a header, a rule and one line per row."""
    def cell(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _index_page(out: Path, title, counts, table, written, galleries, var, shape, n) -> Path:
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}img{max-width:100%}"
             "table{border-collapse:collapse;font-size:12px}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
             "</style></head><body>",
             f"<h1>{e(title)}</h1><p>{n:,} objects, {len(counts)} classes; raw matrix of "
             f"{shape[1]:,} inputs for {shape[0]:,} sampled objects.</p>",
             "<h2>Class balance</h2><img src='class_balance.png' alt='class balance'>",
             "<h2>Summary statistics per class</h2>",
             table.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, na_rep="—"),
             f"<h2>PCA</h2><p>Explained variance: {', '.join(f'{v:.1%}' for v in var)}. "
             "<a href='embedding_pca_3d.html'>Interactive 3-D view</a>.</p>",
             "<img src='embedding_pca.png' alt='PCA scatter'>"]
    if "embedding_umap" in written:
        parts.append("<h2>UMAP</h2><img src='embedding_umap.png' alt='UMAP scatter'>")
    if galleries:
        parts.append("<h2>Examples per class</h2>")
        for name, p in galleries.items():
            parts.append(f"<h3>{e(name)}</h3><img src='{e(p.name)}' alt='examples of {e(name)}'>")
    parts.append("</body></html>")
    write_text(out / "index.html", "\n".join(parts))
    return out / "index.html"
