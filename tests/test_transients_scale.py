"""Survey scale: the streaming simulator, the threaded streamed predict and its resume checks, the
fast group statistics, and the feature thread settings."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skysift.errors import DataError
from skysift.transients import io, stream
from skysift.transients.features import (
    default_jobs,
    extract_features,
    feature_jobs,
    group_sort_order,
    grouped_stats,
)
from skysift.transients.simulate import simulate


@pytest.fixture(scope="module")
def streamed_set(tmp_path_factory):
    """A test set written by the streaming writer: 2 chunks of at most 35 objects."""
    out = tmp_path_factory.mktemp("sim")
    return simulate(out, n=60, seed=4, labelled=False, chunk_objects=35)


def test_streaming_simulator_writes_a_sorted_kaggle_test_set(streamed_set, tmp_path):
    obs = pd.read_csv(streamed_set / "test_set.csv")
    meta = pd.read_csv(streamed_set / "test_set_metadata.csv")
    truth = pd.read_csv(streamed_set / "truth.csv")
    assert list(obs.columns) == ["object_id", "mjd", "passband", "flux", "flux_err", "detected"]
    assert "target" not in meta.columns and len(meta) == len(truth) == 60
    # ids increase across chunks, and the file is sorted by (object_id, mjd): streamable
    assert meta.object_id.is_monotonic_increasing and meta.object_id.is_unique
    assert obs.object_id.is_monotonic_increasing
    assert (obs.groupby("object_id").mjd.apply(lambda s: s.is_monotonic_increasing)).all()
    assert set(obs.object_id) == set(meta.object_id) == set(truth.object_id)
    # the chunks differ (their own seeds) and the whole is deterministic
    assert truth.target.nunique() > 5
    again = simulate(tmp_path / "again", n=60, seed=4, labelled=False, chunk_objects=35)
    for name in ("test_set.csv", "test_set_metadata.csv", "truth.csv"):
        assert (again / name).read_bytes() == (streamed_set / name).read_bytes()
    data = io.load(streamed_set)
    assert len(data) == 60 and data.x.n_observations == len(obs)
    chunks = list(stream.iter_chunks(streamed_set / "test_set.csv", chunk_rows=500, block_size=4096))
    assert sum(len(c) for c in chunks) == 60
    assert not list(streamed_set.glob(".*.tmp"))  # no temporary file left behind


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.floats(-1e6, 1e6) | st.just(float("nan"))),
                min_size=0, max_size=60))
def test_group_sort_order_sorts_like_lexsort(pairs):
    g = np.array([p[0] for p in pairs], dtype=np.int64)
    v = np.array([p[1] for p in pairs], dtype=np.float64)
    ours = group_sort_order(v, g)
    ref = np.lexsort((v, g))
    np.testing.assert_array_equal(g[ours], g[ref])
    np.testing.assert_array_equal(v[ours], v[ref])  # NaN compare equal here, and sort last in both
    # min/max without a sort (no NaN) equal the sorted path's
    clean = v[~np.isnan(v)]
    gc = g[~np.isnan(v)]
    fast = grouped_stats(clean, gc, 7, ("min", "max"))
    slow = grouped_stats(clean, gc, 7, ("min", "max", "median"))
    np.testing.assert_array_equal(fast["min"], slow["min"])
    np.testing.assert_array_equal(fast["max"], slow["max"])


def test_feature_threads_change_no_value(streamed_set, monkeypatch):
    data = io.load(streamed_set)
    a, names = extract_features(data.x, n_jobs=2)
    with feature_jobs(1, progress=False):
        assert default_jobs() == 1
        b, _ = extract_features(data.x)
    np.testing.assert_array_equal(a, b)
    # a chunk of objects gives the values of the whole (each feature depends on its object only)
    c, _ = extract_features(data.x.take(np.arange(20, 45)), n_jobs=1)
    np.testing.assert_array_equal(a[20:45], c)
    monkeypatch.setenv("SKYSIFT_FEATURE_JOBS", "3")
    assert default_jobs() == 3


#: small pyarrow blocks and chunks: the 60 objects make several chunks
KW = {"chunk_rows": 800, "block_size": 4096, "progress": False}


def _fake_predict(chunk):
    df = pd.DataFrame({"object_id": chunk.ids})
    df["class_90"] = np.round(chunk.x.lengths / 1000.0, 6)
    df["class_99"] = 0.5
    return df


def test_threaded_stream_equals_one_thread_and_resume_checks_the_model(streamed_set, tmp_path):
    lc = streamed_set / "test_set.csv"
    one = tmp_path / "one.csv"
    r1 = stream.predict_stream(_fake_predict, lc, None, one, **KW, workers=1)
    two = tmp_path / "two.csv"
    r2 = stream.predict_stream(_fake_predict, lc, None, two, **KW, workers=3,
                               identity={"model": "aaa", "tta": False})
    assert r1["objects"] == r2["objects"] == 60 and r2["chunks"] > 5 and r2["workers"] == 3
    assert one.read_bytes() == two.read_bytes()

    # interrupted under model "aaa" ...
    out = tmp_path / "out.csv"
    calls = {"n": 0}

    def dies(chunk):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return _fake_predict(chunk)

    with pytest.raises(KeyboardInterrupt):
        stream.predict_stream(dies, lc, None, out, **KW, workers=2,
                              identity={"model": "aaa", "tta": False})
    state = json.loads(stream.progress_path(out).read_text())
    assert state["identity"] == {"model": "aaa", "tta": False} and not state["complete"]
    partial = out.read_bytes()
    # ... is not continued by another model, nor by the same model with other settings
    for other in ({"model": "bbb", "tta": False}, {"model": "aaa", "tta": True}, None):
        with pytest.raises(DataError, match="another model or settings.*--no-resume"):
            stream.predict_stream(_fake_predict, lc, None, out, **KW, identity=other)
        assert out.read_bytes() == partial  # refused before touching the output
    # the same model resumes to the uninterrupted output; resume=False starts over
    again = stream.predict_stream(_fake_predict, lc, None, out, **KW,
                                  identity={"model": "aaa", "tta": False})
    assert again["resumed_from"] is not None and 0 < again["objects"] < 60
    assert out.read_bytes() == one.read_bytes()
    fresh = stream.predict_stream(_fake_predict, lc, None, out, **KW, resume=False,
                                  identity={"model": "bbb", "tta": False})
    assert fresh["objects"] == 60 and fresh["resumed_from"] is None
    assert out.read_bytes() == one.read_bytes()


def test_predict_cli_refuses_to_resume_with_another_model(streamed_set, tmp_path, monkeypatch, capsys):
    from skysift.cli import main
    from skysift.serving.testing import random_bundle

    train = simulate(tmp_path / "train", n=60, seed=1)
    run_a = random_bundle("transients", train, tmp_path / "a")
    run_b = random_bundle("transients", train, tmp_path / "b", seed=1)
    monkeypatch.setenv("SKYSIFT_STREAM_MIN_BYTES", "0")  # stream this small file
    monkeypatch.setenv("SKYSIFT_NO_PROGRESS", "1")
    out = tmp_path / "p.csv"
    assert main(["predict", str(run_a), "--data", str(streamed_set), "--out", str(out)]) == 0
    assert "wrote 60 predictions" in capsys.readouterr().out
    ref = out.read_bytes()
    state = json.loads(stream.progress_path(out).read_text())
    assert state["complete"] and len(state["identity"]["model"]) == 64
    # pretend the run was cut short, then resume with another model: refused, output untouched
    state["complete"] = False
    stream.progress_path(out).write_text(json.dumps(state))
    assert main(["predict", str(run_b), "--data", str(streamed_set), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "another model or settings" in err and "--no-resume" in err
    assert out.read_bytes() == ref
    assert main(["predict", str(run_b), "--data", str(streamed_set), "--out", str(out), "--no-resume"]) == 0
    other = pd.read_csv(out)
    assert len(other) == 60 and out.read_bytes() != ref


def test_catalogue_shards_share_a_folder_in_name_order(streamed_set, tmp_path):
    from skysift.core.scale import catalogue_partitions

    lc, md = streamed_set / "test_set.csv", streamed_set / "test_set_metadata.csv"
    cat = tmp_path / "cat"
    a = stream.write_parquet_catalogue(lc, md, cat, objects_per_partition=25, prefix="shard01")
    b = stream.write_parquet_catalogue(lc, md, cat, objects_per_partition=25, prefix="shard02")
    assert [p.name for p in a] == ["shard01-00000.parquet", "shard01-00001.parquet", "shard01-00002.parquet"]
    assert catalogue_partitions(cat) == [p.resolve() for p in a + b]
    with pytest.raises(DataError, match="already holds a catalogue"):
        stream.write_parquet_catalogue(lc, md, cat, prefix="shard01")
    with pytest.raises(ValueError, match="plain file-name part"):
        stream.write_parquet_catalogue(lc, md, cat, prefix="../x")
    assert sum(len(io.load(p)) for p in a) == 60
