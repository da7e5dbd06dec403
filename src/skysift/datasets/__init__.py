"""Known public datasets: list them, download them with pooch, fetch SDSS cutouts.

``skysift datasets list|download|cutouts`` (``skysift.datasets.cli:app``). Nothing here runs at
import time; importing is cheap.
"""
from .registry import DATASETS, PublicDataset, RemoteFile, cache_status, data_dir, get, names

__all__ = ["DATASETS", "PublicDataset", "RemoteFile", "cache_status", "data_dir", "get", "names",
           "download", "fetch_cutouts"]


def download(name, dest=None, **options):
    """See :func:`skysift.datasets.download.download`."""
    from .download import download as _download

    return _download(name, dest, **options)


def fetch_cutouts(catalogue, out, **options):
    """See :func:`skysift.datasets.cutouts.fetch_cutouts`."""
    from .cutouts import fetch_cutouts as _fetch

    return _fetch(catalogue, out, **options)
