"""The ``transients`` task plugged into the core: PLAsTiCC multi-band light curves, 14 classes + 99.

The pieces live in their own modules: ``io`` (both public layouts, CSV/gzip/Parquet, validation),
``stream`` (test sets larger than memory), ``simulate`` (the embedded default data set),
``features`` + ``gp_features`` + ``gbm`` (light-curve features and LightGBM), ``survey_shift`` + ``cache``
(survey-like training and validation copies, cached in Parquet), ``sequence`` + ``augment`` (networks on
the observations, augmentation incl. redshifting), ``openset`` (class 99), ``metrics`` (the official
weighted log-loss) and ``evaluation`` (scores against light-curve age).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..core.data import TaskData
from ..core.task import Task
from ..errors import DataError
from . import INFO, io
from .data import (
    CLASS_LABELS,
    CLASSES,
    META_COLUMNS,
    PASSBANDS,
    UNKNOWN_CLASS,
    LightCurves,
    class_name,
    submission_columns,
)
from .models import MODELS

#: the class-99 scorer fitted after training. The seed's Π(1−pᵢ): the combined energy + Mahalanobis
#: scorer on the logits beat it on average over 5 held-out class pairs × 3 seeds, but by an amount the
#: runs do not pin down (paired difference −0.074 [−0.152, +0.007], bootstrap 95 % CI over the 15
#: runs; −0.074 [−0.208, +0.064] over the 5 pairs; 3 pairs better, 2 worse) after being picked among
#: eight variants on the same pairs, so the simpler rule stays (``benchmarks/protocol.md``; the
#: measurement: ``benchmarks/bench_transients_openset.py --seeds 0 1 2``). ``"combined"`` remains.
OPEN_SET_SCORER = "product"


def collate(batch):
    """Module-level (picklable for DataLoader workers) wrapper of the sequence collate function."""
    from .sequence import collate as _collate

    return _collate(batch)


#: feature matrices of at least this many labelled objects are cached on disk (training sets and their
#: survey-like copies, evaluation sets); a served request's handful is not worth a file
CACHE_MIN_OBJECTS = 1000


def feature_set_of(params: dict) -> str:
    """The name of the feature set the data parameters ask for."""
    return params.get("feature_set", "full")


def light_curve_features(data: TaskData, stats: dict, params: dict) -> np.ndarray:
    from .features import extract_features

    # a trained model's statistics say whether it was trained with the rest-frame block; a model
    # trained before the block existed has none (its card's data defaults would say yes): without it
    if "rest_frame_features" in (stats or {}):
        rest = bool(stats["rest_frame_features"])
    else:
        rest = False if "class_names" in (stats or {}) else bool(params.get("rest_frame_features", False))
    rest = rest and feature_set_of(params) == "full"
    feature_set = feature_set_of(params) + ("+rest" if rest else "")
    use_gp = bool(params.get("gp_features", False))

    def compute() -> tuple[np.ndarray, list[str]]:
        x, names = extract_features(data.x, feature_set_of(params), rest_frame=rest)
        if use_gp:
            from .gp_features import gp_features

            g, gnames = gp_features(data.x)
            x, names = np.concatenate([x, g], axis=1), [*names, *gnames]
        return x, names

    from .cache import cached_features, memo_active, memoised, object_digests

    if memo_active():  # cross-validation: each object's row once (features depend on it alone)
        name = feature_set + ("+gp" if use_gp else "")

        def rows(idx: np.ndarray) -> list:
            sub = TaskData(ids=data.ids[idx], x=data.x.take(idx), y=None, class_names=data.class_names)
            return list(light_curve_features(sub, stats, {**params, "_no_memo": True}))

        if not params.get("_no_memo"):
            got = memoised(f"features:{name}", object_digests(data.x), rows)
            return np.stack(got).astype(np.float32) if got else compute()[0]
    # unlabelled data is a catalogue to predict, read once: caching it would only fill the disk
    # (~1.8 kB per object, ~6 GB for the 3.5 M-object PLAsTiCC test set streamed chunk by chunk)
    if len(data) < CACHE_MIN_OBJECTS or data.y is None:
        return compute()[0]

    modules = ("skysift.transients.features",) + (
        ("skysift.transients.gp_features", "skysift.transients.survey_shift") if use_gp else ())
    return cached_features(data.x, feature_set + ("+gp" if use_gp else ""), compute, modules)[0]


def training_class_prior(train: TaskData) -> dict[str, float]:
    """Class frequencies of the training objects (each original object once: its survey-like
    copies share its group), ``{class name: fraction}``: the prior of the declared decision rule
    (:func:`.evaluation.prior_decision`), stored in the model card's ``preprocessing``."""
    if not train.has_labels or not len(train):
        return {}
    groups = np.asarray(train.groups).astype(str)
    _, first = np.unique(groups, return_index=True)
    counts = np.bincount(train.hard_labels[first], minlength=len(train.class_names)).astype(float)
    return {str(c): float(n / counts.sum()) for c, n in zip(train.class_names, counts)}


class SurveyShift:
    """The transients' :class:`~skysift.core.task.DomainShift`: survey-like copies
    (:mod:`.survey_shift`) for the feature models whose data parameter ``survey_copies`` > 0.

    Training: the training objects as they are plus ``survey_copies`` copies of each; validation:
    ``survey_val_copies`` copies of each validation object with another seed, so early stopping,
    calibration and the class-99 scorer are fitted on survey-like objects."""

    def enabled(self, params: dict) -> bool:
        return int(params.get("survey_copies", 0) or 0) > 0

    @staticmethod
    def _settings(params: dict):
        from .survey_shift import ShiftSettings

        return ShiftSettings.from_params({k: v for k, v in params.items()
                                          if k.startswith("survey_") and k != "survey_val_copies"})

    def train_val(self, train: TaskData, val: TaskData, params: dict, seed: int) -> tuple[TaskData, TaskData]:
        from .survey_shift import survey_like

        s = self._settings(params)
        n_val = int(params.get("survey_val_copies", 2))
        tr = survey_like(train, s, seed=seed, keep_originals=True, what="training objects")
        va = survey_like(val, s, n_copies=n_val, seed=seed + 1, what="validation objects")
        return tr, va

    def test_like(self, data: TaskData, params: dict, seed: int) -> TaskData:
        from .survey_shift import survey_like

        return survey_like(data, self._settings(params), n_copies=int(params.get("survey_val_copies", 2)),
                           seed=seed, what="test objects")


class UnknownClassHead:
    """PLAsTiCC's class 99: the probability that an object belongs to none of the training classes.

    ``OPEN_SET_SCORER`` picks the scorer: the seed's Π(1−pᵢ) by default; with ``"combined"`` the
    energy + Mahalanobis scorer reads the model's *logits* as its vectors (better than on the 293-d
    feature vectors, and the same for LightGBM and the networks). Fitted on the validation split
    (known classes only) — for a model trained on survey-like copies, on the *test-like* validation
    copies, so that a faint, distant member of a known class is not taken for an unknown one (the
    share of known objects whose top column is 99: 4.5 % test-like, 4.8 % as-is in 5-fold CV over the
    objects outside the selection split; ``benchmarks/bench_transients_survey.py cv --exclude-selection 3000``)."""

    def fit(self, val: TaskData, logits: np.ndarray, proba: np.ndarray) -> dict:
        from .openset import make_scorer

        if OPEN_SET_SCORER == "product":
            scorer = make_scorer("product").fit(logits, proba=proba)
        else:
            scorer = make_scorer(OPEN_SET_SCORER).fit(logits, val.hard_labels, logits)
        return {"open_set": scorer.to_json()}

    def apply(self, state: dict, class_names: list[str], proba: np.ndarray,
              logits: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Appends ``p(99)`` and shrinks the other columns."""
        from .openset import scorer_from_state, with_unknown

        if "open_set" not in state or class_name(UNKNOWN_CLASS) in class_names:
            return proba, list(class_names)
        scorer = scorer_from_state(state["open_set"])
        p99 = scorer.p_unknown(logits, proba=proba) if scorer.kind == "product" else scorer.p_unknown(logits, logits)
        return with_unknown(proba, p99), [*class_names, class_name(UNKNOWN_CLASS)]


class StreamedCsv:
    """Light-curve CSVs of more than ~0.5 GB (the PLAsTiCC test set is ~20 GB) are streamed in
    object-contiguous chunks; an interrupted run resumes where it stopped."""

    #: observations per chunk (~60 MB of arrays per million)
    chunk_rows = 1_000_000

    def predict_file(self, path, out, predict_chunk, *, resume=True, identity=None):
        from .stream import predict_stream

        if not io.is_streamable(path):
            return None
        kind, files, meta = io.resolve(path)
        return predict_stream(predict_chunk, files[0], meta, out, chunk_rows=self.chunk_rows,
                              progress=os.environ.get("SKYSIFT_NO_PROGRESS", "") == "",
                              resume=resume, identity=identity)


class LightCurveRequests:
    """``{"objects": [{"id": 615, "mjd": [...], "passband": [...], "flux": [...], "flux_err": [...],
    "detected": [...], "metadata": {"hostgal_photoz": 0.0, ...}}]}`` (columnar, one list per
    column) or with ``"observations": [{"mjd": ..., "passband": ..., ...}, ...]``; one object may
    also be sent without the ``objects`` envelope. ``detected`` and every metadata key are
    optional."""

    keys = ("flux", "observations", "mjd")
    what = "a list of fluxes, with mjd, passband and flux_err"
    max_objects = None

    def parse_object(self, obj: dict, payload: dict, options: dict) -> LightCurves:
        cols = _request_columns(obj)
        meta = obj.get("metadata", {})
        if not isinstance(meta, dict):
            raise DataError("request", "'metadata' must be an object")
        m = {}
        for key, v in meta.items():
            if key not in META_COLUMNS:
                raise DataError("request", f"unknown metadata key {key!r}; known: {', '.join(META_COLUMNS)}")
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v)):
                raise DataError("request", f"metadata {key!r} must be a finite number or null")
            m[key] = [np.nan if v is None else float(v)]
        order = np.argsort(cols["mjd"], kind="stable")
        return LightCurves(np.array([0, len(order)]), cols["mjd"][order], cols["passband"][order],
                           cols["flux"][order], cols["flux_err"][order], cols["detected"][order], m)

    def assemble(self, ids: list[str], items: list, payload: dict, options: dict) -> TaskData:
        ids_arr = np.array(ids)
        try:
            ids_out = ids_arr.astype(np.int64)
        except ValueError:
            ids_out = ids_arr
        return TaskData(ids=ids_out, x=LightCurves.concat(items), y=None,
                        class_names=[class_name(c) for c in CLASSES], source="request")

    def example(self) -> dict:
        from .simulate import simulate_objects

        ids, lc, targets, _ = simulate_objects(14, seed=5)
        i = int(np.argmax(lc.lengths < 200)) if (lc.lengths < 200).any() else 0
        o = lc.object(i)
        return {"objects": [{
            "id": int(ids[i]),
            "mjd": [round(float(v), 4) for v in o["mjd"]],
            "passband": [int(v) for v in o["passband"]],
            "flux": [round(float(v), 3) for v in o["flux"]],
            "flux_err": [round(float(v), 3) for v in o["flux_err"]],
            "detected": [int(v) for v in o["detected"]],
            "metadata": {k: (None if not np.isfinite(o[k]) else round(float(o[k]), 4)) for k in META_COLUMNS},
        }]}


_BAND_COLOURS = ("#6a3d9a", "#1f78b4", "#33a02c", "#ff7f00", "#e31a1c", "#7f3b08")


class TransientsTask(Task):
    info = INFO
    models = MODELS
    features = staticmethod(light_curve_features)
    requests = LightCurveRequests()
    open_set = UnknownClassHead()
    shift = SurveyShift()
    streaming = StreamedCsv()
    collate_fn = staticmethod(collate)
    gallery_layout = (3, 4.2, 2.6)

    # ---- preprocessing + datasets -------------------------------------------------------------
    def fit_preprocessing(self, train: TaskData, params: dict) -> dict:
        from .sequence import fit_sequence_stats

        return {"class_names": list(train.class_names), "class_prior": training_class_prior(train),
                "rest_frame_features": bool(params.get("rest_frame_features", False)),
                **fit_sequence_stats(train.x, params)}

    def dataset(self, data: TaskData, stats: dict, params: dict, *, train: bool):
        from .sequence import SequenceDataset

        return SequenceDataset(data, stats, params, train=train)

    def raw_matrix(self, data: TaskData, max_n: int = 5000) -> np.ndarray:
        from .features import extract_features

        sub = data.subset(np.arange(min(len(data), max_n)))
        x, _ = extract_features(sub.x, "full")
        x = np.asarray(x, dtype=np.float64)
        # PCA needs finite inputs: a missing feature (no detection in a band) becomes the column median
        med = np.nanmedian(np.where(np.isfinite(x), x, np.nan), axis=0)
        bad = ~np.isfinite(x)
        x[bad] = np.take(np.nan_to_num(med), np.nonzero(bad)[1])
        return x

    # ---- evaluation + output ----------------------------------------------------------------
    def metrics(self, data: TaskData, proba: np.ndarray) -> dict:
        from .metrics import per_class_log_loss, plasticc_log_loss

        targets = np.array([int(data.class_names[i]) for i in data.hard_labels])
        columns = [int(c) for c in data.class_names]
        loss = float(plasticc_log_loss(targets, proba, columns))
        # with an open-set head, Model.evaluate replaces plasticc_log_loss by the official 15-column
        # figure (output_metrics); the 14-class one stays under its own key
        return {"plasticc_log_loss": loss, "plasticc_log_loss_14": loss,
                "log_loss_per_class": {str(k): float(v[1]) for k, v in
                                       per_class_log_loss(targets, proba, columns).items()}}

    def output_metrics(self, data: TaskData, out: np.ndarray, names: list[str], stats: dict | None = None) -> dict:
        """The official score of exactly what ``predict`` writes (every column incl. ``class_99``,
        every object incl. unknown ones); see :func:`.evaluation.output_figures`. With the model's
        training ``stats``, also the accuracy of the declared decision rule (:meth:`decide`)."""
        from .evaluation import output_figures

        targets = np.array([int(data.class_names[i]) for i in data.hard_labels])
        return output_figures(targets, out, names, prior=(stats or {}).get("class_prior"))

    def decide(self, out: np.ndarray, names: list[str], stats: dict) -> np.ndarray | None:
        """The Bayes decision under the training set's class frequencies
        (:func:`.evaluation.prior_decision`); None for a model trained before they were stored."""
        from .evaluation import prior_decision

        prior = (stats or {}).get("class_prior")
        return None if not prior else prior_decision(out, names, prior)

    def input_options(self, stats: dict) -> dict:
        """A trained model reads labelled data with the test-only targets (99, 991..995) as class 99,
        so that ``evaluate`` scores them; training reads without it and refuses them."""
        return {"allow_unknown": True}

    def calibration_weights(self, val: TaskData) -> np.ndarray:
        """PLAsTiCC's metric averages −ln p per class and weighs the classes (Kaggle weights), so
        calibration weighs each object by its class weight over its class count."""
        from .data import KAGGLE_CLASS_WEIGHTS

        y = val.hard_labels
        counts = np.bincount(y, minlength=val.n_classes).astype(float)
        w_class = np.array([KAGGLE_CLASS_WEIGHTS.get(int(c), 1.0) for c in val.class_names])
        return w_class[y] / counts[y]

    def prediction_frame(self, ids, proba, class_names):
        """Kaggle layout: ``object_id,class_6,...,class_95,class_99``; a class the model was not
        trained on (absent from its training data) gets a column of zeros, so every submission has
        the same columns."""
        import pandas as pd

        unknown = class_name(UNKNOWN_CLASS)
        known = sorted({c for c in class_names if c != unknown} | {class_name(c) for c in CLASSES}, key=int)
        pos = {c: j for j, c in enumerate(class_names)}
        cols = {"object_id": np.asarray(ids)}
        for c in [*known, unknown]:
            cols[f"class_{c}"] = proba[:, pos[c]] if c in pos else np.zeros(len(ids))
        return pd.DataFrame(cols)[submission_columns(known)]

    def figures(self, data: TaskData, proba: np.ndarray, out_dir: Path, *,
                data_params: dict | None = None) -> list[Path]:
        """Per-class log-loss bars (which classes cost the metric most)."""
        import matplotlib.pyplot as plt

        from ..core.plots import STYLE, save

        m = self.metrics(data, proba)["log_loss_per_class"]
        names = list(m)
        with plt.rc_context(STYLE):
            fig, ax = plt.subplots(figsize=(8, 3.6))
            ax.bar(range(len(names)), [m[n] for n in names], color="C0")
            ax.set_xticks(range(len(names)))
            ax.set_xticklabels([f"{n}\n{CLASS_LABELS.get(int(n), '')}" for n in names], rotation=60,
                               fontsize=7, ha="right")
            ax.set_ylabel("mean −ln p(true class)")
            ax.set_title("PLAsTiCC log-loss per class (the metric averages these, ×2 for 15 and 64)")
            fig.tight_layout()
            made = [save(fig, Path(out_dir) / "log_loss_per_class.png")]
        made += self._faint_object_figure(data, proba, Path(out_dir))
        return made

    @staticmethod
    def _faint_object_figure(data: TaskData, proba: np.ndarray, out_dir: Path) -> list[Path]:
        """Accuracy and SN Ia AUC against peak S/N and redshift (``faint_objects.png``, with the
        numbers in ``faint_objects.json``)."""
        from ..core.io import write_json
        from .evaluation import SNR_EDGES, Z_EDGES, metrics_by_bins, object_snr_and_redshift, plot_faint_object_figures

        if not data.has_labels or not len(data):
            return []
        targets = np.array([int(data.class_names[i]) for i in data.hard_labels])
        columns = [int(c) for c in data.class_names][:proba.shape[1]]
        snr, z = object_snr_and_redshift(data.x)
        label = "test-like" if "survey_like" in data.meta else "as-is"
        by = {"snr": metrics_by_bins(targets, proba, columns, snr, SNR_EDGES),
              "redshift": metrics_by_bins(targets, proba, columns, np.nan_to_num(z, nan=-1.0), Z_EDGES)}
        write_json(out_dir / "faint_objects.json", {label: by})
        return [plot_faint_object_figures({label: by}, out_dir / "faint_objects.png")]

    def draw_object(self, ax, data: TaskData, i: int) -> None:
        o = data.x.object(int(i))
        t0 = o["mjd"].min() if len(o["mjd"]) else 0.0
        for b, name in enumerate(PASSBANDS):
            m = o["passband"] == b
            if m.any():
                ax.errorbar(o["mjd"][m] - t0, o["flux"][m], yerr=o["flux_err"][m], fmt="o", ms=2.2,
                            lw=0.6, color=_BAND_COLOURS[b], label=name, alpha=0.85)
        ax.axhline(0, color="0.7", lw=0.5)
        ax.set_xlabel("days since first observation", fontsize=7)
        ax.set_ylabel("flux [FLUXCAL]", fontsize=7)
        ax.legend(fontsize=5, ncol=6, loc="upper right", handletextpad=0.1, columnspacing=0.5)

    def object_statistics(self, data: TaskData) -> dict[str, np.ndarray]:
        """Numbers of observations and detections, time span, peak S/N and host redshift."""
        lc = data.x
        n = len(lc)
        obj = lc.object_index()
        snr = np.abs(lc.flux / lc.flux_err).astype(np.float64)
        peak = np.full(n, np.nan)
        first = np.full(n, np.inf)
        last = np.full(n, -np.inf)
        if lc.n_observations:
            np.fmax.at(peak, obj, snr)
            np.minimum.at(first, obj, lc.mjd)
            np.maximum.at(last, obj, lc.mjd)
        det = lc.detected
        det_first = np.full(n, np.inf)
        det_last = np.full(n, -np.inf)
        if det.any():
            np.minimum.at(det_first, obj[det], lc.mjd[det])
            np.maximum.at(det_last, obj[det], lc.mjd[det])
        span_det = np.where(np.isfinite(det_first), det_last - det_first, np.nan)
        photoz = lc.meta["hostgal_photoz"]
        return {"observations": lc.lengths.astype(np.float64),
                "detections": np.bincount(obj[det], minlength=n).astype(np.float64),
                "time span [d]": np.where(np.isfinite(first), last - first, np.nan),
                "detected span [d]": span_det,
                "peak |S/N|": peak,
                # galactic objects have photo-z exactly 0: their redshift is not a host's
                "host photo-z (extragalactic)": np.where(photoz > 0, photoz, np.nan)}

    def describe_object(self, data: TaskData, i: int) -> str:
        z = data.x.object(int(i)).get("hostgal_photoz", np.nan)
        return f"photo-z {z:.2f}" if np.isfinite(z) and z > 0 else ""


_REQUEST_COLUMNS = ("mjd", "passband", "flux", "flux_err", "detected")


def _request_columns(obj: dict) -> dict[str, np.ndarray]:
    """Validate one object's observations (columnar lists or a list of observation objects)."""
    if "observations" in obj:
        obs = obj["observations"]
        if not isinstance(obs, list) or not obs or not all(isinstance(o, dict) for o in obs):
            raise DataError("request", "'observations' must be a non-empty list of objects")
        cols = {c: [o.get(c) for o in obs] for c in _REQUEST_COLUMNS}
        if all(v is None for v in cols["detected"]):
            del cols["detected"]
    else:
        cols = {c: obj[c] for c in _REQUEST_COLUMNS if c in obj}
    for c in ("mjd", "passband", "flux", "flux_err"):
        if c not in cols:
            raise DataError("request", f"missing {c!r} (each object needs mjd, passband, flux, flux_err)")
    n = None
    out = {}
    for c, v in cols.items():
        if not isinstance(v, list) or not v:
            raise DataError("request", f"{c!r} must be a non-empty list")
        if n is None:
            n = len(v)
        elif len(v) != n:
            raise DataError("request", f"{c!r} has {len(v)} values but mjd has {n}")
        if not all(isinstance(e, (int, float)) and (c == "detected" or not isinstance(e, bool)) for e in v):
            raise DataError("request", f"{c!r} may hold only numbers")
        a = np.asarray(v, dtype=np.float64)
        if not np.isfinite(a).all():
            raise DataError("request", f"{c!r} holds NaN or infinity at position {int(np.argmin(np.isfinite(a)))}")
        out[c] = a
    if n > 20000:
        raise DataError("request", f"{n} observations in one object; at most 20000")
    pb = out["passband"]
    bad = (pb != np.round(pb)) | (pb < 0) | (pb > 5)
    if bad.any():
        raise DataError("request", f"passband must be an integer 0..5 (u g r i z y); got {pb[bad][0]:g} "
                                   f"at position {int(np.argmax(bad))}")
    if (out["flux_err"] <= 0).any():
        raise DataError("request", f"flux_err must be > 0; got {out['flux_err'][out['flux_err'] <= 0][0]:g} at "
                                   f"position {int(np.argmax(out['flux_err'] <= 0))}")
    if "detected" not in out:
        # as PLAsTiCC flags detections: S/N above 5 in the difference image
        out["detected"] = (out["flux"] / out["flux_err"] > 5).astype(float)
    elif not np.isin(out["detected"], (0, 1)).all():
        raise DataError("request", "'detected' must hold 0/1 or true/false")
    out["passband"] = out["passband"].astype(np.int8)
    out["detected"] = out["detected"].astype(bool)
    return out


TASK = TransientsTask()
