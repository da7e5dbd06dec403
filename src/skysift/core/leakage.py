"""Guards against leakage: no object (group) of the validation or test split may reach training.

Splits are made by group (all copies or siblings of one physical object share a key) before any
resampling; these checks run inside training, on the objects actually handed to the model, so a
future change that leaks (a resampler reaching outside the training split, a split that shares a
group) stops the run instead of inflating every figure computed afterwards.
"""
from __future__ import annotations

import numpy as np

from ..errors import SkysiftError


class LeakError(SkysiftError):
    """An object of a held-out split reached training, or two splits share a group."""


def check_disjoint(groups: np.ndarray, split: dict[str, np.ndarray]) -> None:
    """Every group of ``groups`` (indexed by the split's positions) lies in one split only."""
    names = [k for k in split if len(split[k])]
    keys = {k: set(np.asarray(groups)[np.asarray(split[k], dtype=np.int64)].tolist()) for k in names}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = keys[a] & keys[b]
            if shared:
                raise LeakError(f"the {a} and {b} splits share {len(shared)} object group(s), "
                                f"e.g. {sorted(map(str, shared))[:3]}")


def check_training_set(trained_groups: np.ndarray, train_groups: np.ndarray, held_out_groups: np.ndarray) -> None:
    """The objects handed to the model (after resampling) come from the training split only."""
    trained = set(np.asarray(trained_groups).tolist())
    leaked = trained & set(np.asarray(held_out_groups).tolist())
    if leaked:
        raise LeakError(f"{len(leaked)} held-out object group(s) reached training, "
                        f"e.g. {sorted(map(str, leaked))[:3]}")
    foreign = trained - set(np.asarray(train_groups).tolist())
    if foreign:
        raise LeakError(f"{len(foreign)} object group(s) outside the training split reached training, "
                        f"e.g. {sorted(map(str, foreign))[:3]}")
