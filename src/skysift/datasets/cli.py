"""``skysift datasets list|download|cutouts``: a typer sub-app the main CLI mounts.

Errors are :class:`~skysift.errors.SkysiftError` subclasses; the main CLI prints them as one
``error:`` line (exit code 2).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Known public datasets: list, download (pooch), SDSS cutouts.")
out_console = Console()
err_console = Console(stderr=True)


DEST_HELP = "data folder (default $SKYSIFT_DATA_DIR or the OS cache)"


@app.command("list")
def list_datasets(dest: Optional[Path] = typer.Option(None, "--dest", help=DEST_HELP)):
    """Each known dataset: task, size, licence, checksums and whether it is in the local cache."""
    from .registry import DATASETS, cache_status, data_dir

    rows = []
    for ds in DATASETS.values():
        if ds.needs_account:
            sums = "n/a (manual, Kaggle account)"
        else:
            known = sum(f.known_hash is not None for f in ds.files)
            sums = f"{known}/{len(ds.files)} files have a published hash"
        rows.append((ds.name, ds.task, ds.size, ds.licence, sums, cache_status(ds, dest)))
    if out_console.width >= 120:
        table = Table(title=f"datasets (cache: {data_dir(dest)})")
        for col in ("name", "task", "size", "licence", "checksums", "cache"):
            table.add_column(col, overflow="fold")
        for row in rows:
            table.add_row(*row)
        out_console.print(table)
        return
    # six columns in 80 characters leave ~11 per column, a word or two per line: one block per
    # dataset instead, its long fields on lines of their own
    out_console.print(f"datasets (cache: {data_dir(dest)})", highlight=False)
    for name, task, size, licence, sums, cache in rows:
        out_console.print(f"\n[bold]{name}[/bold]  task: {task}  cache: {cache}", highlight=False)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")
        for k, v in (("size", size), ("licence", licence), ("checksums", sums)):
            grid.add_row(f"  {k}", v)
        out_console.print(grid, highlight=False)


@app.command()
def download(name: str = typer.Argument(..., help="dataset name (see `skysift datasets list`)"),
             dest: Optional[Path] = typer.Option(None, "--dest", help=DEST_HELP),
             all_files: bool = typer.Option(False, "--all", help="also the optional files (e.g. PLAsTiCC's test set)"),
             mirror: Optional[str] = typer.Option(None, "--mirror",
                                          help="base URL replacing the public hosts: <mirror>/<dataset>/<file>"),
             retries: int = typer.Option(4, "--retries", min=0)):
    """Fetch a dataset (checksummed, resumable) into the layout its task's loader reads."""
    from .download import download as _download
    from .registry import get

    path = _download(name, dest, include_optional=all_files, mirror=mirror, retries=retries)
    ds = get(name)
    out_console.print(f"ready: {path}")
    if ds.notes:
        out_console.print(ds.notes.format(dest=path.parent if ds.load_path != "." else path))
    else:
        out_console.print(f"train: skysift train {ds.task} --data {path} --out runs/{ds.name}")


@app.command()
def cutouts(catalogue: Path = typer.Argument(..., help="CSV (or .csv.gz) with an id column, RA and DEC"),
            out: Path = typer.Option(..., "--out", help="folder for images/ and labels.csv"),
            max_n: Optional[int] = typer.Option(None, "--max", help="first N rows only"),
            size: int = typer.Option(256, "--size", help="width = height in pixels"),
            scale: Optional[float] = typer.Option(None, "--scale",
                                                 help="arcsec per pixel (default 0.396, SDSS's pixel)"),
            fov: Optional[float] = typer.Option(None, "--fov", help="field of view in arcsec (sets scale = fov/size)"),
            workers: int = typer.Option(4, "--workers"),
            rate: float = typer.Option(5.0, "--rate", help="requests per second, all workers together"),
            retries: int = typer.Option(4, "--retries", min=0),
            service_url: Optional[str] = typer.Option(
                None, "--service-url", help="cutout service (default $SKYSIFT_SDSS_CUTOUT_URL or SDSS DR17)")):
    """Download SDSS cutouts for a catalogue (resumable: images already there are skipped)."""
    import os
    import sys

    from .cutouts import fetch_cutouts

    res = fetch_cutouts(catalogue, out, max_n=max_n, size=size, scale=scale, fov_arcsec=fov, workers=workers,
                        rate=rate, retries=retries, service_url=service_url,
                        progressbar=sys.stderr.isatty() and not os.environ.get("SKYSIFT_NO_PROGRESS"))
    out_console.print(f"{res.written} written, {res.skipped} already there, {len(res.failed)} failed; "
                      f"labels: {res.labels}")
    if res.failed:
        err_console.print(f"failures listed in {Path(out) / 'failed.txt'} (re-run to retry them)")
