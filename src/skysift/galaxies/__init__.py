"""The ``galaxies`` task: Galaxy Zoo morphology from colour cutouts (see ``task.py``)."""
from ..core.task import TaskInfo

INFO = TaskInfo(
    name="galaxies",
    description=("Galaxy colour cutouts (seed .npz arrays, Galaxy10 HDF5, or JPEG/PNG folders with a "
                 "Galaxy Zoo catalogue): morphology classes, or vote fractions as soft targets."),
    default_model="galaxy-timm",
    headline_metric="accuracy",
    # plain (unweighted) sampling: the headline is accuracy on the natural class mix; the
    # imbalance tools (--sampler weighted, --resample over with rotated copies) stay available.
    # tta: the class does not change under the 8 symmetries of the square (but for a spiral's
    # sense under a mirror, mapped back by the views), and averaging over
    # them added 0.3-1.2 points of GZ1 three-way accuracy to the default over five seeds
    # (benchmarks/sweep_galaxies_gz1.py) for 8x the prediction cost.
    train_defaults={"epochs": 15, "batch_size": 64, "lr": 2e-3, "patience": 5, "sampler": "none",
                    "loss": "ce", "val_frac": 0.2, "tta": True},
    demo={"n_train": 1500, "n_test": 500, "epochs": 8, "patience": 8},
    simulate_default_n=3000,
)
