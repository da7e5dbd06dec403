"""The ``transits`` task: does this star host a transiting planet? (Kepler/TESS flux series)."""
from ..core.task import TaskInfo

INFO = TaskInfo(
    name="transits",
    description=("Kepler/TESS flux series (Kaggle 'Kepler labelled time series' CSV or FITS light "
                 "curves): does this star host a transiting planet?"),
    # a network on box-least-squares views: trains on 5,000 stars in minutes on 2 CPU cores and
    # holds up on light curves of another generator (see the README's transits figures)
    default_model="views-net",
    headline_metric="pr_auc",
    train_defaults={"epochs": 30, "batch_size": 64, "lr": 2e-3, "patience": 8, "sampler": "weighted",
                    "loss": "ce", "val_frac": 0.2},
    # the demo trains for a few epochs so that all four tasks finish in minutes
    demo={"n_train": 1500, "n_test": 800, "epochs": 8, "patience": 6},
    # the size of the Kaggle set (5,087 stars, 37 hosts): the common case
    simulate_default_n=5000,
)
