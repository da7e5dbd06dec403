"""Timing, peak memory, table printing, bootstrap intervals and the frozen outer test splits
shared by the benchmark scripts.

Import it as ``from _common import ...``: Python puts a script's own folder first on ``sys.path``,
so this works from any working directory without making ``benchmarks`` a package.
"""
from __future__ import annotations

import json
import resource
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Timing:
    seconds: float = 0.0

    def rate(self, n: float) -> float:
        """Items per second (inf for an empty interval rather than a ZeroDivisionError)."""
        return n / self.seconds if self.seconds > 0 else float("inf")


@contextmanager
def timed() -> Iterator[Timing]:
    """``with timed() as t: ...`` then ``t.seconds`` (wall clock, ``perf_counter``)."""
    t = Timing()
    start = time.perf_counter()
    try:
        yield t
    finally:
        t.seconds = time.perf_counter() - start


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far; Linux reports ``ru_maxrss`` in KiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User + system CPU seconds of this process: on a shared machine a fairer cost than wall time."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def median_wall(cmd: Sequence[str], repeat: int = 5, env: dict | None = None) -> tuple[float, list[float]]:
    """Median wall seconds of running ``cmd`` ``repeat`` times (output discarded), and every run."""
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        runs.append(time.perf_counter() - t)
    return statistics.median(runs), runs


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]], floatfmt: str = ".1f") -> None:
    """A Markdown table (pastes into the README as is); floats formatted with ``floatfmt``."""
    def cell(v: object) -> str:
        return format(v, floatfmt) if isinstance(v, float) else str(v)

    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    for r in rows:
        print("| " + " | ".join(cell(v) for v in r) + " |", flush=True)


# ---- the selection protocol (benchmarks/protocol.md) ----------------------------------------------
SPLITS_DIR = Path(__file__).resolve().parent / "splits"


def bootstrap_ci(metric: Callable[..., float], *arrays, n_boot: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float, float]:
    """``(point, low, high)``: ``metric(*arrays)`` and its percentile bootstrap interval.

    Rows (test objects, or paired runs) are resampled with replacement, the same rows for every
    array, so a difference of two scorers on the same objects keeps its pairing. Resamples where the
    metric is undefined (e.g. a class drawn zero times for a per-class average) raise inside
    ``metric``; they are skipped rather than biasing the interval with a made-up value, and more
    than 1 % of them is an error: the interval would no longer describe the test set.
    """
    arrays = tuple(np.asarray(a) for a in arrays)
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError("bootstrap_ci: arrays of different lengths")
    rng = np.random.default_rng(seed)
    point = float(metric(*arrays))
    stats, failed = [], 0
    for _ in range(n_boot):
        i = rng.integers(0, n, n)
        try:
            stats.append(float(metric(*(a[i] for a in arrays))))
        except (ValueError, ZeroDivisionError):
            failed += 1
    if failed > 0.01 * n_boot:
        raise ValueError(f"bootstrap_ci: metric undefined on {failed} of {n_boot} resamples")
    lo, hi = np.percentile(stats, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return point, float(lo), float(hi)


def fmt_ci(ci: tuple[float, float, float], digits: int = 3) -> str:
    p, lo, hi = ci
    return f"{p:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def load_outer_split(name: str) -> dict:
    """The frozen outer test split ``benchmarks/splits/<name>.json``: ``{"test_ids": [...], ...}``.
    Ids are strings (GZ1 OBJIDs exceed float precision; compare as ``str``)."""
    path = SPLITS_DIR / f"{name}.json"
    with open(path) as f:
        split = json.load(f)
    split["test_ids"] = [str(i) for i in split["test_ids"]]
    return split


def outer_mask(ids, name: str) -> np.ndarray:
    """Boolean mask over ``ids``: True for the frozen outer test objects of split ``name``. Every id of
    the split must be among ``ids`` (a partial match means the data changed under the split)."""
    test = set(load_outer_split(name)["test_ids"])
    ids = np.asarray([str(i) for i in ids])
    mask = np.isin(ids, list(test))
    if mask.sum() != len(test):
        raise ValueError(f"outer split {name}: {len(test)} test ids, {int(mask.sum())} found in the data")
    return mask


def parse_options(pairs: list[str] | None) -> dict:
    """``["k=v", ...]`` from ``--option`` flags as a dict; values parse as JSON where they can
    (numbers, booleans, lists), and stay strings otherwise."""
    import json

    out = {}
    for p in pairs or []:
        k, _, v = p.partition("=")
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out
