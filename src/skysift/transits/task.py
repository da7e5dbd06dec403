"""The ``transits`` task plugged into the core."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ..core.data import TaskData
from ..core.task import Task
from ..errors import DataError
from . import INFO, io
from .augment import augment, inject_eclipsing_binary, inject_transit
from .models import MODELS
from .preprocess import clean_batch, to_channels
from .simulate import N_POINTS


class FluxDataset(Dataset):
    """Items ``((2, L) float32 channels, int64 label)``; label -1 when unlabelled."""

    def __init__(self, rel: np.ndarray, sigma: np.ndarray, y: np.ndarray | None, train: bool,
                 inject_prob: float = 0.0, inject_eb_prob: float = 0.0):
        self.rel = rel
        self.sigma = sigma
        self.y = y
        self.train = train
        self.inject_prob = inject_prob
        self.inject_eb_prob = inject_eb_prob

    def __len__(self):
        return len(self.rel)

    def __getitem__(self, i):
        x = self.rel[i]
        target = -1 if self.y is None else int(self.y[i])
        if self.train:
            # a per-item generator seeded from torch's RNG keeps augmentation reproducible under
            # seed_everything and different across epochs and DataLoader workers
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,)).item()))
            if target == 0:
                u = rng.random()
                if u < self.inject_prob:
                    x, target = inject_transit(x, float(self.sigma[i]), rng), 1
                elif u < self.inject_prob + self.inject_eb_prob:
                    x = inject_eclipsing_binary(x, rng)
            x = augment(x, rng, sigma=float(self.sigma[i]))
        return torch.from_numpy(to_channels(x, self.sigma[i])), torch.tensor(target, dtype=torch.long)


def _clean(data: TaskData, stats: dict) -> tuple[np.ndarray, np.ndarray]:
    """Detrended relative flux and per-star noise, at the training length."""
    x = np.asarray(data.x)
    length = int(stats.get("length", N_POINTS))
    if x.shape[1] != length:
        x = np.stack([io.fit_length(r, length) for r in x]) if len(x) else np.zeros((0, length))
    return clean_batch(x, detrend=stats.get("detrend", "biweight"),
                       window_days=stats.get("window_days", 0.75), clip_sigma=stats.get("clip_sigma", 4.0))


def transit_features(data: TaskData, stats: dict, params: dict) -> np.ndarray:
    """Flux quantiles in noise units, the noise, the deepest point and counts of deep points."""
    rel, sigma = _clean(data, stats or {"length": data.x.shape[1]})
    x = rel / sigma[:, None]
    q = np.percentile(x, [0.1, 1, 5, 50, 95], axis=1).T
    return np.column_stack([q, np.log10(sigma), rel.min(axis=1), (x < -3).sum(axis=1), (x < -5).sum(axis=1)])


class FluxRequests:
    """``{"flux": [...]}`` or ``{"objects": [{"id": "...", "flux": [...]}, ...]}``; ``null`` marks a
    missing cadence."""

    keys = ("flux",)
    what = "a list of numbers"
    max_objects = None

    def parse_object(self, obj: dict, payload: dict, options: dict) -> np.ndarray:
        flux = obj.get("flux")
        if not isinstance(flux, list) or len(flux) < 100:
            raise DataError("request", "'flux' must be a list of at least 100 numbers")
        if not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in flux):
            raise DataError("request", "'flux' may hold only numbers and null")
        arr = np.array([np.nan if v is None else v for v in flux], dtype=np.float64)
        if np.isinf(arr).any():
            raise DataError("request", "'flux' holds an infinite value")
        if np.isfinite(arr).sum() < 10:
            raise DataError("request", "'flux' has fewer than 10 valid values")
        return io.fit_length(arr, N_POINTS).astype(np.float32)

    def assemble(self, ids: list[str], items: list, payload: dict, options: dict) -> TaskData:
        return TaskData(ids=np.array(ids), x=np.stack(items), y=None, class_names=list(io.CLASS_NAMES),
                        source="request")

    def example(self) -> dict:
        from .simulate import simulate_light_curves

        flux, _, _ = simulate_light_curves(1, seed=3, positive_fraction=1.0)
        return {"objects": [{"id": "star-1", "flux": [round(float(v), 2) for v in flux[0]]}]}


class TransitsTask(Task):
    info = INFO
    models = MODELS
    features = staticmethod(transit_features)
    requests = FluxRequests()
    gallery_layout = (1, 10.0, 1.5)

    def fit_preprocessing(self, train: TaskData, params: dict) -> dict:
        return {"length": int(train.x.shape[1]), "detrend": "biweight", "window_days": 0.75, "clip_sigma": 4.0}

    def dataset(self, data: TaskData, stats: dict, params: dict, *, train: bool) -> Dataset:
        y = data.hard_labels if data.has_labels else None
        rel, sigma = _clean(data, stats)
        return FluxDataset(rel, sigma, y, train=train, inject_prob=float(params.get("inject_prob", 0.0)),
                           inject_eb_prob=float(params.get("inject_eb_prob", 0.0)))

    def tta_views(self, params, stats=None):
        return [lambda x: torch.flip(x, dims=[-1])]

    def raw_matrix(self, data: TaskData, max_n: int = 5000) -> np.ndarray:
        # binned, cleaned series: PCA on 3,197 noisy points is dominated by white noise
        rel, sigma = _clean(data.subset(np.arange(min(len(data), max_n))), {"length": data.x.shape[1]})
        x = rel / sigma[:, None]
        n_bins = 128
        usable = x.shape[1] // n_bins * n_bins
        return x[:, :usable].reshape(len(x), n_bins, -1).min(axis=2).astype(np.float64)

    def draw_object(self, ax, data: TaskData, i: int) -> None:
        from .simulate import CADENCE_DAYS

        flux = np.asarray(data.x[i], dtype=float)
        ax.plot(np.arange(len(flux)) * CADENCE_DAYS, flux / np.nanmedian(flux), ".", ms=1.2, color="0.25")
        ax.set_ylabel("rel. flux", fontsize=7)
        ax.set_xlabel("time since first cadence [d]", fontsize=7)


TASK = TransitsTask()
