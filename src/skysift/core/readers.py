"""Readers per task and format (interim: each task's ``io.load``; replaced by the registry)."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from .data import TaskData


def read(task: str, path: str | Path, *, format: str | None = None, labelled: bool | None = None,
         **options: Any) -> TaskData:
    return importlib.import_module(f"skysift.{task}.io").load(path, labelled=labelled, **options)
