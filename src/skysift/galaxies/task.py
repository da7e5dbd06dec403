"""The ``galaxies`` task plugged into the core: Galaxy Zoo morphology from colour cutouts."""
from __future__ import annotations

import base64
import io as _io
from pathlib import Path

import numpy as np

from ..core.data import TaskData
from ..core.task import Task
from ..errors import DataError
from . import INFO, io
from .augment import AUGMENT_DEFAULTS, SymmetryAugment, dihedral_views
from .models import MODELS, check_pretrained
from .preprocess import GalaxyDataset, copy_numbers, fit_stats, match_geometry


def pixel_features(data: TaskData, stats: dict, params: dict) -> np.ndarray:
    """``(N, 16·16·3)`` block-averaged pixels in [0, 1]: a small, fixed view for SMOTE and PCA."""
    x = np.asarray(data.x, dtype=np.float32) / 255.0
    n, s = x.shape[:2]
    b = max(1, s // 16)
    s16 = (s // b) * b
    x = x[:, :s16, :s16].reshape(n, s16 // b, b, s16 // b, b, 3).mean(axis=(2, 4))
    return x.reshape(n, -1)


class ImageRequests:
    """``{"image": "<base64 PNG/JPEG>"}`` or ``{"objects": [{"id": "...", "image": "..."}, ...]}``;
    optional ``"crop"`` (central fraction) and ``"size"`` as in the loaders."""

    keys = ("image",)
    what = "a base64 PNG/JPEG"
    max_objects = None

    @staticmethod
    def _options(payload: dict, options: dict) -> io.LoadOptions:
        try:
            return io.LoadOptions(image_size=payload.get("size", options.get("image_size", io.DEFAULT_SIZE)),
                                  crop=payload.get("crop", options.get("crop", 1.0)))
        except (TypeError, ValueError) as e:
            raise DataError("request", f"bad 'size' or 'crop' ({e})") from None

    def parse_object(self, obj: dict, payload: dict, options: dict) -> np.ndarray:
        opts = self._options(payload, options)
        if not isinstance(obj.get("image"), str):
            raise DataError("request", "each object needs 'image': a base64-encoded PNG or JPEG")
        try:
            raw = base64.b64decode(obj["image"], validate=True)
        except (ValueError, TypeError):
            raise DataError("request", "'image' is not valid base64") from None
        img, _, _ = io.read_image(_io.BytesIO(raw), opts, name="request")
        return img

    def assemble(self, ids: list[str], items: list, payload: dict, options: dict) -> TaskData:
        return TaskData(ids=np.array(ids), x=np.stack(items), y=None, class_names=[], source="request",
                        meta={"layout": "request", "card": self._options(payload, options).card()})

    def example(self) -> dict:
        from PIL import Image

        from .simulate import simulate_images

        images, _ = simulate_images(1, seed=7)
        buf = _io.BytesIO()
        Image.fromarray(images[0]).save(buf, format="PNG")
        return {"objects": [{"id": "galaxy-1", "image": base64.b64encode(buf.getvalue()).decode("ascii")}]}


class GalaxiesTask(Task):
    info = INFO
    models = MODELS
    features = staticmethod(pixel_features)
    requests = ImageRequests()
    gallery_layout = (6, 1.9, 2.15)

    # ---- preprocessing + datasets -------------------------------------------------------------
    def input_options(self, stats: dict) -> dict:
        """The training crop and size: a bare folder of cutouts is then read as the catalogue
        folder was (GZ1: the central 0.3), not at crop 1 and upsampled."""
        return {k: stats[k] for k in ("crop", "image_size") if k in stats}

    def fit_preprocessing(self, train: TaskData, params: dict) -> dict:
        check_pretrained(params)  # fail before training, not after, when weights are missing
        return fit_stats(train)

    def dataset(self, data: TaskData, stats: dict, params: dict, *, train: bool) -> GalaxyDataset:
        stats = stats or fit_stats(data)
        images = match_geometry(data, stats)
        brightness = float(params.get("brightness", AUGMENT_DEFAULTS["brightness"])) if train else 0.0
        y = data.y if data.has_labels else None
        return GalaxyDataset(images, y, stats["mean"], stats["std"], copies=copy_numbers(data.ids),
                             brightness=brightness, mirror_perm=stats.get("mirror_permutation"))

    def batch_augment(self, params, stats=None):
        """Random symmetry, small rotation and crop of every training image (labels unchanged,
        but for the sense of spirals under a mirror: see :mod:`.augment`)."""
        return SymmetryAugment(float(params.get("max_rotation_deg", AUGMENT_DEFAULTS["max_rotation_deg"])),
                               float(params.get("crop_scale", AUGMENT_DEFAULTS["crop_scale"])),
                               mirror_perm=(stats or {}).get("mirror_permutation"))

    def tta_views(self, params, stats=None):
        return dihedral_views((stats or {}).get("mirror_permutation"))

    # ---- evaluation + output ----------------------------------------------------------------
    def metrics(self, data: TaskData, proba: np.ndarray) -> dict:
        """With vote-fraction targets: the RMSE of predicted vs voted fractions (the Galaxy Zoo
        challenge's score) and the cross-entropy against the fractions."""
        if not data.has_labels or data.y.ndim != 2:
            return {}
        f = np.asarray(data.y, dtype=np.float64)
        p = np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1)
        return {"vote_rmse": float(np.sqrt(np.mean((p - f) ** 2))),
                "vote_cross_entropy": float(-(f * np.log(p)).sum(axis=1).mean())}

    def figures(self, data: TaskData, proba: np.ndarray, out_dir: Path, *,
                data_params: dict | None = None) -> list[Path]:
        idx = np.sort(np.random.default_rng(0).choice(len(data), size=min(24, len(data)), replace=False))
        p = self.plot_gallery(data, idx, Path(out_dir) / "gallery.png", proba=proba[idx], title="examples")
        return [p] if p else []

    def object_statistics(self, data: TaskData) -> dict[str, np.ndarray]:
        """Brightness, size and colour of each cutout, measured on its pixels (0..255 per band)."""
        out = {k: np.full(len(data), np.nan) for k in
               ("mean brightness (0-255)", "central brightness (0-255)", "half-light radius [px]",
                "colour -2.5 log(R/B)")}
        for i in range(len(data)):
            img = np.asarray(data.x[i], dtype=np.float64)
            h, w = img.shape[:2]
            lum = img.mean(axis=2)
            sky = np.median(np.concatenate([lum[0], lum[-1], lum[:, 0], lum[:, -1]]))
            light = np.clip(lum - sky, 0, None)
            yy, xx = np.mgrid[:h, :w]
            r = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2)
            c = max(1, min(h, w) // 8)
            out["mean brightness (0-255)"][i] = lum.mean()
            out["central brightness (0-255)"][i] = lum[h // 2 - c:h // 2 + c, w // 2 - c:w // 2 + c].mean()
            if light.sum() > 0:
                order = np.argsort(r, axis=None)
                cum = np.cumsum(light.ravel()[order])
                out["half-light radius [px]"][i] = r.ravel()[order][np.searchsorted(cum, cum[-1] / 2)]
                red = np.clip(img[..., 0] - np.median(img[..., 0]), 0, None).sum()
                blue = np.clip(img[..., 2] - np.median(img[..., 2]), 0, None).sum()
                if red > 0 and blue > 0:
                    out["colour -2.5 log(R/B)"][i] = -2.5 * np.log10(red / blue)
        return out

    def draw_object(self, ax, data: TaskData, i: int) -> None:
        ax.imshow(np.asarray(data.x[i]), interpolation="nearest")
        ax.axis("off")


TASK = GalaxiesTask()
