"""Transients: augmentation invariants, the sequence dataset/collate, the networks, open-set scorers."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from skysift.core.data import TaskData
from skysift.transients import augment as A
from skysift.transients.data import CLASSES
from skysift.transients.sequence import MODEL_SPECS, SequenceDataset, collate, encode_object, fit_sequence_stats

SPECS = {s.name: s for s in MODEL_SPECS}


def _params(spec) -> dict:
    """Model and data parameters in one dict, as the dataset helpers and ``build`` both accept."""
    return {**spec.defaults, **spec.data_defaults}


def _object(rng, n=60, *, z=0.3, peak=500.0, width=20.0, galactic=False):
    """A supernova-like bump in six bands over ~150 days, with realistic-looking errors."""
    mjd = np.sort(rng.uniform(60000, 60150, n))
    band = rng.integers(0, 6, n).astype(np.int8)
    t0 = 60060.0
    true = peak * np.exp(-0.5 * ((mjd - t0) / width) ** 2) * (1 + 0.1 * band)
    err = rng.uniform(5, 15, n)
    flux = true + rng.normal(0, 1, n) * err
    meta = dict(ddf=0.0, hostgal_specz=np.nan if galactic else z, hostgal_photoz=0.0 if galactic else z,
                hostgal_photoz_err=0.0 if galactic else 0.05, distmod=np.nan if galactic else float(A.distmod(z)),
                mwebv=0.02)
    return dict(mjd=mjd, passband=band, flux=flux.astype(np.float32), flux_err=err.astype(np.float32),
                detected=np.abs(flux) / err > 5, **meta)


def _lightcurves(n_obj=24, seed=0):
    rng = np.random.default_rng(seed)
    objs = [_object(rng, n=int(rng.integers(20, 90)), z=float(rng.uniform(0.1, 0.6)), galactic=i % 3 == 0,
                    peak=float(rng.uniform(100, 3000))) for i in range(n_obj)]
    return A.objects_to_lightcurves(objs)


def _data(n_obj=24, seed=0):
    lc = _lightcurves(n_obj, seed)
    y = np.arange(n_obj) % 4
    return TaskData(np.arange(n_obj), lc, y, [str(c) for c in CLASSES[:4]])


def _frozen(obj):
    return {k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v) for k, v in obj.items()}


def _same(a, b):
    for k in a:
        if isinstance(a[k], np.ndarray):
            np.testing.assert_array_equal(a[k], b[k])
        else:
            assert (a[k] == b[k]) or (np.isnan(a[k]) and np.isnan(b[k])), k


# ---- augmentation ------------------------------------------------------------------------------
def test_redshift_makes_objects_fainter_and_longer_without_mutating():
    rng = np.random.default_rng(1)
    obj = _object(rng, n=400, z=0.2, peak=3000.0, width=10.0)
    before = _frozen(obj)
    out = A.redshift(obj, np.random.default_rng(2), z_new=0.35)
    _same(obj, before)  # input untouched
    s = 1.35 / 1.2
    assert out["hostgal_photoz"] == pytest.approx(1.2 * s - 1)
    assert out["distmod"] > obj["distmod"] and out["distmod"] == pytest.approx(float(A.distmod(out["hostgal_photoz"])))
    # fainter: the peak flux drops by about the distance-modulus difference (times 1+z ratio)
    dim = s * 10 ** (-0.4 * (A.distmod(0.35) - A.distmod(0.2)))
    assert np.max(out["flux"]) < 0.8 * np.max(obj["flux"])
    assert np.max(out["flux"]) == pytest.approx(dim * np.max(obj["flux"]), rel=0.25)
    # longer: the flux-weighted width in time grows by ~ (1+z')/(1+z)
    def width(o):
        w = np.clip(o["flux"], 0, None)
        m = np.sum(w * o["mjd"]) / w.sum()
        return np.sqrt(np.sum(w * (o["mjd"] - m) ** 2) / w.sum())
    assert width(out) == pytest.approx(width(obj) * s, rel=0.15)
    # same survey cadence; errors are the epochs' own, so S/N fell and so did detections
    np.testing.assert_array_equal(out["mjd"], obj["mjd"])
    np.testing.assert_array_equal(out["flux_err"], obj["flux_err"])
    assert out["detected"].sum() < obj["detected"].sum()


def test_redshift_keeps_galactic_objects_and_draws_higher_z():
    rng = np.random.default_rng(3)
    gal = _object(rng, galactic=True)
    out = A.redshift(gal, rng)
    _same(out, gal)
    assert out["flux"] is not gal["flux"]
    eg = _object(rng, n=200, z=0.3, peak=5000.0)
    zs = [A.redshift(eg, np.random.default_rng(i))["hostgal_photoz"] for i in range(20)]
    assert min(zs) >= 0.3 and max(zs) > 0.35 and max(zs) <= 1.3 * 1.5 - 1 + 1e-9


def test_redshift_rejects_undetectable_copies():
    rng = np.random.default_rng(4)
    faint = _object(rng, n=80, z=0.5, peak=60.0)  # barely detected at z=0.5
    out = A.redshift(faint, rng, max_stretch=3.0, min_detections=50)
    _same(out, faint)  # no z' keeps 50 detections: the unchanged copy comes back


def test_drop_time_scale_and_noise():
    rng = np.random.default_rng(5)
    obj = _object(rng, n=100)
    before = _frozen(obj)
    for _ in range(20):
        d = A.drop_observations(obj, rng, max_frac=0.99, min_keep=12)
        assert 12 <= len(d["mjd"]) <= 100 and np.all(np.diff(d["mjd"]) >= 0)
    assert len(A.drop_observations(_object(rng, n=5), rng, min_keep=8)["mjd"]) == 5
    sh = A.time_shift(obj, rng, max_shift=10)
    delta = sh["mjd"] - obj["mjd"]
    assert np.ptp(delta) < 1e-6 and abs(delta[0]) <= 10
    sc = A.scale_flux(obj, rng)
    np.testing.assert_allclose(sc["flux"] / sc["flux_err"], obj["flux"] / obj["flux_err"], rtol=1e-5)
    # noise redraw: the added noise has std = scale * flux_err, and the errors widen to match
    big = _object(rng, n=20000)
    nz = A.redraw_noise(big, rng, scale=0.5)
    resid = (nz["flux"] - big["flux"]) / big["flux_err"]
    assert np.std(resid) == pytest.approx(0.5, rel=0.05)
    np.testing.assert_allclose(nz["flux_err"], big["flux_err"] * np.sqrt(1.25), rtol=1e-5)
    _same(obj, before)


def test_augment_lightcurves_batch():
    lc = _lightcurves(10)
    off = lc.offsets.copy()
    flux = lc.flux.copy()
    out, src = A.augment_lightcurves(lc, np.random.default_rng(0), n_copies=3)
    assert len(out) == 30 and np.array_equal(src, np.tile(np.arange(10), 3))
    np.testing.assert_array_equal(lc.offsets, off)
    np.testing.assert_array_equal(lc.flux, flux)
    gal = ~(lc.meta["hostgal_photoz"] > 0)
    np.testing.assert_array_equal(out.meta["hostgal_photoz"][np.tile(gal, 3)], 0.0)
    eg = np.tile(~gal, 3)
    assert np.all(out.meta["hostgal_photoz"][eg] >= np.tile(lc.meta["hostgal_photoz"], 3)[eg] - 1e-12)


# ---- dataset / collate ---------------------------------------------------------------------------
def test_stats_are_json_and_dataset_shapes():
    data = _data()
    params = _params(SPECS["transformer"])
    stats = fit_sequence_stats(data.x, params)
    assert json.loads(json.dumps(stats)) == stats
    ds = SequenceDataset(data, stats, params, train=False)
    x, y = ds[0]
    n0 = data.x.lengths[0]
    assert x["time"].shape == (n0,) and x["band"].dtype == torch.int64 and y.dtype == torch.int64
    assert x["meta"].shape == (7,) and torch.isfinite(x["meta"]).all()
    assert float(x["flux"].abs().max()) == pytest.approx(1.0)
    assert float(x["time"][int(torch.argmax(x["flux"] * x["detected"]))]) == 0.0
    batch, targets = collate([ds[i] for i in range(5)])
    lengths = data.x.lengths[:5]
    assert batch["time"].shape == (5, lengths.max()) and batch["mask"].dtype == torch.bool
    assert batch["mask"].sum(1).tolist() == lengths.tolist() == batch["length"].tolist()
    assert targets.tolist() == data.y[:5].tolist()
    # unlabelled data yields -1
    unl = SequenceDataset(TaskData(data.ids, data.x, None, data.class_names), stats, params, train=False)
    assert int(unl[0][1]) == -1


def test_length_cap_keeps_detections():
    rng = np.random.default_rng(6)
    obj = _object(rng, n=400, peak=2000.0)
    stats = fit_sequence_stats(A.objects_to_lightcurves([obj]), {"max_len": 64})
    enc = encode_object(obj, stats)
    assert len(enc["time"]) == 64 and torch.all(enc["time"][1:] >= enc["time"][:-1])
    assert int(enc["detected"].sum()) == min(64, int(obj["detected"].sum()))


def test_training_dataset_augments_and_eval_does_not():
    data = _data()
    params = _params(SPECS["transformer"])
    stats = fit_sequence_stats(data.x, params)
    ev = SequenceDataset(data, stats, params, train=False)
    assert torch.equal(ev[1][0]["flux"], ev[1][0]["flux"])
    tr = SequenceDataset(data, stats, {**params, "augment": {"p_noise": 1.0}}, train=True)
    torch.manual_seed(0)
    a = tr[1][0]["flux"]
    b = tr[1][0]["flux"]
    assert not torch.equal(a, b)


# ---- networks ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["seed-lstm", "transformer", "gru"])
def test_models_forward_backward(name):
    torch.manual_seed(0)
    data = _data()
    spec = SPECS[name]
    params = {**_params(spec), **({"hidden": 16, "mlp": [32, 16]} if name == "seed-lstm" else {})}
    stats = fit_sequence_stats(data.x, params)
    ds = SequenceDataset(data, stats, params, train=True)
    x, y = collate([ds[i] for i in range(8)])
    net = spec.build(params, stats, 4)
    logits = net(x)
    assert logits.shape == (8, 4) and torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, y).backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
    assert net.embed(x).shape[0] == 8


def _with_extra_padding(x: dict, extra: int) -> dict:
    out = dict(x)
    for k in ("time", "dt", "band", "flux", "flux_err", "snr", "detected"):
        pad = torch.full((x[k].shape[0], extra), 7, dtype=x[k].dtype) if k != "band" else \
            torch.full((x[k].shape[0], extra), 3, dtype=x[k].dtype)
        out[k] = torch.cat([x[k], pad], dim=1)  # garbage, not zeros: it must be ignored anyway
    out["mask"] = torch.cat([x["mask"], torch.zeros(x["mask"].shape[0], extra, dtype=torch.bool)], dim=1)
    return out


@pytest.mark.parametrize("name", ["seed-lstm", "transformer", "gru"])
def test_padding_is_ignored(name):
    torch.manual_seed(0)
    data = _data()
    spec = SPECS[name]
    params = _params(spec)
    stats = fit_sequence_stats(data.x, params)
    ds = SequenceDataset(data, stats, params, train=False)
    x, _ = collate([ds[i] for i in range(6)])
    net = spec.build(params, stats, 4).eval()
    with torch.no_grad():
        a = net(x)
        b = net(_with_extra_padding(x, 17))
        single = net(collate([ds[2]])[0])
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(a[2:3], single, atol=1e-5, rtol=1e-4)


# ---- open-set scorers ----------------------------------------------------------------------------
def _validation_logits(n=300, k=5, seed=0):
    """Confident, well-separated logits of known objects, and matching 8-d embeddings."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 0.5, (n, k))
    logits[np.arange(n), y] += 6.0
    centres = rng.normal(0, 5, (k, 8))
    emb = centres[y] + rng.normal(0, 1, (n, 8))
    return logits, y, emb, centres


def _scorers():
    from skysift.transients.openset import (
        CombinedScorer,
        EnergyScorer,
        MahalanobisScorer,
        ProductMahalanobisScorer,
        ProductScorer,
    )

    return [ProductScorer(), EnergyScorer(), MahalanobisScorer(), CombinedScorer(),
            ProductMahalanobisScorer(transform="robust")]


@pytest.mark.parametrize("i", range(5))
def test_openset_scorer_flags_out_of_distribution(i):
    from skysift.transients.openset import softmax, with_unknown

    scorer = _scorers()[i]
    logits, y, emb, centres = _validation_logits()
    scorer.fit(logits, y, emb)
    known_logits = np.array([[8.0, 0, 0, 0, 0]])
    ood_logits = np.array([[0.3, 0.2, 0.25, 0.1, 0.2]])  # no class claims it
    known_emb = centres[[0]]
    far_emb = centres[[0]] + 40.0  # far from every class
    p_known = scorer.p_unknown(known_logits, known_emb)
    p_ood = scorer.p_unknown(ood_logits if scorer.kind != "mahalanobis" else known_logits,
                             far_emb if scorer.kind != "product" else known_emb)
    assert p_ood[0] > p_known[0] + 0.1
    assert 0 <= p_known[0] < 0.5 and 0 < p_ood[0] <= 1
    proba = softmax(np.vstack([logits[:10], ood_logits]))
    p99 = scorer.p_unknown(np.vstack([logits[:10], ood_logits]), np.vstack([emb[:10], far_emb]))
    full = with_unknown(proba, p99)
    assert full.shape == (11, 6)
    np.testing.assert_allclose(full.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(full[:, -1], p99)


@pytest.mark.parametrize("i", range(5))
def test_openset_state_round_trip(i, tmp_path):
    from skysift.core.io import write_json
    from skysift.transients.openset import scorer_from_state

    scorer = _scorers()[i]
    logits, y, emb, _ = _validation_logits(seed=1)
    scorer.fit(logits, y, emb)
    test_logits, _, test_emb, _ = _validation_logits(n=50, seed=2)
    expected = scorer.p_unknown(test_logits, test_emb)
    meta, arrays = scorer.state()
    write_json(tmp_path / "s.json", meta)
    again = scorer_from_state(json.loads((tmp_path / "s.json").read_text()), arrays)
    np.testing.assert_allclose(again.p_unknown(test_logits, test_emb), expected, rtol=1e-12)
    via_json = scorer_from_state(json.loads(json.dumps(scorer.to_json())))
    np.testing.assert_allclose(via_json.p_unknown(test_logits, test_emb), expected, rtol=1e-12)


def test_openset_mapping_and_errors():
    from skysift.errors import ConfigError
    from skysift.transients.openset import (
        UNKNOWN_PRIOR,
        EnergyScorer,
        MahalanobisScorer,
        gaussian_quantile_posterior,
        make_scorer,
        scorer_from_state,
        with_unknown,
    )

    assert UNKNOWN_PRIOR == pytest.approx(2 / 18)
    # at z = μ/2 the Gaussian likelihoods are equal: the posterior is the prior
    assert gaussian_quantile_posterior(np.array([0.75]), 1.5, 0.1)[0] == pytest.approx(0.1)
    logits, y, emb, _ = _validation_logits()
    e = EnergyScorer().fit(logits, y)
    z = e.z(logits)
    assert abs(np.mean(z)) < 0.05 and np.std(z) == pytest.approx(1.0, abs=0.1)  # N(0,1) on known objects
    # mean p99 of known objects sits below the prior (they are the in-distribution side)
    assert np.mean(e.p_unknown(logits)) < UNKNOWN_PRIOR
    with pytest.raises(ConfigError):
        MahalanobisScorer().fit(logits, y, None)
    with pytest.raises(ConfigError):
        make_scorer("nope")
    with pytest.raises(ConfigError):
        scorer_from_state({"kind": "nope"})
    with pytest.raises(ConfigError):
        with_unknown(np.ones((3, 2)) / 2, np.zeros(4))
    with pytest.raises(ConfigError):
        e.p_unknown(np.full((2, 5), np.nan))
    m = MahalanobisScorer().fit(logits, y, np.where(np.arange(8) == 3, np.nan, emb))  # NaN columns imputed
    assert np.isfinite(m.p_unknown(logits[:5], emb[:5])).all()


@pytest.mark.realdata
def test_real_kaggle_sample_through_dataset_and_networks(shared_data):
    """The 10 real Kaggle-layout objects: redshift augmentation, encoding and a forward pass."""
    from skysift.transients import io

    folder = shared_data / "plasticc" / "kaggle_sample"
    data = io.load(folder / "training_set.csv", labelled=True, metadata=folder / "training_set_metadata.csv")
    lc = data.x
    rng = np.random.default_rng(0)
    for i in range(len(lc)):
        obj = lc.object(i)
        out = A.redshift(obj, rng, max_stretch=1.3)
        if A.is_extragalactic(obj) and out["hostgal_photoz"] > obj["hostgal_photoz"]:
            assert out["distmod"] > obj["distmod"] and np.sum(out["detected"]) >= 2
        else:
            np.testing.assert_array_equal(out["flux"], obj["flux"])
    for name in ("seed-lstm", "transformer"):
        params = _params(SPECS[name])
        stats = fit_sequence_stats(lc, params)
        ds = SequenceDataset(data, stats, params, train=True)
        x, y = collate([ds[i] for i in range(len(ds))])
        assert x["time"].shape[1] <= params["max_len"]
        logits = SPECS[name].build(params, stats, data.n_classes)(x)
        assert logits.shape == (len(data), data.n_classes) and torch.isfinite(logits).all()


def test_product_mahalanobis_reduces_to_product_and_moves_far_objects_up():
    from skysift.transients.openset import ProductMahalanobisScorer, ProductScorer

    logits, y, emb, centres = _validation_logits(seed=3)
    base = ProductScorer().fit(logits)
    plain = ProductMahalanobisScorer(separation=0.0).fit(logits, y, emb)
    np.testing.assert_allclose(plain.p_unknown(logits[:20], emb[:20]), base.p_unknown(logits[:20]), rtol=1e-12)
    both = ProductMahalanobisScorer(separation=1.0).fit(logits, y, emb)
    same_logits = np.repeat(logits[:1], 2, axis=0)
    p = both.p_unknown(same_logits, np.vstack([centres[y[:1]], centres[y[:1]] + 40.0]))
    assert p[1] > p[0]  # same classifier output, far from every class: more likely unknown
