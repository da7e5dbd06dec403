"""Stream PLAsTiCC light-curve files far larger than memory (the full test set: ~450 M rows, ~20 GB).

:func:`iter_chunks` reads a light-curve CSV (gzip or not) in pyarrow record batches and yields
:class:`~skysift.core.data.TaskData` chunks of whole objects: the file must be sorted by
``object_id`` (the PLAsTiCC test files are), so the observations of the last id of a batch are
carried over to the next one and an object is never split. Memory is bounded by ``chunk_rows``
observations (plus the longest object) plus the per-object metadata, which is held in memory
for every object of the metadata file (~64 bytes per object: ~220 MB for the 3.5 M test objects).

:func:`predict_stream` runs a prediction function chunk by chunk (two chunks at a time on threads
while this thread reads the next) and appends the rows to a CSV, checkpointing after every chunk so
that an interrupted run resumes where it stopped, if the same model and settings wrote it. Measured
(``benchmarks/bench_transients_scale.py stream``): 0.70 ms of CPU per object end to end with the
default LightGBM, peak RSS 1.34 GB at 1,000,000 objects, independent of the file size but for the
metadata.

:func:`write_parquet_catalogue` turns the CSVs into a partitioned Parquet catalogue for the
generic Dask engine (each partition loads on its own with :func:`skysift.transients.io.load`).
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..core import tables
from ..core.data import TaskData
from ..core.io import atomic_path, write_json
from ..errors import DataError
from . import io
from .data import META_COLUMNS, LightCurves

log = logging.getLogger(__name__)

#: observations per chunk by default: ~26 MB of arrays, a few seconds of LightGBM features
DEFAULT_CHUNK_ROWS = 1_000_000
#: bytes of CSV text pyarrow parses per record batch. pyarrow's converters allocate ~35x the
#: block (measured: 8 MiB blocks peaked at 293 MiB of Arrow memory, 1 MiB at 36 MiB) for the
#: same throughput on this machine, so blocks stay small
BLOCK_SIZE = 2**20


def _metadata_path(lc_path: Path, metadata_path: str | Path | None) -> Path:
    if metadata_path is not None:
        p = Path(metadata_path)
        if not p.exists():
            raise DataError(p, "no such metadata file")
        return p
    cands = io.metadata_candidates(lc_path)
    if not cands:
        raise DataError(lc_path, "no metadata file found beside it; pass the metadata path")
    return cands[0]


def _batches(lc_path: Path, mapping: dict[str, str], block_size: int) -> Iterator[tuple[object, int]]:
    """Typed record batches of the observation columns, with the data-row count before each."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    types = {raw: io._arrow_type(canon) for raw, canon in mapping.items()}
    row0 = 0
    reader = None
    while True:
        try:
            if reader is None:  # opening already parses the first block
                reader = pacsv.open_csv(
                    str(lc_path), read_options=pacsv.ReadOptions(block_size=block_size, use_threads=False),
                    convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(mapping),
                                                         null_values=tables.NULLS))
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            _diagnose_stream(lc_path, mapping, block_size, row0, e)
        except (OSError, EOFError) as e:  # a gzip file cut short: the rows before it were fine
            err = tables.unreadable(lc_path, e)
            raise DataError(lc_path, err.problem, where=f"after row {row0}") from None
        table = pa.Table.from_batches([batch]).rename_columns([mapping[c] for c in batch.schema.names])
        yield table, row0
        row0 += batch.num_rows


def _diagnose_stream(lc_path: Path, mapping: dict[str, str], block_size: int, row0: int,
                     error: Exception) -> None:
    """Error path: re-read the file as strings up to the failing batch to name the bad row."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    bad: list = []

    def on_invalid(row):
        bad.append(row)
        return "error"

    seen = 0
    try:
        reader = pacsv.open_csv(
            str(lc_path), read_options=pacsv.ReadOptions(block_size=block_size),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in mapping},
                                                 include_columns=list(mapping), strings_can_be_null=True,
                                                 null_values=tables.NULLS))
        for batch in reader:
            io.find_bad_value(lc_path, pa.Table.from_batches([batch]), mapping, row0=seen)
            seen += batch.num_rows
    except (OSError, EOFError) as e:
        raise DataError(lc_path, tables.unreadable(lc_path, e).problem, where=f"after row {seen}") from None
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        if bad:
            row = bad[0]
            raise DataError(lc_path, f"ragged row: {row.actual_columns} fields where the header has "
                            f"{row.expected_columns}: {row.text[:80]!r}", where=f"after row {seen}") from None
        raise DataError(lc_path, f"could not be parsed as CSV ({e})", where=f"after row {seen}") from None
    raise DataError(lc_path, f"could not be parsed as CSV ({error})", where=f"after row {row0}") from None


def iter_chunks(lightcurves_path: str | Path, metadata_path: str | Path | None = None, *,
                chunk_rows: int = DEFAULT_CHUNK_ROWS, labelled: bool | None = False,
                allow_unknown: bool = False, after_object_id: int | None = None,
                block_size: int = BLOCK_SIZE, on_metadata: Callable[[int], None] | None = None
                ) -> Iterator[TaskData]:
    """Yield TaskData chunks of whole objects from a light-curve CSV sorted by ``object_id``: each
    holds at least ``chunk_rows`` observations (the last one fewer) and at most ``chunk_rows`` plus
    one pyarrow block (``block_size`` bytes of CSV) plus the longest object.

    Every chunk is validated like :func:`skysift.transients.io.load` (its metadata rows are taken
    from ``metadata_path``, found beside the file when None). ``after_object_id`` skips objects
    with ids up to and including it (resuming). ``labelled`` as in ``load`` (default: ignore
    targets). Ids going backwards raise a DataError (the file is not sorted by ``object_id``).
    ``on_metadata(n)`` is called with the number of metadata objects once they are read.
    Metadata objects never seen in the file are logged (a shard of the split test set shares
    its metadata file with the other shards, so they are not an error here).
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be >= 1")
    lc_path = Path(lightcurves_path)
    if not lc_path.exists():
        raise DataError(lc_path, "no such file")
    if io._is_parquet(lc_path):
        raise DataError(lc_path, "streaming reads CSV files; load Parquet partitions one by one with io.load")
    meta_path = _metadata_path(lc_path, metadata_path)
    header = io.read_header(lc_path)
    mapping = io._column_map(lc_path, header, io.OBS_COLUMNS, io.OBS_COLUMNS)
    meta = io.read_metadata(meta_path, labelled=labelled)
    if on_metadata is not None:
        on_metadata(len(meta.ids))
    layout = io._layout(header, io.read_header(meta_path))
    pending: list[dict[str, np.ndarray]] = []
    n_pending = 0
    last_id: int | None = None
    first_row = 0
    n_chunk = 0
    n_objects = 0

    def emit(parts: list[dict[str, np.ndarray]], row_start: int) -> TaskData | None:
        nonlocal n_chunk, n_objects
        obs = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        if after_object_id is not None:
            keep = obs["object_id"] > after_object_id
            if not keep.any():
                return None
            obs = {k: v[keep] for k, v in obs.items()}
        card = {"format": io._fmt(lc_path), "chunk": n_chunk, "first_row": row_start + 1}
        obs = io.sort_observations(lc_path, obs, card)
        td = io.assemble(obs, meta, lc_path=lc_path, labelled=labelled, allow_unknown=allow_unknown,
                         partial_metadata=True, layout=layout, source=str(lc_path), card=card)
        n_chunk += 1
        n_objects += len(td)
        return td

    for table, row0 in _batches(lc_path, mapping, block_size):
        if table.num_rows == 0:
            continue
        obs = io.observation_arrays(lc_path, table, row0)
        oid = obs["object_id"]
        prev = oid if last_id is None else np.concatenate([[last_id], oid])
        back = np.flatnonzero(prev[1:] < prev[:-1])
        if len(back):
            i = int(back[0]) + (0 if last_id is None else -1) + 1  # row of oid that went backwards
            raise DataError(lc_path, f"object ids go backwards ({int(oid[i])} after {int(prev[back[0]])}): "
                            "streaming needs the file sorted by object_id; load it whole with io.load instead",
                            where=f"row {row0 + i + 1}, object {int(oid[i])}")
        last_id = int(oid[-1])
        pending.append(obs)
        n_pending += len(oid)
        if n_pending < chunk_rows:
            continue
        # cut before the rows of the last id: that object may continue in the next batch
        cat = {k: np.concatenate([p[k] for p in pending]) for k in obs}
        cut = int(np.searchsorted(cat["object_id"], last_id, side="left"))
        if cut < chunk_rows:  # too few complete objects yet (or one object longer than chunk_rows)
            pending, n_pending = [cat], len(cat["object_id"])
            continue
        td = emit([{k: v[:cut] for k, v in cat.items()}], first_row)
        if td is not None:
            yield td
        first_row += cut
        pending = [{k: v[cut:] for k, v in cat.items()}]
        n_pending = len(pending[0]["object_id"])
    if n_pending:
        td = emit(pending, first_row)
        if td is not None:
            yield td
    elif last_id is None:
        raise DataError(lc_path, "no observation rows")
    if after_object_id is None and n_objects < len(meta.ids):
        log.info("%s: %d metadata object(s) have no observations in %s", meta_path,
                 len(meta.ids) - n_objects, lc_path)


# ---- resumable prediction -----------------------------------------------------------------------
def progress_path(out_csv: str | Path) -> Path:
    """The checkpoint file of :func:`predict_stream` beside ``out_csv``."""
    out_csv = Path(out_csv)
    return out_csv.with_name(out_csv.name + ".progress.json")


def _progress_bar(enabled: bool):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class Objects(ProgressColumn):
        def render(self, task):  # the total is known once the metadata file is read
            of = f"/{task.total:,.0f}" if task.total is not None else ""
            return Text(f"{task.completed:,.0f}{of} objects")

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=24),
                    # rate and ETA over the whole run: rich's own estimate, over the last few updates,
                    # swings with every chunk of thousands of objects
                    Objects(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                    TextColumn("ETA {task.fields[eta]}"),
                    console=Console(stderr=True), disable=not enabled, transient=False)


#: environment variable: chunks predicted at once by :func:`predict_stream` (default: 2, or the
#: number of CPUs when fewer)
WORKERS_ENV = "SKYSIFT_STREAM_WORKERS"


def default_workers() -> int:
    env = os.environ.get(WORKERS_ENV, "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise DataError(None, f"${WORKERS_ENV} must be an integer, got {env!r}") from None
    return max(1, min(2, os.cpu_count() or 1))


def _header_line(cols: list[str]) -> bytes:
    import csv
    import io as _io

    buf = _io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cols)  # quoted as DataFrame.to_csv quotes
    return buf.getvalue().encode("utf-8")


def _predict_chunk(predict_fn: Callable[[TaskData], object], chunk: TaskData, jobs: int) -> tuple:
    """One chunk on a pool thread: the submission rows as CSV text (no header), sorted by id."""
    from .features import feature_jobs

    with feature_jobs(jobs, progress=False):
        df = predict_fn(chunk)
    cols = [str(c) for c in df.columns]  # type: ignore[attr-defined]
    if not cols or cols[0] != "object_id":
        raise ValueError(f"predict_fn must return a DataFrame whose first column is object_id, got {cols[:3]}")
    ids = df["object_id"].to_numpy()  # type: ignore[index]
    if len(ids) != len(chunk) or not np.array_equal(np.sort(ids.astype(np.int64)), chunk.ids):
        raise ValueError(f"predict_fn returned {len(ids)} rows for a chunk of {len(chunk)} objects "
                         "(it must return exactly one row per object)")
    df = df.sort_values("object_id", kind="stable")  # type: ignore[attr-defined]
    text = df.to_csv(index=False, header=False, lineterminator="\n").encode("utf-8")
    return cols, text, int(chunk.ids[-1]), len(chunk), chunk.x.n_observations


def predict_stream(predict_fn: Callable[[TaskData], object], lightcurves_path: str | Path,
                   metadata_path: str | Path | None, out_csv: str | Path, *,
                   chunk_rows: int = DEFAULT_CHUNK_ROWS, progress: bool = True, resume: bool = True,
                   block_size: int = BLOCK_SIZE, identity: dict | None = None,
                   workers: int | None = None) -> dict:
    """Predict a light-curve CSV chunk by chunk into ``out_csv``, resumably.

    ``predict_fn(chunk) -> pandas.DataFrame``: the submission rows of the chunk's objects, first
    column ``object_id`` (e.g. ``object_id,class_6,...,class_99``), one row per object. It is
    called from ``workers`` threads at once (default :func:`default_workers`), each on its own
    chunk, while this thread reads the next chunks: reading, features and the model overlap, and
    the ``light-curve`` extractors of each chunk run single-threaded (:func:`~skysift.transients.
    features.feature_jobs`). Threads rather than processes because ``predict_fn`` is any closure
    over a loaded model, and the costly parts (CSV parsing, the Rust extractors, NumPy sorts,
    LightGBM) release the GIL. Memory holds at most ``workers + 1`` chunks.

    Rows are written in file order. After each chunk its rows are appended to ``out_csv`` and
    fsynced, then ``out_csv.progress.json`` is replaced atomically with the last completed
    ``object_id``, the byte size of ``out_csv`` at that point and ``identity`` (what wrote it: the
    model's fingerprint and settings). A rerun (``resume=True``) with the same input and identity
    truncates ``out_csv`` to that size (dropping rows of a chunk whose checkpoint was not written)
    and skips objects up to that id, so the final file equals an uninterrupted run's (for a
    deterministic ``predict_fn``: every row depends on its object only); a different input or
    identity is refused with a DataError (``resume=False``, ``--no-resume``, starts over). A
    finished run is marked ``"complete": true``; rerunning it does nothing.

    The progress display counts objects against the number of objects in the metadata file (an
    upper bound for one shard of a split test set), with objects/s and the ETA.

    Returns a summary: objects, observations, chunks predicted, resumed_from, seconds, rows/s,
    objects/s.
    """
    from concurrent.futures import ThreadPoolExecutor

    lc_path = Path(lightcurves_path)
    out_csv = Path(out_csv)
    ckpt = progress_path(out_csv)
    meta_path = _metadata_path(lc_path, metadata_path)
    n_workers = default_workers() if workers is None else max(1, int(workers))
    source = {"lightcurves": str(lc_path.resolve()), "lightcurves_bytes": lc_path.stat().st_size,
              "metadata": str(meta_path.resolve())}
    state = None
    if resume and ckpt.exists() and out_csv.exists():
        try:
            state = json.loads(ckpt.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            raise DataError(ckpt, "unreadable progress file; delete it (and the partial output) or "
                            "start over with --no-resume (resume=False)") from None
        if any(state.get(k) != v for k, v in source.items()):
            raise DataError(ckpt, f"progress file belongs to another input ({state.get('lightcurves')}); "
                            "start over with --no-resume (resume=False), or write to another output")
        if state.get("identity") != identity:
            raise DataError(out_csv, f"partial output written with another model or settings "
                            f"({_describe(state.get('identity'))}; this run: {_describe(identity)}), "
                            "so resuming would mix two models' predictions; start over with --no-resume "
                            "(resume=False), or write to another output")
        if state.get("complete"):
            log.info("%s is complete (%s); nothing to do", out_csv, ckpt)
            return {"objects": 0, "observations": 0, "chunks": 0, "resumed_from": state["last_object_id"],
                    "complete": True, "seconds": 0.0}
        size = out_csv.stat().st_size
        if size < state["bytes"]:
            raise DataError(out_csv, f"shorter ({size} bytes) than its progress file says ({state['bytes']}); "
                            "start over with --no-resume (resume=False)")
        with open(out_csv, "r+b") as fh:  # drop the partial tail written after the last checkpoint
            fh.truncate(state["bytes"])
            os.fsync(fh.fileno())
    else:
        out_csv.parent.mkdir(parents=True, exist_ok=True)
        with open(out_csv, "wb") as fh:
            os.fsync(fh.fileno())
        state = {**source, "identity": identity, "last_object_id": None, "bytes": 0, "rows": 0,
                 "columns": None, "complete": False}
        write_json(ckpt, state)
    resumed_from = state["last_object_id"]
    t0 = time.perf_counter()
    n_obj = n_obs = n_chunks = 0
    enabled = progress and not os.environ.get("SKYSIFT_NO_PROGRESS")
    # rich draws nothing into a log file until the end: there, a plain line every few seconds
    plain = enabled and not sys.stderr.isatty()
    total: dict[str, int] = {}
    from ..core.progress import PLAIN_EVERY_S, _fmt_s, _plain

    last_plain = t0
    done_before = int(state["rows"])

    def report(bar, task) -> None:
        nonlocal last_plain
        now = time.perf_counter()
        rate = n_obj / max(now - t0, 1e-9)
        left = total.get("n", 0) - done_before - n_obj
        eta = _fmt_s(left / rate) if rate > 0 and left > 0 else "-"
        if not plain:
            bar.update(task, completed=done_before + n_obj, total=total.get("n"),
                       rate=f"{rate:,.0f} objects/s", eta=eta)
            return
        if now - last_plain < PLAIN_EVERY_S:
            return
        last_plain = now
        _plain(f"predict {lc_path.name}: {done_before + n_obj:,}/{total.get('n', 0):,} objects "
               f"({rate:,.0f} objects/s, ETA {eta})")

    with _progress_bar(enabled and not plain) as bar, open(out_csv, "ab") as out, \
            ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="skysift-predict") as pool:
        task = bar.add_task(f"predict {lc_path.name}", total=None, rate="… objects/s", eta="-")
        chunks = iter_chunks(lc_path, meta_path, chunk_rows=chunk_rows, labelled=False,
                             after_object_id=resumed_from, block_size=block_size,
                             on_metadata=lambda n: total.update(n=n))
        if plain:
            _plain(f"predict {lc_path.name}: {n_workers} chunk(s) at a time")
        # one extractor thread per chunk when chunks run side by side; a single chunk uses 2
        jobs = 1 if n_workers > 1 else 2
        pending: deque = deque()

        def finish(fut) -> None:
            nonlocal n_obj, n_obs, n_chunks
            cols, text, last_id, k, m = fut.result()
            if state["columns"] is not None and cols != state["columns"]:
                raise ValueError(f"predict_fn returned columns {cols} after {state['columns']}")
            if state["columns"] is None:
                out.write(_header_line(cols))
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
            state.update(last_object_id=last_id, bytes=out.tell(), rows=state["rows"] + k, columns=cols)
            write_json(ckpt, state)
            n_obj += k
            n_obs += m
            n_chunks += 1
            report(bar, task)

        try:
            for chunk in chunks:
                pending.append(pool.submit(_predict_chunk, predict_fn, chunk, jobs))
                del chunk  # the pool holds it until predicted: memory is bounded by the queue
                while len(pending) > n_workers:
                    finish(pending.popleft())
            while pending:
                finish(pending.popleft())
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
    state["complete"] = True
    write_json(ckpt, state)
    dt = time.perf_counter() - t0
    if plain:
        _plain(f"predict {lc_path.name}: {n_obj:,} objects done in {_fmt_s(dt)}")
    return {"objects": n_obj, "observations": n_obs, "chunks": n_chunks, "resumed_from": resumed_from,
            "complete": True, "seconds": dt, "rows_per_s": n_obs / dt if dt > 0 else float("nan"),
            "objects_per_s": n_obj / dt if dt > 0 else float("nan"), "workers": n_workers}


def _describe(identity: dict | None) -> str:
    if not identity:
        return "no model recorded"
    return ", ".join(f"{k} {str(v)[:12]}" for k, v in sorted(identity.items()))


# ---- Parquet catalogue ----------------------------------------------------------------------------
def write_parquet_catalogue(lightcurves_path: str | Path, metadata_path: str | Path | None,
                            out_dir: str | Path, objects_per_partition: int = 100_000, *,
                            chunk_rows: int = DEFAULT_CHUNK_ROWS, allow_unknown: bool = False,
                            prefix: str = "part") -> list[Path]:
    """Convert a light-curve CSV (sorted by ``object_id``) + metadata into a partitioned Parquet
    catalogue ``out_dir/part-00000.parquet, part-00001.parquet, ...`` with bounded memory.
    ``prefix`` replaces ``part``: the shards of a split test set (the 11 light-curve files of the
    PLAsTiCC release) go into one folder as ``shard01-00000.parquet, ...``, read in name order.

    Each partition holds ``objects_per_partition`` whole objects (the last one fewer), sorted by
    ``(object_id, mjd)``, one row per observation with the object's metadata repeated on every
    row (Parquet's dictionary/RLE encoding stores the repeats almost for free), so that a Dask
    worker can ``io.load(partition)`` on its own. Schema:

    ============================  =========  =====================================================
    ``object_id``                 int64      PLAsTiCC object id
    ``mjd``                       float64    [d]
    ``passband``                  int8       0..5 (u g r i z y)
    ``flux``, ``flux_err``        float32    [FLUXCAL]
    ``detected``                  bool
    ``ddf``                       float64    1.0 deep-drilling field, else 0.0
    ``hostgal_specz`` ...         float64    the other META_COLUMNS; NaN when missing (no -9)
    ``target``                    int64      only when the metadata has labels: the PLAsTiCC class
    ============================  =========  =====================================================

    Returns the partition paths. ``out_dir`` must not already hold ``{prefix}-*.parquet`` files.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if objects_per_partition < 1:
        raise ValueError("objects_per_partition must be >= 1")
    out_dir = Path(out_dir)
    if not prefix or any(c in prefix for c in "/\\*?[]"):
        raise ValueError(f"prefix must be a plain file-name part, got {prefix!r}")
    if out_dir.exists() and any(out_dir.glob(f"{prefix}-*.parquet")):
        raise DataError(out_dir, f"already holds a catalogue ({prefix}-*.parquet); choose an empty folder "
                        "or another prefix")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    buffer: list[TaskData] = []

    def flush(parts: list[TaskData]) -> None:
        x = LightCurves.concat([p.x for p in parts])
        lengths = x.lengths
        cols = {"object_id": np.repeat(np.concatenate([p.ids for p in parts]), lengths),
                "mjd": x.mjd, "passband": x.passband, "flux": x.flux, "flux_err": x.flux_err,
                "detected": x.detected}
        cols.update({c: np.repeat(x.meta[c], lengths) for c in META_COLUMNS})
        labelled = all(p.y is not None for p in parts)
        if labelled:
            target = np.concatenate([np.asarray(p.class_names, dtype=np.int64)[p.y] for p in parts])
            cols["target"] = np.repeat(target, lengths)
        schema = io._catalogue_schema(labelled)
        table = pa.table({f.name: pa.array(cols[f.name], type=f.type) for f in schema}, schema=schema)
        path = out_dir / f"{prefix}-{len(paths):05d}.parquet"
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp, compression="zstd")
        paths.append(path)

    n_buffered = 0
    for chunk in iter_chunks(lightcurves_path, metadata_path, chunk_rows=chunk_rows, labelled=None,
                             allow_unknown=allow_unknown):
        buffer.append(chunk)
        n_buffered += len(chunk)
        while n_buffered >= objects_per_partition:
            # split the buffered chunks into exactly objects_per_partition objects + the rest
            taken, need, rest = [], objects_per_partition, []
            for c in buffer:
                if need >= len(c):
                    taken.append(c)
                    need -= len(c)
                elif need > 0:
                    taken.append(c.subset(np.arange(need)))
                    rest.append(c.subset(np.arange(need, len(c))))
                    need = 0
                else:
                    rest.append(c)
            flush(taken)
            buffer = rest
            n_buffered = sum(len(c) for c in buffer)
    if n_buffered:
        flush(buffer)
    return paths
