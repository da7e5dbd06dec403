"""PLAsTiCC-format data sets in the Kaggle CSV layout, written from simulated objects.

The models live in :mod:`skysift.transients.physics` (parameters, noiseless light curves) and the
observing in :mod:`skysift.transients.survey` (sky, cadence, noise, detection cut, the driver
:func:`simulate_objects`); this module writes their output as ``training_set.csv`` /
``test_set.csv`` + metadata + ``truth.csv``. The names below are re-exported so that callers keep
importing the simulator from one place.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..core.io import atomic_path
from ..errors import ConfigError
from .physics import PARAM_COLUMNS, SURVEY_END, SURVEY_START, ZERO_POINT, distance_modulus, model_flux
from .survey import DDF_FRACTION, PLASTICC_TRAIN_COUNTS, class_counts, simulate_objects

#: the names callers import from here
__all__ = ["PARAM_COLUMNS", "SURVEY_END", "SURVEY_START", "ZERO_POINT", "distance_modulus",
           "model_flux", "DDF_FRACTION", "PLASTICC_TRAIN_COUNTS", "class_counts",
           "simulate_objects", "simulate"]


def _write_csv(path: Path, df: pd.DataFrame, float_format=None) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format=float_format, na_rep="nan")


def simulate(out: str | Path, n: int = 3000, seed: int = 0, *, labelled: bool = True,
             unknown_fraction: float = 0.0, classes=None, class_fractions=None) -> Path:
    """Write a PLAsTiCC-layout data set of ``n`` objects into folder ``out`` and return it.

    ``labelled=True``: ``training_set.csv`` and ``training_set_metadata.csv`` (with ``target``);
    ``labelled=False``: ``test_set.csv`` and ``test_set_metadata.csv`` (no ``target``). Both write
    ``truth.csv`` (``object_id, target, true_z, ...`` and the model parameters). Every file is
    written atomically.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder")
    ids, lc, target, truth = simulate_objects(n, seed, classes, class_fractions,
                                              unknown_fraction=unknown_fraction)
    obs = pd.DataFrame({
        "object_id": np.repeat(ids, lc.lengths), "mjd": np.round(lc.mjd, 4),
        "passband": lc.passband.astype(np.int64), "flux": np.round(lc.flux.astype(np.float64), 6),
        "flux_err": np.round(lc.flux_err.astype(np.float64), 6), "detected": lc.detected.astype(np.int64)})
    meta = pd.DataFrame({
        "object_id": ids, "ra": np.round(truth["ra"], 6), "decl": np.round(truth["decl"], 6),
        "gal_l": np.round(truth["gal_l"], 6), "gal_b": np.round(truth["gal_b"], 6),
        "ddf": truth["ddf"].astype(np.int64), "hostgal_specz": lc.meta["hostgal_specz"],
        "hostgal_photoz": lc.meta["hostgal_photoz"], "hostgal_photoz_err": lc.meta["hostgal_photoz_err"],
        "distmod": lc.meta["distmod"], "mwebv": lc.meta["mwebv"], "target": target})
    stem = "training_set" if labelled else "test_set"
    if not labelled:
        meta = meta.drop(columns="target")
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / f"{stem}.csv", obs)
    _write_csv(out / f"{stem}_metadata.csv", meta)
    _write_csv(out / "truth.csv", truth)
    return out
