"""Readers registered per task and format, chosen by what a path holds (after astropy's io registry).

Each task's io module registers its formats at import time::

    register_reader("transits", "kaggle-csv", identify=is_kaggle_csv, read=load_kaggle_csv,
                    description="Kaggle 'Kepler labelled time series' CSV")

and :func:`read` picks the one whose ``identify`` recognises the path (by its content: magic
bytes, header columns, folder layout), or the one named by ``format=`` when several would.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError, DataError
from .data import TaskData


@dataclass(frozen=True)
class Reader:
    format: str
    identify: Callable[[Path], bool]
    read: Callable[..., TaskData]
    description: str = ""


_READERS: dict[str, dict[str, Reader]] = {}
_PATH_OPTIONS: dict[str, Callable[[str | Path], tuple[Path, dict]]] = {}
#: the module whose import registers a task's readers
_MODULES = {"transits": "skysift.transits.io", "transients": "skysift.transients.io",
            "technosignatures": "skysift.technosignatures.io", "galaxies": "skysift.galaxies.io"}


def register_reader(task: str, format: str, *, identify: Callable[[Path], bool],
                    read: Callable[..., TaskData], description: str = "") -> None:
    """Register ``read(path, labelled=..., **options)`` for ``task`` files of ``format``.
    Re-registering a format replaces it (a module reloaded in a test)."""
    _READERS.setdefault(task, {})[format] = Reader(format, identify, read, description)


def register_path_options(task: str, split: Callable[[str | Path], tuple[Path, dict]]) -> None:
    """Let ``task`` paths carry reader options after ``#`` (``"gz1#scheme=three"``, for the CLI):
    ``split(path)`` returns the bare path and the options."""
    _PATH_OPTIONS[task] = split


def _readers(task: str) -> dict[str, Reader]:
    if task not in _READERS and task in _MODULES:
        importlib.import_module(_MODULES[task])
    if task not in _READERS:
        raise ConfigError(f"no readers for task {task!r}; tasks with readers: {', '.join(sorted(_READERS))}")
    return _READERS[task]


def formats(task: str) -> list[tuple[str, str]]:
    """``(format, description)`` of every reader of ``task``, in registration order."""
    return [(r.format, r.description) for r in _readers(task).values()]


def identify(task: str, path: str | Path) -> list[str]:
    """The formats of ``task`` whose ``identify`` recognises ``path``."""
    path = Path(path) if isinstance(path, str) else path
    out = []
    for r in _readers(task).values():
        try:
            if r.identify(path):
                out.append(r.format)
        except (OSError, ValueError, DataError):  # an unreadable file is simply not this format
            continue
    return out


def read(task: str, path: str | Path, *, format: str | None = None, labelled: bool | None = None,
         defaults: dict | None = None, **options: Any) -> TaskData:
    """Read ``path`` with the reader of ``format``, or of the one format that recognises it.

    ``labelled``: True requires labels, False ignores them, None reads them when present.
    ``options`` go to the reader (e.g. ``metadata=`` for transients, ``image_size=`` for galaxies).
    """
    readers = _readers(task)
    if task in _PATH_OPTIONS and isinstance(path, (str, Path)):
        path, from_path = _PATH_OPTIONS[task](path)
        options = {**from_path, **options}
    # a trained model's input settings (e.g. the crop it was trained on) come first; what the user
    # asked for, in the path or as options, wins
    options = {**(defaults or {}), **options}
    if format is not None:
        if format not in readers:
            raise ConfigError(f"unknown {task} format {format!r}; known: {', '.join(readers)}")
        return _checked(readers[format], path, labelled, options)
    if not isinstance(path, (str, Path)):  # e.g. a list of files: only a reader that says so takes it
        found = identify(task, path)
    else:
        from .validate import existing

        path = existing(path)
        found = identify(task, path)
    if len(found) == 1:
        return _checked(readers[found[0]], path, labelled, options)
    if not found:
        raise DataError(str(path), f"not a recognised {task} format; known: {', '.join(readers)}")
    raise ConfigError(f"{path} could be read as any of {', '.join(found)}: pass format= with one of them")


def _checked(reader: Reader, path: Any, labelled: bool | None, options: dict) -> TaskData:
    """``reader.read`` with what every reader owes its caller: labels when ``labelled=True``, and
    a DataError naming the file when the operating system or a decompressor fails mid-read (a
    half-downloaded file, a disk error) in a library call the reader did not wrap itself."""
    import zlib

    from .tables import unreadable

    try:
        data = reader.read(path, labelled=labelled, **options)
    except (OSError, EOFError, zlib.error) as e:
        raise unreadable(getattr(e, "filename", None) or path, e) from None
    if labelled and data.y is None:
        raise DataError(path, f"labels required (training, evaluation) but the {reader.format} input holds none")
    return data
