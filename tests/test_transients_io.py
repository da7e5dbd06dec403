"""Loading, validation, streaming and the Parquet catalogue of the ``transients`` (PLAsTiCC) task."""
from __future__ import annotations

import gzip
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skysift.errors import DataError
from skysift.transients import io, stream
from skysift.transients.data import CLASSES, META_COLUMNS, LightCurves

GALACTIC = {6, 16, 53, 65, 92}


# ---- fixture files -------------------------------------------------------------------------------
def make_objects(n: int = 8, seed: int = 0, first_id: int = 13) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Observations (sorted by object_id, mjd) and Kaggle-style metadata of ``n`` random objects."""
    rng = np.random.default_rng(seed)
    ids = first_id + np.cumsum(rng.integers(1, 500, n))
    targets = np.array(CLASSES)[np.arange(n) % len(CLASSES)]
    rows = []
    for oid in ids:
        m = int(rng.integers(12, 40))
        mjd = np.sort(59580 + rng.uniform(0, 1000, m)).round(4)
        rows.append(pd.DataFrame({"object_id": oid, "mjd": mjd, "passband": rng.integers(0, 6, m),
                                  "flux": rng.normal(0, 50, m).round(3),
                                  "flux_err": rng.uniform(1, 10, m).round(3),
                                  "detected": rng.integers(0, 2, m)}))
    obs = pd.concat(rows, ignore_index=True)
    gal = np.isin(targets, list(GALACTIC))
    z = np.where(gal, 0.0, rng.uniform(0.05, 1.5, n)).round(3)  # the unblinded writer keeps 3 decimals
    meta = pd.DataFrame({"object_id": ids, "ra": rng.uniform(0, 360, n).round(4),
                         "decl": rng.uniform(-60, 0, n).round(4), "gal_l": 1.0, "gal_b": 2.0,
                         "ddf": (np.arange(n) % 3 == 0).astype(int), "hostgal_specz": z,
                         "hostgal_photoz": z, "hostgal_photoz_err": np.where(gal, 0.0, 0.05),
                         "distmod": np.where(gal, np.nan, 40.0 + z), "mwebv": 0.02, "target": targets})
    return obs, meta


def write_kaggle(folder: Path, obs: pd.DataFrame, meta: pd.DataFrame, *, test: bool = False,
                 gz: bool = False) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    stem = "test_set" if test else "training_set"
    suf = ".csv.gz" if gz else ".csv"
    lc, md = folder / f"{stem}{suf}", folder / f"{stem}_metadata{suf}"
    obs.to_csv(lc, index=False)
    meta.drop(columns=["target"] if test else []).to_csv(md, index=False, na_rep="nan")
    return lc, md


def write_unblinded(folder: Path, obs: pd.DataFrame, meta: pd.DataFrame, *, test: bool = False,
                    gz: bool = True, shard: str = "") -> tuple[Path, Path]:
    """The unblinded release: detected_bool, ddf_bool, fields padded with spaces, -9 sentinels and
    true_* columns (true_target deliberately differs from target here to catch a leak)."""
    folder.mkdir(parents=True, exist_ok=True)
    split = "test" if test else "train"
    suf = ".csv.gz" if gz else ".csv"
    lc = folder / f"plasticc_{split}_lightcurves{shard}{suf}"
    md = folder / f"plasticc_{split}_metadata{suf}"
    obs.rename(columns={"detected": "detected_bool"}).to_csv(lc, index=False)
    cols = ["object_id", "ra", "decl", "ddf_bool", "hostgal_specz", "hostgal_photoz",
            "hostgal_photoz_err", "distmod", "mwebv"] + ([] if test else ["target"]) + ["true_target", "true_z"]
    lines = [",".join(cols)]
    for r in meta.itertuples(index=False):
        dm = -9.0 if np.isnan(r.distmod) else r.distmod
        vals = [f"{r.object_id:>10d}", f"{r.ra:9.4f}", f"{r.decl:9.4f}", str(r.ddf), f"{r.hostgal_specz:6.3f}",
                f"{r.hostgal_photoz:6.3f}", f"{r.hostgal_photoz_err:6.3f}", f"{dm:6.3f}", f"{r.mwebv:6.3f}"]
        vals += [] if test else [f"{r.target:>3d}"]
        vals += [f"{991:>4d}", f"{r.hostgal_specz:6.3f}"]
        lines.append(",".join(vals))
    text = "\n".join(lines) + "\n"
    if gz:
        with gzip.open(md, "wt") as fh:
            fh.write(text)
    else:
        md.write_text(text)
    return lc, md


def assert_same(a, b) -> None:
    """Two TaskData hold the same objects, observations, metadata and labels."""
    assert np.array_equal(a.ids, b.ids)
    for k in ("offsets", "mjd", "passband", "flux", "flux_err", "detected"):
        assert np.array_equal(getattr(a.x, k), getattr(b.x, k)), k
    for k in META_COLUMNS:
        assert np.array_equal(a.x.meta[k], b.x.meta[k], equal_nan=True), k
    if a.y is None:
        assert b.y is None
    else:
        assert list(np.asarray(a.class_names)[a.y]) == list(np.asarray(b.class_names)[b.y])


# ---- layouts -------------------------------------------------------------------------------------
def test_kaggle_layout(tmp_path):
    obs, meta = make_objects(9)
    write_kaggle(tmp_path, obs, meta)
    d = io.load(tmp_path, labelled=True)
    assert d.meta["layout"] == "kaggle"
    assert d.ids.dtype == np.int64 and np.array_equal(d.ids, np.sort(meta.object_id.to_numpy()))
    present = sorted(set(meta.target))
    assert d.class_names == [str(t) for t in present]
    assert [int(d.class_names[i]) for i in d.y] == list(meta.sort_values("object_id").target)
    assert isinstance(d.x, LightCurves) and d.x.n_observations == len(obs)
    np.testing.assert_allclose(d.x.flux, obs.flux.to_numpy(np.float32))
    np.testing.assert_array_equal(d.x.passband, obs.passband.to_numpy())
    np.testing.assert_array_equal(d.x.lengths, obs.groupby("object_id").size().to_numpy())
    np.testing.assert_array_equal(np.isnan(d.x.meta["distmod"]), meta.target.isin(GALACTIC).to_numpy())
    assert d.meta["card"]["class_counts"] == {str(t): int((meta.target == t).sum()) for t in present}


def test_unblinded_layout_gzip_padded_sentinels_and_no_true_columns(tmp_path):
    obs, meta = make_objects(8, seed=1)
    lc, _ = write_unblinded(tmp_path, obs, meta)
    kaggle = io.load(write_kaggle(tmp_path / "k", obs, meta)[0])
    d = io.load(lc)  # the light-curve file itself: the metadata is found beside it
    assert d.meta["layout"] == "unblinded" and d.meta["card"]["format"] == "csv.gz"
    # -9 became NaN, padded fields parsed, target (not true_target = 991) is the label
    assert d.meta["card"]["sentinels_to_nan"] == {"distmod": int(meta.target.isin(GALACTIC).sum())}
    assert_same(d, kaggle)
    assert "991" not in d.class_names


def test_test_sets_have_no_labels(tmp_path):
    obs, meta = make_objects(5, seed=2)
    write_kaggle(tmp_path / "k", obs, meta, test=True)
    write_unblinded(tmp_path / "u", obs, meta, test=True)
    for folder in ("k", "u"):
        d = io.load(tmp_path / folder)
        assert d.y is None and d.class_names == [str(c) for c in CLASSES]
        with pytest.raises(DataError, match="no 'target' column") as e:
            io.load(tmp_path / folder, labelled=True)
        assert "metadata" in str(e.value)
    with pytest.raises(DataError, match="true_target, which skysift never reads"):
        io.load(tmp_path / "u", labelled=True)


def test_labelled_false_ignores_targets(tmp_path):
    obs, meta = make_objects(4)
    meta.loc[0, "target"] = 12345  # would fail if read
    write_kaggle(tmp_path, obs, meta)
    d = io.load(tmp_path, labelled=False)
    assert d.y is None and len(d) == 4


def test_gzip_and_parquet_pairs_equal_plain_csv(tmp_path):
    obs, meta = make_objects(6, seed=3)
    ref = io.load(write_kaggle(tmp_path / "csv", obs, meta)[0])
    assert_same(io.load(tmp_path / "csv"), ref)
    assert_same(io.load(write_kaggle(tmp_path / "gz", obs, meta, gz=True)[0]), ref)
    (tmp_path / "pq").mkdir()
    obs.to_parquet(tmp_path / "pq" / "training_set.parquet")
    meta.to_parquet(tmp_path / "pq" / "training_set_metadata.parquet")
    d = io.load(tmp_path / "pq" / "training_set.parquet")
    assert d.meta["card"]["format"] == "parquet"
    assert_same(d, ref)
    # an explicit metadata= wins over the naming conventions
    other = tmp_path / "elsewhere.csv"
    meta.to_csv(other, index=False)
    assert_same(io.load(tmp_path / "pq" / "training_set.parquet", metadata=other), ref)


def test_unsorted_mjd_is_sorted_and_exact_duplicates_dropped(tmp_path, caplog):
    obs, meta = make_objects(5, seed=4)
    ref = io.load(write_kaggle(tmp_path / "ref", obs, meta)[0])
    shuffled = obs.sample(frac=1.0, random_state=0)
    dup = pd.concat([shuffled, shuffled.iloc[[3, 7]]])
    with caplog.at_level(logging.WARNING, logger="skysift.transients.io"):
        d = io.load(write_kaggle(tmp_path / "bad", dup, meta)[0])
    assert_same(d, ref)
    assert d.meta["card"]["resorted"] is True and d.meta["card"]["duplicate_rows_dropped"] == 2
    assert "dropped 2 exact duplicate" in caplog.text


def test_shard_of_split_test_set_may_have_extra_metadata(tmp_path):
    obs, meta = make_objects(6, seed=5)
    first3 = obs[obs.object_id.isin(meta.object_id[:3])]
    lc, _ = write_unblinded(tmp_path, first3, meta, test=True, shard="_01")
    d = io.load(lc)
    assert list(d.ids) == list(meta.object_id[:3])
    # the same extra metadata beside a non-shard file is an error (next test)


# ---- validation ------------------------------------------------------------------------------------
def _obs_meta():
    return make_objects(6, seed=7)


def _set(df, row, col, value):
    df = df.copy()
    df[col] = df[col].astype(object)
    df.loc[row, col] = value
    return df


OBS_ROW = 20  # 0-based; "row 21" in messages


@pytest.mark.parametrize("mutate, problem, where", [
    (lambda o, m: (_set(o, OBS_ROW, "passband", 7), m), "unknown passband 7", "row 21, object"),
    (lambda o, m: (_set(o, OBS_ROW, "flux_err", 0.0), m), "flux_err must be positive", "row 21"),
    (lambda o, m: (_set(o, OBS_ROW, "flux_err", -1.5), m), "flux_err must be positive, got -1.5", "row 21"),
    (lambda o, m: (_set(o, OBS_ROW, "mjd", "nan"), m), "missing or NaN value in column mjd", "row 21"),
    (lambda o, m: (_set(o, OBS_ROW, "flux", "inf"), m), "non-finite flux", "row 21"),
    (lambda o, m: (_set(o, OBS_ROW, "flux_err", "-inf"), m), "non-finite flux_err", "row 21"),
    (lambda o, m: (_set(o, OBS_ROW, "flux", "abc"), m), "non-numeric value 'abc' in column flux", "row 21"),
    (lambda o, m: (_set(o, OBS_ROW, "passband", "2.5"), m), "non-integer value '2.5' in column passband", "row 21"),
    (lambda o, m: (_set(o, OBS_ROW, "detected", 2), m), "detected must be 0 or 1", "row 21"),
    (lambda o, m: (o.drop(columns=["flux_err"]), m), "missing required column(s) flux_err", None),
    (lambda o, m: (o, m.drop(columns=["object_id"])), "missing required column(s) object_id", None),
    (lambda o, m: (o, m.iloc[1:]), "1 object(s) have observations but no row in the metadata", "object"),
    (lambda o, m: (o[o.object_id != m.object_id[2]], m), "1 object(s) in the metadata have no observations",
     "object"),
    (lambda o, m: (o, pd.concat([m, m.iloc[[2]]])), "duplicate object_id", "object"),
    (lambda o, m: (o, _set(m, 3, "target", "90.5")), "non-integer value '90.5' in column target", "row 4"),
    (lambda o, m: (o, _set(m, 3, "target", "")), "missing target", "row 4"),
    (lambda o, m: (o, _set(m, 3, "target", 99)), "target(s) [99] not among the 14", "row 4, object"),
    (lambda o, m: (o, _set(m, 3, "target", 991)), "only with allow_unknown=True", "row 4"),
    (lambda o, m: (o, _set(m, 3, "hostgal_photoz", "x1")), "value 'x1' in column hostgal_photoz", "row 4"),
])
def test_validation_errors_name_file_and_place(tmp_path, mutate, problem, where):
    obs, meta = mutate(*_obs_meta())
    lc, md = write_kaggle(tmp_path, obs, meta)
    with pytest.raises(DataError) as e:
        io.load(tmp_path, labelled=True)
    msg = str(e.value)
    assert problem in msg
    assert e.value.path in (str(lc), str(md), str(tmp_path))
    assert Path(e.value.path).name in msg
    if where:
        assert where in msg


def test_conflicting_observations_fail(tmp_path):
    obs, meta = _obs_meta()
    extra = obs.iloc[[5]].assign(flux=obs.flux.iloc[5] + 1)
    write_kaggle(tmp_path, pd.concat([obs, extra]), meta)
    with pytest.raises(DataError, match=r"training_set\.csv, object \d+: two different observations at mjd"):
        io.load(tmp_path)


def test_unknown_targets_only_with_allow_unknown(tmp_path):
    obs, meta = _obs_meta()
    meta.loc[[1, 4], "target"] = [991, 99]
    write_kaggle(tmp_path, obs, meta)
    d = io.load(tmp_path, allow_unknown=True)
    assert d.class_names[-1] == "99" and d.class_counts()["99"] == 2
    meta.loc[2, "target"] = 100  # not a PLAsTiCC target at all
    write_kaggle(tmp_path, obs, meta)
    with pytest.raises(DataError, match=r"target\(s\) \[100\]"):
        io.load(tmp_path, allow_unknown=True)


def test_ragged_row_and_empty_files(tmp_path):
    obs, meta = _obs_meta()
    lc, md = write_kaggle(tmp_path, obs, meta)
    lines = lc.read_text().splitlines()
    lines[6] += ",1"
    lc.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"training_set\.csv, row 6: ragged row"):
        io.load(tmp_path)
    lc.write_text("")
    with pytest.raises(DataError, match=r"training_set\.csv: empty file"):
        io.load(tmp_path)
    lc.write_text(",".join(obs.columns) + "\n")
    with pytest.raises(DataError, match=r"training_set\.csv: no observation rows"):
        io.load(tmp_path)
    write_kaggle(tmp_path, obs, meta)
    md.write_text(",".join(meta.columns) + "\n")
    with pytest.raises(DataError, match=r"training_set_metadata\.csv: no data rows"):
        io.load(tmp_path)


def test_folder_and_path_problems(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        io.load(tmp_path / "nope")
    with pytest.raises(DataError, match="no CSV or Parquet files"):
        io.load(tmp_path)
    obs, meta = _obs_meta()
    lc, md = write_kaggle(tmp_path, obs, meta)
    with pytest.raises(DataError, match="this is a metadata file"):
        io.load(md)
    md.unlink()
    with pytest.raises(DataError, match="no metadata file found beside it"):
        io.load(lc)
    write_kaggle(tmp_path, obs, meta, test=True)
    (tmp_path / "training_set_metadata.csv").write_text("x\n")
    with pytest.raises(DataError, match="expected one light-curve file in this folder, found 2"):
        io.load(tmp_path)


# ---- streaming --------------------------------------------------------------------------------------
def test_iter_chunks_never_split_an_object(tmp_path):
    obs, meta = make_objects(40, seed=8)
    lc, md = write_unblinded(tmp_path, obs, meta, test=True)
    whole = io.load(lc)
    # tiny pyarrow blocks: objects straddle many batch boundaries
    chunks = list(stream.iter_chunks(lc, md, chunk_rows=100, block_size=2048))
    assert len(chunks) > 5
    for a, b in zip(chunks, chunks[1:]):
        assert a.ids[-1] < b.ids[0]
    for c in chunks:
        assert c.x.n_observations >= 100 or c is chunks[-1]
    ids = np.concatenate([c.ids for c in chunks])
    x = LightCurves.concat([c.x for c in chunks])
    from skysift.core.data import TaskData
    assert_same(TaskData(ids=ids, x=x, y=None, class_names=whole.class_names), whole)


def test_iter_chunks_errors_name_the_row(tmp_path):
    obs, meta = make_objects(30, seed=9)
    assert len(obs) > 600
    lc, md = write_kaggle(tmp_path, _set(obs, 600, "flux", "oops"), meta, test=True)
    with pytest.raises(DataError, match=r"test_set\.csv, row 601: non-numeric value 'oops' in column flux"):
        list(stream.iter_chunks(lc, md, chunk_rows=50, block_size=2048))
    swapped = pd.concat([obs[obs.object_id == meta.object_id[5]], obs[obs.object_id != meta.object_id[5]]])
    write_kaggle(tmp_path, swapped, meta, test=True)
    with pytest.raises(DataError, match=r"object ids go backwards .*sorted by object_id"):
        list(stream.iter_chunks(lc, md, chunk_rows=50, block_size=2048))


def _fake_predict(chunk):
    """A deterministic per-object prediction (depends on the object only, not on the chunk)."""
    n = chunk.x.lengths.astype(float)
    df = pd.DataFrame({"object_id": chunk.ids})
    for j, c in enumerate(CLASSES):
        df[f"class_{c}"] = np.round((n * (j + 1)) % 7 / 7.0, 6)
    df["class_99"] = 0.5
    return df


def test_predict_stream_resumes_after_interruption(tmp_path):
    obs, meta = make_objects(50, seed=10)
    lc, md = write_unblinded(tmp_path / "data", obs, meta, test=True)
    full = tmp_path / "full.csv"
    summary = stream.predict_stream(_fake_predict, lc, md, full, chunk_rows=120, block_size=2048,
                                    progress=False)
    assert summary["objects"] == 50 and summary["chunks"] > 4

    out = tmp_path / "resumed.csv"
    calls = {"n": 0}

    def dies_after_two(chunk):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return _fake_predict(chunk)

    with pytest.raises(KeyboardInterrupt):
        stream.predict_stream(dies_after_two, lc, md, out, chunk_rows=120, block_size=2048, progress=False)
    state = stream.progress_path(out).read_text()
    assert '"complete": false' in state
    with open(out, "ab") as fh:  # a partial tail written after the last checkpoint
        fh.write(b"99999,0.1,0.")
    again = stream.predict_stream(_fake_predict, lc, md, out, chunk_rows=120, block_size=2048, progress=False)
    assert again["resumed_from"] is not None and again["objects"] < 50
    assert out.read_bytes() == full.read_bytes()
    res = pd.read_csv(out)
    assert res.object_id.is_unique and len(res) == 50
    # a finished run is not redone
    assert stream.predict_stream(_fake_predict, lc, md, out, chunk_rows=120, progress=False)["chunks"] == 0
    assert out.read_bytes() == full.read_bytes()


def test_is_streamable(tmp_path):
    obs, meta = make_objects(4)
    lc, _ = write_kaggle(tmp_path, obs, meta, test=True)
    assert io.is_streamable(lc, min_bytes=1) and io.is_streamable(tmp_path, min_bytes=1)
    assert not io.is_streamable(lc)  # small files are simply loaded
    assert not io.is_streamable(tmp_path / "missing.csv", min_bytes=1)


# ---- Parquet catalogue -------------------------------------------------------------------------------
def test_parquet_catalogue_round_trip(tmp_path):
    obs, meta = make_objects(23, seed=11)
    lc, md = write_unblinded(tmp_path / "data", obs, meta)
    ref = io.load(lc)
    parts = stream.write_parquet_catalogue(lc, md, tmp_path / "cat", objects_per_partition=5, chunk_rows=60)
    assert [p.name for p in parts] == [f"part-0000{i}.parquet" for i in range(5)]
    loaded = [io.load(p) for p in parts]
    assert [len(d) for d in loaded] == [5, 5, 5, 5, 3]
    assert all(d.meta["layout"] == "catalogue" for d in loaded)
    from skysift.core.data import TaskData
    cat = TaskData(ids=np.concatenate([d.ids for d in loaded]), x=LightCurves.concat([d.x for d in loaded]),
                   y=None, class_names=ref.class_names)
    assert_same(cat, TaskData(ids=ref.ids, x=ref.x, y=None, class_names=ref.class_names))
    labels = np.concatenate([np.asarray(d.class_names, dtype=int)[d.y] for d in loaded])
    assert np.array_equal(labels, np.asarray(ref.class_names, dtype=int)[ref.y])
    assert_same(io.load(tmp_path / "cat"), ref)  # the whole folder
    with pytest.raises(DataError, match="already holds a catalogue"):
        stream.write_parquet_catalogue(lc, md, tmp_path / "cat", 5)


def test_catalogue_partition_checks(tmp_path):
    import pyarrow.parquet as pq

    obs, meta = make_objects(6, seed=12)
    lc, md = write_kaggle(tmp_path / "data", obs, meta, test=True)
    parts = stream.write_parquet_catalogue(lc, md, tmp_path / "cat", objects_per_partition=3)
    assert io.load(parts[0]).y is None
    t = pq.read_table(parts[0]).to_pandas()
    t.loc[1, "mwebv"] = 0.5
    t.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=r"bad\.parquet, object \d+: column mwebv differs between rows"):
        io.load(tmp_path / "bad.parquet")


# ---- real data -------------------------------------------------------------------------------------
@pytest.mark.realdata
def test_real_kaggle_sample(shared_data):
    d = io.load(shared_data / "plasticc" / "kaggle_sample", labelled=True)
    assert len(d) == 10 and d.meta["layout"] == "kaggle"
    # the MANIFEST says 3,278 rows; the file holds 3,279 data rows (its last line has no newline)
    assert d.x.n_observations == 3279
    assert d.class_counts() == {"42": 2, "65": 2, "88": 1, "90": 4, "92": 1}
    assert np.isnan(d.x.meta["distmod"][d.y == d.class_names.index("92")]).all()


@pytest.mark.realdata
def test_real_unblinded_training_set(shared_data):
    t0 = time.perf_counter()
    d = io.load(shared_data / "plasticc", labelled=True)
    seconds = time.perf_counter() - t0
    assert seconds < 20
    assert d.meta["layout"] == "unblinded"
    assert len(d) == 7848 and d.x.n_observations == 1_421_705
    assert d.class_counts() == {"6": 151, "15": 495, "16": 924, "42": 1193, "52": 183, "53": 30, "62": 484,
                                "64": 102, "65": 981, "67": 208, "88": 370, "90": 2313, "92": 239, "95": 175}
    assert d.meta["card"]["sentinels_to_nan"] == {"distmod": 2325}
    assert (np.diff(d.ids) > 0).all() and (d.x.flux_err > 0).all()
    galactic = np.isin(np.asarray(d.class_names, dtype=int)[d.y], list(GALACTIC))
    assert np.isnan(d.x.meta["distmod"][galactic]).all() and not np.isnan(d.x.meta["distmod"][~galactic]).any()


def test_labels_for_model_flags_classes_the_model_lacks(tmp_path):
    obs, meta = make_objects(6, seed=13)
    meta.loc[5, "target"] = 991
    write_kaggle(tmp_path, obs, meta)
    d = io.load(tmp_path, allow_unknown=True)
    model = [str(c) for c in CLASSES]
    y = io.labels_for_model(d, model)
    expected = [model.index(str(t)) if t in CLASSES else len(model) for t in meta.sort_values("object_id").target]
    assert list(y) == expected
    with pytest.raises(DataError, match=r"object \d+: class\(es\) \['6'\] are not among the model's classes"):
        io.labels_for_model(d, model[1:])
    with pytest.raises(DataError, match="no labels"):
        io.labels_for_model(io.load(tmp_path, labelled=False), model)
