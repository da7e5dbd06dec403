"""The command line itself: options generated from TrainConfig, validation before anything loads,
light imports, and warnings shown once."""
from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from rich.console import Console

from skysift import cli
from skysift.cli import main
from skysift.core.config import STRATEGIES, TrainConfig
from skysift.errors import ConfigError

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("torch", "lightning", "pytorch_lightning", "timm", "sklearn", "pandas")


def _python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def _option_for(name: str) -> str:
    return next(decl for field, _, decl, _ in cli._train_fields() if field == name).split("/")[0]


def test_every_train_config_field_is_a_train_option(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # rich would otherwise fold long option names
    assert main(["train", "--help"]) == 0
    help_text = capsys.readouterr().out
    for f in dataclasses.fields(TrainConfig):
        opt = _option_for(f.name)
        assert opt in help_text, f"TrainConfig.{f.name} has no {opt} in `skysift train --help`"
        assert f.metadata.get("help"), f"TrainConfig.{f.name} has no help text"
    for opt in ("--param", "--logger", "--resume", "--devices", "--model", "--no-calibrate", "--weight-decay",
                "--val-frac", "--focal-gamma", "--num-workers", "--max-time-minutes", "--threads"):
        assert opt in help_text


def test_train_options_parse_like_before():
    values = {f.name: None for f in dataclasses.fields(TrainConfig)}
    assert cli._train_options(values) == {}
    opts = cli._train_options({**values, "devices": "2", "model_params": ["depth=4", "act=relu"],
                               "calibrate": False, "weight_decay": 0.0})
    assert opts == {"devices": 2, "model_params": {"depth": 4, "act": "relu"}, "calibrate": False,
                    "weight_decay": 0.0}
    assert cli._train_options({**values, "devices": "0,1"})["devices"] == "0,1"
    assert cli._train_options({**values, "model_params": []}) == {}


@pytest.mark.parametrize("argv, message", [
    (["--devices", "abc"], "devices must be"),
    (["--devices", "0"], "devices must be"),
    (["--strategy", "ddpp"], "strategy must be"),
    (["--accelerator", "quantum"], "accelerator must be"),
    (["--num-nodes", "0"], "num_nodes must be >= 1"),
    (["--num-workers", "-1"], "num_workers must be >= 0"),
    (["--patience", "0"], "patience must be >= 1"),
    (["--weight-decay", "-0.1"], "weight_decay must be >= 0"),
    (["--focal-gamma", "-1"], "focal_gamma must be >= 0"),
    (["--max-time-minutes", "0"], "max_time_minutes must be > 0"),
    (["--threads", "0"], "threads must be >= 1"),
    (["--val-frac", "0.7"], "val_frac must be in (0, 0.5)"),
    (["--param", "depth"], "--param expects NAME=VALUE"),
])
def test_bad_train_option_is_one_error_line_before_loading(tmp_path, capsys, argv, message):
    # the data does not exist: an error about the option proves nothing was read first
    rc = main(["train", "transits", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "r"), *argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "r").exists()


def test_bad_devices_fails_without_importing_torch(tmp_path):
    r = _python("import sys; from skysift.cli import main; "
                f"rc = main(['train', 'transits', '--data', {str(tmp_path)!r}, '--out', {str(tmp_path / 'r')!r}, "
                "'--devices', 'abc']); "
                f"print(rc, [m for m in {HEAVY!r} if m in sys.modules])")
    assert r.stdout.split("\n")[0] == "2 []", r.stdout + r.stderr
    assert "error: devices must be" in r.stderr


@pytest.mark.parametrize("devices", [1, 2, -1, "auto", "-1", "0,1", "1,", "3"])
def test_devices_lightning_accepts(devices):
    assert TrainConfig(devices=devices).devices == devices


@pytest.mark.parametrize("changes", [{"devices": 0}, {"devices": "gpu"}, {"devices": True}, {"epochs": 1.5},
                                     {"seed": -1}, {"tta": "yes"}, {"model_params": [1]}, {"lr": 0},
                                     {"strategy": "ddp-spawn"}, {"sampler": "over"}, {"precision": "64"}])
def test_train_config_rejects(changes):
    with pytest.raises(ConfigError):
        TrainConfig(**changes)


def test_strategies_match_lightning():
    registry = pytest.importorskip("lightning.pytorch.strategies").StrategyRegistry
    assert set(STRATEGIES) == {"auto", *registry.available_strategies()}


def test_import_skysift_loads_no_torch():
    r = _python("import sys, skysift; assert skysift.__version__; from skysift.cli import app, _mount_optional; "
                "_mount_optional(); import skysift.core.config; "
                f"print([m for m in {HEAVY!r} if m in sys.modules])")
    assert r.stdout.strip() == "[]", r.stdout + r.stderr


def test_lazy_public_names():
    import skysift
    from skysift.api import Model, train

    assert skysift.train is train and skysift.Model is Model
    assert skysift.errors.ConfigError is ConfigError
    assert set(skysift.__all__) <= set(dir(skysift))
    with pytest.raises(AttributeError):
        skysift.no_such_name  # noqa: B018


def test_tasks_and_models_listings_match_the_task_classes():
    import importlib

    from skysift.core.task import get_task, task_info, task_names

    for name in task_names():
        task = get_task(name)
        assert task_info(name) is task.info  # the listing's cheap INFO is the task's own
        assert importlib.import_module(f"skysift.{name}.models").MODELS is task.models


#: what a task's model registry must load without: ``skysift models`` answers in well under a second
#: because the networks and estimators are imported only when a builder runs
REGISTRY_HEAVY = ("torch", "timm", "lightgbm", "sklearn", "scipy", "pandas")


def _task_names() -> list[str]:
    from skysift.core.task import task_names

    return task_names()


@pytest.mark.parametrize("task_name", _task_names())
def test_models_module_loads_no_heavy_library(task_name):
    # the timm:<name> fallback too: resolving its spec (defaults, description) must not build anything
    r = _python(f"import sys, skysift.{task_name}.models as m; "
                "[m.MODELS.get(n) for n in m.MODELS.names()]; "
                "m.MODELS._fallback and m.MODELS.get('timm:resnet10t'); "
                f"print([k for k in {REGISTRY_HEAVY!r} if k in sys.modules])")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout + r.stderr


@pytest.mark.parametrize("task_name", _task_names())
def test_models_command_lists_the_task_models(task_name):
    from skysift.core.task import get_task

    env = {**os.environ, "COLUMNS": "250", "PYTHONIOENCODING": "utf-8",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([sys.executable, "-m", "skysift", "models", task_name], capture_output=True, text=True,
                       env=env, timeout=120, encoding="utf-8")
    assert r.returncode == 0, r.stderr
    # rows of rich's table: first cell is the name, "(default)" marks the task's default model
    cells = [line.strip().strip("│|").split("│" if "│" in line else "|")[0].strip()
             for line in r.stdout.splitlines() if line.strip()[:1] in ("│", "|")]
    listed = [c.removesuffix(" (default)") for c in cells if c and c != "name"]
    task = get_task(task_name)
    assert listed == task.models.names(), r.stdout
    assert f"{task.info.default_model} (default)" in cells


def test_unknown_task_in_listing(capsys):
    assert main(["models", "nope"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err


def test_warnings_shown_once_in_yellow_through_rich():
    buf = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        cli._show_warnings_once(Console(file=buf, force_terminal=True, width=200))
        for _ in range(3):
            warnings.warn("x.png: grayscale images were replicated into three channels", stacklevel=1)
        warnings.warn("DataLoader does not have many workers which may be a bottleneck", stacklevel=1)
    out = buf.getvalue()
    assert out.count("warning: x.png: grayscale images were replicated") == 1
    assert "\x1b[33m" in out  # yellow
    assert "many workers" not in out


def test_main_leaves_warning_settings_as_it_found_them(capsys):
    before = (warnings.showwarning, list(warnings.filters))
    main(["tasks"])
    assert (warnings.showwarning, list(warnings.filters)) == before
