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
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, SkysiftError
from .bundle import save_bundle
from .calibration import expected_calibration_error, fit_bias_corrected_temperature, softmax
from .config import TrainConfig, resolve_config
from .data import TaskData
from .io import write_json
from .metrics import best_f1_threshold, classification_metrics
from .sampling import class_weights, resample_indices, smote, weighted_sampler
from .splits import train_val_test_split
from .task import ModelSpec, Task, get_task

log = logging.getLogger("skysift")


def _precision(cfg: TrainConfig) -> str:
    import torch

    if cfg.precision != "auto":
        return cfg.precision if cfg.precision != "32" else "32-true"
    if torch.cuda.is_available() and cfg.accelerator in ("auto", "gpu", "cuda"):
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def _loggers(run_dir: Path, names: list[str]):
    from lightning.pytorch.loggers import CSVLogger

    out = [CSVLogger(str(run_dir), name="logs", version="")]
    for name in names:
        try:
            if name == "tensorboard":
                from lightning.pytorch.loggers import TensorBoardLogger

                out.append(TensorBoardLogger(str(run_dir), name="tb", version=""))
            elif name == "mlflow":
                from lightning.pytorch.loggers import MLFlowLogger

                out.append(MLFlowLogger(experiment_name="skysift", save_dir=str(run_dir / "mlruns")))
            elif name == "wandb":
                from lightning.pytorch.loggers import WandbLogger

                out.append(WandbLogger(save_dir=str(run_dir), offline=True))
            else:
                raise ConfigError(f"unknown logger {name!r}; choose tensorboard, mlflow or wandb")
        except (ImportError, ModuleNotFoundError) as e:
            raise ConfigError(f"logger {name!r} needs a package that is not installed ({e})") from None
    return out


def _progress_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return os.environ.get("SKYSIFT_NO_PROGRESS", "") == ""


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
    split = train_val_test_split(data.hard_labels, data.groups, val_frac=cfg.val_frac, seed=cfg.seed)
    write_json(path, {k: [str(data.ids[i]) for i in v] for k, v in split.items()})
    return split


def fit(task: str | Task, data: str | Path | TaskData, run_dir: str | Path, *, resume: bool = False,
        progress: bool | None = None, loggers: list[str] | None = None, callbacks: list | None = None,
        **options) -> "Model":
    """Train a model of ``task`` on ``data`` and write the run into ``run_dir``.

    ``options`` are :class:`TrainConfig` fields. ``resume=True`` continues from
    ``run_dir/checkpoints/last.ckpt`` (same split, same preprocessing). Returns the trained
    :class:`~skysift.api.Model`.
    """
    from ..api import Model

    task = get_task(task) if isinstance(task, str) else task
    cfg, spec, params, data_params = resolve_config(task, options)
    run_dir = Path(run_dir)
    if run_dir.exists() and (run_dir / "model.json").exists() and not resume:
        log.info("overwriting the finished run in %s", run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    if not isinstance(data, TaskData):
        data = task.load(data, labelled=True)
    if not data.has_labels:
        raise SkysiftError(f"{data.source}: training needs labels and this data has none")
    y = data.hard_labels
    present = np.unique(y)
    if len(present) < 2:
        raise SkysiftError(f"{data.source}: training needs at least two classes, found only "
                           f"{[data.class_names[i] for i in present]}")

    if not resume:
        for stale in ("split.json", "preprocessing.json"):
            (run_dir / stale).unlink(missing_ok=True)
    split = load_split(run_dir, data, cfg)
    train, val = data.subset(split["train"]), data.subset(split["val"])

    stats_path = run_dir / "preprocessing.json"
    if resume and stats_path.exists():
        stats = json.loads(stats_path.read_text())
    else:
        stats = task.fit_preprocessing(train, {**params, **data_params})  # checks weights + learns stats
        write_json(stats_path, stats)

    if spec.kind == "estimator":
        net_tensors, val_logits, history = _fit_estimator(task, spec, params, data_params, stats, train, val, cfg)
    else:
        net_tensors, val_logits, history = _fit_torch(task, spec, params, data_params, stats, train, val, cfg,
                                                      run_dir, resume, progress, loggers or [],
                                                      callbacks or [])

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
    train_seconds = time.time() - t0

    card = {
        "task": task.name,
        "model": {"name": spec.name, "kind": spec.kind, "params": params, "data_params": data_params},
        "class_names": list(data.class_names),
        "preprocessing": stats,
        "calibration": {"method": "bias-corrected temperature scaling", "temperature": temperature,
                        "bias": bias, "threshold": threshold},
        "train_config": cfg.to_dict(),
        "data": {"source": str(data.source), "n": len(data), "class_counts": data.class_counts(),
                 "n_train": len(train), "n_val": len(val), **data.meta.get("card", {})},
        "validation_metrics": metrics,
        "history": history,
        "train_seconds": round(train_seconds, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    save_bundle(run_dir, net_tensors, card)
    model = Model.from_run(run_dir)
    extras = task.fit_extras(model, val, val_logits)
    if extras:
        # the card is rewritten atomically; until then the bundle is complete without the extras
        card["task_extras"] = extras
        save_bundle(run_dir, net_tensors, card)
        model = Model.from_run(run_dir)
    write_json(run_dir / "metrics_val.json", metrics)
    try:
        from .plots import standard_plots

        standard_plots(run_dir / "plots", y_val, proba, data.class_names, threshold=threshold,
                       history_csv=run_dir / "logs" / "metrics.csv", proba_uncalibrated=proba_raw)
        task.plots(val, proba, run_dir / "plots")
    except Exception as e:  # a plot must never lose a trained model
        warnings.warn(f"plotting failed: {e}")
    return model


def _fit_estimator(task, spec, params, data_params, stats, train: TaskData, val: TaskData, cfg: TrainConfig):
    est = spec.build(params, stats, train.n_classes, data_params)
    X = np.asarray(task.features(train, stats, data_params), dtype=np.float32)
    Xv = np.asarray(task.features(val, stats, data_params), dtype=np.float32)
    y = train.hard_labels
    if cfg.resample == "smote":
        X, y = smote(X, y, cfg.seed)
    elif cfg.resample in ("over", "under"):
        idx = resample_indices(np.arange(len(y)), y, cfg.resample, cfg.seed)
        X, y = X[idx], y[idx]
    weight = None
    if cfg.loss == "weighted_ce" or cfg.sampler == "weighted":
        weight = class_weights(y, train.n_classes)[y]
    est.fit(X, y, Xv, val.hard_labels, sample_weight=weight)
    return est.state(), est.predict_logits(Xv), []


def _fit_torch(task, spec, params, data_params, stats, train: TaskData, val: TaskData, cfg: TrainConfig,
               run_dir: Path, resume: bool, progress, logger_names, extra_callbacks):
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from torch.utils.data import DataLoader

    from .inference import pick_device, predict_logits
    from .lightning_module import ClassifierModule
    from .losses import ClassificationLoss

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)  # hardware banners and tips are noise here
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    y = train.hard_labels
    k = train.n_classes
    train_idx = np.arange(len(train))
    if cfg.resample in ("over", "under"):
        train_idx = resample_indices(train_idx, y, cfg.resample, cfg.seed)
    elif cfg.resample == "smote":
        raise ConfigError("SMOTE works on feature vectors: use it with a feature model "
                          "(e.g. a gradient-boosted one); for networks use --resample over")
    train_data = train.subset(train_idx) if cfg.resample != "none" else train
    ds_train = task.dataset(train_data, stats, data_params, train=cfg.augment)
    ds_val = task.dataset(val, stats, data_params, train=False)
    sampler = None
    if cfg.sampler == "weighted":
        sampler = weighted_sampler(train_data.hard_labels, k, cfg.seed)
    collate = task.collate_fn
    g = torch.Generator().manual_seed(cfg.seed)
    dl_train = DataLoader(ds_train, batch_size=cfg.batch_size, sampler=sampler, shuffle=sampler is None,
                          collate_fn=collate, num_workers=cfg.num_workers, generator=g, drop_last=len(ds_train) > cfg.batch_size,
                          persistent_workers=cfg.num_workers > 0)
    dl_val = DataLoader(ds_val, batch_size=max(cfg.batch_size, 128), shuffle=False, collate_fn=collate,
                        num_workers=cfg.num_workers, persistent_workers=cfg.num_workers > 0)

    weight = None
    if cfg.loss == "weighted_ce" or (cfg.loss == "focal" and cfg.sampler == "none"):
        weight = torch.as_tensor(class_weights(y, k, power=0.5 if cfg.loss == "focal" else 1.0),
                                 dtype=torch.float32)
    loss = ClassificationLoss("focal" if cfg.loss == "focal" else "ce", weight=weight, gamma=cfg.focal_gamma)
    net = spec.build(params, stats, k, data_params)
    module = ClassifierModule(net, loss, lr=cfg.lr, weight_decay=cfg.weight_decay, epochs=cfg.epochs,
                              batch_augment=task.batch_augment(data_params, stats) if cfg.augment else None,
                              seed=cfg.seed)
    ckpt_dir = run_dir / "checkpoints"
    monitor, mode = task.monitor
    checkpoint = ModelCheckpoint(dirpath=str(ckpt_dir), filename="best", monitor=monitor, mode=mode,
                                 save_top_k=1, save_last=True, enable_version_counter=False)
    callbacks = [checkpoint, EarlyStopping(monitor=monitor, mode=mode, patience=cfg.patience),
                 *extra_callbacks]
    show = _progress_enabled(progress)
    if show:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(RichProgressBar(leave=False))
    max_time = None
    if cfg.max_time_minutes:
        max_time = {"minutes": cfg.max_time_minutes}
    on_cpu = pick_device(cfg.accelerator).type == "cpu"
    trainer = L.Trainer(
        max_epochs=cfg.epochs, max_time=max_time, accelerator=cfg.accelerator, devices=cfg.devices,
        num_nodes=cfg.num_nodes, strategy=cfg.strategy, precision=_precision(cfg),
        callbacks=callbacks, logger=_loggers(run_dir, logger_names), enable_progress_bar=show,
        enable_model_summary=False, deterministic=True if on_cpu else False, log_every_n_steps=10,
        default_root_dir=str(run_dir), num_sanity_val_steps=0,
    )
    ckpt_path = None
    last = ckpt_dir / "last.ckpt"
    if resume:
        if last.exists():
            ckpt_path = str(last)
        else:
            log.warning("no checkpoint in %s: starting from scratch", ckpt_dir)
    elif ckpt_dir.exists():
        for old in ckpt_dir.glob("*.ckpt"):
            old.unlink()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*isn't a tensor.*")
        trainer.fit(module, dl_train, dl_val, ckpt_path=ckpt_path)
    if trainer.interrupted:
        # Lightning turns Ctrl-C into a graceful stop; a half-trained bundle would look finished.
        raise KeyboardInterrupt
    if trainer.global_rank != 0:
        raise SystemExit(0)  # DDP workers stop here; rank 0 writes the bundle
    best = checkpoint.best_model_path or str(last)
    if best and Path(best).exists():
        # Our own checkpoint from this run; weights_only keeps even this from unpickling code.
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    net = module.net.cpu().float()
    device = pick_device(cfg.accelerator)
    net.to(device)
    val_logits = predict_logits(net, ds_val, batch_size=max(cfg.batch_size, 128), collate_fn=collate,
                                tta_views=task.tta_views(data_params, stats) if cfg.tta else ())
    net.cpu()
    history = _read_history(run_dir / "logs" / "metrics.csv")
    return net.state_dict(), val_logits, history


def _read_history(path: Path) -> list[dict]:
    """Per-epoch rows of the CSV log (train and val rows merged by epoch)."""
    if not path.exists():
        return []
    import pandas as pd

    df = pd.read_csv(path)
    if "epoch" not in df:
        return []
    df = df.groupby("epoch").agg(lambda s: s.dropna().iloc[-1] if s.notna().any() else np.nan)
    df = df.drop(columns=[c for c in ("step",) if c in df])
    rows = []
    for epoch, r in df.iterrows():
        rows.append({"epoch": int(epoch), **{k: (None if pd.isna(v) else float(v)) for k, v in r.items()}})
    return rows
