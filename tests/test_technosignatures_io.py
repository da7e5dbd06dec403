"""Loader tests for technosignatures: every validation error, the layouts, and the real snippets."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from skysift.errors import DataError
from skysift.technosignatures import io
from skysift.technosignatures.io import SnippetStack

SHAPE = (6, 16, 32)  # small snippets keep the tests fast; the loader accepts any (6, T, F)


def _write(root: Path, ids, labels=None, shape=SHAPE, dtype=np.float16, split="train", trailing_newline=True):
    rng = np.random.default_rng(0)
    for i in ids:
        p = root / split / i[0] / f"{i}.npy"
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, rng.normal(size=shape).astype(dtype))
    if labels is not None:
        text = "id,target\n" + "\n".join(f"{i},{y}" for i, y in zip(ids, labels))
        (root / "train_labels.csv").write_text(text + ("\n" if trailing_newline else ""))
    return root


IDS = ["0a1", "1b2", "fc3", "0d4"]


def test_competition_layout_is_lazy_and_labelled(tmp_path):
    _write(tmp_path, IDS, [0, 1, 0, 1], trailing_newline=False)
    d = io.load(tmp_path)
    assert isinstance(d.x, SnippetStack)  # nothing read into memory up front
    assert list(d.ids) == IDS and d.y.tolist() == [0, 1, 0, 1]
    assert d.x.shape == (4, *SHAPE) and d.x[1].dtype == np.float32
    sub = d.subset([3, 1])
    assert isinstance(sub.x, SnippetStack) and sub.ids.tolist() == ["0d4", "1b2"]
    assert np.array_equal(sub.x[1], d.x[1])
    # the labels file itself, and the train/ folder, are accepted too
    assert io.load(tmp_path / "train_labels.csv").y.tolist() == [0, 1, 0, 1]
    assert io.load(tmp_path / "train").y.tolist() == [0, 1, 0, 1]
    assert io.load(tmp_path, labelled=False).y is None


def test_test_folder_with_and_without_sample_submission(tmp_path):
    _write(tmp_path, IDS, split="test")
    d = io.load(tmp_path)
    assert d.y is None and sorted(d.ids) == sorted(IDS)
    (tmp_path / "sample_submission.csv").write_text("id,target\n" + "\n".join(f"{i},0.5" for i in IDS[::-1]))
    d = io.load(tmp_path)
    assert list(d.ids) == IDS[::-1] and d.meta["layout"] == "competition-test"
    with pytest.raises(DataError, match="labels required"):
        io.load(tmp_path, labelled=True)


def test_flat_folder(tmp_path):
    rng = np.random.default_rng(1)
    for i in IDS:
        np.save(tmp_path / f"{i}.npy", rng.normal(size=SHAPE).astype(np.float32))
    d = io.load(tmp_path)
    assert sorted(d.ids) == sorted(IDS) and d.y is None


@pytest.mark.parametrize("shape", [(5, 16, 32), (6, 16), (6, 16, 32, 1)])
def test_wrong_shape(tmp_path, shape):
    _write(tmp_path, IDS[:2], [0, 1])
    np.save(tmp_path / "train" / "1" / "1b2.npy", np.zeros(shape, np.float16))
    (tmp_path / "train_labels.csv").write_text("id,target\n0a1,0\n1b2,1\n")
    with pytest.raises(DataError, match=r"1b2\.npy.*wrong shape"):
        io.load(tmp_path)


def test_inconsistent_shape(tmp_path):
    _write(tmp_path, IDS[:2], [0, 1])
    np.save(tmp_path / "train" / "1" / "1b2.npy", np.zeros((6, 16, 64), np.float16))
    (tmp_path / "train_labels.csv").write_text("id,target\n0a1,0\n1b2,1\n")
    with pytest.raises(DataError, match="other snippets of this set are"):
        io.load(tmp_path)


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.complex64, bool])
def test_wrong_dtype(tmp_path, dtype):
    _write(tmp_path, IDS[:2], [0, 1])
    np.save(tmp_path / "train" / "1" / "1b2.npy", np.zeros(SHAPE, dtype))
    with pytest.raises(DataError, match=r"1b2\.npy.*wrong dtype"):
        io.load(tmp_path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_eager_and_lazy(tmp_path, bad):
    _write(tmp_path, IDS[:2], [0, 1])
    a = np.zeros(SHAPE, np.float16)
    a[2, 3, 4] = bad
    np.save(tmp_path / "train" / "1" / "1b2.npy", a)
    with pytest.raises(DataError, match=r"1b2\.npy.*non-finite.*scan 2, time 3, channel 4"):
        io.load(tmp_path)
    d = io.load(tmp_path, check_values=False)  # big sets: checked on read, still by name
    d.x[0]
    with pytest.raises(DataError, match=r"1b2\.npy.*non-finite"):
        d.x[1]


def test_label_without_file(tmp_path):
    _write(tmp_path, IDS[:2], [0, 1])
    (tmp_path / "train_labels.csv").write_text("id,target\n0a1,0\n1b2,1\nabc,0\n")
    with pytest.raises(DataError, match=r"train_labels\.csv, row 3: 1 id\(s\) have no \.npy file.*'abc'"):
        io.load(tmp_path)


def test_file_without_label(tmp_path):
    _write(tmp_path, IDS[:3], [0, 1, 0])
    (tmp_path / "train_labels.csv").write_text("id,target\n0a1,0\n1b2,1\n")
    with pytest.raises(DataError, match=r"fc3\.npy: 1 \.npy file\(s\) have no row in train_labels\.csv"):
        io.load(tmp_path)


@pytest.mark.parametrize("value", ["2", "-1", "0.5", "yes", ""])
def test_labels_not_binary(tmp_path, value):
    _write(tmp_path, IDS[:2], [0, 1])
    (tmp_path / "train_labels.csv").write_text(f"id,target\n0a1,0\n1b2,{value}\n")
    with pytest.raises(DataError, match=r"row 2 \(id 1b2\).*not 0 or 1"):
        io.load(tmp_path)


def test_label_table_errors(tmp_path):
    _write(tmp_path, IDS[:2], [0, 1])
    (tmp_path / "train_labels.csv").write_text("id,label\n0a1,0\n1b2,1\n")
    with pytest.raises(DataError, match="missing column 'target'"):
        io.load(tmp_path)
    (tmp_path / "train_labels.csv").write_text("id,target\n0a1,0\n0a1,1\n")
    with pytest.raises(DataError, match="row 2: duplicate id '0a1' in rows 1, 2"):
        io.load(tmp_path)
    (tmp_path / "train_labels.csv").write_text("id,target\n../x,0\n")
    with pytest.raises(DataError, match="row 1: bad id"):
        io.load(tmp_path)


def test_train_folder_without_labels_and_missing_paths(tmp_path):
    _write(tmp_path, IDS[:2])
    with pytest.raises(DataError, match="no train_labels.csv"):
        io.load(tmp_path)
    with pytest.raises(DataError, match="nope: no such file or directory"):
        io.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .npy"):
        io.load(tmp_path / "empty")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError, match="junk.npy: not a readable .npy"):
        io.load(tmp_path / "junk.npy")


@pytest.mark.realdata
def test_filterbank_cadence(shared_data, tmp_path):
    fil = shared_data / "seti" / "sample.fil"
    d = io.load([fil] * 6)
    assert d.x.shape == (4, 6, 32, 256) and d.y is None
    assert d.ids.tolist() == ["sample_0", "sample_256", "sample_512", "sample_768"]
    assert np.isfinite(d.x).all()
    folder = tmp_path / "cadence"
    folder.mkdir()
    for k in range(6):
        shutil.copy(fil, folder / f"scan{k}.fil")
    assert io.load(folder, snippet_width=512).x.shape == (2, 6, 32, 512)
    with pytest.raises(DataError, match="exactly six"):
        io.load([fil] * 5)
    with pytest.raises(DataError, match="not a cadence"):
        io.load(fil)
    bad = tmp_path / "bad.fil"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match="bad.fil: cannot read filterbank"):
        io.load([fil] * 5 + [bad])




@pytest.mark.realdata
def test_real_snippets(shared_data):
    root = shared_data / "seti"
    d = io.load(root)
    assert d.meta["layout"] == "competition-train"
    assert len(d) == 6 and d.x.shape == (6, 6, 273, 256) and d.x.dtype == "float16"
    expected = dict(line.split(",") for line in (root / "train_labels.csv").read_text().split("\n")[1:])
    assert {i: str(y) for i, y in zip(d.ids, d.y)} == expected
    assert d.y.sum() == 3
    a = d.x[0]
    assert a.shape == (6, 273, 256) and np.isfinite(a).all()
    t = io.load(root / "test")
    assert sorted(t.ids) == ["000c74cc71a1140", "100683da606ca61"] and t.y is None


def test_write_cadence_folder_writes_the_competition_layout(tmp_path):
    from skysift.errors import ConfigError
    from skysift.technosignatures.io import write_cadence_folder

    rng = np.random.default_rng(0)
    rows = [(f"abc{i}", rng.normal(size=(6, 8, 16)), i % 2, {"snr": 10.0 + i, "path": "linear"}) for i in range(4)]
    out = write_cadence_folder(tmp_path / "set", iter(rows), ("path", "snr"), {"snr": ".1f"})
    data = io.load(out, labelled=True)
    assert sorted(data.ids) == [f"abc{i}" for i in range(4)] and data.hard_labels.sum() == 2
    assert np.load(out / "train" / "a" / "abc1.npy").dtype == np.float16
    assert (out / "truth.csv").read_text().splitlines()[:2] == ["id,target,path,snr", "abc0,0,linear,10.0"]
    assert not list(out.rglob("*.tmp"))  # every file renamed into place
    with pytest.raises(ConfigError, match="duplicate"):
        write_cadence_folder(tmp_path / "dup", iter(rows[:1] * 2), ("path",))
