"""Checks every task's loader makes, written once so that they say the same thing the same way.

Row convention: ``row N`` is the 1-based *data* row (the header is not counted), so a message
points at the N-th object of a table whether it came from CSV or Parquet. Functions take the
position ``i`` (0-based) of an entry and the optional ``rows`` array mapping positions to file
rows (when a table was sorted or concatenated before the check).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import DataError


def row(i: int, rows: Sequence[int] | np.ndarray | None = None) -> str:
    """``"row N"`` for position ``i`` (0-based) of a table, or for ``rows[i]`` when given."""
    return f"row {int(rows[i]) if rows is not None else int(i) + 1}"


def existing(path: str | Path, *, want: str = "any") -> Path:
    """``path`` as a Path if it exists (and is a file / folder when ``want`` is ``"file"`` /
    ``"dir"``; a file must not be empty)."""
    path = Path(path)
    if not path.exists():
        if path.is_symlink():  # exists() follows links: a loop or a dangling link reads as missing
            raise DataError(path, "symbolic link to nothing (dangling, or a loop)")
        raise DataError(path, "no such file or directory")
    if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        raise DataError(path, "permission denied")
    if want == "file":
        if path.is_dir():
            raise DataError(path, "is a directory, expected a file")
        if path.stat().st_size == 0:
            raise DataError(path, "empty file")
    elif want == "dir" and not path.is_dir():
        raise DataError(path, "is a file, expected a directory")
    return path


def first(mask: np.ndarray) -> int | None:
    """Position of the first True in ``mask``, or None."""
    mask = np.asarray(mask, dtype=bool)
    return int(np.argmax(mask)) if mask.any() else None


def unique_ids(ids: np.ndarray | Sequence, path: str | Path | None, *, what: str = "id",
               rows: Sequence[int] | np.ndarray | None = None, where: str | None = None) -> None:
    """Fail on the first repeated id, naming it and the rows holding it (at most five).

    ``rows``: file row of each entry (default: position + 1); ``where``: location to report
    instead of the second occurrence's row, ``{id}`` standing for the id (e.g. ``"object {id}"``)."""
    ids = np.asarray(ids)
    if len(ids) < 2:
        return
    order = np.argsort(ids, kind="stable")
    ordered = ids[order]
    dup = ordered[1:] == ordered[:-1]
    if not dup.any():
        return
    # the id whose second occurrence comes first in the file, so the message follows reading order
    second = order[1:][dup]
    k = int(second.min())
    value = ids[k]
    at = np.flatnonzero(ids == value)
    numbers = [int(rows[int(i)]) if rows is not None else int(i) + 1 for i in at]
    n_dup = len(np.unique(ordered[1:][dup]))
    more = f" ({n_dup} duplicated {what}s in all)" if n_dup > 1 else ""
    shown = ", ".join(map(str, numbers[:5])) + (" ..." if len(numbers) > 5 else "")
    label = value.item() if hasattr(value, "item") else value
    raise DataError(path, f"duplicate {what} {label!r} in rows {shown}{more}",
                    where=where.format(id=label) if where else row(k, rows))


def finite(values: np.ndarray, path: str | Path | None, *, what: str,
           rows: Sequence[int] | np.ndarray | None = None, where: str | None = None) -> None:
    """Fail on the first row of ``values`` (1-D or 2-D, one row per object) holding NaN or inf."""
    values = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.ndim > 1:
        bad = bad.reshape(len(bad), -1).any(axis=1)
    i = first(bad)
    if i is not None:
        raise DataError(path, f"missing or non-finite {what}", where=where or row(i, rows))


def class_indices(values: Sequence[Any] | np.ndarray, mapping: Mapping[Any, int], path: str | Path | None,
                  *, column: str, expected: str | None = None,
                  rows: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """``(N,)`` int64 class indices of the labels ``values`` through ``mapping`` (label -> index).
    Fails on the first missing or unknown label, naming the row, the column and what is expected."""
    values = list(values)
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            raise DataError(path, f"missing {column}", where=row(i, rows))
        try:
            out[i] = mapping[v]
        except (KeyError, TypeError):
            shown = f"{v:g}" if isinstance(v, (float, np.floating)) else repr(v)
            hint = expected or ", ".join(map(str, mapping))
            raise DataError(path, f"unknown {column} {shown}: expected {hint}", where=row(i, rows)) from None
    return out
