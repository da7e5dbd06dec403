"""The model registry: builders with their defaults in their signatures, data parameters apart,
the ``timm:`` fallback, and parity with the networks and bundles of the code before the registry.

Parity is checked against the package as it was at :data:`BASE` (the commit before the registry),
unpacked from git into a temporary folder and run in a subprocess: every registered model must
build the same state dict (same keys, shapes and, from the same seed, the same initial values),
and bundles that version wrote (data parameters inside ``params``) must load and predict the same
probabilities.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from skysift.core.config import TrainConfig, resolve_config
from skysift.core.registry import (
    ModelRegistry,
    ModelSpec,
    card_params,
    create_model,
    register_model,
    spec_from_builder,
)
from skysift.core.task import get_task
from skysift.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
#: the last commit whose models were lambdas with defaults in dicts
BASE = "89844ca"
TASKS = ("transits", "transients", "technosignatures", "galaxies")


# ---- the registry API on a toy model -----------------------------------------------------------
@pytest.fixture()
def toy() -> ModelRegistry:
    reg = ModelRegistry()

    @register_model(reg, data_defaults={"jitter": 0.5}, train_overrides={"lr": 0.01})
    def tiny_mlp(n_classes: int, stats: dict, *, width: int = 8, depth: int = 1, dropout: float = 0.0) -> nn.Module:
        """A tiny MLP on ``stats["n_in"]`` inputs.

        More text that is not the description."""
        layers, c = [], int(stats.get("n_in", 4))
        for _ in range(depth):
            layers += [nn.Linear(c, width), nn.ReLU(), nn.Dropout(dropout)]
            c = width
        return nn.Sequential(*layers, nn.Linear(c, n_classes))

    return reg


def test_defaults_come_from_the_signature(toy):
    spec = toy.get("tiny-mlp")  # underscores become hyphens
    assert isinstance(spec, ModelSpec)
    assert spec.defaults == {"width": 8, "depth": 1, "dropout": 0.0}
    assert spec.data_defaults == {"jitter": 0.5}
    assert spec.description == "A tiny MLP on ``stats[\"n_in\"]`` inputs."
    assert spec.train_overrides == {"lr": 0.01} and spec.kind == "torch"
    # the builder is returned unchanged and the spec's build adapter still takes (params, stats, k)
    assert spec.builder(3, {}).state_dict().keys() == spec.build({}, {}, 3).state_dict().keys()
    net = spec.build({"width": 5, "jitter": 0.9}, {"n_in": 2}, 3)  # a data key in params is ignored
    assert net[0].weight.shape == (5, 2)


def test_builders_must_name_every_parameter_with_a_default():
    def no_default(n_classes, stats, *, width): ...

    def var_kw(n_classes, stats, **kw): ...

    def one_positional(n_classes, *, width=1): ...

    for fn in (no_default, var_kw, one_positional):
        with pytest.raises(TypeError):
            spec_from_builder(fn)


def test_create_model_with_an_override(toy):
    net = create_model(toy, "tiny-mlp", 3, {"n_in": 6}, width=16, depth=2)
    assert net[0].weight.shape == (16, 6) and net[3].weight.shape == (16, 16) and net[-1].out_features == 3
    # by task name, as timm's create_model(name, **kwargs)
    assert create_model("transits", "resnet1d", 2, {}, width=8, attention_layers=0).stem[0].out_channels == 8


def test_unknown_override_names_the_accepted_ones(toy):
    with pytest.raises(ConfigError, match=r"no parameter\(s\) widht.*it takes: depth, dropout, width"):
        create_model(toy, "tiny-mlp", 3, {}, widht=16)
    # a data parameter is not the network's
    with pytest.raises(ConfigError, match="jitter: data parameter"):
        create_model(toy, "tiny-mlp", 3, {}, jitter=0.1)
    with pytest.raises(ConfigError, match="unknown model"):
        create_model(toy, "huge-mlp", 3, {})
    with pytest.raises(ConfigError, match="it takes: depth, dropout, jitter, width"):
        toy.get("tiny-mlp").resolve({"nope": 1})


def test_data_params_are_routed_apart_from_model_params():
    task = get_task("transits")
    cfg, spec, params, data = resolve_config(task, {"model": "resnet1d",
                                                    "model_params": {"width": 16, "inject_prob": 0.5},
                                                    "data_params": {"inject_eb_prob": 0.05}})
    assert spec.name == "resnet1d"
    assert params == {"width": 16, "depth": 5, "dropout": 0.1, "attention_layers": 2}
    assert data == {"inject_prob": 0.5, "inject_eb_prob": 0.05}
    assert cfg.model_params == {"width": 16, "inject_prob": 0.5} and cfg.data_params == {"inject_eb_prob": 0.05}
    with pytest.raises(ConfigError, match="it takes: attention_layers, depth, dropout, inject_eb_prob"):
        resolve_config(task, {"model": "resnet1d", "model_params": {"widht": 16}})
    with pytest.raises(ConfigError, match="no data parameter"):
        resolve_config(task, {"model": "resnet1d", "data_params": {"width": 16}})  # a model parameter is not a data one
    assert "data_params" in TrainConfig().to_dict()
    # galaxies: augmentation is data; technosignatures: preprocessing + augmentation are data
    _, _, p, d = resolve_config(get_task("galaxies"), {"model_params": {"brightness": 0.0, "drop_rate": 0.2}})
    assert d["brightness"] == 0.0 and p["drop_rate"] == 0.2 and "brightness" not in p
    _, _, p, d = resolve_config(get_task("technosignatures"), {"model": "cadence-cnn",
                                                               "model_params": {"view": "on", "mixup_prob": 0.3}})
    assert d["view"] == "on" and d["mixup_prob"] == 0.3 and set(p) == {"widths", "dropout"}
    _, _, p, d = resolve_config(get_task("transients"), {"model": "transformer",
                                                         "model_params": {"max_len": 64, "d_model": 32}})
    assert d["max_len"] == 64 and p["d_model"] == 32 and "augment" in d and "augment" not in p


def test_a_builder_reads_a_shared_data_parameter():
    # technosignatures' view sets both what the dataset yields and the network's input channels
    spec = get_task("technosignatures").models.get("cadence-cnn")
    assert spec.shared == ("view",) and "view" not in spec.defaults
    net = spec.build(spec.defaults, {}, 2, {"view": "diff"})
    assert net.features[0][0].in_channels == 3
    assert create_model("technosignatures", "cadence-cnn", 2, {}, view="on").features[0][0].in_channels == 3


def test_old_cards_are_split_by_the_declared_keys():
    spec = get_task("transits").models.get("resnet1d")
    old = {"name": "resnet1d", "params": {"width": 16, "depth": 4, "dropout": 0.1, "attention_layers": 1,
                                           "inject_prob": 0.3, "inject_eb_prob": 0.2}}
    params, data = card_params(spec, old)
    assert params == {"width": 16, "depth": 4, "dropout": 0.1, "attention_layers": 1}
    assert data == {"inject_prob": 0.3, "inject_eb_prob": 0.2}
    new = {"name": "resnet1d", "params": params, "data_params": {"inject_prob": 0.0}}
    assert card_params(spec, new) == (params, {"inject_prob": 0.0, "inject_eb_prob": 0.2})


def test_timm_fallback_for_galaxies_and_technosignatures():
    g = create_model("galaxies", "timm:resnet10t", 3, {"image_size": 32}, input_size=32)
    assert g(torch.zeros(2, 3, 40, 40)).shape == (2, 3)  # resized inside the network
    spec = get_task("galaxies").models.get("timm:resnet10t")
    assert spec.description == "timm backbone resnet10t" and "brightness" in spec.data_defaults
    t = create_model("technosignatures", "timm:resnet10t", 2, {}, view="on")
    assert t(torch.zeros(2, 3, 32, 64)).shape == (2, 2)
    tspec = get_task("technosignatures").models.get("timm:swin_tiny_patch4_window7_224")
    assert tspec.defaults["input_size"] == [224, 224] and tspec.defaults["backbone"] == "swin_tiny_patch4_window7_224"
    for task in ("galaxies", "technosignatures"):
        with pytest.raises(ConfigError, match="timm has no model"):
            create_model(task, "timm:not_a_model", 2, {})
    with pytest.raises(ConfigError, match="unknown model"):
        get_task("transits").models.get("timm:resnet10t")  # only tasks that ask for the fallback


# ---- parity with the code before the registry ---------------------------------------------------
SEQ_STATS = {"sequence": {"meta_names": ["m"] * 7, "meta_mean": [0.0] * 7, "meta_std": [1.0] * 7,
                          "agg_names": ["a"] * 12, "agg_mean": [0.0] * 12, "agg_std": [1.0] * 12, "max_len": 128}}
#: (task, model, extra params, stats, n_classes) built by both versions from the same seed
BUILDS = [
    ("transits", "resnet1d", {}, {"length": 3197}, 2),
    ("transits", "resnet1d", {"width": 16, "depth": 4, "attention_layers": 1}, {"length": 3197}, 2),
    ("transits", "seed-cnn", {}, {"length": 3197}, 2),
    ("transients", "seed-lstm", {}, SEQ_STATS, 14),
    ("transients", "transformer", {}, SEQ_STATS, 14),
    ("transients", "gru", {}, SEQ_STATS, 14),
    ("technosignatures", "cadence-cnn", {}, {}, 2),
    ("technosignatures", "cadence-cnn", {"view": "on", "widths": [8, 16]}, {}, 2),
    ("technosignatures", "timm:resnet10t", {"view": "diff"}, {}, 2),
    ("galaxies", "galaxy-timm", {}, {"image_size": 64}, 3),
    ("galaxies", "seed-keras-cnn", {}, {"image_size": 64}, 3),
    ("galaxies", "seed-oxford-cnn", {}, {"image_size": 64}, 3),
    ("galaxies", "timm:resnet10t", {"output_stride": 16}, {"image_size": 64}, 3),
]
#: old bundles: (task, simulated objects, random_bundle's model, model_params)
BUNDLES = [
    ("transits", 40, None, None),
    ("technosignatures", 24, "cadence-cnn", {"view": "on", "flip_prob": 0.1}),
    ("galaxies", 24, "seed-keras-cnn", {"brightness": 0.05}),
    ("transients", 60, None, None),
]

OLD_SCRIPT = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    import numpy as np, torch
    torch.set_num_threads(1)
    from skysift.core.task import get_task
    from skysift.serving.testing import random_bundle
    import skysift
    out = Path(sys.argv[1])
    builds, bundles = json.loads(sys.argv[2]), json.loads(sys.argv[3])
    report = {"names": {}, "defaults": {}, "data": {}}
    for t in ["transits", "transients", "technosignatures", "galaxies"]:
        task = get_task(t)
        report["names"][t] = task.models.names()
        for n in task.models.names() + (["timm:resnet10t"] if t in ("galaxies", "technosignatures") else []):
            s = task.models.get(n)
            report["defaults"][f"{t}/{n}"] = {"defaults": s.defaults, "kind": s.kind, "description": s.description,
                                             "train_overrides": s.train_overrides}
    states = {}
    for i, (t, n, extra, stats, k) in enumerate(builds):
        spec = get_task(t).models.get(n)
        torch.manual_seed(i)
        net = spec.build({**spec.defaults, **extra}, stats, k)
        for key, v in net.state_dict().items():
            states[f"{i}/{key}"] = v
    torch.save(states, out / "states.pt")
    for t, n_obj, model, mp in bundles:
        task = get_task(t)
        data = task.simulate(out / f"data_{t}", n=n_obj, seed=7)
        report["data"][t] = str(data)
        run = random_bundle(t, data, out / f"run_{t}", model=model, model_params=mp, seed=3)
        proba = skysift.load(run).predict_proba(data)
        np.save(out / f"proba_{t}.npy", proba)
    (out / "report.json").write_text(json.dumps(report))
''')


@pytest.fixture(scope="module")
def old(tmp_path_factory):
    """What the package at BASE built and wrote (None: git or that commit is not at hand)."""
    if shutil.which("git") is None:
        pytest.skip("git is not available")
    root = tmp_path_factory.mktemp("old")
    archive = subprocess.run(["git", "-C", str(REPO), "archive", BASE, "src"], capture_output=True, check=False)
    if archive.returncode != 0:
        pytest.skip(f"commit {BASE} is not in this checkout")
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
    out = root / "out"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "SKYSIFT_NO_PROGRESS": "1"}
    res = subprocess.run([sys.executable, "-c", OLD_SCRIPT, str(out), json.dumps(BUILDS), json.dumps(BUNDLES)],
                         env=env, capture_output=True, text=True, cwd=str(root), check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def _undefaulted(description: str) -> str:
    """A description without the "default" mark, which moves with the task's default model."""
    return description.replace(" (default)", "").replace("(default; ", "(")


#: defaults changed on purpose since BASE, each with the measurement that chose it: lgbm is trained on
#: survey-like copies with deeper trees and reads the rest-frame feature block (issue 17;
#: transients/models.py, LGBM_DATA_DEFAULTS)
CHANGED_ON_PURPOSE = {("transients", "lgbm"): {"num_leaves", "max_depth", "gp_features", "survey_copies",
                                               "survey_val_copies", "survey_z_factor", "rest_frame_features"}}


def test_every_model_keeps_its_name_defaults_and_description(old):
    report = json.loads((old / "report.json").read_text())
    for t in TASKS:
        task = get_task(t)
        # every model is still there, in the same order (models added since may follow or precede)
        assert [n for n in task.models.names() if n in report["names"][t]] == report["names"][t]
        for name in report["names"][t] + (["timm:resnet10t"] if t in ("galaxies", "technosignatures") else []):
            spec, was = task.models.get(name), report["defaults"][f"{t}/{name}"]
            # the old single dict is now model parameters + data parameters, nothing lost or added
            now = {**spec.defaults, **spec.data_defaults}
            if (t, name) in CHANGED_ON_PURPOSE:  # a measured change of defaults: only the keys it names
                changed = CHANGED_ON_PURPOSE[(t, name)]
                now = {k: v for k, v in now.items() if k not in changed}
                was = {**was, "defaults": {k: v for k, v in was["defaults"].items() if k not in changed}}
            assert now == was["defaults"], (t, name)
            assert not set(spec.defaults) & set(spec.data_defaults)
            # "(default)" moves with the task's default model
            assert (spec.kind, _undefaulted(spec.description), spec.train_overrides) == \
                (was["kind"], _undefaulted(was["description"]), was["train_overrides"]), (t, name)


def test_every_model_builds_the_same_network(old):
    states = torch.load(old / "states.pt", weights_only=True)
    for i, (t, name, extra, stats, k) in enumerate(BUILDS):
        spec = get_task(t).models.get(name)
        torch.manual_seed(i)
        net = spec.build({**spec.defaults, **extra}, stats, k)  # the old call, data keys mixed in
        want = {key[len(f"{i}/"):]: v for key, v in states.items() if key.startswith(f"{i}/")}
        got = net.state_dict()
        assert want and list(got) == list(want), (t, name)
        for key in got:
            assert torch.equal(got[key], want[key]), (t, name, key)
        # and through create_model, data keys routed apart
        model_kw = {kk: v for kk, v in extra.items() if kk in spec.defaults or kk in spec.shared}
        torch.manual_seed(i)
        again = create_model(t, name, k, stats, **model_kw).state_dict()
        assert all(torch.equal(again[key], want[key]) for key in want), (t, name)


@pytest.mark.parametrize("task_name", [b[0] for b in BUNDLES])
def test_old_bundles_load_and_predict_the_same(old, task_name):
    import skysift

    run = old / f"run_{task_name}"
    card = json.loads((run / "model.json").read_text())
    assert "data_params" not in card["model"]  # written before the split
    model = skysift.load(run)
    spec = model.task.models.get(card["model"]["name"])
    assert set(model.params) <= set(spec.defaults) and set(model.data_params) == set(spec.data_defaults)
    assert {**model.params, **model.data_params} == card["model"]["params"]
    data = json.loads((old / "report.json").read_text())["data"][task_name]
    proba = model.predict_proba(data)
    np.testing.assert_allclose(proba, np.load(old / f"proba_{task_name}.npy"), rtol=0, atol=1e-6)


def test_training_writes_data_params_apart(tmp_path):
    import skysift

    task = get_task("transits")
    data = task.simulate(tmp_path / "data", n=60, seed=1)
    model = skysift.train("transits", data, tmp_path / "run", model="seed-cnn", epochs=1, batch_size=16,
                          calibrate=False, model_params={"inject_prob": 0.2}, progress=False)
    card = json.loads((tmp_path / "run" / "model.json").read_text())
    assert card["model"]["params"] == {}
    assert card["model"]["data_params"] == {"inject_prob": 0.2, "inject_eb_prob": 0.0}
    assert model.data_params == card["model"]["data_params"]
    again = skysift.load(tmp_path / "run")
    np.testing.assert_array_equal(again.predict_proba(data), model.predict_proba(data))


def test_estimator_reads_its_feature_set_from_the_data_params(tmp_path):
    import skysift

    task = get_task("transients")
    data = task.simulate(tmp_path / "data", n=80, seed=2)
    model = skysift.train("transients", data, tmp_path / "run", model="lgbm", calibrate=False, progress=False,
                          model_params={"feature_set": "seed", "n_estimators": 5})
    card = json.loads((tmp_path / "run" / "model.json").read_text())
    assert card["model"]["data_params"]["feature_set"] == "seed"
    assert card["model"]["params"]["n_estimators"] == 5 and "feature_set" not in card["model"]["params"]
    from skysift.transients.features import extract_features

    n_seed = extract_features(task.load(data).x.take([0]), "seed")[0].shape[1]
    assert model.net.n_features == n_seed
    assert skysift.load(tmp_path / "run").predict_proba(data).shape[1] == len(model.class_names)
