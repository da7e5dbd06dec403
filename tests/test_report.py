"""HTML report: self-contained (every image inlined), the sections the issue lists, galleries with
the most confident mistakes, and every image decoded by headless Chromium."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

import skysift
from skysift.cli import main
from skysift.core.task import get_task, task_names
from skysift.report import build_report, gallery_picks
from skysift.serving.testing import random_bundle


@pytest.fixture(scope="module")
def trained(train_tiny_transits, tmp_path_factory) -> tuple[Path, Path]:
    from skysift.transits.simulate import simulate_light_curves, write_kaggle_csv

    run, _ = train_tiny_transits(seed=7, epochs=2)
    flux, labels, _ = simulate_light_curves(60, seed=8, positive_fraction=0.2)
    return run, write_kaggle_csv(tmp_path_factory.mktemp("report_test") / "exoTest.csv", flux, labels)


IMAGE_CHECK = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
});
</script></body>"""


def images_loaded_in_chromium(page: Path, tmp_path: Path, chromium: str) -> tuple[int, int]:
    """(images decoded, images on the page) after loading ``page`` in headless Chromium with the
    network off: a broken or non-inlined image counts as not decoded."""
    probe = tmp_path / ("probe_" + page.name)
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", IMAGE_CHECK), encoding="utf-8")
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-extensions", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=10000",
           "--dump-dom", probe.resolve().as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    m = re.search(r'data-images="(\d+)/(\d+)"', r.stdout)
    assert m, "the page's load handler did not run: " + r.stdout[-500:]
    return int(m.group(1)), int(m.group(2))


def test_gallery_picks_most_confident_mistakes():
    y = np.array([0, 0, 1, 1, 0])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.95, 0.05], [0.6, 0.4]])
    pred = proba.argmax(axis=1)
    picks = gallery_picks(y, proba, pred, n=8)
    assert list(picks["mistakes"]) == [3, 1]  # 0.95 for the wrong class first, then 0.8
    assert list(picks["correct:0"]) == [0, 4] and list(picks["correct:1"]) == [2]


@pytest.mark.browser
def test_report_of_trained_transits_model(trained, tmp_path, chromium):
    run, test = trained
    res = build_report(run, test, tmp_path / "report.html")
    page = res["path"].read_text(encoding="utf-8")
    for section in ("Model card", "Metrics", "Per class", "ROC and precision-recall", "Confusion matrix",
                    "Reliability diagram", "Training curves", "Most confident mistakes",
                    "Most confident correct predictions of class &#39;no_planet&#39;"):
        assert section in page, section
    # self-contained: images only as data: URIs, no external resources of any kind
    assert not re.search(r'(src|href)="(?!data:|#)', page)
    assert page.count('src="data:image/png;base64,') == res["n_images"] >= 6
    assert (res["path"].stat().st_mode & 0o044) == 0o044  # readable by others: a report is shared
    metrics = skysift.load(run).evaluate(test)
    assert f"{metrics['roc_auc']:.4f}" in page
    loaded, total = images_loaded_in_chromium(res["path"], tmp_path, chromium)
    assert total == res["n_images"] and loaded == total


@pytest.mark.browser
@pytest.mark.parametrize("name", task_names())
def test_report_for_every_task(name, tmp_path, chromium):
    task = get_task(name)
    data = task.simulate(tmp_path / "data", n=40, seed=4)
    run = random_bundle(name, data, tmp_path / "run")
    res = build_report(run, data, tmp_path / f"{name}.html", gallery_size=4)
    page = res["path"].read_text(encoding="utf-8")
    assert "untrained weights" in page
    if "Most confident" not in page:
        pytest.skip(f"task {name!r} draws no galleries (plot_gallery returned None)")
    # the generic mistakes gallery is drawn for every task; an untrained model can still be right
    # about all 40 objects (transits: 39 quiet stars and a host its search statistics give away),
    # and then the report says so instead
    if res["metrics"]["accuracy"] < 1.0:
        assert "Most confident mistakes" in page
    else:
        assert "No mistakes on this data" in page
    assert not re.search(r'(src|href)="(?!data:|#)', page)
    loaded, total = images_loaded_in_chromium(res["path"], tmp_path, chromium)
    assert total == res["n_images"] >= 4 and loaded == total


def test_cli_report_and_errors(trained, tmp_path, capsys):
    run, test = trained
    out = tmp_path / "r.html"
    assert main(["report", str(run), "--data", str(test), "--out", str(out)]) == 0
    assert out.exists() and "images" in capsys.readouterr().out
    assert main(["report", str(run), "--data", str(tmp_path / "missing.csv"), "--out", str(out)]) == 2
    assert main(["report", str(run), "--data", str(test), "--out", str(out), "--gallery-size", "0"]) == 2
    from skysift.transits.simulate import simulate_light_curves, write_kaggle_csv

    flux, _, _ = simulate_light_curves(5, seed=9)
    unlabelled = write_kaggle_csv(tmp_path / "unlabelled.csv", flux, None)
    assert main(["report", str(run), "--data", str(unlabelled), "--out", str(tmp_path / "u.html")]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "label" in err and "Traceback" not in err
    assert not (tmp_path / "u.html").exists()
