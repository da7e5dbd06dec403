"""Loaders for SETI Breakthrough Listen cadence snippets.

A *cadence snippet* is a ``(6, T, F)`` float array: scan × time step × frequency channel, scans in
cadence order ON, OFF, ON, OFF, ON, OFF (the competition's is ``(6, 273, 256)`` float16).

Accepted inputs of :func:`load`:

* the competition layout: a folder with ``train_labels.csv`` (``id,target``) and
  ``train/<first hex char of id>/<id>.npy``; or with ``test/<c>/<id>.npy`` (and optionally
  ``sample_submission.csv`` listing the test ids); or the ``train/`` / ``test/`` folder itself;
  or the labels CSV file itself;
* a flat folder of ``<id>.npy`` files (labels from a ``labels.csv`` / ``train_labels.csv`` beside them
  when present);
* Breakthrough Listen filterbank / HDF5 files (``.fil`` / ``.h5``, read with blimpy): a folder holding
  exactly six of them (cadence order = name order), or a sequence of six paths in cadence order.
  They are cut into ``(6, T, width)`` snippets along frequency.

``.npy`` snippets are never read into memory up front: ``x`` is a :class:`SnippetStack`, a lazy,
memory-mapped sequence (``len``, ``take(idx)``, ``[i]``) so a 60,000-snippet set (48 GB as float16)
does not need to fit in RAM. Headers (shape, dtype) are checked for every file at load time; values
(NaN/inf) are checked at load time for small sets and on every read otherwise, so a bad file is
always reported by name, never fed silently to a model.
"""
from __future__ import annotations

import hashlib
import os
import re
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..core import readers, tables, validate
from ..core.data import TaskData
from ..core.io import atomic_path, write_text
from ..errors import ConfigError, DataError

CLASS_NAMES = ["noise", "signal"]
N_SCANS = 6
ON_SCANS = (0, 2, 4)
OFF_SCANS = (1, 3, 5)
COMPETITION_SHAPE = (6, 273, 256)
LABEL_FILES = ("train_labels.csv", "labels.csv")
FILTERBANK_SUFFIXES = (".fil", ".h5")
#: at or below this many files every value is checked for NaN/inf when loading (a full read);
#: larger sets are checked file by file as they are read (see SnippetStack.__getitem__)
EAGER_VALUE_CHECK_MAX = 5000
_FLOAT_DTYPES = (np.dtype("float16"), np.dtype("float32"), np.dtype("float64"))


def read_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a ``.npy`` file from its header alone (no data read)."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = reader(fh)
            offset = fh.tell()
            size = os.fstat(fh.fileno()).st_size
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(path, f"not a readable .npy file ({e})") from None
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        raise DataError(path, "holds Python objects (pickled), not numbers")
    # a half-copied file has a complete header: only its length tells (numpy's own message,
    # "mmap length is greater than file size", would come at the first read, deep in training)
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size < expected:
        raise DataError(path, f"truncated .npy file: {size} bytes, its header {tuple(shape)} {dtype} "
                              f"needs {expected}")
    return tuple(shape), dtype


def check_snippet_header(path: Path, shape: tuple[int, ...], dtype: np.dtype,
                         expected: tuple[int, ...] | None) -> None:
    if dtype not in _FLOAT_DTYPES:
        raise DataError(path, f"wrong dtype {dtype}: cadence snippets must be float16/float32/float64")
    if len(shape) != 3 or shape[0] != N_SCANS:
        raise DataError(path, f"wrong shape {shape}: expected (6, time, frequency) scans in "
                              f"ON/OFF cadence order, e.g. {COMPETITION_SHAPE}")
    if min(shape) < 1:
        raise DataError(path, f"wrong shape {shape}: empty axis")
    if expected is not None and tuple(shape) != tuple(expected):
        raise DataError(path, f"wrong shape {shape}: the other snippets of this set are {tuple(expected)}")


def check_values(path: Path | str, a: np.ndarray, where: str | None = None) -> None:
    finite = np.isfinite(a)
    if not finite.all():
        s, t, f = np.argwhere(~finite)[0]
        kind = "NaN" if np.isnan(a[s, t, f]) else "inf"
        raise DataError(path, f"{int((~finite).sum())} non-finite values ({kind} at scan {s}, time {t}, "
                              f"channel {f})", where=where)


class SnippetStack:
    """A lazy, memory-mapped sequence of ``(6, T, F)`` snippets stored one ``.npy`` file each.

    ``stack[i]`` returns a float32 ``(6, T, F)`` array (read through a memory map, values checked);
    ``stack.take(idx)`` a new stack over a subset of the files; ``len(stack)``; ``stack.shape``.
    """

    def __init__(self, files: Sequence[Path], shape: tuple[int, int, int], dtype: str = "float16",
                 values_checked: bool = False):
        self.files = [Path(f) for f in files]
        self.shape_one = tuple(int(s) for s in shape)
        self.dtype = str(dtype)
        self.values_checked = values_checked

    def __len__(self) -> int:
        return len(self.files)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.files), *self.shape_one)

    def __getitem__(self, i: int) -> np.ndarray:
        path = self.files[int(i)]
        try:
            mm = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DataError(path, f"cannot read .npy file ({e})") from None
        if mm.shape != self.shape_one:
            raise DataError(path, f"wrong shape {mm.shape}: expected {self.shape_one} (file changed since loading?)")
        a = np.asarray(mm, dtype=np.float32)
        if not self.values_checked:
            check_values(path, a)
        return a

    def take(self, idx) -> SnippetStack:
        idx = np.asarray(idx, dtype=np.int64)
        return SnippetStack([self.files[i] for i in idx], self.shape_one, self.dtype, self.values_checked)

    def batch(self, idx) -> np.ndarray:
        """``(len(idx), 6, T, F)`` float32 array of the snippets at ``idx`` (read into memory)."""
        return np.stack([self[i] for i in np.asarray(idx, dtype=np.int64)]) if len(idx) else \
            np.zeros((0, *self.shape_one), np.float32)

    def __array__(self, dtype=None, copy=None):
        a = self.batch(np.arange(len(self)))
        return a if dtype is None else a.astype(dtype)


def snippet(x, i: int) -> np.ndarray:
    """Snippet ``i`` of ``x`` (a SnippetStack or an in-memory ``(N, 6, T, F)`` array) as float32."""
    return np.asarray(x[int(i)], dtype=np.float32)


# ---- labels and id lists ----------------------------------------------------------------------
_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")


def read_id_table(path: Path, *, need_target: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Read ``id,target`` (labels) or ``id[,target]`` (a sample submission). Validates every row."""
    table = tables.read_strings(path)
    columns = table.column_names
    if "id" not in columns:
        raise DataError(path, f"missing column 'id' (columns: {', '.join(columns)})")
    if need_target and "target" not in columns:
        raise DataError(path, f"missing column 'target' (columns: {', '.join(columns)})")
    ids = np.array([str(i).strip() for i in table.column("id").to_pylist()], dtype=str)
    for k, i in enumerate(ids):
        if not _ID_RE.match(i):
            raise DataError(path, f"bad id {i!r}", where=validate.row(k))
    validate.unique_ids(ids, path)
    if not need_target:
        return ids, None
    y = np.empty(len(ids), dtype=np.int64)
    for k, v in enumerate(table.column("target").to_pylist()):
        v = str(v).strip()
        try:
            value = float(v)
        except ValueError:
            value = None
        if value not in (0.0, 1.0):
            raise DataError(path, f"label {v!r} is not 0 or 1", where=f"{validate.row(k)} (id {ids[k]})")
        y[k] = int(value)
    return ids, y


def _npy_files(folder: Path) -> dict[str, Path]:
    """``id -> path`` for every ``.npy`` under ``folder`` (flat or one level of hex sub-folders)."""
    files: dict[str, Path] = {}
    for p in sorted(folder.glob("*.npy")) + sorted(folder.glob("*/*.npy")):
        if p.stem in files:
            raise DataError(p, f"id {p.stem!r} appears twice (also {files[p.stem]})")
        files[p.stem] = p
    return files


def _match(ids: np.ndarray, files: dict[str, Path], table: Path, folder: Path) -> list[Path]:
    missing = [i for i in ids if i not in files]
    if missing:
        k = int(np.flatnonzero(ids == missing[0])[0])
        raise DataError(table, f"{len(missing)} id(s) have no .npy file under {folder} "
                               f"(first: {missing[0]!r}, expected {folder}/{missing[0][0]}/{missing[0]}.npy)",
                        where=validate.row(k))
    extra = sorted(set(files) - set(ids))
    if extra:
        raise DataError(files[extra[0]], f"{len(extra)} .npy file(s) have no row in {table.name} "
                                         f"(first: id {extra[0]!r})")
    return [files[i] for i in ids]


def _stack(paths: list[Path], check: bool | None) -> SnippetStack:
    if not paths:
        raise DataError(None, "no .npy cadence snippets found")
    shape0, dtype0 = read_header(paths[0])
    check_snippet_header(paths[0], shape0, dtype0, None)
    for p in paths[1:]:
        shape, dtype = read_header(p)
        check_snippet_header(p, shape, dtype, shape0)
    eager = len(paths) <= EAGER_VALUE_CHECK_MAX if check is None else check
    if eager:
        stack = SnippetStack(paths, shape0, str(dtype0))
        for i in range(len(paths)):
            stack[i]  # reads through the memory map and checks the values
    return SnippetStack(paths, shape0, str(dtype0), values_checked=eager)


# ---- layouts ----------------------------------------------------------------------------------
def load(path, *, labelled: bool | None = None, format: str | None = None, check_values: bool | None = None,
         snippet_width: int = 256) -> TaskData:
    """Read cadence snippets from ``path`` (see the module docstring for the layouts).

    ``labelled=True`` requires labels, ``False`` ignores them, ``None`` reads them when present.
    ``check_values``: read every file to check for NaN/inf now (default: when ≤ 5000 files;
    otherwise each file is checked when read). ``snippet_width``: channels per snippet when cutting
    filterbank files.
    """
    return readers.read("technosignatures", path, format=format, labelled=labelled,
                        check_values=check_values, snippet_width=snippet_width)


def load_npy_folder(path: Path, *, labelled: bool | None = None, check_values: bool | None = None) -> TaskData:
    """The competition layout (labels or sample submission + ``train/``/``test/``) or a flat folder."""
    labels = next((path / n for n in LABEL_FILES if (path / n).is_file()), None)
    if labels is None and path.name in ("train", "test"):  # the train/ or test/ folder itself
        labels = next((path.parent / n for n in LABEL_FILES if (path.parent / n).is_file()), None) \
            if path.name == "train" else None
        folder = path
    elif labels is not None:
        folder = path / "train" if (path / "train").is_dir() else path
    elif (path / "test").is_dir() and not (path / "train").is_dir():
        folder = path / "test"
    elif (path / "train").is_dir():
        raise DataError(path, "has a train/ folder but no train_labels.csv beside it")
    else:
        folder = path
    if labelled and labels is None:
        raise DataError(path, "labels required but no train_labels.csv / labels.csv found")
    files = _npy_files(folder)
    if labels is not None and labelled is not False:
        ids, y = read_id_table(labels, need_target=True)
        paths = _match(ids, files, labels, folder)
        return _finish(ids, _stack(paths, check_values), y, path, "competition-train")
    if labels is not None:  # labels ignored, but they still name the snippets of this set
        ids, _ = read_id_table(labels, need_target=True)
        paths = _match(ids, files, labels, folder)
        return _finish(ids, _stack(paths, check_values), None, path, "competition-train")
    submission = next((p for p in (folder / "sample_submission.csv", folder.parent / "sample_submission.csv",
                                   path / "sample_submission.csv") if p.is_file()), None)
    if submission is not None:
        ids, _ = read_id_table(submission, need_target=False)
        paths = _match(ids, files, submission, folder)
        return _finish(ids, _stack(paths, check_values), None, path, "competition-test")
    if not files:
        raise DataError(path, "no .npy cadence snippets, labels CSV or filterbank files found")
    ids = np.array(list(files))
    return _finish(ids, _stack(list(files.values()), check_values), None, path, "npy-folder")


def _load_table_file(path: Path, labelled: bool | None) -> TaskData:
    folder = path.parent / "train" if (path.parent / "train").is_dir() else path.parent
    need = labelled is not False
    ids, y = read_id_table(path, need_target=need)
    paths = _match(ids, _npy_files(folder), path, folder)
    return _finish(ids, _stack(paths, None), y if need else None, path, "competition-train")


def _finish(ids, x, y, source: Path, layout: str) -> TaskData:
    return TaskData(ids=np.asarray(ids, dtype=str), x=x, y=y, class_names=list(CLASS_NAMES),
                    source=str(source), meta={"layout": layout, "snippet_shape": list(x.shape[1:])})


# ---- writing -----------------------------------------------------------------------------------
def content_id(x: np.ndarray, label: int) -> str:
    """A 15-hex-digit snippet id from what is written (the float16 pixels, their shape and the
    label): two sets share an id only for the same snippet, so features cached by id, or ids
    compared between a small and a larger build of a set, cannot mix different data (random ids
    drawn from a build's seed repeated across builds of other sizes and other backgrounds)."""
    a = np.ascontiguousarray(np.asarray(x).astype(np.float16))
    h = hashlib.blake2b(digest_size=8)
    h.update(repr((a.shape, int(label))).encode())
    h.update(a.tobytes())
    return h.hexdigest()[:15]


def with_content_ids(rows: Iterable[tuple[np.ndarray, int, dict]]):
    """``(x, label, truth)`` rows → ``(id, x, label, truth)`` with :func:`content_id` ids; a
    repeated snippet (a plain injection can draw the same background variant twice) gets ``-2``,
    ``-3`` … after its id, so ids stay unique within a set and still name the same data."""
    seen: dict[str, int] = {}
    for x, y, t in rows:
        sid = content_id(x, y)
        seen[sid] = seen.get(sid, 0) + 1
        yield (sid if seen[sid] == 1 else f"{sid}-{seen[sid]}"), x, y, t


def write_cadence_folder(out, rows: Iterable[tuple[str, np.ndarray, int, dict]], truth_fields: Sequence[str],
                         formats: dict[str, str] | None = None) -> Path:
    """Write labelled snippets in the competition layout: ``out/train/<first char of id>/<id>.npy``
    (float16, each written atomically as it comes, so a generator of rows never holds the set in
    memory), ``out/train_labels.csv`` (``id,target``) and ``out/truth.csv`` (``id,target`` then
    ``truth_fields`` of each row's truth dict, formatted by ``formats[field]`` when given).
    ``rows``: ``(id, (6, T, F) array, label, truth)``. Returns ``out``."""
    out = Path(out)
    formats = formats or {}
    labels, truth = ["id,target"], [",".join(("id", "target", *truth_fields))]
    seen: set[str] = set()
    for sid, x, y, t in rows:
        if not _ID_RE.match(sid) or sid in seen:
            raise ConfigError(f"snippet id {sid!r} is {'a duplicate' if sid in seen else 'not a plain file name'}")
        seen.add(sid)
        with atomic_path(out / "train" / sid[0] / f"{sid}.npy") as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, np.asarray(x).astype(np.float16))
        labels.append(f"{sid},{int(y)}")
        truth.append(",".join([sid, str(int(y))] + [format(t[f], formats.get(f, "")) for f in truth_fields]))
    write_text(out / "train_labels.csv", "\n".join(labels) + "\n")
    write_text(out / "truth.csv", "\n".join(truth) + "\n")
    return out


# ---- filterbank / HDF5 --------------------------------------------------------------------------
def read_filterbank(path: Path) -> tuple[np.ndarray, dict]:
    """``(T, F)`` float32 power of one Breakthrough Listen file (first polarisation) and its header."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from blimpy import Waterfall

            wf = Waterfall(str(path))
        except Exception as e:  # blimpy raises many kinds (ValueError, OSError, KeyError...) on bad files
            raise DataError(path, f"cannot read filterbank/HDF5 file with blimpy ({type(e).__name__}: {e})") from None
    data = np.asarray(wf.data, dtype=np.float32)
    if data.ndim == 3:
        data = data[:, 0, :]
    header = {k: (v.item() if hasattr(v, "item") else v) for k, v in wf.header.items()
              if k in ("fch1", "foff", "tsamp", "nchans", "source_name", "tstart")}
    return data, header


def load_filterbank(paths: Sequence[Path], *, labelled: bool | None = None, width: int = 256) -> TaskData:
    """Cut six filterbank/HDF5 files (ON, OFF, ON, OFF, ON, OFF) into ``(6, T, width)`` snippets.

    Files must share the frequency axis (``fch1``, ``foff``, ``nchans``); time steps are cropped to
    the shortest scan. Snippet ids are ``<first file stem>_<first channel>``.
    """
    if labelled:
        raise DataError(paths[0] if paths else None, "filterbank cadences carry no labels")
    if len(paths) != N_SCANS:
        raise DataError(paths[0].parent if paths else None,
                        "a cadence needs exactly six filterbank/HDF5 files (ON, OFF, ON, OFF, ON, OFF), "
                        f"got {len(paths)}")
    if width < 8:
        raise DataError(None, f"snippet width must be >= 8 channels, got {width}")
    scans, headers = [], []
    for p in paths:
        d, h = read_filterbank(validate.existing(p, want="file"))
        check_values(p, d[None])
        scans.append(d)
        headers.append(h)
    h0 = headers[0]
    for p, h in zip(paths[1:], headers[1:]):
        for key in ("nchans", "fch1", "foff"):
            tolerance = 1e-9 * max(1.0, abs(float(h0[key]))) if key in h0 else 0.0
            if key in h0 and not np.isclose(float(h[key]), float(h0[key]), rtol=0, atol=tolerance):
                raise DataError(p, f"frequency axis differs from {Path(paths[0]).name}: {key} {h[key]} vs {h0[key]}")
    t = min(s.shape[0] for s in scans)
    n_chan = scans[0].shape[1]
    if n_chan < width:
        raise DataError(paths[0], f"{n_chan} channels, fewer than the snippet width {width}")
    cadence = np.stack([s[:t] for s in scans])  # (6, T, C)
    starts = np.arange(0, n_chan - width + 1, width)
    x = np.stack([cadence[:, :, c:c + width] for c in starts]).astype(np.float32)
    stem = Path(paths[0]).stem
    return TaskData(ids=np.array([f"{stem}_{c}" for c in starts]), x=x, y=None, class_names=list(CLASS_NAMES),
                    source=str(Path(paths[0]).parent),
                    meta={"layout": "filterbank", "snippet_shape": list(x.shape[1:]),
                          "files": [str(p) for p in paths], "fch1": h0.get("fch1"), "foff": h0.get("foff"),
                          "tsamp": h0.get("tsamp")})


# ---- formats ------------------------------------------------------------------------------------
_MAGIC = (b"\x89HDF\r\n\x1a\n", b"\x0c\x00\x00\x00HEADER_START")  # HDF5, SIGPROC filterbank


def _is_filterbank_file(path: Path) -> bool:
    if path.suffix.lower() in (*FILTERBANK_SUFFIXES, ".npy", ".csv"):  # a known name decides
        return path.suffix.lower() in FILTERBANK_SUFFIXES
    with open(path, "rb") as fh:
        return fh.read(16).startswith(_MAGIC)


def _is_filterbank(path) -> bool:
    """Six paths, a folder of filterbank/HDF5 files (and no snippets), or one such file (which the
    reader refuses: one scan is not a cadence)."""
    if isinstance(path, (list, tuple)):
        return True
    if path.is_dir():
        return (any(p.suffix.lower() in FILTERBANK_SUFFIXES for p in path.iterdir())
                and not any(path.glob("*.npy")) and not (path / "train").is_dir())
    return path.is_file() and _is_filterbank_file(path)


def _is_npy(path) -> bool:
    if not isinstance(path, Path) or not path.is_file():
        return False
    if path.suffix.lower() in (*FILTERBANK_SUFFIXES, ".npy", ".csv"):
        return path.suffix.lower() == ".npy"
    with open(path, "rb") as fh:
        return fh.read(6) == b"\x93NUMPY"


def _read_filterbank(path, *, labelled: bool | None = None, check_values: bool | None = None,
                     snippet_width: int = 256) -> TaskData:
    if isinstance(path, (list, tuple)):
        return load_filterbank([Path(p) for p in path], labelled=labelled, width=snippet_width)
    path = validate.existing(path)
    if path.is_file():
        raise DataError(path, "a single filterbank file is not a cadence: give a folder with six "
                              ".fil/.h5 files (ON, OFF, ON, OFF, ON, OFF in name order) or six paths")
    filterbanks = sorted(p for p in path.iterdir() if p.suffix.lower() in FILTERBANK_SUFFIXES)
    return load_filterbank(filterbanks, labelled=labelled, width=snippet_width)


def _read_npy(path, *, labelled: bool | None = None, check_values: bool | None = None,
              snippet_width: int = 256) -> TaskData:
    path = validate.existing(path, want="file")
    return _finish([path.stem], _stack([path], check_values), None, path, "single")


def _read_labels_csv(path, *, labelled: bool | None = None, check_values: bool | None = None,
                     snippet_width: int = 256) -> TaskData:
    return _load_table_file(validate.existing(path, want="file"), labelled)


def _read_npy_folder(path, *, labelled: bool | None = None, check_values: bool | None = None,
                     snippet_width: int = 256) -> TaskData:
    return load_npy_folder(validate.existing(path, want="dir"), labelled=labelled, check_values=check_values)


readers.register_reader(
    "technosignatures", "npy-folder", read=_read_npy_folder,
    identify=lambda p: isinstance(p, Path) and p.is_dir() and not _is_filterbank(p),
    description="competition layout (train_labels.csv + train/<c>/<id>.npy, or test/) or a flat .npy folder")
readers.register_reader("technosignatures", "npy", identify=_is_npy, read=_read_npy,
                        description="one (6, T, F) cadence snippet .npy file")
readers.register_reader(
    "technosignatures", "labels-csv", read=_read_labels_csv,
    identify=lambda p: isinstance(p, Path) and p.is_file() and p.suffix.lower() == ".csv",
    description="the competition's train_labels.csv, its snippets under train/ beside it")
readers.register_reader("technosignatures", "filterbank", identify=_is_filterbank, read=_read_filterbank,
                        description="six Breakthrough Listen .fil/.h5 files (a folder or six paths)")
