"""skysift: train, evaluate and serve deep-learning classifiers for astronomical survey data."""
__version__ = "0.1.0"

from .api import Model, evaluate, load, predict, simulate, train  # noqa: E402,F401
from .core.task import get_task, task_names  # noqa: E402,F401
from .errors import ConfigError, DataError, ModelFileError, SkysiftError  # noqa: E402,F401

__all__ = ["Model", "train", "load", "simulate", "evaluate", "predict", "get_task", "task_names",
           "SkysiftError", "DataError", "ConfigError", "ModelFileError", "__version__"]
