"""Batch inference and feature extraction over a partitioned catalogue, with Dask distributed.

A catalogue is a folder of partitions (``*.parquet`` files, read in file-name order) or an explicit
list of files/folders, each one something the task's ``load`` reads. Every partition is one Dask
task: the worker reads it with ``task.load``, predicts with the model (loaded once per worker with
:func:`skysift.load` and cached there), and writes its own output file atomically; the client then
concatenates the outputs in partition order. Workers therefore need skysift installed and the run
directory, the partitions and the output folder on a shared file system; nothing but paths and small summaries
travels through the scheduler, and the model files are never pickled (only the task functions are,
by Dask).

``scheduler`` is a scheduler address (``tcp://host:8786``), an existing ``distributed.Client``,
``None``/``"local"`` for a :class:`~distributed.LocalCluster` of 2 single-threaded worker processes
on 127.0.0.1, or ``"inline"`` to run the partitions one after the other in this process (no Dask;
the same code path, for small catalogues and as the reference in tests).
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..errors import ConfigError, DataError, SkysiftError
from .io import atomic_path

LOCAL = "local"
INLINE = "inline"


# ---- partitions -------------------------------------------------------------------------------
def catalogue_partitions(data: str | Path | Sequence[str | Path]) -> list[Path]:
    """The partitions of a catalogue, in order: a folder holding ``*.parquet`` files gives its
    files sorted by name; a list gives its items (a folder of Parquet files inside the list is
    expanded the same way; any other file or folder is one partition)."""
    items = [data] if isinstance(data, (str, Path)) else list(data)
    if not items:
        raise DataError(None, "the catalogue has no partitions")
    parts: list[Path] = []
    for item in items:
        p = Path(item)
        if not p.exists():
            raise DataError(p, "no such file or directory")
        inner = sorted(p.glob("*.parquet")) if p.is_dir() else []
        parts.extend(inner or [p])
    return [p.resolve() for p in parts]


# ---- the cluster ------------------------------------------------------------------------------
@contextlib.contextmanager
def dask_client(scheduler: Any = None, *, n_workers: int = 2) -> Iterator[Any]:
    """A ``distributed.Client``: the one given, one connected to ``scheduler``'s address, or one on
    a fresh local cluster (closed on exit)."""
    from distributed import Client, LocalCluster

    if scheduler is not None and not isinstance(scheduler, str):
        yield scheduler  # an existing Client: the caller owns it
        return
    if scheduler in (None, "", LOCAL):
        import dask

        # Workers are non-daemonic so that a task's loader may use a process pool of its own
        # (transits cleans large batches in one); daemonic processes may not have children.
        with dask.config.set({"distributed.worker.daemon": False}):
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None,
                                   # our private cluster: its shutdown chatter is noise, failures reach the client
                                   silence_logs=logging.CRITICAL)
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
        return
    import dask

    try:
        client = Client(scheduler, timeout=dask.config.get("distributed.comm.timeouts.connect"))
    except (OSError, TimeoutError, ValueError) as e:
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler!r}: {e}") from None
    try:
        yield client
    finally:
        client.close()


# ---- worker side ------------------------------------------------------------------------------
_MODELS: dict[tuple, Any] = {}


def _model(run_dir: str):
    """The model of ``run_dir``, loaded once per worker process (reloaded if the bundle changed)."""
    from .model import load

    files = [Path(run_dir) / n for n in ("model.json", "model.safetensors")]
    key = (run_dir, *(f.stat().st_mtime_ns if f.exists() else 0 for f in files))
    if key not in _MODELS:
        _MODELS.clear()
        _MODELS[key] = load(run_dir)
    return _MODELS[key]


def _guard(fn, *args) -> dict:
    """Run one partition; a user-facing error comes back as its message (skysift's exceptions are
    not all picklable, and a failed unpickle would hide the message behind Dask's own error)."""
    import zlib

    from .tables import unreadable

    try:
        return {"ok": True, **fn(*args)}
    except SkysiftError as e:
        return {"ok": False, "error": str(e)}
    except (OSError, EOFError, zlib.error) as e:  # the partition (args[-2]) or its output, on the worker's disk
        return {"ok": False, "error": str(unreadable(getattr(e, "filename", None) or args[-2], e))}


def _predict_partition(run_dir: str, tta: bool | None, predicted_class: bool, part: str, out_file: str) -> dict:
    model = _model(run_dir)
    data = model.read(part, labelled=False)
    df = model.predict(data, tta=tta, predicted_class=predicted_class)
    with atomic_path(out_file) as tmp:
        df.to_parquet(tmp, index=False)  # Parquet keeps ids as strings and floats bit-exact
    return {"n": len(df), "pid": os.getpid()}


def _features_partition(task_name: str, stats: dict, params: dict, part: str, out_file: str) -> dict:
    import pandas as pd

    from .task import get_task

    task = get_task(task_name)
    data = task.load(part, labelled=None)
    if task.features is None:
        raise ConfigError(f"task {task_name!r} has no feature vectors")
    X = np.asarray(task.features(data, stats, params), dtype=np.float64)
    cols: dict[str, Any] = {task.info.id_column: np.asarray(data.ids).astype(str)}
    if data.has_labels:
        cols["label"] = np.asarray(data.class_names, dtype=object)[data.hard_labels]
    width = max(3, len(str(X.shape[1] - 1)))
    cols.update({f"f{j:0{width}d}": X[:, j] for j in range(X.shape[1])})
    with atomic_path(out_file) as tmp:
        pd.DataFrame(cols).to_parquet(tmp, index=False)
    return {"n": len(X), "n_features": int(X.shape[1]), "pid": os.getpid()}


# ---- client side ------------------------------------------------------------------------------
@contextlib.contextmanager
def _run(fn, args_per_part: list[tuple], parts: list[Path], out: Path, scheduler: Any, suffix: str):
    """Run one task per partition and wait; yields (per-partition files in order, their results,
    the number of workers). The per-partition files are removed on exit."""
    out.parent.mkdir(parents=True, exist_ok=True)
    # beside the output: on the same (shared) file system, so a worker's atomic rename is local
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.parts-", dir=out.parent))
    try:
        files = [tmp_dir / f"part-{i:05d}{suffix}" for i in range(len(parts))]
        if scheduler == INLINE:
            results = [_guard(fn, *args, str(part), str(f)) for args, part, f in zip(args_per_part, parts, files)]
            n_workers = 0
        else:
            results, n_workers = _submit(fn, args_per_part, parts, files, scheduler, tmp_dir.name)
        for part, res in zip(parts, results):
            if not res["ok"]:
                raise SkysiftError(f"partition {part}: {res['error']}")
        yield files, results, n_workers
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _submit(fn, args_per_part, parts, files, scheduler, tag: str) -> tuple[list[dict], int]:
    from distributed import wait

    with dask_client(scheduler) as client:
        try:
            client.wait_for_workers(1, timeout=60)
        except TimeoutError:
            raise ConfigError(f"the Dask scheduler {client.scheduler.address} has no workers") from None
        futures = [client.submit(_guard, fn, *args, str(part), str(f), pure=False,
                                 key=f"skysift-{fn.__name__}-{i}-{tag}")
                   for i, (args, part, f) in enumerate(zip(args_per_part, parts, files))]
        wait(futures)
        return client.gather(futures), len(client.scheduler_info().get("workers", {}))


def predict_catalogue(run_dir: str | Path, partitions: str | Path | Sequence[str | Path], out_csv: str | Path, *,
                      scheduler: Any = None, tta: bool | None = None, predicted_class: bool = False) -> dict:
    """Predict every partition of a catalogue with the model in ``run_dir``, one Dask task per
    partition, into one CSV in the task's submission layout (rows in partition order);
    ``predicted_class`` appends the task's declared decision as :meth:`Model.frame` does.

    Returns ``{"path", "n", "partitions", "workers", "seconds"}``.
    """
    import pandas as pd

    from .bundle import read_card

    t0 = time.perf_counter()
    run_dir = Path(run_dir).resolve()
    read_card(run_dir)  # a missing or broken bundle fails here, before any cluster starts
    parts = catalogue_partitions(partitions)
    out = Path(out_csv)
    n = 0
    with _run(_predict_partition, [(str(run_dir), tta, predicted_class) for _ in parts], parts, out, scheduler,
              ".parquet") as (files, results, n_workers):
        with atomic_path(out) as tmp:
            for i, f in enumerate(files):
                df = pd.read_parquet(f)
                df.to_csv(tmp, index=False, header=i == 0, mode="w" if i == 0 else "a")
                n += len(df)
    return {"path": out, "n": n, "partitions": len(parts), "workers": n_workers,
            "seconds": time.perf_counter() - t0}


def features_catalogue(task_or_run: str | Path, partitions: str | Path | Sequence[str | Path],
                       out_parquet: str | Path, *, scheduler: Any = None) -> dict:
    """Feature vectors (``task.features``) of every partition into one Parquet file: the id, the
    class name when the data has labels, and ``f000``... ``task_or_run`` is a task name (features
    with default statistics) or a run directory (the statistics and parameters it was trained with).

    Returns ``{"path", "n", "n_features", "partitions", "workers", "seconds"}``.
    """
    import pyarrow.parquet as pq

    from .bundle import read_card
    from .task import get_task, task_names

    t0 = time.perf_counter()
    run = Path(task_or_run)
    if str(task_or_run) not in task_names() and (run / "model.json").exists():
        card = read_card(run)
        from .registry import card_params

        # the features hook takes the data parameters (e.g. the lgbm feature set)
        params = card_params(get_task(card["task"]).models.get(card["model"]["name"]), card["model"])[1]
        task_name, stats = card["task"], card.get("preprocessing", {})
    else:
        task_name, stats, params = get_task(str(task_or_run)).name, {}, {}
    parts = catalogue_partitions(partitions)
    out = Path(out_parquet)
    n = 0
    n_features = None
    with _run(_features_partition, [(task_name, stats, params) for _ in parts], parts, out, scheduler,
              ".parquet") as (files, results, n_workers):
        widths = {r["n_features"] for r in results}
        if len(widths) > 1:
            raise DataError(None, f"partitions give different numbers of features: {sorted(widths)}")
        n_features = widths.pop()
        with atomic_path(out) as tmp:
            writer = None
            try:
                for f in files:
                    table = pq.read_table(f)
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema)
                    elif table.schema != writer.schema:
                        # e.g. labels in some partitions only
                        raise DataError(f, "its columns differ from the first partition's")
                    writer.write_table(table)
                    n += table.num_rows
            finally:
                if writer is not None:
                    writer.close()
    return {"path": out, "n": n, "n_features": n_features, "partitions": len(parts), "workers": n_workers,
            "seconds": time.perf_counter() - t0}
