"""The model card as rows of text, for ``skysift info`` and the HTML report alike.

Only what applies to the model is shown: an estimator (LightGBM) has no epochs, learning rate or
sampler, and a multi-class model decides by the most probable class, not by a threshold.
"""
from __future__ import annotations

import json
from typing import Any

#: TrainConfig fields that describe every model's training
COMMON_TRAINING = ("val_frac", "test_frac", "resample", "calibrate", "seed")
#: fields that only a network's training loop reads
NETWORK_TRAINING = ("epochs", "batch_size", "lr", "weight_decay", "patience", "sampler", "loss",
                    "augment", "tta", "precision")


def _labelled(task: Any, name: str) -> str:
    """``task``: a Task, or a TaskInfo (cheap: no task module imported), or None."""
    if hasattr(task, "class_label"):
        return task.class_label(name)
    label = getattr(task, "class_labels", {}).get(str(name))
    return f"{label} ({name})" if label else str(name)


def card_rows(card: dict, task: Any = None) -> list[tuple[str, str]]:
    """``(field, value)`` rows of a ``model.json`` card; ``task`` (optional) names coded classes."""
    cal = card.get("calibration", {})
    cfg = card.get("train_config", {})
    data = card.get("data", {})
    kind = card["model"].get("kind", "torch")
    names = [str(c) for c in card["class_names"]]
    rows: list[tuple[str, str]] = [
        ("task", card["task"]),
        ("model", f"{card['model']['name']} ({'network' if kind == 'torch' else kind})"),
        ("model parameters", json.dumps(card["model"].get("params", {}))),
    ]
    if card["model"].get("data_params"):
        rows.append(("data parameters", json.dumps(card["model"]["data_params"])))
    rows.append(("classes", ", ".join(_labelled(task, c) for c in names)))
    trained = f"{data.get('source', '?')} ({data.get('n', '?')} objects"
    trained += (f": {data['n_train']} train, {data['n_val']} validation, {data.get('n_test', 0)} test)"
                if "n_train" in data else ")")
    rows.append(("trained on", trained))
    if card.get("protocol"):
        rows.append(("protocol", card["protocol"]))
    counts = data.get("class_counts", {})
    if counts:
        rows.append(("class counts", ", ".join(f"{_labelled(task, k)}: {v}" for k, v in counts.items())))
    calib = f"{cal.get('method', 'temperature')}: temperature {cal.get('temperature', 1.0):.3f}"
    if cal.get("bias"):
        calib += f", biases {', '.join(f'{b:+.2f}' for b in cal['bias'])}"
    rows.append(("calibration", calib))
    if len(names) == 2:  # a multi-class model takes the most probable class: no threshold
        rows.append(("decision threshold", f"{cal.get('threshold', 0.5):.3f}"))
    keys = COMMON_TRAINING + (NETWORK_TRAINING if kind == "torch" else ())
    rows.append(("training", ", ".join(f"{k}={cfg[k]}" for k in keys if k in cfg)))
    if "train_seconds" in card:
        rows.append(("training time", f"{card['train_seconds']} s"))
    rows.append(("created", f"{card.get('created', '?')} (skysift {card.get('skysift_version', '?')})"))
    return [(k, str(v)) for k, v in rows]
