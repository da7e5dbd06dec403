"""Models of the ``transients`` task by name: what the CLI, the API and the bundle loader look names up in.

``lgbm`` (the default; gradient-boosted trees on light-curve features) comes first, then the
networks on the observations (``seed-lstm`` for parity with the seed project, ``transformer``,
``gru``). Their implementations are in :mod:`.gbm` and :mod:`.sequence`; each builder imports
them in its body, so that this registry (what ``skysift models`` lists) loads without torch or
LightGBM.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.registry import register_model, task_registry
from ..errors import ConfigError
from .augment import DEFAULT_AUGMENT

if TYPE_CHECKING:
    from .gbm import LightGBMEstimator
    from .sequence import SeedLSTM, SequenceGRU, SequenceTransformer

MODELS = task_registry("transients")

#: the data parameters of ``lgbm``: which features :func:`~skysift.transients.features.extract_features`
#: computes (the task's ``features`` hook reads it), and the survey-like copies the model is trained
#: and validated on (``survey_copies`` per training object, 0 = none; ``survey_val_copies`` per
#: validation object; see :mod:`.survey_shift` for the rest of ``survey_*``)
#: the survey-like defaults were chosen on the test-like figure of a fixed selection split outside the
#: frozen outer test split (``benchmarks/bench_transients_survey.py select --subset 3000``: official
#: test-like log-loss 1.186 without copies, 1.007 with 4 copies, 0.981 with z_factor 2, 0.969 with
#: the GP features, 0.949 with 15-leaf trees; 590 scored objects, so differences < ~0.05 are noise).
#: The GP features stay off by default: they cost ~17 ms of CPU per object against ~0.8 ms for all
#: the others, which would turn the full PLAsTiCC test set (3.5 M objects) from under an hour into
#: ~16 h on 2 cores; ``--param gp_features=true`` buys their gain where the catalogue is small.
#: Issue 17, second round, same selection split and figure: the rest-frame block of
#: :func:`~skysift.transients.features._rest_frame_features` read off a batched fixed-hyperparameter
#: GP (~0.04 ms per object): 0.964 without it, 0.807 with it (4 copies); with it, 8 copies 0.761,
#: 12 copies 0.812, 8 copies + colsample 0.3 0.777 (SN Ia AUC 0.939 / 0.947 / 0.950 / 0.947 / 0.945)
LGBM_DATA_DEFAULTS: dict = {"feature_set": "full", "rest_frame_features": True, "gp_features": False,
                            "survey_copies": 8, "survey_val_copies": 2, "survey_z_factor": 3.0}
#: observations kept per object by the sequence models (why 128: see :mod:`.sequence`)
DEFAULT_MAX_LEN = 128


@register_model(MODELS, kind="estimator", data_defaults=LGBM_DATA_DEFAULTS)
def lgbm(n_classes: int, stats: dict, *,
         # small trees generalise best here: at learning rate 0.1 on the final "full" features, 7 leaves
         # / depth 4 gave 0.508 and 5 / 3 gave 0.498 (5-fold CV); see the ladder in bench_transients.py
         # on the survey-like training set (~3x more objects) 15 leaves / depth 6 scored best test-like
         # on the selection split (see LGBM_DATA_DEFAULTS)
         num_leaves: int = 15, max_depth: int = 6, learning_rate: float = 0.05, n_estimators: int = 2000,
         early_stopping_rounds: int = 100, min_child_samples: int = 10, colsample_bytree: float = 0.5,
         subsample: float = 0.8, subsample_freq: int = 1, reg_alpha: float = 0.0, reg_lambda: float = 1.0,
         # 2x faster than 255 bins and no worse in CV (0.563 vs 0.573, 15 leaves, lr 0.1)
         max_bin: int = 63,
         kaggle_weights: bool = True,
         # one thread: on a shared 2-core machine LightGBM's OpenMP threads spin-wait for each other and
         # 2 threads ran 10x slower (66 s vs 7 s wall for 50 rounds, load average 8); raise on a idle box
         n_jobs: int = 1, seed: int = 0) -> LightGBMEstimator:
    """LightGBM on per-band light-curve + peak-physics features, trained with the Kaggle class
    weights (PLAsTiCC metric) and early stopping

    Defaults chosen by the 5-fold CV ladder in ``benchmarks/bench_transients.py cv``.
    ``stats["class_names"]`` (from the task's ``fit_preprocessing``) gives the Kaggle weight of
    each class."""
    params = dict(num_leaves=num_leaves, max_depth=max_depth, learning_rate=learning_rate,
                  n_estimators=n_estimators, early_stopping_rounds=early_stopping_rounds,
                  min_child_samples=min_child_samples, colsample_bytree=colsample_bytree, subsample=subsample,
                  subsample_freq=subsample_freq, reg_alpha=reg_alpha, reg_lambda=reg_lambda, max_bin=max_bin,
                  kaggle_weights=kaggle_weights, n_jobs=n_jobs, seed=seed)
    from .gbm import LightGBMEstimator

    return LightGBMEstimator(params, n_classes, (stats or {}).get("class_names"))


#: what the data pipeline reads: the sequence length cap and the augmentation probabilities
#: (``fit_preprocessing`` / ``dataset``); ``aggregates`` (the seed's whole-curve aggregates as a
#: second input) is set per model below
_SEQUENCE_DATA = {"max_len": DEFAULT_MAX_LEN, "augment": dict(DEFAULT_AUGMENT)}
_SEQUENCE_TRAIN = {"lr": 2e-3, "batch_size": 64, "epochs": 25}


@register_model(MODELS, data_defaults={**_SEQUENCE_DATA, "aggregates": True},
                train_overrides={**_SEQUENCE_TRAIN, "lr": 1e-3})
def seed_lstm(n_classes: int, stats: dict, *, hidden: int = 100, layers: int = 2, dropout: float = 0.1,
              mlp: list = [512, 256, 128, 64], mlp_dropout: float = 0.3) -> SeedLSTM:  # noqa: B006
    """the seed's 2-layer LSTM (hidden 100) on packed sequences + an MLP of the seed aggregates"""
    from .sequence import SeedLSTM, _dims

    meta_dim, agg_dim = _dims(stats)
    if agg_dim == 0:
        raise ConfigError("seed-lstm needs the seed aggregates: keep model_params aggregates=true")
    return SeedLSTM(n_classes, meta_dim, agg_dim, hidden=hidden, layers=layers, dropout=dropout,
                    mlp=tuple(mlp), mlp_dropout=mlp_dropout)


@register_model(MODELS, data_defaults={**_SEQUENCE_DATA, "aggregates": False}, train_overrides=_SEQUENCE_TRAIN)
def transformer(n_classes: int, stats: dict, *, d_model: int = 64, layers: int = 2, heads: int = 4, ff: int = 128,
                dropout: float = 0.1, encoder_dropout: float = 0.0, head_hidden: int = 128) -> SequenceTransformer:
    """transformer encoder on observation tokens (continuous-time sinusoids + band embeddings), masked attention
    pooling, metadata in the head"""
    from .sequence import SequenceTransformer, _dims

    meta_dim, agg_dim = _dims(stats)
    if d_model % heads:
        raise ConfigError(f"d_model ({d_model}) must be a multiple of heads ({heads})")
    return SequenceTransformer(n_classes, meta_dim, agg_dim, d_model=d_model, layers=layers, heads=heads, ff=ff,
                               dropout=dropout, head_hidden=head_hidden, encoder_dropout=encoder_dropout)


@register_model(MODELS, data_defaults={**_SEQUENCE_DATA, "aggregates": False}, train_overrides=_SEQUENCE_TRAIN)
def gru(n_classes: int, stats: dict, *, d_model: int = 64, hidden: int = 64, layers: int = 2, dropout: float = 0.1,
        head_hidden: int = 128) -> SequenceGRU:
    """bidirectional GRU on the same observation tokens, attention pooling, metadata in the head"""
    from .sequence import SequenceGRU, _dims

    meta_dim, agg_dim = _dims(stats)
    return SequenceGRU(n_classes, meta_dim, agg_dim, d_model=d_model, hidden=hidden, layers=layers,
                       dropout=dropout, head_hidden=head_hidden)


__all__ = ["DEFAULT_MAX_LEN", "LGBM_DATA_DEFAULTS", "MODELS", "gru", "lgbm", "seed_lstm", "transformer"]
