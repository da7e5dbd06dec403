"""The contract every task implements, and the discovery of installed tasks.

A task is one sub-package ``skysift/<name>/`` whose ``__init__.py`` holds its :class:`TaskInfo` as
``INFO`` (cheap to import) and whose ``task.py`` exposes ``TASK``, an instance of a :class:`Task`
subclass. The core finds it by folder, so a fifth task is one folder. The core owns
everything generic (splits, resampling, the training loop, calibration, metrics, plots, galleries,
bundles, request parsing); a task supplies only what is specific to its data:

=========================  ===================================================================
``info``                   a :class:`TaskInfo`: name, description, headline metric, defaults
``models``                 the task's model registry (``@register_model`` builders)
``dataset``                a torch ``Dataset`` of ``(inputs, target)``; augments when ``train``
``draw_object``            draws one object on a matplotlib axis (galleries are the core's)
``fit_preprocessing``      optional: JSON statistics learnt on the training split
``batch_augment``          optional: mixup / CutMix on training batches (None: none)
``tta_views``              optional: test-time views of a batch ([]: none)
``metrics`` / ``figures``  optional: task metrics (e.g. PLAsTiCC log-loss) and figures
``calibration_weights``    optional: per-object weights of the calibration fit
``prediction_frame``       optional: the submission layout (default: id + ``p_<class>``)
=========================  ===================================================================

Abilities that only some tasks have are objects, ``None`` where absent, never discovered by
catching an exception: ``features`` (:class:`FeatureExtractor`), ``requests``
(:class:`RequestCodec`), ``open_set`` (:class:`OpenSetHead`) and ``streaming``
(:class:`StreamPredictor`). Readers are registered per format in :mod:`skysift.core.readers`; the
embedded simulator is ``simulate(out, n, seed)`` in the module ``TaskInfo.simulator`` names.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol

import numpy as np

from ..errors import ConfigError, DataError
from .data import TaskData

if TYPE_CHECKING:
    import pandas as pd

    from .registry import ModelRegistry


@dataclass(frozen=True)
class TaskInfo:
    """What describes a task: plain data, readable without importing torch."""

    name: str
    description: str
    default_model: str
    #: the metric the task is judged by (a key of ``evaluate``'s dict) and whether higher is better;
    #: early stopping and the best checkpoint watch it on the validation split (``monitor``)
    headline_metric: str = "roc_auc"
    higher_is_better: bool = True
    #: column name of the id in prediction CSVs
    id_column: str = "id"
    #: training-configuration defaults (TrainConfig fields); user options override them
    train_defaults: dict = field(default_factory=dict)
    #: sizes and options of ``skysift demo`` (small: the demo runs every task in minutes)
    demo: dict = field(default_factory=lambda: {"n_train": 1000, "n_test": 500, "epochs": 5})
    #: objects ``simulate`` writes when no ``n`` is given
    simulate_default_n: int = 2000
    #: ``module:function`` of the embedded simulator (``function(out, n=, seed=) -> Path``)
    simulator: str = ""
    #: human-readable name of each class label, where labels are codes (PLAsTiCC's 90 → "SN Ia")
    class_labels: dict = field(default_factory=dict)

    @property
    def monitor(self) -> tuple[str, str]:
        """What early stopping and best-checkpoint selection watch: the headline metric on the
        validation split, so that the model is chosen by what it is judged by."""
        return f"val_{self.headline_metric}", "max" if self.higher_is_better else "min"


# ---- optional abilities ------------------------------------------------------------------------
class FeatureExtractor(Protocol):
    """``(N, F)`` feature vectors of a task's objects, for SMOTE, estimators and ``features``."""

    def __call__(self, data: TaskData, stats: dict, params: dict) -> np.ndarray: ...


class RequestCodec(Protocol):
    """The JSON body of ``POST /predict``: the core handles the envelope (one object, or
    ``{"objects": [...]}``), object positions in errors, ids, duplicates and the object limit; the
    codec parses one object and stacks them."""

    #: a key that marks a single object sent without the ``objects`` envelope (e.g. ``"flux"``)
    keys: tuple[str, ...]
    #: what the keys hold, for error messages
    what: str
    #: at most this many objects per request (None: the server's limit)
    max_objects: int | None

    def parse_object(self, obj: dict, payload: dict, options: dict) -> Any:
        """One object's input, validated; raise ``DataError("request", problem)``. ``options``:
        the model's :meth:`Task.input_options`, overridden by the body's own."""

    def assemble(self, ids: list[str], items: list, payload: dict, options: dict) -> TaskData:
        """Unlabelled TaskData of the parsed objects."""

    def example(self) -> dict:
        """A small valid body, for the API docs and tests."""


class OpenSetHead(Protocol):
    """State fitted on the validation split after training that adds output columns, e.g. the
    probability that an object is of no known class (PLAsTiCC's class 99)."""

    def fit(self, val: TaskData, logits: np.ndarray, proba: np.ndarray) -> dict:
        """JSON-serialisable state (stored in the card as ``task_extras``)."""

    def apply(self, state: dict, class_names: list[str], proba: np.ndarray,
              logits: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """The probabilities users receive and their column names."""


class StreamPredictor(Protocol):
    """Predicts a file too large to load, chunk by chunk, straight into a CSV (resumable)."""

    def predict_file(self, path: str | Path, out: str | Path,
                     predict_chunk: Callable[[TaskData], pd.DataFrame], *, resume: bool = True,
                     identity: dict | None = None) -> dict | None:
        """A summary with ``objects``; None when ``path`` is small enough to load whole. With
        ``resume``, a partial ``out`` written with the same ``identity`` (model fingerprint and
        settings) is continued; one written with another identity is refused."""


class DomainShift(Protocol):
    """Test-like copies of labelled objects, for a task whose training data are not distributed like
    the data it must classify (PLAsTiCC: a bright spectroscopic training set, a faint survey). The
    core applies it after the split: the training and validation splits are replaced by their
    copies (a copy keeps its original's split and group), and the test split is scored twice, as it
    is and test-like."""

    def enabled(self, params: dict) -> bool:
        """Whether the model's parameters ask for test-like copies."""

    def train_val(self, train: TaskData, val: TaskData, params: dict, seed: int) -> tuple[TaskData, TaskData]:
        """The training set to fit on and the test-like validation set to stop, calibrate and fit
        the open-set head on."""

    def test_like(self, data: TaskData, params: dict, seed: int) -> TaskData:
        """Test-like copies of held-out ``data`` (a seed of their own), for the second figure."""


# ---- the task -------------------------------------------------------------------------------
class Task:
    """Base class of a task: subclasses set ``info`` and ``models`` and implement ``dataset`` and
    ``draw_object``; everything else has a working default."""

    info: ClassVar[TaskInfo]
    models: ClassVar[ModelRegistry]
    features: FeatureExtractor | None = None
    requests: RequestCodec | None = None
    open_set: OpenSetHead | None = None
    streaming: StreamPredictor | None = None
    shift: DomainShift | None = None
    #: collates a list of dataset items into a batch (None: PyTorch's default collate)
    collate_fn: ClassVar[Callable | None] = None

    @property
    def name(self) -> str:
        return self.info.name

    # ---- data -------------------------------------------------------------------------------
    def load(self, path: str | Path, *, labelled: bool | None = None, format: str | None = None,
             defaults: dict | None = None, **options: Any) -> TaskData:
        """Read and validate ``path`` with the reader registered for its format (identified by
        content; ``format`` names one). ``labelled=True`` requires labels, ``False`` ignores them,
        ``None`` reads them when present. ``defaults``: reader options that ``options`` and options
        in the path override (a model's :meth:`input_options`). Bad input raises
        :class:`~skysift.errors.DataError`."""
        from .readers import read

        return read(self.info.name, path, format=format, labelled=labelled, defaults=defaults, **options)

    def input_options(self, stats: dict) -> dict:
        """Reader options that bring any later input to what a model was trained on, from its
        preprocessing ``stats`` (e.g. the crop and size of galaxy cutouts): every input path (a
        catalogue folder, a bare folder, one file, an upload, a JSON body) reads with them, so one
        object gets one probability however it arrives. {} when readers need none."""
        return {}

    def simulate(self, out: str | Path, n: int | None = None, seed: int = 0) -> Path:
        """Write a simulated dataset into folder ``out``; returns the path ``load`` accepts."""
        module, _, func = (self.info.simulator or f"skysift.{self.info.name}.simulate:simulate").partition(":")
        simulator = getattr(importlib.import_module(module), func or "simulate")
        return Path(simulator(out, n=n or self.info.simulate_default_n, seed=seed))

    # ---- preprocessing + datasets -----------------------------------------------------------
    def fit_preprocessing(self, train: TaskData, params: dict) -> dict:
        """Statistics learnt on the training split (JSON-serialisable), handed to ``dataset``."""
        return {}

    def dataset(self, data: TaskData, stats: dict, params: dict, *, train: bool):
        """A torch Dataset yielding ``(inputs, target)``; target -1 for unlabelled objects."""
        raise NotImplementedError(f"{type(self).__name__} must implement dataset()")

    def batch_augment(self, params: dict, stats: dict | None = None) -> Callable | None:
        """``f(inputs, targets, generator) -> (inputs, targets)`` on training batches, or None."""
        return None

    def tta_views(self, params: dict, stats: dict | None = None) -> list[Callable]:
        """Functions mapping a batch of inputs to an augmented batch; probabilities are averaged
        over the identity and these views. A view with an ``output_permutation`` (an involution of
        the class indices) maps the class axis back, for views that change the class (a mirror
        turns a clockwise spiral into an anticlockwise one)."""
        return []

    # ---- evaluation + output ----------------------------------------------------------------
    def metrics(self, data: TaskData, proba: np.ndarray) -> dict:
        """Task metrics added to the generic ones (e.g. the PLAsTiCC weighted log-loss)."""
        return {}

    def output_metrics(self, data: TaskData, out: np.ndarray, names: list[str], stats: dict | None = None) -> dict:
        """Figures of exactly what ``predict`` writes (``out``, columns ``names``), when an open-set
        head adds columns beyond the model's classes (the labels may then hold those classes, e.g.
        PLAsTiCC's 99); {} for a task with nothing to add to :meth:`metrics`. ``stats``: the
        model's training statistics (what :meth:`decide` reads)."""
        return {}

    def decide(self, out: np.ndarray, names: list[str], stats: dict) -> np.ndarray | None:
        """``(N,)`` class names chosen by the task's declared decision rule from what ``predict``
        writes (``out``, columns ``names``) and the model's training statistics, for
        ``predict --predicted-class``; None when the task declares none (the top column is then
        the prediction). The probability columns are never changed by it."""
        return None

    def calibration_weights(self, val: TaskData) -> np.ndarray | None:
        """``(N,)`` weights of the validation objects in the calibration fit (None: equal); a
        task whose metric weighs classes, not objects, makes calibration fit that metric."""
        return None

    def prediction_frame(self, ids: np.ndarray, proba: np.ndarray, class_names: list[str]) -> pd.DataFrame:
        """A DataFrame in the task's submission layout (id + one column per class)."""
        import pandas as pd

        cols: dict[str, Any] = {self.info.id_column: ids}
        cols.update({f"p_{c}": proba[:, j] for j, c in enumerate(class_names)})
        return pd.DataFrame(cols)

    def class_label(self, name: str) -> str:
        """A class's readable name: ``"SN Ia (90)"`` where labels are codes (the code stays, as
        files and submissions use it), else the name."""
        label = self.info.class_labels.get(str(name))
        return f"{label} ({name})" if label else str(name)

    # ---- figures ----------------------------------------------------------------------------
    #: (columns, panel width, panel height) of a gallery, in inches
    gallery_layout: ClassVar[tuple[int, float, float]] = (4, 3.0, 2.4)

    def draw_object(self, ax: Any, data: TaskData, i: int) -> None:
        """Draw object ``i`` of ``data`` in the task's natural view on the matplotlib axis ``ax``
        (a flux series, light curves per band, an ON/OFF cadence, an image)."""
        raise NotImplementedError(f"{type(self).__name__} must implement draw_object()")

    def describe_object(self, data: TaskData, i: int) -> str:
        """Extra words for object ``i`` in gallery titles (e.g. its redshift); '' for none."""
        return ""

    def plot_gallery(self, data: TaskData, indices: np.ndarray, out: Path, *,
                     proba: np.ndarray | None = None, title: str = "") -> Path | None:
        """A grid of the objects at ``indices``, each titled with its id, true class and, with
        ``proba`` ``(len(indices), K)``, the predicted class and probability (red when wrong)."""
        from .plots import gallery

        return gallery(self, data, indices, out, proba=proba, title=title)

    def figures(self, data: TaskData, proba: np.ndarray, out_dir: Path, *,
                data_params: dict | None = None) -> list[Path]:
        """Task-specific figures beside the standard ones; returns the files made.

        ``data_params`` are the model's data parameters (None: the task's defaults), so that a
        figure which redoes a step of the model's preprocessing draws what this model saw."""
        return []

    def plots(self, data: TaskData, proba: np.ndarray, out_dir: Path, *,
              data_params: dict | None = None) -> list[Path]:
        """The most confident mistakes as a gallery, plus the task's own figures."""
        out_dir = Path(out_dir)
        made: list[Path] = []
        if data.has_labels and len(data):
            k = min(proba.shape[1], data.n_classes)
            wrong = np.flatnonzero(proba[:, :k].argmax(axis=1) != data.hard_labels)
            wrong = wrong[np.argsort(-proba[wrong].max(axis=1), kind="stable")][:12]
            p = self.plot_gallery(data, wrong, out_dir / "gallery_mistakes.png", proba=proba[wrong],
                                  title="most confident mistakes")
            made += [p] if p else []
        return made + list(self.figures(data, proba, out_dir, data_params=data_params))

    def object_statistics(self, data: TaskData) -> dict[str, np.ndarray] | None:
        """Per-object quantities with a physical meaning, for ``explore``'s per-class summary:
        ``{"name [unit]": (N,) array}`` (numbers of observations, redshift, brightness, S/N ...).
        None: explore summarises the rows of :meth:`raw_matrix` instead."""
        return None

    def raw_matrix(self, data: TaskData, max_n: int = 5000) -> np.ndarray:
        """``(N, F)`` float matrix of the first ``max_n`` objects, for PCA/UMAP in ``explore``:
        the feature vectors with default statistics."""
        if self.features is None:
            raise ConfigError(f"task {self.info.name!r} has no feature vectors")
        sub = data.subset(np.arange(min(len(data), max_n)))
        return np.asarray(self.features(sub, {}, {}), dtype=np.float64)

    # ---- serving ----------------------------------------------------------------------------
    def parse_request(self, payload: Any, *, max_objects: int | None = None,
                      options: dict | None = None) -> TaskData:
        """Unlabelled TaskData from the decoded JSON body of ``POST /predict``: one object
        (holding one of ``requests.keys``) or ``{"objects": [...]}``. Raises
        ``DataError("request", problem, where="object 3")`` on anything malformed."""
        codec = self.requests
        if codec is None:
            raise ConfigError(f"task {self.info.name!r} takes no JSON requests; upload a file")
        objects = request_objects(payload, codec.keys, codec.what)
        limit = min(x for x in (max_objects, codec.max_objects, len(objects)) if x is not None)
        if len(objects) > limit:
            raise DataError("request", f"at most {limit} objects per request, got {len(objects)}")
        items, ids = [], []
        for k, obj in enumerate(objects):
            where = f"object {k}"
            if not isinstance(obj, dict):
                raise DataError("request", "each object must be a JSON object", where=where)
            try:
                items.append(codec.parse_object(obj, payload, options or {}))
            except DataError as e:
                raise DataError("request", e.problem, where=where) from None
            ids.append(str(obj.get("id", k)))
        seen: dict[str, int] = {}
        for k, i in enumerate(ids):
            if i in seen:
                raise DataError("request", f"duplicate object id {i!r} (objects {seen[i]} and {k})")
            seen[i] = k
        return codec.assemble(ids, items, payload, options or {})

    def request_example(self) -> dict | None:
        """A small valid ``POST /predict`` body (None when the task takes no JSON)."""
        return None if self.requests is None else self.requests.example()

    def describe_input(self) -> str:
        return self.info.description


def request_objects(payload: Any, keys: tuple[str, ...], what: str) -> list:
    """The objects of a request body: ``{key: ...}`` for one object (any of ``keys``) or
    ``{"objects": [{"id": ..., key: ...}, ...]}`` for a batch."""
    if not isinstance(payload, dict):
        raise DataError("request", f"body must be a JSON object with '{keys[0]}' or 'objects'")
    objects = payload.get("objects")
    if objects is None:
        if not any(k in payload for k in keys):
            raise DataError("request", f"body needs '{keys[0]}' ({what}) or 'objects'")
        objects = [payload]
    if not isinstance(objects, list) or not objects:
        raise DataError("request", "'objects' must be a non-empty list")
    return objects


# ---- task discovery --------------------------------------------------------------------------
_TASKS: dict[str, Task] = {}
_ORDER = ("transits", "transients", "technosignatures", "galaxies")


def task_names() -> list[str]:
    """Names of the installed tasks: sub-packages of ``skysift`` that contain ``task.py``."""
    root = Path(__file__).resolve().parents[1]
    names = [m.name for m in pkgutil.iter_modules([str(root)])
             if m.ispkg and m.name != "core" and (root / m.name / "task.py").exists()]
    return sorted(names, key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n))


def task_info(name: str) -> TaskInfo:
    """A task's :class:`TaskInfo` without importing the task (its package's ``INFO``): cheap, for
    listings."""
    if name not in task_names():
        raise ConfigError(f"unknown task {name!r}; choose one of: {', '.join(task_names())}")
    return importlib.import_module(f"skysift.{name}").INFO


def get_task(name: str) -> Task:
    if name not in _TASKS:
        if name not in task_names():
            raise ConfigError(f"unknown task {name!r}; choose one of: {', '.join(task_names())}")
        _TASKS[name] = importlib.import_module(f"skysift.{name}.task").TASK
    return _TASKS[name]
