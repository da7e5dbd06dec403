"""Simulated galaxy cutouts with GalSim, in the seed's 4-class ``.npz`` layout.

Every galaxy is built from GalSim profiles in arcseconds, convolved with a Moffat PSF, drawn on a
``size`` × ``size`` grid of 0.396″ SDSS pixels, with Gaussian sky noise per band, in three bands
(g, r, i) shown as an RGB colour image with the Lupton et al. (2004) asinh stretch (astropy's
``make_lupton_rgb``, the stretch SDSS colour cutouts use).

Classes (the seed's normal / ringed / merger / other) and their default shares, imbalanced like the
seed set where most galaxies are ordinary:

* ``normal`` (58 %): ellipticals (de Vaucouleurs-like Sérsic n = 3–4) or bulge + exponential disc
  systems with random inclination and position angle; most discs carry two or three logarithmic
  spiral arms traced by star-forming knots.
* ``ringed`` (12 %): bulge + disc (often a bar) with a bright star-forming ring at 1.5–3 disc scale
  lengths, seen at moderate inclination so the ring stays a ring.
* ``merger`` (10 %): two overlapping galaxies with strong tidal shears, offset by 0.8–3.5 half-light
  radii, plus curved low-surface-brightness tidal tails of knots.
* ``other`` (20 %): irregular, clumpy systems (GalSim ``RandomKnots`` plus an offset diffuse
  component) without a bulge.

Speed: each galaxy is drawn as two GalSim images (an old, red population and a young, blue one) that
are mixed per band, so the three bands cost two FFT draws, about 8–12 ms a galaxy at 64 px.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.io import atomic_path

CLASS_NAMES = ["normal", "ringed", "merger", "other"]
CLASS_SHARES = np.array([0.58, 0.12, 0.10, 0.20])
PIXEL_SCALE = 0.396  # arcsec per pixel, SDSS
# Per-band weights (g, r, i) of the two stellar populations: old stars are red, young ones blue.
RED = np.array([0.45, 1.0, 1.35])
BLUE = np.array([1.0, 0.95, 0.8])
# Sérsic indices drawn from a short list: GalSim caches the expensive Sérsic tables per index.
SERSIC_N = (1.5, 2.5, 3.0, 3.5, 4.0)


def _gsparams():
    import galsim

    # Looser than GalSim's defaults (folding 5e-3): at 64 px with sky noise the difference is
    # invisible and the FFTs are several times smaller.
    return galsim.GSParams(folding_threshold=2e-2, maxk_threshold=3e-3)


def _inclined(profile, rng, min_q: float = 0.15, max_cos: float = 1.0):
    """Shear a round profile to a random inclination and position angle."""
    import galsim

    cos_i = rng.uniform(0.1, max_cos)
    q = float(np.sqrt(cos_i**2 + min_q**2 * (1 - cos_i**2)))  # thick-disc axis ratio
    beta = rng.uniform(0, np.pi) * galsim.radians
    return profile.shear(q=q, beta=beta), q, beta


def _knots_on_curve(xy: np.ndarray, flux: float, sigma: float, rng, gsp):
    """A sum of small Gaussian knots at the points ``xy`` (M, 2) arcsec, fluxes jittered."""
    import galsim

    w = rng.gamma(2.0, 1.0, size=len(xy))
    w = w / w.sum() * flux
    return galsim.Add([galsim.Gaussian(sigma=sigma * rng.uniform(0.7, 1.3), flux=float(f), gsparams=gsp)
                       .shift(float(x), float(y)) for (x, y), f in zip(xy, w)])


def _spiral_arms(r_scale: float, flux: float, rng, gsp):
    """Two or three logarithmic spiral arms r = a exp(b θ) traced by knots, face-on, unit flux."""
    n_arms = int(rng.choice([2, 2, 3]))
    pitch = np.radians(rng.uniform(12, 28))
    b = np.tan(pitch)
    theta = np.linspace(0, rng.uniform(2.5, 4.0), 14)
    r = 0.6 * r_scale * np.exp(b * theta)
    r = r[r < 4.5 * r_scale]
    theta = theta[: len(r)]
    phase0 = rng.uniform(0, 2 * np.pi)
    pts = []
    for k in range(n_arms):
        ph = phase0 + 2 * np.pi * k / n_arms
        pts.append(np.column_stack([r * np.cos(theta + ph), r * np.sin(theta + ph)]))
    xy = np.concatenate(pts) + rng.normal(0, 0.08 * r_scale, size=(sum(len(p) for p in pts), 2))
    return _knots_on_curve(xy, flux, 0.25 * r_scale, rng, gsp)


def _disc_galaxy(rng, gsp, *, arms_prob: float, ring: bool = False, bar_prob: float = 0.0,
                 max_cos: float = 1.0):
    """(red, blue) GalSim profiles of a bulge + disc galaxy at the origin, unit total flux."""
    import galsim

    r_s = rng.uniform(1.4, 3.2)  # disc scale length, arcsec
    bt = rng.uniform(0.1, 0.5)
    bulge = galsim.Sersic(n=float(rng.choice(SERSIC_N[2:])), half_light_radius=rng.uniform(0.4, 1.0),
                          flux=bt, gsparams=gsp).shear(q=rng.uniform(0.7, 1.0),
                                                       beta=rng.uniform(0, np.pi) * galsim.radians)
    disc_flux = 1 - bt
    young = []
    old = [bulge]
    if rng.random() < bar_prob:
        bar = galsim.Sersic(n=1.5, half_light_radius=r_s * rng.uniform(0.6, 1.0),
                            flux=0.12 * disc_flux, gsparams=gsp).shear(q=rng.uniform(0.2, 0.35),
                                                                       beta=rng.uniform(0, np.pi) * galsim.radians)
        old.append(bar)
        disc_flux *= 0.88
    if ring:
        ring_flux = rng.uniform(0.3, 0.5) * disc_flux
        radius = r_s * rng.uniform(1.4, 2.6)
        phi = np.linspace(0, 2 * np.pi, 28, endpoint=False) + rng.uniform(0, 1)
        xy = np.column_stack([radius * np.cos(phi), radius * np.sin(phi)])
        young.append(_knots_on_curve(xy, ring_flux, rng.uniform(0.18, 0.3) * r_s, rng, gsp))
        disc_flux -= ring_flux
    if rng.random() < arms_prob:
        arm_flux = rng.uniform(0.2, 0.4) * disc_flux
        young.append(_spiral_arms(r_s, arm_flux, rng, gsp))
        disc_flux -= arm_flux
    young.append(galsim.Exponential(scale_radius=r_s, flux=disc_flux, gsparams=gsp))
    disc = galsim.Add(young)
    # bulge, bar and disc share one inclination: the disc plane
    cos_i = rng.uniform(0.5 if ring else 0.1, max_cos)
    q = float(np.sqrt(cos_i**2 + 0.15**2 * (1 - cos_i**2)))
    beta = rng.uniform(0, np.pi) * galsim.radians
    return galsim.Add(old).shear(q=q, beta=beta), disc.shear(q=q, beta=beta)


def _elliptical(rng, gsp):
    import galsim

    prof = galsim.Sersic(n=float(rng.choice(SERSIC_N[2:])), half_light_radius=rng.uniform(1.0, 3.0), flux=1.0,
                         gsparams=gsp)
    return prof.shear(q=rng.uniform(0.45, 1.0), beta=rng.uniform(0, np.pi) * galsim.radians), None


def _one_galaxy(rng, gsp, which: str):
    """(red, blue) profiles of a galaxy of class ``which``; either may be None."""
    import galsim

    if which == "normal":
        if rng.random() < 0.3:
            return _elliptical(rng, gsp)
        return _disc_galaxy(rng, gsp, arms_prob=0.75, bar_prob=0.15)
    if which == "ringed":
        return _disc_galaxy(rng, gsp, arms_prob=0.2, ring=True, bar_prob=0.5, max_cos=1.0)
    if which == "merger":
        reds, blues = [], []
        sep_dir = rng.uniform(0, 2 * np.pi)
        sep = rng.uniform(1.5, 5.0)
        ratio = rng.uniform(1.0, 3.0)
        for sign, flux in ((1, ratio / (1 + ratio)), (-1, 1 / (1 + ratio))):
            red, blue = _elliptical(rng, gsp) if rng.random() < 0.35 else _disc_galaxy(rng, gsp, arms_prob=0.3)
            dx, dy = sign * 0.5 * sep * np.cos(sep_dir), sign * 0.5 * sep * np.sin(sep_dir)
            g = rng.uniform(0.15, 0.45)
            tidal = dict(g=g, beta=(sep_dir + rng.normal(0, 0.4)) * galsim.radians)
            for prof, out in ((red, reds), (blue, blues)):
                if prof is not None:
                    out.append(prof.shear(**tidal).withFlux(prof.flux * flux).shift(dx, dy))
            # a curved tidal tail of faint knots leaving the galaxy
            t = np.linspace(0.3, 1.0, 10)
            length = rng.uniform(2.5, 6.0)
            curl = rng.uniform(0.8, 2.0) * rng.choice([-1, 1])
            ang = sep_dir + (0 if sign > 0 else np.pi) + curl * t
            xy = np.column_stack([dx + length * t * np.cos(ang), dy + length * t * np.sin(ang)])
            blues.append(_knots_on_curve(xy, 0.12 * flux, 0.5, rng, gsp))
        return galsim.Add(reds) if reds else None, galsim.Add(blues)
    # other: irregular, clumpy, no bulge
    hlr = rng.uniform(1.2, 3.0)
    clumps = galsim.RandomKnots(npoints=int(rng.integers(6, 20)), half_light_radius=hlr, flux=0.55,
                                rng=galsim.BaseDeviate(int(rng.integers(1 << 30))), gsparams=gsp)
    diffuse = galsim.Exponential(half_light_radius=hlr * rng.uniform(0.8, 1.4), flux=0.45, gsparams=gsp)
    diffuse = diffuse.shear(q=rng.uniform(0.3, 0.9), beta=rng.uniform(0, np.pi) * galsim.radians)
    diffuse = diffuse.shift(*rng.normal(0, 0.3 * hlr, size=2))
    return None, galsim.Add([clumps, diffuse])


def simulate_images(n: int, seed: int = 0, size: int = 64, shares=CLASS_SHARES) -> tuple[np.ndarray, np.ndarray]:
    """Simulate ``n`` galaxies; returns (images ``(n, size, size, 3)`` uint8 RGB, labels ``(n,)`` int).

    Channel order is R = i, G = r, B = g, as SDSS colour composites.
    """
    import galsim
    from astropy.visualization import make_lupton_rgb

    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    gsp = _gsparams()
    shares = np.asarray(shares, dtype=float) / np.sum(shares)
    counts = np.floor(shares * n).astype(int)
    counts[0] += n - counts.sum()
    labels = rng.permutation(np.repeat(np.arange(len(CLASS_NAMES)), counts))
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    for k, label in enumerate(labels):
        red, blue = _one_galaxy(rng, gsp, CLASS_NAMES[label])
        # one Moffat index (SDSS-like): GalSim caches its k-space table, a new beta costs 2 ms
        psf = galsim.Moffat(beta=3.5, fwhm=rng.uniform(1.0, 1.6), gsparams=gsp)
        flux = float(np.exp(rng.uniform(np.log(6000), np.log(60000))))
        offset = galsim.PositionD(*rng.uniform(-1.5, 1.5, size=2))
        bands = np.zeros((3, size, size))
        for prof, colour in ((red, RED), (blue, BLUE)):
            if prof is None:
                continue
            img = galsim.Convolve(prof, psf, gsparams=gsp).drawImage(nx=size, ny=size, scale=PIXEL_SCALE,
                                                                   offset=offset).array
            bands += colour[:, None, None] * img[None] * flux
        sky_sigma = rng.uniform(4.0, 9.0)
        bands += rng.normal(0, sky_sigma, size=bands.shape)
        g, r, i = bands
        # stretch/Q chosen so that the sky noise is just visible and bright cores do not saturate
        images[k] = make_lupton_rgb(i, r, g, minimum=0, stretch=6 * sky_sigma, Q=10)
    return images, labels


def write_npz(path: str | Path, images: np.ndarray, labels: np.ndarray, class_names: list[str],
              ids: np.ndarray | None = None) -> Path:
    """Write the seed layout: ``images`` (N, H, W, 3) uint8 and one-hot ``labels`` (N, K); plus
    ``ids`` and ``class_names`` (extra keys the loader uses when present)."""
    path = Path(path)
    onehot = np.eye(len(class_names), dtype=np.uint8)[labels]
    ids = np.array([f"sim{k:06d}" for k in range(len(images))]) if ids is None else np.asarray(ids)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, images=images, labels=onehot, ids=ids.astype(str),
                                class_names=np.array(class_names))
    return path


def simulate(out: str | Path, n: int = 2000, seed: int = 0, size: int = 64) -> Path:
    """Simulate ``n`` galaxies into ``out/galaxies.npz`` (seed layout); returns the file path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    images, labels = simulate_images(n, seed=seed, size=size)
    return write_npz(out / "galaxies.npz", images, labels, CLASS_NAMES)
