"""Throughput, memory and acceptance figures of the technosignatures task on this machine.

    python benchmarks/bench_technosignatures.py throughput [--n-train 400] [--n-predict 400] [--epochs 2]
    python benchmarks/bench_technosignatures.py accept --train DIR --test DIR [--epochs 8] [--out RUN]

``throughput`` prints snippets/s for simulation, training (per epoch, augmentation included) and
prediction, and the process's peak resident memory. ``accept`` trains the default network through
``skysift.train`` on a simulated training set, then reports on a fresh simulated test set (another
seed) the network's ROC-AUC (with and without flip TTA) beside the de-Doppler baseline's.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

import skysift
from _common import peak_rss_mib, timed
from skysift.technosignatures.dedoppler import DedopplerBaseline
from skysift.technosignatures.simulate import simulate


def throughput(args) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with timed() as t:
            simulate(tmp / "train", n=args.n_train, seed=0)
            simulate(tmp / "test", n=args.n_predict, seed=1)
        rows.append(("simulate (setigen) + write", t.rate(args.n_train + args.n_predict)))
        with timed() as t:
            model = skysift.train("technosignatures", tmp / "train", tmp / "run", epochs=args.epochs, patience=100,
                                  progress=False)
        history = model.card["history"]
        n_seen = int(args.n_train * (1 - model.card["train_config"]["val_frac"])) * len(history)
        rows.append((f"train cadence-cnn (fit incl. validation, {len(history)} epochs)", t.rate(n_seen)))
        data = skysift.get_task("technosignatures").load(tmp / "test", labelled=False)
        with timed() as t:
            model.predict_proba(data)
        rows.append(("predict (read + preprocess + network)", t.rate(len(data))))
        with timed() as t:
            DedopplerBaseline().scores(data.x.take(np.arange(min(100, len(data)))))
        rows.append(("de-Doppler baseline score", t.rate(min(100, len(data)))))
    print(f"\ntechnosignatures benchmark — torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"cpus {os.cpu_count()}, device {'cuda' if torch.cuda.is_available() else 'cpu'}")
    for name, rate in rows:
        print(f"  {name:<60s} {rate:10.1f} snippets/s")
    print(f"  {'peak resident memory':<60s} {peak_rss_mib():10.0f} MB")


def accept(args) -> None:
    t = time.perf_counter()
    out = Path(args.out)
    model = skysift.train("technosignatures", args.train, out, epochs=args.epochs, progress=False,
                          **({"model": args.model} if args.model else {}))
    t_train = time.perf_counter() - t
    task = skysift.get_task("technosignatures")
    test = task.load(args.test)
    y = test.hard_labels
    p = model.predict_proba(test)[:, 1]
    p_tta = model.predict_proba(test, tta=True)[:, 1] if _accepts_tta(model) else None
    t = time.perf_counter()
    s = DedopplerBaseline().scores(test.x)
    t_base = time.perf_counter() - t
    result = {"n_test": int(len(y)), "n_test_positive": int(y.sum()), "train_seconds": round(t_train, 1),
              "epochs_run": len(model.card["history"]),
              "network_roc_auc": roc_auc_score(y, p), "network_pr_auc": average_precision_score(y, p),
              "network_tta_roc_auc": None if p_tta is None else roc_auc_score(y, p_tta),
              "dedoppler_roc_auc": roc_auc_score(y, s), "dedoppler_pr_auc": average_precision_score(y, s),
              "dedoppler_seconds": round(t_base, 1)}
    truth = Path(args.test) / "truth.csv"
    if truth.is_file():  # AUC per needle path shape: each kind of needle against all negatives
        import pandas as pd

        tr = pd.read_csv(truth, dtype={"id": str}).set_index("id").loc[test.ids]
        for kind in ("linear", "quadratic", "sine"):
            m = (tr["path"] == kind).to_numpy() | (y == 0)
            if (tr["path"] == kind).any():
                result[f"network_roc_auc_{kind}"] = roc_auc_score(y[m], p[m])
                result[f"dedoppler_roc_auc_{kind}"] = roc_auc_score(y[m], s[m])
    print(json.dumps(result, indent=2))


def _accepts_tta(model) -> bool:
    import inspect

    return "tta" in inspect.signature(model.predict_proba).parameters


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    a = sub.add_parser("throughput")
    a.add_argument("--n-train", type=int, default=400)
    a.add_argument("--n-predict", type=int, default=400)
    a.add_argument("--epochs", type=int, default=2)
    b = sub.add_parser("accept")
    b.add_argument("--train", required=True)
    b.add_argument("--test", required=True)
    b.add_argument("--epochs", type=int, default=8)
    b.add_argument("--model", default=None)
    b.add_argument("--out", default="runs/technosignatures-accept")
    args = ap.parse_args()
    os.environ["SKYSIFT_NO_PROGRESS"] = "1"
    (throughput if args.mode == "throughput" else accept)(args)


if __name__ == "__main__":
    main()
