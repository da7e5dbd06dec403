"""skysift: train, evaluate and serve deep-learning classifiers for astronomical survey data.

The public names below are imported on first use (module ``__getattr__``, PEP 562): ``import
skysift`` stays free of torch, so ``skysift --help`` and the listing commands answer at once.
"""
from __future__ import annotations

import importlib as _importlib
import os as _os
from typing import TYPE_CHECKING

from ._version import __version__

# OpenMP threads that spin while waiting (libgomp's default) stall each other whenever another
# process holds a core: on a shared 2-core machine, 2-thread training ran ~20x slower than with
# passive waiting. It must be set before torch or LightGBM load their OpenMP runtime; a value the
# user set wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# name -> module that defines it
_LAZY = {
    "Model": ".api", "train": ".api", "load": ".api", "simulate": ".api", "evaluate": ".api", "predict": ".api",
    "get_task": ".core.task", "task_names": ".core.task",
    "SkysiftError": ".errors", "DataError": ".errors", "ConfigError": ".errors", "ModelFileError": ".errors",
}

if TYPE_CHECKING:
    from . import errors
    from .api import Model, evaluate, load, predict, simulate, train
    from .core.task import get_task, task_names
    from .errors import ConfigError, DataError, ModelFileError, SkysiftError

__all__ = ["Model", "train", "load", "simulate", "evaluate", "predict", "get_task", "task_names", "errors",
           "SkysiftError", "DataError", "ConfigError", "ModelFileError", "__version__"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        if name == "errors":
            return _importlib.import_module(".errors", __name__)
        raise AttributeError(f"module 'skysift' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
