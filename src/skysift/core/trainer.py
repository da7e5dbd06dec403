"""Training a torch network: the Lightning Trainer and its callbacks, configured from a TrainConfig.

The loop is Lightning's. This module only wires it: datasets and loaders from the task
(resampling and weighted sampling inside the training split), the loss, the
:class:`~.lightning_module.ClassifierModule`, early stopping and best/last checkpoints on the
task's monitor, mixed precision on a GPU, CSV (and optional) loggers, resume from ``last.ckpt``.
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import ConfigError
from .config import TrainConfig

if TYPE_CHECKING:
    from .backends import FitJob

log = logging.getLogger("skysift")


def fit_network(build: Callable[[], Any], job: FitJob) -> tuple[Any, np.ndarray, list[dict]]:
    """Train the network ``build()`` makes on ``job``; returns ``(trained network on the CPU,
    validation logits, per-epoch history)``. The best checkpoint (by the task's monitor) wins."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from torch.utils.data import DataLoader

    from .inference import pick_device, predict_logits
    from .leakage import check_training_set
    from .lightning_module import ClassifierModule
    from .losses import ClassificationLoss
    from .metrics import headline_scores
    from .sampling import class_weights, resample_indices, weighted_sampler

    task, train, val, stats, params, cfg = job.task, job.train, job.val, job.stats, job.data_params, job.cfg
    run_dir = job.run_dir

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)  # hardware banners and tips are noise here
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    y = train.hard_labels
    k = train.n_classes
    if cfg.resample == "smote":
        raise ConfigError("SMOTE works on feature vectors: use it with a feature model "
                          "(e.g. a gradient-boosted one); for networks use --resample over")
    train_data = train
    if cfg.resample in ("over", "under"):
        # indices into the whole data set, drawn from the training split's only
        train_data = job.data.subset(resample_indices(job.split["train"], y, cfg.resample, cfg.seed))
    ds_train = task.dataset(train_data, stats, params, train=cfg.augment)
    ds_val = task.dataset(val, stats, params, train=False)
    sampler = None
    if cfg.sampler == "weighted":
        sampler = weighted_sampler(train_data.hard_labels, k, cfg.seed)
    collate = task.collate_fn
    g = torch.Generator().manual_seed(cfg.seed)
    dl_train = DataLoader(ds_train, batch_size=cfg.batch_size, sampler=sampler, shuffle=sampler is None,
                          collate_fn=collate, num_workers=cfg.num_workers, generator=g,
                          drop_last=len(ds_train) > cfg.batch_size,
                          persistent_workers=cfg.num_workers > 0)
    dl_val = DataLoader(ds_val, batch_size=max(cfg.batch_size, 128), shuffle=False, collate_fn=collate,
                        num_workers=cfg.num_workers, persistent_workers=cfg.num_workers > 0)

    weight = None
    if cfg.loss == "weighted_ce" or (cfg.loss == "focal" and cfg.sampler == "none"):
        weight = torch.as_tensor(class_weights(y, k, power=0.5 if cfg.loss == "focal" else 1.0),
                                 dtype=torch.float32)
    loss = ClassificationLoss("focal" if cfg.loss == "focal" else "ce", weight=weight, gamma=cfg.focal_gamma)
    net = build()
    check_training_set(train_data.groups, train.groups, job.held_out_groups)
    names = list(train.class_names)
    module = ClassifierModule(net, loss, lr=cfg.lr, weight_decay=cfg.weight_decay, epochs=cfg.epochs,
                              batch_augment=task.batch_augment(params, stats) if cfg.augment else None,
                              seed=cfg.seed,
                              val_scores=lambda targets, logits: headline_scores(task, names, targets, logits))
    ckpt_dir = run_dir / "checkpoints"
    monitor, mode = task.info.monitor
    checkpoint = ModelCheckpoint(dirpath=str(ckpt_dir), filename="best", monitor=monitor, mode=mode,
                                 save_top_k=1, enable_version_counter=False)
    # last.ckpt after every epoch, for --resume. Not ``save_last=True`` on the checkpoint above: since
    # Lightning 2.6 that writes last.ckpt only in an epoch where the monitored metric improved, so a
    # killed run resumed from the last *improving* epoch. A monitor-less checkpoint saves every epoch.
    latest = ModelCheckpoint(dirpath=str(ckpt_dir), filename="last", monitor=None, save_top_k=1,
                             enable_version_counter=False)
    # checkpoint="last": every epoch runs, so that the one-cycle schedule anneals the learning rate
    # to zero, and the final weights are kept. Why: when the validation split holds a handful of
    # positives (transits: ~16 hosts in 1,000 stars), its headline metric jumps by ±0.05 from epoch
    # to epoch, and the "best" epoch is partly chance (an under-trained epoch 3 in one training)
    stop = [EarlyStopping(monitor=monitor, mode=mode, patience=cfg.patience)] if cfg.checkpoint == "best" else []
    callbacks = [checkpoint, latest, *stop, *job.callbacks]  # latest after best: it stores best's state
    show = job.progress
    if show:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(RichProgressBar(leave=False))
    max_time: dict[str, Any] | None = None
    if cfg.max_time_minutes:
        max_time = {"minutes": cfg.max_time_minutes}
    on_cpu = pick_device(cfg.accelerator).type == "cpu"
    trainer = L.Trainer(
        max_epochs=cfg.epochs, max_time=max_time, accelerator=cfg.accelerator, devices=cfg.devices,
        num_nodes=cfg.num_nodes, strategy=cfg.strategy, precision=_precision(cfg),  # type: ignore[arg-type]  # one of Lightning's names
        callbacks=callbacks, logger=_loggers(run_dir, job.loggers), enable_progress_bar=show,
        enable_model_summary=False, deterministic=True if on_cpu else False, log_every_n_steps=10,
        default_root_dir=str(run_dir), num_sanity_val_steps=0,
    )
    ckpt_path = None
    last = ckpt_dir / "last.ckpt"
    if job.resume:
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
    if cfg.checkpoint == "best" and best and Path(best).exists():
        # Our own checkpoint from this run; weights_only keeps even this from unpickling code.
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    net = module.net.cpu().float()
    device = pick_device(cfg.accelerator)
    net.to(device)
    val_logits = predict_logits(net, ds_val, batch_size=max(cfg.batch_size, 128), collate_fn=collate,
                                tta_views=task.tta_views(params, stats) if cfg.tta else ())
    net.cpu()
    history = _read_history(run_dir / "logs" / "metrics.csv")
    return net, val_logits, history




def _precision(cfg: TrainConfig) -> str:
    import torch

    if cfg.precision != "auto":
        return cfg.precision if cfg.precision != "32" else "32-true"
    if torch.cuda.is_available() and cfg.accelerator in ("auto", "gpu", "cuda"):
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def _loggers(run_dir: Path, names: list[str]):
    from lightning.pytorch.loggers import CSVLogger

    out: list[Any] = [CSVLogger(str(run_dir), name="logs", version="")]
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


def progress_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return os.environ.get("SKYSIFT_NO_PROGRESS", "") == ""


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
