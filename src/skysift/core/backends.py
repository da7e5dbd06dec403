"""One interface for everything that maps objects to logits: torch networks and estimators.

A :class:`Backend` is built from a registered model and knows how to ``fit`` on a training split
(early-stopping on the validation split), produce ``logits`` for any data, and hand its ``state``
(arrays only: safetensors) back and forth. The rest of skysift — training, the model object,
export, serving — talks to this interface and never asks which kind of model it holds; a model
declares its kind once, in the registry, and :data:`BACKENDS` maps that kind to its backend.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np

from ..errors import ConfigError, ModelFileError
from .config import TrainConfig
from .data import TaskData

if TYPE_CHECKING:
    from .registry import ModelSpec
    from .task import Task


@dataclass
class FitJob:
    """Everything one training run needs besides the model: the data and its split (index arrays
    ``train``, ``val``, ``test`` into ``data``), the statistics learnt on the training split, the
    data/augmentation parameters and the training configuration."""

    task: Task
    data: TaskData
    split: dict[str, np.ndarray]
    stats: dict
    data_params: dict
    cfg: TrainConfig
    run_dir: Path
    resume: bool = False
    progress: bool = True
    loggers: list[str] = field(default_factory=list)
    callbacks: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.train = self.data.subset(self.split["train"])
        self.val = self.data.subset(self.split["val"])
        held_out = [np.asarray(self.split[k], dtype=np.int64) for k in ("val", "test") if k in self.split]
        #: group keys of the validation and test objects: none of them may reach training
        self.held_out_groups = self.data.groups[np.concatenate(held_out)] if held_out else np.array([])


class Backend(ABC):
    """A trainable model of one kind. Subclasses declare what they can do as class attributes."""

    kind: ClassVar[str]
    #: has a random initial state (a bundle can be written untrained, for smoke tests)
    random_init: ClassVar[bool] = False
    #: can be exported to ONNX
    exportable: ClassVar[bool] = False

    @property
    @abstractmethod
    def learner(self) -> Any:
        """What was fitted: the torch network or the estimator."""

    @abstractmethod
    def fit(self, job: FitJob) -> tuple[np.ndarray, list[dict]]:
        """Train; returns ``(validation logits (N_val, K), per-epoch history)``."""

    @abstractmethod
    def logits(self, task: Task, data: TaskData, stats: dict, data_params: dict, *,
               tta: bool = False, batch_size: int = 256) -> np.ndarray:
        """Uncalibrated ``(N, K)`` logits of ``data``."""

    @abstractmethod
    def state(self) -> dict[str, np.ndarray]:
        """The fitted state as named arrays (what ``model.safetensors`` holds)."""

    @abstractmethod
    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state`; raise ``KeyError``/``ValueError``/``RuntimeError`` if it does not fit."""


class EstimatorBackend(Backend):
    """A model on feature vectors (LightGBM): ``task.features`` in, logits out."""

    kind = "estimator"

    def __init__(self, build: Callable[[], Any]):
        self.estimator = build()

    @property
    def learner(self) -> Any:
        return self.estimator

    @staticmethod
    def _features(task: Task, data: TaskData, stats: dict, data_params: dict) -> np.ndarray:
        if task.features is None:
            raise ConfigError(f"task {task.name!r} has no feature vectors for an estimator model")
        return np.asarray(task.features(data, stats, data_params), dtype=np.float32)

    def fit(self, job: FitJob) -> tuple[np.ndarray, list[dict]]:
        from .leakage import check_training_set
        from .sampling import class_weights, resample_indices, smote

        cfg = job.cfg
        X = self._features(job.task, job.train, job.stats, job.data_params)
        Xv = self._features(job.task, job.val, job.stats, job.data_params)
        y = job.train.hard_labels
        if cfg.resample == "smote":
            X, y = smote(X, y, cfg.seed)
        elif cfg.resample in ("over", "under"):
            idx = resample_indices(np.arange(len(y)), y, cfg.resample, cfg.seed)
            check_training_set(job.train.groups[idx], job.train.groups, job.held_out_groups)
            X, y = X[idx], y[idx]
        weight = None
        if cfg.loss == "weighted_ce" or cfg.sampler == "weighted":
            weight = class_weights(y, job.train.n_classes)[y]
        from .progress import step

        # the estimator reports nothing while it fits (boosting rounds with early stopping)
        with step(f"fitting {type(self.estimator).__name__} on {len(y):,} objects x {X.shape[1]} features"):
            self.estimator.fit(X, y, Xv, job.val.hard_labels, sample_weight=weight)
        return self.estimator.predict_logits(Xv), []

    def logits(self, task, data, stats, data_params, *, tta=False, batch_size=256):
        return self.estimator.predict_logits(self._features(task, data, stats, data_params))

    def state(self):
        return self.estimator.state()

    def load_state(self, state):
        self.estimator.load_state(state)


class TorchBackend(Backend):
    """A torch network trained in Lightning (the loop is Lightning's; see :mod:`.trainer`)."""

    kind = "torch"
    random_init = True
    exportable = True

    def __init__(self, build: Callable[[], Any]):
        # built on first use: training builds it only after seeding every RNG, so that a run's
        # initial weights depend on its seed alone
        self._build = build
        self._net: Any = None

    @property
    def net(self) -> Any:
        if self._net is None:
            self._net = self._build()
        return self._net

    @property
    def learner(self) -> Any:
        return self.net

    def fit(self, job: FitJob) -> tuple[np.ndarray, list[dict]]:
        from .trainer import fit_network

        self._net, val_logits, history = fit_network(self._build, job)
        return val_logits, history

    def logits(self, task, data, stats, data_params, *, tta=False, batch_size=256):
        from .inference import pick_device, predict_logits

        device = pick_device()
        self.net.to(device)
        ds = task.dataset(data, stats, data_params, train=False)
        views = task.tta_views(data_params, stats) if tta else ()
        return predict_logits(self.net, ds, batch_size=batch_size, collate_fn=task.collate_fn,
                              tta_views=views, device=device)

    def state(self):
        return {k: v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}

    def load_state(self, state):
        import torch

        self.net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
        self.net.eval()


#: a registered model's ``kind`` → its backend
BACKENDS: dict[str, type[Backend]] = {b.kind: b for b in (TorchBackend, EstimatorBackend)}


def backend_class(spec: ModelSpec) -> type[Backend]:
    try:
        return BACKENDS[spec.kind]
    except KeyError:
        raise ConfigError(f"model {spec.name!r} is of unknown kind {spec.kind!r}") from None


def build_backend(spec: ModelSpec, params: dict, stats: dict, n_classes: int,
                  data_params: dict | None = None) -> Backend:
    """The backend of a registered model, untrained."""
    backend_type: Any = backend_class(spec)  # each concrete backend takes its builder
    return backend_type(lambda: spec.build(params, stats, n_classes, data_params))


def restore_backend(spec: ModelSpec, params: dict, data_params: dict, stats: dict, n_classes: int,
                    state: dict[str, np.ndarray], source: Path | str) -> Backend:
    """A backend rebuilt from a bundle's parameters and state."""
    backend = build_backend(spec, params, stats, n_classes, data_params)
    try:
        backend.load_state(state)
    except (RuntimeError, KeyError, ValueError) as e:
        raise ModelFileError(f"{source}: weights do not fit model {spec.name!r} "
                             f"({str(e).splitlines()[0]})") from None
    return backend
