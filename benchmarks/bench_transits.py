"""Throughput and memory of the transits task on this machine (CPU unless a GPU is visible).

    python benchmarks/bench_transits.py [--n-train 1500] [--n-predict 2000] [--epochs 2] [--model views-net]

On a machine shared with other jobs the wall-clock rates depend on the neighbours; the views step
and serving are also given from the CPU time they used: what one otherwise idle core would do even
with no parallelism (a bound for two).

Prints a table: light curves/s for simulation, CSV loading, the views model's preprocessing
(detrending + box-least-squares search + folded views, cold cache), the raw-series models'
detrending (wotan biweight), training (per epoch, augmentation included), prediction, and the
seconds to serve 256 distinct light curves given as a JSON body (parsing + preprocessing + network +
calibration, in process), and the process's peak resident memory.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch

import skysift
from _common import cpu_seconds, peak_rss_mib, print_table, timed
from skysift.transits.simulate import simulate_light_curves, write_kaggle_csv


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-train", type=int, default=1500)
    ap.add_argument("--n-predict", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--model", default="views-net")
    args = ap.parse_args()
    os.environ["SKYSIFT_NO_PROGRESS"] = "1"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["SKYSIFT_CACHE_DIR"] = str(tmp / "cache")  # cold: every figure computes its views
        with timed() as t:
            flux, labels, _ = simulate_light_curves(args.n_train + args.n_predict + 3 * 256, seed=0)
        rows.append(("simulate", t.rate(len(flux))))
        serve_sets = [flux[-(k + 1) * 256: len(flux) - k * 256] for k in range(3)]
        flux, labels = flux[: args.n_train + args.n_predict], labels[: args.n_train + args.n_predict]
        train_csv = write_kaggle_csv(tmp / "train.csv", flux[: args.n_train], labels[: args.n_train])
        test_csv = write_kaggle_csv(tmp / "test.csv", flux[args.n_train:], None)
        task = skysift.get_task("transits")
        with timed() as t:
            data = task.load(test_csv)
        rows.append(("load CSV", t.rate(len(data))))

        from skysift.transits.preprocess import clean_batch
        from skysift.transits.search import SearchSettings, compute_views

        s = SearchSettings()
        compute_views(np.asarray(data.x[:4]), s)  # numba compilation (or its disk cache), once per process
        c0 = cpu_seconds()
        with timed() as t:
            compute_views(np.asarray(data.x), s)
        cpu = cpu_seconds() - c0
        rows.append(("views-net preprocessing: detrend + BLS search + views", t.rate(len(data))))
        # on a shared machine: light curves per CPU-second, what one idle core does even if nothing
        # ran in parallel (a lower bound for two)
        rows.append(("  the same, per CPU-second (one idle core; lower bound for two)", len(data) / cpu))
        sub = np.asarray(data.x[:200])
        clean_batch(sub[:2], detrend="biweight")  # numba JIT of wotan
        with timed() as t:
            clean_batch(sub, detrend="biweight", workers=1)
        rows.append(("resnet1d / seed-cnn preprocessing: wotan biweight (200 curves, 1 process)", t.rate(len(sub))))

        with timed() as t:
            model = skysift.train("transits", train_csv, tmp / "run", model=args.model, epochs=args.epochs,
                                  patience=100, progress=False)
        history = model.card["history"]
        n_seen = int(args.n_train * (1 - model.card["train_config"]["val_frac"])) * len(history)
        rows.append((f"train {args.model} (incl. preprocessing, validation; {len(history)} epochs)", t.rate(n_seen)))
        with timed() as t:
            model.predict_proba(test_csv)
        rows.append(("predict a CSV file (load + preprocess + network + calibration)", t.rate(len(data))))
        with timed() as t:
            model.predict_proba(test_csv)
        rows.append(("predict the same file again (views cached)", t.rate(len(data))))
        serve, serve_cpu = [], []
        for batch in serve_sets:
            body = {"objects": [{"id": f"star-{i}", "flux": [round(float(v), 2) for v in row]}
                                for i, row in enumerate(batch)]}
            c0 = cpu_seconds()
            with timed() as t:
                model.predict_proba(task.parse_request(body))
            serve.append(t.seconds)
            serve_cpu.append(cpu_seconds() - c0)
        rows.append(("serve 256 light curves from JSON, seconds (median of 3 distinct sets)",
                     round(statistics.median(serve), 2)))
        rows.append(("  the same, CPU seconds (one idle core; upper bound for two)",
                     round(statistics.median(serve_cpu), 2)))
    print(f"\ntransits benchmark — torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"device {'cuda' if torch.cuda.is_available() else 'cpu'}, cores {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print_table(["step", "light curves/s"], [*rows, ("peak resident memory (MiB)", float(round(peak_rss_mib())))])


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
