"""Which objects of an evaluation set the model has already seen.

Training writes ``split.json`` (object ids per split) into the run directory. Objects of the
``train`` split were fitted, those of ``val`` chose the epoch and fitted the calibration: metrics on
either are optimistic (on a PLAsTiCC model, log-loss 0.196 on its training objects against 0.378 on
validation). ``evaluate`` uses this to warn and to report the unseen objects apart; objects of the
held-out ``test`` split count as unseen.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import TaskData

SEEN_SPLITS = ("train", "val")


@dataclass
class Overlap:
    """How many objects of the data were in each seen split, and a mask of the unseen ones."""

    counts: dict[str, int]
    unseen: np.ndarray  # (N,) bool

    @property
    def n_seen(self) -> int:
        return int((~self.unseen).sum())

    def message(self, source: str) -> str:
        parts = ", ".join(f"{n:,} {'training' if k == 'train' else 'validation'}"
                          for k, n in self.counts.items() if n)
        n = len(self.unseen)
        head = f"{self.n_seen:,} of {n:,} objects in {source} were seen in training ({parts}): "
        if not self.unseen.any():
            return head + "the metrics are optimistic; evaluate on data the model has not seen"
        return head + (f"their metrics are optimistic; the {int(self.unseen.sum()):,} unseen objects "
                       "are scored apart (\"unseen\")")


def find_overlap(run_dir: str | Path, data: TaskData) -> Overlap | None:
    """The overlap of ``data`` with the run's training and validation objects; None when the run
    has no ``split.json`` (a bundle copied without it) or nothing overlaps."""
    path = Path(run_dir) / "split.json"
    if not path.exists():
        return None
    try:
        split = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    ids = np.array([str(i) for i in data.ids])
    seen = np.zeros(len(ids), dtype=bool)
    counts = {}
    for k in SEEN_SPLITS:
        hit = np.isin(ids, np.array([str(i) for i in split.get(k, [])]))
        counts[k] = int(hit.sum())
        seen |= hit
    if not seen.any():
        return None
    return Overlap(counts, ~seen)


def evaluate_with_overlap(model, data: TaskData, *, tta: bool | None = None,
                          plots_dir: str | Path | None = None, warn=None) -> dict:
    """``model.evaluate(data)``, plus, when ``data`` overlaps the model's training or validation
    objects, ``"overlap"`` (counts) and ``"unseen"`` (the metrics of the unseen objects alone, None
    when there are none); ``warn(message)`` is called once with a one-line explanation."""
    logits = model.predict_logits(data, tta=tta)  # once, for all objects and the unseen ones
    proba = model.calibrate(logits)
    metrics = model.evaluate(data, plots_dir=plots_dir, proba=proba, logits=logits)
    ov = find_overlap(model.run_dir, data) if model.run_dir is not None else None
    if ov is None:
        return metrics
    if warn is not None:
        warn(ov.message(str(data.source or "the data")))
    metrics["overlap"] = {**ov.counts, "unseen": int(ov.unseen.sum())}
    unseen = None
    if ov.unseen.any():
        keep = np.flatnonzero(ov.unseen)
        unseen = model.evaluate(data.subset(keep), proba=proba[keep], logits=logits[keep])
    metrics["unseen"] = unseen
    return metrics
