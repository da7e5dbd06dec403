"""Simulated Breakthrough Listen cadence snippets on ``setigen``, written in the competition layout.

Each snippet is one setigen :class:`~setigen.Frame` spanning the whole cadence (6 scans × 273 time
steps × 256 channels of 2.79 Hz, 1.1 s per step: about 300 s per scan) so that every signal
continues from one scan to the next with a consistent drift; it is cut into the ``(6, 273, 256)``
scan × time × frequency stack afterwards and stored as float16, each scan standardised like the
competition's snippets.

* radiometer noise: chi-squared with setigen's degrees of freedom (2 polarisations × df·dt samples)
  times a smooth bandpass (a polynomial roll-off + a coarse-channel ripple);
* RFI, in ON **and** OFF scans (negatives): persistent narrow-band lines (fixed or drifting) and
  broadband bursts;
* needles (positives, ``positive_fraction`` ≈ 10%): present in the three ON scans only, along a
  linear, quadratic or sinusoidal ("s"-shaped) path in frequency, with drift rates, SNRs and widths
  drawn from ranges; the path runs through the OFF scans too (the source keeps drifting) but is
  invisible there.
"""
from __future__ import annotations

import copy
import warnings
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .io import with_content_ids, write_cadence_folder

N_SCANS, T_SCAN, N_CHAN = 6, 273, 256
DF_HZ = 2.7939677238464355  # Breakthrough Listen high-resolution channel width
DT_S = 300.0 / T_SCAN  # a 5-minute scan in 273 steps
FCH1_HZ = 6.0e9
X_MEAN = 10.0


#: columns of ``truth.csv`` after ``id,target`` and their formats
TRUTH_FIELDS = ("path", "snr", "drift_hz_s", "width_hz", "start_channel")
TRUTH_FORMATS = {"snr": ".3f", "drift_hz_s": ".5f", "width_hz": ".3f", "start_channel": ".2f"}


@dataclass
class SimulationConfig:
    """Ranges of the simulated population (SNR per scan, in setigen's definition)."""

    positive_fraction: float = 0.1
    snr_range: tuple[float, float] = (15.0, 80.0)
    drift_range_hz_s: float = 0.3  # |drift| ≤ this
    width_range_hz: tuple[float, float] = (3.0, 20.0)
    path_probs: tuple[float, float, float] = (0.5, 0.25, 0.25)  # linear, quadratic, sine
    rfi_lines_mean: float = 1.5  # Poisson mean of persistent narrow-band RFI lines per snippet
    rfi_snr_range: tuple[float, float] = (15.0, 200.0)
    broadband_prob: float = 0.2
    # ---- the harsher population (all off by default: the default simulator is unchanged) ----
    #: scale of the bandpass roll-off / slope (1 = the default's) and the amplitude of a fine
    #: ripple (period 6–40 channels) that is the same in every scan, as in real snippets
    bandpass_scale: float = 1.0
    fine_ripple: float = 0.0
    #: Poisson mean of intermittent RFI lines: in a random subset of scans that includes an OFF
    #: one (never in the three ON scans alone), drifting or not, for part of each scan
    intermittent_rfi_mean: float = 0.0
    #: scan-to-scan gain: each scan's gain drawn from [1 − g, 1 + g]
    gain_jump: float = 0.0
    #: per-time-step gain stripes over part of the band, relative amplitude
    gain_stripes: float = 0.0
    #: probability of a saturated (clipped) snippet, and of a DC spike (one bright constant channel)
    saturate_prob: float = 0.0
    dc_spike_prob: float = 0.0

    def __post_init__(self):
        if not 0 <= self.positive_fraction <= 1:
            raise ConfigError(f"positive_fraction must be in [0, 1], got {self.positive_fraction}")
        if not 0 < self.snr_range[0] <= self.snr_range[1]:
            raise ConfigError(f"snr_range must be 0 < low <= high, got {self.snr_range}")


@lru_cache(maxsize=1)
def _template():
    import setigen as stg

    return stg.Frame(fchans=N_CHAN, tchans=N_SCANS * T_SCAN, df=DF_HZ, dt=DT_S, fch1=FCH1_HZ)


#: a population as hard as the real snippets: strong slopes and ripples, intermittent RFI in ON
#: and OFF, frequent broadband bursts, gain jumps and stripes, saturation, DC spikes (levels set
#: against the real snippets; ``benchmarks/technosignatures_real.py stats`` prints both)
HARSH = dict(positive_fraction=0.5, snr_range=(12.0, 150.0), rfi_lines_mean=2.0, rfi_snr_range=(15.0, 400.0),
             broadband_prob=0.5, bandpass_scale=3.0, fine_ripple=0.03, intermittent_rfi_mean=1.5,
             gain_jump=0.3, gain_stripes=0.05, saturate_prob=0.2, dc_spike_prob=0.5)


def harsh_config(**overrides) -> SimulationConfig:
    return SimulationConfig(**{**HARSH, **overrides})


def _frame(rng: np.random.Generator, cfg: SimulationConfig | None = None):
    """A fresh setigen Frame of the whole cadence holding chi-squared noise × bandpass.

    Building a Frame costs ~15 ms (astropy units and sigma-clipped statistics), more than the
    rest of a snippet, so each snippet is a shallow copy of one template (sharing its read-only
    time/frequency axes) with its own data array. setigen's add_noise draws the same
    chi-squared noise but ~10x slower; we draw it with setigen's degrees of freedom and record the
    noise statistics setigen's SNR conventions use."""
    frame = copy.copy(_template())
    dof = frame.chi2_df
    noise = rng.standard_gamma(dof / 2, size=frame.shape, dtype=np.float32) * np.float32(2 * X_MEAN / dof)
    bp = bandpass(rng) if cfg is None or (cfg.bandpass_scale == 1 and cfg.fine_ripple == 0) else \
        bandpass(rng, cfg.bandpass_scale, cfg.fine_ripple)
    frame.data = (noise * bp[None, :].astype(np.float32)).astype(np.float64)
    frame.noise_mean, frame.noise_std = X_MEAN, np.sqrt(2 * dof) * X_MEAN / dof
    return frame


def bandpass(rng: np.random.Generator, scale: float = 1.0, fine: float = 0.0) -> np.ndarray:
    """``(N_CHAN,)`` multiplicative bandpass: a random quadratic roll-off and slope (× ``scale``),
    a slow ripple and, with ``fine`` > 0, a fine ripple of that relative amplitude."""
    u = np.linspace(-1, 1, N_CHAN)
    roll = 1.0 - scale * rng.uniform(0.05, 0.3) * u**2 + scale * rng.uniform(-0.1, 0.1) * u
    ripple = 1.0 + rng.uniform(0, 0.05) * np.sin(2 * np.pi * rng.uniform(0.5, 3) * u + rng.uniform(0, 2 * np.pi))
    out = roll * ripple
    if fine > 0:
        period = rng.uniform(6, 40) / N_CHAN * 2
        out = out * (1.0 + rng.uniform(0.3, 1.0) * fine * np.sin(2 * np.pi * u / period + rng.uniform(0, 2 * np.pi)))
    return np.maximum(out, 0.05)


def _on_mask(t: np.ndarray) -> np.ndarray:
    return ((np.asarray(t) // (T_SCAN * DT_S)) % 2 == 0).astype(np.float64)


def _add(frame, path, level_fn, width_hz: float, rng_pad: float = 6.0):
    """Add a signal along ``path`` restricted to the channels it visits (fast bounding range)."""
    import setigen as stg

    fs = np.asarray(frame.fs)  # channel centre frequencies (descending when ascending=False)
    ch = (np.asarray(path(frame.ts), dtype=np.float64) - fs[0]) / (fs[1] - fs[0])
    pad = rng_pad * width_hz / DF_HZ + 2
    lo, hi = int(np.clip(ch.min() - pad, 0, N_CHAN)), int(np.clip(ch.max() + pad + 1, 0, N_CHAN))
    if hi - lo < 1:
        return
    frame.add_signal(path, level_fn, stg.gaussian_f_profile(width=width_hz), stg.constant_bp_profile(level=1.0),
                     bounding_f_range=(frame.get_frequency(lo), frame.get_frequency(hi)))  # in Hz


def _path(kind: str, f0: float, drift: float, rng: np.random.Generator):
    """Frequency (Hz) as a function of time (s): linear, quadratic or sinusoidal."""
    if kind == "linear":
        import setigen as stg

        return stg.constant_path(f_start=f0, drift_rate=drift)
    if kind == "quadratic":
        # setigen's squared_path has no linear term; a chirp whose drift changes sign is more varied
        accel = rng.uniform(-1, 1) * 2 * 0.3 / (N_SCANS * T_SCAN * DT_S)
        return lambda t: f0 + drift * t + 0.5 * accel * np.asarray(t) ** 2
    amp = rng.uniform(10, 60) * DF_HZ / 4
    period = rng.uniform(150, 900)
    phase = rng.uniform(0, 2 * np.pi)
    return lambda t: f0 + drift * t + amp * np.sin(2 * np.pi * np.asarray(t) / period + phase)


def simulate_snippet(rng: np.random.Generator, positive: bool, cfg: SimulationConfig | None = None
                     ) -> tuple[np.ndarray, dict]:
    """One ``(6, 273, 256)`` float32 snippet (each scan standardised) and its truth record."""
    import setigen as stg

    cfg = cfg or SimulationConfig()
    frame = _frame(rng, cfg)
    total_s = N_SCANS * T_SCAN * DT_S
    truth: dict = {"path": "", "snr": 0.0, "drift_hz_s": 0.0, "width_hz": 0.0, "start_channel": -1}
    per_scan = frame.noise_std / np.sqrt(T_SCAN)  # setigen's SNR→intensity, per 273-step scan
    # persistent RFI: present in every scan (ON and OFF), fixed or slowly drifting
    for _ in range(rng.poisson(cfg.rfi_lines_mean)):
        c = rng.uniform(0, N_CHAN)
        drift = 0.0 if rng.random() < 0.6 else rng.uniform(-0.05, 0.05)
        level = rng.uniform(*cfg.rfi_snr_range) * per_scan
        width = rng.uniform(2, 30)
        _add(frame, stg.constant_path(f_start=frame.get_frequency(c), drift_rate=drift),
             stg.constant_t_profile(level=level), width)
    for _ in range(rng.poisson(cfg.intermittent_rfi_mean) if cfg.intermittent_rfi_mean > 0 else 0):
        # a subset of scans holding at least one OFF scan: never "ON only", so never a needle
        scans = {int(rng.choice([1, 3, 5]))} | {int(k) for k in np.flatnonzero(rng.random(N_SCANS) < 0.4)}
        mask = np.zeros(N_SCANS)
        mask[sorted(scans)] = 1.0
        a = rng.uniform(0, 0.5)
        b = a + rng.uniform(0.2, 1.0 - a)
        c = rng.uniform(0, N_CHAN)
        drift = 0.0 if rng.random() < 0.4 else rng.uniform(-0.3, 0.3)
        level = rng.uniform(*cfg.rfi_snr_range) * per_scan

        def t_prof(t, mask=mask, a=a, b=b, level=level):
            t = np.asarray(t)
            k = np.clip((t // (T_SCAN * DT_S)).astype(int), 0, N_SCANS - 1)
            frac = t / (T_SCAN * DT_S) - k
            return level * mask[k] * ((frac >= a) & (frac < b))

        _add(frame, stg.constant_path(f_start=frame.get_frequency(c), drift_rate=drift), t_prof, rng.uniform(2, 20))
    if cfg.dc_spike_prob > 0 and rng.random() < cfg.dc_spike_prob:
        frame.data[:, int(rng.integers(0, N_CHAN))] += rng.uniform(5, 60) * frame.noise_std
    if rng.random() < cfg.broadband_prob:
        # a broadband burst: every channel, a few seconds, at any time of the cadence
        t0, dur = rng.uniform(0, total_s), rng.uniform(2, 15)
        level = rng.uniform(5, 40) * per_scan
        frame.add_signal(stg.constant_path(f_start=frame.get_frequency(N_CHAN // 2), drift_rate=0),
                         lambda t: level * np.exp(-0.5 * ((np.asarray(t) - t0) / dur) ** 2),
                         stg.box_f_profile(width=N_CHAN * DF_HZ * 2), stg.constant_bp_profile(level=1.0))
    if positive:
        kind = ["linear", "quadratic", "sine"][rng.choice(3, p=np.asarray(cfg.path_probs) / sum(cfg.path_probs))]
        drift = rng.uniform(-cfg.drift_range_hz_s, cfg.drift_range_hz_s)
        # start where the linear part stays inside the band over the ON scans when possible
        span_ch = drift * (5 * T_SCAN * DT_S) / DF_HZ
        lo, hi = 10 + max(0.0, -span_ch), N_CHAN - 10 - max(0.0, span_ch)
        c0 = rng.uniform(lo, hi) if hi > lo else rng.uniform(10, N_CHAN - 10)
        # frequencies descend with channel index (ascending=False), so a positive drift in Hz/s
        # moves towards lower channel numbers
        f0 = frame.get_frequency(c0)
        snr = float(np.exp(rng.uniform(*np.log(cfg.snr_range))))
        width = float(np.exp(rng.uniform(*np.log(cfg.width_range_hz))))
        level = snr * per_scan
        _add(frame, _path(kind, f0, drift, rng), lambda t: level * _on_mask(t), width)
        truth = {"path": kind, "snr": snr, "drift_hz_s": float(drift), "width_hz": width, "start_channel": float(c0)}
    x = frame.data.reshape(N_SCANS, T_SCAN, N_CHAN)
    if cfg.gain_stripes > 0:
        # per-time-step gain over a random part of the band (the horizontal stripes of real data)
        lo = int(rng.integers(0, N_CHAN // 2))
        hi = int(rng.integers(lo + N_CHAN // 4, N_CHAN + 1))
        g = 1.0 + cfg.gain_stripes * rng.standard_normal((N_SCANS, T_SCAN, 1))
        x[:, :, lo:hi] *= g
    if cfg.gain_jump > 0:
        x = x * rng.uniform(1 - cfg.gain_jump, 1 + cfg.gain_jump, size=(N_SCANS, 1, 1))
    if cfg.saturate_prob > 0 and rng.random() < cfg.saturate_prob:
        x = np.minimum(x, np.quantile(x, rng.uniform(0.995, 0.9999)))
    # standardise each scan like the competition's snippets (mean 0, unit variance)
    x = (x - x.mean(axis=(1, 2), keepdims=True)) / x.std(axis=(1, 2), keepdims=True)
    return x.astype(np.float32), truth


def simulate_harsh(out, n: int = 2000, seed: int = 0) -> Path:
    """:func:`simulate` with the harsher population :data:`HARSH`."""
    return simulate(out, n=n, seed=seed, cfg=harsh_config())


def simulate(out, n: int = 2000, seed: int = 0, cfg: SimulationConfig | None = None) -> Path:
    """Write ``n`` labelled snippets as ``out/train/<c>/<id>.npy`` + ``out/train_labels.csv``
    (``id,target``) + ``out/truth.csv`` (path kind, SNR, drift, width of each needle). Returns ``out``."""
    if n < 2:
        raise ConfigError(f"simulate needs n >= 2, got {n}")
    cfg = cfg or SimulationConfig()
    out = Path(out)
    rng = np.random.default_rng(seed)
    n_pos = int(round(cfg.positive_fraction * n))
    labels = np.zeros(n, dtype=np.int64)
    labels[rng.choice(n, size=n_pos, replace=False)] = 1
    # the random ids of earlier rounds are still drawn so that a seed gives the same snippets as
    # before; the ids written are content ids (io.with_content_ids), unique to each snippet's data
    rng.integers(0, 16**15, size=n, dtype=np.int64)

    def rows():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for y in labels:
                x, t = simulate_snippet(rng, bool(y), cfg)
                yield x, int(y), t

    write_cadence_folder(out, with_content_ids(rows()), TRUTH_FIELDS, TRUTH_FORMATS)
    return out


def config_dict(cfg: SimulationConfig | None = None) -> dict:
    return asdict(cfg or SimulationConfig())
