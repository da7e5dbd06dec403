"""Fetch the public datasets with pooch: checksums, resume, retries, a progress bar.

pooch does the cache bookkeeping and the hash check (a file whose hash differs is refused and
removed). pooch's own HTTP downloader restarts from zero after an interruption, so the transfer
itself is done by :class:`ResumableDownloader`, a pooch downloader that keeps the bytes received so
far in ``<dataset>/.partial/<file>.part`` and asks the server for the rest with an HTTP ``Range``
request next time. Transient failures (HTTP 429/5xx, dropped connections) are retried by urllib3's
``Retry`` with exponential back-off, honouring ``Retry-After``.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..errors import SkysiftError
from .registry import PublicDataset, cache_status, data_dir, file_url, get

log = logging.getLogger(__name__)

RETRY_STATUS = (429, 500, 502, 503, 504)


class DownloadError(SkysiftError):
    """A download failed: the host cannot be reached, it refused the file, or the checksum differs."""


def make_session(retries: int = 4, backoff: float = 0.5, user_agent: str = "skysift") -> requests.Session:
    """A requests session that retries connection errors and HTTP 429/5xx ``retries`` times, waiting
    ``backoff * 2**k`` seconds (or the server's ``Retry-After``) between tries."""
    retry = Retry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff,
                  status_forcelist=RETRY_STATUS, allowed_methods=("GET", "HEAD"),
                  respect_retry_after_header=True, raise_on_status=False)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = user_agent
    return session


def describe_connection_error(url: str, exc: Exception) -> str:
    text = str(exc)
    if "refused" in text.lower():
        why = "connection refused"
    elif "resolve" in text.lower() or "name or service" in text.lower():
        why = "host name could not be resolved"
    elif "timed out" in text.lower() or isinstance(exc, requests.Timeout):
        why = "timed out"
    else:
        why = type(exc).__name__
    return (f"cannot reach {url} ({why}). Are you offline? Connect to the internet, point "
            f"SKYSIFT_DATASETS_MIRROR at a mirror, or put the file in place by hand.")


class ResumableDownloader:
    """A pooch downloader (``__call__(url, output_file, pooch)``) that resumes interrupted transfers.

    Parameters
    ----------
    part_file : where the bytes of an unfinished transfer are kept (pooch hands the downloader a
        random temporary name, so the stable name that lets a later run resume comes from here).
    progressbar : show a tqdm bar on stderr.
    retries, backoff : see :func:`make_session`.
    chunk_size : bytes read per iteration.
    timeout : seconds to wait for the server to connect / send the next bytes.
    """

    def __init__(self, part_file: str | Path, *, progressbar: bool = True, retries: int = 4,
                 backoff: float = 0.5, chunk_size: int = 1 << 16, timeout: float = 30.0,
                 session: requests.Session | None = None):
        if retries < 0 or chunk_size < 1 or timeout <= 0:
            raise ValueError("retries must be >= 0, chunk_size >= 1 and timeout > 0")
        self.part_file = Path(part_file)
        self.progressbar = progressbar
        self.session = session or make_session(retries, backoff)
        self.chunk_size = chunk_size
        self.timeout = timeout

    def __call__(self, url: str, output_file, pooch=None, check_only: bool = False):
        if check_only:
            try:
                r = self.session.head(url, timeout=self.timeout, allow_redirects=True)
            except requests.RequestException:
                return False
            return r.status_code == 200
        part = self.part_file
        part.parent.mkdir(parents=True, exist_ok=True)
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            response = self.session.get(url, headers=headers, stream=True, timeout=self.timeout)
        except requests.ConnectionError as e:
            raise DownloadError(describe_connection_error(url, e)) from None
        except requests.RequestException as e:
            raise DownloadError(f"download of {url} failed: {e}") from None
        with response:
            if response.status_code == 416 and have:
                # the .part already holds the whole file (the previous run died before the rename)
                total = have
                mode = None
            elif response.status_code == 206 and have:
                mode = "ab"
                total = have + int(response.headers.get("Content-Length", 0) or 0)
            elif response.status_code == 200:
                mode, have = "wb", 0  # the server ignored the Range header: start again
                total = int(response.headers.get("Content-Length", 0) or 0)
            else:
                raise DownloadError(f"{url}: server answered HTTP {response.status_code} "
                                    f"{response.reason} (after retries)")
            if mode is not None:
                self._stream(response, part, mode, have, total, url)
        got = part.stat().st_size
        if total and got != total:
            raise DownloadError(f"{url}: transfer ended after {got} of {total} bytes; run the same "
                                f"command again to resume from {got}")
        os.replace(part, output_file)

    def _stream(self, response, part: Path, mode: str, have: int, total: int, url: str) -> None:
        from tqdm.auto import tqdm

        bar = tqdm(total=total or None, initial=have, unit="B", unit_scale=True, file=sys.stderr,
                   desc=part.name[:-5], disable=not self.progressbar, leave=True)
        try:
            with open(part, mode) as fh:
                for chunk in response.iter_content(chunk_size=self.chunk_size):
                    fh.write(chunk)
                    bar.update(len(chunk))
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as e:
            size = part.stat().st_size if part.exists() else 0
            raise DownloadError(f"{url}: connection lost after {size} bytes ({type(e).__name__}); run "
                                f"the same command again to resume") from None
        finally:
            bar.close()


def download(name: str, dest: str | Path | None = None, *, include_optional: bool = False,
             mirror: str | None = None, progressbar: bool | None = None, retries: int = 4,
             backoff: float = 0.5, timeout: float = 30.0) -> Path:
    """Fetch dataset ``name`` into ``<dest or data dir>/<name>/`` and return the path to train on.

    Raises :class:`DownloadError` for datasets that need an account (the message says what to
    download and where to put it), for unreachable hosts, HTTP errors and checksum mismatches.
    """
    import pooch

    ds = get(name)
    folder = data_dir(dest) / ds.name
    if ds.needs_account:
        if cache_status(ds, dest) == "complete":
            return folder / ds.load_path
        raise DownloadError(f"{ds.name}: " + manual_instructions(ds, folder))
    if progressbar is None:
        progressbar = sys.stderr.isatty() and not os.environ.get("SKYSIFT_NO_PROGRESS")
    session = make_session(retries, backoff)
    folder.mkdir(parents=True, exist_ok=True)
    for f in ds.files:
        if f.optional and not include_optional:
            continue
        url = file_url(ds, f, mirror)
        downloader = ResumableDownloader(folder / ".partial" / f"{f.name}.part", progressbar=progressbar,
                                         timeout=timeout, session=session)
        if f.known_hash is None:
            log.warning("%s: no published checksum known; pooch verifies nothing for this file", f.name)
        try:
            pooch.retrieve(url, known_hash=f.known_hash, fname=f.name, path=folder,
                           downloader=downloader, progressbar=False)
        except ValueError as e:
            if "hash" in str(e).lower():
                raise DownloadError(f"{f.name}: checksum mismatch, the file was removed "
                                    f"(expected {f.known_hash}, from {f.hash_source}). {e}") from None
            raise
    return folder / ds.load_path


def manual_instructions(ds: PublicDataset, folder: Path) -> str:
    return ds.manual.format(dest=folder, homepage=ds.homepage)
