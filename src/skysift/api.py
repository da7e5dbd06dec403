"""The Python API: ``skysift.train``, ``skysift.load`` and the :class:`Model` they return.

>>> import skysift
>>> data = skysift.simulate("transits", "data/", n=2000, seed=1)
>>> model = skysift.train("transits", data, "runs/kepler", epochs=20)
>>> model = skysift.load("runs/kepler")
>>> proba = model.predict_proba("kepler_test.csv")      # (N, K) calibrated probabilities
>>> model.predict("kepler_test.csv").to_csv("submission.csv", index=False)
>>> model.evaluate("kepler_test.csv")["pr_auc"]
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .core.bundle import read_card, read_tensors
from .core.calibration import softmax
from .core.data import TaskData
from .core.registry import card_params
from .core.task import Task, get_task
from .errors import ModelFileError


class Model:
    """A trained model: the task, its network or estimator, preprocessing and calibration.

    Built from a bundle with :func:`load`; nothing is unpickled.
    """

    def __init__(self, task: Task, card: dict, net: Any, run_dir: Path | None = None):
        self.task = task
        self.card = card
        self.net = net
        self.run_dir = run_dir
        self.class_names: list[str] = list(card["class_names"])
        self.stats: dict = card.get("preprocessing", {})
        # model and data parameters apart; a card from before the split holds both in "params"
        self.params, self.data_params = card_params(task.models.get(card["model"]["name"]), card["model"])
        self.kind: str = card["model"].get("kind", "torch")
        cal = card.get("calibration", {})
        self.temperature: float = float(cal.get("temperature", 1.0))
        self.bias: list[float] = list(cal.get("bias") or [0.0] * len(self.class_names))
        self.threshold: float = float(cal.get("threshold", 0.5))
        self.tta: bool = bool(card.get("train_config", {}).get("tta", False))

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_run(cls, run_dir: str | Path) -> "Model":
        run_dir = Path(run_dir)
        card = read_card(run_dir)
        task = get_task(card["task"])
        tensors = read_tensors(run_dir)
        spec = task.models.get(card["model"]["name"])
        params, data_params = card_params(spec, card["model"])
        obj = spec.build(params, card.get("preprocessing", {}), len(card["class_names"]), data_params)
        try:
            if spec.kind == "estimator":
                obj.load_state(tensors)
            else:
                import torch

                state = {k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}
                obj.load_state_dict(state)
                obj.eval()
        except (RuntimeError, KeyError, ValueError) as e:
            raise ModelFileError(f"{run_dir / 'model.safetensors'}: weights do not fit model "
                                 f"{spec.name!r} ({str(e).splitlines()[0]})") from None
        return cls(task, card, obj, run_dir)

    # ---- inference ----------------------------------------------------------------------------
    def _as_data(self, data: TaskData | str | Path, labelled: bool | None) -> TaskData:
        return data if isinstance(data, TaskData) else self.task.load(data, labelled=labelled)

    def predict_logits(self, data: TaskData | str | Path, *, tta: bool | None = None,
                       batch_size: int = 256) -> np.ndarray:
        """Uncalibrated ``(N, K)`` logits."""
        data = self._as_data(data, labelled=None)
        self._check_classes(data)
        if self.kind == "estimator":
            X = np.asarray(self.task.features(data, self.stats, self.data_params), dtype=np.float32)
            return self.net.predict_logits(X)
        from .core.inference import pick_device, predict_logits

        use_tta = self.tta if tta is None else tta
        device = pick_device()
        self.net.to(device)
        ds = self.task.dataset(data, self.stats, self.data_params, train=False)
        return predict_logits(self.net, ds, batch_size=batch_size, collate_fn=self.task.collate_fn,
                              tta_views=self.task.tta_views(self.data_params, self.stats) if use_tta else (), device=device)

    def predict_proba(self, data: TaskData | str | Path, *, tta: bool | None = None,
                      batch_size: int = 256) -> np.ndarray:
        """Calibrated class probabilities ``(N, K)``, columns in ``class_names`` order."""
        logits = self.predict_logits(data, tta=tta, batch_size=batch_size)
        return self.calibrate(logits)

    def calibrate(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated ``(N, K)`` probabilities from logits of :meth:`predict_logits`."""
        if len(logits) == 0:
            return np.zeros((0, len(self.class_names)))
        return softmax(logits, self.temperature, self.bias)

    @property
    def extras(self) -> dict:
        """Task state fitted after training (e.g. an open-set scorer), from the card."""
        return self.card.get("task_extras") or {}

    def output_from_logits(self, logits: np.ndarray, data: TaskData | None = None) -> tuple[np.ndarray, list[str]]:
        """``(probabilities, column names)`` as delivered to users: the calibrated class probabilities
        plus any column the task adds (PLAsTiCC's class 99)."""
        return self.task.output_proba(self, self.calibrate(logits), logits, data)

    def predict_output(self, data: TaskData | str | Path, *, tta: bool | None = None) -> tuple[np.ndarray, list[str]]:
        """Like :meth:`predict_proba`, with the task's extra output columns; returns ``(P, names)``."""
        data = self._as_data(data, labelled=None)
        return self.output_from_logits(self.predict_logits(data, tta=tta), data)

    def frame(self, ids: np.ndarray, logits: np.ndarray, data: TaskData | None = None):
        """The submission-layout DataFrame for logits already computed (one inference pass)."""
        proba, names = self.output_from_logits(logits, data)
        return self.task.prediction_frame(np.asarray(ids), proba, names)

    def predict(self, data: TaskData | str | Path, *, tta: bool | None = None):
        """A pandas DataFrame in the task's submission layout (id + class probabilities)."""
        data = self._as_data(data, labelled=False)
        return self.frame(data.ids, self.predict_logits(data, tta=tta), data)

    def evaluate(self, data: TaskData | str | Path, *, tta: bool | None = None,
                 plots_dir: str | Path | None = None, proba: np.ndarray | None = None) -> dict:
        """Metrics of the task on labelled ``data`` (and figures in ``plots_dir`` when given).

        ``proba`` reuses probabilities already computed for ``data`` by :meth:`predict_proba`.
        """
        from .core.metrics import classification_metrics

        data = self._as_data(data, labelled=True)
        self._check_classes(data)
        data = data.with_class_names(self.class_names)
        if proba is None:
            proba = self.predict_proba(data, tta=tta)
        y = data.hard_labels
        metrics = classification_metrics(y, proba, self.class_names, threshold=self.threshold)
        metrics.update(self.task.metrics(data, proba))
        if plots_dir is not None:
            from .core.plots import standard_plots

            standard_plots(Path(plots_dir), y, proba, self.class_names, threshold=self.threshold)
            self.task.plots(data, proba, Path(plots_dir))
        return metrics

    def _check_classes(self, data: TaskData) -> None:
        if data.has_labels and list(data.class_names) != self.class_names:
            present = {data.class_names[i] for i in np.unique(data.hard_labels)}
            extra = sorted(present - set(self.class_names))
            if extra:
                from .errors import DataError

                raise DataError(data.source, f"classes {extra} are not known to this model "
                                             f"(it knows {self.class_names})")

    def __repr__(self) -> str:
        return f"Model(task={self.task.name!r}, model={self.card['model']['name']!r}, classes={self.class_names})"


def load(run_dir: str | Path) -> Model:
    """Load a trained model from its run directory (``model.safetensors`` + ``model.json``)."""
    return Model.from_run(run_dir)


def train(task: str, data: str | Path | TaskData, out: str | Path, *, resume: bool = False, **options) -> Model:
    """Train ``task`` on ``data`` into run directory ``out``; options are TrainConfig fields."""
    from .core.training import fit

    return fit(task, data, out, resume=resume, **options)


def simulate(task: str, out: str | Path, n: int | None = None, seed: int = 0) -> Path:
    """Write the task's embedded simulated dataset into ``out``; returns the path to load."""
    return get_task(task).simulate(out, n=n, seed=seed)


def evaluate(run_dir: str | Path, data: str | Path | TaskData, **kw) -> dict:
    return load(run_dir).evaluate(data, **kw)


def predict(run_dir: str | Path, data: str | Path | TaskData, out: str | Path | None = None, **kw):
    """Predictions for ``data`` in the task's submission layout, written to ``out`` when given.

    Returns the DataFrame; or, when the task streams a file too large to load (PLAsTiCC test
    sets: chunk by chunk, resumable), a summary dict with the number of ``objects`` written."""
    model = load(run_dir)
    if out is not None and not isinstance(data, TaskData):
        summary = model.task.predict_file(model, data, out, **kw)
        if summary is not None:
            return summary
    df = model.predict(data, **kw)
    if out is not None:
        from .core.io import atomic_path

        with atomic_path(out) as tmp:
            df.to_csv(tmp, index=False)
    return df
