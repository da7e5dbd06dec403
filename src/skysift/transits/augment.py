"""Symmetry augmentation of flux series: a transit stays a transit under these."""
from __future__ import annotations

import numpy as np


def augment(x: np.ndarray, rng: np.random.Generator, *, sigma: float, noise: float = 0.3,
            scale: tuple = (0.85, 1.15)) -> np.ndarray:
    """Random time reversal, circular shift, depth scaling and added white noise (up to ``noise``
    times the light curve's own scatter ``sigma``) of a ``(L,)`` relative-flux series."""
    if rng.random() < 0.5:
        x = x[::-1]
    x = np.roll(x, int(rng.integers(0, len(x))))
    x = x * rng.uniform(*scale)
    if noise > 0:
        x = x + rng.normal(0, noise * sigma * rng.random(), len(x))
    return np.ascontiguousarray(x, dtype=np.float32)


def inject_transit(r: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Inject a ``batman`` planet that passes the detection threshold into a detrended series.

    Injection-recovery is how transit surveys measure completeness; here it turns a quiet star's
    light curve into a new, physically valid positive, so a network sees thousands of different
    transits rather than memorising the few dozen real planets of an imbalanced set.
    """
    from .simulate import CADENCE_DAYS, planet_signal

    t = np.arange(len(r)) * CADENCE_DAYS
    transit, _ = planet_signal(t, rng, sigma=sigma)
    return ((1.0 + r) * transit - 1.0).astype(np.float32)


def inject_eclipsing_binary(r: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Inject an eclipsing binary (the commonest astrophysical false positive) into a quiet star.

    The label stays "no planet": this is hard-negative augmentation, the mirror of
    :func:`inject_transit`. Eclipsing binaries are ~1.4% of Kepler targets, so an imbalanced set
    holds too few for a network to learn V shapes, secondaries and too-deep eclipses from.
    """
    from .simulate import CADENCE_DAYS, eclipsing_binary_signal

    t = np.arange(len(r)) * CADENCE_DAYS
    eclipses, _ = eclipsing_binary_signal(t, rng)
    return ((1.0 + r) * eclipses - 1.0).astype(np.float32)


def inject_raw(flux: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A copy of one raw light curve (flux in any unit, NaN = gap) with a signal multiplied in
    *before* detrending, so that the training views carry the pipeline's own distortion of it.

    ``kind``: ``"planet"`` (a batman planet passing Kepler's MES threshold at this star's noise),
    ``"planet_hard"`` (the same, a large planet at high impact parameter: deep V-shaped transits
    that read as eclipsing binaries unless a network has seen them), ``"eb"`` (an eclipsing
    binary) or ``"beb"`` (a background EB diluted to a planet-like depth).
    """
    from .simulate import CADENCE_DAYS, eclipsing_binary_signal, planet_signal

    flux = np.asarray(flux, dtype=np.float64)
    t = np.arange(len(flux)) * CADENCE_DAYS
    if kind in ("planet", "planet_hard"):
        from .preprocess import fill_gaps

        ok = np.isfinite(flux)
        # the star's own noise (variability, granulation, systematics, white noise) sets the
        # planet's detectability, as in the simulator: the injected planet passes Kepler's MES
        noise = fill_gaps(flux) / np.median(flux[ok]) - 1.0 if ok.sum() > 10 else None
        hard = kind == "planet_hard"
        signal, _ = (planet_signal(t, rng, noise=noise, hard=hard) if noise is not None
                     else planet_signal(t, rng, hard=hard))
        from .simulate import MULTI_FRACTION

        if not hard and rng.random() < MULTI_FRACTION:
            signal = signal * planet_signal(t, rng)[0]
    elif kind in ("eb", "beb"):
        signal, _ = eclipsing_binary_signal(t, rng, background=kind == "beb")
    else:
        raise ValueError(f"unknown injection {kind!r}")
    return (flux * signal).astype(np.float32)
