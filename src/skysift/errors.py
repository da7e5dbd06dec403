"""Exceptions that carry a user-facing message.

Every problem with the user's input is raised as a :class:`SkysiftError` subclass whose message
names the file, the row or object, and the problem. The CLI prints it as one ``error:`` line and
exits with code 2; nothing deeper (pandas, torch) may leak a traceback for bad input.
"""
from __future__ import annotations

import re
from pathlib import Path

# torch re-raises an exception from a DataLoader worker process as ``type(e)(text)``, the text being
# "Caught DataError in DataLoader worker process 0.\nOriginal Traceback ...": the message the user
# must see is the traceback's last line
_WORKER_TRACEBACK = re.compile(r"^Caught \w+ in DataLoader worker process \d+\.\nOriginal Traceback")
_LAST_LINE = re.compile(r"^skysift\.errors\.\w+: (.*)\Z", re.M | re.S)


def _from_worker(text: str) -> str | None:
    """The original message inside torch's DataLoader-worker report ``text``, or None."""
    if not _WORKER_TRACEBACK.match(text):
        return None
    found = list(_LAST_LINE.finditer(text))
    return found[-1].group(1).strip() if found else None


class SkysiftError(Exception):
    """Base class for errors caused by the user's input or configuration (CLI exit code 2)."""

    def __init__(self, *args):
        if len(args) == 1 and isinstance(args[0], str):
            args = (_from_worker(args[0]) or args[0],)
        super().__init__(*args)


class DataError(SkysiftError):
    """Bad input data.

    Parameters
    ----------
    path : file or folder the problem was found in.
    problem : what is wrong, in words.
    where : optional location inside the file, e.g. ``"row 17"`` or ``"object 615"``.
    """

    def __init__(self, path: str | Path | None, problem: str | None = None, where: str | None = None):
        if problem is None:  # rebuilt from one message (torch's DataLoader workers do this)
            text = str(path)
            path, problem = None, _from_worker(text) or text
        self.path = None if path is None else str(path)
        self.problem = problem
        self.where = where
        parts = [p for p in (self.path, where) if p]
        prefix = ", ".join(parts)
        super().__init__(f"{prefix}: {problem}" if prefix else problem)

    def __reduce__(self):
        # raised in Dask or DataLoader worker processes and re-raised in the caller: pickle must
        # rebuild it from its own arguments, not from the formatted message
        return (type(self), (self.path, self.problem, self.where))


class ConfigError(SkysiftError):
    """Bad option or parameter (unknown model name, negative epochs, ...)."""


class ModelFileError(SkysiftError):
    """A model bundle is missing, incomplete or was written by an incompatible version."""
