"""The ``technosignatures`` task plugged into the core: SETI Breakthrough Listen cadence snippets."""
from __future__ import annotations

import base64
import io as _io
from pathlib import Path
from typing import Any

import numpy as np

from ..core.data import TaskData
from ..core.task import request_objects, Task
from ..errors import DataError
from . import io
from .augment import AUGMENT_DEFAULTS, CadenceAugment, MixBatch, tta_views
from .models import MODELS, resolve_pretrained
from .preprocess import CadenceDataset, check_params, normalise, resize

MAX_REQUEST_OBJECTS = 64


class TechnosignaturesTask(Task):
    name = "technosignatures"
    description = ("SETI Breakthrough Listen cadence snippets (6 scans ON/OFF/ON/OFF/ON/OFF × time × "
                   "frequency; Kaggle competition .npy layout, or six filterbank/HDF5 files): is there a "
                   "narrow-band drifting signal in the ON scans only?")
    headline_metric = "roc_auc"
    monitor = ("val_roc_auc", "max")
    default_model = "cadence-cnn"
    models = MODELS
    id_column = "id"
    train_defaults = {"epochs": 12, "batch_size": 64, "lr": 3e-3, "patience": 4, "sampler": "weighted",
                      "loss": "ce", "val_frac": 0.2}
    # the demo: small sets (the simulator costs ~35 ms a snippet) and a few epochs of the compact CNN
    demo = {"n_train": 400, "n_test": 150, "epochs": 4, "patience": 4, "batch_size": 32}
    simulate_default_n = 2000

    # ---- data -------------------------------------------------------------------------------
    def load(self, path, *, labelled=None, **options) -> TaskData:
        return io.load(path, labelled=labelled, **options)

    def simulate(self, out, n=None, seed=0) -> Path:
        from .simulate import simulate

        return simulate(out, n=n or self.simulate_default_n, seed=seed)

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

    def features(self, data: TaskData, stats: dict, params: dict) -> np.ndarray:
        """``(N, 3·8·32)`` coarse ON − OFF maps (bandpass-flattened, per-scan standardised): a small
        fixed view for SMOTE and PCA."""
        rows = []
        for i in range(len(data)):
            z = normalise(resize(np.asarray(data.x[i], dtype=np.float32), [8, 32]), "off_median")
            rows.append((z[list(io.ON_SCANS)] - z[list(io.OFF_SCANS)]).ravel())
        return np.stack(rows) if rows else np.zeros((0, 3 * 8 * 32))

    def raw_matrix(self, data: TaskData, max_n: int = 5000) -> np.ndarray:
        return self.features(data.subset(np.arange(min(len(data), max_n))), {}, {}).astype(np.float64)

    # ---- evaluation + output ----------------------------------------------------------------
    def prediction_frame(self, ids, proba, class_names):
        """The competition's submission layout: ``id,target`` with target = P(signal)."""
        import pandas as pd

        return pd.DataFrame({"id": np.asarray(ids), "target": np.asarray(proba)[:, 1]})

    def plots(self, data: TaskData, proba: np.ndarray, out_dir: Path) -> list[Path]:
        out_dir = Path(out_dir)
        made = []
        idx = np.argsort(-proba[:, 1])[:6]
        p = self.plot_gallery(data, idx, out_dir / "gallery_top.png", proba=proba[idx], title="highest P(signal)")
        made += [p] if p else []
        if data.has_labels:
            wrong = np.flatnonzero(proba.argmax(axis=1) != data.hard_labels)
            wrong = wrong[np.argsort(-proba[wrong].max(axis=1))][:6]
            p = self.plot_gallery(data, wrong, out_dir / "gallery_mistakes.png", proba=proba[wrong],
                                  title="most confident mistakes")
            made += [p] if p else []
        return made

    def plot_gallery(self, data: TaskData, indices, out: Path, *, proba=None, title: str = ""):
        """Each object a column of its six scans (bandpass-flattened), ON scans labelled."""
        import matplotlib.pyplot as plt

        from ..core.plots import STYLE, save

        indices = np.asarray(indices, dtype=np.int64)[:8]
        if len(indices) == 0:
            return None
        with plt.rc_context(STYLE):
            fig, axes = plt.subplots(6, len(indices), figsize=(2.2 * len(indices) + 0.6, 7.5), squeeze=False,
                                     sharex=True, sharey=True)
            for col, i in enumerate(indices):
                z = normalise(np.asarray(data.x[i], dtype=np.float32), "off_median")
                for s in range(6):
                    ax = axes[s, col]
                    ax.imshow(z[s], aspect="auto", cmap="viridis", vmin=-2, vmax=4, interpolation="nearest")
                    ax.set_xticks([])
                    ax.set_yticks([])
                    if col == 0:
                        ax.set_ylabel("ON" if s in io.ON_SCANS else "OFF", fontsize=7)
                label = data.class_names[data.hard_labels[i]] if data.has_labels else "?"
                text = f"{data.ids[i]}\ntrue: {label}"
                if proba is not None:
                    text += f"  P={proba[col, 1]:.2f}"
                axes[0, col].set_title(text, fontsize=6)
            for ax in axes[-1]:
                ax.set_xlabel("frequency", fontsize=7)
            if title:
                fig.suptitle(title)
            fig.tight_layout()
            return save(fig, out)

    # ---- serving ----------------------------------------------------------------------------
    def parse_request(self, payload: Any) -> TaskData:
        """``{"npy": "<base64 .npy of a (6, T, F) float snippet>"}`` or
        ``{"objects": [{"id": "...", "npy": "..."}, ...]}`` (at most 64 objects)."""
        objects = request_objects(payload, "npy", "a base64-encoded .npy cadence snippet")
        if len(objects) > MAX_REQUEST_OBJECTS:
            raise DataError("request", f"at most {MAX_REQUEST_OBJECTS} objects per request, got {len(objects)}")
        arrays, ids, shape0 = [], [], None
        for k, obj in enumerate(objects):
            where = f"object {k}"
            if not isinstance(obj, dict) or not isinstance(obj.get("npy"), str):
                raise DataError("request", "each object needs 'npy': a base64-encoded .npy file", where=where)
            try:
                raw = base64.b64decode(obj["npy"], validate=True)
                a = np.load(_io.BytesIO(raw), allow_pickle=False)
            except (ValueError, TypeError, OSError, EOFError):
                raise DataError("request", "'npy' is not a base64-encoded .npy array", where=where) from None
            try:
                io.check_snippet_header(Path("request"), a.shape, a.dtype, shape0)
            except DataError as e:
                raise DataError("request", e.problem, where=where) from None
            shape0 = a.shape
            a = a.astype(np.float32)
            io.check_values("request", a, where=where)
            arrays.append(a)
            ids.append(str(obj.get("id", k)))
        if len(set(ids)) != len(ids):
            raise DataError("request", "duplicate object ids")
        return TaskData(ids=np.array(ids), x=np.stack(arrays), y=None, class_names=list(io.CLASS_NAMES),
                        source="request", meta={"layout": "request"})

    def request_example(self) -> dict:
        from .simulate import simulate_snippet

        x, _ = simulate_snippet(np.random.default_rng(3), True)
        buf = _io.BytesIO()
        np.save(buf, x.astype(np.float16))
        return {"objects": [{"id": "cadence-1", "npy": base64.b64encode(buf.getvalue()).decode("ascii")}]}


TASK = TechnosignaturesTask()
