"""The interface every task implements, and the registries of tasks and models.

A task is one sub-package ``skysift/<name>/`` whose ``__init__.py`` exposes ``TASK``, an instance of
a :class:`Task` subclass. The core discovers it by folder, so adding a fifth task means adding one
folder. The core owns everything generic (splits, resampling, the Lightning training loop,
calibration, metrics, plots, bundles, CLI, serving); a task supplies only what is specific to its
data:

========================  ==================================================================
``load``                  read + validate files into a :class:`~skysift.core.data.TaskData`
``simulate``              write an embedded-default dataset in the task's real public format
``fit_preprocessing``     JSON-serialisable statistics learnt on the training split only
``dataset``               a torch ``Dataset`` of ``(inputs, target)``; augments when ``train``
``models``                a :class:`ModelRegistry` of network builders, by name
``features``              optional ``(N, F)`` feature matrix (for SMOTE and tree models)
``batch_augment``         optional batch-level augmentation (mixup / CutMix) at train time
``tta_views``             optional test-time augmentation: functions on a batch of inputs
``metrics`` / ``plots``   extra task metrics (e.g. PLAsTiCC log-loss) and figures
``prediction_frame``      the submission-style CSV
``fit_extras``            optional state fitted on validation after training (open-set scorers)
``output_proba``          optional extra output columns (e.g. PLAsTiCC's class 99)
========================  ==================================================================

Inputs yielded by ``dataset`` are a tensor or a dict of tensors (collated by PyTorch's default
collate unless ``collate_fn`` is given); targets are an int64 class index, a float ``(K,)`` soft
target, or -1 for unlabelled objects.
"""
from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from ..errors import ConfigError
from .data import TaskData
from .registry import Estimator, ModelRegistry, ModelSpec  # noqa: F401  (moved; re-exported)


class Task:
    """Base class of a task; subclasses set the class variables and override the methods."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: the metric the task is judged by, a key of ``evaluate``'s dict; and whether higher is better
    headline_metric: ClassVar[str] = "roc_auc"
    headline_higher_is_better: ClassVar[bool] = True
    default_model: ClassVar[str]
    models: ClassVar[ModelRegistry]
    #: what early stopping and best-checkpoint selection watch: a logged validation quantity
    #: (``val_loss``, ``val_acc``; two-class tasks also ``val_roc_auc``, ``val_pr_auc``) and its mode
    monitor: ClassVar[tuple[str, str]] = ("val_loss", "min")
    #: column name of the id in prediction CSVs
    id_column: ClassVar[str] = "id"
    #: training-configuration defaults for this task (see TrainConfig); user options override them
    train_defaults: ClassVar[dict] = {}
    #: sizes and epochs used by ``skysift demo`` (kept small: the demo runs every task in minutes)
    demo: ClassVar[dict] = {"n_train": 1000, "n_test": 500, "epochs": 5}
    #: the suffix of the data ``simulate`` writes (a file or folder inside --out)
    simulate_default_n: ClassVar[int] = 2000

    # ---- data -------------------------------------------------------------------------------
    def load(self, path: str | Path, *, labelled: bool | None = None) -> TaskData:
        """Read and validate ``path``. ``labelled=True`` requires labels, ``False`` ignores them,
        ``None`` reads them when present. Raise :class:`~skysift.errors.DataError` on bad input."""
        raise NotImplementedError

    def simulate(self, out: str | Path, n: int | None = None, seed: int = 0) -> Path:
        """Write a simulated dataset into folder ``out``; return the path ``load`` accepts."""
        raise NotImplementedError

    # ---- preprocessing + datasets -----------------------------------------------------------
    def fit_preprocessing(self, train: TaskData, params: dict) -> dict:
        """Statistics learnt on the training split (JSON-serialisable), passed to ``dataset``."""
        return {}

    def dataset(self, data: TaskData, stats: dict, params: dict, *, train: bool):
        """A torch Dataset yielding ``(inputs, target)`` for ``data``."""
        raise NotImplementedError

    collate_fn: ClassVar[Callable | None] = None

    def features(self, data: TaskData, stats: dict, params: dict) -> np.ndarray:
        """``(N, F)`` float feature vectors, for SMOTE and estimator models."""
        raise NotImplementedError(f"task {self.name!r} has no feature vectors")

    def batch_augment(self, params: dict, stats: dict | None = None) -> Callable | None:
        """Optional ``f(inputs, targets, generator) -> (inputs, targets)`` applied to training
        batches (mixup, CutMix); targets may become soft ``(B, K)``. ``stats``: what
        :meth:`fit_preprocessing` returned (None in code that has none)."""
        return None

    def tta_views(self, params: dict, stats: dict | None = None) -> list[Callable]:
        """Functions mapping a batch of inputs to an augmented batch; probabilities are averaged
        over the identity and these views when test-time augmentation is on. A view with an
        ``output_permutation`` attribute (an involution of the class indices) maps the class
        axis back, for views that change the class (a mirror turns a clockwise spiral into an
        anticlockwise one)."""
        return []

    # ---- evaluation + output ----------------------------------------------------------------
    def metrics(self, data: TaskData, proba: np.ndarray) -> dict:
        """Task-specific metrics added to the generic ones (e.g. the PLAsTiCC weighted log-loss)."""
        return {}

    def plots(self, data: TaskData, proba: np.ndarray, out_dir: Path) -> list[Path]:
        """Task-specific figures (galleries, per-band light curves ...); returns the files made."""
        return []

    def calibration_weights(self, val: TaskData) -> np.ndarray | None:
        """Optional ``(N,)`` weights of the validation objects when calibrating: a task whose
        metric weighs classes, not objects, makes calibration fit that metric. None: equal."""
        return None

    def fit_extras(self, model: Any, val: TaskData, val_logits: np.ndarray) -> dict:
        """JSON-serialisable state fitted after training on the validation split, with the trained
        ``model`` (:class:`~skysift.api.Model`) at hand: e.g. an open-set (unknown-class) scorer.
        Stored in the bundle's card as ``task_extras`` and handed back to :meth:`output_proba`."""
        return {}

    def output_proba(self, model: Any, proba: np.ndarray, logits: np.ndarray,
                     data: TaskData | None = None) -> tuple[np.ndarray, list[str]]:
        """The probabilities a user receives, and their column names: by default the ``(N, K)``
        calibrated ``proba`` of ``model``'s trained classes. A task may add columns, e.g. PLAsTiCC's
        class 99 ("none of the above"), renormalising the rows; ``model.extras`` holds what
        :meth:`fit_extras` fitted, ``data`` the objects when at hand."""
        return proba, list(model.class_names)

    def predict_file(self, model: Any, path: str | Path, out: str | Path, **kw) -> dict | None:
        """Predict a file too large to load at once straight into the CSV ``out`` (chunk by
        chunk, resumable) and return a summary with ``objects``; None (the default) means "load
        it and predict in memory"."""
        return None

    def prediction_frame(self, ids: np.ndarray, proba: np.ndarray, class_names: list[str]):
        """A pandas DataFrame in the task's submission layout (id + one column per class)."""
        import pandas as pd

        df = pd.DataFrame({self.id_column: ids})
        for j, c in enumerate(class_names):
            df[f"p_{c}"] = proba[:, j]
        return df

    def plot_gallery(self, data: TaskData, indices: np.ndarray, out: Path, *,
                     proba: np.ndarray | None = None, title: str = "") -> Path | None:
        """Draw the objects at ``indices`` in the task's natural view (flux series; light curves
        per band with error bars; ON/OFF spectrogram cadences; galaxy image grids), annotated with
        the true label and, when ``proba`` ``(len(indices), K)`` is given, the predicted class and
        probability. Used by ``explore`` (examples per class) and ``report`` (most confident
        mistakes). Saves a PNG at ``out`` and returns it (None when not supported)."""
        return None

    def raw_matrix(self, data: TaskData, max_n: int = 5000) -> np.ndarray:
        """``(N, F)`` float matrix of raw inputs (or features) for PCA/UMAP in ``explore``."""
        return np.asarray(self.features(data, {}, {}), dtype=np.float64)

    # ---- serving ----------------------------------------------------------------------------
    def parse_request(self, payload: Any) -> TaskData:
        """Turn the JSON body of ``POST /predict`` (already decoded: dict or list) into unlabelled
        TaskData, validating strictly: raise DataError("request", problem, where="object 3") on
        a wrong shape, NaN, wrong type. The natural inputs are: a flux array (transits); a list of
        observations + metadata (transients); a base64 ``.npy`` cadence (technosignatures); a
        base64 image (galaxies). Batches: ``{"objects": [...]}``."""
        raise NotImplementedError(f"task {self.name!r} does not parse JSON requests")

    def request_example(self) -> dict:
        """A small valid ``POST /predict`` body, for the API docs and tests."""
        raise NotImplementedError

    def describe_input(self) -> str:
        return self.description


def request_objects(payload: Any, key: str, what: str) -> list:
    """The objects of a ``POST /predict`` body: ``{key: ...}`` for one object or
    ``{"objects": [{"id": ..., key: ...}, ...]}`` for a batch. ``what`` describes ``key`` in errors."""
    from ..errors import DataError

    if not isinstance(payload, dict):
        raise DataError("request", f"body must be a JSON object with '{key}' or 'objects'")
    objects = payload.get("objects")
    if objects is None:
        if key not in payload:
            raise DataError("request", f"body needs '{key}' ({what}) or 'objects'")
        objects = [{"id": payload.get("id", "0"), key: payload[key]}]
    if not isinstance(objects, list) or not objects:
        raise DataError("request", "'objects' must be a non-empty list")
    return objects


# ---- task discovery --------------------------------------------------------------------------
_TASKS: dict[str, Task] = {}


def task_names() -> list[str]:
    """Names of the tasks installed: sub-packages of ``skysift`` that contain ``task.py``."""
    import skysift

    names = []
    for mod in pkgutil.iter_modules(skysift.__path__):
        if mod.ispkg and mod.name != "core" and (Path(skysift.__path__[0]) / mod.name / "task.py").exists():
            names.append(mod.name)
    order = ["transits", "transients", "technosignatures", "galaxies"]
    return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))


def get_task(name: str) -> Task:
    if name not in _TASKS:
        if name not in task_names():
            raise ConfigError(f"unknown task {name!r}; choose one of: {', '.join(task_names())}")
        module = importlib.import_module(f"skysift.{name}.task")
        _TASKS[name] = module.TASK
    return _TASKS[name]
