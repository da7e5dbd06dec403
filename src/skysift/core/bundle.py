"""Model bundles: ``model.safetensors`` (weights) + ``model.json`` (everything else).

Loading never unpickles: safetensors holds only tensors and the JSON only data, so a downloaded
model cannot run code. Both files are written atomically; ``model.json`` is written last, so a
bundle whose JSON exists is complete.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .._version import __version__
from ..errors import ModelFileError
from .io import _UMASK, atomic_path, write_json

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CARD = "model.json"


def save_bundle(run_dir: str | Path, tensors: dict, card: dict) -> dict:
    """Write ``tensors`` (name -> torch tensor or numpy array) and the JSON ``card``; returns the
    card as written (with the format and skysift versions)."""
    from safetensors.numpy import save_file

    run_dir = Path(run_dir)
    arrays = {}
    for k, v in tensors.items():
        a = v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
        arrays[k] = np.ascontiguousarray(a)
    with atomic_path(run_dir / WEIGHTS) as tmp:
        save_file(arrays, str(tmp))
        # safetensors recreates the file 0600; the bundle's files share one mode (the umask's)
        os.chmod(tmp, 0o666 & ~_UMASK)
    card = dict(card)
    card.setdefault("format_version", FORMAT_VERSION)
    card["skysift_version"] = __version__
    write_json(run_dir / CARD, card)
    return card


def read_card(run_dir: str | Path) -> dict:
    run_dir = Path(run_dir)
    path = run_dir / CARD
    if not run_dir.exists():
        raise ModelFileError(f"{run_dir}: no such run directory")
    if not path.exists():
        raise ModelFileError(f"{path}: missing; is {run_dir} a finished skysift run?")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{path}: not valid JSON ({e})") from None
    for key in ("task", "model", "class_names"):
        if key not in card:
            raise ModelFileError(f"{path}: missing key {key!r}")
    if card.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: bundle format {card['format_version']} is newer than this skysift understands"
        )
    return card


def read_tensors(run_dir: str | Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    path = Path(run_dir) / WEIGHTS
    if not path.exists():
        raise ModelFileError(f"{path}: missing")
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own SafetensorError for truncated files
        raise ModelFileError(f"{path}: unreadable weights ({e})") from None
