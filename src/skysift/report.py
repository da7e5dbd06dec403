"""``skysift report RUN_DIR --data PATH --out report.html``: one self-contained HTML report.

The page holds the model card, a metrics table (evaluation data beside the validation split), the
per-class precision/recall table, ROC and precision-recall curves, the confusion matrix, the
reliability diagram, the training curves of the run, the task's own figures, and galleries drawn by
``task.plot_gallery``: the most confident correct examples of each class and the most confident
mistakes. Every image is a PNG inlined as base64, so the file can be mailed or archived alone; it
loads nothing from the network.
"""
from __future__ import annotations

import base64
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .core.data import TaskData
from .core.io import write_text
from .errors import SkysiftError

STANDARD_FIGURES = {"roc_pr.png": "ROC and precision-recall curves",
                    "confusion.png": "Confusion matrix",
                    "reliability.png": "Reliability diagram (calibration)"}

TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>skysift report: {{ title }}</title>
<style>
 body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
        padding: 0 1rem; color: #222; }
 h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem;
        margin-top: 2rem; }
 table { border-collapse: collapse; margin: .5rem 0; font-size: .9rem; }
 th, td { border: 1px solid #ddd; padding: .25rem .6rem; text-align: left; vertical-align: top; }
 td.num { text-align: right; font-variant-numeric: tabular-nums; }
 nav { font-size: .9rem; } nav a { margin-right: .8rem; }
 .grid { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
 .grid figure { flex: 1 1 420px; max-width: 100%; }
 .grid figure.wide { flex-basis: 100%; }
 figure { margin: 1rem 0; } figcaption { font-size: .85rem; color: #555; }
 img { max-width: 100%; height: auto; border: 1px solid #eee; display: block; }
 .note { color: #666; font-size: .85rem; }
 code { background: #f4f4f4; padding: 0 .2rem; }
</style></head>
<body>
<h1>skysift report: {{ title }}</h1>
<p class="note">Generated {{ generated }} by skysift {{ version }} in {{ seconds }} s from run
<code>{{ run_dir }}</code> on <code>{{ data_source }}</code> ({{ n_objects }} objects).
{% if untrained %}<strong>This bundle has untrained weights.</strong>{% endif %}</p>
<nav><a href="#card">Model card</a><a href="#metrics">Metrics</a><a href="#figures">Figures</a>
{% if task_figures %}<a href="#task-figures">Task figures</a>{% endif %}<a href="#galleries">Galleries</a></nav>

<h2 id="card">Model card</h2>
<table>{% for k, v in card_rows %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>

<h2 id="metrics">Metrics</h2>
<table><tr><th>metric</th><th>{{ data_name }}</th><th>test split (at training; no choice touched it)</th><th>validation split (chose the model)</th></tr>
{% for name, ev, test, val in metric_rows %}<tr><td>{{ name }}</td><td class="num">{{ ev }}</td><td class="num">{{ test }}</td><td class="num">{{ val }}</td></tr>{% endfor %}
</table>
{% if per_class %}<h3>Per class ({{ data_name }})</h3>
<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>
{% for r in per_class %}<tr><td>{{ r[0] }}</td><td class="num">{{ r[1] }}</td><td class="num">{{ r[2] }}</td><td class="num">{{ r[3] }}</td><td class="num">{{ r[4] }}</td></tr>{% endfor %}
</table>{% endif %}

<h2 id="figures">Figures</h2>
<div class="grid">{% for fig in figures %}<figure{% if fig.wide %} class="wide"{% endif %}><img src="data:image/png;base64,{{ fig.data }}" alt="{{ fig.caption }}">
<figcaption>{{ fig.caption }}</figcaption></figure>{% endfor %}</div>
{% if task_figures %}<h2 id="task-figures">Task figures</h2>
{% for fig in task_figures %}<figure><img src="data:image/png;base64,{{ fig.data }}" alt="{{ fig.caption }}">
<figcaption>{{ fig.caption }}</figcaption></figure>{% endfor %}{% endif %}

<h2 id="galleries">Galleries</h2>
{% if not galleries %}<p class="note">The task draws no galleries.</p>{% endif %}
{% for note in notes %}<p class="note">{{ note }}</p>{% endfor %}
{% for fig in galleries %}<figure><img src="data:image/png;base64,{{ fig.data }}" alt="{{ fig.caption }}">
<figcaption>{{ fig.caption }}</figcaption></figure>{% endfor %}
</body></html>
"""


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4f}"
    if isinstance(v, (int, str)):
        return str(v)
    return json.dumps(v, default=str)


def _png(path: Path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _predicted(proba: np.ndarray, threshold: float) -> np.ndarray:
    if proba.shape[1] == 2:
        return (proba[:, 1] >= threshold).astype(np.int64)
    return proba.argmax(axis=1)


def gallery_picks(y: np.ndarray, proba: np.ndarray, pred: np.ndarray, n: int = 8) -> dict[str, np.ndarray]:
    """Indices to draw: ``"mistakes"``, the ``n`` wrong predictions made with the highest probability
    for the predicted class, and ``"correct:<k>"``, the ``n // 2`` most confident correct objects of
    each true class ``k``."""
    conf = proba[np.arange(len(pred)), pred]
    wrong = np.flatnonzero(pred != y)
    picks = {"mistakes": wrong[np.argsort(-conf[wrong], kind="stable")][:n]}
    for k in range(proba.shape[1]):
        right = np.flatnonzero((pred == y) & (y == k))
        picks[f"correct:{k}"] = right[np.argsort(-conf[right], kind="stable")][: max(1, n // 2)]
    return picks


def build_report(run_dir: str | Path, data: str | Path | TaskData, out: str | Path, *,
                 tta: bool | None = None, gallery_size: int = 8, max_classes_shown: int | None = None) -> dict:
    """Evaluate ``run_dir`` on labelled ``data`` and write the HTML report to ``out``.

    Returns ``{"path", "seconds", "metrics", "n_images"}``. ``gallery_size`` objects per mistakes
    gallery (half as many per class of correct examples, for every class or the first
    ``max_classes_shown``).
    """
    from jinja2 import Environment

    from ._version import __version__
    from .api import load
    from .core.plots import standard_plots, training_curves

    if gallery_size < 1:
        raise SkysiftError(f"gallery_size must be >= 1, got {gallery_size}")
    from .core.card import card_rows
    from .core.plots import display_names
    from .core.progress import step, track

    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    with step(f"loading model {run_dir}"):
        model = load(run_dir)
    task = model.task
    if not isinstance(data, TaskData):
        with step(f"loading {data}"):
            data = model.read(data, labelled=True)
    if not data.has_labels:
        raise SkysiftError(f"{data.source}: a report needs labelled data")
    proba = model.predict_proba(data, tta=tta)
    y = data.hard_labels
    pred = _predicted(proba, model.threshold)
    names = model.class_names
    labels = display_names(task, names)
    figures, task_figures, galleries, notes = [], [], [], []
    metrics = model.evaluate(data, proba=proba)
    with tempfile.TemporaryDirectory(prefix="skysift-report-") as tmp:
        tmp = Path(tmp)
        with step("standard figures"):
            standard_plots(tmp / "plots", y, proba, labels, threshold=model.threshold)
        for fname, caption in STANDARD_FIGURES.items():
            if (tmp / "plots" / fname).exists():
                figures.append({"data": _png(tmp / "plots" / fname), "caption": caption,
                                "wide": fname == "roc_pr.png"})
        curves = training_curves(run_dir / "logs" / "metrics.csv", tmp / "training_curves.png")
        if curves is None and (run_dir / "plots" / "training_curves.png").exists():
            curves = run_dir / "plots" / "training_curves.png"
        if curves is not None:
            figures.append({"data": _png(curves), "wide": True,
                            "caption": "Training curves (loss and validation metrics per epoch)"})
        else:
            notes.append("No training log in the run directory: no training curves.")

        # A task figure or gallery that fails to draw costs its image and a visible note, not the
        # whole report (the metrics above are still right).
        try:
            with step("task figures"):
                made = task.figures(data, proba, tmp / "task", data_params=model.data_params) or []
        except Exception as e:  # noqa: BLE001 - any plotting failure, see above
            made = []
            notes.append(f"{task.name}: task figures failed to draw ({type(e).__name__}: {e})")
        for extra in sorted(Path(f) for f in made):
            # The galleries below show the mistakes with the report's own (threshold-aware) choice.
            if extra.suffix == ".png" and extra.exists() and "mistakes" not in extra.stem:
                task_figures.append({"data": _png(extra),
                                     "caption": f"{task.name}: {extra.stem.replace('_', ' ')}"})

        picks = gallery_picks(y, proba, pred, gallery_size)

        def gallery(idx: np.ndarray, key: str, title: str, caption: str) -> None:
            if len(idx) == 0:
                return
            try:
                png = task.plot_gallery(data, idx, tmp / f"gallery_{key}.png", proba=proba[idx], title=title)
            except Exception as e:  # noqa: BLE001 - see above
                notes.append(f"{title}: the gallery failed to draw ({type(e).__name__}: {e})")
                return
            if png is not None and Path(png).exists():
                galleries.append({"data": _png(png), "caption": caption})

        mistakes = picks["mistakes"]
        gallery(mistakes, "mistakes", "Most confident mistakes",
                f"Most confident mistakes: the {len(mistakes)} wrong predictions with the highest probability "
                f"given to the predicted class ({int((pred != y).sum())} mistakes in all)")
        if len(mistakes) == 0:
            notes.append("No mistakes on this data: the mistakes gallery is empty.")
        shown = len(names) if max_classes_shown is None else min(len(names), max_classes_shown)
        for k in track(range(shown), "report galleries", unit="classes"):
            idx = picks[f"correct:{k}"]
            if len(idx) == 0:
                notes.append(f"No correct prediction of class '{labels[k]}' to show.")
            gallery(idx, f"correct_{k}", f"Most confident correct: {labels[k]}",
                    f"Most confident correct predictions of class '{labels[k]}' ({len(idx)} shown)")
        if shown < len(names):
            notes.append(f"Correct examples are shown for the first {shown} of {len(names)} classes.")

    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(y, pred, labels=list(range(len(names))), zero_division=0)
    per_class = [(labels[k], f"{p[k]:.3f}", f"{r[k]:.3f}", f"{f[k]:.3f}", int(s[k])) for k in range(len(names))]
    val = model.card.get("validation_metrics", {})
    test = model.card.get("test_metrics") or {}
    keys = [k for k, v in metrics.items() if isinstance(v, (int, float))]
    keys += [k for k, v in val.items() if isinstance(v, (int, float)) and k not in keys]
    metric_rows = [(k, _fmt(metrics.get(k)), _fmt(test.get(k)) if test else "", _fmt(val.get(k))) for k in keys]
    seconds = time.perf_counter() - t0
    env = Environment(autoescape=True)
    page = env.from_string(TEMPLATE).render(
        title=f"{task.name} / {model.card['model']['name']}",
        generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        version=__version__, seconds=f"{seconds:.1f}", run_dir=str(run_dir), data_source=str(data.source),
        data_name=Path(str(data.source)).name or "data", n_objects=len(data),
        untrained=bool(model.card.get("untrained")), card_rows=card_rows(model.card, task), metric_rows=metric_rows,
        per_class=per_class, figures=figures, task_figures=task_figures, galleries=galleries, notes=notes,
    )
    write_text(out, page)
    # atomic writes create the file 0600 (mkstemp); a report is meant to be shared or served
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(out, 0o666 & ~umask)
    return {"path": Path(out), "seconds": time.perf_counter() - t0, "metrics": metrics,
            "n_images": len(figures) + len(task_figures) + len(galleries)}


def register(app: Any) -> None:
    import typer

    @app.command()
    def report(run_dir: Path = typer.Argument(..., help="a trained run directory"),
               data: Path = typer.Option(..., "--data", help="labelled data to evaluate on"),
               out: Path = typer.Option(Path("report.html"), "--out", help="HTML file to write"),
               gallery_size: int = typer.Option(8, "--gallery-size", help="objects per gallery"),
               tta: bool = typer.Option(None, "--tta/--no-tta")):
        """One self-contained HTML report: model card, metrics, curves, galleries incl. confident mistakes."""
        res = build_report(run_dir, data, out, tta=tta, gallery_size=gallery_size)
        typer.echo(f"wrote {res['path']} ({res['n_images']} images, {res['seconds']:.1f} s)")
