"""Galaxy images: decoding cutouts, the loader options, and the array-file layouts.

Every loader returns a :class:`~skysift.core.data.TaskData` whose ``x`` is an ``(N, S, S, 3)``
uint8 RGB array, resized at load to ``image_size`` (default 64 px) so that thousands of images fit
in memory; ``y`` is ``(N,)`` int class indices or ``(N, K)`` float soft targets (vote fractions).

``*.npz``
    ``images`` (N, H, W, 3) uint8 and one-hot ``labels`` (N, K) — the seed's 4-class layout
    (normal / ringed / merger / other); optional ``ids`` and ``class_names``. Label rows that are
    not 0/1 but sum to one are read as soft targets.
``*.h5`` / ``*.hdf5``
    Galaxy10: ``images`` (N, H, W, 3) uint8 and ``ans`` (N,) int. The class names are Galaxy10
    SDSS's for 69-px images and Galaxy10 DECaLS's for 256-px ones (or a ``class_names`` attribute).

Options can be given in Python (``load(path, scheme="three", image_size=96)``) or appended to a
path after ``#`` for the CLI: ``gz1#scheme=three,size=96,crop=0.5``. ``crop`` (the central
fraction of each cutout kept before resizing) defaults to the layout's ``LAYOUT_CROP``: 0.3 for the
Galaxy Zoo 1 SDSS cutouts (their galaxies are small in a 423-px frame), 1 (the whole image) otherwise.

Image checks: unreadable or truncated files, non-8-bit modes and ids that repeat raise
:class:`~skysift.errors.DataError` naming the file; grayscale images are replicated into three
channels with a warning (``grayscale="error"`` refuses them); images of mixed sizes are
centre-cropped to a square and resized (``mixed_sizes="error"`` refuses them).
"""
from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..core import validate
from ..core.data import TaskData
from ..errors import DataError

DEFAULT_SIZE = 64
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

GZ1_LEAVES = ["elliptical", "clockwise_spiral", "anticlockwise_spiral", "edge_on_disc", "dont_know", "merger"]
#: scheme -> (class names, leaf index -> class index)
GZ1_SCHEMES = {
    "six": (GZ1_LEAVES, [0, 1, 2, 3, 4, 5]),
    "three": (["elliptical", "spiral", "other"], [0, 1, 1, 1, 2, 2]),
    "four": (["elliptical", "spiral", "uncertain", "merger"], [0, 1, 1, 1, 2, 3]),
}
SEED_CLASSES = ["normal", "ringed", "merger", "other"]
GALAXY10_SDSS = ["disc_face_on_no_spiral", "smooth_round", "smooth_in_between", "smooth_cigar",
                 "disc_edge_on_rounded_bulge", "disc_edge_on_boxy_bulge", "disc_edge_on_no_bulge",
                 "disc_face_on_tight_spiral", "disc_face_on_medium_spiral", "disc_face_on_loose_spiral"]
GALAXY10_DECALS = ["disturbed", "merging", "round_smooth", "in_between_round_smooth", "cigar_smooth",
                   "barred_spiral", "unbarred_tight_spiral", "unbarred_loose_spiral", "edge_on_no_bulge",
                   "edge_on_with_bulge"]
#: default central crop per layout (others: 1.0, the whole image). The Galaxy Zoo 1 SDSS cutouts
#: are 423 px with the galaxy only ~40-70 px across in the middle: at crop 1 a 64-px image shows it
#: 6-10 px wide, at 0.3 about 20-35 px (measured effect on accuracy: README, galaxies section).
LAYOUT_CROP = {"gz1": 0.3}
SUM_TOLERANCE = 0.02  # vote fractions are printed to 3-6 decimals; their sums drift by ~1e-3


class LoadOptions:
    """Validated loader options (see the module docstring)."""

    KEYS = ("scheme", "image_size", "crop", "grayscale", "mixed_sizes", "soft")

    def __init__(self, scheme: str = "six", image_size: int = DEFAULT_SIZE, crop: float | None = None,
                 grayscale: str = "replicate", mixed_sizes: str = "resize", soft: bool = True):
        from ..errors import ConfigError

        if scheme not in GZ1_SCHEMES:
            raise ConfigError(f"scheme must be one of {sorted(GZ1_SCHEMES)}, got {scheme!r}")
        if not 8 <= int(image_size) <= 1024:
            raise ConfigError(f"image size must be in [8, 1024] px, got {image_size}")
        if crop is not None and not 0.05 <= float(crop) <= 1.0:
            raise ConfigError(f"crop (the central fraction kept) must be in [0.05, 1], got {crop}")
        if grayscale not in ("replicate", "error"):
            raise ConfigError(f"grayscale must be 'replicate' or 'error', got {grayscale!r}")
        if mixed_sizes not in ("resize", "error"):
            raise ConfigError(f"mixed_sizes must be 'resize' or 'error', got {mixed_sizes!r}")
        # None: the layout's default (LAYOUT_CROP), settled by the loader once it knows the layout
        self.scheme, self.image_size = scheme, int(image_size)
        self.crop = None if crop is None else float(crop)
        self.grayscale, self.mixed_sizes, self.soft = grayscale, mixed_sizes, bool(soft)

    def settle_crop(self, layout: str) -> LoadOptions:
        """Fill in the layout's default crop unless one was given."""
        if self.crop is None:
            self.crop = LAYOUT_CROP.get(layout, 1.0)
        return self

    def card(self) -> dict:
        return {k: getattr(self, k) for k in self.KEYS}


def split_path_options(path: str | Path) -> tuple[Path, dict]:
    """``"dir#scheme=three,size=96"`` -> (Path("dir"), {"scheme": "three", "image_size": 96})."""
    from ..errors import ConfigError

    text = str(path)
    if "#" not in text or Path(text).exists():
        return Path(text), {}
    base, _, opts = text.rpartition("#")
    out: dict = {}
    aliases = {"size": "image_size"}
    for item in filter(None, opts.split(",")):
        key, eq, value = item.partition("=")
        key = aliases.get(key.strip(), key.strip())
        if not eq or key not in LoadOptions.KEYS:
            raise ConfigError(f"{text}: unknown loader option {item!r}; use key=value with keys "
                              f"{', '.join(('size',) + LoadOptions.KEYS[2:] + ('scheme',))}")
        value = value.strip()
        if key == "image_size":
            out[key] = int(value) if value.isdigit() else value
        elif key == "crop":
            try:
                out[key] = float(value)
            except ValueError:
                raise ConfigError(f"{text}: crop must be a number, got {value!r}") from None
        elif key == "soft":
            out[key] = value.lower() in ("1", "true", "yes")
        else:
            out[key] = value
    return Path(base), out


# ---- image decoding ----------------------------------------------------------------------------
def to_square_rgb(img: np.ndarray, size: int, crop: float = 1.0) -> np.ndarray:
    """Centre-crop ``img`` (H, W, 3) uint8 to a square holding the central ``crop`` fraction and
    resize it to (size, size, 3) uint8 with antialiasing (PIL's Lanczos)."""
    from PIL import Image

    h, w = img.shape[:2]
    side = max(1, int(round(min(h, w) * crop)))
    top, left = (h - side) // 2, (w - side) // 2
    img = img[top:top + side, left:left + side]
    if side == size:
        return np.ascontiguousarray(img)
    return np.asarray(Image.fromarray(img).resize((size, size), Image.LANCZOS))


def read_image(path, opts: LoadOptions, name: str | Path | None = None) -> tuple[np.ndarray, tuple[int, int], bool]:
    """Decode one cutout (a path or a binary file object): (RGB (S, S, 3) uint8, original (H, W),
    was grayscale). ``name`` is what error messages call it (default: the path).

    JPEGs are decoded at a reduced DCT scale (PIL ``draft``) when they are much larger than needed,
    which makes reading thousands of 423-px cutouts several times faster.
    """
    from PIL import Image, UnidentifiedImageError

    name = path if name is None else name
    try:
        with Image.open(path) as im:
            original = (im.height, im.width)
            want = int(np.ceil(opts.image_size / opts.crop))
            if im.format == "JPEG":
                im.draft("RGB", (want, want))
            im.load()  # raises on truncated data
            mode = im.mode
            if mode in ("I;16", "I", "F", "I;16B", "I;16L"):
                raise DataError(name, f"image mode {mode!r} is not 8-bit RGB or grayscale")
            gray = mode in ("L", "1", "LA")
            if gray and opts.grayscale == "error":
                raise DataError(name, "image is grayscale and grayscale='error' was asked (RGB expected)")
            arr = np.asarray(im.convert("RGB"))
    except DataError:
        raise
    except UnidentifiedImageError:
        # PIL's own message names the file object ("<_io.BytesIO object at 0x...>"), not the file
        raise DataError(name, "unreadable image: not a JPEG or PNG (unrecognised content)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(name, f"unreadable or truncated image ({e})") from None
    return to_square_rgb(arr, opts.image_size, opts.crop), original, gray


def read_images(paths: list[Path], opts: LoadOptions, source: Path) -> np.ndarray:
    """Decode ``paths`` into an (N, S, S, 3) uint8 array, checking sizes and modes."""
    out = np.empty((len(paths), opts.image_size, opts.image_size, 3), dtype=np.uint8)
    sizes: dict[tuple[int, int], Path] = {}
    n_gray = 0

    def one(k):
        return k, read_image(paths[k], opts)

    # PIL releases the GIL while decoding, so two threads halve the wall time on 2 cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for k, (img, original, gray) in pool.map(one, range(len(paths))):
            out[k] = img
            sizes.setdefault(original, paths[k])
            n_gray += gray
    if len(sizes) > 1 and opts.mixed_sizes == "error":
        (s1, p1), (s2, p2) = list(sizes.items())[:2]
        raise DataError(source, f"images have mixed sizes ({s1[1]}x{s1[0]} in {p1.name}, {s2[1]}x{s2[0]} "
                                f"in {p2.name}) and mixed_sizes='error' was asked")
    if n_gray:
        warnings.warn(f"{source}: {n_gray} grayscale image(s) were replicated into three channels", stacklevel=2)
    return out


def resize_array(images: np.ndarray, opts: LoadOptions, source: Path) -> np.ndarray:
    """Resize a stack (N, H, W, 3) uint8 to the loader size, in chunks (torch, antialiased)."""
    import torch
    import torch.nn.functional as F

    n, h, w = images.shape[:3]
    if h == w == opts.image_size and opts.crop == 1.0:
        return np.ascontiguousarray(images, dtype=np.uint8)
    side = max(1, int(round(min(h, w) * opts.crop)))
    top, left = (h - side) // 2, (w - side) // 2
    out = np.empty((n, opts.image_size, opts.image_size, 3), dtype=np.uint8)
    for start in range(0, n, 512):
        chunk = np.asarray(images[start:start + 512])[:, top:top + side, left:left + side]
        t = torch.from_numpy(np.ascontiguousarray(chunk)).permute(0, 3, 1, 2).float()
        t = F.interpolate(t, size=(opts.image_size, opts.image_size), mode="bilinear", antialias=True,
                          align_corners=False)
        out[start:start + len(chunk)] = t.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    return out


def _check_stack(images, path: Path, opts: LoadOptions) -> np.ndarray:
    """Validate an image stack from an array file: (N, H, W, 3) or grayscale (N, H, W[, 1]) uint8."""
    shape = getattr(images, "shape", None)
    if shape is None or len(shape) not in (3, 4):
        raise DataError(path, f"'images' must have shape (N, H, W, 3), got {shape}")
    if min(shape) == 0:
        raise DataError(path, f"no images: 'images' has shape {tuple(shape)}")
    dtype = np.dtype(images.dtype)
    if dtype != np.uint8:
        raise DataError(path, f"'images' must be uint8 (0-255), got {dtype}")
    if len(shape) == 3 or shape[3] == 1:
        if opts.grayscale == "error":
            raise DataError(path, "images are grayscale and grayscale='error' was asked (RGB expected)")
        warnings.warn(f"{path}: grayscale images were replicated into three channels", stacklevel=2)
        arr = np.asarray(images).reshape(shape[:3])
        return np.repeat(arr[..., None], 3, axis=3)
    if shape[3] != 3:
        raise DataError(path, f"'images' must have 3 colour channels (RGB), got {shape[3]}")
    return images


def _labels_from_matrix(labels: np.ndarray, path: Path, n: int, name: str) -> np.ndarray:
    """One-hot (N, K) -> int (N,); fractional rows that sum to one -> float soft targets."""
    labels = np.asarray(labels)
    if labels.ndim == 1:
        if not np.issubdtype(labels.dtype, np.integer):
            raise DataError(path, f"'{name}' must hold integer classes or one-hot rows, got {labels.dtype}")
        if len(labels) != n:
            raise DataError(path, f"'{name}' has {len(labels)} rows but 'images' has {n}")
        if labels.min(initial=0) < 0:
            raise DataError(path, "negative class index", where=validate.row(int(np.argmin(labels))))
        return labels.astype(np.int64)
    if labels.ndim != 2:
        raise DataError(path, f"'{name}' must have shape (N, K) or (N,), got {labels.shape}")
    if len(labels) != n:
        raise DataError(path, f"'{name}' has {len(labels)} rows but 'images' has {n}")
    lab = labels.astype(np.float64)
    bad = ~np.isfinite(lab).all(axis=1)
    if bad.any():
        raise DataError(path, "label row holds NaN or infinity", where=validate.row(int(np.argmax(bad))))
    sums = lab.sum(axis=1)
    bad = np.abs(sums - 1) > SUM_TOLERANCE
    if bad.any() or (lab < 0).any():
        r = int(np.argmax(bad | (lab < 0).any(axis=1)))
        raise DataError(path, f"label row does not sum to one (sum {sums[r]:.4g}) or has a negative entry",
                        where=validate.row(r))
    if np.isin(lab, (0.0, 1.0)).all():
        return lab.argmax(axis=1).astype(np.int64)
    return (lab / sums[:, None]).astype(np.float32)


def _finish_labels(y, class_names, path: Path, labelled: bool | None):
    if labelled is False:
        return None
    if y is None and labelled:
        raise DataError(path, "no labels found, and training/evaluation needs them")
    if y is not None and y.ndim == 1 and len(y) and y.max() >= len(class_names):
        r = int(np.argmax(y >= len(class_names)))
        raise DataError(path, f"class index {int(y[r])} is out of range for {len(class_names)} classes",
                        where=validate.row(r))
    return y


def _ids_or_index(ids, n: int, path: Path) -> np.ndarray:
    if ids is None:
        return np.array([str(i) for i in range(n)])
    ids = np.asarray(ids).astype(str)
    if len(ids) != n:
        raise DataError(path, f"'ids' has {len(ids)} entries but 'images' has {n}")
    validate.unique_ids(ids, path)
    return ids


# ---- array files -------------------------------------------------------------------------------
def load_npz(path: Path, opts: LoadOptions, labelled: bool | None) -> TaskData:
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as f:
            keys = set(f.files)
            key = next((k for k in ("images", "x", "X", "imgs") if k in keys), None)
            if key is None:
                raise DataError(path, f"no image array: expected key 'images' (found {sorted(keys)})")
            images = _check_stack(f[key], path, opts)
            lkey = next((k for k in ("labels", "y", "Y", "ans") if k in keys), None)
            raw_labels = f[lkey] if lkey else None
            ids = f["ids"] if "ids" in keys else None
            names = [str(c) for c in f["class_names"]] if "class_names" in keys else None
    except DataError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise DataError(path, f"unreadable or truncated .npz file ({e})") from None
    n = len(images)
    y = None if raw_labels is None else _labels_from_matrix(raw_labels, path, n, lkey)
    if names is None:
        k = raw_labels.shape[1] if raw_labels is not None and raw_labels.ndim == 2 else (
            int(y.max()) + 1 if y is not None and len(y) else len(SEED_CLASSES))
        names = SEED_CLASSES if k == len(SEED_CLASSES) else [f"class_{i}" for i in range(k)]
    if y is not None and y.ndim == 2 and y.shape[1] != len(names):
        raise DataError(path, f"labels have {y.shape[1]} columns but {len(names)} class names")
    y = _finish_labels(y, names, path, labelled)
    return TaskData(ids=_ids_or_index(ids, n, path), x=resize_array(images, opts, path), y=y,
                    class_names=list(names), source=str(path),
                    meta={"layout": "npz", "card": {"layout": "npz", **opts.card()}})


def load_hdf5(path: Path, opts: LoadOptions, labelled: bool | None) -> TaskData:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "images" not in f:
                raise DataError(path, f"no 'images' dataset (found {sorted(f.keys())})")
            images = _check_stack(f["images"], path, opts)
            n = images.shape[0]
            size = images.shape[1]
            x = resize_array(images, opts, path)
            y = np.asarray(f["ans"]) if "ans" in f else None
            ids = np.asarray(f["ids"]) if "ids" in f else None
            names = f.attrs.get("class_names")
    except DataError:
        raise
    except (OSError, KeyError, ValueError) as e:
        raise DataError(path, f"unreadable or truncated HDF5 file ({e})") from None
    if names is not None:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    else:
        # Galaxy10 ships no names in the file; its two releases differ by image size.
        names = GALAXY10_SDSS if size == 69 else GALAXY10_DECALS if size == 256 else None
    if y is not None:
        y = _labels_from_matrix(y, path, n, "ans")
        if names is None:
            names = [f"class_{i}" for i in range(int(y.max()) + 1 if y.ndim == 1 else y.shape[1])]
    names = names or GALAXY10_DECALS
    y = _finish_labels(y, names, path, labelled)
    ids = None if ids is None else [i.decode() if isinstance(i, bytes) else i for i in ids]
    return TaskData(ids=_ids_or_index(ids, n, path), x=x, y=y, class_names=list(names), source=str(path),
                    meta={"layout": "galaxy10-hdf5", "card": {"layout": "galaxy10-hdf5", **opts.card()}})
