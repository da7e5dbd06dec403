"""The ``transits`` task: does this star host a transiting planet? (Kepler/TESS flux series)."""
from ..core.task import TaskInfo

INFO = TaskInfo(
    name="transits",
    description=("Kepler/TESS flux series (Kaggle 'Kepler labelled time series' CSV or FITS light "
                 "curves): does this star host a transiting planet?"),
    default_model="resnet1d",
    headline_metric="pr_auc",
    train_defaults={"epochs": 30, "batch_size": 64, "lr": 2e-3, "patience": 8, "sampler": "weighted",
                    "loss": "ce", "val_frac": 0.2},
    # the demo trains a slimmer network for a few epochs so that all four tasks finish in minutes
    demo={"n_train": 1500, "n_test": 800, "epochs": 6, "patience": 6,
          "model_params": {"width": 16, "depth": 4, "attention_layers": 1}},
    simulate_default_n=3000,
)
