"""technosignatures: simulator, preprocessing, augmentation rules, TTA, models, baseline, task hooks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from skysift.core.task import get_task
from skysift.errors import ConfigError, DataError
from skysift.technosignatures import io
from skysift.technosignatures.augment import CadenceAugment, MixBatch, flip_frequency, mixed_targets, tta_views
from skysift.technosignatures.dedoppler import DedopplerBaseline
from skysift.technosignatures.models import MODELS, resolve_pretrained
from skysift.technosignatures.preprocess import area_matrix, check_params, resize, to_input
from skysift.technosignatures.simulate import SimulationConfig, simulate, simulate_snippet

TASK = get_task("technosignatures")


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("seti_sim"), n=40, seed=5)


def test_simulated_set_is_in_competition_layout(sim_dir):
    d = TASK.load(sim_dir)
    assert d.meta["layout"] == "competition-train"
    assert d.x.shape == (40, 6, 273, 256) and d.x.dtype == "float16"
    assert d.y.sum() == 4  # 10% positives
    for i in d.ids[:3]:
        assert (sim_dir / "train" / i[0] / f"{i}.npy").is_file()
    assert simulate(sim_dir.parent / "again", n=40, seed=5) and \
        (sim_dir.parent / "again" / "train_labels.csv").read_text() == (sim_dir / "train_labels.csv").read_text()


def test_needle_only_in_on_scans_and_continuous():
    cfg = SimulationConfig(rfi_lines_mean=0, broadband_prob=0, snr_range=(200, 200), path_probs=(1, 0, 0))
    rng = np.random.default_rng(2)
    x, truth = simulate_snippet(rng, True, cfg)
    z = x - np.median(x[list(io.OFF_SCANS)], axis=(0, 1))
    peak = z.max(axis=(1, 2))
    assert peak[list(io.ON_SCANS)].min() > 1.4 * peak[list(io.OFF_SCANS)].max()
    # a linear path: the brightest channel at the start of each ON scan moves by a constant step
    starts = [int(np.argmax(z[k, :5].mean(axis=0))) for k in io.ON_SCANS]
    assert abs((starts[2] - starts[1]) - (starts[1] - starts[0])) <= 3
    neg, t = simulate_snippet(rng, False, cfg)
    assert t["path"] == ""


def test_resize_is_an_area_average():
    a = area_matrix(6, 3)
    assert np.allclose(a.sum(axis=1), 1) and np.allclose(a[0], [0.5, 0.5, 0, 0, 0, 0])
    x = np.random.default_rng(0).normal(size=(6, 273, 256)).astype(np.float32)
    small = resize(x, [32, 64])
    assert small.shape == (6, 32, 64)
    assert np.isclose(small.mean(), x.mean(), atol=1e-4)
    assert torch.allclose(resize(torch.from_numpy(x), [32, 64]), torch.from_numpy(small), atol=1e-5)


@pytest.mark.parametrize("view,channels", [("all", 6), ("on", 3), ("diff", 3)])
def test_views(view, channels):
    x = np.random.default_rng(0).normal(size=(6, 273, 256)).astype(np.float32)
    t = to_input(x, {"view": view, "size": [32, 64]})
    assert t.shape == (channels, 32, 64) and t.dtype == torch.float32
    assert abs(float(t.std()) - (np.sqrt(2) if view == "diff" else 1.0)) < 0.15


def test_bad_preprocessing_params():
    with pytest.raises(ConfigError, match="view"):
        check_params({"view": "off"})
    with pytest.raises(ConfigError, match="size"):
        check_params({"size": [4]})
    with pytest.raises(ConfigError, match="flatten"):
        check_params({"flatten": "mean"})


def test_scan_swaps_keep_on_and_off_apart():
    x = np.stack([np.full((4, 8), k, np.float32) for k in range(6)])
    aug = CadenceAugment(flip_prob=0, swap_prob=1)
    seen = set()
    for seed in range(20):
        y = aug(x, np.random.default_rng(seed))
        scans = tuple(int(y[k, 0, 0]) for k in range(6))
        assert sorted(scans[0::2]) == [0, 2, 4] and sorted(scans[1::2]) == [1, 3, 5]
        seen.add(scans)
    assert len(seen) > 5
    flipped = CadenceAugment(flip_prob=1, swap_prob=0)(np.arange(6 * 2 * 3, dtype=np.float32).reshape(6, 2, 3),
                                                       np.random.default_rng(0))
    assert flipped[0, 0].tolist() == [2, 1, 0]


def test_mixup_label_rule():
    """A mixed sample is positive when either source is."""
    a = torch.tensor([0, 0, 1, 1])
    b = torch.tensor([0, 1, 0, 1])
    assert mixed_targets(a, b)[:, 1].tolist() == [0, 1, 1, 1]
    soft = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert mixed_targets(soft, torch.tensor([0, 0]))[:, 1].tolist() == [0, 1]
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(8, 6, 8, 16)
    target = torch.tensor([1, 0, 0, 0, 0, 0, 0, 0])
    for mix in (MixBatch(mixup_prob=1.0), MixBatch(cutmix_prob=1.0)):
        out, t = mix(inputs, target, g)
        assert out.shape == inputs.shape and t.shape == (8, 2)
        assert torch.allclose(t.sum(dim=1), torch.ones(8))
        assert t[0, 1] == 1  # the positive stays positive whatever it was mixed with
        assert int(t[:, 1].sum()) == 2  # and exactly one partner received it
    assert MixBatch()(inputs, target, g)[1] is target
    with pytest.raises(ConfigError):
        MixBatch(mixup_prob=0.8, cutmix_prob=0.5)


def test_tta_changes_nothing_for_flip_invariant_input():
    torch.manual_seed(0)
    net = MODELS.get("cadence-cnn").build(MODELS.get("cadence-cnn").defaults, {}, 2).eval()
    half = torch.randn(3, 6, 32, 32)
    sym = torch.cat([half, torch.flip(half, dims=[-1])], dim=-1)  # symmetric in frequency
    assert torch.equal(flip_frequency(sym), sym)
    with torch.no_grad():
        plain = torch.softmax(net(sym), 1)
        tta = (plain + sum(torch.softmax(net(v(sym)), 1) for v in tta_views())) / (1 + len(tta_views()))
    assert torch.allclose(plain, tta, atol=1e-6)
    assert TASK.tta_views({})[0] is flip_frequency


def test_models_and_pretrained_weights(tmp_path):
    spec = MODELS.get("cadence-cnn")
    for view, c in (("all", 6), ("on", 3)):
        net = spec.build({**spec.defaults, "view": view}, {}, 2)
        assert net(torch.randn(2, c, 32, 64)).shape == (2, 2)
    eff = MODELS.get("timm:efficientnet_b0")
    assert eff.build(eff.defaults, {}, 2)(torch.randn(2, 6, 32, 64)).shape == (2, 2)
    swin = MODELS.get("timm:swin_tiny_patch4_window7_224")
    assert swin.defaults["input_size"] == [224, 224]
    with pytest.raises(ConfigError, match="never downloads"):
        resolve_pretrained("efficientnet_b0", str(tmp_path / "missing.safetensors"))
    with pytest.raises(ConfigError, match="timm has no model"):
        MODELS.get("timm:not_a_model").build(MODELS.get("timm:not_a_model").defaults, {}, 2)
    # a local checkpoint is loaded (and adapted to 6 input channels) without any download
    import timm
    from safetensors.torch import save_file

    src = timm.create_model("resnet18", pretrained=False, num_classes=1000)
    save_file(src.state_dict(), str(tmp_path / "r18.safetensors"))
    spec18 = MODELS.get("timm:resnet18")
    net = spec18.build({**spec18.defaults, "pretrained": str(tmp_path / "r18.safetensors")}, {}, 2)
    assert torch.allclose(net.net.layer1[0].conv1.weight, src.layer1[0].conv1.weight)
    assert net.net.conv1.weight.shape[1] == 6


def test_pretrained_missing_fails_before_training(sim_dir):
    d = TASK.load(sim_dir)
    params = {**MODELS.get("timm:efficientnet_b0").defaults, "pretrained": "/nonexistent/weights.pth"}
    with pytest.raises(ConfigError, match="does not exist"):
        TASK.fit_preprocessing(d, params)


def test_dedoppler_baseline_ranks_needles_above_rfi():
    cfg_sig = SimulationConfig(rfi_lines_mean=0, broadband_prob=0, snr_range=(60, 60), path_probs=(1, 0, 0))
    cfg_rfi = SimulationConfig(rfi_lines_mean=3, broadband_prob=0, rfi_snr_range=(100, 100))
    rng = np.random.default_rng(4)
    base = DedopplerBaseline()
    needles = [base.score(simulate_snippet(rng, True, cfg_sig)[0]) for _ in range(3)]
    rfi = [base.score(simulate_snippet(rng, False, cfg_rfi)[0]) for _ in range(3)]
    assert min(needles) > max(rfi)


def test_task_hooks(sim_dir, tmp_path):
    d = TASK.load(sim_dir)
    ds = TASK.dataset(d, {}, MODELS.get("cadence-cnn").defaults, train=True)
    x, y = ds[0]
    assert x.shape == (6, 32, 64) and y.dtype == torch.long
    assert TASK.features(d.subset([0, 1]), {}, {}).shape == (2, 3 * 8 * 32)
    assert TASK.raw_matrix(d, max_n=5).shape == (5, 768)
    df = TASK.prediction_frame(d.ids[:3], np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]), d.class_names)
    assert list(df.columns) == ["id", "target"] and df["target"].tolist() == [0.1, 0.8, 0.5]
    proba = np.tile([0.3, 0.7], (3, 1))
    assert TASK.plot_gallery(d, [0, 1, 2], tmp_path / "g.png", proba=proba, title="t").is_file()
    assert TASK.plot_gallery(d, [], tmp_path / "none.png") is None


def test_parse_request():
    body = TASK.request_example()
    data = TASK.parse_request(body)
    assert data.x.shape == (1, 6, 273, 256) and data.ids.tolist() == ["cadence-1"]
    import base64
    import io as _io

    def enc(a):
        buf = _io.BytesIO()
        np.save(buf, a)
        return base64.b64encode(buf.getvalue()).decode()

    with pytest.raises(DataError, match="object 0: wrong shape"):
        TASK.parse_request({"npy": enc(np.zeros((5, 10, 10), np.float32))})
    bad = np.zeros((6, 10, 10), np.float32)
    bad[0, 0, 0] = np.nan
    with pytest.raises(DataError, match="object 1.*non-finite"):
        TASK.parse_request({"objects": [{"npy": enc(np.zeros((6, 10, 10), np.float32))}, {"npy": enc(bad)}]})
    with pytest.raises(DataError, match="wrong dtype"):
        TASK.parse_request({"npy": enc(np.zeros((6, 10, 10), np.int32))})
    with pytest.raises(DataError, match="not a base64"):
        TASK.parse_request({"npy": "!!!"})
    with pytest.raises(DataError, match="needs 'npy'"):
        TASK.parse_request({})


def test_train_through_core(sim_dir, tmp_path):
    import skysift

    model = skysift.train("technosignatures", sim_dir, tmp_path / "run", model="cadence-cnn", epochs=1,
                          batch_size=16, tta=True,
                          model_params={"mixup_prob": 0.3, "cutmix_prob": 0.3})
    proba = model.predict_proba(sim_dir)
    assert proba.shape == (40, 2) and np.allclose(proba.sum(axis=1), 1)
    df = model.predict(sim_dir)
    assert list(df.columns) == ["id", "target"] and len(df) == 40
