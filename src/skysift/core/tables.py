"""Reading CSV (plain or gzip) and Parquet tables with pyarrow, and saying where they are wrong.

pyarrow's typed CSV reader is fast but reports a bad value without its row; when it fails, the
file is read a second time (error path only) single-threaded and as strings, which locates a
ragged line or the first value that does not parse, so that the :class:`~skysift.errors.DataError`
names the file, the row (1-based data row, header not counted) and the column.
"""
from __future__ import annotations

import csv
import gzip
import zlib
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import DataError
from .validate import existing

#: spellings of a missing value accepted by default
NULLS = ["", "NA", "N/A", "n/a", "NULL", "null", "NaN", "nan", "-nan", "-NaN", "#N/A"]
_INT_RE = r"^\s*[+-]?\d+\s*$"
_FLOAT_RE = r"^\s*([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|infinity|nan))\s*$"


def is_parquet(path: Path) -> bool:
    return Path(path).name.lower().endswith((".parquet", ".pq"))


def first_line(path: str | Path, size: int = 65536) -> str | None:
    """The first line of a text file (gzip or not), or None when it is not UTF-8 text. For
    identifying formats by content: never raises."""
    path = Path(path)
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", newline="") as fh:
            return fh.readline(size)
    except (OSError, UnicodeDecodeError, EOFError, ValueError, zlib.error):
        return None


def unreadable(path: str | Path, error: BaseException) -> DataError:
    """The DataError for an OS-level failure while reading the bytes of ``path``: a gzip stream
    cut short (a half-finished download), an I/O error, a permission refused after opening."""
    text = (str(error).splitlines() or [""])[0][:160] or type(error).__name__
    if isinstance(error, (EOFError, gzip.BadGzipFile, zlib.error)) or "compress" in text.lower():
        return DataError(path, f"truncated or corrupt compressed file ({text})")
    if isinstance(error, PermissionError):
        return DataError(path, "permission denied")
    return DataError(path, f"cannot be read ({text})")


def csv_header(path: str | Path) -> list[str]:
    """Column names of a CSV file (gzip or not), stripped of padding."""
    path = existing(path, want="file")
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as fh:
            line = fh.readline()
    except UnicodeDecodeError as e:
        raise DataError(path, f"not a readable text CSV file ({e})") from None
    except (OSError, EOFError, zlib.error) as e:
        raise unreadable(path, e) from None
    if not line.strip():
        raise DataError(path, "empty file (no header line)")
    # the csv module, not split(","): writers such as pyarrow quote the column names
    return [h.strip() for h in next(csv.reader([line.rstrip("\r\n")]))]


def parquet_schema(path: str | Path):
    """The pyarrow schema of a Parquet file."""
    import pyarrow.parquet as pq

    path = existing(path, want="file")
    try:
        return pq.read_schema(path)
    except Exception as e:  # pyarrow raises several types for a non-Parquet file
        raise DataError(path, f"not a readable Parquet file ({str(e).splitlines()[0][:120]})") from None


def header(path: str | Path) -> list[str]:
    """Column names of a CSV (gzip or not) or Parquet file."""
    return list(parquet_schema(path).names) if is_parquet(Path(path)) else csv_header(path)


def read_strings(path: str | Path, *, null_values: list[str] | None = None):
    """A pyarrow Table of every column of a CSV file as text (names stripped of padding), for
    small id/label tables whose values the caller checks one by one. ``null_values`` (default
    none: an empty field is the empty string) become nulls."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = existing(path, want="file")
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as fh:
            raw = next(csv.reader(fh), None)
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(path, f"not a readable text CSV file ({e})") from None
    except (OSError, EOFError, zlib.error) as e:
        raise unreadable(path, e) from None
    if not raw:
        raise DataError(path, "empty file (no header line)")
    types = {h: pa.string() for h in raw}
    nulls = list(null_values or [])
    options = pacsv.ConvertOptions(column_types=types, null_values=nulls, strings_can_be_null=bool(nulls),
                                   quoted_strings_can_be_null=bool(nulls))
    try:
        table = pacsv.read_csv(path, convert_options=options)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        diagnose_csv(path, types, e, null_values=nulls)
    except (OSError, EOFError) as e:
        raise unreadable(path, e) from None
    return table.rename_columns([c.strip() for c in table.column_names])


def read_parquet(path: str | Path, columns: list[str] | None = None):
    """A pyarrow Table of ``columns`` (default all) of a Parquet file."""
    import pyarrow.parquet as pq

    parquet_schema(path)  # a file that is no Parquet at all is reported as such
    try:
        return pq.read_table(path, columns=columns)
    except Exception as e:  # pyarrow raises several types for a damaged file
        what = f"columns {columns}" if columns else "data"
        raise DataError(path, f"could not read Parquet {what} ({str(e).splitlines()[0][:120]})") from None


def read_csv(path: str | Path, types: Mapping[str, object], *, only_typed: bool = False,
             null_values: list[str] | None = None, strings_can_be_null: bool = False):
    """A pyarrow Table of a CSV file (``.gz`` decompressed) with ``types`` (column -> pyarrow
    type) forced; ``only_typed`` reads only those columns. Ragged rows and values that do not
    parse raise a DataError naming the row and column."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = existing(path, want="file")
    nulls = NULLS if null_values is None else null_values
    convert = pacsv.ConvertOptions(column_types=dict(types), null_values=nulls,
                                   strings_can_be_null=strings_can_be_null,
                                   include_columns=list(types) if only_typed else None)
    try:
        return pacsv.read_csv(path, convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        diagnose_csv(path, types, e, only_typed=only_typed, null_values=nulls)
    except UnicodeDecodeError:
        raise DataError(path, "not a text CSV file") from None
    except (OSError, EOFError) as e:
        raise unreadable(path, e) from None


def diagnose_csv(path: Path, types: Mapping[str, object], error: Exception, *, only_typed: bool = False,
                 null_values: list[str] | None = None) -> None:
    """Raise a DataError locating why pyarrow could not read ``path`` with ``types``."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    msg = str(error)
    if "Empty CSV file" in msg:
        raise DataError(path, "empty file (no header line)") from None
    bad: list = []

    def on_invalid(row):
        bad.append(row)
        return "error"

    strings = pacsv.ConvertOptions(column_types={c: pa.string() for c in types}, strings_can_be_null=True,
                                   include_columns=list(types) if only_typed else None,
                                   null_values=NULLS if null_values is None else null_values)
    try:
        # single-threaded: only then does pyarrow number the rows it hands to invalid_row_handler
        table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(use_threads=False),
                               parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
                               convert_options=strings)
    except (OSError, EOFError) as e:
        raise unreadable(path, e) from None
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        if bad:
            r = bad[0]
            where = f"row {r.number - 1}" if r.number else None  # number counts the header line
            raise DataError(path, f"ragged row: {r.actual_columns} fields where the header has "
                            f"{r.expected_columns}: {r.text[:80]!r}", where=where) from None
        raise DataError(path, f"could not be parsed as CSV ({str(e).splitlines()[0][:160]})") from None
    find_bad_value(path, table, {c: t for c, t in types.items() if c in table.column_names},
                   null_values=null_values)
    raise DataError(path, f"could not be parsed as CSV ({msg.splitlines()[0][:160]})") from None


def find_bad_value(path: Path, table, types: Mapping[str, object], row0: int = 0,
                   null_values: list[str] | None = None) -> None:
    """Raise a DataError naming the first value of the string columns of ``table`` that does not
    parse as its column's numeric type in ``types``; ``row0`` data rows precede ``table`` in
    its file. Vectorised regular expressions, not a Python loop over rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    nulls = pa.array(NULLS if null_values is None else null_values, pa.string())
    for name, t in types.items():
        if not (pa.types.is_integer(t) or pa.types.is_floating(t)):
            continue
        col = table.column(name)
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            continue
        integer = pa.types.is_integer(t)
        ok = pc.or_kleene(pc.is_null(col), pc.match_substring_regex(col, _INT_RE if integer else _FLOAT_RE,
                                                                     ignore_case=True))
        ok = pc.or_kleene(ok, pc.is_in(pc.utf8_trim_whitespace(col), value_set=nulls))
        ok = ok.to_numpy(zero_copy_only=False)
        if not ok.all():
            i = int(np.argmin(ok))
            kind = "non-integer" if integer else "non-numeric"
            raise DataError(path, f"{kind} value {col[i].as_py()!r} in column {name}",
                            where=f"row {row0 + i + 1}")


def cast_column(path: Path, table, name: str, target):
    """Column ``name`` of a (Parquet) table cast to ``target``; booleans become 0/1 and text that
    does not parse is reported by row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = table.column(name)
    if pa.types.is_boolean(col.type):
        col = pc.cast(col, pa.int64())
    if col.type == target:
        return col
    try:
        return pc.cast(col, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            find_bad_value(path, table.select([name]), {name: target})
        raise DataError(path, f"column {name} has type {col.type}, expected {target}") from None
