"""``explore``: files written for a tiny fake task and for every installed task's simulated data;
the HTML pages open in headless Chromium without console messages.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from skysift.core.data import TaskData
from skysift.core.task import Task, TaskInfo, task_names
from skysift.explore import explore


class TinyTask(Task):
    """Three classes of noisy sine curves of different frequency, as ``(N, 64)`` arrays: a task
    defined in a test, through the same contract as the installed ones."""

    info = TaskInfo(name="tiny", description="noisy sine curves", default_model="none")

    def load(self, path, *, labelled=None, format=None):
        f = np.load(path)
        return TaskData(ids=f["ids"], x=f["x"], y=f["y"], class_names=["low", "mid", "high"], source=str(path))

    def draw_object(self, ax, data, i):
        ax.plot(data.x[i])

    def raw_matrix(self, data, max_n=5000):
        return np.asarray(data.x[:max_n], dtype=np.float64)


def _tiny_data(path: Path, n=300, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=[0.7, 0.25, 0.05])
    t = np.linspace(0, 1, 64)
    x = np.sin(2 * np.pi * (1 + 3 * y)[:, None] * t) + 0.3 * rng.normal(size=(n, 64))
    x[0, :5] = np.nan  # missing values must not break PCA or the statistics
    np.savez(path, ids=np.arange(n), x=x, y=y)
    return path


def open_in_chromium(page: Path, tmp_path: Path, chromium: str) -> tuple[str, list[str]]:
    """Load ``page`` headless; return the DOM after scripts ran and the console lines logged."""
    exe = chromium
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader", "--disable-quic",
           "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", "--enable-logging=stderr", "--log-level=0",
           "--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    console = [line for line in r.stderr.splitlines() if ":CONSOLE" in line and not _browser_note(line)]
    return r.stdout, console


# Notes Chromium itself writes to a page's console when WebGL runs in software (no GPU here): the
# GPU driver's performance remarks and the Canvas2D readback hint. They are not raised by the
# page's scripts; anything else (an exception, console.error/warn/log) fails the check.
BROWSER_NOTES = ('"[.WebGL-', '"Canvas2D: Multiple readback operations using getImageData')


def _browser_note(line: str) -> bool:
    return any(note in line for note in BROWSER_NOTES)


@pytest.mark.browser
def test_chromium_check_catches_a_script_error(tmp_path, chromium):
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>notDefined();</script></body></html>")
    _, console = open_in_chromium(bad, tmp_path, chromium)
    assert any("notDefined" in line for line in console)


@pytest.mark.browser
def test_explore_fake_task_writes_files_and_pages_open(tmp_path, chromium):
    data = _tiny_data(tmp_path / "tiny.npz")
    files = explore(TinyTask(), data, tmp_path / "out", max_n=200, umap=False)
    for key in ("class_balance", "examples_low", "examples_mid", "examples_high", "class_summary_csv",
                "class_summary_md", "class_summary_html", "embedding_pca", "embedding_pca_3d", "index"):
        assert files[key].exists() and files[key].stat().st_size > 0, key
    for key in ("class_balance", "embedding_pca", "examples_high"):
        assert files[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import pandas as pd

    table = pd.read_csv(files["class_summary_csv"])
    assert list(table["class"]) == ["low", "mid", "high"]
    assert table["count"].sum() == 300
    assert table["fraction"].sum() == pytest.approx(1.0)
    # sampling kept at least min(count, 50) of the rare class
    assert (table["sampled"] >= np.minimum(table["count"], 50)).all()
    info = json.loads(files["summary_json"].read_text())
    assert info["n_objects"] == 300 and info["raw_features"] == 64
    assert info["n_embedded"] <= 300

    html = files["embedding_pca_3d"].read_text()
    import re

    # self-contained: no <script src=...> at all (plotly.js itself is inlined)
    assert re.findall(r"<script[^>]*>", html) and not re.findall(r"<script[^>]*\bsrc=", html)
    dom, console = open_in_chromium(files["embedding_pca_3d"], tmp_path, chromium)
    assert console == []
    assert "js-plotly-plot" in dom  # plotly rendered the figure
    dom, console = open_in_chromium(files["index"], tmp_path, chromium)
    assert console == []
    assert "class_balance.png" in dom


def test_explore_needs_labels(tmp_path):
    from skysift.errors import DataError

    x = np.zeros((5, 4))
    data = TaskData(ids=np.arange(5), x=x, y=None, class_names=["a", "b"], source="unlabelled.npz")
    with pytest.raises(DataError, match="labelled"):
        explore(TinyTask(), data, tmp_path / "o")


@pytest.mark.parametrize("name", task_names())
def test_explore_every_installed_task_on_simulated_data(name, tmp_path):
    """Each task's own simulator, explored through the Task interface only."""
    from skysift.core.task import get_task

    task = get_task(name)
    path = task.simulate(tmp_path / "data", n=120, seed=0)
    files = explore(task, path, tmp_path / "out", max_n=120, examples_per_class=3, umap=False)
    assert files["class_balance"].exists() and files["embedding_pca"].exists()
    assert files["embedding_pca_3d"].stat().st_size > 1_000_000  # plotly.js is inlined
    assert any(k.startswith("examples_") for k in files), "plot_gallery drew nothing"


REAL = {"transients": "plasticc", "galaxies": "galaxyzoo/gz1"}


@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(REAL))
def test_explore_real_data(name, shared_data, tmp_path):
    if name not in task_names():
        pytest.skip(f"task {name!r} is not installed yet")
    files = explore(name, shared_data / REAL[name], tmp_path / "out", max_n=600, examples_per_class=3, umap=False)
    info = json.loads(files["summary_json"].read_text())
    import pandas as pd

    table = pd.read_csv(files["class_summary_csv"])
    assert table["count"].sum() == info["n_objects"] > 1000
    assert (table["count"] > 0).all()
    assert files["embedding_pca"].stat().st_size > 10_000
