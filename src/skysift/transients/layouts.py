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

import os
import re
from pathlib import Path

import numpy as np

from ..core import readers
from ..core.data import TaskData
from ..core.tables import is_parquet as _is_parquet
from ..errors import ConfigError, DataError
from .data import CLASSES, META_COLUMNS, UNKNOWN_CLASS, LightCurves, class_name
from .metadata import (
    ALIASES,
    OBS_COLUMNS,
    _column_map,
    assemble,
    observation_arrays,
    read_header,
    read_metadata,
    read_table,
    sort_observations,
)

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
        broken = [p for p in path.rglob("*") if _strip_suffixes(p.name)[1] and not p.name.startswith(".")
                  and not p.is_file()]
        if broken:
            raise DataError(broken[0], "not a readable file (a directory, or a broken symbolic link)")
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


#: CSV size from which ``skysift predict`` streams; ``$SKYSIFT_STREAM_MIN_BYTES`` overrides it
#: (``0``: stream every sorted CSV, e.g. to resume a prediction of any size)
STREAM_MIN_BYTES = 512 * 2**20


def is_streamable(path: str | Path, *, min_bytes: int | None = None) -> bool:
    """Whether ``skysift predict`` should stream ``path`` with :func:`~skysift.transients.stream.
    predict_stream` instead of loading it: a CSV (gzip or not) light-curve file, or a folder
    holding one, of at least ``min_bytes`` on disk (default :data:`STREAM_MIN_BYTES`; gzip counted
    x5, its typical ratio on these files). Streaming needs the file sorted by ``object_id`` (the
    PLAsTiCC test files are)."""
    if min_bytes is None:
        env = os.environ.get("SKYSIFT_STREAM_MIN_BYTES", "").strip()
        try:
            min_bytes = int(env) if env else STREAM_MIN_BYTES
        except ValueError:
            raise ConfigError(f"SKYSIFT_STREAM_MIN_BYTES must be an integer, got {env!r}") from None
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


# ---- formats ------------------------------------------------------------------------------------
def _kind(path: Path) -> str | None:
    """``"catalogue"``, ``"unblinded"`` or ``"kaggle"`` by the files' column names; None when
    :func:`resolve` cannot tell (the reader then explains why)."""
    try:
        kind, files, meta_path = resolve(path)
        if kind == "catalogue":
            return "catalogue"
        return _layout(read_header(files[0]), read_header(meta_path))
    except DataError:
        return None


def _read(path, *, labelled: bool | None = None, **options) -> TaskData:
    # one reader for every layout: load() settles the layout itself (metadata= may change it)
    return load(path, labelled=labelled, **options)


readers.register_reader(
    "transients", "kaggle", identify=lambda p: _kind(p) not in ("unblinded", "catalogue"), read=_read,
    description="Kaggle PLAsTiCC pair: training_set.csv + training_set_metadata.csv (or test_set*)")
readers.register_reader(
    "transients", "unblinded", identify=lambda p: _kind(p) == "unblinded", read=_read,
    description="the unblinded PLAsTiCC release: plasticc_*_lightcurves[_NN].csv.gz + metadata")
readers.register_reader(
    "transients", "parquet", identify=lambda p: _kind(p) == "catalogue", read=_read,
    description="Parquet catalogue: observations with their object's metadata on every row")
