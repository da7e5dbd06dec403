"""skysift: train, evaluate and serve deep-learning classifiers for astronomical survey data."""
import os as _os

from ._version import __version__  # noqa: E402

# OpenMP threads that spin while waiting (libgomp's default) stall each other whenever another
# process holds a core: on a shared 2-core machine, 2-thread training ran ~20x slower than with
# passive waiting. It must be set before torch or LightGBM load their OpenMP runtime; a value the
# user set wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .api import Model, evaluate, load, predict, simulate, train  # noqa: E402,F401
from .core.task import get_task, task_names  # noqa: E402,F401
from .errors import ConfigError, DataError, ModelFileError, SkysiftError  # noqa: E402,F401

__all__ = ["Model", "train", "load", "simulate", "evaluate", "predict", "get_task", "task_names",
           "SkysiftError", "DataError", "ConfigError", "ModelFileError", "__version__"]
