"""The transits task: loaders and their errors, simulator, training, bundle round trip, resume, CLI."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import skysift
from skysift.cli import main
from skysift.errors import DataError
from skysift.transits import io
from skysift.transits.simulate import simulate_light_curves, write_kaggle_csv

L = 3197


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tr")
    flux, labels, _ = simulate_light_curves(160, seed=5, positive_fraction=0.1)
    return write_kaggle_csv(d / "exoTrain.csv", flux, labels)


def _write(tmp_path, text, name="f.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _header(n=L, label=True):
    cols = ([ "LABEL"] if label else []) + [f"FLUX.{i}" for i in range(1, n + 1)]
    return ",".join(cols)


def _row(label, values):
    return ",".join([str(label)] + [str(v) for v in values])


def test_simulator_matches_kaggle_layout(small_csv):
    header = small_csv.read_text().splitlines()[0].split(",")
    assert header[0] == "LABEL" and header[1] == "FLUX.1" and header[-1] == f"FLUX.{L}"
    d = io.load(small_csv, labelled=True)
    assert d.x.shape == (160, L) and set(np.unique(d.y)) == {0, 1}
    assert d.class_names == ["no_planet", "planet"]


def test_simulator_has_planets_and_eclipsing_binaries():
    _, labels, info = simulate_light_curves(1000, seed=2)
    kinds = [i["kind"] for i in info]
    assert 0.005 <= labels.mean() <= 0.03
    assert kinds.count("eclipsing_binary") > 5 and all(k == "planet" for k, y in zip(kinds, labels) if y)


def test_test_file_without_label_loads_unlabelled(tmp_path):
    p = _write(tmp_path, _header(200, label=False) + "\n" + ",".join(["1.0"] * 200) + "\n")
    d = io.load(p)
    assert d.y is None and d.x.shape == (1, 200)
    with pytest.raises(DataError, match="no LABEL column"):
        io.load(p, labelled=True)


@pytest.mark.parametrize("body, message, where", [
    (_row(2, [1.0] * 199), "ragged row", "row 1"),
    (_row(1, [1.0] * 200) + "\n" + _row(2, [1.0] * 150 + ["abc"] + [1.0] * 49),
     "non-numeric value 'abc' in column FLUX.151", "row 2"),
    (_row(1, [""] * 200), "every flux value is missing", "row 1"),
    (_row(3, [1.0] * 200), "unknown LABEL 3", "row 1"),
    (_row(1, [1.0] * 199 + ["inf"]), "infinite", "row 1"),
])
def test_kaggle_csv_errors_name_file_row_and_problem(tmp_path, body, message, where):
    p = _write(tmp_path, _header(200) + "\n" + body + "\n")
    with pytest.raises(DataError) as e:
        io.load(p, labelled=True)
    msg = str(e.value)
    assert str(p) in msg and message in msg and where in msg


def test_duplicate_ids_and_bad_headers(tmp_path):
    p = _write(tmp_path, "kepid,LABEL," + ",".join(f"FLUX.{i}" for i in range(1, 201)) + "\n"
               + "7,1," + ",".join(["1"] * 200) + "\n" + "7,2," + ",".join(["1"] * 200) + "\n")
    with pytest.raises(DataError, match="duplicate id '7'.*|row 2"):
        io.load(p)
    p2 = _write(tmp_path, "LABEL,FLUX.1,FLUX.3\n1,2,3\n", "gap.csv")
    with pytest.raises(DataError, match="missing FLUX.2"):
        io.load(p2)
    p3 = _write(tmp_path, "a,b\n1,2\n", "other.csv")
    with pytest.raises(DataError, match="no FLUX.1..FLUX.N"):
        io.load(p3)
    with pytest.raises(DataError, match="no such file"):
        io.load(tmp_path / "absent.csv")


def test_fits_loader_errors(tmp_path):
    from astropy.io import fits

    (tmp_path / "broken.fits").write_bytes(b"SIMPLE  = T" + b" " * 100)
    with pytest.raises(DataError, match="broken.fits"):
        io.load(tmp_path / "broken.fits")
    cols = fits.ColDefs([fits.Column(name="TIME", format="D", array=np.arange(5.0))])
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(tmp_path / "noflux.fits")
    with pytest.raises(DataError, match="no PDCSAP_FLUX or SAP_FLUX"):
        io.load(tmp_path / "noflux.fits")


@pytest.mark.realdata
def test_real_kepler90_fits_load(shared_data, tmp_path):
    folder = shared_data / "kepler" / "kepler90"
    d = io.load(folder)
    assert len(d) == 3 and d.x.shape[1] == L
    assert set(d.groups) == {"11442793"}  # three quarters of one star: one group for the splitter
    assert np.isfinite(d.x).mean() > 0.5
    # with a labels CSV the same folder becomes training data
    link = tmp_path / "k90"
    link.mkdir()
    for f in folder.glob("*.fits"):
        (link / f.name).symlink_to(f)
    (link / "labels.csv").write_text("kepid,label\n11442793,1\n")
    assert list(io.load(link, labelled=True).y) == [1, 1, 1]


def test_train_bundle_round_trip_and_predict(small_csv, tmp_path):
    run = tmp_path / "run"
    model = skysift.train("transits", small_csv, run, epochs=3, patience=1, batch_size=32, progress=False,
                          model_params={"width": 8})
    assert (run / "model.safetensors").exists() and (run / "model.json").exists()
    card = json.loads((run / "model.json").read_text())
    # the default keeps the final weights: every epoch runs, whatever the patience
    assert card["train_config"]["checkpoint"] == "last" and len(card["history"]) == 3
    assert card["task"] == "transits" and card["model"]["name"] == "views-net"
    assert card["calibration"]["temperature"] > 0 and "ece_uncalibrated" in card["validation_metrics"]
    for png in ("roc_pr.png", "confusion.png", "reliability.png", "training_curves.png"):
        assert (run / "plots" / png).stat().st_size > 1000
    loaded = skysift.load(run)
    p1 = model.predict_proba(small_csv)
    p2 = loaded.predict_proba(small_csv)
    np.testing.assert_allclose(p1, p2, atol=1e-6)
    assert p1.shape == (160, 2) and np.allclose(p1.sum(axis=1), 1)
    df = loaded.predict(small_csv)
    assert list(df.columns) == ["id", "p_no_planet", "p_planet"] and len(df) == 160
    m = loaded.evaluate(small_csv)
    assert {"roc_auc", "pr_auc", "f1", "accuracy", "ece", "n"} <= set(m) and m["n"] == 160


def test_seed_cnn_trains_and_split_has_no_leak(small_csv, tmp_path):
    run = tmp_path / "seed"
    skysift.train("transits", small_csv, run, model="seed-cnn", epochs=1, resample="over", progress=False)
    split = json.loads((run / "split.json").read_text())
    assert not set(split["train"]) & set(split["val"])
    assert json.loads((run / "model.json").read_text())["model"]["name"] == "seed-cnn"


def test_resume_after_kill(small_csv, tmp_path):
    """Kill a training process with SIGKILL after its first checkpoint, then resume it."""
    run = tmp_path / "killed"
    env = {**os.environ, "SKYSIFT_NO_PROGRESS": "1"}
    cmd = [sys.executable, "-m", "skysift", "train", "transits", "--data", str(small_csv), "--out", str(run),
           "--model", "resnet1d", "--epochs", "30", "--patience", "100", "--batch-size", "32", "--param", "width=8",
           "--param", "depth=3"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.exists() and not (run / "model.json").exists()
    import torch

    epoch_at_kill = torch.load(last, map_location="cpu", weights_only=True)["epoch"]
    rc = main(["train", "transits", "--data", str(small_csv), "--out", str(run), "--model", "resnet1d", "--epochs", "3",
               "--patience", "100", "--batch-size", "32", "--param", "width=8", "--param", "depth=3", "--resume"])
    assert rc == 0 and (run / "model.json").exists()
    card = json.loads((run / "model.json").read_text())
    epochs = [h["epoch"] for h in card["history"]]
    assert max(epochs) == 2 and epoch_at_kill <= 2


def test_last_checkpoint_is_the_last_epoch_when_the_score_stops_improving(small_csv, tmp_path, monkeypatch):
    """--resume continues from the last epoch trained, not from the last one that improved the
    monitored score (Lightning 2.6's ``save_last`` writes last.ckpt only in such an epoch)."""
    import torch

    from skysift.core import metrics

    # a validation score that never improves after the first epoch
    monkeypatch.setattr(metrics, "headline_scores", lambda task, names, targets, logits: {"pr_auc": 0.5})
    run = tmp_path / "flat"
    skysift.train("transits", small_csv, run, model="seed-cnn", epochs=3, patience=10, progress=False)
    ckpts = run / "checkpoints"
    assert torch.load(ckpts / "last.ckpt", map_location="cpu", weights_only=True)["epoch"] == 2  # 0-based: the third
    assert torch.load(ckpts / "best.ckpt", map_location="cpu", weights_only=True)["epoch"] == 0


def test_cli_exit_codes(small_csv, tmp_path, capsys):
    assert main(["train", "transits", "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "nope.csv" in err and "Traceback" not in err
    bad = _write(tmp_path, _header(200) + "\n" + _row(5, [1] * 200) + "\n")
    assert main(["train", "transits", "--data", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert "unknown LABEL 5" in capsys.readouterr().err
    assert main(["train", "transits", "--data", str(small_csv), "--out", str(tmp_path / "r"), "--model", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "no_run"), "--data", str(small_csv)]) == 2
    assert main(["train", "galaxiez", "--data", "x", "--out", "y"]) == 2
    assert main(["simulate", "transits", "--out", str(tmp_path / "s"), "--n", "30", "--seed", "3"]) == 0
    assert (tmp_path / "s" / "exoTrain.csv").exists()


def test_cli_full_cycle(small_csv, tmp_path, capsys):
    run = tmp_path / "cli_run"
    assert main(["train", "transits", "--data", str(small_csv), "--out", str(run), "--epochs", "1",
                 "--param", "width=8", "--param", "members=1"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(small_csv), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"roc_auc", "pr_auc", "f1", "accuracy", "ece", "n"} <= set(out)
    assert main(["predict", str(run), "--data", str(small_csv), "--out", str(tmp_path / "p.csv")]) == 0
    assert (tmp_path / "p.csv").read_text().startswith("id,p_no_planet,p_planet")
    assert main(["info", str(run)]) == 0
    assert "views-net" in capsys.readouterr().out


def test_request_parsing_validates():
    from skysift.transits.task import TASK

    d = TASK.parse_request({"objects": [{"id": "a", "flux": [1.0] * 300}, {"id": "b", "flux": [2.0] * 3197}]})
    assert d.x.shape == (2, L) and list(d.ids) == ["a", "b"]
    for bad, msg in [({"flux": [1.0] * 20}, "at least 100"), ({"flux": ["x"] * 200}, "only numbers"),
                     ([1, 2], "JSON object"), ({"objects": []}, "non-empty")]:
        with pytest.raises(DataError, match=msg):
            TASK.parse_request(bad)


def test_same_seed_same_model(small_csv, tmp_path):
    """Same seed, same data: same split and the same weights (to float rounding: multithreaded CPU
    kernels may sum in a different order; with one thread the weights are bitwise equal)."""
    a = skysift.train("transits", small_csv, tmp_path / "a", model="resnet1d", epochs=1, seed=7, progress=False,
                      model_params={"width": 8, "depth": 2, "attention_layers": 0})
    b = skysift.train("transits", small_csv, tmp_path / "b", model="resnet1d", epochs=1, seed=7, progress=False,
                      model_params={"width": 8, "depth": 2, "attention_layers": 0})
    assert (tmp_path / "a" / "split.json").read_text() == (tmp_path / "b" / "split.json").read_text()
    for (ka, va), (kb, vb) in zip(a.net.state_dict().items(), b.net.state_dict().items()):
        assert ka == kb and np.allclose(va.numpy(), vb.numpy(), atol=1e-4), ka


# ---- transit search and views ---------------------------------------------------------------------
def _one_planet(period=3.7, rp=0.08, seed=0, n=L):
    """A quiet star with one batman planet: (raw flux (n,), true period)."""
    from skysift.transits.simulate import CADENCE_DAYS, _batman_flux

    rng = np.random.default_rng(seed)
    t = np.arange(n) * CADENCE_DAYS
    transit, _, _ = _batman_flux(t, 1.3, period, rp, 12.0, 89.5, (0.4, 0.25))
    return 5e4 * transit * (1 + rng.normal(0, 4e-4, n)), period


def _one_binary(seed=0, n=L):
    """A quiet star with an eclipsing binary: 1.5% primaries, 0.6% secondaries at phase 0.5."""
    from skysift.transits.simulate import CADENCE_DAYS, _batman_flux

    rng = np.random.default_rng(seed)
    t = np.arange(n) * CADENCE_DAYS
    primary, _, _ = _batman_flux(t, 0.9, 2.9, 0.125, 8.0, 89.0, (0.4, 0.25))
    secondary, _, _ = _batman_flux(t, 0.9 + 1.45, 2.9, 0.078, 8.0, 89.0, (0.4, 0.25))
    return 5e4 * (primary + secondary - 1) * (1 + rng.normal(0, 4e-4, n))


def _scalars(views):
    from skysift.transits.search import SearchSettings, candidate_scalars

    s = SearchSettings()
    return dict(zip(s.scalar_names, candidate_scalars(views[None], s)[0]))


def test_bls_recovers_injected_period_and_agrees_with_astropy():
    from astropy.timeseries import BoxLeastSquares

    from skysift.transits.search import SearchSettings, bls_search, detrend_batch
    from skysift.transits.simulate import CADENCE_DAYS

    s = SearchSettings()
    flux = np.stack([_one_planet(p, seed=i)[0] for i, p in enumerate((0.9, 3.7, 11.3))])
    rel, valid, _ = detrend_batch(flux, s)
    found = bls_search(rel, valid, s)
    np.testing.assert_allclose(found["period"], [0.9, 3.7, 11.3], rtol=0.01)
    assert (found["sde"] > 10).all()
    # astropy's BoxLeastSquares on the same detrended series finds the same period
    t = np.arange(L) * CADENCE_DAYS
    res = BoxLeastSquares(t, rel[1]).autopower(0.15, minimum_period=0.5, maximum_period=20, frequency_factor=2)
    assert abs(res.period[np.argmax(res.power)] - found["period"][1]) < 0.02


def test_search_prefers_a_dip_to_variability_that_also_rises():
    from dataclasses import replace

    from skysift.transits.search import SearchSettings, bls_search
    from skysift.transits.simulate import CADENCE_DAYS

    # what a running median leaves of fast rotation: troughs *and* crests (here one of each every
    # 9.1 d, ~6 h wide, deeper than the planet), beside a planet's 1.5e-3, 2.4-h dips every 3.3 d.
    # The dip power alone picks the troughs; the bump-power contrast picks the planet.
    t = np.arange(L) * CADENCE_DAYS
    ph = (t % 9.1) / 9.1
    var = 3e-3 * (np.exp(-0.5 * ((ph - 0.7) / 0.012) ** 2) - np.exp(-0.5 * ((ph - 0.3) / 0.012) ** 2))
    planet = np.where(np.abs((t - 0.4 + 1.65) % 3.3 - 1.65) < 0.05, -1.5e-3, 0.0)
    rel = (var + planet + np.random.default_rng(1).normal(0, 4e-4, L))[None]
    valid = np.ones_like(rel, dtype=bool)
    s = SearchSettings()
    assert s.anti_weight > 0
    assert bls_search(rel, valid, replace(s, anti_weight=0.0))["period"][0] == pytest.approx(9.1, rel=0.01)
    assert bls_search(rel, valid, s)["period"][0] == pytest.approx(3.3, rel=0.01)
    # bundles written before the contrast keep the dip power alone (their views do not change)
    assert SearchSettings.from_stats({"n_candidates": 2}).anti_weight == 0.0


def test_harmonic_check_halves_and_doubles_the_period():
    from skysift.transits.search import SearchSettings, resolve_harmonics
    from skysift.transits.simulate import CADENCE_DAYS

    t = np.arange(L) * CADENCE_DAYS
    rng = np.random.default_rng(2)

    def dips(period, t0, depth=2e-3):
        return np.where(np.abs((t - t0 + period / 2) % period - period / 2) < 0.06, -depth, 0.0)

    planet = dips(3.1, 0.7)  # the same planet, searched at twice, half and its own period
    twin_eb = dips(4.0, 1.0, 4e-3) + dips(4.0, 3.0, 1e-3)  # unequal eclipses: no harmonic to fix
    rel = np.stack([planet, planet, planet, twin_eb]) + rng.normal(0, 3e-4, (4, L))
    valid = np.ones_like(rel, dtype=bool)
    period, t0 = resolve_harmonics(rel, valid, np.array([6.2, 1.55, 3.1, 4.0]), np.array([0.7, 0.7 + 1.55, 0.7, 1.0]),
                                   np.full(4, 0.1), SearchSettings())
    np.testing.assert_allclose(period, [3.1, 3.1, 3.1, 4.0])
    # the doubled period's epoch is a transit, not the empty half
    dt = (t0 - 0.7 + period / 2) % period - period / 2
    np.testing.assert_allclose(dt[:3], 0.0, atol=1e-9)
    assert SearchSettings.from_stats({"n_candidates": 2}).harmonic_check is False  # older bundles


def test_iterated_search_finds_the_planet_behind_a_stronger_signal():
    from skysift.transits.search import SearchSettings, compute_views
    from skysift.transits.simulate import CADENCE_DAYS, _batman_flux

    # a deep planet at 2.3 d hides a shallower one at 7.9 d from a single search; the second pass,
    # with the first candidate's transits masked, finds it
    t = np.arange(L) * CADENCE_DAYS
    inner, _, _ = _batman_flux(t, 0.7, 2.3, 0.1, 9.0, 89.5, (0.4, 0.25))
    outer, _ = _one_planet(7.9, rp=0.05, seed=4)
    s = SearchSettings()
    views, found = compute_views((outer * inner)[None], s, with_search=True)
    assert views.shape == (1, 2 * s.n_per_candidate) and s.n_candidates == 2
    np.testing.assert_allclose([found["period"][0], found["period_2"][0]], [2.3, 7.9], rtol=0.01)
    # bundles written before the iterated search (no n_candidates in their settings) keep one
    assert SearchSettings.from_stats({"n_periods": 2000}).n_candidates == 1
    # ... and those written before the coarser later searches search the second time on the first
    # grid, so their views (and probabilities) do not change
    old = SearchSettings.from_stats({"n_periods": 2000, "n_candidates": 2})
    assert (old.next_n_periods, old.next_bin_cadences) == (0, 0)
    # ... and those written before the 2-cadence first search keep 3-cadence bins and their durations
    assert (old.bin_cadences, old.durations_bins) == (3, (1, 2, 3, 4, 5, 7, 9))
    new = SearchSettings.from_stats(s.to_dict())
    assert (new.bin_cadences, new.next_bin_cadences, new.durations_bins) == (2, 3, s.durations_bins)


def test_views_ensemble_trains_members_apart_and_averages_probabilities():
    import torch

    from skysift.core.lightning_module import ClassifierModule
    from skysift.core.losses import ClassificationLoss
    from skysift.transits.models import views_net
    from skysift.transits.search import SearchSettings
    from skysift.transits.views_net import ViewsEnsemble, ViewsNet

    s = SearchSettings()
    stats = {**s.to_dict(), "candidate_context": True, "members": 3}
    torch.manual_seed(0)
    net = views_net(2, stats, dropout=0.0)  # no dropout: two training-mode passes agree
    assert isinstance(net, ViewsEnsemble) and len(net.members) == 3
    x, y = torch.randn(4, s.n_features), torch.tensor([0, 1, 0, 1])
    per_member = net.train()(x)
    assert per_member.shape == (3, 4, 2)
    # the training loss is the mean of the members' own losses, not the loss of their average
    module = ClassifierModule(net, ClassificationLoss(), lr=1e-3, weight_decay=0.0, epochs=1)
    module.log = lambda *a, **k: None
    loss = module.training_step((x, y), 0)
    expected = torch.stack([torch.nn.functional.cross_entropy(m, y) for m in per_member]).mean()
    torch.testing.assert_close(loss, expected)
    net.eval()
    with torch.no_grad():
        mean_p = torch.stack([m(x).softmax(dim=-1) for m in net.members]).mean(dim=0)
        torch.testing.assert_close(net(x).exp(), mean_p)
    # bundles written before the ensemble (no "members") build one network, as they were trained
    assert isinstance(views_net(2, {k: v for k, v in stats.items() if k != "members"}), ViewsNet)


def test_views_net_scores_a_star_by_its_most_planet_like_candidate():
    import torch

    from skysift.transits.search import SearchSettings
    from skysift.transits.views_net import ViewsNet

    s = SearchSettings()
    torch.manual_seed(0)
    net = ViewsNet(2, s.n_global, s.n_local, s.n_scalars, n_candidates=2).eval()
    x = torch.randn(5, s.n_features)
    per = s.n_per_candidate
    swapped = torch.cat([x[:, per:], x[:, :per]], dim=1)
    with torch.no_grad():
        out, out_swapped = net(x), net(swapped)
        single = net.score(x.reshape(-1, per)).reshape(5, 2, 2)
    # the order of the candidates does not matter, and the star's logits are its best candidate's
    torch.testing.assert_close(out, out_swapped)
    margin = single[..., 1] - single[..., 0]
    torch.testing.assert_close(out, single[torch.arange(5), margin.argmax(dim=1)])


def test_simulated_hosts_pass_the_mes_against_their_own_noise():
    from skysift.transits.simulate import CADENCE_DAYS, MIN_MES, cdpp, multiple_event_statistic, n_events, planet_signal

    rng = np.random.default_rng(3)
    t = np.arange(L) * CADENCE_DAYS
    white = rng.normal(0, 3e-4, L)
    # granulation-like red noise: the white-noise MES would overstate what a search can find
    red = np.convolve(rng.normal(0, 3e-4, L), np.ones(8) / np.sqrt(8), "same") + white
    assert cdpp(red, 6) > 1.5 * cdpp(white, 6)
    for _ in range(5):
        flux, meta = planet_signal(t, rng, noise=red)
        assert meta["mes"] >= MIN_MES and n_events(flux) >= 2
        assert multiple_event_statistic(flux, noise=red) == pytest.approx(meta["mes"])


def test_odd_even_and_secondary_views_flag_an_eclipsing_binary():
    from skysift.transits.search import SearchSettings, compute_views

    s = SearchSettings()
    planet, _ = _one_planet(2.9, rp=0.1)
    views, found = compute_views(np.stack([planet, _one_binary()]), s, with_search=True)
    p, eb = _scalars(views[0]), _scalars(views[1])
    # the binary is found either at its period (a secondary eclipse at phase 0.5) or at half of it
    # (odd and even eclipses of different depths); a planet shows neither
    eb_flag = max(eb["secondary_snr"] * 10, abs(eb["odd_even_sigma"]) * 5)
    planet_flag = max(p["secondary_snr"] * 10, abs(p["odd_even_sigma"]) * 5)
    assert eb_flag > 20 and planet_flag < 5
    # the secondary view of the binary dips where the planet's stays flat
    n_g, n_l = s.n_global, s.n_local
    sec = slice(n_g + 3 * n_l, n_g + 4 * n_l)
    odd, even = slice(n_g + n_l, n_g + 2 * n_l), slice(n_g + 2 * n_l, n_g + 3 * n_l)
    centre = slice(n_l // 2 - 2, n_l // 2 + 3)
    eb_diff = max(-views[1][sec][centre].mean(), abs(views[1][odd][centre].mean() - views[1][even][centre].mean()))
    assert eb_diff > 0.25
    assert -views[0][sec][centre].mean() < 0.1
    assert abs(views[0][odd][centre].mean() - views[0][even][centre].mean()) < 0.1


def test_trapezoid_scalars_read_a_planet_as_a_planet_and_a_grazing_binary_as_v_shaped():
    from dataclasses import replace

    from skysift.transits.search import SearchSettings, compute_views, with_shape_scalars
    from skysift.transits.simulate import CADENCE_DAYS, _batman_flux

    s = SearchSettings()
    planet, _ = _one_planet(3.7, rp=0.08)  # a/R* = 12 at 3.7 d: a star of 1.7 solar densities, b = 0.1
    t = np.arange(L) * CADENCE_DAYS
    grazing, _, _ = _batman_flux(t, 0.7, 2.3, 0.5, 7.0, float(np.degrees(np.arccos(1.15 / 7.0))), (0.4, 0.25))
    grazing = 5e4 * grazing * (1 + np.random.default_rng(1).normal(0, 4e-4, L))
    flux = np.stack([planet, grazing])
    views = compute_views(flux, s)
    p, eb = _scalars(views[0]), _scalars(views[1])
    # limb darkening rounds the planet's bottom (its fitted ingress is longer than the true 7%), but
    # a V stays far more V-shaped
    assert p["ingress_fraction"] < 0.33 and eb["ingress_fraction"] > 0.38
    assert 0.8 < 10 ** p["log10_trapezoid_depth"] / 0.08 ** 2 < 1.6
    # the V at k = √δ: the star's density (a/R* = 7 at 2.3 d: 0.87 solar) and duration come out right
    assert abs(eb["log10_implied_density"] - np.log10(0.87)) < 0.3
    assert abs(eb["log10_trapezoid_duration_ratio"]) < 0.15
    # the scalars are a function of the other views alone: appended to views computed without them,
    # they are the same (a cache of the old views can be extended), and without shape_fit the old
    # layout is kept
    base = replace(s, shape_fit=False)
    old = compute_views(flux, base)
    assert old.shape[1] == s.n_features - 5 * s.n_candidates
    n = base.n_per_candidate
    extended = np.concatenate([with_shape_scalars(old[:, k * n:(k + 1) * n], s) for k in range(s.n_candidates)], axis=1)
    np.testing.assert_array_equal(extended, views)


def test_views_are_deterministic_and_per_object():
    from skysift.transits.search import SearchSettings, compute_views

    s = SearchSettings()
    flux, _, _ = simulate_light_curves(6, seed=9, positive_fraction=0.5, workers=1)
    a = compute_views(flux, s)
    b = compute_views(flux, s)
    assert a.shape == (6, s.n_features) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    # an object's views do not depend on the batch it is computed in (serving sends one at a time)
    np.testing.assert_allclose(compute_views(flux[3:4], s)[0], a[3], atol=1e-6)


def test_views_cache_invalidation(tmp_path, monkeypatch):
    from skysift.transits import search

    monkeypatch.setenv("SKYSIFT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(search, "_MEMO", search.OrderedDict())
    flux, _ = _one_planet()
    flux = flux[None].astype(np.float32)
    calls = []
    real = search.compute_views
    monkeypatch.setattr(search, "compute_views", lambda f, s: calls.append(1) or real(f, s))
    s = search.SearchSettings()
    first = search.views_cached(flux, s)
    assert len(calls) == 1 and len(list((tmp_path / "cache" / "transits").glob("*.npy"))) == 1
    search._MEMO.clear()  # a new process: read back from disk, not recomputed
    np.testing.assert_array_equal(search.views_cached(flux, s), first)
    assert len(calls) == 1
    search.views_cached(flux, search.SearchSettings(window_days=0.5))  # a setting changed
    assert len(calls) == 2
    changed = flux.copy()
    changed[0, 100] *= 1.01  # the content changed
    search.views_cached(changed, s)
    assert len(calls) == 3 and len(list((tmp_path / "cache" / "transits").glob("*.npy"))) == 3
    (tmp_path / "cache" / "transits" / f"{search.cache_key(flux, s)}.npy").write_bytes(b"garbage")
    search._MEMO.clear()  # a corrupt entry is recomputed, not trusted
    np.testing.assert_array_equal(search.views_cached(flux, s), first)
    assert len(calls) == 4


def test_independent_generator_is_its_own_population():
    from skysift.transits.independent import independent_light_curves

    flux, labels, info = independent_light_curves(300, seed=1, positive_fraction=0.05)
    kinds = [i["kind"] for i in info]
    assert flux.shape == (300, L) and labels.sum() == 15 and np.isnan(flux).any()  # gaps stay missing
    assert kinds.count("eclipsing_binary") + kinds.count("background_eb") > 5
    assert all(i["snr"] >= 7.5 for i, y in zip(info, labels) if y)


def test_views_model_same_probability_through_csv_and_json(small_csv, tmp_path):
    """The default views model: trained end to end; a light curve sent as JSON gets exactly the
    probability it gets in the CSV file (every preprocessing choice is in the bundle)."""
    from skysift.transits.task import TASK

    run = tmp_path / "views"
    model = skysift.train("transits", small_csv, run, model="views-net", epochs=2, progress=False,
                          data_params={"inject_prob": 0.2, "inject_eb_prob": 0.1, "inject_beb_prob": 0.1,
                                       "members": 1})
    card = json.loads((run / "model.json").read_text())
    assert card["preprocessing"]["input"] == "views" and card["preprocessing"]["n_periods"] > 100
    p_csv = skysift.load(run).predict_proba(small_csv)
    d = io.load(small_csv)
    body = {"objects": [{"id": str(i), "flux": [None if not np.isfinite(v) else float(v) for v in d.x[i]]}
                        for i in range(3)]}
    p_json = model.predict_proba(TASK.parse_request(body))
    np.testing.assert_allclose(p_json, p_csv[:3], atol=1e-5)


def test_views_net_candidates_see_each_others_scalars():
    """With ``context`` a candidate's score depends on the other candidate's scalars (an EB's
    secondary eclipse beside a deeper candidate at its period), the candidates' order still does
    not matter, and bundles written before (no ``candidate_context`` in their preprocessing) build
    the network without it, so their weights still load."""
    import torch

    from skysift.transits.models import views_net
    from skysift.transits.search import SearchSettings
    from skysift.transits.views_net import ViewsNet

    s = SearchSettings()
    torch.manual_seed(0)
    net = ViewsNet(2, s.n_global, s.n_local, s.n_scalars, n_candidates=2, context=True).eval()
    per = s.n_per_candidate
    x = torch.randn(6, s.n_features)
    swapped = torch.cat([x[:, per:], x[:, :per]], dim=1)
    other = x.clone()
    other[:, 2 * per - s.n_scalars:] += 3.0  # only the second candidate's scalars change
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(swapped))
        own_first = net.score(x[:, :per], x[:, 2 * per - s.n_scalars:])
        changed_first = net.score(other[:, :per], other[:, 2 * per - s.n_scalars:])
    assert not torch.allclose(own_first, changed_first)  # the first candidate's score moved
    stats = s.to_dict()
    assert not hasattr(views_net(2, stats), "context_net")
    assert views_net(2, {**stats, "candidate_context": True}).n_context == s.n_scalars


def test_hard_planet_injections_are_large_high_impact_planets():
    from skysift.transits.augment import inject_raw
    from skysift.transits.simulate import CADENCE_DAYS, planet_signal

    rng = np.random.default_rng(4)
    t = np.arange(L) * CADENCE_DAYS
    noise = rng.normal(0, 2e-4, L)
    metas = [planet_signal(t, rng, noise=noise, hard=True)[1] for _ in range(8)]
    assert all(m["b"] >= 0.6 and m["rp_rs"] >= 0.06 and m["mes"] >= 7.1 for m in metas)
    raw = 1000 * (1 + rng.normal(0, 2e-4, L))
    out = inject_raw(raw, "planet_hard", rng)
    assert out.shape == raw.shape and out.min() < 0.999 * raw.min()


def test_independent_generator_detectability_criterion():
    """Kepler's criterion on the independent generator's own noise: MES >= 7.1 over >= 2 transits
    outside the gaps; the labels themselves are left as generated."""
    from skysift.transits.independent import KEPLER_MIN_MES, detectable, independent_light_curves

    _, labels, info = independent_light_curves(60, seed=2, positive_fraction=0.5)
    det = detectable(info)
    assert not det[labels == 0].any()
    for m, d in zip(info, det):
        if m["kind"] == "planet":
            assert m["n_transits_observed"] <= m["n_transits"] and m["mes_observed"] <= m["snr"] + 1e-9
            assert d == (m["mes_observed"] >= KEPLER_MIN_MES and m["n_transits_observed"] >= 2)
    assert det[labels == 1].mean() > 0.5
