"""``transients``: PLAsTiCC / LSST multi-band light curves — 14 classes, or something new (class 99)."""
from ..core.task import TaskInfo
from .data import CLASS_LABELS

INFO = TaskInfo(
    name="transients",
    description=("PLAsTiCC / LSST multi-band light curves (Kaggle or unblinded CSV, gzip or Parquet; "
                 "observations + metadata): which of the 14 classes, or something new (class 99)?"),
    default_model="lgbm",
    headline_metric="plasticc_log_loss",
    higher_is_better=False,
    id_column="object_id",
    # weighted sampling gives every class the same weight in the loss, as the metric does
    train_defaults={"epochs": 40, "batch_size": 64, "lr": 2e-3, "patience": 8, "sampler": "weighted",
                    "loss": "ce", "val_frac": 0.2},
    demo={"n_train": 2500, "n_test": 1000, "epochs": 1},
    simulate_default_n=3000,
    class_labels={str(k): v for k, v in CLASS_LABELS.items()},
)
