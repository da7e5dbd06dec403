"""Read and validate PLAsTiCC light curves + metadata into a :class:`~skysift.core.data.TaskData`.

Layouts (detected from the column names, CSV gzip-compressed or not, or Parquet):

``kaggle``
    ``training_set.csv`` (``object_id,mjd,passband,flux,flux_err,detected``) +
    ``training_set_metadata.csv`` (``object_id,ra,decl,gal_l,gal_b,ddf,hostgal_specz,hostgal_photoz,
    hostgal_photoz_err,distmod,mwebv,target``); test files ``test_set.csv`` +
    ``test_set_metadata.csv`` have no ``target``. Missing values are ``nan``.
``unblinded``
    the post-challenge release: ``plasticc_train_lightcurves.csv.gz`` (``detected_bool``) +
    ``plasticc_train_metadata.csv.gz`` (``ddf_bool``, ``true_*`` columns, fields padded with spaces,
    ``-9`` for missing values); ``plasticc_test_lightcurves_NN.csv.gz`` are shards of the test set
    sharing one ``plasticc_test_metadata.csv.gz``.
``catalogue``
    one Parquet file (a partition written by :func:`write_parquet_catalogue`, or any file with the
    same columns) holding observations with their object's metadata repeated on every row, or a
    folder of such partitions.

``path`` is a folder holding one light-curve file + one metadata file (or catalogue partitions),
or the light-curve file itself; its metadata file is found beside it by the naming conventions
above (``X.csv`` -> ``X_metadata.csv``; ``X_lightcurves[_NN].csv.gz`` -> ``X_metadata.csv.gz``)
unless ``metadata=`` names it.

Only ``object_id``, the :data:`~skysift.transients.data.META_COLUMNS` and ``target`` are read
from the metadata: the unblinded ``true_*`` columns (true class, redshift, peak date ...) would
leak the answer and are never read.

Decisions on bad input (every one raises :class:`~skysift.errors.DataError` naming the file and the
row or object, except the two marked *fixed*):

* missing required column, empty file, ragged row, non-numeric value, NaN/inf/missing in
  ``mjd``/``flux``/``flux_err``, ``flux_err`` <= 0, passband outside 0..5, ``detected`` not 0/1;
* objects with observations but no metadata row, and metadata rows without observations (the
  latter allowed only for a shard ``plasticc_test_lightcurves_NN`` of the split test set, whose
  metadata file covers every shard);
* duplicate ``object_id`` rows in the metadata;
* two *different* observations of one object at the same ``mjd`` in the same passband;
* *fixed*: observations out of ``mjd`` order within an object are sorted (logged);
* *fixed*: exact duplicate observation rows (every field equal) are dropped with a logged
  warning and counted in ``meta["card"]["duplicate_rows_dropped"]``: they carry no information
  (typically a file concatenated twice) but would double an observation's weight in features;
* ``labelled=True`` without a ``target`` column; a missing or non-integer ``target``;
* a ``target`` outside the 14 training classes (:data:`~skysift.transients.data.CLASSES`) unless
  ``allow_unknown=True``: then the PLAsTiCC test-only targets 99 and 991..995 become class
  ``"99"`` (for evaluating open-set detection); any other value still fails. Training data must
  never silently gain a class the metric does not know.

Row numbers in messages count data rows from 1 (the header is row 0); Parquet rows likewise.
"""
from __future__ import annotations

import csv
import gzip
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.data import TaskData
from ..errors import DataError
from .data import CLASSES, META_COLUMNS, UNKNOWN_CLASS, LightCurves, class_name

log = logging.getLogger(__name__)

#: observation columns (canonical names) and the dtypes they are parsed as
OBS_COLUMNS = ("object_id", "mjd", "passband", "flux", "flux_err", "detected")
#: column renames of the unblinded release
ALIASES = {"detected_bool": "detected", "ddf_bool": "ddf"}
#: targets that only occur in the PLAsTiCC test set (99 in Kaggle, 991..995 in the unblinded one)
TEST_ONLY_TARGETS = (UNKNOWN_CLASS, 991, 992, 993, 994, 995)
#: the metadata sentinel of the unblinded release for a missing value
SENTINEL = -9.0

_INT_COLUMNS = {"object_id", "passband", "detected", "ddf", "target"}
_NULLS = ["", "NA", "N/A", "n/a", "NULL", "null", "NaN", "nan", "-nan", "-NaN", "#N/A"]
_INT_RE = r"^\s*[+-]?\d+\s*$"
_FLOAT_RE = r"^\s*([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|infinity|nan))\s*$"
_SHARD_RE = re.compile(r"^(?P<stem>.+)_lightcurves_\d+$")
_LC_RE = re.compile(r"^(?P<stem>.+)_lightcurves$")


def _strip_suffixes(name: str) -> tuple[str, str]:
    """``"a.csv.gz"`` -> ``("a", ".csv.gz")``."""
    lower = name.lower()
    for suf in (".csv.gz", ".csv", ".parquet", ".pq"):
        if lower.endswith(suf):
            return name[: -len(suf)], name[len(name) - len(suf):]
    return name, ""


def _is_table_file(p: Path) -> bool:
    return p.is_file() and _strip_suffixes(p.name)[1] != "" and not p.name.startswith(".")


def _is_parquet(p: Path) -> bool:
    return p.name.lower().endswith((".parquet", ".pq"))


# ---- reading one table ------------------------------------------------------------------------
def read_header(path: Path) -> list[str]:
    """Column names of a CSV (gzip or not) or Parquet file, stripped of padding."""
    if _is_parquet(path):
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except Exception as e:  # pyarrow raises several types for a non-Parquet file
            raise DataError(path, f"not a readable Parquet file ({e})") from None
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as fh:
            line = fh.readline()
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise DataError(path, f"not a readable text CSV file ({e})") from None
    if not line.strip():
        raise DataError(path, "empty file (no header line)")
    # the csv module, not split(","): writers such as pyarrow quote the column names
    return [h.strip() for h in next(csv.reader([line.rstrip("\r\n")]))]


def _arrow_type(name: str):
    import pyarrow as pa

    return pa.int64() if name in _INT_COLUMNS else pa.float64()


def find_bad_value(path: Path, table, columns: dict[str, str], row0: int = 0) -> None:
    """Raise a DataError naming the first value of ``table`` (all-string columns) that does not
    parse as its column's type. Vectorised regex over the strings; only called after the fast
    typed reader failed, so that the message names the row instead of echoing pyarrow's."""
    import pyarrow.compute as pc

    for raw, canon in columns.items():
        col = table.column(raw)
        pattern = _INT_RE if canon in _INT_COLUMNS else _FLOAT_RE
        ok = pc.or_kleene(pc.is_null(col), pc.match_substring_regex(col, pattern, ignore_case=True))
        ok = pc.or_kleene(ok, pc.is_in(pc.utf8_trim_whitespace(col), value_set=_nulls_array()))
        ok = ok.to_numpy(zero_copy_only=False)
        if not ok.all():
            i = int(np.argmin(ok))
            value = table.column(raw)[i].as_py()
            kind = "an integer" if canon in _INT_COLUMNS else "a number"
            raise DataError(path, f"value {value!r} in column {raw} is not {kind}", where=f"row {row0 + i + 1}")


def _nulls_array():
    import pyarrow as pa

    return pa.array(_NULLS, pa.string())


def read_table(path: Path, columns: dict[str, str]):
    """Read the raw columns ``columns`` (raw name -> canonical name) of a CSV or Parquet file,
    typed (int64 for ids/flags/targets, float64 otherwise) and renamed to canonical names.
    Missing values become nulls. Raises DataError on ragged rows or non-numeric values."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    if _is_parquet(path):
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path, columns=list(columns))
        except Exception as e:  # pyarrow raises several types for a damaged file
            raise DataError(path, f"could not read Parquet columns {list(columns)} ({e})") from None
        out = {}
        for raw, canon in columns.items():
            col = table.column(raw)
            target = _arrow_type(canon)
            if pa.types.is_boolean(col.type):
                col = pc.cast(col, pa.int64())
            try:
                out[canon] = pc.cast(col, target) if col.type != target else col
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                    find_bad_value(path, table.select([raw]), {raw: canon})
                raise DataError(path, f"column {raw} has type {col.type}, expected {target}") from None
        return pa.table(out)

    types = {raw: _arrow_type(canon) for raw, canon in columns.items()}
    convert = pacsv.ConvertOptions(column_types=types, include_columns=list(columns), null_values=_NULLS)
    try:
        table = pacsv.read_csv(path, convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        _diagnose_csv(path, columns, e)
    return table.rename_columns([columns[c] for c in table.column_names])


def _diagnose_csv(path: Path, columns: dict[str, str], error: Exception) -> None:
    """Turn pyarrow's failure into a DataError with a row number (error path only: re-reads the
    file single-threaded, which is what makes pyarrow report the row of a ragged line, and with
    string columns to locate a non-numeric value)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    msg = str(error)
    if "Empty CSV file" in msg:
        raise DataError(path, "empty file (no header line)") from None
    bad: list = []

    def on_invalid(row):
        bad.append(row)
        return "error"

    strings = pacsv.ConvertOptions(column_types={c: pa.string() for c in columns},
                                   include_columns=list(columns), strings_can_be_null=True,
                                   null_values=_NULLS)
    try:
        table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(use_threads=False),
                               parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
                               convert_options=strings)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        if bad:
            row = bad[0]
            where = f"row {row.number - 1}" if row.number else None
            raise DataError(path, f"ragged row: {row.actual_columns} fields where the header has "
                            f"{row.expected_columns}: {row.text[:80]!r}", where=where) from None
        raise DataError(path, f"could not be parsed as CSV ({e})") from None
    find_bad_value(path, table, columns)
    raise DataError(path, f"could not be parsed as CSV ({msg})") from None


def _column_map(path: Path, header: list[str], wanted: tuple[str, ...], required: tuple[str, ...]
                ) -> dict[str, str]:
    """raw name -> canonical name for the ``wanted`` columns present; fail on missing ``required``."""
    canon_of = {h: ALIASES.get(h, h) for h in header}
    mapping: dict[str, str] = {}
    for raw, canon in canon_of.items():
        if canon in wanted and canon not in mapping.values():
            mapping[raw] = canon
    missing = [c for c in required if c not in mapping.values()]
    if missing:
        alias = {v: k for k, v in ALIASES.items()}
        names = [c + (f" (or {alias[c]})" if c in alias else "") for c in missing]
        raise DataError(path, f"missing required column(s) {', '.join(names)}; the header has "
                        f"{', '.join(header[:12])}{' ...' if len(header) > 12 else ''}")
    return mapping


# ---- observations -----------------------------------------------------------------------------
def observation_arrays(path: Path, table, row0: int = 0) -> dict[str, np.ndarray]:
    """Validate an observations table (canonical column names) into flat numpy arrays.

    Returns ``object_id`` int64, ``mjd`` float64 [d], ``passband`` int8, ``flux``/``flux_err``
    float32 [FLUXCAL] and ``detected`` bool, all ``(M,)``, in file order; ``row0`` is the number of
    data rows before this table in its file (for messages)."""
    cols = {}
    for name in OBS_COLUMNS:
        col = table.column(name)
        if col.null_count:
            i = int(np.argmax(col.is_null().to_numpy(zero_copy_only=False)))
            raise DataError(path, f"missing or NaN value in column {name}", where=_where(row0, i, table))
        cols[name] = col.to_numpy()
    oid = cols["object_id"]
    for name in ("mjd", "flux", "flux_err"):
        bad = ~np.isfinite(cols[name])
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(path, f"non-finite {name} ({cols[name][i]})", where=_where(row0, i, oid=oid))
    bad = cols["flux_err"] <= 0
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(path, f"flux_err must be positive, got {cols['flux_err'][i]}",
                        where=_where(row0, i, oid=oid))
    pb = cols["passband"]
    bad = (pb < 0) | (pb > 5)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(path, f"unknown passband {int(pb[i])} (expected 0..5 for u g r i z y)",
                        where=_where(row0, i, oid=oid))
    det = cols["detected"]
    bad = (det != 0) & (det != 1)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(path, f"detected must be 0 or 1, got {int(det[i])}", where=_where(row0, i, oid=oid))
    return {"object_id": oid.astype(np.int64, copy=False), "mjd": cols["mjd"].astype(np.float64, copy=False),
            "passband": pb.astype(np.int8), "flux": cols["flux"].astype(np.float32),
            "flux_err": cols["flux_err"].astype(np.float32), "detected": det.astype(bool)}


def _where(row0: int, i: int, table=None, oid: np.ndarray | None = None) -> str:
    if oid is None and table is not None and "object_id" in table.column_names:
        v = table.column("object_id")[i].as_py()
        return f"row {row0 + i + 1}" + (f", object {v}" if v is not None else "")
    return f"row {row0 + i + 1}" + (f", object {int(oid[i])}" if oid is not None else "")


def sort_observations(path: Path, obs: dict[str, np.ndarray], card: dict) -> dict[str, np.ndarray]:
    """Sort by ``(object_id, mjd, passband)`` if needed, drop exact duplicate rows (logged) and
    fail on conflicting observations (same object, mjd and passband, different values)."""
    oid, mjd, pb = obs["object_id"], obs["mjd"], obs["passband"]
    n = len(oid)
    if n > 1:
        d_o, d_m, d_p = np.diff(oid), np.diff(mjd), np.diff(pb.astype(np.int16))
        in_order = (d_o > 0) | ((d_o == 0) & ((d_m > 0) | ((d_m == 0) & (d_p >= 0))))
        if not in_order.all():
            order = np.lexsort((pb, mjd, oid))
            obs = {k: v[order] for k, v in obs.items()}
            oid, mjd, pb = obs["object_id"], obs["mjd"], obs["passband"]
            card["resorted"] = True
            log.info("%s: observations were not sorted by (object_id, mjd); sorted them", path)
        same = (oid[1:] == oid[:-1]) & (mjd[1:] == mjd[:-1]) & (pb[1:] == pb[:-1])
        if same.any():
            exact = same & (obs["flux"][1:] == obs["flux"][:-1]) & (obs["flux_err"][1:] == obs["flux_err"][:-1]) \
                & (obs["detected"][1:] == obs["detected"][:-1])
            conflict = same & ~exact
            if conflict.any():
                i = int(np.argmax(conflict))
                raise DataError(path, f"two different observations at mjd {mjd[i]} in passband {int(pb[i])}",
                                where=f"object {int(oid[i])}")
            keep = np.concatenate([[True], ~exact])
            dropped = int(n - keep.sum())
            obs = {k: v[keep] for k, v in obs.items()}
            card["duplicate_rows_dropped"] = card.get("duplicate_rows_dropped", 0) + dropped
            first = int(oid[int(np.argmax(exact))])
            log.warning("%s: dropped %d exact duplicate observation row(s) (first in object %d)",
                        path, dropped, first)
    return obs


# ---- metadata ---------------------------------------------------------------------------------
@dataclass
class Metadata:
    """Per-object metadata sorted by ``object_id``: ids ``(N,)`` int64, META_COLUMNS ``(N,)``
    float64 (NaN when missing), ``target`` ``(N,)`` int64 or None; ``rows`` ``(N,)`` the 1-based
    data row of each object in the file (for messages)."""

    path: Path
    ids: np.ndarray
    columns: dict[str, np.ndarray]
    target: np.ndarray | None
    rows: np.ndarray
    missing_columns: list[str] = field(default_factory=list)
    sentinels: dict[str, int] = field(default_factory=dict)
    has_true_target: bool = False

    def index_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of ``ids`` in this metadata and a mask of those found."""
        pos = np.searchsorted(self.ids, ids)
        pos = np.minimum(pos, max(len(self.ids) - 1, 0))
        found = (self.ids[pos] == ids) if len(self.ids) else np.zeros(len(ids), bool)
        return pos, found


def read_metadata(path: Path, *, labelled: bool | None = None, table=None) -> Metadata:
    """Read ``object_id`` + META_COLUMNS (+ ``target`` unless ``labelled is False``) from a
    metadata file (or the already-read ``table`` with canonical names); ``-9`` sentinels -> NaN."""
    if table is None:
        header = read_header(path)
        mapping = _column_map(path, header, ("object_id", *META_COLUMNS, "target"), ("object_id",))
        if labelled is False:
            mapping = {k: v for k, v in mapping.items() if v != "target"}
        has_true = "true_target" in header
        table = read_table(path, mapping)
    else:
        has_true = False
    names = set(table.column_names)
    if labelled and "target" not in names:
        hint = (" (it has true_target, which skysift never reads: use the training file, "
                "whose target column is the label)" if has_true else "")
        raise DataError(path, f"no 'target' column: training and evaluation need labels{hint}")
    if table.num_rows == 0:
        raise DataError(path, "no data rows")
    oid_col = table.column("object_id")
    if oid_col.null_count:
        i = int(np.argmax(oid_col.is_null().to_numpy(zero_copy_only=False)))
        raise DataError(path, "missing object_id", where=f"row {i + 1}")
    oid = oid_col.to_numpy()
    order = np.argsort(oid, kind="stable")
    ids = oid[order]
    dup = ids[1:] == ids[:-1]
    if dup.any():
        k = int(np.argmax(dup))
        rows = np.sort(order[np.flatnonzero(oid[order] == ids[k])] + 1)
        n_dup = int(len(np.unique(ids[1:][dup])))
        raise DataError(path, f"duplicate object_id {int(ids[k])} in rows {', '.join(map(str, rows[:5]))}"
                        f" ({n_dup} duplicated id(s) in all)", where=f"object {int(ids[k])}")
    columns, sentinels, missing = {}, {}, []
    for c in META_COLUMNS:
        if c not in names:
            missing.append(c)
            continue
        v = table.column(c).to_numpy(zero_copy_only=False).astype(np.float64)[order]
        s = v == SENTINEL
        if s.any():
            sentinels[c] = int(s.sum())
            v[s] = np.nan
        columns[c] = v
    if missing:
        log.warning("%s: no column(s) %s; they are NaN for every object", path, ", ".join(missing))
    target = None
    if "target" in names and labelled is not False:
        col = table.column("target")
        if col.null_count:
            i = int(np.argmax(col.is_null().to_numpy(zero_copy_only=False)))
            raise DataError(path, "missing target", where=f"row {i + 1}, object {int(oid[i])}")
        target = col.to_numpy()[order].astype(np.int64)
    return Metadata(path, ids, columns, target, order + 1, missing, sentinels, has_true)


def encode_targets(meta: Metadata, targets: np.ndarray, pos: np.ndarray, *, allow_unknown: bool
                   ) -> tuple[np.ndarray, list[str]]:
    """Class indices ``(N,)`` and the class names present (numeric order) for PLAsTiCC targets.
    ``pos`` are the objects' positions in ``meta`` (for messages)."""
    targets = np.asarray(targets, dtype=np.int64)
    known = np.isin(targets, CLASSES)
    if not known.all():
        test_only = np.isin(targets, TEST_ONLY_TARGETS)
        bad = ~known & ~(test_only & allow_unknown)
        if bad.any():
            i = int(np.argmax(bad))
            values = sorted(set(int(t) for t in targets[bad]))
            hint = ("; targets 99 and 991..995 occur only in the PLAsTiCC test set and are read as the "
                    "unknown class only with allow_unknown=True (for evaluating open-set detection), "
                    "never for training" if np.isin(values, TEST_ONLY_TARGETS).all() else "")
            raise DataError(meta.path, f"target(s) {values[:8]} not among the 14 PLAsTiCC training "
                            f"classes {list(CLASSES)}{hint}",
                            where=f"row {int(meta.rows[pos[i]])}, object {int(meta.ids[pos[i]])}")
        targets = np.where(known, targets, UNKNOWN_CLASS)
    present = sorted(set(int(t) for t in np.unique(targets)))
    y = np.searchsorted(np.array(present, dtype=np.int64), targets).astype(np.int64)
    return y, [class_name(t) for t in present]


# ---- putting observations and metadata together ------------------------------------------------
def assemble(obs: dict[str, np.ndarray], meta: Metadata, *, lc_path: Path, labelled: bool | None,
             allow_unknown: bool = False, partial_metadata: bool = False, layout: str,
             source: str, card: dict | None = None) -> TaskData:
    """TaskData from observations sorted by ``(object_id, mjd)`` and their metadata.

    ``partial_metadata``: the metadata may hold objects without observations here (a shard of a
    split test set, or a streamed chunk); otherwise that is an error."""
    card = dict(card or {})
    oid = obs["object_id"]
    if len(oid) == 0:
        raise DataError(lc_path, "no observation rows")
    starts = np.concatenate([[0], np.flatnonzero(oid[1:] != oid[:-1]) + 1])
    ids = oid[starts]
    pos, found = meta.index_of(ids)
    if not found.all():
        lost = ids[~found]
        raise DataError(lc_path, f"{len(lost)} object(s) have observations but no row in the metadata "
                        f"{meta.path}: {', '.join(map(str, lost[:5]))}{' ...' if len(lost) > 5 else ''}",
                        where=f"object {int(lost[0])}")
    if not partial_metadata and len(ids) != len(meta.ids):
        extra = np.setdiff1d(meta.ids, ids, assume_unique=True)
        raise DataError(meta.path, f"{len(extra)} object(s) in the metadata have no observations in "
                        f"{lc_path}: {', '.join(map(str, extra[:5]))}{' ...' if len(extra) > 5 else ''}",
                        where=f"object {int(extra[0])}")
    offsets = np.concatenate([starts, [len(oid)]]).astype(np.int64)
    lc = LightCurves(offsets, obs["mjd"], obs["passband"], obs["flux"], obs["flux_err"], obs["detected"],
                     {c: v[pos] for c, v in meta.columns.items()})
    y, class_names = None, [class_name(c) for c in CLASSES]
    if meta.target is not None and labelled is not False:
        y, class_names = encode_targets(meta, meta.target[pos], pos, allow_unknown=allow_unknown)
        card["class_counts"] = {c: int(n) for c, n in zip(class_names, np.bincount(y, minlength=len(class_names)))}
    card.update(n_objects=int(len(ids)), n_observations=int(len(oid)), lightcurves=str(lc_path),
                metadata=str(meta.path))
    if meta.missing_columns:
        card["missing_meta_columns"] = list(meta.missing_columns)
    if meta.sentinels:
        card["sentinels_to_nan"] = dict(meta.sentinels)
    return TaskData(ids=ids, x=lc, y=y, class_names=class_names, source=source,
                    meta={"layout": layout, "card": card})


# ---- finding the files ------------------------------------------------------------------------
def metadata_candidates(lc_path: Path) -> list[Path]:
    """Metadata files the naming conventions put beside light-curve file ``lc_path``."""
    stem, _ = _strip_suffixes(lc_path.name)
    stems = []
    for rx in (_SHARD_RE, _LC_RE):
        m = rx.match(stem)
        if m:
            stems.append(m["stem"] + "_metadata")
    stems.append(stem + "_metadata")
    if stem.startswith("test_set"):  # Kaggle's test_set_sample.csv / test_set_batchN.csv
        stems.append("test_set_metadata")
    out = []
    for s in stems:
        for suf in (".csv.gz", ".csv", ".parquet", ".pq"):
            p = lc_path.with_name(s + suf)
            if p.exists() and p not in out:
                out.append(p)
    return out


def is_shard(lc_path: Path) -> bool:
    """A file ``X_lightcurves_NN``: one of several shards sharing one metadata file."""
    return bool(_SHARD_RE.match(_strip_suffixes(lc_path.name)[0]))


def _is_catalogue(header: list[str]) -> bool:
    canon = {ALIASES.get(h, h) for h in header}
    return {"mjd", "flux"} <= canon and bool(canon & {*META_COLUMNS, "target"})


def resolve(path: str | Path, metadata: str | Path | None = None) -> tuple[str, list[Path], Path | None]:
    """Decide what ``path`` holds: ``("pair", [lightcurves], metadata)`` or
    ``("catalogue", [partition files], None)``."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such file or directory")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if _is_table_file(p))
        parquet = sorted(p for p in path.rglob("*") if _is_table_file(p) and _is_parquet(p))
        if not files and parquet:
            files = parquet  # a (possibly hive-partitioned) catalogue folder
        if not files:
            raise DataError(path, "no CSV or Parquet files in this folder")
        metas = [p for p in files if "metadata" in p.name.lower()]
        lcs = [p for p in files if p not in metas]
        if len(lcs) > 1:
            # side files (the simulator's truth.csv, a sample submission) have no mjd column
            observed = [p for p in lcs if "mjd" in {ALIASES.get(h, h) for h in read_header(p)}]
            lcs = observed or lcs
        if metadata is None and not metas and lcs and all(_is_parquet(p) and _is_catalogue(read_header(p))
                                                         for p in lcs):
            return "catalogue", lcs, None
        if len(lcs) != 1:
            names = ", ".join(p.name for p in lcs[:6])
            raise DataError(path, f"expected one light-curve file in this folder, found {len(lcs)}"
                            + (f" ({names})" if lcs else "") + "; pass the file itself")
        lc = lcs[0]
        if metadata is None:
            if len(metas) != 1:
                raise DataError(path, f"expected one metadata file (name containing 'metadata') in this "
                                f"folder, found {len(metas)}; pass metadata=")
            metadata = metas[0]
        path = lc
    header = read_header(path)
    canon = {ALIASES.get(h, h) for h in header}
    if "mjd" not in canon and "object_id" in canon and canon & {*META_COLUMNS, "target"}:
        raise DataError(path, "this is a metadata file; pass the light-curve file (or the folder)")
    if metadata is None and _is_parquet(path) and _is_catalogue(header):
        return "catalogue", [path], None
    if metadata is None:
        cands = metadata_candidates(path)
        if not cands:
            raise DataError(path, "no metadata file found beside it (expected e.g. "
                            f"{_strip_suffixes(path.name)[0]}_metadata.csv); pass metadata=")
        metadata = cands[0]
    metadata = Path(metadata)
    if not metadata.exists():
        raise DataError(metadata, "no such metadata file")
    return "pair", [path], metadata


def _layout(header: list[str], meta_header: list[str] | None) -> str:
    names = set(header) | set(meta_header or [])
    if names & set(ALIASES):
        return "unblinded"
    return "kaggle"


def _fmt(p: Path) -> str:
    return "parquet" if _is_parquet(p) else ("csv.gz" if p.name.lower().endswith(".gz") else "csv")


# ---- public entry points ------------------------------------------------------------------------
def load(path: str | Path, *, labelled: bool | None = None, metadata: str | Path | None = None,
         allow_unknown: bool = False) -> TaskData:
    """Read + validate PLAsTiCC light curves and metadata (see the module docstring).

    Returns TaskData with ``ids`` ``(N,)`` int64 object ids (sorted), ``x`` a
    :class:`~skysift.transients.data.LightCurves`, ``y`` ``(N,)`` class indices into
    ``class_names`` (the targets present, numeric order) or None, and
    ``meta = {"layout": "kaggle"|"unblinded"|"catalogue", "card": {...}}``.
    ``labelled``: True requires ``target``, False ignores it, None reads it when present.
    """
    kind, files, meta_path = resolve(path, metadata)
    if kind == "catalogue":
        return load_catalogue(files, labelled=labelled, allow_unknown=allow_unknown, source=str(path))
    lc_path = files[0]
    header = read_header(lc_path)
    mapping = _column_map(lc_path, header, OBS_COLUMNS, OBS_COLUMNS)
    meta = read_metadata(meta_path, labelled=labelled)
    card: dict = {"format": _fmt(lc_path)}
    obs = observation_arrays(lc_path, read_table(lc_path, mapping))
    obs = sort_observations(lc_path, obs, card)
    return assemble(obs, meta, lc_path=lc_path, labelled=labelled, allow_unknown=allow_unknown,
                    partial_metadata=is_shard(lc_path), layout=_layout(header, read_header(meta_path)),
                    source=str(path), card=card)


#: column order and types of a catalogue partition (see write_parquet_catalogue)
def _catalogue_schema(with_target: bool):
    import pyarrow as pa

    fields = [("object_id", pa.int64()), ("mjd", pa.float64()), ("passband", pa.int8()),
              ("flux", pa.float32()), ("flux_err", pa.float32()), ("detected", pa.bool_()),
              *[(c, pa.float64()) for c in META_COLUMNS]]
    if with_target:
        fields.append(("target", pa.int64()))
    return pa.schema(fields)


def load_catalogue(files: list[Path], *, labelled: bool | None = None, allow_unknown: bool = False,
                   source: str = "") -> TaskData:
    """Read catalogue partition file(s): observations with their object's metadata on every row.
    Objects must be complete within a partition (an object id in two partitions fails)."""
    parts, seen_in = [], {}
    card: dict = {"format": "parquet", "partitions": len(files)}
    class_lists = []
    for f in files:
        header = read_header(f)
        mapping = _column_map(f, header, (*OBS_COLUMNS, *META_COLUMNS, "target"), OBS_COLUMNS)
        if labelled is False:
            mapping = {k: v for k, v in mapping.items() if v != "target"}
        table = read_table(f, mapping)
        if table.num_rows == 0:
            continue
        obs = sort_observations(f, observation_arrays(f, table), card)
        # per-object metadata = the object's first row; every other row must agree with it
        raw_oid = table.column("object_id").to_numpy()
        order = np.argsort(raw_oid, kind="stable")
        oid = raw_oid[order]
        firsts = np.concatenate([[0], np.flatnonzero(oid[1:] != oid[:-1]) + 1])
        mtab = table.drop_columns([c for c in OBS_COLUMNS if c != "object_id"]).take(order)
        for c in mtab.column_names:
            if c == "object_id":
                continue
            v = mtab.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
            ref = np.repeat(v[firsts], np.diff(np.concatenate([firsts, [len(v)]])))
            differ = ~((v == ref) | (np.isnan(v) & np.isnan(ref)))
            if differ.any():
                i = int(np.argmax(differ))
                raise DataError(f, f"column {c} differs between rows of one object", where=f"object {int(oid[i])}")
        for i in oid[firsts]:
            if int(i) in seen_in:
                raise DataError(f, f"object {int(i)} also appears in partition {seen_in[int(i)]}; objects must "
                                "be complete within one partition", where=f"object {int(i)}")
        seen_in.update({int(i): f.name for i in oid[firsts]})
        meta = read_metadata(f, labelled=labelled, table=mtab.take(firsts))
        td = assemble(obs, meta, lc_path=f, labelled=labelled, allow_unknown=allow_unknown,
                      layout="catalogue", source=source or str(f), card={})
        parts.append(td)
        class_lists.append(td.class_names if td.y is not None else None)
    if not parts:
        raise DataError(files[0] if len(files) == 1 else Path(source), "no observation rows")
    if len(parts) == 1:
        td = parts[0]
        td.meta["card"] = {**td.meta["card"], **card}
        return td
    ids = np.concatenate([p.ids for p in parts])
    order = np.argsort(ids, kind="stable")
    x = LightCurves.concat([p.x for p in parts]).take(order)
    y, class_names = None, [class_name(c) for c in CLASSES]
    if all(c is not None for c in class_lists):
        names = sorted({n for c in class_lists for n in c}, key=int)
        remap = [np.searchsorted(np.array(names, dtype=np.int64), np.array(c, dtype=np.int64)) for c in class_lists]
        y = np.concatenate([r[p.y] for r, p in zip(remap, parts)])[order]
        class_names = names
        card["class_counts"] = {c: int(n) for c, n in zip(names, np.bincount(y, minlength=len(names)))}
    card.update(n_objects=int(len(ids)), n_observations=int(x.n_observations), lightcurves=source)
    return TaskData(ids=ids[order], x=x, y=y, class_names=class_names, source=source,
                    meta={"layout": "catalogue", "card": card})


def is_streamable(path: str | Path, *, min_bytes: int = 512 * 2**20) -> bool:
    """Whether ``skysift predict`` should stream ``path`` with :func:`~skysift.transients.stream.
    predict_stream` instead of loading it: a CSV (gzip or not) light-curve file, or a folder
    holding one, of at least ``min_bytes`` on disk (gzip counted x5, its typical ratio on these
    files). Streaming needs the file sorted by ``object_id`` (the PLAsTiCC test files are)."""
    try:
        kind, files, _ = resolve(path)
    except DataError:
        return False
    if kind != "pair" or _is_parquet(files[0]):
        return False
    size = files[0].stat().st_size * (5 if files[0].name.lower().endswith(".gz") else 1)
    return size >= min_bytes


def labels_for_model(data: TaskData, model_classes: list[str] | tuple[str, ...]) -> np.ndarray:
    """``data``'s labels ``(N,)`` as indices into a trained model's ``model_classes`` (its class
    names in probability-column order), for evaluating at predict time. Fails, naming the classes
    and an object, when the data hold a class the model was not trained on (other than ``"99"``,
    which has no column of its own: the open-set score gives it the Kaggle ``class_99`` column,
    and its index here is ``len(model_classes)``)."""
    if data.y is None:
        raise DataError(data.source, "no labels to compare with the model's classes")
    names = np.asarray(data.class_names)[data.hard_labels]
    lookup = {str(c): j for j, c in enumerate(model_classes)}
    lookup.setdefault(class_name(UNKNOWN_CLASS), len(model_classes))
    absent = sorted({str(n) for n in np.unique(names)} - set(lookup), key=int)
    if absent:
        first = int(np.flatnonzero(np.isin(names, absent))[0])
        raise DataError(data.source, f"class(es) {absent} are not among the model's classes "
                        f"{list(model_classes)}", where=f"object {data.ids[first]}")
    return np.array([lookup[str(n)] for n in names], dtype=np.int64)
