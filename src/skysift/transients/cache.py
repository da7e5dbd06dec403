"""On-disk cache (Parquet) of the survey-like copies and of feature matrices.

A second ``skysift train`` on the same data with the same settings must not redo the survey-like
copies (a Gaussian process per object) nor their features. Entries are keyed by a hash of the
*content* that produced them — the light-curve arrays and ids, the settings, the seed — and of the
source of the module that computes them, so a changed setting or a code change makes a new entry
and never serves a stale one. Files live in ``$SKYSIFT_CACHE_DIR/transients`` (default
``~/.cache/skysift/transients``); ``SKYSIFT_CACHE_DIR=off`` disables the cache. Writes are atomic
(temporary file + rename), so an interrupted run leaves no half-written entry.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import numpy as np

from .data import META_COLUMNS, LightCurves

_OBS = ("mjd", "passband", "flux", "flux_err", "detected")


def cache_dir() -> Path | None:
    root = os.environ.get("SKYSIFT_CACHE_DIR")
    if root == "off":
        return None
    root = root or os.path.join(os.path.expanduser("~"), ".cache", "skysift")
    return Path(root) / "transients"


def lightcurves_digest(lc: LightCurves, ids=None) -> hashlib._Hash:
    """A blake2b hash object over every array of ``lc`` (and the ids when given)."""
    h = hashlib.blake2b(digest_size=16)
    for a in (lc.offsets, *(getattr(lc, k) for k in _OBS), *(lc.meta[c] for c in META_COLUMNS)):
        h.update(np.ascontiguousarray(a).tobytes())
    if ids is not None:
        h.update("\x1f".join(map(str, np.asarray(ids).tolist())).encode())
    return h


def _module_source(name: str) -> bytes:
    import importlib

    mod = importlib.import_module(name)
    return Path(mod.__file__).read_bytes()


def _write_parquet(table, path: Path) -> None:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def cached_features(lc: LightCurves, feature_set: str, compute: Callable[[], tuple[np.ndarray, list[str]]],
                    modules: tuple[str, ...] = ("skysift.transients.features",)) -> tuple[np.ndarray, list[str]]:
    """``compute()`` (a feature matrix and its names) through the cache, keyed by the light curves,
    the feature set name and the source of the ``modules`` that compute it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = cache_dir()
    if root is None or len(lc) == 0:
        return compute()
    h = lightcurves_digest(lc)
    h.update(feature_set.encode())
    for mod in modules:
        h.update(_module_source(mod))
    path = root / f"features_{feature_set}_{h.hexdigest()}.parquet"
    if path.exists():
        try:
            t = pq.read_table(path)
            return np.column_stack([t.column(i).to_numpy() for i in range(t.num_columns)]).astype(np.float32), \
                list(t.column_names)
        except (OSError, ValueError, pa.ArrowInvalid):
            pass  # a damaged entry is recomputed and overwritten
    X, names = compute()
    _write_parquet(pa.table({n: np.asarray(X[:, j], np.float32) for j, n in enumerate(names)}), path)
    return X, names


def cached_survey_like(lc: LightCurves, ids, settings_key: str, n_copies: int, seed: int,
                       compute: Callable[[], tuple[LightCurves, np.ndarray, np.ndarray]]
                       ) -> tuple[LightCurves, np.ndarray, np.ndarray]:
    """``compute()`` (copies, source row (n,), copy number (n,)) through the cache, keyed by the
    light curves and ids, the settings, the number of copies, the seed and the source of
    :mod:`.survey_shift`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = cache_dir()
    if root is None:
        return compute()
    h = lightcurves_digest(lc, ids)
    h.update(f"{settings_key}|{n_copies}|{seed}".encode())
    for mod in ("skysift.transients.survey_shift", "skysift.transients.augment", "skysift.transients.survey"):
        h.update(_module_source(mod))
    stem = f"survey_like_{h.hexdigest()}"
    obs_path, obj_path = root / f"{stem}.obs.parquet", root / f"{stem}.objects.parquet"
    if obs_path.exists() and obj_path.exists():
        try:
            obs, objs = pq.read_table(obs_path), pq.read_table(obj_path)
            lengths = objs.column("n_obs").to_numpy()
            offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            aug = LightCurves(offsets, *(obs.column(k).to_numpy() for k in _OBS),
                              {c: objs.column(c).to_numpy() for c in META_COLUMNS})
            return aug, objs.column("source").to_numpy(), objs.column("copy").to_numpy()
        except (OSError, ValueError, KeyError, pa.ArrowInvalid):
            pass
    aug, source, copy = compute()
    _write_parquet(pa.table({k: getattr(aug, k) for k in _OBS}), obs_path)
    _write_parquet(pa.table({"source": source, "copy": copy, "n_obs": aug.lengths,
                             **{c: aug.meta[c] for c in META_COLUMNS}}), obj_path)
    return aug, source, copy


__all__ = ["cache_dir", "cached_features", "cached_survey_like", "lightcurves_digest"]


# ---- per-object memo (cross-validation) --------------------------------------------------------------
# Cross-validation trains k models whose training sets overlap by (k-2)/(k-1): the survey-like copies
# and the features of an object are the same in every fold (both depend on that object alone and on
# the seed), so a per-object memo computes each once. Opt-in and in memory only, for the length of a
# ``with object_memo():`` block, so a server or a single training run never accumulates state.
_MEMO: dict | None = None


class object_memo:
    """``with object_memo(): ...`` memoises per-object copies and feature rows inside the block."""

    def __enter__(self):
        global _MEMO
        self._old, _MEMO = _MEMO, {}
        return self

    def __exit__(self, *exc):
        global _MEMO
        _MEMO = self._old
        return False


def memo_active() -> bool:
    return _MEMO is not None


def object_digests(lc: LightCurves, ids=None) -> list[bytes]:
    """One digest per object over its observations and metadata (and id when given)."""
    out = []
    meta = np.column_stack([lc.meta[c] for c in META_COLUMNS]) if len(lc) else np.zeros((0, len(META_COLUMNS)))
    for i in range(len(lc)):
        s = lc.rows(i)
        h = hashlib.blake2b(digest_size=16)
        for k in _OBS:
            h.update(np.ascontiguousarray(getattr(lc, k)[s]).tobytes())
        h.update(meta[i].tobytes())
        if ids is not None:
            h.update(str(ids[i]).encode())
        out.append(h.digest())
    return out


def memoised(kind: str, keys: list[bytes], compute: Callable[[np.ndarray], list]) -> list:
    """Per-object results for ``keys``: ``compute(missing_positions)`` returns one result per
    missing position; without an active memo everything is computed."""
    if _MEMO is None:
        return compute(np.arange(len(keys)))
    missing = [i for i, k in enumerate(keys) if (kind, k) not in _MEMO]
    if missing:
        for i, r in zip(missing, compute(np.asarray(missing, dtype=np.int64))):
            _MEMO[(kind, keys[i])] = r
    return [_MEMO[(kind, k)] for k in keys]
