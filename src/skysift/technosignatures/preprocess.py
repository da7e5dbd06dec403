"""Per-scan normalisation, cadence views and resizing; the torch Dataset of snippets.

Per-snippet pipeline (``params`` keys, defaults in :data:`PREPROCESS_DEFAULTS`):

1. ``size``: ``[time, frequency]`` after area-averaging (``null`` keeps the native size);
2. ``flatten``: ``"off_median"`` subtracts the bandpass, the per-channel median of the OFF scans
   (which never hold a needle, so a needle cannot bias it; persistent RFI present in every scan
   is flattened too), or ``"none"``;
3. per-scan normalisation: each scan minus its median, over 1.4826·MAD (a robust σ);
4. ``view``: ``"all"`` → 6 channels (ON, OFF, ON, OFF, ON, OFF); ``"on"`` → the 3 ON scans;
   ``"diff"`` → 3 channels ON_k − OFF_k;

Output per item: ``(C, time, frequency)`` float32, C = 6 or 3.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch.utils.data import Dataset

from ..core.parallel import one_blas_thread
from ..errors import ConfigError
from .defaults import PREPROCESS_DEFAULTS, VIEWS
from .io import OFF_SCANS, ON_SCANS


def check_params(params: dict) -> dict:
    """The preprocessing part of ``params`` with defaults filled in; ConfigError on bad values."""
    p = {k: params.get(k, v) for k, v in PREPROCESS_DEFAULTS.items()}
    if p["view"] not in VIEWS:
        raise ConfigError(f"view must be one of {', '.join(VIEWS)}, got {p['view']!r}")
    if p["flatten"] not in ("off_median", "none"):
        raise ConfigError(f"flatten must be 'off_median' or 'none', got {p['flatten']!r}")
    if p["size"] is not None:
        if not (isinstance(p["size"], (list, tuple)) and len(p["size"]) == 2 and all(int(s) >= 8 for s in p["size"])):
            raise ConfigError(f"size must be [time, frequency] with both >= 8, or null; got {p['size']!r}")
        p["size"] = [int(s) for s in p["size"]]
    return p


def normalise(x: np.ndarray, flatten: str = "off_median") -> np.ndarray:
    """``(6, T, F)`` → bandpass-flattened, per-scan robust-standardised float32 ``(6, T, F)``."""
    x = np.asarray(x, dtype=np.float32)
    if flatten == "off_median":
        base = np.median(x[list(OFF_SCANS)].reshape(-1, x.shape[2]), axis=0)
        # the competition's snippets are already standardised (mean ~0): subtract rather than divide
        x = x - base[None, None, :]
    med = np.median(x, axis=(1, 2), keepdims=True)
    mad = np.median(np.abs(x - med), axis=(1, 2), keepdims=True) * 1.4826
    return (x - med) / np.maximum(mad, 1e-6)


def view(x: np.ndarray, name: str) -> np.ndarray:
    if name == "all":
        return x
    if name == "on":
        return x[list(ON_SCANS)]
    return x[list(ON_SCANS)] - x[list(OFF_SCANS)]


@lru_cache(maxsize=32)
def area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` weights averaging ``n_in`` samples into ``n_out`` equal-width bins (the
    fractional overlap of input sample i with output bin j), so ``A @ v`` is an area resize."""
    edges = np.linspace(0, n_in, n_out + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    i = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, i + 1) - np.maximum(lo, i), 0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


def resize(x, size):
    """Area-average ``(..., T, F)`` (numpy or torch) to ``size`` = [time, frequency].

    Two small matrix products instead of ``F.interpolate(mode="area")``: for non-integer factors
    (273 → 32) torch's adaptive pooling takes ~8 ms per snippet on a CPU, this ~1 ms."""
    if size is None:
        return x
    t_out, f_out = int(size[0]), int(size[1])
    a_t, a_f = area_matrix(x.shape[-2], t_out), area_matrix(x.shape[-1], f_out)
    if isinstance(x, torch.Tensor):
        return torch.from_numpy(a_t).to(x) @ x @ torch.from_numpy(a_f.T.copy()).to(x)
    x = np.asarray(x, dtype=np.float32)
    lead, (t_in, f_in) = x.shape[:-2], x.shape[-2:]
    # two plain 2-D GEMMs (numpy's broadcast matmul over a stack is ~100x slower here)
    y = x.reshape(-1, f_in) @ a_f.T  # (..·T, f)
    y = y.reshape(-1, t_in, f_out).transpose(1, 0, 2).reshape(t_in, -1)  # (T, ..·f)
    y = (a_t @ y).reshape(t_out, -1, f_out).transpose(1, 0, 2)
    return np.ascontiguousarray(y.reshape(*lead, t_out, f_out))


def shrink(x: np.ndarray, params: dict) -> np.ndarray:
    """Step 1: area-resize a raw ``(6, T, F)`` snippet to ``params["size"]`` (float32).

    Resizing comes first: area-averaging is linear, so flattening and standardising the small
    array gives nearly the same result as at full size, ~8x faster (the medians dominate the
    per-item cost on a CPU). Flips and scan permutations commute with all steps, so augmentation
    runs on the small array too."""
    p = check_params(params)
    # one BLAS thread: these GEMMs are tiny, and with several threads fighting over 2 shared cores
    # (the training loop uses them) each call took ~20 ms instead of ~1.5 ms
    with one_blas_thread():
        return resize(np.asarray(x, dtype=np.float32), p["size"])


def finish(small: np.ndarray, params: dict) -> torch.Tensor:
    """Steps 2–4: flatten, standardise per scan, select the view → ``(C, t, f)`` float32 tensor."""
    p = check_params(params)
    return torch.from_numpy(np.ascontiguousarray(view(normalise(small, p["flatten"]), p["view"]), dtype=np.float32))


def to_input(x: np.ndarray, params: dict) -> torch.Tensor:
    """One raw ``(6, T, F)`` snippet → the network's ``(C, t, f)`` float32 tensor."""
    return finish(shrink(x, params), params)


class CadenceDataset(Dataset):
    """Items ``((C, t, f) float32, int64 target)``; target -1 when unlabelled.

    Reads each snippet lazily from ``x`` (a memory-mapped SnippetStack or an array). With
    ``augment`` (a :class:`~skysift.technosignatures.augment.CadenceAugment`), the resized scans
    are augmented before normalisation.
    """

    def __init__(self, x, y, params: dict, augment=None):
        self.x = x
        self.y = None if y is None else np.asarray(y)
        self.params = check_params(params)
        self.n_channels = VIEWS[self.params["view"]]
        self.augment = augment

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        small = shrink(self.x[int(i)], self.params)
        if self.augment is not None:
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,)).item()))
            small = self.augment(small, rng)
        target = -1 if self.y is None else int(self.y[int(i)])
        return finish(small, self.params), torch.tensor(target, dtype=torch.long)
