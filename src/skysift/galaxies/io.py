"""Loaders for galaxy images: ``.npz`` arrays, Galaxy10 HDF5, and folders of cutouts + a catalogue.

The array layouts and image decoding are in :mod:`skysift.galaxies.images`, the catalogue layouts
in :mod:`skysift.galaxies.catalogues`; this module registers them as readers of the ``galaxies``
task and keeps :func:`load` and the names callers import.

Options can be given in Python (``load(path, scheme="three", image_size=96)``) or appended to a
path after ``#`` for the CLI: ``gz1#scheme=three,size=96,crop=0.5``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core import readers, validate
from ..core.data import TaskData
from .catalogues import (
    CHALLENGE_COLUMNS,
    CLASS_COLUMNS,
    DECALS_FRACTIONS,
    FILE_COLUMNS,
    FIRST_QUESTION,
    GZ1_FLAGS,
    GZ1_FRACTIONS,
    GZ2_FRACTIONS,
    ID_COLUMNS,
    load_folder,
)
from .images import (
    DEFAULT_SIZE,
    GALAXY10_DECALS,
    GALAXY10_SDSS,
    GZ1_LEAVES,
    GZ1_SCHEMES,
    IMAGE_SUFFIXES,
    LAYOUT_CROP,
    SEED_CLASSES,
    SUM_TOLERANCE,
    LoadOptions,
    load_hdf5,
    load_npz,
    read_image,
    read_images,
    resize_array,
    split_path_options,
    to_square_rgb,
)

#: the names callers import from here
__all__ = ["CHALLENGE_COLUMNS", "CLASS_COLUMNS", "DECALS_FRACTIONS", "FILE_COLUMNS",
           "FIRST_QUESTION", "GZ1_FLAGS", "GZ1_FRACTIONS", "GZ2_FRACTIONS", "ID_COLUMNS",
           "load_folder", "DEFAULT_SIZE", "GALAXY10_DECALS", "GALAXY10_SDSS", "GZ1_LEAVES",
           "GZ1_SCHEMES", "IMAGE_SUFFIXES", "LAYOUT_CROP", "SEED_CLASSES", "SUM_TOLERANCE",
           "LoadOptions", "load_hdf5", "load_npz", "read_image", "read_images", "resize_array",
           "split_path_options", "to_square_rgb", "load"]


_MAGIC = {"npz": (b"PK\x03\x04",), "hdf5": (b"\x89HDF\r\n\x1a\n",),
          "image": (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")}
_SUFFIXES = {"npz": (".npz",), "hdf5": (".h5", ".hdf5"), "image": IMAGE_SUFFIXES}


def _is(kind: str):
    """Identify a file of ``kind`` by its suffix, or by its magic bytes when the suffix is none
    of the known ones."""
    def identify(path: Path) -> bool:
        if not path.is_file():
            return False
        suffix = path.suffix.lower()
        if suffix in _SUFFIXES[kind]:
            return True
        if suffix == ".csv" or any(suffix in s for s in _SUFFIXES.values()):
            return False
        with open(path, "rb") as fh:
            head = fh.read(8)
        return head.startswith(_MAGIC[kind])
    return identify


def _read_file(loader):
    def read(path, *, labelled: bool | None = None, **options) -> TaskData:
        path = validate.existing(path)
        opts = LoadOptions(**options).settle_crop(path.suffix.lower())
        return loader(path, opts, labelled)
    return read


def _read_folder(path, *, labelled: bool | None = None, **options) -> TaskData:
    return load_folder(validate.existing(path), LoadOptions(**options), labelled)


def _load_image(path: Path, opts: LoadOptions, labelled: bool | None) -> TaskData:
    img, _, _ = read_image(path, opts)
    return TaskData(ids=np.array([path.stem]), x=img[None], y=None,
                    class_names=list(GZ1_SCHEMES[opts.scheme][0]), source=str(path),
                    meta={"layout": "image", "card": {"layout": "image", **opts.card()}})


readers.register_path_options("galaxies", split_path_options)
readers.register_reader("galaxies", "npz", identify=_is("npz"), read=_read_file(load_npz),
                        description="NumPy .npz: images (N, H, W, 3) uint8 + one-hot or soft labels")
readers.register_reader("galaxies", "galaxy10-h5", identify=_is("hdf5"), read=_read_file(load_hdf5),
                        description="Galaxy10 HDF5 (SDSS or DECaLS): images + ans")
readers.register_reader(
    "galaxies", "catalogue", read=_read_folder,
    identify=lambda p: (p.is_file() and p.suffix.lower() == ".csv") or (p.is_dir() and any(p.glob("*.csv"))),
    description="a catalogue CSV (classes or vote fractions) + JPEG/PNG cutouts in its folder")
readers.register_reader("galaxies", "image-folder", read=_read_folder,
                        identify=lambda p: p.is_dir() and not any(p.glob("*.csv")),
                        description="a folder of JPEG/PNG cutouts without a catalogue (unlabelled)")
readers.register_reader("galaxies", "image", identify=_is("image"), read=_read_file(_load_image),
                        description="one JPEG/PNG cutout")


def load(path: str | Path, *, labelled: bool | None = None, format: str | None = None, **options) -> TaskData:
    """Read ``path`` (``.npz``, ``.h5``/``.hdf5``, a folder, or a catalogue ``.csv``); see the
    layout modules' docs."""
    return readers.read("galaxies", path, format=format, labelled=labelled, **options)
