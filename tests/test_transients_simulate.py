"""The PLAsTiCC-format simulator: layout, metadata rules, cadence, physics and reproducibility."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skysift.errors import ConfigError
from skysift.transients.data import (
    CLASSES,
    EXTRAGALACTIC_CLASSES,
    GALACTIC_CLASSES,
    PASSBAND_WAVELENGTH_NM,
    UNKNOWN_CLASS,
)
from skysift.transients.simulate import class_counts, distance_modulus, model_flux, simulate, simulate_objects

OBS_COLUMNS = ["object_id", "mjd", "passband", "flux", "flux_err", "detected"]
META_COLUMNS = ["object_id", "ra", "decl", "gal_l", "gal_b", "ddf", "hostgal_specz", "hostgal_photoz",
                "hostgal_photoz_err", "distmod", "mwebv", "target"]


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("sim") / "plasticc", n=300, seed=3)


@pytest.fixture(scope="module")
def train_frames(train_dir):
    return (pd.read_csv(train_dir / "training_set.csv"), pd.read_csv(train_dir / "training_set_metadata.csv"),
            pd.read_csv(train_dir / "truth.csv"))


def test_layout_is_kaggles(train_dir, train_frames):
    obs, meta, truth = train_frames
    assert sorted(p.name for p in train_dir.iterdir()) == ["training_set.csv", "training_set_metadata.csv",
                                                          "truth.csv"]
    assert list(obs.columns) == OBS_COLUMNS
    assert list(meta.columns) == META_COLUMNS
    assert len(meta) == 300 and meta.object_id.is_unique
    assert set(obs.object_id) == set(meta.object_id)
    # observations grouped by object and time-ordered within each object
    assert (obs.groupby("object_id").mjd.diff().dropna() > 0).all()
    assert set(obs.passband.unique()) == set(range(6))
    assert set(obs.detected.unique()) == {0, 1}
    assert obs[["mjd", "flux", "flux_err"]].notna().all().all() and (obs.flux_err > 0).all()
    # difference imaging: negative fluxes occur; every object passed the >= 2 detections cut
    assert (obs.flux < 0).mean() > 0.2
    assert obs.groupby("object_id").detected.sum().min() >= 2
    assert (truth.object_id.to_numpy() == meta.object_id.to_numpy()).all()
    assert (truth.target.to_numpy() == meta.target.to_numpy()).all()


def test_every_class_present_with_plasticc_imbalance(train_frames):
    _, meta, _ = train_frames
    counts = meta.target.value_counts()
    assert set(counts.index) == set(CLASSES)
    assert counts.min() >= 3
    assert counts.idxmax() == 90 and counts[90] > 5 * counts[64]
    assert sum(class_counts(40).values()) == 40


def test_galactic_and_extragalactic_metadata_rules(train_frames):
    _, meta, truth = train_frames
    gal = meta[meta.target.isin(GALACTIC_CLASSES)]
    ext = meta[meta.target.isin(EXTRAGALACTIC_CLASSES)]
    assert (gal[["hostgal_specz", "hostgal_photoz", "hostgal_photoz_err"]] == 0).all().all()
    assert gal.distmod.isna().all()
    assert (ext.hostgal_specz > 0).all() and (ext.hostgal_photoz > 0).all()
    assert (ext.hostgal_photoz_err > 0).all() and ext.distmod.notna().all()
    # Kaggle's distmod is computed from the photo-z
    np.testing.assert_allclose(ext.distmod, distance_modulus(ext.hostgal_photoz), atol=2e-3)
    assert (meta.mwebv > 0).all()
    # class redshift scales: kilonovae nearby, superluminous SNe far
    z = truth.set_index("target").true_z
    assert z[64].max() < 0.3 < z[95].median()


def test_ddf_denser_and_deeper(train_frames):
    obs, meta, _ = train_frames
    both = obs.merge(meta[["object_id", "ddf"]], on="object_id")
    n_obs = both.groupby("object_id").size().groupby(meta.set_index("object_id").ddf).median()
    assert n_obs[1] > 2 * n_obs[0]
    err = both.groupby(["ddf", "passband"]).flux_err.median().unstack()
    assert (err.loc[1] < err.loc[0]).all()
    # u and y are the noisiest wide-survey bands
    assert err.loc[0, [0, 5]].min() > err.loc[0, [1, 2, 3]].max()


def test_reproducible_with_seed():
    a = simulate_objects(60, seed=5)
    b = simulate_objects(60, seed=5)
    c = simulate_objects(60, seed=6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1].flux, b[1].flux)
    np.testing.assert_array_equal(a[2], b[2])
    pd.testing.assert_frame_equal(a[3], b[3])
    assert len(a[1].flux) != len(c[1].flux) or not np.array_equal(a[1].flux, c[1].flux)


def test_truth_reproduces_noiseless_flux():
    ids, lc, target, truth = simulate_objects(30, seed=2, classes=[90, 88, 92, 65])
    for i in range(len(ids)):
        o = lc.object(i)
        f = model_flux(truth.iloc[i], o["mjd"], o["passband"])
        # observed = model + noise: residuals are noise-sized
        pull = (o["flux"] - f) / o["flux_err"]
        assert abs(np.mean(pull)) < 1.0 and 0.5 < np.std(pull) < 1.5, (target[i], pull.std())


def test_redshift_dims_and_dilates_the_same_explosion():
    _, _, _, truth = simulate_objects(3, seed=0, classes=[90])
    row = truth.iloc[0].copy()
    row["mwebv"] = 0.0  # compare two bands without Milky Way dust
    z1, z2 = 0.1, None
    lam = np.asarray(PASSBAND_WAVELENGTH_NM)
    # g at z1 and i at z2 sample the same rest-frame wavelength
    z2 = (1 + z1) * lam[3] / lam[1] - 1
    tau = np.linspace(-20, 60, 81)  # rest-frame days from peak
    f1 = model_flux(row, row["t0"] + (1 + z1) * tau, 1, z=z1)
    f2 = model_flux(row, row["t0"] + (1 + z2) * tau, 3, z=z2)
    expected = 10 ** (-0.4 * (distance_modulus(z2) - distance_modulus(z1))) * (1 + z2) / (1 + z1)
    np.testing.assert_allclose(f2 / f1, expected, rtol=1e-6)
    # the same rest-frame light curve, stretched by (1+z2)/(1+z1) in observed days: its half-maximum
    # width in observed days grows by that factor
    t1 = row["t0"] + np.linspace(-60, 150, 4201)
    t2 = row["t0"] + (t1 - row["t0"]) * (1 + z2) / (1 + z1)
    g, i = model_flux(row, t1, 1, z=z1), model_flux(row, t2, 3, z=z2)
    width = lambda t, f: np.ptp(t[f > 0.5 * f.max()])  # noqa: E731
    assert width(t2, i) == pytest.approx(width(t1, g) * (1 + z2) / (1 + z1), rel=1e-3)
    # in one band: farther is much fainter
    t = row["t0"] + np.linspace(-80, 250, 3301)
    assert model_flux(row, t, 2, z=0.5).max() < 0.2 * model_flux(row, t, 2, z=0.1).max()


def test_unlabelled_writes_no_target(tmp_path):
    out = simulate(tmp_path / "test", n=40, seed=1, labelled=False)
    assert sorted(p.name for p in out.iterdir()) == ["test_set.csv", "test_set_metadata.csv", "truth.csv"]
    meta = pd.read_csv(out / "test_set_metadata.csv")
    assert list(meta.columns) == META_COLUMNS[:-1]
    assert "target" in pd.read_csv(out / "truth.csv").columns


def test_unknown_class_is_off_by_default_and_optional():
    _, _, target, _ = simulate_objects(50, seed=4)
    assert UNKNOWN_CLASS not in target
    _, _, target, truth = simulate_objects(100, seed=4, unknown_fraction=0.2)
    assert (target == UNKNOWN_CLASS).sum() == 20
    assert truth.loc[truth.target == UNKNOWN_CLASS, "true_z"].gt(0).all()


def test_class_selection_and_fractions():
    _, _, target, _ = simulate_objects(20, seed=0, classes=[90, 42], class_fractions={90: 3, 42: 1})
    assert (target == 90).sum() == 15 and (target == 42).sum() == 5


@pytest.mark.parametrize("kwargs", [dict(n=0), dict(n=10, classes=[7]), dict(n=10, unknown_fraction=1.5),
                                    dict(n=10, classes=[90, 42], class_fractions=[1.0]),
                                    dict(n=10, classes=[90], class_fractions={42: 1.0})])
def test_bad_parameters_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        simulate_objects(**kwargs)


def test_loader_reads_the_output(train_dir):
    io = pytest.importorskip("skysift.transients.io")
    # the folder also holds truth.csv, so the light-curve file is named (its metadata is found beside it)
    data = io.load(train_dir / "training_set.csv")
    assert len(data.ids) == 300
    assert sorted(int(c) for c in data.class_names) == sorted(CLASSES)
    assert data.x.n_observations == len(pd.read_csv(train_dir / "training_set.csv"))
