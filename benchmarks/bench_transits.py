"""Throughput and memory of the transits task on this machine (CPU unless a GPU is visible).

    python benchmarks/bench_transits.py [--n-train 1500] [--n-predict 2000] [--epochs 2]

Prints a table: light curves/s for preprocessing, training (per epoch, augmentation included)
and prediction, and the process's peak resident memory.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

import skysift
from _common import peak_rss_mib, print_table, timed
from skysift.transits.simulate import simulate_light_curves, write_kaggle_csv


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-train", type=int, default=1500)
    ap.add_argument("--n-predict", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--model", default="resnet1d")
    args = ap.parse_args()
    os.environ["SKYSIFT_NO_PROGRESS"] = "1"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with timed() as t:
            flux, labels, _ = simulate_light_curves(args.n_train + args.n_predict, seed=0)
        rows.append(("simulate", t.rate(len(flux))))
        train_csv = write_kaggle_csv(tmp / "train.csv", flux[: args.n_train], labels[: args.n_train])
        test_csv = write_kaggle_csv(tmp / "test.csv", flux[args.n_train:], None)
        task = skysift.get_task("transits")
        with timed() as t:
            data = task.load(test_csv)
        rows.append(("load CSV", t.rate(len(data))))
        task._clean(data.subset([0]), {"length": data.x.shape[1]})  # numba JIT of wotan, once per process
        with timed() as t:
            task._clean(data, {"length": data.x.shape[1]})
        rows.append(("clean + detrend (wotan biweight)", t.rate(len(data))))
        with timed() as t:
            model = skysift.train("transits", train_csv, tmp / "run", model=args.model, epochs=args.epochs,
                                  patience=100, progress=False)
        history = model.card["history"]
        n_seen = int(args.n_train * (1 - model.card["train_config"]["val_frac"])) * len(history)
        rows.append((f"train {args.model} (fit incl. validation, {len(history)} epochs)", t.rate(n_seen)))
        with timed() as t:
            model.predict_proba(data)
        rows.append(("predict (clean + network + calibration)", t.rate(len(data))))
    print(f"\ntransits benchmark — torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"device {'cuda' if torch.cuda.is_available() else 'cpu'}")
    print_table(["step", "light curves/s"], [*rows, ("peak resident memory (MiB)", float(round(peak_rss_mib())))])


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
