"""Bad input never ends in a traceback: the generated corpus of ``malformed.py`` through every
task's ``load`` and through the CLI verbs, property-based tests of the readers, and errors raised
inside Dask and DataLoader workers."""
from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
import malformed  # noqa: E402

from skysift.cli import main  # noqa: E402
from skysift.core.task import get_task  # noqa: E402
from skysift.errors import DataError, SkysiftError  # noqa: E402

CASES = malformed.cases()
ROOT = os.geteuid() == 0


def _run_load(case, d: Path):
    path = malformed.build(case, d)
    return get_task(case.task).load(path, labelled=case.labelled)


def test_corpus_size_per_task_and_reader():
    counts = Counter((c.task, c.reader) for c in CASES)
    assert set(t for t, _ in counts) == {"transits", "transients", "technosignatures", "galaxies"}
    small = {k: n for k, n in counts.items() if n < 30}
    assert not small, small
    print(sorted(counts.items()), len(CASES))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_load_gives_a_data_error_naming_the_file(case, tmp_path):
    if case.name.startswith("unreadable") and ROOT:
        pytest.skip("running as root: file permissions do not apply")
    if case.id in malformed.KNOWN_CRASHES:
        pytest.xfail(malformed.KNOWN_CRASHES[case.id])
    try:
        data = _run_load(case, tmp_path)
    except SkysiftError as e:
        assert isinstance(e, DataError) or "could be read as any of" in str(e), repr(e)
        assert str(tmp_path) in str(e), str(e)  # names the file or its folder
        assert " object at 0x" not in str(e) and "Traceback" not in str(e), str(e)
        return
    assert not case.strict, f"loaded {len(data)} objects from a broken input"
    assert len(data) >= 0


# ---- the CLI verbs --------------------------------------------------------------------------------
#: for each task, cases through every verb: those that used to crash, and a spread of the rest
CLI_CASES = {
    "transits": ["kaggle-csv-zero-bytes", "kaggle-csv-utf16", "kaggle-csv-inf-value", "kaggle-csv-unknown-label",
                 "parquet-truncated-50pc", "fits-random-bytes", "kaggle-csv-symlink-loop",
                 "kaggle-csv-is-a-directory"],
    "transients": ["kaggle-gzip-truncated-50pc", "unblinded-truncated-77pc", "kaggle-zero-flux-err",
                   "kaggle-duplicate-metadata-row", "parquet-random-bytes", "kaggle-no-metadata"],
    "technosignatures": ["npy-folder-truncated-50pc", "npy-truncated-98pc", "npy-folder-nan-values",
                         "labels-csv-duplicate-id", "npy-folder-int-dtype", "npy-object-dtype"],
    "galaxies": ["npz-truncated-50pc", "galaxy10-h5-wrong-magic", "catalogue-truncated-image",
                 "image-random-bytes", "npz-nan-labels", "image-folder-text-as-image"],
}
LABEL_CASES = {"kaggle-csv-unknown-label", "npz-nan-labels"}
_BY_ID = {c.id: c for c in CASES}
VERBS = ["train", "evaluate", "predict", "features", "explore", "report"]
CLI_PARAMS = [(task, name, verb) for task, names in CLI_CASES.items() for name in names for verb in VERBS]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A random-weight bundle per task, its statistics from the corpus's valid sample."""
    from skysift.serving.testing import random_bundle

    root = tmp_path_factory.mktemp("malformed-runs")
    out = {}
    for s in malformed.SAMPLES:
        if s.task in out or s.reader not in ("kaggle-csv", "kaggle", "npy-folder", "npz"):
            continue
        d = root / s.task
        d.mkdir()
        path, _ = s.write(d)
        out[s.task] = random_bundle(s.task, path, root / f"run_{s.task}")
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Each CLI case written once for the module (the six verbs read the same files)."""
    root = tmp_path_factory.mktemp("malformed-cli")
    cache: dict[str, Path] = {}

    def get(case_id: str) -> tuple[Path, Path]:
        if case_id not in cache:
            cache[case_id] = malformed.build(_BY_ID[case_id], root / case_id)
        return cache[case_id], root / case_id

    return get


@pytest.mark.parametrize("task, name, verb", CLI_PARAMS, ids=[f"{v}-{t}-{n}" for t, n, v in CLI_PARAMS])
def test_cli_verbs_exit_2_with_one_error_line(task, name, verb, runs, built, tmp_path, capsys):
    case_id = f"{task}-{name}"
    if verb == "predict" and name in LABEL_CASES:
        pytest.skip("predict ignores labels")
    data, folder = built(case_id)
    out = tmp_path / "out"
    out.mkdir()
    run = str(runs[task])
    argv = {
        "train": ["train", task, "--data", str(data), "--out", str(out / "run"), "--epochs", "1"],
        "evaluate": ["evaluate", run, "--data", str(data)],
        "predict": ["predict", run, "--data", str(data), "--out", str(out / "pred.csv")],
        "features": ["features", task, "--data", str(data), "--out", str(out / "f.parquet")],
        "explore": ["explore", task, "--data", str(data), "--out", str(out / "explore")],
        "report": ["report", run, "--data", str(data), "--out", str(out / "report.html")],
    }[verb]
    if verb == "features" and get_task(task).features is None:
        argv[1] = run  # the task's features are those of a run directory
    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert rc == 2, err
    assert len(errors) == 1 and all(ln.startswith(("error: ", "warning: ")) for ln in lines), err
    assert "Traceback" not in err and str(folder) in errors[0], err
    left = [p for p in out.rglob("*") if p.is_file()]
    assert not left, left  # no partial output, no temporary file


def test_train_bad_devices_fails_before_loading(tmp_path, capsys):
    rc = main(["train", "transits", "--data", str(tmp_path / "x.csv"), "--out", str(tmp_path / "r"),
               "--devices", "abc"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and "devices" in err and "x.csv" not in err, err


def test_cutouts_on_an_empty_catalogue(tmp_path, capsys):
    for name, text in (("blank.csv", "\n\n"), ("header.csv", "id,ra,dec\n"), ("zero.csv", "")):
        (tmp_path / name).write_text(text)
        rc = main(["datasets", "cutouts", str(tmp_path / name), "--out", str(tmp_path / "cut")])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and name in err and "Traceback" not in err, err
    assert not (tmp_path / "cut").exists() or not any((tmp_path / "cut").rglob("*.*"))


# ---- the streaming reader (files larger than memory) -------------------------------------------------
def test_stream_reader_names_a_truncated_gzip(tmp_path):
    from skysift.transients.stream import iter_chunks

    sample = [s for s in malformed.SAMPLES if s.reader == "kaggle-gzip"][0]
    folder, rels = sample.write(tmp_path)
    lc = folder / rels[0]
    raw = lc.read_bytes()
    lc.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"training_set\.csv\.gz, after row \d+: truncated or corrupt compressed"):
        for _ in iter_chunks(lc, folder / rels[1], chunk_rows=50, block_size=4096):
            pass


# ---- workers --------------------------------------------------------------------------------------
class _Failing:
    def __init__(self, error):
        self.error = error

    def __len__(self):
        return 4

    def __getitem__(self, i):
        raise self.error


@pytest.mark.parametrize("error", [DataError("/data/x.npy", "truncated .npy file", where="row 3"),
                                   SkysiftError("a plain message")])
def test_dataloader_worker_errors_keep_their_message(error):
    from torch.utils.data import DataLoader

    with pytest.raises(type(error)) as info:
        list(DataLoader(_Failing(error), num_workers=1))
    assert str(info.value) == str(error)


def test_snippet_truncated_after_loading_in_a_dataloader_worker(tmp_path):
    """A lazily read snippet that a disk problem shortens after ``load``: the worker's DataError
    reaches the caller whole."""
    from torch.utils.data import DataLoader

    sample = [s for s in malformed.SAMPLES if s.reader == "npy-folder"][0]
    path, rels = sample.write(tmp_path)
    data = get_task("technosignatures").load(path, check_values=False)
    f = path / rels[0]
    f.write_bytes(f.read_bytes()[:500])
    with pytest.raises(DataError) as info:
        list(DataLoader(data.x, num_workers=1, batch_size=len(data)))
    assert str(f) in str(info.value) and "\n" not in str(info.value)


def test_oserror_in_a_dask_partition_names_the_file(tmp_path, monkeypatch, capsys):
    """Inline Dask path: an OSError while a worker reads its partition (here: the partition turned
    into a folder between listing and reading) comes back as the partition's error line."""
    from skysift.core import scale

    sample = [s for s in malformed.SAMPLES if s.task == "transients" and s.reader == "parquet"][0]
    cat, rels = sample.write(tmp_path)

    def broken(*args):
        raise IsADirectoryError(21, "Is a directory", args[-2])

    monkeypatch.setattr(scale, "_features_partition", broken)
    rc = main(["features", "transients", "--data", str(cat), "--out", str(tmp_path / "f.parquet")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "part-00000.parquet" in err and "cannot be read" in err, err
    assert not (tmp_path / "f.parquet").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".f.parquet")]


# ---- property-based: arbitrary bytes into the readers -----------------------------------------------
_SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(HealthCheck))


def _loads_or_data_error(task, path, **kw):
    try:
        get_task(task).load(path, **kw)
    except DataError as e:
        assert str(path.parent) in str(e), str(e)


_csv_text = st.lists(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                                        st.integers(-5, 5).map(str), st.text(max_size=4)),
                              min_size=0, max_size=6), max_size=5)


@_SETTINGS
@given(rows=_csv_text, header=st.sampled_from(["LABEL,FLUX.1,FLUX.2", "FLUX.1,FLUX.2,FLUX.3", "id,class", "a"]))
def test_property_csv_tables(tmp_path_factory, rows, header):
    d = tmp_path_factory.mktemp("csv")
    p = d / "t.csv"
    p.write_text(header + "\n" + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8")
    from skysift.core import tables

    try:
        tables.read_csv(p, {h: __import__("pyarrow").float64() for h in header.split(",")})
    except DataError as e:
        assert str(p) in str(e)
    _loads_or_data_error("transits", p)


@_SETTINGS
@given(data=st.binary(max_size=600), keep=st.integers(0, 2000))
def test_property_npy(tmp_path_factory, data, keep):
    d = tmp_path_factory.mktemp("npy")
    p = d / "0abc.npy"
    np.save(p, np.zeros((6, 4, 8), np.float16))
    raw = p.read_bytes()
    p.write_bytes(raw[:keep] + data)  # a valid header, then anything
    _loads_or_data_error("technosignatures", p)


@_SETTINGS
@given(data=st.binary(max_size=400), keep=st.integers(0, 300), ext=st.sampled_from([".png", ".jpg"]))
def test_property_image(tmp_path_factory, data, keep, ext):
    import io

    from PIL import Image

    d = tmp_path_factory.mktemp("img")
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="PNG" if ext == ".png" else "JPEG")
    p = d / f"g{ext}"
    p.write_bytes(buf.getvalue()[:keep] + data)
    _loads_or_data_error("galaxies", p)


def test_an_output_path_the_system_refuses_is_one_error_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    rc = main(["simulate", "transits", "--n", "3", "--out", str(tmp_path / "file" / "sub")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "file/sub: not a directory" in err, err
