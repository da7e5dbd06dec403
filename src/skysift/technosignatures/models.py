"""Models of the technosignatures task by name. Networks take ``(B, C, t, f)`` (C = 6 scans, or 3 for the
ON / ON−OFF views) and give ``(B, 2)`` logits.

* ``cadence-tracks`` (an estimator; the default until round 6): the ON/OFF rule by construction — a per-scan
  de-Doppler search over whole and half scans, each candidate track checked in the ON scans and
  vetoed by the OFF scans with a hand-set rule (:mod:`.tracks`), and a logistic head on nine
  such features (:mod:`.head`).
* ``cadence-tracks-gbm`` (the default in round 6, an estimator): the same rule with richer evidence — a per-scan
  de-Doppler search over whole, half and quarter scans and 3-channel sums, each ON scan's lines
  beside the OFF evidence at the same place or where they would have drifted to
  (:func:`.tracks.rich_features`), the ON scans searched again with every OFF line masked over the
  whole cadence (:func:`.tracks.masked_features`), and a LightGBM head on that evidence (:mod:`.head`). The
  head sees only cadence evidence (no "brightest line anywhere"), so it cannot learn to ignore the
  cadence: a line also present in an OFF scan scores low whatever it looks like. Better on
  real-background injections than ``cadence-tracks``; see the README for how it was chosen.
* ``cadence-tracks-blend`` (default since round 7, an estimator): both heads on the ``cadence-tracks-gbm`` evidence (the
  logistic one on its first nine features, ``cadence-tracks``' own), each logit z-scored on the
  training split, averaged (issue 18, round 7).
* ``cadence-cnn``: a compact VGG-style CNN (about 11 M multiply-adds at the default 32 × 64) that
  trains in minutes on 2 CPU cores. The scans are input channels, so the first layers can compare
  ON with OFF at each time × frequency pixel; global average + max pooling makes it independent of
  where the needle lies.
* ``timm:<name>``: any timm backbone (``timm:efficientnet_b0``,
  ``timm:swin_tiny_patch4_window7_224`` for parity with the seed), with ``in_chans`` = C and an
  optional ``input_size`` the batch is resized to (Swin needs 224 × 224). ``pretrained``: ``false``;
  ``true`` (weights from the local Hugging Face / torch hub cache only); or a local file path.
  Nothing is ever downloaded: asking for weights that are not on disk is a ConfigError.

The networks are in :mod:`.networks` and :mod:`skysift.core.networks`; each builder imports them in
its body, so that this registry (what ``skysift models`` lists) loads without torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.backbones import resolve_pretrained, timm_fallback
from ..core.registry import ModelRegistry, register_model
from .defaults import AUGMENT_DEFAULTS, PREPROCESS_DEFAULTS, TRACK_DEFAULTS, VIEWS

if TYPE_CHECKING:
    from ..core.networks import TimmNet
    from .head import TrackBlendHead, TrackBoostHead, TrackHead
    from .networks import CadenceCNN

#: what the data pipeline reads (preprocessing, then augmentation); ``view`` is read by the
#: builders too: it sets the number of input channels
DATA_DEFAULTS = {**PREPROCESS_DEFAULTS, **AUGMENT_DEFAULTS}


def _in_channels(view: str) -> int:
    return VIEWS.get(view, 6)


# ---- timm backbones --------------------------------------------------------------------------
def _timm_builder(backbone: str):
    # Swin's attention windows are fixed by its image size: 224 x 224 unless told otherwise
    default_size = [224, 224] if "swin" in backbone else None

    def timm_backbone(n_classes: int, stats: dict, *, backbone: str = backbone, pretrained=False,
                      input_size: list | None = default_size, drop_rate: float = 0.1, view: str = "all") -> TimmNet:
        """Any timm backbone, ``in_chans`` = the view's channels; ``pretrained`` false, true (local
        caches only) or a local file; ``input_size`` [time, frequency] the batch is resized to."""
        from ..core.networks import TimmNet

        return TimmNet(backbone, n_classes, in_chans=_in_channels(view), drop_rate=drop_rate, pretrained=pretrained,
                       input_size=None if input_size is None else tuple(int(s) for s in input_size))

    return timm_backbone


MODELS = ModelRegistry(fallback=timm_fallback(_timm_builder, data_defaults=DATA_DEFAULTS))


@register_model(MODELS, data_defaults=DATA_DEFAULTS)
def cadence_cnn(n_classes: int, stats: dict, *, widths: list = [16, 32, 48, 64], dropout: float = 0.2,  # noqa: B006
                view: str = "all") -> CadenceCNN:
    """compact CNN over the six scans as channels (fast on CPU)"""
    from .networks import CadenceCNN

    return CadenceCNN(_in_channels(view), n_classes, tuple(widths), dropout)


#: the cadence-tracks model reads the snippets through the task's ``features`` hook with these
TRACK_DATA_DEFAULTS = {"features": "tracks", **TRACK_DEFAULTS}


@register_model(MODELS, kind="estimator", data_defaults=TRACK_DATA_DEFAULTS)
def cadence_tracks(n_classes: int, stats: dict, *, C: float = 1.0, max_iter: int = 2000) -> TrackHead:
    """per-scan drift search + ON/OFF cadence rule + logistic head (no network)"""
    from ..errors import ConfigError
    from .head import TrackHead

    if n_classes != 2:
        raise ConfigError(f"cadence-tracks is a two-class (noise / signal) model, got {n_classes} classes")
    return TrackHead(C=C, max_iter=max_iter)


#: the cadence-tracks-gbm model reads the richer evidence of :func:`.tracks.rich_features`, with the
#: OFF scans' lines masked over the cadence since round 5 (``rich-mf`` bundles read their 92 features)
RICH_DATA_DEFAULTS = {"features": "rich-mask", **TRACK_DEFAULTS}


@register_model(MODELS, kind="estimator", data_defaults=RICH_DATA_DEFAULTS)
def cadence_tracks_gbm(n_classes: int, stats: dict, *, n_estimators: int = 2000, learning_rate: float = 0.05,
                       num_leaves: int = 7, min_child_samples: int = 50, colsample_bytree: float = 0.8,
                       subsample: float = 0.8, reg_lambda: float = 10.0, early_stopping_rounds: int = 100,
                       seed: int = 0, n_jobs: int = 1, monotone: bool = False) -> TrackBoostHead:
    """per-scan drift search at several time scales + OFF evidence, LightGBM head (``monotone``:
    the score may only rise with ON and fall with OFF evidence)"""
    from ..errors import ConfigError
    from .head import TrackBoostHead
    from .tracks import RICH_MASK_FEATURE_SIGNS

    if n_classes != 2:
        raise ConfigError(f"cadence-tracks-gbm is a two-class (noise / signal) model, got {n_classes} classes")
    return TrackBoostHead(n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=num_leaves,
                          min_child_samples=min_child_samples, colsample_bytree=colsample_bytree, subsample=subsample,
                          reg_lambda=reg_lambda, early_stopping_rounds=early_stopping_rounds, seed=seed, n_jobs=n_jobs,
                          monotone_constraints=RICH_MASK_FEATURE_SIGNS if monotone else None, signs_prefix=True)


@register_model(MODELS, kind="estimator", data_defaults=RICH_DATA_DEFAULTS)
def cadence_tracks_blend(n_classes: int, stats: dict, *, C: float = 1.0, max_iter: int = 2000,
                         n_estimators: int = 2000, learning_rate: float = 0.05, num_leaves: int = 7,
                         min_child_samples: int = 50, colsample_bytree: float = 0.8, subsample: float = 0.8,
                         reg_lambda: float = 10.0, early_stopping_rounds: int = 100, seed: int = 0,
                         n_jobs: int = 1) -> TrackBlendHead:
    """the cadence-tracks-gbm and cadence-tracks heads on the same evidence, their logits z-scored
    on the training split and averaged"""
    from ..errors import ConfigError
    from .head import TrackBlendHead
    from .tracks import FEATURE_NAMES

    if n_classes != 2:
        raise ConfigError(f"cadence-tracks-blend is a two-class (noise / signal) model, got {n_classes} classes")
    boost = cadence_tracks_gbm(n_classes, stats, n_estimators=n_estimators, learning_rate=learning_rate,
                               num_leaves=num_leaves, min_child_samples=min_child_samples,
                               colsample_bytree=colsample_bytree, subsample=subsample, reg_lambda=reg_lambda,
                               early_stopping_rounds=early_stopping_rounds, seed=seed, n_jobs=n_jobs)
    return TrackBlendHead(boost, cadence_tracks(n_classes, stats, C=C, max_iter=max_iter), n_linear=len(FEATURE_NAMES))


__all__ = ["DATA_DEFAULTS", "RICH_DATA_DEFAULTS", "TRACK_DATA_DEFAULTS", "MODELS", "resolve_pretrained"]
