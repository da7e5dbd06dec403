"""Sequence networks for PLAsTiCC light curves: dataset, collate, and the models.

Each object becomes a sequence of observation tokens, all six bands interleaved in time order
(the networks see the band of each token, so no per-band resampling onto a grid is needed and the
irregular cadence is kept exactly):

==============  ==========================================================================
``time``        days relative to the object's brightest detection (brightest observation
                when nothing is detected)
``dt``          days since the previous observation (0 for the first)
``band``        passband index 0..5 (u g r i z y), int64
``flux``        flux / scale, where scale = the object's largest ``|flux|`` (≥ 1 FLUXCAL)
``flux_err``    flux_err / scale
``snr``         asinh(flux / flux_err): scale-free, and it is what the survey detects on
``detected``    the survey's detection flag, 0/1
==============  ==========================================================================

Dividing by a per-object scale makes shapes comparable across 4 decades of brightness; the scale
itself is not thrown away: ``log10(scale)`` is the first entry of the object's ``meta`` vector,
next to ``hostgal_photoz``, ``hostgal_photoz_err``, ``distmod`` (NaN for galactic objects → 0
after standardisation, plus a missing-flag), ``mwebv`` and ``ddf``. ``hostgal_specz`` is never an
input: most of the PLAsTiCC test set lacks it, photo-z is the honest input.

Length cap: the real training set has 136 observations at the median, 255 at the 75th percentile
(deep-drilling fields reach 352) but only 11 detections at the median (77 at the 90th
percentile). ``max_len`` (default 128) keeps every detection (highest S/N first if even those are
too many) and evenly spaced non-detections to fill the rest, in time order. 128 rather than 256:
attention costs grow with L², and on 2 CPU cores a training step of the transformer takes 0.1 s
at 128 against 0.4 s at 256 (batch 64), while the dropped rows are flat baseline between
detections, evenly thinned.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

from ..core.data import TaskData
from ..errors import ConfigError
from .augment import DEFAULT_AUGMENT, _reference_time, augment_object
from .data import LightCurves

# the builders of these networks are in .models, which must load without torch
from .models import DEFAULT_MAX_LEN, MODELS

SEQ_KEYS = ("time", "dt", "band", "flux", "flux_err", "snr", "detected")
#: metadata inputs, in the order of the ``meta`` vector (``log_scale`` and the distmod flag are
#: derived; see the module docstring)
META_INPUTS = ("log_scale", "hostgal_photoz", "hostgal_photoz_err", "distmod", "distmod_missing",
               "mwebv", "ddf")


# ---- per-object preprocessing ----------------------------------------------------------------
def _select(obj: dict, max_len: int) -> np.ndarray:
    """Row indices (time order) of at most ``max_len`` observations (see the module docstring)."""
    n = len(obj["mjd"])
    if n <= max_len:
        return np.arange(n)
    det = np.asarray(obj["detected"], dtype=bool)
    d_idx = np.flatnonzero(det)
    if len(d_idx) >= max_len:
        snr = np.abs(obj["flux"][d_idx]) / obj["flux_err"][d_idx]
        return np.sort(d_idx[np.argsort(-snr, kind="stable")[:max_len]])
    nd_idx = np.flatnonzero(~det)
    fill = max_len - len(d_idx)
    pick = nd_idx[np.round(np.linspace(0, len(nd_idx) - 1, fill)).astype(np.int64)]
    return np.sort(np.concatenate([d_idx, pick]))


def _log_scale(flux: np.ndarray) -> float:
    return float(np.log10(max(float(np.max(np.abs(flux))) if len(flux) else 1.0, 1.0)))


def _raw_meta(obj: dict, log_scale: float) -> np.ndarray:
    dm = obj.get("distmod", np.nan)
    return np.array([log_scale, obj.get("hostgal_photoz", np.nan), obj.get("hostgal_photoz_err", np.nan),
                     dm, 0.0 if np.isfinite(dm) else 1.0, obj.get("mwebv", np.nan), obj.get("ddf", np.nan)],
                    dtype=np.float64)


def _signed_log(x: np.ndarray) -> np.ndarray:
    """sign(x)·log1p(|x|): the seed aggregates span ~8 decades of flux; standardising them raw
    would leave a few bright objects at +50σ."""
    return np.sign(x) * np.log1p(np.abs(x))


def _aggregates(lc: LightCurves) -> tuple[np.ndarray, list[str]]:
    from .features import seed_aggregates

    x, names = seed_aggregates(lc)
    return _signed_log(np.asarray(x, dtype=np.float64)), list(names)


def fit_sequence_stats(lc: LightCurves, params: dict) -> dict:
    """Standardisation statistics learnt on the *training* light curves (JSON-serialisable).

    Returns ``{"sequence": {"meta_names", "meta_mean", "meta_std", "agg_names", "agg_mean",
    "agg_std", "max_len", "length_percentiles"}}``; the ``agg_*`` lists are empty unless
    ``params["aggregates"]`` (the seed model's whole-curve aggregates) is true.
    """
    max_len = int(params.get("max_len", DEFAULT_MAX_LEN))
    if max_len < 8:
        raise ConfigError(f"max_len must be >= 8 observations, got {max_len}")
    n = len(lc)
    if n == 0:
        raise ConfigError("cannot fit sequence statistics on an empty training split")
    # per-object largest |flux|, vectorised over the CSR layout (reduceat over non-empty objects
    # only: an empty one would otherwise be given its neighbour's first value)
    peak = np.ones(n)
    nonempty = lc.lengths > 0
    if nonempty.any():
        peak[nonempty] = np.maximum.reduceat(np.abs(lc.flux.astype(np.float64)), lc.offsets[:-1][nonempty])
    log_scale = np.log10(np.maximum(peak, 1.0))
    dm = lc.meta["distmod"]
    raw = np.column_stack([log_scale, lc.meta["hostgal_photoz"], lc.meta["hostgal_photoz_err"], dm,
                           (~np.isfinite(dm)).astype(float), lc.meta["mwebv"], lc.meta["ddf"]])
    mean, std = _nan_mean_std(raw)
    mean[4], std[4] = 0.0, 1.0  # the missing-flag stays 0/1
    mean[6], std[6] = 0.0, 1.0  # so does ddf
    out = {"meta_names": list(META_INPUTS), "meta_mean": mean.tolist(), "meta_std": std.tolist(),
           "agg_names": [], "agg_mean": [], "agg_std": [], "max_len": max_len,
           "length_percentiles": {str(q): float(v) for q, v in
                                  zip((50, 75, 95, 100), np.percentile(lc.lengths, [50, 75, 95, 100]))}}
    if params.get("aggregates", False):
        agg, names = _aggregates(lc)
        a_mean, a_std = _nan_mean_std(agg)
        out.update(agg_names=names, agg_mean=a_mean.tolist(), agg_std=a_std.tolist())
    return {"sequence": out}


def _nan_mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.where(np.isfinite(x), x, np.nan)
    finite = np.isfinite(x).any(axis=0)
    mean = np.zeros(x.shape[1])
    std = np.ones(x.shape[1])
    mean[finite] = np.nanmean(x[:, finite], axis=0)
    s = np.nanstd(x[:, finite], axis=0)
    std[finite] = np.where(s > 1e-12, s, 1.0)
    return mean, std


def _seq_stats(stats: dict) -> dict:
    s = stats.get("sequence") if isinstance(stats, dict) else None
    if not isinstance(s, dict) or "meta_mean" not in s:
        raise ConfigError("preprocessing statistics lack the 'sequence' entry of fit_sequence_stats; "
                          "fit them on the training split first")
    return s


def encode_object(obj: dict, stats: dict, agg: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """Tensors of one object (see the module docstring); ``agg`` are its signed-log seed
    aggregates ``(F,)`` when the model uses them."""
    s = _seq_stats(stats)
    rows = _select(obj, int(s["max_len"]))
    mjd = np.asarray(obj["mjd"], dtype=np.float64)[rows]
    flux = np.asarray(obj["flux"], dtype=np.float64)[rows]
    err = np.asarray(obj["flux_err"], dtype=np.float64)[rows]
    det = np.asarray(obj["detected"], dtype=bool)[rows]
    band = np.asarray(obj["passband"], dtype=np.int64)[rows]
    if len(rows) == 0:
        raise ValueError("an object without observations cannot be encoded")
    ref = _reference_time({"mjd": mjd, "flux": flux, "detected": det})
    log_scale = _log_scale(flux)
    scale = 10.0 ** log_scale
    err = np.maximum(err, 1e-6)  # the loaders guarantee > 0; keep asinh finite regardless
    meta = (_raw_meta(obj, log_scale) - np.asarray(s["meta_mean"])) / np.asarray(s["meta_std"])
    meta = np.where(np.isfinite(meta), meta, 0.0)
    out = {
        "time": torch.as_tensor(mjd - ref, dtype=torch.float32),
        "dt": torch.as_tensor(np.diff(mjd, prepend=mjd[0]), dtype=torch.float32),
        "band": torch.as_tensor(band, dtype=torch.int64),
        "flux": torch.as_tensor(flux / scale, dtype=torch.float32),
        "flux_err": torch.as_tensor(err / scale, dtype=torch.float32),
        "snr": torch.as_tensor(np.arcsinh(flux / err), dtype=torch.float32),
        "detected": torch.as_tensor(det, dtype=torch.float32),
        "meta": torch.as_tensor(meta, dtype=torch.float32),
    }
    if s["agg_names"]:
        if agg is None:
            raise ValueError("this model needs the seed aggregates of every object")
        a = (np.asarray(agg, dtype=np.float64) - np.asarray(s["agg_mean"])) / np.asarray(s["agg_std"])
        out["agg"] = torch.as_tensor(np.where(np.isfinite(a), a, 0.0), dtype=torch.float32)
    return out


class SequenceDataset(torch.utils.data.Dataset):
    """``(inputs, target)`` items of a transients :class:`TaskData` (``x`` a LightCurves).

    ``inputs`` is the dict of :func:`encode_object`; ``target`` an int64 class index, or -1 when
    the data has no labels. With ``train=True`` every access draws a fresh augmentation
    (:func:`~skysift.transients.augment.augment_object` with ``params["augment"]``) from torch's
    global RNG, which Lightning seeds (and re-seeds per DataLoader worker).
    """

    def __init__(self, data: TaskData, stats: dict, params: dict, *, train: bool):
        if not isinstance(data.x, LightCurves):
            raise ConfigError(f"the transients sequence models need LightCurves inputs, got {type(data.x).__name__}")
        self.lc = data.x
        self.y = data.hard_labels if data.has_labels else None
        self.stats = stats
        self.seq = _seq_stats(stats)
        self.train = bool(train)
        self.augment = {**DEFAULT_AUGMENT, **(params.get("augment") or {})}
        self.uses_agg = bool(self.seq["agg_names"])
        # aggregates of the unaugmented objects once, vectorised; augmented ones are recomputed
        self._agg = _aggregates(self.lc)[0] if self.uses_agg and len(self.lc) else None

    def __len__(self) -> int:
        return len(self.lc)

    def __getitem__(self, i: int):
        obj = self.lc.object(int(i))
        agg = None if self._agg is None else self._agg[i]
        if self.train:
            rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
            obj = augment_object(obj, rng, self.augment)
            if self.uses_agg:
                from .augment import objects_to_lightcurves

                agg = _aggregates(objects_to_lightcurves([obj]))[0][0]
        target = -1 if self.y is None else int(self.y[i])
        return encode_object(obj, self.stats, agg), torch.tensor(target, dtype=torch.int64)


def collate(batch: list) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Pad a list of ``(inputs, target)`` to the longest sequence of the batch.

    Returns ``(inputs, targets)``: sequence keys ``(B, L)`` (zero padded), ``mask`` ``(B, L)``
    bool (True on real observations), ``length`` ``(B,)`` int64, ``meta`` ``(B, M)``, ``agg``
    ``(B, F)`` when present; ``targets`` ``(B,)`` int64.
    """
    inputs = [b[0] for b in batch]
    out = {k: pad_sequence([x[k] for x in inputs], batch_first=True) for k in SEQ_KEYS}
    lengths = torch.tensor([len(x["time"]) for x in inputs], dtype=torch.int64)
    out["length"] = lengths
    out["mask"] = torch.arange(out["time"].shape[1])[None, :] < lengths[:, None]
    out["meta"] = torch.stack([x["meta"] for x in inputs])
    if "agg" in inputs[0]:
        out["agg"] = torch.stack([x["agg"] for x in inputs])
    return out, torch.stack([b[1] for b in batch])


# ---- models ------------------------------------------------------------------------------------
class SeedLSTM(nn.Module):
    """The seed project's network, kept for parity: a 2-layer LSTM (hidden 100, dropout 0.1) over
    packed sequences of (log1p Δt, flux, flux_err, one-hot band, detected), its last hidden state
    concatenated with an MLP (512-256-128-64, BatchNorm + dropout) of the seed aggregates and the
    metadata vector, then a linear classifier."""

    def __init__(self, n_classes: int, meta_dim: int, agg_dim: int, hidden: int = 100, layers: int = 2,
                 dropout: float = 0.1, mlp: tuple = (512, 256, 128, 64), mlp_dropout: float = 0.3):
        super().__init__()
        self.lstm = nn.LSTM(10, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        blocks, c = [], agg_dim + meta_dim
        for width in mlp:
            blocks += [nn.Linear(c, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(mlp_dropout)]
            c = width
        self.mlp = nn.Sequential(*blocks)
        self.classifier = nn.Linear(hidden + c, n_classes)

    def embed(self, inputs: dict) -> torch.Tensor:
        """``(B, hidden + 64)``: the vector the classifier reads."""
        x = torch.cat([torch.log1p(inputs["dt"].clamp_min(0)).unsqueeze(-1), inputs["flux"].unsqueeze(-1),
                       inputs["flux_err"].unsqueeze(-1), F.one_hot(inputs["band"], 6).float(),
                       inputs["detected"].unsqueeze(-1)], dim=-1)
        packed = pack_padded_sequence(x, inputs["length"].cpu(), batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        side = inputs["meta"] if "agg" not in inputs else torch.cat([inputs["agg"], inputs["meta"]], dim=1)
        return torch.cat([h[-1], self.mlp(side)], dim=1)

    def forward(self, inputs: dict) -> torch.Tensor:
        return self.classifier(self.embed(inputs))


class TokenEmbedding(nn.Module):
    """Observation tokens → ``(B, L, d)``: a projection of (flux, flux_err, snr, detected), plus a
    learnt band embedding, plus a projection of sinusoids of the time in days (periods from 1 to
    2,000 days, log-spaced: continuous time, no grid, as in Transformer positional encodings but
    on the real clock)."""

    def __init__(self, d_model: int, n_freq: int = 16):
        super().__init__()
        self.value = nn.Linear(4, d_model)
        self.band = nn.Embedding(6, d_model)
        periods = torch.logspace(0, math.log10(2000.0), n_freq)
        self.register_buffer("omega", 2 * math.pi / periods, persistent=False)
        self.time = nn.Linear(2 * n_freq, d_model)

    def forward(self, inputs: dict) -> torch.Tensor:
        v = torch.stack([inputs["flux"], inputs["flux_err"], inputs["snr"] / 3.0, inputs["detected"]], dim=-1)
        phase = inputs["time"].unsqueeze(-1) * self.omega
        t = torch.cat([torch.sin(phase), torch.cos(phase)], dim=-1)
        return self.value(v) + self.band(inputs["band"]) + self.time(t)


class MaskedAttentionPool(nn.Module):
    """Softmax-weighted mean over the real tokens (padding gets weight 0)."""

    def __init__(self, d: int):
        super().__init__()
        self.score = nn.Linear(d, 1)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        s = self.score(h).squeeze(-1).masked_fill(~mask, float("-inf"))
        return torch.einsum("bl,bld->bd", torch.softmax(s, dim=1), h)


def _masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp_min(1.0)


class _PooledHead(nn.Module):
    """Attention + mean pooling of the token states, fused with the metadata (and aggregates)."""

    def __init__(self, d: int, side_dim: int, n_classes: int, hidden: int, dropout: float):
        super().__init__()
        self.pool = MaskedAttentionPool(d)
        self.side = nn.Sequential(nn.Linear(side_dim, 64), nn.GELU())
        self.hidden = nn.Sequential(nn.Linear(2 * d + 64, hidden), nn.GELU(), nn.Dropout(dropout))
        self.classifier = nn.Linear(hidden, n_classes)

    def embed(self, h, mask, inputs) -> torch.Tensor:
        side = inputs["meta"] if "agg" not in inputs else torch.cat([inputs["agg"], inputs["meta"]], dim=1)
        return self.hidden(torch.cat([self.pool(h, mask), _masked_mean(h, mask), self.side(side)], dim=1))


class SequenceTransformer(nn.Module):
    """Transformer encoder over observation tokens (:class:`TokenEmbedding`), masked attention
    pooling, metadata fused into the head. Padding is excluded with ``src_key_padding_mask``.

    ``encoder_dropout`` (default 0) is separate from the head's ``dropout``: inside the encoder it
    also drops attention weights, which on CPU forces the unfused attention path (2.5× slower
    per step at L=128, measured) for no measured gain on this small model."""

    def __init__(self, n_classes: int, meta_dim: int, agg_dim: int = 0, d_model: int = 64, layers: int = 2,
                 heads: int = 4, ff: int = 128, dropout: float = 0.1, head_hidden: int = 128, n_freq: int = 16,
                 encoder_dropout: float = 0.0):
        super().__init__()
        self.tokens = TokenEmbedding(d_model, n_freq)
        layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=ff, dropout=encoder_dropout,
                                           batch_first=True, norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = _PooledHead(d_model, meta_dim + agg_dim, n_classes, head_hidden, dropout)

    def embed(self, inputs: dict) -> torch.Tensor:
        mask = inputs["mask"]
        h = self.norm(self.encoder(self.tokens(inputs), src_key_padding_mask=~mask))
        return self.head.embed(h, mask, inputs)

    def forward(self, inputs: dict) -> torch.Tensor:
        return self.head.classifier(self.embed(inputs))


class SequenceGRU(nn.Module):
    """Bidirectional GRU over the same tokens (packed, so padding is never read), then the same
    pooled head as the transformer."""

    def __init__(self, n_classes: int, meta_dim: int, agg_dim: int = 0, d_model: int = 64, hidden: int = 64,
                 layers: int = 2, dropout: float = 0.1, head_hidden: int = 128, n_freq: int = 16):
        super().__init__()
        self.tokens = TokenEmbedding(d_model, n_freq)
        self.gru = nn.GRU(d_model, hidden, layers, batch_first=True, bidirectional=True,
                          dropout=dropout if layers > 1 else 0.0)
        self.head = _PooledHead(2 * hidden, meta_dim + agg_dim, n_classes, head_hidden, dropout)

    def embed(self, inputs: dict) -> torch.Tensor:
        mask = inputs["mask"]
        packed = pack_padded_sequence(self.tokens(inputs), inputs["length"].cpu(), batch_first=True,
                                      enforce_sorted=False)
        out, _ = self.gru(packed)
        h, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=mask.shape[1])
        return self.head.embed(h, mask, inputs)

    def forward(self, inputs: dict) -> torch.Tensor:
        return self.head.classifier(self.embed(inputs))


def _dims(stats: dict) -> tuple[int, int]:
    s = _seq_stats(stats)
    return len(s["meta_names"]), len(s["agg_names"])


MODEL_SPECS = [MODELS.get(n) for n in ("seed-lstm", "transformer", "gru")]
