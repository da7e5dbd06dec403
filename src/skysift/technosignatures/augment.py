"""Augmentation of cadence snippets.

Per item (raw ``(6, T, F)``, before normalisation), :class:`CadenceAugment`:

* frequency flip (a needle drifting up becomes one drifting down: both are physical);
* permuting the ON scans among themselves and the OFF scans among themselves (the label only
  depends on "present in ON, absent in OFF", not on the scan order).

Per batch (network inputs ``(B, C, t, f)``), :class:`MixBatch`: mixup or CutMix of pairs of
snippets. The mixed target is *positive when either source is*: a needle pasted into a noise
snippet is still a needle, and blending its strength down does not make it not a signal. Targets
become soft one-hot ``(B, 2)`` rows ``[1 - p, p]`` with ``p = max(p_a, p_b)``.

Test-time augmentation: :func:`tta_views` (frequency flip).
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from .defaults import AUGMENT_DEFAULTS  # noqa: F401  (its name here too, for the task and older callers)
from .io import OFF_SCANS, ON_SCANS


class CadenceAugment:
    def __init__(self, flip_prob: float = 0.5, swap_prob: float = 0.5):
        for name, v in (("flip_prob", flip_prob), ("swap_prob", swap_prob)):
            if not 0 <= v <= 1:
                raise ConfigError(f"{name} must be in [0, 1], got {v}")
        self.flip_prob, self.swap_prob = flip_prob, swap_prob

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < self.flip_prob:
            x = x[:, :, ::-1]
        if rng.random() < self.swap_prob:
            order = np.empty(6, dtype=np.int64)
            order[list(ON_SCANS)] = rng.permutation(list(ON_SCANS))
            order[list(OFF_SCANS)] = rng.permutation(list(OFF_SCANS))
            x = x[order]
        return np.ascontiguousarray(x)


def mixed_targets(target_a: torch.Tensor, target_b: torch.Tensor, n_classes: int = 2) -> torch.Tensor:
    """Soft ``(B, 2)`` targets of mixed pairs: positive when either source is.

    ``target_*`` are int class indices ``(B,)`` or soft ``(B, 2)`` rows."""
    def pos(t):
        return t[:, 1].float() if t.ndim == 2 else (t == 1).float()

    p = torch.maximum(pos(target_a), pos(target_b))
    return torch.stack([1 - p, p], dim=1)


class MixBatch:
    """Batch-level mixup / CutMix with the "either positive" label rule."""

    def __init__(self, mixup_prob: float = 0.0, cutmix_prob: float = 0.0, alpha: float = 1.0):
        if not (0 <= mixup_prob and 0 <= cutmix_prob and mixup_prob + cutmix_prob <= 1):
            raise ConfigError("mixup_prob and cutmix_prob must be >= 0 and sum to <= 1, "
                              f"got {mixup_prob}, {cutmix_prob}")
        if alpha <= 0:
            raise ConfigError(f"mix_alpha must be > 0, got {alpha}")
        self.mixup_prob, self.cutmix_prob, self.alpha = mixup_prob, cutmix_prob, alpha

    def __call__(self, inputs: torch.Tensor, target: torch.Tensor, generator: torch.Generator | None = None):
        u = float(torch.rand(1, generator=generator))
        if u >= self.mixup_prob + self.cutmix_prob or len(inputs) < 2:
            return inputs, target
        perm = torch.randperm(len(inputs), generator=generator)
        lam = float(torch.distributions.Beta(self.alpha, self.alpha).sample())
        if u < self.mixup_prob:
            mixed = lam * inputs + (1 - lam) * inputs[perm]
        else:
            # CutMix: a time × frequency box of the partner replaces the same box in every channel
            _, _, h, w = inputs.shape
            bh, bw = int(round(h * np.sqrt(1 - lam))), int(round(w * np.sqrt(1 - lam)))
            t0 = int(torch.randint(0, max(1, h - bh + 1), (1,), generator=generator))
            f0 = int(torch.randint(0, max(1, w - bw + 1), (1,), generator=generator))
            mixed = inputs.clone()
            mixed[:, :, t0:t0 + bh, f0:f0 + bw] = inputs[perm][:, :, t0:t0 + bh, f0:f0 + bw]
        return mixed, mixed_targets(target, target[perm])


def flip_frequency(inputs: torch.Tensor) -> torch.Tensor:
    """Reverse the frequency (last) axis of a ``(B, C, t, f)`` batch."""
    return torch.flip(inputs, dims=[-1])


def tta_views() -> list:
    return [flip_frequency]
