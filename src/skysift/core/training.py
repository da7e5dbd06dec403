"""``fit``: the training pipeline every task shares.

load → split (stratified, grouped, *before* any resampling) → preprocessing statistics from the
training split → resampling / weighted sampling inside the training split → Lightning training
(early stopping, best + last checkpoints, AMP on GPU, CSV logs, resume) → temperature scaling on
validation → metrics and plots → bundle. Estimator models (LightGBM on features) take the same path
with ``task.features`` instead of torch datasets.
"""
from __future__ import annotations

import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, SkysiftError
from .backends import FitJob, build_backend
from .bundle import save_bundle
from .calibration import expected_calibration_error, fit_bias_corrected_temperature, softmax
from .config import TrainConfig, resolve_config
from .data import TaskData
from .io import write_json
from .leakage import LeakError, check_disjoint
from .metrics import best_f1_threshold, classification_metrics
from .model import Model
from .parallel import cpu_threads
from .registry import ModelSpec
from .splits import train_val_test_split
from .task import Task, get_task
from .trainer import progress_enabled

log = logging.getLogger("skysift")


def load_split(run_dir: Path, data: TaskData, cfg: TrainConfig) -> dict[str, np.ndarray]:
    """The run's split, reused on resume (by id, so row order changes cannot leak objects)."""
    path = run_dir / "split.json"
    if path.exists():
        saved = json.loads(path.read_text())
        pos = {str(i): k for k, i in enumerate(data.ids)}
        try:
            return {k: np.array([pos[str(i)] for i in v], dtype=np.int64) for k, v in saved.items()}
        except KeyError as e:
            raise ConfigError(
                f"{path}: object {e} of the saved split is not in the data; resume with the same data"
            ) from None
    split = train_val_test_split(data.hard_labels, data.groups, val_frac=cfg.val_frac, test_frac=cfg.test_frac,
                                 seed=cfg.seed)
    write_json(path, {k: [str(data.ids[i]) for i in v] for k, v in split.items()})
    return split


def fit(task: str | Task, data: str | Path | TaskData, run_dir: str | Path, *, resume: bool = False,
        progress: bool | None = None, loggers: list[str] | None = None, callbacks: list | None = None,
        **options: Any) -> Model:
    """Train a model of ``task`` on ``data`` and write the run into ``run_dir``.

    ``options`` are :class:`TrainConfig` fields. ``resume=True`` continues from
    ``run_dir/checkpoints/last.ckpt`` (same split, same preprocessing). Returns the trained
    :class:`~skysift.core.model.Model`; its bundle is written once, complete.
    """
    task = get_task(task) if isinstance(task, str) else task
    cfg, spec, params, data_params = resolve_config(task, options)
    with cpu_threads(cfg.threads):
        return _fit(task, data, Path(run_dir), cfg, spec, params, data_params, resume=resume, progress=progress,
                    loggers=loggers, callbacks=callbacks)


def _fit(task: Task, data: str | Path | TaskData, run_dir: Path, cfg: TrainConfig, spec: ModelSpec, params: dict,
         data_params: dict, *, resume: bool, progress: bool | None, loggers: list[str] | None,
         callbacks: list | None) -> Model:
    if run_dir.exists() and (run_dir / "model.json").exists() and not resume:
        log.info("overwriting the finished run in %s", run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    if not isinstance(data, TaskData):
        data = task.load(data, labelled=True)
    if not data.has_labels:
        raise SkysiftError(f"{data.source}: training needs labels and this data has none")
    present = np.unique(data.hard_labels)
    if len(present) < 2:
        raise SkysiftError(f"{data.source}: training needs at least two classes, found only "
                           f"{[data.class_names[i] for i in present]}")

    if not resume:
        for stale in ("split.json", "preprocessing.json"):
            (run_dir / stale).unlink(missing_ok=True)
    split = load_split(run_dir, data, cfg)
    split.setdefault("test", np.array([], dtype=np.int64))
    check_disjoint(data.groups, split)
    job = FitJob(task, data, split, {}, data_params, cfg, run_dir, resume, progress_enabled(progress),
                 list(loggers or []), list(callbacks or []))
    train, val, test = job.train, job.val, data.subset(split["test"])
    # a task whose training data are unlike the data it must classify replaces the training and
    # validation splits by test-like copies made from each split's own objects (see DomainShift)
    all_params = {**params, **data_params}
    shift = task.shift if task.shift is not None and task.shift.enabled(all_params) else None
    shifted = shift is not None
    val_as_is, n_train_objects = val, len(train)
    if shift is not None:
        job.train, job.val = shift.train_val(train, val, all_params, cfg.seed)
        train, val = job.train, job.val
        shared = set(np.asarray(train.groups).tolist()) & set(np.asarray(val.groups).tolist())
        if shared:
            raise LeakError(f"test-like copies of {len(shared)} object(s) are in both training and validation")

    stats_path = run_dir / "preprocessing.json"
    if resume and stats_path.exists():
        stats = json.loads(stats_path.read_text())
    else:
        stats = task.fit_preprocessing(train, {**params, **data_params})  # checks weights + learns stats
        write_json(stats_path, stats)
    job.stats = stats

    backend = build_backend(spec, params, stats, data.n_classes, data_params)
    val_logits, history = backend.fit(job)

    y_val = val.hard_labels
    temperature, bias = (fit_bias_corrected_temperature(val_logits, y_val, data.n_classes,
                                                        sample_weight=task.calibration_weights(val))
                         if cfg.calibrate else (1.0, [0.0] * data.n_classes))
    proba_raw = softmax(val_logits)
    proba = softmax(val_logits, temperature, bias)
    threshold = best_f1_threshold(y_val, proba[:, 1]) if data.n_classes == 2 else 0.5
    metrics = classification_metrics(y_val, proba, data.class_names, threshold=threshold)
    metrics.update(task.metrics(val, proba))
    metrics["ece_uncalibrated"] = expected_calibration_error(proba_raw, y_val)
    metrics["temperature"] = temperature
    metrics["log_loss_uncalibrated"] = float(
        -np.mean(np.log(np.clip(proba_raw[np.arange(len(y_val)), y_val], 1e-15, 1))))

    card = {
        "task": task.name,
        "model": {"name": spec.name, "kind": backend.kind, "params": params, "data_params": data_params},
        "class_names": list(data.class_names),
        "preprocessing": stats,
        "calibration": {"method": "bias-corrected temperature scaling", "temperature": temperature,
                        "bias": bias, "threshold": threshold},
        "train_config": cfg.to_dict(),
        "data": {"source": str(data.source), "n": len(data), "class_counts": data.class_counts(),
                 "n_train": n_train_objects, "n_val": len(val_as_is), "n_test": len(test), **data.meta.get("card", {})},
        "protocol": _protocol(cfg, len(test)) + (
            "; training and validation on test-like copies of their own split's objects "
            "(validation_metrics are test-like, validation_metrics_as_is on the objects as they are; "
            "test_metrics as they are, test_metrics_test_like on copies with a seed of their own)"
            if shifted else ""),
        "validation_metrics": metrics,
        "history": history,
    }
    if task.open_set is not None:
        card["task_extras"] = task.open_set.fit(val, val_logits, proba)
    model = Model(task, card, backend, run_dir)
    if card.get("task_extras"):
        # the figures of what predict writes (the open-set columns included), on validation too
        metrics.update(task.output_metrics(val, *model.output_from_logits(val_logits), stats))
    test_proba = None
    if len(test):
        # the headline: objects no choice touched (early stopping, calibration, threshold and the
        # open-set fit all saw the validation split only)
        test_logits = model.predict_logits(test)
        test_proba = model.calibrate(test_logits)
        card["test_metrics"] = model.evaluate(test, proba=test_proba, logits=test_logits)
        if shift is not None:
            card["test_metrics_test_like"] = model.evaluate(shift.test_like(test, all_params, cfg.seed + 2))
    if shifted:
        # the same figures on the validation objects as they are (not used for any choice)
        card["validation_metrics_as_is"] = model.evaluate(val_as_is)
        card["data"]["n_train_copies"], card["data"]["n_val_copies"] = len(train), len(val)
    card["train_seconds"] = round(time.time() - t0, 2)
    card["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    model.card = card = save_bundle(run_dir, backend.state(), card)
    write_json(run_dir / "metrics_val.json", metrics)
    if test_proba is not None:
        write_json(run_dir / "metrics_test.json", card["test_metrics"])
    if "test_metrics_test_like" in card:
        write_json(run_dir / "metrics_test_test_like.json", card["test_metrics_test_like"])
    try:
        from .plots import display_names, standard_plots

        names = display_names(task, data.class_names)
        standard_plots(run_dir / "plots" / "validation", y_val, proba, names, threshold=threshold,
                       history_csv=run_dir / "logs" / "metrics.csv", proba_uncalibrated=proba_raw)
        task.plots(val, proba, run_dir / "plots" / "validation", data_params=data_params)
        if test_proba is not None:
            standard_plots(run_dir / "plots", test.hard_labels, test_proba, names, threshold=threshold,
                           history_csv=run_dir / "logs" / "metrics.csv")
            task.plots(test, test_proba, run_dir / "plots", data_params=data_params)
    except Exception as e:  # a plot must never lose a trained model
        warnings.warn(f"plotting failed: {e}", stacklevel=2)
    return model


def _protocol(cfg: TrainConfig, n_test: int) -> str:
    if n_test == 0:
        return ("no held-out test split (test_frac=0): the validation metrics were used for early stopping, "
                "calibration and the threshold; measure the model on a test set of your own")
    return (f"stratified, grouped split before any resampling: train / validation ({cfg.val_frac:g}) / test "
            f"({cfg.test_frac:g}); early stopping, best checkpoint, calibration, threshold and open-set fit on "
            "validation only; test_metrics on the test split, which no choice touched")
