"""Bundles with untrained (randomly initialised) weights, for smoke tests and load benchmarks.

Serving, export and reports only need a valid bundle of the right architecture, not a good one;
training every task's network just to test them would cost minutes per task. The bundle is written
exactly as training writes it (``save_bundle``), with ``"untrained": true`` in the card.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..core.backends import backend_class, build_backend
from ..core.bundle import save_bundle
from ..core.data import TaskData
from ..core.task import get_task
from ..errors import ConfigError


def random_bundle(task_name: str, data: str | Path | TaskData, run_dir: str | Path, *,
                  model: str | None = None, model_params: dict | None = None, seed: int = 0) -> Path:
    """Write a bundle of ``task_name``'s ``model`` (default: the task's default, with its demo
    parameters; when that default is an estimator, which has no random state, the task's first
    network) whose preprocessing statistics come from labelled ``data`` and whose weights are
    random (seeded). Returns ``run_dir``."""
    import torch

    from ..core.config import resolve_config

    task = get_task(task_name)
    if not isinstance(data, TaskData):
        data = task.load(data, labelled=True)
    if model is None and not backend_class(task.models.get(task.info.default_model)).random_init:
        networks = [n for n in task.models.names() if backend_class(task.models.get(n)).random_init]
        if not networks:
            raise ConfigError(f"task {task_name!r} has only estimator models: they have no random initial state")
        model = networks[0]
    elif model_params is None and model is None:
        model_params = dict(task.info.demo.get("model_params", {}))
    cfg, spec, params, data_params = resolve_config(task, {"model": model, "model_params": model_params})
    if not backend_class(spec).random_init:
        raise ConfigError(f"model {spec.name!r} is an estimator: it has no random initial state; train it")
    torch.manual_seed(seed)
    stats = task.fit_preprocessing(data, {**params, **data_params})
    backend = build_backend(spec, params, stats, data.n_classes, data_params)
    card = {
        "task": task.name,
        "model": {"name": spec.name, "kind": backend.kind, "params": params, "data_params": data_params},
        "class_names": list(data.class_names),
        "preprocessing": stats,
        "calibration": {"method": "none", "temperature": 1.0, "bias": [0.0] * data.n_classes, "threshold": 0.5},
        "train_config": {**cfg.to_dict(), "tta": False},
        "data": {"source": str(data.source), "n": len(data), "class_counts": data.class_counts()},
        "validation_metrics": {},
        "history": [],
        "untrained": True,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    save_bundle(run_dir, backend.state(), card)
    return Path(run_dir)
