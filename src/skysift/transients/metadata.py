"""Reading and validating PLAsTiCC tables: observation rows, per-object metadata and targets,
and putting them together into a :class:`~skysift.core.data.TaskData` (see
:mod:`skysift.transients.layouts` for which files hold them).

Row numbers in messages count data rows from 1 (the header is not counted); Parquet rows likewise.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core import tables, validate
from ..core.data import TaskData
from ..errors import DataError
from .data import CLASSES, META_COLUMNS, UNKNOWN_CLASS, LightCurves, class_name

# the name users filter on since these messages lived in transients/io.py
log = logging.getLogger("skysift.transients.io")

#: observation columns (canonical names) and the dtypes they are parsed as
OBS_COLUMNS = ("object_id", "mjd", "passband", "flux", "flux_err", "detected")
#: column renames of the unblinded release
ALIASES = {"detected_bool": "detected", "ddf_bool": "ddf"}
#: targets that only occur in the PLAsTiCC test set (99 in Kaggle, 991..995 in the unblinded one)
TEST_ONLY_TARGETS = (UNKNOWN_CLASS, 991, 992, 993, 994, 995)
#: the metadata sentinel of the unblinded release for a missing value
SENTINEL = -9.0

_INT_COLUMNS = {"object_id", "passband", "detected", "ddf", "target"}


# ---- reading one table ------------------------------------------------------------------------
def _arrow_type(name: str):
    import pyarrow as pa

    return pa.int64() if name in _INT_COLUMNS else pa.float64()


def read_header(path: Path) -> list[str]:
    """Column names of a CSV (gzip or not) or Parquet file, stripped of padding."""
    return tables.header(path)


def find_bad_value(path: Path, table, columns: dict[str, str], row0: int = 0) -> None:
    """Raise a DataError naming the first value of ``table`` (all-string columns, raw name ->
    canonical name in ``columns``) that does not parse as its column's type."""
    tables.find_bad_value(path, table, {raw: _arrow_type(canon) for raw, canon in columns.items()}, row0)


def read_table(path: Path, columns: dict[str, str]):
    """Read the raw columns ``columns`` (raw name -> canonical name) of a CSV or Parquet file,
    typed (int64 for ids/flags/targets, float64 otherwise) and renamed to canonical names.
    Missing values become nulls. Raises DataError on ragged rows or non-numeric values."""
    import pyarrow as pa

    if tables.is_parquet(path):
        table = tables.read_parquet(path, columns=list(columns))
        return pa.table({canon: tables.cast_column(path, table, raw, _arrow_type(canon))
                         for raw, canon in columns.items()})
    types = {raw: _arrow_type(canon) for raw, canon in columns.items()}
    table = tables.read_csv(path, types, only_typed=True)
    return table.rename_columns([columns[c] for c in table.column_names])


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
        raise DataError(path, "missing object_id", where=validate.row(i))
    oid = oid_col.to_numpy()
    validate.unique_ids(oid, path, what="object_id", where="object {id}")
    order = np.argsort(oid, kind="stable")
    ids = oid[order]
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
