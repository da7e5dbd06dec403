"""The registry of models: one named builder per model of a task."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError


@dataclass
class ModelSpec:
    """How to build one named model.

    ``build(params, stats, n_classes)`` returns an ``nn.Module`` mapping a batch of inputs to
    ``(B, K)`` logits (``kind="torch"``), or an :class:`Estimator` (``kind="estimator"``).
    ``params`` is ``defaults`` updated with the user's overrides; it is stored in the bundle, so it
    must be JSON-serialisable.
    """

    name: str
    build: Callable[[dict, dict, int], Any]
    defaults: dict = field(default_factory=dict)
    description: str = ""
    kind: str = "torch"
    train_overrides: dict = field(default_factory=dict)  # e.g. a different lr or batch size


class Estimator:
    """A non-torch model on feature vectors (e.g. LightGBM). Its state must be arrays, not pickle.

    ``fit(X, y, X_val, y_val, sample_weight)``; ``predict_logits(X) -> (N, K)``;
    ``state() -> dict[str, np.ndarray]`` (stored in safetensors); ``load_state(state)``.
    """

    def fit(self, X, y, X_val, y_val, sample_weight=None):  # pragma: no cover - interface
        raise NotImplementedError

    def predict_logits(self, X) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError

    def load_state(self, state: dict[str, np.ndarray]) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class ModelRegistry:
    """Models of one task by name; ``timm:<name>`` style prefixes are resolved by ``fallback``."""

    def __init__(self, fallback: Callable[[str], ModelSpec | None] | None = None):
        self._specs: dict[str, ModelSpec] = {}
        self._fallback = fallback

    def register(self, spec: ModelSpec) -> ModelSpec:
        self._specs[spec.name] = spec
        return spec

    def names(self) -> list[str]:
        return list(self._specs)

    def get(self, name: str) -> ModelSpec:
        if name in self._specs:
            return self._specs[name]
        if self._fallback is not None:
            spec = self._fallback(name)
            if spec is not None:
                return spec
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(self._specs)}")


