"""PLAsTiCC-format data sets in the Kaggle CSV layout, written from simulated objects.

The models live in :mod:`skysift.transients.physics` (parameters, noiseless light curves) and the
observing in :mod:`skysift.transients.survey` (sky, cadence, noise, detection cut, the driver
:func:`simulate_objects`); this module writes their output as ``training_set.csv`` /
``test_set.csv`` + metadata + ``truth.csv``. The names below are re-exported so that callers keep
importing the simulator from one place.
"""
from __future__ import annotations

import os
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


#: objects simulated and written at a time when a data set is larger than this: ~4 M observations,
#: a few hundred MB at the simulator's peak, whatever ``n`` is
STREAM_CHUNK = 20_000


def simulate(out: str | Path, n: int = 3000, seed: int = 0, *, labelled: bool = True,
             unknown_fraction: float = 0.0, classes=None, class_fractions=None,
             chunk_objects: int = STREAM_CHUNK) -> Path:
    """Write a PLAsTiCC-layout data set of ``n`` objects into folder ``out`` and return it.

    ``labelled=True``: ``training_set.csv`` and ``training_set_metadata.csv`` (with ``target``);
    ``labelled=False``: ``test_set.csv`` and ``test_set_metadata.csv`` (no ``target``). Both write
    ``truth.csv`` (``object_id, target, true_z, ...`` and the model parameters). Every file is
    written atomically.

    Up to ``chunk_objects`` objects are simulated in one go; a larger ``n`` (a PLAsTiCC-sized test
    set: millions of objects, hundreds of millions of rows) is simulated and appended chunk by chunk
    with bounded memory and a progress display (see :func:`_simulate_stream`).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder")
    if chunk_objects < 1:
        raise ConfigError(f"chunk_objects must be >= 1, got {chunk_objects}")
    if isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > chunk_objects:
        return _simulate_stream(out, int(n), seed, labelled=labelled, unknown_fraction=unknown_fraction,
                                classes=classes, class_fractions=class_fractions, chunk_objects=chunk_objects)
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


# ---- streaming writer -----------------------------------------------------------------------------
def _chunk_tables(ids, lc, target, truth, labelled: bool):
    """pyarrow tables (observations, metadata, truth) of one simulated chunk, rounded like
    :func:`simulate`'s CSVs."""
    import pyarrow as pa

    obs = pa.table({
        "object_id": np.repeat(ids, lc.lengths), "mjd": np.round(lc.mjd, 4),
        "passband": lc.passband.astype(np.int64), "flux": np.round(lc.flux.astype(np.float64), 6),
        "flux_err": np.round(lc.flux_err.astype(np.float64), 6), "detected": lc.detected.astype(np.int64)})
    meta = {
        "object_id": ids, "ra": np.round(truth["ra"].to_numpy(), 6), "decl": np.round(truth["decl"].to_numpy(), 6),
        "gal_l": np.round(truth["gal_l"].to_numpy(), 6), "gal_b": np.round(truth["gal_b"].to_numpy(), 6),
        "ddf": truth["ddf"].to_numpy().astype(np.int64), "hostgal_specz": lc.meta["hostgal_specz"],
        "hostgal_photoz": lc.meta["hostgal_photoz"], "hostgal_photoz_err": lc.meta["hostgal_photoz_err"],
        "distmod": lc.meta["distmod"], "mwebv": lc.meta["mwebv"]}
    if labelled:
        meta["target"] = target
    # NaN stays NaN ("nan" in the CSV, as DataFrame.to_csv writes it), not null
    return obs, pa.table(meta), pa.table({c: truth[c].to_numpy() for c in truth.columns})


def _simulate_stream(out: Path, n: int, seed: int, *, labelled: bool, unknown_fraction: float,
                     classes, class_fractions, chunk_objects: int) -> Path:
    """:func:`simulate` for a large ``n``: chunks of ``chunk_objects`` objects, each simulated by
    :func:`simulate_objects` with its own seed (drawn from ``SeedSequence([seed, chunk])``) and its
    ids shifted past the previous chunk's, appended to the three CSVs with pyarrow's CSV writer
    (~10x faster than ``DataFrame.to_csv`` at hundreds of millions of rows). The light-curve file
    is sorted by ``object_id`` then ``mjd``, as the Kaggle test set is, so ``predict`` can stream it.
    Every chunk has the class mix of the whole (largest remainder per chunk). The files appear
    only when complete (written under temporary names, then renamed)."""
    import contextlib

    import pyarrow.csv as pacsv

    from ..core.progress import track

    stem = "training_set" if labelled else "test_set"
    out.mkdir(parents=True, exist_ok=True)
    sizes = [chunk_objects] * (n // chunk_objects) + ([n % chunk_objects] if n % chunk_objects else [])
    opts = pacsv.WriteOptions(include_header=False, quoting_style="none")
    last_id = 614  # simulate_objects numbers objects from 615 up
    with contextlib.ExitStack() as stack:
        paths = [stack.enter_context(atomic_path(out / name))
                 for name in (f"{stem}.csv", f"{stem}_metadata.csv", "truth.csv")]
        files = [stack.enter_context(open(p, "wb")) for p in paths]
        for i in track(range(len(sizes)), f"simulating {n:,} objects into {out}",
                       unit=f"chunks of {chunk_objects:,} objects"):
            chunk_seed = int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, i]).generate_state(1)[0])
            ids, lc, target, truth = simulate_objects(sizes[i], chunk_seed, classes, class_fractions,
                                                      unknown_fraction=unknown_fraction)
            ids = ids + (last_id - 614)
            truth["object_id"] = ids
            last_id = int(ids[-1])
            for fh, table in zip(files, _chunk_tables(ids, lc, target, truth, labelled)):
                if i == 0:
                    fh.write((",".join(table.column_names) + "\n").encode())
                pacsv.write_csv(table, fh, opts)
        for fh in files:
            fh.flush()
            os.fsync(fh.fileno())
    return out
