"""Download SDSS colour cutouts for a catalogue of galaxies (RA/Dec), as the Galaxy Zoo seed did.

The SDSS SkyServer image-cutout service returns a JPEG centred on ``ra``/``dec`` (degrees) with
``width`` x ``height`` pixels at ``scale`` arcsec per pixel (SDSS's native pixel is 0.396"). The
catalogue may give RA/Dec in decimal degrees or sexagesimal (``RA`` in hours ``00:00:00.41``,
``DEC`` in degrees ``-10:22:25.7``, as Galaxy Zoo 1's table 2 does); astropy converts them.

Images are written as ``<out>/images/<id>.jpeg`` through an atomic rename (an interrupted run
never leaves a half-written image) and a run skips the images already there, so re-running the
same command resumes. ``<out>/labels.csv`` holds the catalogue rows that have an image, in the
layout the ``galaxies`` loader reads (e.g. GZ1's ``OBJID`` + vote fractions).
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core import validate
from ..core.io import write_bytes, write_text
from ..errors import ConfigError, DataError
from .download import describe_connection_error, make_session

#: environment variable that replaces the cutout service URL (tests point it at 127.0.0.1)
SERVICE_ENV = "SKYSIFT_SDSS_CUTOUT_URL"
DEFAULT_SERVICE = "https://skyserver.sdss.org/dr17/SkyServerWS/ImgCutout/getjpeg"
SDSS_PIXEL_ARCSEC = 0.396

ID_COLUMNS = ("OBJID", "objid", "dr7objid", "id", "ID")
RA_COLUMNS = ("RA", "ra")
DEC_COLUMNS = ("DEC", "dec", "Dec", "DECL", "decl")


class RateLimiter:
    """At most ``rate`` request starts per second over all worker threads.

    Hand-written (a lock and a timestamp) because a minimum interval between requests is all the
    service's fair-use rule asks for; a token-bucket library would add a dependency for 10 lines.
    """

    def __init__(self, rate: float):
        if rate <= 0:
            raise ConfigError(f"rate must be > 0 requests per second, got {rate}")
        self.interval = 1.0 / rate
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


@dataclass
class CutoutResult:
    written: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (id, reason)
    labels: Path | None = None
    images: Path | None = None


def read_catalogue(path: str | Path):
    """Read the catalogue (CSV, optionally gzipped) and return ``(frame, id_col, ra_deg, dec_deg)``."""
    import pandas as pd
    from astropy import units as u
    from astropy.coordinates import Angle

    path = validate.existing(path, want="file")
    try:
        df = pd.read_csv(path, dtype=str, skipinitialspace=True, keep_default_na=False)
    except pd.errors.EmptyDataError:  # blank lines only: no header to read
        raise DataError(path, "empty catalogue (no header line)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as e:
        raise DataError(path, f"not a readable CSV ({e})") from None
    df.columns = [c.strip() for c in df.columns]
    id_col = next((c for c in ID_COLUMNS if c in df.columns), None)
    ra_col = next((c for c in RA_COLUMNS if c in df.columns), None)
    dec_col = next((c for c in DEC_COLUMNS if c in df.columns), None)
    missing = [w for w, c in (("an id column (OBJID/objid/id)", id_col), ("RA", ra_col), ("DEC", dec_col)) if c is None]
    if missing:
        raise DataError(path, f"missing {', '.join(missing)}; columns are {list(df.columns)}")
    if len(df) == 0:
        raise DataError(path, "catalogue has no rows")
    ids = df[id_col].str.strip()
    bad = np.flatnonzero((ids == "").to_numpy() | ids.str.contains(r"[/\\]|^\.", regex=True).to_numpy())
    if len(bad):
        raise DataError(path, f"empty id or an id that is not a plain file name: {ids.iloc[bad[0]]!r}",
                        where=validate.row(bad[0]))
    validate.unique_ids(ids.to_numpy(), path)
    ra = np.empty(len(df))
    dec = np.empty(len(df))
    for k, (r, d) in enumerate(zip(df[ra_col], df[dec_col])):
        r, d = r.strip(), d.strip()
        try:
            # sexagesimal RA is in hours (GZ1 table 2), decimal RA in degrees
            ra[k] = Angle(r, unit=u.hourangle if ":" in r or " " in r else u.deg).degree
            dec[k] = Angle(d, unit=u.deg).degree
        except (ValueError, TypeError, u.UnitsError) as e:
            raise DataError(path, f"cannot read RA/Dec {r!r}, {d!r} ({e})", where=validate.row(k)) from None
        if not (0 <= ra[k] < 360.0 + 1e-9) or not (-90 <= dec[k] <= 90) or not np.isfinite(ra[k] + dec[k]):
            raise DataError(path, f"RA/Dec out of range: ra={ra[k]:.6f} deg, dec={dec[k]:.6f} deg",
                            where=validate.row(k))
    df[id_col] = ids
    return df, id_col, ra, dec


def cutout_params(ra_deg: float, dec_deg: float, size: int, scale: float) -> dict:
    """The service's query: ``ra``/``dec`` in degrees, ``scale`` in arcsec/pixel, size in pixels."""
    return {"ra": f"{ra_deg:.6f}", "dec": f"{dec_deg:.6f}", "scale": f"{scale:.5f}",
            "width": int(size), "height": int(size)}


def fetch_cutouts(catalogue: str | Path, out: str | Path, *, max_n: int | None = None, size: int = 256,
                  scale: float | None = None, fov_arcsec: float | None = None, workers: int = 4,
                  rate: float = 5.0, retries: int = 4, backoff: float = 0.5, timeout: float = 30.0,
                  service_url: str | None = None, progressbar: bool = False) -> CutoutResult:
    """Download one JPEG per catalogue row into ``out/images`` and write ``out/labels.csv``.

    Parameters
    ----------
    size : cutout width = height in pixels.
    scale : arcsec per pixel; default the SDSS pixel (0.396"), or ``fov_arcsec / size``.
    workers : concurrent downloads; ``rate``: request starts per second over all workers.
    retries / backoff : per image, for connection errors and HTTP 429/5xx.
    service_url : default ``$SKYSIFT_SDSS_CUTOUT_URL`` or the SDSS DR17 service.
    """
    if size < 8 or size > 2048:
        raise ConfigError(f"--size must be between 8 and 2048 pixels (the service's limit), got {size}")
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if max_n is not None and max_n < 1:
        raise ConfigError(f"--max must be >= 1, got {max_n}")
    if scale is not None and fov_arcsec is not None:
        raise ConfigError("give --scale or --fov, not both")
    if fov_arcsec is not None:
        if fov_arcsec <= 0:
            raise ConfigError(f"--fov must be > 0 arcsec, got {fov_arcsec}")
        scale = fov_arcsec / size
    scale = SDSS_PIXEL_ARCSEC if scale is None else scale
    if not (0 < scale <= 60):
        raise ConfigError(f"--scale must be in (0, 60] arcsec/pixel, got {scale}")
    url = service_url or os.environ.get(SERVICE_ENV) or DEFAULT_SERVICE

    df, id_col, ra, dec = read_catalogue(catalogue)
    n = len(df) if max_n is None else min(max_n, len(df))
    out = Path(out)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    limiter = RateLimiter(rate)
    local = threading.local()
    result = CutoutResult(images=images)
    unreachable = threading.Event()

    def session():
        if not hasattr(local, "s"):
            local.s = make_session(retries, backoff)
        return local.s

    def one(k: int) -> tuple[str, str]:
        obj = df[id_col].iloc[k]
        target = images / f"{obj}.jpeg"
        if target.exists() and target.stat().st_size > 0:
            return "skipped", ""
        if unreachable.is_set():
            return "failed", "service unreachable"
        import requests

        limiter.wait()
        try:
            r = session().get(url, params=cutout_params(ra[k], dec[k], size, scale), timeout=timeout)
        except requests.ConnectionError as e:
            unreachable.set()
            return "failed", describe_connection_error(url, e)
        except requests.RequestException as e:
            return "failed", f"{type(e).__name__}: {e}"
        if r.status_code != 200:
            return "failed", f"HTTP {r.status_code} after {retries} retries"
        if not r.content.startswith(b"\xff\xd8"):
            # the service answers some errors with an HTML page and status 200
            return "failed", f"not a JPEG ({r.headers.get('Content-Type', '?')}, {len(r.content)} bytes)"
        write_bytes(target, r.content)
        return "written", ""

    from tqdm.auto import tqdm

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(one, k): k for k in range(n)}
        for fut in tqdm(as_completed(futures), total=n, disable=not progressbar, unit="img"):
            status, why = fut.result()
            if status == "written":
                result.written += 1
            elif status == "skipped":
                result.skipped += 1
            else:
                result.failed.append((df[id_col].iloc[futures[fut]], why))
    # labels: every catalogue row that has an image (this run's or an earlier one's)
    have = np.array([(images / f"{i}.jpeg").exists() for i in df[id_col]])
    rows = df[have]
    result.labels = out / "labels.csv"
    write_text(result.labels, rows.to_csv(index=False))
    if result.failed:
        # .txt, not .csv: the galaxies loader reads every CSV in the folder as a catalogue
        write_text(out / "failed.txt", "".join(f"{i}\t{why}\n" for i, why in result.failed))
    elif (out / "failed.txt").exists():
        (out / "failed.txt").unlink()
    if unreachable.is_set() and result.written == 0 and result.skipped == 0:
        from .download import DownloadError

        raise DownloadError(result.failed[0][1])
    return result
