"""Timing, peak memory and table printing shared by the benchmark scripts.

Import it as ``from _common import ...``: Python puts a script's own folder first on ``sys.path``,
so this works from any working directory without making ``benchmarks`` a package.
"""
from __future__ import annotations

import resource
import statistics
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass


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
