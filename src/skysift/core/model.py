"""The trained model: a task, a backend, the preprocessing statistics and the calibration.

Built in memory by training (:func:`skysift.core.training.fit`) or from a bundle on disk by
:meth:`Model.from_run`, which unpickles nothing: the weights are safetensors, the rest JSON.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError
from .backends import Backend, restore_backend
from .bundle import WEIGHTS, read_card, read_tensors
from .calibration import softmax
from .data import TaskData
from .registry import card_params
from .task import Task, get_task

if TYPE_CHECKING:
    import pandas as pd


class Model:
    """A trained model of one task; ``card`` is its ``model.json`` (everything but the weights)."""

    def __init__(self, task: Task, card: dict, backend: Backend, run_dir: Path | None = None):
        self.task = task
        self.card = card
        self.backend = backend
        self.run_dir = run_dir
        self.class_names: list[str] = list(card["class_names"])
        self.stats: dict = card.get("preprocessing", {})
        # model and data parameters apart; a card from before the split holds both in "params"
        self.params, self.data_params = card_params(task.models.get(card["model"]["name"]), card["model"])
        cal = card.get("calibration", {})
        self.temperature: float = float(cal.get("temperature", 1.0))
        self.bias: list[float] = list(cal.get("bias") or [0.0] * len(self.class_names))
        self.threshold: float = float(cal.get("threshold", 0.5))
        self.tta: bool = bool(card.get("train_config", {}).get("tta", False))

    @property
    def kind(self) -> str:
        return self.backend.kind

    @property
    def net(self) -> Any:
        """The torch network (torch backends) or the estimator."""
        return self.backend.learner

    @property
    def extras(self) -> dict:
        """Task state fitted after training (e.g. an open-set scorer), from the card."""
        return self.card.get("task_extras") or {}

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_run(cls, run_dir: str | Path) -> Model:
        run_dir = Path(run_dir)
        card = read_card(run_dir)
        task = get_task(card["task"])
        spec = task.models.get(card["model"]["name"])
        params, data_params = card_params(spec, card["model"])
        backend = restore_backend(spec, params, data_params, card.get("preprocessing", {}),
                                  len(card["class_names"]), read_tensors(run_dir), run_dir / WEIGHTS)
        return cls(task, card, backend, run_dir)

    # ---- inference ----------------------------------------------------------------------------
    def _as_data(self, data: TaskData | str | Path, labelled: bool | None) -> TaskData:
        return data if isinstance(data, TaskData) else self.read(data, labelled=labelled)

    def read(self, path: str | Path, *, labelled: bool | None = None, **options: Any) -> TaskData:
        """Read ``path`` as this model expects its inputs (its task's reader, with the input
        settings it was trained with; ``options`` override them)."""
        return self.task.load(path, labelled=labelled, defaults=self.task.input_options(self.stats), **options)

    def parse_request(self, payload: Any, *, max_objects: int | None = None) -> TaskData:
        """A JSON request body as this model expects its inputs (see :meth:`read`)."""
        return self.task.parse_request(payload, max_objects=max_objects,
                                       options=self.task.input_options(self.stats))

    def predict_logits(self, data: TaskData | str | Path, *, tta: bool | None = None,
                       batch_size: int = 256) -> np.ndarray:
        """Uncalibrated ``(N, K)`` logits."""
        data = self._as_data(data, labelled=None)
        self._check_classes(data, self._output_only_classes())
        return self.backend.logits(self.task, data, self.stats, self.data_params,
                                   tta=self.tta if tta is None else tta, batch_size=batch_size)

    def calibrate(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated ``(N, K)`` probabilities from logits of :meth:`predict_logits`."""
        if len(logits) == 0:
            return np.zeros((0, len(self.class_names)))
        return softmax(logits, self.temperature, self.bias)

    def predict_proba(self, data: TaskData | str | Path, *, tta: bool | None = None,
                      batch_size: int = 256) -> np.ndarray:
        """Calibrated class probabilities ``(N, K)``, columns in ``class_names`` order."""
        return self.calibrate(self.predict_logits(data, tta=tta, batch_size=batch_size))

    def output_from_logits(self, logits: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """``(probabilities, column names)`` as delivered to users: the calibrated class
        probabilities, plus the columns of the task's open-set head (PLAsTiCC's class 99)."""
        proba = self.calibrate(logits)
        head = self.task.open_set
        if head is None or not self.extras or len(proba) == 0:
            return proba, list(self.class_names)
        return head.apply(self.extras, list(self.class_names), proba, logits)

    def predict_output(self, data: TaskData | str | Path, *,
                       tta: bool | None = None) -> tuple[np.ndarray, list[str]]:
        """Like :meth:`predict_proba`, with the task's extra output columns; returns ``(P, names)``."""
        return self.output_from_logits(self.predict_logits(data, tta=tta))

    def frame(self, ids: np.ndarray, logits: np.ndarray, *, predicted_class: bool = False) -> pd.DataFrame:
        """The submission-layout DataFrame for logits already computed (one inference pass);
        ``predicted_class`` appends the task's declared decision (:meth:`Task.decide`) as a last
        column ``predicted_class``, leaving every probability column as it is."""
        proba, names = self.output_from_logits(logits)
        df = self.task.prediction_frame(np.asarray(ids), proba, names)
        if predicted_class:
            decided = self.task.decide(proba, names, self.stats)
            if decided is None:
                from ..errors import ConfigError

                raise ConfigError(f"the {self.task.name} task declares no decision rule for --predicted-class "
                                  f"(or this model was trained before it stored what the rule needs)")
            df["predicted_class"] = decided
        return df

    def predict(self, data: TaskData | str | Path, *, tta: bool | None = None,
                predicted_class: bool = False) -> pd.DataFrame:
        """A DataFrame in the task's submission layout (id + class probabilities), plus the
        declared decision with ``predicted_class`` (see :meth:`frame`)."""
        data = self._as_data(data, labelled=False)
        return self.frame(data.ids, self.predict_logits(data, tta=tta), predicted_class=predicted_class)

    def fingerprint(self) -> str:
        """SHA-256 of the bundle (``model.json`` + ``model.safetensors``), or of the card for a
        model never saved: what a resumed streamed prediction checks it continues with."""
        import hashlib
        import json

        from .bundle import CARD

        h = hashlib.sha256()
        files = [self.run_dir / CARD, self.run_dir / WEIGHTS] if self.run_dir is not None else []
        if files and all(f.exists() for f in files):
            for f in files:
                with open(f, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        h.update(block)
        else:
            h.update(json.dumps(self.card, sort_keys=True, default=str).encode())
        return h.hexdigest()

    def predict_to(self, data: str | Path | TaskData, out: str | Path, *, tta: bool | None = None,
                   resume: bool = True, predicted_class: bool = False) -> dict:
        """Predict ``data`` into the CSV ``out``; a file the task streams (larger than memory)
        goes chunk by chunk, and ``resume`` continues an interrupted run of the same model and
        settings (a different one is refused). Returns ``{"objects": n, ...}``."""
        from .io import atomic_path

        if self.task.streaming is not None and not isinstance(data, TaskData):
            identity = {"model": self.fingerprint(), "tta": self.tta if tta is None else bool(tta)}
            if predicted_class:  # another column layout: never appended to a file without it
                identity["predicted_class"] = True
            summary = self.task.streaming.predict_file(
                data, out, lambda chunk: self.frame(chunk.ids, self.predict_logits(chunk, tta=tta),
                                                    predicted_class=predicted_class),
                resume=resume, identity=identity)
            if summary is not None:
                return summary
        df = self.predict(data, tta=tta, predicted_class=predicted_class)
        with atomic_path(out) as tmp:
            df.to_csv(tmp, index=False)
        return {"objects": len(df), "frame": df}

    def evaluate(self, data: TaskData | str | Path, *, tta: bool | None = None,
                 plots_dir: str | Path | None = None, proba: np.ndarray | None = None,
                 logits: np.ndarray | None = None) -> dict:
        """Metrics of the task on labelled ``data`` (figures in ``plots_dir`` when given);
        ``logits`` / ``proba`` reuse what was already computed for ``data``.

        With an open-set head, the labels may hold the head's class (PLAsTiCC's 99): the task's
        ``output_metrics`` score exactly what ``predict`` writes (every output column, every
        object), and the model's own classes are scored on the objects of those classes."""
        from .metrics import classification_metrics

        data = self._as_data(data, labelled=True)
        extra = self._output_only_classes()
        self._check_classes(data, extra)
        official: dict = {}
        if extra:
            if logits is None:
                logits = self.predict_logits(data, tta=tta)
            out, names = self.output_from_logits(logits)
            official = self.task.output_metrics(data, out, names, self.stats)
            proba = self.calibrate(logits) if proba is None else proba
            known = np.isin(np.asarray(data.class_names)[data.hard_labels], self.class_names)
            if not known.all():
                data = data.subset(np.flatnonzero(known))
                proba = None if proba is None else proba[known]
        data = data.with_class_names(self.class_names)
        if proba is None:
            proba = self.predict_proba(data, tta=tta)
        y = data.hard_labels
        metrics = classification_metrics(y, proba, self.class_names, threshold=self.threshold)
        metrics.update(self.task.metrics(data, proba))
        metrics.update(official)
        if plots_dir is not None:
            from .plots import display_names, standard_plots

            standard_plots(Path(plots_dir), y, proba, display_names(self.task, self.class_names),
                           threshold=self.threshold)
            self.task.plots(data, proba, Path(plots_dir), data_params=self.data_params)
        return metrics

    def _output_only_classes(self) -> list[str]:
        """Output columns of the open-set head that are no trained class (PLAsTiCC's 99)."""
        if self.task.open_set is None or not self.extras:
            return []
        return self.output_from_logits(np.zeros((1, len(self.class_names))))[1][len(self.class_names):]

    def _check_classes(self, data: TaskData, output_only: list[str] | None = None) -> None:
        if data.has_labels and list(data.class_names) != self.class_names:
            present = {data.class_names[i] for i in np.unique(data.hard_labels)}
            extra = sorted(present - set(self.class_names) - set(output_only or []))
            if extra:
                raise DataError(data.source, f"classes {extra} are not known to this model "
                                             f"(it knows {self.class_names})")

    def __repr__(self) -> str:
        return f"Model(task={self.task.name!r}, model={self.card['model']['name']!r}, classes={self.class_names})"


def load(run_dir: str | Path) -> Model:
    """Load a trained model from its run directory (``model.safetensors`` + ``model.json``)."""
    return Model.from_run(run_dir)
