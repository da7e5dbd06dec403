"""Data-parameter defaults of the technosignatures task, apart from :mod:`.preprocess` and
:mod:`.augment` (which need torch) because the model registry (:mod:`.models`) declares them and
must load without torch."""
from __future__ import annotations

#: input channels of each cadence view (see :mod:`.preprocess`)
VIEWS = {"all": 6, "on": 3, "diff": 3}
PREPROCESS_DEFAULTS = {"view": "all", "flatten": "off_median", "size": [32, 64]}
AUGMENT_DEFAULTS = {"flip_prob": 0.5, "swap_prob": 0.5, "mixup_prob": 0.0, "cutmix_prob": 0.0, "mix_alpha": 1.0}
#: parameters of the per-scan drift search of the ``cadence-tracks`` model (see :mod:`.tracks`)
TRACK_DEFAULTS = {"max_drift": 0.13, "time_bin": 3, "bandpass_window": 15, "on_tolerance": 2,
                  "off_margin": 3, "clip": 30.0}
