"""The ``technosignatures`` task plugged into the core: SETI Breakthrough Listen cadence snippets."""
from __future__ import annotations

import base64
import io as _io
from pathlib import Path

import numpy as np

from ..core.data import TaskData
from ..core.task import Task
from ..errors import DataError
from . import INFO, io
from .augment import AUGMENT_DEFAULTS, CadenceAugment, MixBatch, tta_views
from .models import MODELS, resolve_pretrained
from .preprocess import CadenceDataset, check_params, normalise, resize

MAX_REQUEST_OBJECTS = 64


def cadence_features(data: TaskData, stats: dict, params: dict) -> np.ndarray:
    """``(N, 3·8·32)`` coarse ON − OFF maps (bandpass-flattened, per-scan standardised): a small
    fixed view for SMOTE and PCA; or, when the model's data parameter ``features`` is
    ``"tracks"`` (the ``cadence-tracks`` model), the cadence-rule features of :mod:`.tracks`, or
    when ``"rich-mask"`` (``cadence-tracks-gbm``, ``cadence-tracks-blend``) the multi-scale
    evidence of :func:`.tracks.rich_features` with the OFF scans' lines masked over the cadence
    (:func:`.tracks.masked_features`); ``"rich-mf"``
    and ``"rich"`` without the masked features (and ``"rich"`` without the matched filter), as round-4
    and round-3 bundles were trained."""
    if params.get("features") == "tracks":
        from .tracks import feature_matrix

        return feature_matrix(data.x, params)
    if params.get("features") in ("rich", "rich-mf", "rich-mask"):
        from .tracks import rich_feature_matrix

        return rich_feature_matrix(data.x, params, matched_filter=params["features"] != "rich",
                                   mask=params["features"] == "rich-mask")
    rows = []
    for i in range(len(data)):
        z = normalise(resize(np.asarray(data.x[i], dtype=np.float32), [8, 32]), "off_median")
        rows.append((z[list(io.ON_SCANS)] - z[list(io.OFF_SCANS)]).ravel())
    return np.stack(rows) if rows else np.zeros((0, 3 * 8 * 32))


class CadenceRequests:
    """``{"npy": "<base64 .npy of a (6, T, F) float snippet>"}`` or
    ``{"objects": [{"id": "...", "npy": "..."}, ...]}`` (at most 64 objects)."""

    keys = ("npy",)
    what = "a base64-encoded .npy cadence snippet"
    max_objects = MAX_REQUEST_OBJECTS

    def parse_object(self, obj: dict, payload: dict, options: dict) -> np.ndarray:
        if not isinstance(obj.get("npy"), str):
            raise DataError("request", "each object needs 'npy': a base64-encoded .npy file")
        try:
            a = np.load(_io.BytesIO(base64.b64decode(obj["npy"], validate=True)), allow_pickle=False)
        except (ValueError, TypeError, OSError, EOFError):
            raise DataError("request", "'npy' is not a base64-encoded .npy array") from None
        io.check_snippet_header(Path("request"), a.shape, a.dtype, None)
        a = a.astype(np.float32)
        io.check_values("request", a)
        return a

    def assemble(self, ids: list[str], items: list, payload: dict, options: dict) -> TaskData:
        shapes = {a.shape for a in items}
        if len(shapes) > 1:
            raise DataError("request", f"snippets of different shapes {sorted(shapes)}")
        return TaskData(ids=np.array(ids), x=np.stack(items), y=None, class_names=list(io.CLASS_NAMES),
                        source="request", meta={"layout": "request"})

    def example(self) -> dict:
        from .simulate import simulate_snippet

        x, _ = simulate_snippet(np.random.default_rng(3), True)
        buf = _io.BytesIO()
        np.save(buf, x.astype(np.float16))
        return {"objects": [{"id": "cadence-1", "npy": base64.b64encode(buf.getvalue()).decode("ascii")}]}


class TechnosignaturesTask(Task):
    info = INFO
    models = MODELS
    features = staticmethod(cadence_features)
    requests = CadenceRequests()
    gallery_layout = (6, 2.2, 3.4)
    # ---- preprocessing + datasets -------------------------------------------------------------
    def fit_preprocessing(self, train: TaskData, params: dict) -> dict:
        """No learnt statistics (every snippet is normalised on its own); validates the parameters
        and, for timm backbones asked to be pretrained, that the weights are on disk."""
        check_params(params)
        if params.get("pretrained"):  # fail before training, not after, when weights are missing
            resolve_pretrained(params.get("backbone", ""), params["pretrained"])
        shape = list(np.shape(train.x[0])) if len(train) else []
        return {"snippet_shape": shape}

    def dataset(self, data: TaskData, stats: dict, params: dict, *, train: bool) -> CadenceDataset:
        augment = None
        if train:
            augment = CadenceAugment(float(params.get("flip_prob", AUGMENT_DEFAULTS["flip_prob"])),
                                     float(params.get("swap_prob", AUGMENT_DEFAULTS["swap_prob"])))
        y = data.hard_labels if data.has_labels else None
        return CadenceDataset(data.x, y, params, augment=augment)

    def batch_augment(self, params, stats=None):
        mixup = float(params.get("mixup_prob", AUGMENT_DEFAULTS["mixup_prob"]))
        cutmix = float(params.get("cutmix_prob", AUGMENT_DEFAULTS["cutmix_prob"]))
        if mixup == 0 and cutmix == 0:
            return None
        return MixBatch(mixup, cutmix, float(params.get("mix_alpha", AUGMENT_DEFAULTS["mix_alpha"])))

    def tta_views(self, params, stats=None):
        return tta_views()

    # ---- evaluation + output ----------------------------------------------------------------
    def prediction_frame(self, ids, proba, class_names):
        """The competition's submission layout: ``id,target`` with target = P(signal)."""
        import pandas as pd

        return pd.DataFrame({"id": np.asarray(ids), "target": np.asarray(proba)[:, 1]})

    def figures(self, data: TaskData, proba: np.ndarray, out_dir: Path, *,
                data_params: dict | None = None) -> list[Path]:
        """With labels: the highest-scoring negatives and the lowest-scoring positives, scan by scan,
        each row with its per-scan line strengths along the best drift track beside it, searched
        with the model's own track settings (``data_params``; what the cadence rule saw); without:
        the highest P(signal)."""
        out_dir = Path(out_dir)
        score = proba[:, 1]
        if not data.has_labels:
            idx = np.argsort(-score, kind="stable")[:6]
            p = self.plot_gallery(data, idx, out_dir / "gallery_top.png", proba=proba[idx], title="highest P(signal)")
            return [p] if p else []
        y = data.hard_labels
        neg, pos = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
        rows = [(int(i), "negative") for i in neg[np.argsort(-score[neg], kind="stable")][:4]]
        rows += [(int(i), "positive") for i in pos[np.argsort(score[pos], kind="stable")][:4]]
        p = scan_gallery(data, rows, score, out_dir / "gallery_hardest.png",
                         "highest-scoring negatives and lowest-scoring positives", params=data_params)
        return [p] if p else []

    def object_statistics(self, data: TaskData) -> dict[str, np.ndarray]:
        """Signal-to-noise of the strongest channel of each scan's time-averaged spectrum
        (bandpass-flattened, in units of its robust scatter) in the ON and OFF scans, and their
        difference: a needle in the ON scans only is high in the first and not in the second."""
        on, off = [], []
        for i in range(len(data)):
            spec = normalise(np.asarray(data.x[i], dtype=np.float32), "off_median").mean(axis=1)
            med = np.median(spec, axis=1, keepdims=True)
            mad = np.maximum(1.4826 * np.median(np.abs(spec - med), axis=1, keepdims=True), 1e-6)
            peak = ((spec - med) / mad).max(axis=1)
            on.append(float(np.median(peak[list(io.ON_SCANS)])))
            off.append(float(np.median(peak[list(io.OFF_SCANS)])))
        on_a, off_a = np.array(on), np.array(off)
        return {"peak S/N in ON scans": on_a, "peak S/N in OFF scans": off_a, "ON - OFF peak S/N": on_a - off_a}

    def draw_object(self, ax, data: TaskData, i: int) -> None:
        """The six scans (bandpass-flattened) stacked top to bottom, ON scans labelled."""
        z = normalise(np.asarray(data.x[i], dtype=np.float32), "off_median")
        n_scans, n_t, _ = z.shape
        gap = np.full((max(1, n_t // 12), z.shape[2]), np.nan, dtype=np.float32)
        parts = [part for s in range(n_scans) for part in (z[s], gap)][:-1]  # a gap between scans
        stacked = np.concatenate(parts)
        ax.imshow(stacked, aspect="auto", cmap="viridis", vmin=-2, vmax=4, interpolation="nearest")
        step = n_t + len(gap)
        ax.set_yticks([s * step + n_t / 2 for s in range(n_scans)],
                      ["ON" if s in io.ON_SCANS else "OFF" for s in range(n_scans)], fontsize=6)
        ax.set_xticks([])
        ax.set_xlabel("frequency", fontsize=7)


def scan_gallery(data: TaskData, rows: list[tuple[int, str]], score: np.ndarray, out: Path, title: str,
                 params: dict | None = None) -> Path | None:
    """One row per object: its six scans (flattened as the detector sees them) side by side, and a
    bar chart of the per-scan line strength along its best drift track (ON scans: the track's own
    value; OFF scans: the brightest line the track crosses there), with each ON scan's own best
    line after the OFF veto (the "loose" evidence) as a marker."""
    if not rows:
        return None
    from ..core.plots import plt, save
    from .tracks import check_track_params, flatten_scans, per_scan_scores

    p = check_track_params(params or {})
    fig, axes = plt.subplots(len(rows), 7, figsize=(16, 1.9 * len(rows) + 0.6), squeeze=False,
                             gridspec_kw={"width_ratios": [1] * 6 + [1.4]}, layout="constrained")
    for r, (i, what) in enumerate(rows):
        x = np.asarray(data.x[i], dtype=np.float32)
        z = flatten_scans(x, int(p["bandpass_window"]), float(p["clip"]))
        for k in range(6):
            ax = axes[r, k]
            ax.imshow(z[k], aspect="auto", cmap="viridis", vmin=-1, vmax=4, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(("ON" if k in io.ON_SCANS else "OFF") + f" {k}", fontsize=8)
        ax = axes[r, 0]
        ax.set_ylabel(f"{str(data.ids[i])[:15]}\n{what}\nP={score[i]:.3f}", fontsize=7)
        per, loose = per_scan_scores(x, p, loose=True)
        bar = axes[r, 6]
        bar.bar(range(6), per, color=["tab:orange" if k in io.ON_SCANS else "tab:blue" for k in range(6)],
                label="best track")
        bar.plot(range(6), loose, "kD", ms=4, label="scan's own best line, OFF-vetoed")
        if r == 0:
            bar.legend(fontsize=5, loc="upper right")
        bar.set_xticks(range(6), ["ON", "OFF"] * 3, fontsize=6)
        bar.tick_params(labelsize=6)
        bar.set_ylabel("line σ", fontsize=6)
    fig.suptitle(title, fontsize=10)
    return save(fig, out)


TASK = TechnosignaturesTask()
