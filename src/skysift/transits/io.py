"""Loaders for the ``transits`` task: the Kaggle CSV layout and folders of Kepler/TESS FITS files.

Both return a :class:`~skysift.core.data.TaskData` whose ``x`` is a ``(N, L)`` float32 array of raw
fluxes (NaN marks missing cadences) and ``y`` is 1 for planet hosts, 0 otherwise.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..core import readers, tables, validate
from ..core.data import TaskData
from ..errors import DataError

CLASS_NAMES = ["no_planet", "planet"]
KAGGLE_LABELS = {1: 0, 2: 1}  # the Kaggle set's LABEL: 2 = confirmed planet host
ID_COLUMNS = ("id", "object_id", "kepid", "kic", "tic", "tic_id", "KEPID", "KIC", "TIC", "ID")
_FLUX_RE = re.compile(r"^FLUX[._](\d+)$", re.IGNORECASE)


def load(path: str | Path, *, labelled: bool | None = None, format: str | None = None,
         length: int | None = None) -> TaskData:
    """Read a Kaggle-layout CSV or Parquet file (or a folder of Parquet partitions), or a folder of
    FITS light curves (+ optional labels CSV); the format is recognised from the content."""
    return readers.read("transits", path, format=format, labelled=labelled,
                        **({} if length is None else {"length": length}))


# ---- Kaggle "Kepler labelled time series" --------------------------------------------------------
#: spellings of a missing flux in the Kaggle layout
_NULLS = ["", "NaN", "nan", "NA", "null"]


def load_kaggle_csv(path: str | Path, *, labelled: bool | None = None) -> TaskData:
    import pyarrow as pa

    path = Path(path)
    header = tables.csv_header(path)
    flux_cols, label_col, id_col = _kaggle_columns(path, header, labelled)
    # pyarrow's reader is strict about field counts (pandas pads short rows with NaN, silently)
    types = {h: pa.float32() for _, h in flux_cols}
    if label_col:
        types[label_col] = pa.float64()
    if id_col:
        types[id_col] = pa.string()
    table = tables.read_csv(path, types, null_values=_NULLS)
    return _kaggle_table(path, table.to_pandas(), flux_cols, label_col, id_col, labelled, "kaggle-csv")


def _kaggle_columns(path: Path, header: list[str], labelled: bool | None, kind: str = "CSV"):
    """The FLUX.1..FLUX.N columns (in order), the LABEL and id columns of a Kaggle-layout header."""
    flux_cols = [(int(m.group(1)), h) for h in header if (m := _FLUX_RE.match(h))]
    if not flux_cols:
        raise DataError(path, f"no FLUX.1..FLUX.N columns: not a Kepler labelled-time-series {kind}")
    numbers = [k for k, _ in flux_cols]
    if numbers != list(range(1, len(numbers) + 1)):
        missing = sorted(set(range(1, max(numbers) + 1)) - set(numbers))
        raise DataError(path, f"flux columns are not FLUX.1..FLUX.{max(numbers)} in order"
                        + (f" (missing FLUX.{missing[0]})" if missing else ""))
    label_col = next((h for h in header if h.upper() == "LABEL"), None)
    id_col = next((h for h in header if h in ID_COLUMNS), None)
    extra = set(header) - {h for _, h in flux_cols} - {label_col, id_col}
    if extra:
        raise DataError(path, f"unexpected column(s) {sorted(extra)[:5]}")
    if labelled and label_col is None:
        raise DataError(path, "no LABEL column: training and evaluation need labels (2 = planet, 1 = not)")
    return flux_cols, label_col, id_col


def load_kaggle_parquet(path: str | Path, *, labelled: bool | None = None) -> TaskData:
    """The Kaggle layout (optional LABEL and id columns, FLUX.1..FLUX.N) stored as Parquet: one
    partition of a catalogue."""
    import pyarrow as pa

    path = Path(path)
    schema = tables.parquet_schema(path)
    flux_cols, label_col, id_col = _kaggle_columns(path, list(schema.names), labelled, "Parquet file")
    for _, h in flux_cols + ([(0, label_col)] if label_col else []):
        t = schema.field(h).type
        if not (pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_null(t)):
            raise DataError(path, f"column {h} holds {t}, not numbers")
    table = tables.read_parquet(path)
    import pandas as pd

    def numbers(h: str, t) -> np.ndarray:  # nulls become NaN, as in the CSV reader
        return table.column(h).cast(t).to_numpy(zero_copy_only=False).astype(t.to_pandas_dtype())

    cols = {h: numbers(h, pa.float32()) for _, h in flux_cols}
    if label_col:
        cols[label_col] = numbers(label_col, pa.float64())
    if id_col:
        cols[id_col] = table.column(id_col).cast(pa.string()).to_numpy(zero_copy_only=False)
    df = pd.DataFrame(cols)
    return _kaggle_table(path, df, flux_cols, label_col, id_col, labelled, "kaggle-parquet")


def load_parquet_parts(parts: list[Path], *, source: Path, labelled: bool | None = None) -> TaskData:
    """A folder of Kaggle-layout Parquet partitions read as one dataset, in file-name order."""
    datas = [load_kaggle_parquet(p, labelled=labelled) for p in parts]
    lengths = {d.x.shape[1] for d in datas}
    if len(lengths) > 1:
        raise DataError(source, f"partitions have different numbers of flux columns: {sorted(lengths)}")
    has_y = {d.y is not None for d in datas}
    if len(has_y) > 1:
        raise DataError(source, "some partitions have a LABEL column and others do not")
    ids = np.concatenate([d.ids for d in datas])
    _, first = np.unique(ids, return_index=True)
    if len(first) < len(ids):
        dup = ids[np.setdiff1d(np.arange(len(ids)), first)[0]]
        raise DataError(source, f"duplicate id {dup!r} across partitions (give each object a unique id column)")
    return TaskData(ids=ids, x=np.concatenate([d.x for d in datas]),
                    y=np.concatenate([d.y for d in datas]) if datas[0].y is not None else None,
                    class_names=list(CLASS_NAMES), source=str(source), meta={"layout": "kaggle-parquet"})


def write_parquet_catalogue(folder: str | Path, flux: np.ndarray, labels: np.ndarray | None = None, *,
                            n_partitions: int = 4, ids: np.ndarray | None = None) -> Path:
    """Write ``flux`` (and class indices ``labels``, 1 = planet, stored as the Kaggle LABEL 2/1) as
    a catalogue of ``n_partitions`` Parquet files ``part-00000.parquet``... with an ``id`` column
    (``"1"``.. by default) so that ids stay unique across partitions."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..core.io import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    flux = np.asarray(flux, dtype=np.float32)
    ids = np.array([str(i + 1) for i in range(len(flux))]) if ids is None else np.asarray(ids, dtype=str)
    for k, idx in enumerate(np.array_split(np.arange(len(flux)), n_partitions)):
        cols = {"id": pa.array(ids[idx])}
        if labels is not None:
            cols["LABEL"] = pa.array(np.where(np.asarray(labels)[idx] == 1, 2, 1).astype(np.int64))
        for j in range(flux.shape[1]):
            cols[f"FLUX.{j + 1}"] = pa.array(flux[idx, j])
        with atomic_path(folder / f"part-{k:05d}.parquet") as tmp:
            pq.write_table(pa.table(cols), tmp)
    return folder


def _kaggle_table(path: Path, df, flux_cols, label_col, id_col, labelled, layout: str) -> TaskData:
    if len(df) == 0:
        raise DataError(path, "no rows")
    flux = df[[h for _, h in flux_cols]].to_numpy(np.float32)
    bad_inf = np.isinf(flux).any(axis=1)
    if bad_inf.any():
        raise DataError(path, "infinite flux value", where=f"row {int(np.argmax(bad_inf)) + 1}")
    all_nan = np.isnan(flux).all(axis=1)
    if all_nan.any():
        raise DataError(path, "every flux value is missing", where=f"row {int(np.argmax(all_nan)) + 1}")
    if id_col:
        ids = df[id_col].astype(str).str.strip().to_numpy()
        validate.unique_ids(ids, path)
    else:
        ids = np.array([str(i + 1) for i in range(len(df))])
    y = None
    if label_col is not None and labelled is not False:
        y = validate.class_indices(df[label_col].to_numpy(), KAGGLE_LABELS, path, column="LABEL",
                                   expected="1 (no planet) or 2 (planet)")
    return TaskData(ids=ids, x=flux, y=y, class_names=list(CLASS_NAMES), source=str(path),
                    meta={"layout": layout})


# ---- FITS light curves ----------------------------------------------------------------------------
def read_fits_light_curve(path: Path) -> tuple[str, np.ndarray, np.ndarray]:
    """(star id, time [d], relative flux) from a Kepler/TESS light-curve FITS file.

    Uses ``PDCSAP_FLUX`` (falling back to ``SAP_FLUX``), drops cadences with a non-zero quality
    flag, keeps NaN gaps, and divides by the median so quarters of one star can be compared.
    """
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False) as hdul:
            hdu = next((h for h in hdul if getattr(h, "columns", None) is not None
                        and "TIME" in h.columns.names), None)
            if hdu is None:
                raise DataError(path, "no light-curve table with a TIME column")
            names = hdu.columns.names
            flux_col = "PDCSAP_FLUX" if "PDCSAP_FLUX" in names else "SAP_FLUX" if "SAP_FLUX" in names else None
            if flux_col is None:
                raise DataError(path, "no PDCSAP_FLUX or SAP_FLUX column")
            data = hdu.data
            time = np.asarray(data["TIME"], dtype=np.float64)
            flux = np.asarray(data[flux_col], dtype=np.float64)
            qual_col = next((q for q in ("SAP_QUALITY", "QUALITY") if q in names), None)
            quality = np.asarray(data[qual_col]) if qual_col else np.zeros(len(time), int)
            header = hdul[0].header
            star = header.get("KEPLERID") or header.get("TICID") or header.get("OBJECT") or path.stem
    except DataError:
        raise
    except (OSError, ValueError, TypeError) as e:
        raise DataError(path, f"unreadable FITS file ({e})") from None
    keep = np.isfinite(time) & (quality == 0)
    time, flux = time[keep], flux[keep]
    if len(time) < 10 or np.isfinite(flux).sum() < 10:
        raise DataError(path, "fewer than 10 good cadences after removing flagged and NaN points")
    steps = np.diff(time)
    if (steps <= 0).any():
        # a damaged TIME column: placing samples on a cadence grid would index outside it
        k = int(np.argmax(steps <= 0))
        raise DataError(path, f"TIME does not increase ({time[k]:.6g} then {time[k + 1]:.6g} d)",
                        where=f"good cadence {k + 2}")
    if time[-1] - time[0] > 1e4:
        raise DataError(path, f"TIME spans {time[-1] - time[0]:.3g} d; a light curve spans years at most")
    flux = flux / np.nanmedian(flux)
    return str(star), time, flux


def to_uniform_grid(time: np.ndarray, flux: np.ndarray, cadence: float) -> np.ndarray:
    """Place samples on a uniform cadence grid; cadences with no sample become NaN."""
    idx = np.round((time - time[0]) / cadence).astype(np.int64)
    out = np.full(idx[-1] + 1, np.nan)
    out[idx] = flux
    return out


def fit_length(flux: np.ndarray, length: int) -> np.ndarray:
    """Crop (the window with the most valid cadences) or pad (NaN, filled later) to ``length``."""
    n = len(flux)
    if n == length:
        return flux
    if n < length:
        return np.concatenate([flux, np.full(length - n, np.nan)])
    valid = np.isfinite(flux).astype(np.int64)
    csum = np.concatenate([[0], np.cumsum(valid)])
    counts = csum[length:] - csum[:-length]
    start = int(np.argmax(counts))
    return flux[start:start + length]


def load_fits_files(files: list[Path], labels: dict[str, int] | None, source: Path,
                    labelled: bool | None, length: int | None) -> TaskData:
    from .simulate import CADENCE_DAYS, N_POINTS

    length = length or N_POINTS
    rows, ids, groups, ys = [], [], [], []
    used: set[str] = set()
    for f in files:
        star, time, flux = read_fits_light_curve(f)
        cadence = float(np.nanmedian(np.diff(time)))
        if not 0.0005 < cadence < 0.1:
            raise DataError(f, f"unexpected cadence {cadence * 1440:.1f} min")
        grid = to_uniform_grid(time, flux, CADENCE_DAYS if abs(cadence - CADENCE_DAYS) < 0.002 else cadence)
        rows.append(fit_length(grid, length).astype(np.float32))
        ids.append(f.name)
        groups.append(star)
        if labels is not None:
            key = next((k for k in (f.name, f.stem, star, star.lstrip("0")) if k in labels), None)
            if key is not None:
                used.add(key)
            if key is None:
                if labelled:
                    raise DataError(source, f"no label for {f.name} (star {star})")
                ys.append(-1)
            else:
                ys.append(labels[key])
    orphans = sorted(set(labels or {}) - used)
    if orphans and labelled is not False:
        # a labelled star whose file is missing is a download that went wrong, not a star to drop
        raise DataError(source, f"{len(orphans)} labelled star(s) have no FITS file, e.g. {orphans[0]!r}")
    y = None
    if labels is not None and labelled is not False:
        y = np.array(ys, dtype=np.int64)
        if (y < 0).any():
            y = None
    elif labelled:
        raise DataError(source, "no labels CSV found beside the FITS files (labels.csv with id,label)")
    return TaskData(ids=np.array(ids), x=np.stack(rows), y=y, class_names=list(CLASS_NAMES),
                    groups=np.array(groups), source=str(source), meta={"layout": "fits"})


def _read_labels_csv(path: Path) -> dict[str, int]:
    table = tables.read_strings(path, null_values=tables.NULLS)
    cols = {c.lower(): c for c in table.column_names}
    id_col = next((cols[c] for c in ("id", "filename", "file", "kepid", "kic", "tic", "object_id") if c in cols), None)
    lab_col = next((cols[c] for c in ("label", "target", "planet") if c in cols), None)
    if id_col is None or lab_col is None:
        raise DataError(path, "labels CSV needs an id column (id/filename/kepid) and a label column (label/target)")
    keys = [str(k).strip() for k in table.column(id_col).to_pylist()]
    validate.unique_ids(keys, path)
    out: dict[str, int] = {}
    for i, (k, v) in enumerate(zip(keys, table.column(lab_col).to_pylist())):
        try:
            lab = int(float(v))
        except (TypeError, ValueError):
            raise DataError(path, f"label {v!r} is not a number", where=validate.row(i)) from None
        if lab not in (0, 1, 2):
            raise DataError(path, f"unknown label {lab}: expected 0/1 (or Kaggle's 1/2 with 2 = planet)",
                            where=validate.row(i))
        out[k] = lab
    vals = set(out.values())
    if 2 in vals:  # Kaggle coding: 1 = no planet, 2 = planet
        if 0 in vals:
            raise DataError(path, "labels mix 0/1 and 1/2 codings")
        out = {k: KAGGLE_LABELS[v] for k, v in out.items()}
    return out


def load_fits_folder(folder: Path, *, labelled: bool | None = None, length: int | None = None) -> TaskData:
    files = sorted(p for p in folder.rglob("*") if p.name.lower().endswith((".fits", ".fits.gz", ".fit")))
    if not files:
        csvs = sorted(folder.glob("*.csv"))
        if len(csvs) == 1:
            return load_kaggle_csv(csvs[0], labelled=labelled)
        raise DataError(folder, "no FITS light curves (*.fits) and no single Kaggle CSV in this folder")
    label_file = next((folder / n for n in ("labels.csv", "train_labels.csv") if (folder / n).exists()), None)
    labels = _read_labels_csv(label_file) if label_file and labelled is not False else None
    return load_fits_files(files, labels, folder, labelled, length)


# ---- formats ------------------------------------------------------------------------------------
_FITS_SUFFIXES = (".fits", ".fits.gz", ".fit")


def _is_fits(path: Path) -> bool:
    """A FITS file (by name, or by its ``SIMPLE  =`` card), or any folder that is not a Parquet
    catalogue: a folder's FITS files are searched recursively, and one without any falls back to
    its single Kaggle CSV."""
    if path.is_dir():
        return not _is_parquet_folder(path)
    name = path.name.lower()
    if name.endswith(_FITS_SUFFIXES) or name.endswith(".parquet"):  # a known name decides
        return not name.endswith(".parquet")
    with open(path, "rb") as fh:
        return fh.read(9) == b"SIMPLE  ="


def _is_parquet_folder(path: Path) -> bool:
    return path.is_dir() and any(path.glob("*.parquet")) and not any(path.glob("*.fits*"))


def _is_parquet(path: Path) -> bool:
    if path.is_dir():
        return _is_parquet_folder(path)
    name = path.name.lower()
    if name.endswith(_FITS_SUFFIXES) or name.endswith(".parquet"):
        return name.endswith(".parquet")
    with open(path, "rb") as fh:
        return fh.read(4) == b"PAR1"


def _read_fits(path, *, labelled: bool | None = None, length: int | None = None) -> TaskData:
    path = validate.existing(path)
    if path.is_dir():
        return load_fits_folder(path, labelled=labelled, length=length)
    return load_fits_files([path], labels=None, source=path, labelled=labelled, length=length)


def _read_parquet(path, *, labelled: bool | None = None, length: int | None = None) -> TaskData:
    path = validate.existing(path)
    if path.is_dir():
        return load_parquet_parts(sorted(path.glob("*.parquet")), source=path, labelled=labelled)
    return load_kaggle_parquet(path, labelled=labelled)


def _read_kaggle_csv(path, *, labelled: bool | None = None, length: int | None = None) -> TaskData:
    return load_kaggle_csv(validate.existing(path, want="file"), labelled=labelled)


# every file that is neither FITS nor Parquet is read as the Kaggle CSV, whose reader explains
# what is wrong with its header
readers.register_reader("transits", "kaggle-csv", read=_read_kaggle_csv,
                        identify=lambda p: p.is_file() and not _is_fits(p) and not _is_parquet(p),
                        description="Kaggle 'Kepler labelled time series' CSV: LABEL, FLUX.1..FLUX.N")
readers.register_reader("transits", "parquet", identify=_is_parquet, read=_read_parquet,
                        description="the Kaggle layout as Parquet: one file or a folder of partitions")
readers.register_reader("transits", "fits", identify=_is_fits, read=_read_fits,
                        description="Kepler/TESS light-curve FITS: one file, or a folder (+ labels.csv)")
