"""Models of the ``transients`` task by name.

``lgbm`` (gradient-boosted trees on light-curve features) and the networks on the observations
(``seed-lstm`` for parity with the seed project, ``transformer``/``gru``) are defined in their own
modules; this registry is what the CLI, the API and the bundle loader look names up in.
"""
from __future__ import annotations

from ..core.registry import task_registry
from . import gbm, sequence  # noqa: F401  (their @register_model builders fill the registry, lgbm first)

MODELS = task_registry("transients")
