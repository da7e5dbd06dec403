"""ONNX export: onnxruntime gives the probabilities torch gives (1e-4), for every task present and
for a trained transits model; the sidecar carries what a consumer needs; CLI errors exit 2."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import skysift
from skysift.cli import main
from skysift.core.task import get_task, task_names
from skysift.export import export_onnx, onnx_inputs, run_onnx, sidecar_path
from skysift.serving.testing import random_bundle


@pytest.fixture(scope="module")
def trained_transits(train_tiny_transits) -> tuple[Path, Path]:
    return train_tiny_transits(seed=11, epochs=1)


def _check_same_probabilities(run: Path, data_path: Path, tmp_path: Path, n: int = 9) -> dict:
    out = export_onnx(run, tmp_path / "m.onnx")
    model = skysift.load(run)
    data = model.task.load(data_path, labelled=False)
    data = data.subset(np.arange(min(n, len(data))))  # a batch size other than the traced one
    got = run_onnx(out, onnx_inputs(model, data))
    expected = model.predict_proba(data, tta=False)
    np.testing.assert_allclose(got["probabilities"], expected, atol=1e-4, rtol=0)
    assert got["probabilities"].shape == (len(data), len(model.class_names))
    return json.loads(sidecar_path(out).read_text())


def test_trained_transits_model_onnx_matches_torch(trained_transits, tmp_path):
    run, csv = trained_transits
    side = _check_same_probabilities(run, csv, tmp_path, n=20)
    model = skysift.load(run)
    assert side["class_names"] == ["no_planet", "planet"]
    assert side["calibration"]["temperature"] == pytest.approx(model.temperature)
    assert side["calibration"]["bias"] == pytest.approx(model.bias)
    assert side["inputs"] == [{"name": "input", "shape": ["batch", 2, 3197], "dtype": "float32"}]
    assert side["preprocessing"]["stats"] == model.stats and side["check"]["max_abs_diff_vs_torch"] < 1e-4


@pytest.mark.parametrize("name", task_names())
def test_every_task_exports(name, tmp_path):
    task = get_task(name)
    data = task.simulate(tmp_path / "data", n=24, seed=2)
    run = random_bundle(name, data, tmp_path / "run")
    side = _check_same_probabilities(run, data, tmp_path)
    assert side["task"] == name


def test_cli_export_and_errors(trained_transits, tmp_path, capsys):
    run, _ = trained_transits
    out = tmp_path / "cli.onnx"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    assert out.stat().st_size > 1000 and sidecar_path(out).exists()
    assert main(["export", str(run), "--format", "tflite"]) == 2
    assert "--format must be one of onnx" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nope")]) == 2
