"""Models of the ``transients`` task by name.

``lgbm`` (gradient-boosted trees on light-curve features) and the networks on the observations
(``seed-lstm`` for parity with the seed project, ``transformer``/``gru``) are defined in their own
modules; this registry is what the CLI, the API and the bundle loader look names up in.
"""
from __future__ import annotations

from ..core.registry import ModelRegistry
from .gbm import MODEL_SPECS as GBM_SPECS
from .sequence import MODEL_SPECS as SEQUENCE_SPECS

MODELS = ModelRegistry()
for _spec in (*GBM_SPECS, *SEQUENCE_SPECS):
    MODELS.register(_spec)
