"""Process pools that are safe to start from any caller, including a script without a
``if __name__ == "__main__":`` guard.

The pools use ``forkserver`` (forking a process that already runs OpenMP threads can hang), and a
forkserver or spawn child re-imports the main script to set itself up. A script that calls
``skysift.simulate(...)`` at top level would then run again inside the child, which Python stops
with "An attempt has been made to start a new process before the current process has finished its
bootstrapping phase" and a ``BrokenProcessPool``. Such a script gets no pool: the work runs in this
process, with the same results (every pool user here is independent of its number of workers).
"""
from __future__ import annotations

import ast
import contextlib
import functools
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any


@functools.lru_cache(maxsize=8)
def _has_main_guard(path: str, mtime: float) -> bool:
    try:
        tree = ast.parse(open(path, "rb").read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            names = [n for n in ast.walk(node.test) if isinstance(n, ast.Name) and n.id == "__name__"]
            consts = [n for n in ast.walk(node.test) if isinstance(n, ast.Constant) and n.value == "__main__"]
            if names and consts:
                return True
    return False


def main_is_reimport_safe() -> bool:
    """Whether a forkserver/spawn child can re-import ``__main__`` without re-running its work:
    true for interactive sessions, ``python -c``, ``python -m`` (package entry points, pytest) and
    scripts with a ``__main__`` guard; false for a plain top-level script."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or path is None:
        return True  # REPL, python -c, notebooks: nothing to re-import
    if getattr(main, "__spec__", None) is not None:
        return True  # python -m / console-script entry points: their module keeps its guard
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return True  # the child cannot re-import a file that is gone either
    return _has_main_guard(os.path.abspath(path), mtime)


def pool_context() -> Any | None:
    """The multiprocessing context for a pool, or None where the work must stay in this process
    (an unguarded main script, a daemonic worker process, or ``SKYSIFT_WORKERS=0``)."""
    import multiprocessing as mp

    if os.environ.get("SKYSIFT_WORKERS") == "0" or mp.current_process().daemon:
        return None
    if not main_is_reimport_safe():
        return None
    return mp.get_context("forkserver")


def worker_count(default_max: int = 2) -> int:
    """Worker processes of a pool: ``$SKYSIFT_WORKERS`` when set (0 or 1: none, the work stays in
    this process), else the cores up to ``default_max`` (the tasks' pools are CPU-bound and a
    shared 2-core CI runner gains nothing from more)."""
    env = os.environ.get("SKYSIFT_WORKERS")
    if env is not None and env.strip():
        try:
            return max(0, int(env))
        except ValueError:
            from ..errors import ConfigError

            raise ConfigError(f"SKYSIFT_WORKERS must be an integer, got {env!r}") from None
    return min(default_max, os.cpu_count() or 1)


@functools.lru_cache(maxsize=1)
def _thread_pools() -> Any:
    import scipy.linalg  # noqa: F401  (SciPy ships its own OpenBLAS; load it so the controller sees both)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Context manager: NumPy's and SciPy's BLAS/LAPACK on one thread inside it.

    The tasks' linear algebra is many small problems (a Gaussian process per light curve, a
    resize per snippet); with several BLAS threads each call spends more time handing work between
    threads than computing, and on a loaded or shared 2-core machine the waiting threads spin.
    Measured on the transients survey copies of 160 objects under load ~8: 20.8 s CPU with
    OpenBLAS's default 2 threads, 2.2 s with one. Parallelism comes from the pools over objects.

    Only the main thread changes the limits; elsewhere (the HTTP service predicts in a thread
    pool) this does nothing. BLAS limits are process-wide, so threads that enter and leave
    interleaved would restore each other's limits, and OpenBLAS 0.3.30 ignores, at random, a limit
    raised again from a thread other than the main one: either way BLAS could stay on one thread
    for good."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with _thread_pools().limit(limits=1, user_api="blas"):
        yield


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Context manager: torch's intra-op CPU threads, and numba's, at ``n`` inside it (``None``:
    unchanged); the previous counts come back on exit.

    Torch starts one OpenMP thread per core, and between operations its threads spin-wait for each
    other. With other jobs on the same cores that waiting costs more than the work: a transits
    views-net epoch on 2 cores at load ~4 took ~4 min on torch's default 2 threads and ~18 s on one
    (round 7, `docs/notes/issue19_helper19f.md`). Numba is set too because its OpenMP layer, when
    its first parallel kernel starts (the transits search), resets the OpenMP thread count that
    torch reads to numba's own count: setting torch alone would hold only until then."""
    if n is None:
        yield
        return
    import numba
    import torch

    # numba first: its first call starts its threads (and their reset of torch's count), which
    # must happen before torch's count is set, not after
    numba_before = numba.get_num_threads()
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    numba.set_num_threads(min(int(n), numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    try:
        yield
    finally:
        torch.set_num_threads(before)
        numba.set_num_threads(numba_before)
