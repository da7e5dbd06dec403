"""Progress of long steps, on stderr: a rich display with counts, rate and ETA on a terminal, and
plain lines (at the start, then every ``PLAIN_EVERY_S`` seconds, and at the end) when stderr is a
log file or a pipe, so that ``make demo > log`` is not silent for minutes.

``track(iterable, description)`` follows a loop; ``step(description)`` a step without a count
(loading a file). Both nest: an inner loop becomes one more line of the display already shown.
``SKYSIFT_NO_PROGRESS=1`` turns both off.
"""
from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, TypeVar

T = TypeVar("T")

#: seconds between two plain progress lines
PLAIN_EVERY_S = 10.0

_live: Any = None  # the rich Progress on screen, shared by nested loops and steps


def enabled() -> bool:
    return os.environ.get("SKYSIFT_NO_PROGRESS", "") == ""


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _plain(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _fmt_s(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


@contextmanager
def _display() -> Iterator[Any]:
    """The shared rich Progress, started by the outermost user."""
    global _live
    if _live is not None:
        yield _live
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=24),
               MofNCompleteColumn(), TextColumn("{task.fields[unit]}"),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn())
    with Progress(*columns, console=_console(), transient=False) as p:
        _live = p
        try:
            yield p
        finally:
            _live = None


def track(iterable: Iterable[T], description: str, *, total: int | None = None,
          unit: str = "") -> Iterator[T]:
    """Yield the items of ``iterable`` while showing how many are done, the rate and the ETA."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if not enabled():
        yield from iterable
        return
    t0 = time.perf_counter()
    if _console().is_terminal:
        with _display() as p:
            task = p.add_task(description, total=total, unit=unit, rate="")
            for k, item in enumerate(iterable, 1):
                yield item
                rate = k / max(time.perf_counter() - t0, 1e-9)
                p.update(task, advance=1, rate=f"{rate:,.1f}/s" if rate < 100 else f"{rate:,.0f}/s")
        return
    of = f"/{total}" if total is not None else ""
    _plain(f"{description}: 0{of} {unit}".rstrip())
    last = t0
    k = 0
    for k, item in enumerate(iterable, 1):
        yield item
        now = time.perf_counter()
        if now - last >= PLAIN_EVERY_S and (total is None or k < total):
            rate = k / (now - t0)
            eta = f", ETA {_fmt_s((total - k) / rate)}" if total and rate > 0 else ""
            _plain(f"{description}: {k}{of} {unit} ({rate:,.1f}/s{eta})".replace("  ", " "))
            last = now
    _plain(f"{description}: {k}{of} {unit} done in {_fmt_s(time.perf_counter() - t0)}".replace("  ", " "))


@contextmanager
def step(description: str) -> Iterator[None]:
    """A step without a count: a spinner with the elapsed time, or a plain line before and after."""
    if not enabled():
        yield
        return
    t0 = time.perf_counter()
    if _console().is_terminal:
        with _display() as p:
            task = p.add_task(description, total=1, unit="", rate="")
            yield
            p.update(task, completed=1)
        return
    _plain(f"{description} ...")
    yield
    _plain(f"{description}: done in {_fmt_s(time.perf_counter() - t0)}")
