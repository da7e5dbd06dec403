"""``skysift demo``: simulate → train → evaluate → predict for every installed task."""
from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .core.io import atomic_path, write_json
from .core.task import get_task, task_names


def run_demo(out: str | Path, tasks: list[str] | None = None, seed: int = 0,
             console: Console | None = None) -> dict:
    """Run the demo into ``out``; returns ``{task: test metrics}``. Sizes come from ``Task.demo``."""
    import os

    from . import api
    from .core.training import fit

    os.environ.setdefault("SKYSIFT_NO_PROGRESS", "1")  # one progress display: ours
    console = console or Console()
    out = Path(out)
    names = tasks or task_names()
    results: dict = {}
    t_all = time.time()
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[name]:<17}"), BarColumn(),
                  TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as progress:
        bars = {n: progress.add_task("waiting", total=4, name=n) for n in names}
        plain = not console.is_terminal  # a log file: rich draws nothing until the end, so say each step

        def say(bar, description, name):
            progress.update(bar, description=description)
            if plain:
                console.print(f"[{time.time() - t_all:4.0f} s] {name}: {description}", markup=False,
                              highlight=False)

        for name in names:
            task = get_task(name)
            cfg = dict(task.info.demo)
            bar = bars[name]
            t0 = time.time()
            say(bar, "simulating", name)
            train_path = task.simulate(out / name / "data_train", n=cfg.get("n_train"), seed=seed)
            test_path = task.simulate(out / name / "data_test", n=cfg.get("n_test"), seed=seed + 1000)
            progress.advance(bar)
            say(bar, f"training ({cfg.get('epochs')} epochs)", name)
            options = {k: v for k, v in cfg.items() if k not in ("n_train", "n_test")}
            run_dir = out / name / "run"
            fit(task, train_path, run_dir, progress=False, seed=seed, **options)
            progress.advance(bar)
            say(bar, "evaluating on a fresh simulated test set", name)
            model = api.load(run_dir)
            test = model.read(test_path, labelled=True)
            logits = model.predict_logits(test)
            proba = model.calibrate(logits)
            metrics = model.evaluate(test, plots_dir=out / name / "plots_test", proba=proba)
            write_json(out / name / "metrics_test.json", metrics)
            progress.advance(bar)
            say(bar, "writing predictions", name)
            with atomic_path(out / name / "predictions.csv") as tmp:
                model.frame(test.ids, logits).to_csv(tmp, index=False)
            progress.advance(bar)
            say(bar, f"done in {time.time() - t0:.0f} s", name)
            headline = task.info.headline_metric
            results[name] = {"model": model.card["model"]["name"], "seconds": round(time.time() - t0, 1),
                             "headline": f"{headline} {metrics.get(headline, float('nan')):.3f}",
                             **{k: v for k, v in metrics.items() if isinstance(v, (int, float)) or v is None}}
    write_json(out / "summary.json", results)
    table = Table(title=f"skysift demo ({time.time() - t_all:.0f} s): fresh simulated test sets",
                  caption="ROC/PR: ROC-AUC and PR-AUC (macro one-vs-rest for several classes)")
    cols = {"model": "model", "n": "n", "roc_auc": "ROC", "pr_auc": "PR", "f1": "F1",
            "accuracy": "acc", "ece": "ECE", "headline": "task's own metric", "seconds": "s"}
    table.add_column("task", no_wrap=True)
    for c in cols.values():
        table.add_column(c, justify="left" if c in ("model", "task's own metric") else "right",
                         no_wrap=c in ("model", "task's own metric"))
    for name, m in results.items():
        row = [name]
        for c in cols:
            v = m.get(c)
            row.append("—" if v is None else (f"{v:.0f}" if c == "seconds" else f"{v:.3f}"
                                              if isinstance(v, float) else str(v)))
        table.add_row(*row)
    # a truncated number is worse than a wide line: never narrower than the table needs
    wide = Console(width=max(console.width, 128), file=console.file, force_terminal=console.is_terminal)
    wide.print(table)
    console.print(f"outputs in {out}/<task>/ (run/ holds the model bundle and plots/)")
    return results
