"""The one data container every task returns from its loader.

A :class:`TaskData` holds ``N`` objects: their ids, their inputs ``x`` in whatever form the task
uses (a ``(N, L)`` float array of fluxes, a list of per-object light-curve tables, a lazily
memory-mapped stack of spectrograms, an ``(N, H, W, 3)`` image array ...), the labels ``y`` and the
group key used to keep every copy of an object on one side of a split.

``x`` only needs to support ``len()`` and indexing with an integer array (numpy arrays and
memmaps do), or to provide ``take(indices)``; plain lists are indexed element by element.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np


def take(x: Any, idx: np.ndarray) -> Any:
    """Index ``x`` with the integer array ``idx`` whatever its container type."""
    idx = np.asarray(idx, dtype=np.int64)
    if hasattr(x, "take") and not isinstance(x, np.ndarray):
        return x.take(idx)
    if isinstance(x, np.ndarray):
        return x[idx]
    if isinstance(x, (list, tuple)):
        return [x[i] for i in idx]
    if isinstance(x, dict):
        return {k: take(v, idx) for k, v in x.items()}
    raise TypeError(f"cannot index data of type {type(x).__name__}")


@dataclass
class TaskData:
    """Validated inputs of one task.

    Attributes
    ----------
    ids : (N,) array of object ids (str or int), unique.
    x : task-specific inputs for the N objects (see module docstring).
    y : (N,) int class indices into ``class_names``, (N, K) float soft targets (rows sum to 1),
        or None for unlabelled data.
    class_names : names of the K classes, in column order of every probability array.
    groups : (N,) group keys for grouped splits (defaults to ``ids``): copies or sibling
        observations of one physical object share a key.
    source : the path the data was read from, for messages.
    meta : free-form, JSON-friendly extras (e.g. the layout that was detected).
    """

    ids: np.ndarray
    x: Any
    y: np.ndarray | None
    class_names: list[str]
    groups: np.ndarray = None  # type: ignore[assignment]  # None means "the ids", set in __post_init__
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids)
        n = len(self.ids)
        if len(self.x) != n:
            raise ValueError(f"x has {len(self.x)} objects but ids has {n}")
        if self.y is not None:
            self.y = np.asarray(self.y)
            if len(self.y) != n:
                raise ValueError(f"y has {len(self.y)} objects but ids has {n}")
        if self.groups is None:
            self.groups = self.ids
        self.groups = np.asarray(self.groups)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_labels(self) -> bool:
        return self.y is not None

    @property
    def hard_labels(self) -> np.ndarray:
        """(N,) int labels; soft targets are reduced to their arg-max."""
        if self.y is None:
            raise ValueError("data has no labels")
        return self.y.argmax(axis=1) if self.y.ndim == 2 else self.y.astype(np.int64)

    def subset(self, idx: Sequence[int] | np.ndarray) -> TaskData:
        idx = np.asarray(idx, dtype=np.int64)
        return replace(
            self,
            ids=self.ids[idx],
            x=take(self.x, idx),
            y=None if self.y is None else self.y[idx],
            groups=self.groups[idx],
            meta=dict(self.meta),
        )

    def with_class_names(self, class_names: list[str]) -> TaskData:
        """The same objects with labels re-indexed into ``class_names`` (a model's classes).

        Two files of one task may hold different subsets of the classes (a test set without the
        rarest one); comparing their integer labels directly would silently mislabel objects.
        Raises ValueError naming the classes ``class_names`` lacks."""
        class_names = [str(c) for c in class_names]
        if list(self.class_names) == class_names or self.y is None:
            return replace(self, class_names=list(class_names)) if self.y is None else self
        missing = sorted(set(self.class_names[i] for i in np.unique(self.hard_labels)) - set(class_names))
        if missing:
            raise ValueError(f"classes {missing} are not among {class_names}")
        pos = {c: j for j, c in enumerate(class_names)}
        if self.y.ndim == 2:
            y = np.zeros((len(self.y), len(class_names)), dtype=self.y.dtype)
            for j, c in enumerate(self.class_names):
                if c in pos:
                    y[:, pos[c]] = self.y[:, j]
        else:
            lut = np.array([pos.get(c, -1) for c in self.class_names], dtype=np.int64)
            y = lut[self.y.astype(np.int64)]
        return replace(self, y=y, class_names=list(class_names), meta=dict(self.meta))

    def class_counts(self) -> dict[str, int]:
        if self.y is None:
            return {}
        counts = np.bincount(self.hard_labels, minlength=self.n_classes)
        return {name: int(c) for name, c in zip(self.class_names, counts)}
