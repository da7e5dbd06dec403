"""The ``transits`` task plugged into the core."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ..core.data import TaskData
from ..core.task import Task
from ..errors import DataError
from . import INFO, io
from .augment import augment, inject_eclipsing_binary, inject_raw, inject_transit
from .models import MODELS
from .preprocess import clean_batch, to_channels
from .search import SCALAR_NAMES, SearchSettings, candidate_scalars, views_cached
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


class ViewsDataset(Dataset):
    """Items ``(flat views float32, int64 label)`` (see :mod:`.search`); training items are
    mirrored in time and have their odd and even transits swapped at random, two symmetries under
    which a planet stays a planet and an eclipsing binary an eclipsing binary."""

    def __init__(self, feats: np.ndarray, y: np.ndarray | None, train: bool, settings: SearchSettings):
        self.feats = feats
        self.y = y
        self.train = train
        s = settings
        g, lo = s.n_global, s.n_local
        # the same indices in every candidate's block
        base = [k * s.n_per_candidate for k in range(s.n_candidates)]
        self.flip_src = np.concatenate([b + np.concatenate([np.arange(g)[::-1]] + [g + c * lo + np.arange(lo)[::-1]
                                                                                   for c in range(4)])
                                        for b in base])
        self.flip_dst = np.concatenate([b + np.arange(g + 4 * lo) for b in base])
        self.odd = np.concatenate([b + g + lo + np.arange(lo) for b in base])
        self.even = np.concatenate([b + g + 2 * lo + np.arange(lo) for b in base])
        self.odd_even = np.array([b + g + 4 * lo + list(SCALAR_NAMES).index("odd_even_sigma") for b in base])

    def __len__(self):
        return len(self.feats)

    def __getitem__(self, i):
        x = self.feats[i]
        target = -1 if self.y is None else int(self.y[i])
        if self.train:
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,)).item()))
            x = x.copy()
            if rng.random() < 0.5:
                x[self.flip_dst] = x[self.flip_src]
            if rng.random() < 0.5:
                x[self.odd], x[self.even] = x[self.even].copy(), x[self.odd].copy()
                x[self.odd_even] = -x[self.odd_even]
        return torch.from_numpy(np.ascontiguousarray(x)), torch.tensor(target, dtype=torch.long)


def _is_file(data: TaskData) -> bool:
    from pathlib import Path

    try:
        return bool(data.source) and Path(data.source).exists()
    except OSError:
        return False


def transit_views(data: TaskData, stats: dict) -> np.ndarray:
    """The views of every object (cached on disk when the data came from a file)."""
    return views_cached(np.asarray(data.x), SearchSettings.from_stats(stats), persist=_is_file(data))


def injected_views(data: TaskData, stats: dict, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Views and labels of extra training light curves: copies of non-hosts with a planet, an
    eclipsing binary or a background EB injected into their raw flux (shares of the non-hosts:
    ``inject_prob``, ``inject_hard_prob`` (large planets at high impact parameter),
    ``inject_eb_prob``, ``inject_beb_prob``). Drawn once, before training: the
    views need the search, too slow to redo per epoch."""
    y = data.hard_labels
    x = np.asarray(data.x)
    med = np.nanmedian(x, axis=1)
    hosts = np.flatnonzero((y == 0) & (med > 0))
    counts = {kind: int(round(float(params.get(key, 0.0)) * len(hosts)))
              for kind, key in (("planet", "inject_prob"), ("planet_hard", "inject_hard_prob"),
                                 ("eb", "inject_eb_prob"), ("beb", "inject_beb_prob"))}
    total = sum(counts.values())
    s = SearchSettings.from_stats(stats)
    if not total or not len(hosts):
        return np.zeros((0, s.n_features), np.float32), np.zeros(0, np.int64)
    # seeded by the training set itself, so a run's extra light curves (and their cache entry) are
    # reproducible
    import zlib

    rng = np.random.default_rng([zlib.crc32("\n".join(map(str, data.ids)).encode()), int(params.get("inject_seed", 0))])
    kinds = [k for k, n in counts.items() for _ in range(n)]
    rows = rng.choice(hosts, size=total, replace=total > len(hosts))
    flux = np.stack([inject_raw(x[r], k, rng) for r, k in zip(rows, kinds)])
    labels = np.array([1 if k.startswith("planet") else 0 for k in kinds], dtype=np.int64)
    return views_cached(flux, s, persist=_is_file(data)), labels


def _clean(data: TaskData, stats: dict) -> tuple[np.ndarray, np.ndarray]:
    """Detrended relative flux and per-star noise, at the training length."""
    x = np.asarray(data.x)
    length = int(stats.get("length", N_POINTS))
    if x.shape[1] != length:
        x = np.stack([io.fit_length(r, length) for r in x]) if len(x) else np.zeros((0, length))
    return clean_batch(x, detrend=stats.get("detrend", "biweight"),
                       window_days=stats.get("window_days", 0.75), clip_sigma=stats.get("clip_sigma", 4.0))


def transit_features(data: TaskData, stats: dict, params: dict) -> np.ndarray:
    """The transit search's scalars (period, depth, SNR, odd/even, secondary ...) with a views
    model; otherwise flux quantiles in noise units, the noise, the deepest point and counts of
    deep points."""
    if (stats or {}).get("input") == "views":
        s = SearchSettings.from_stats(stats)
        return candidate_scalars(transit_views(data, stats), s)
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
        if params.get("input") == "views":
            # every choice of the search and the views, fixed here and stored in the bundle
            overrides = {k: params[k] for k in ("detrend", "window_days", "n_candidates", "shape_fit") if k in params}
            return {"input": "views", **SearchSettings(length=int(train.x.shape[1]), **overrides).to_dict(),
                    "candidate_context": bool(params.get("candidate_context", True)),
                    "members": int(params.get("members", 1))}
        return {"length": int(train.x.shape[1]), "detrend": "biweight", "window_days": 0.75, "clip_sigma": 4.0}

    def dataset(self, data: TaskData, stats: dict, params: dict, *, train: bool) -> Dataset:
        y = data.hard_labels if data.has_labels else None
        if stats.get("input") == "views":
            feats = transit_views(data, stats)
            if train and y is not None:
                extra, extra_y = injected_views(data, stats, params)
                feats, y = np.concatenate([feats, extra]), np.concatenate([y, extra_y])
            return ViewsDataset(feats, y, train=train, settings=SearchSettings.from_stats(stats))
        rel, sigma = _clean(data, stats)
        return FluxDataset(rel, sigma, y, train=train, inject_prob=float(params.get("inject_prob", 0.0)),
                           inject_eb_prob=float(params.get("inject_eb_prob", 0.0)))

    def tta_views(self, params, stats=None):
        if (stats or {}).get("input") == "views":
            return []
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
