"""Exceptions that carry a user-facing message.

Every problem with the user's input is raised as a :class:`SkysiftError` subclass whose message
names the file, the row or object, and the problem. The CLI prints it as one ``error:`` line and
exits with code 2; nothing deeper (pandas, torch) may leak a traceback for bad input.
"""
from __future__ import annotations

from pathlib import Path


class SkysiftError(Exception):
    """Base class for errors caused by the user's input or configuration (CLI exit code 2)."""


class DataError(SkysiftError):
    """Bad input data.

    Parameters
    ----------
    path : file or folder the problem was found in.
    problem : what is wrong, in words.
    where : optional location inside the file, e.g. ``"row 17"`` or ``"object 615"``.
    """

    def __init__(self, path: str | Path | None, problem: str, where: str | None = None):
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
