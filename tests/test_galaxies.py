"""Galaxies task: simulator, symmetry augmentation, rotated copies, TTA, soft labels, models, serving."""
from __future__ import annotations

import base64
import io as _io

import numpy as np
import pytest
import torch
from PIL import Image

import skysift
from skysift.core.inference import predict_logits
from skysift.core.losses import ClassificationLoss
from skysift.core.task import get_task
from skysift.errors import ConfigError, DataError
from skysift.galaxies.augment import (
    N_SYMMETRIES,
    SymmetryAugment,
    dihedral,
    dihedral_views,
    mirror_permutation,
    mirror_targets,
)
from skysift.galaxies.io import GZ1_LEAVES, load
from skysift.galaxies.networks import SeedKerasCNN, SeedOxfordCNN
from skysift.galaxies.preprocess import copy_numbers
from skysift.galaxies.simulate import CLASS_NAMES, simulate_images, write_npz

TASK = get_task("galaxies")


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """A small simulated set in the seed layout (every class present)."""
    path = TASK.simulate(tmp_path_factory.mktemp("sim"), n=48, seed=3)
    return path


@pytest.fixture(scope="module")
def trained(sim, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    return skysift.train("galaxies", sim, run, model="seed-keras-cnn", epochs=1, batch_size=16, progress=False)


# ---- simulator -----------------------------------------------------------------------------------
def test_simulator_layout_and_imbalance(sim):
    with np.load(sim) as f:
        assert f["images"].shape == (48, 64, 64, 3) and f["images"].dtype == np.uint8
        assert f["labels"].shape == (48, 4) and (f["labels"].sum(axis=1) == 1).all()
    d = load(sim, labelled=True)
    counts = d.class_counts()
    assert d.class_names == CLASS_NAMES
    assert counts["normal"] > counts["other"] > counts["ringed"] >= counts["merger"] > 0
    assert d.x.std() > 5  # not blank


def test_simulator_is_seeded():
    a, la = simulate_images(4, seed=11, size=32)
    b, lb = simulate_images(4, seed=11, size=32)
    c, _ = simulate_images(4, seed=12, size=32)
    assert (a == b).all() and (la == lb).all() and not (a == c).all()


# ---- symmetries, augmentation, rotated copies ----------------------------------------------------
def test_dihedral_group_has_eight_distinct_invertible_elements():
    x = torch.arange(16.0).view(1, 4, 4)
    views = [dihedral(x, k) for k in range(N_SYMMETRIES)]
    assert len({tuple(v.flatten().tolist()) for v in views}) == 8
    assert torch.equal(dihedral(x, 0), x)
    for k in range(N_SYMMETRIES):
        back = [j for j in range(N_SYMMETRIES) if torch.equal(dihedral(views[k], j), x)]
        assert len(back) == 1  # each symmetry has exactly one inverse in the group


def test_symmetry_augmentation_keeps_labels_and_shapes(sim):
    d = load(sim)
    params = TASK.models.get("galaxy-timm").defaults
    ds = TASK.dataset(d, TASK.fit_preprocessing(d, params), params, train=True)
    torch.manual_seed(0)
    x, y = next(iter(torch.utils.data.DataLoader(ds, batch_size=48)))
    assert x.shape == (48, 3, 64, 64) and x.dtype == torch.float32 and torch.isfinite(x).all()
    assert y.tolist() == d.y.tolist()
    augment = TASK.batch_augment(params)
    g = torch.Generator().manual_seed(0)
    xa, ya = augment(x, y, g)
    assert xa.shape == x.shape and torch.equal(ya, y) and not torch.allclose(xa, x)
    # augmentation moves pixels around but keeps the image content: total flux within ~20 %
    assert torch.allclose((xa * ds.std + ds.mean).sum(dim=(1, 2, 3)), (x * ds.std + ds.mean).sum(dim=(1, 2, 3)),
                          rtol=0.2)
    # with rotation and crop off, every output is exactly one of the eight symmetries of its input
    xs, _ = SymmetryAugment(0, 1)(x, y, g)
    for i in range(len(x)):
        assert any(torch.equal(xs[i], dihedral(x[i], k)) for k in range(N_SYMMETRIES))


def test_rotated_copies_for_repeated_ids(sim):
    d = load(sim)
    assert copy_numbers(np.array(["a", "b", "a", "a", "b"])).tolist() == [0, 0, 1, 2, 1]
    idx = np.array([5, 5, 5, 7])  # object 5 three times: identity, symmetry 1, symmetry 2
    sub = d.subset(idx)
    stats = TASK.fit_preprocessing(d, {})
    ds = TASK.dataset(sub, stats, {}, train=False)
    x0, y0 = ds[0]
    for c in (1, 2):
        xc, yc = ds[c]
        assert int(yc) == int(y0) and torch.allclose(xc, dihedral(x0, c))
        assert not torch.allclose(xc, x0)


def test_oversampling_with_rotated_copies_stays_inside_training(sim, tmp_path):
    import json

    m = skysift.train("galaxies", sim, tmp_path, model="seed-keras-cnn", epochs=1, batch_size=16,
                      resample="over", progress=False)
    split = json.loads((tmp_path / "split.json").read_text())
    assert not set(split["train"]) & set(split["val"])
    assert m.card["data"]["n_val"] == len(split["val"])


# ---- TTA -----------------------------------------------------------------------------------------
class _Orientation(torch.nn.Module):
    """Logits that depend on orientation: the mean of each image quadrant."""

    def forward(self, x):
        h = x.shape[-1] // 2
        q = [x[..., :h, :h], x[..., :h, h:], x[..., h:, :h], x[..., h:, h:]]
        return torch.stack([v.mean(dim=(1, 2, 3)) for v in q], dim=1) * 5


def test_tta_views_average_over_the_eight_symmetries():
    views = TASK.tta_views({})
    assert len(views) == 7
    x = torch.rand(5, 3, 8, 8)
    ds = torch.utils.data.TensorDataset(x, torch.zeros(5, dtype=torch.long))
    net = _Orientation()
    got = np.exp(predict_logits(net, ds, tta_views=views, device=torch.device("cpu")))
    want = torch.stack([torch.softmax(net(dihedral(x, k)), dim=1) for k in range(8)]).mean(dim=0)
    assert np.allclose(got, want.numpy(), atol=1e-5)
    # a model that sees only a symmetric summary is unchanged by TTA
    assert all(torch.allclose(v(x).mean(dim=(2, 3)), x.mean(dim=(2, 3))) for v in dihedral_views())


# ---- chirality: a mirror swaps clockwise and anticlockwise spirals --------------------------------
def test_mirror_permutation_swaps_only_the_senses_of_spirals():
    assert mirror_permutation(GZ1_LEAVES) == [0, 2, 1, 3, 4, 5]
    assert mirror_permutation(["elliptical", "spiral", "other"]) is None
    assert mirror_permutation(CLASS_NAMES) is None
    hard = torch.tensor([1, 2, 0, -1, 1])
    assert mirror_targets(hard, torch.tensor([1, 1, 1, 1, 0]).bool(), [0, 2, 1]).tolist() == [2, 1, 0, -1, 1]
    soft = torch.tensor([[0.2, 0.7, 0.1], [0.2, 0.7, 0.1]])
    got = mirror_targets(soft, torch.tensor([True, False]), [0, 2, 1])
    assert torch.equal(got, torch.tensor([[0.2, 0.1, 0.7], [0.2, 0.7, 0.1]]))


def test_mirrored_training_images_carry_the_swapped_sense():
    perm = mirror_permutation(GZ1_LEAVES)
    x = torch.rand(64, 3, 8, 8)  # random images: no symmetry of one equals another
    y = torch.tensor([1, 2] * 32)
    xs, ys = SymmetryAugment(0, 1, mirror_perm=perm)(x, y, torch.Generator().manual_seed(1))
    mirrored = 0
    for i in range(len(x)):
        (k,) = [k for k in range(N_SYMMETRIES) if torch.equal(xs[i], dihedral(x[i], k))]
        mirrored += k >= 4
        assert int(ys[i]) == (perm[int(y[i])] if k >= 4 else int(y[i]))
    assert 0 < mirrored < len(x)


def test_mirrored_copies_of_a_clockwise_spiral_are_anticlockwise(sim):
    from skysift.galaxies.preprocess import GalaxyDataset

    images = np.random.default_rng(0).integers(0, 255, (1, 8, 8, 3), dtype=np.uint8).repeat(8, axis=0)
    y = np.full(8, GZ1_LEAVES.index("clockwise_spiral"))
    ds = GalaxyDataset(images, y, [0.5] * 3, [0.25] * 3, copies=np.arange(8),
                       mirror_perm=mirror_permutation(GZ1_LEAVES))
    labels = [int(ds[c][1]) for c in range(8)]
    assert labels == [1, 1, 1, 1, 2, 2, 2, 2]


def test_tta_maps_the_classes_of_mirrored_views_back():
    perm = [1, 0, 2, 3]  # classes 0 and 1 are mirror twins
    views = dihedral_views(perm)
    assert [v.output_permutation is not None for v in views] == [False, False, False, True, True, True, True]
    x = torch.rand(5, 3, 8, 8)
    ds = torch.utils.data.TensorDataset(x, torch.zeros(5, dtype=torch.long))
    net = _Orientation()
    got = np.exp(predict_logits(net, ds, tta_views=views, device=torch.device("cpu")))
    want = torch.stack([torch.softmax(net(dihedral(x, k)), dim=1)[:, perm if k >= 4 else [0, 1, 2, 3]]
                        for k in range(8)]).mean(dim=0)
    assert np.allclose(got, want.numpy(), atol=1e-5)


def test_trained_model_predicts_with_tta(trained, sim):
    p = trained.predict_proba(sim, tta=True)
    p0 = trained.predict_proba(sim, tta=False)
    assert p.shape == p0.shape == (48, 4) and np.allclose(p.sum(axis=1), 1, atol=1e-5)
    assert not np.allclose(p, p0)


# ---- soft labels ---------------------------------------------------------------------------------
def test_soft_label_loss_on_a_hand_made_example():
    # softmax([0, ln 2, 0]) = [1/4, 1/2, 1/4]; votes [1/2, 1/2, 0]:
    # CE = -(1/2 ln 1/4 + 1/2 ln 1/2) = 1.5 ln 2
    logits = torch.tensor([[0.0, float(np.log(2)), 0.0]])
    votes = torch.tensor([[0.5, 0.5, 0.0]])
    assert float(ClassificationLoss("ce")(logits, votes)) == pytest.approx(1.5 * np.log(2), rel=1e-6)
    # one-hot votes give the ordinary cross-entropy of the hard label
    hard = ClassificationLoss("ce")(logits, torch.tensor([1]))
    assert float(ClassificationLoss("ce")(logits, torch.tensor([[0.0, 1.0, 0.0]]))) == pytest.approx(float(hard))


def test_soft_label_training_end_to_end(tmp_path):
    images, labels = simulate_images(40, seed=5, size=64)
    rng = np.random.default_rng(0)
    soft = np.eye(4)[labels] * 0.7 + rng.dirichlet(np.ones(4), size=40) * 0.3
    np.savez(tmp_path / "soft.npz", images=images, labels=soft, class_names=np.array(CLASS_NAMES))
    d = load(tmp_path / "soft.npz")
    assert d.y.dtype == np.float32 and d.y.shape == (40, 4)
    ds = TASK.dataset(d, TASK.fit_preprocessing(d, {}), {}, train=True)
    assert ds[0][1].shape == (4,) and ds[0][1].dtype == torch.float32
    m = skysift.train("galaxies", d, tmp_path / "run", model="seed-keras-cnn", epochs=1, batch_size=8,
                      progress=False)
    metrics = m.evaluate(d)
    assert 0 <= metrics["vote_rmse"] <= 1 and metrics["vote_cross_entropy"] > 0


# ---- models --------------------------------------------------------------------------------------
def test_seed_architectures_match_the_issue():
    keras = SeedKerasCNN(64, 4)
    convs = [m for m in keras.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(8, (3, 3), (2, 2))] * 2
    assert [m.out_features for m in keras.modules() if isinstance(m, torch.nn.Linear)] == [16, 4]
    ox = SeedOxfordCNN(64, 3)
    convs = [m for m in ox.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(6, (8, 8), (2, 2)), (16, (8, 8), (2, 2))]
    assert [m.out_features for m in ox.modules() if isinstance(m, torch.nn.Linear)] == [120, 60, 3]
    assert ox(torch.zeros(2, 3, 64, 64)).shape == (2, 3)
    with pytest.raises(ConfigError):
        SeedOxfordCNN(32, 3)


def test_timm_by_name_and_local_pretrained_weights(tmp_path):
    from safetensors.torch import save_file

    spec = TASK.models.get("timm:resnet10t")
    net = spec.build(spec.defaults, {"image_size": 32}, 3)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 3)
    dilated = spec.build({**spec.defaults, "output_stride": 16}, {}, 3)
    assert dilated.net.forward_features(torch.zeros(1, 3, 64, 64)).shape[-1] == 4  # 4x4 map, not 2x2
    with pytest.raises(ConfigError, match="unknown model"):
        TASK.models.get("resnet-without-prefix")
    with pytest.raises(ConfigError, match="timm has no model"):
        TASK.models.get("timm:not_a_model").build(spec.defaults, {}, 3)
    missing = {**spec.defaults, "pretrained_path": str(tmp_path / "absent.safetensors")}
    with pytest.raises(ConfigError, match="never downloads"):
        TASK.fit_preprocessing(load(_tiny_npz(tmp_path)), missing)
    # a local checkpoint of the same architecture (10 classes) loads; the 3-class head is new
    donor = TASK.models.get("timm:resnet10t").build(spec.defaults, {}, 10).net
    save_file({k: v.contiguous() for k, v in donor.state_dict().items()}, str(tmp_path / "w.safetensors"))
    got = spec.build({**spec.defaults, "pretrained_path": str(tmp_path / "w.safetensors")}, {}, 3).net
    assert torch.equal(got.conv1[0].weight, donor.conv1[0].weight)
    assert got.fc.out_features == 3


def _tiny_npz(tmp_path):
    images, labels = simulate_images(8, seed=1, size=64)
    return write_npz(tmp_path / "tiny.npz", images, labels, CLASS_NAMES)


def test_geometry_mismatch_is_matched_or_refused(trained, tmp_path):
    d = load(_tiny_npz(tmp_path), image_size=96)
    assert trained.predict_proba(d).shape == (8, 4)  # resized back to the model's 64 px
    narrow = load(tmp_path / "tiny.npz", crop=0.5)
    with pytest.raises(DataError, match="crop"):
        trained.predict_proba(narrow)


# ---- plots and serving ---------------------------------------------------------------------------
def test_gallery_and_saliency(trained, sim, tmp_path):
    from skysift.galaxies.plots import saliency_maps

    d = load(sim)
    proba = trained.predict_proba(d)
    out = TASK.plot_gallery(d, np.arange(8), tmp_path / "g.png", proba=proba[:8], title="t")
    assert out.exists() and out.stat().st_size > 5000
    made = TASK.plots(d, proba, tmp_path / "plots")
    assert any(p.name == "gallery.png" for p in made)
    s = saliency_maps(trained, d, [0, 1, 2], tmp_path / "sal.png")
    assert s.exists() and s.stat().st_size > 5000


def test_parse_request_round_trip_and_errors(trained):
    body = TASK.request_example()
    data = TASK.parse_request(body)
    assert data.x.shape == (1, 64, 64, 3) and data.ids.tolist() == ["galaxy-1"]
    assert trained.predict_proba(data).shape == (1, 4)
    buf = _io.BytesIO()
    Image.fromarray(np.zeros((30, 50), np.uint8)).save(buf, format="PNG")
    gray = base64.b64encode(buf.getvalue()).decode()
    assert TASK.parse_request({"image": gray}).x.shape == (1, 64, 64, 3)
    with pytest.raises(DataError, match="object 1.*base64"):
        TASK.parse_request({"objects": [body["objects"][0], {"image": "%%%"}]})
    with pytest.raises(DataError, match="object 0.*unreadable"):
        TASK.parse_request({"image": base64.b64encode(b"not an image").decode()})
    with pytest.raises(DataError, match="'image'"):
        TASK.parse_request({"flux": [1, 2]})
    with pytest.raises(DataError, match="duplicate"):
        TASK.parse_request({"objects": [body["objects"][0], body["objects"][0]]})


def test_features_and_raw_matrix(sim):
    d = load(sim)
    f = TASK.features(d, {}, {})
    assert f.shape == (48, 16 * 16 * 3) and 0 <= f.min() and f.max() <= 1
    assert TASK.raw_matrix(d, max_n=10).shape == (10, 768)
