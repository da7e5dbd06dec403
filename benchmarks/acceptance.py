"""Acceptance run for one task: simulate train + fresh test (another seed), train each model the
same way, evaluate on the test set, print a table.

    python benchmarks/acceptance.py transits --n-train 8000 --n-test 4000 --epochs 30 \
        --models resnet1d,seed-cnn --out runs/acceptance
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import skysift
from _common import print_table
from skysift.core.training import fit


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("task")
    ap.add_argument("--n-train", type=int, required=True)
    ap.add_argument("--n-test", type=int, required=True)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--models", default=None, help="comma-separated model names (default: task default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/acceptance")
    ap.add_argument("--option", action="append", default=[], help="extra TrainConfig option NAME=JSON")
    args = ap.parse_args()
    task = skysift.get_task(args.task)
    out = Path(args.out) / args.task
    t0 = time.time()
    train = task.simulate(out / "train", n=args.n_train, seed=args.seed)
    test = task.simulate(out / "test", n=args.n_test, seed=args.seed + 1000)
    print(f"simulated {args.n_train} + {args.n_test} objects in {time.time() - t0:.0f} s", flush=True)
    options = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.option)}
    rows = []
    for name in (args.models or task.default_model).split(","):
        t1 = time.time()
        model = fit(task, train, out / f"run_{name.replace(':', '_')}", model=name, epochs=args.epochs,
                    seed=args.seed, progress=False, **options)
        train_s = time.time() - t1
        m = model.evaluate(test, plots_dir=out / f"plots_{name.replace(':', '_')}")
        rows.append({"model": name, "train_s": round(train_s, 1),
                     **{k: v for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}})
        print(json.dumps(rows[-1]), flush=True)
    keys = ["model", "train_s", "n", "roc_auc", "pr_auc", "f1", "accuracy", "macro_f1", "weighted_log_loss", "ece"]
    keys = [k for k in keys if any(k in r for r in rows)]
    print_table(keys, [[r.get(k, "") for k in keys] for r in rows], floatfmt=".4f")


if __name__ == "__main__":
    main()
