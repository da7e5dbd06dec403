"""Data-parameter defaults of the galaxies task, apart from :mod:`.augment` (which needs torch)
because the model registry (:mod:`.models`) declares them and must load without torch."""
from __future__ import annotations

#: augmentation parameters every galaxies model accepts in ``model_params``
AUGMENT_DEFAULTS = {"max_rotation_deg": 15.0, "crop_scale": 0.85, "brightness": 0.15}
