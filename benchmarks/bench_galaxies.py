"""Benchmarks of the galaxies task on CPU.

Throughput (training and prediction images/s, peak memory)::

    nice -n 10 .venv/bin/python benchmarks/bench_galaxies.py --threads 2 throughput --n 512

Acceptance on the real Galaxy Zoo 1 cutouts, under ``benchmarks/protocol.md``: the test objects are
the frozen outer split ``benchmarks/splits/gz1_outer_test.json`` (1,133 ids no sweep reads); each
model is trained on the rest, the core splitting its validation set off that part (``test_frac=0``:
the test split is brought here), and accuracy / macro-F1 come with percentile bootstrap 95 %
intervals over the test objects::

    nice -n 10 .venv/bin/python benchmarks/bench_galaxies.py gz1 --scheme three --out runs/gz1

Test probabilities are saved (``proba_<model>.npz``: ids, labels, probabilities) so that two models
can be compared paired on the same objects: the candidate's accuracy minus the default's, with a
paired bootstrap 95 % interval (a candidate replaces the default only if it excludes 0)::

    .venv/bin/python benchmarks/bench_galaxies.py compare RUN/three/proba_galaxy-timm.npz RUN2/three/proba_X.npz

Acceptance on simulated data (fresh test set of another seed)::

    nice -n 10 .venv/bin/python benchmarks/bench_galaxies.py sim --n-train 3000 --n-test 1000

Training images/s counts the full training step as the core runs it: dataset items (brightness,
normalisation), collation, batch augmentation (symmetry + rotation + crop), forward, loss,
backward and AdamW step. Prediction images/s is ``Model``-style batched inference (no TTA, then with
the 8-symmetry TTA). Peak memory is the process's maximum resident set size.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from _common import bootstrap_ci, cpu_seconds, fmt_ci, outer_mask, peak_rss_mib, timed

# Must be set before torch loads libgomp. With the default (active) wait policy, OpenMP threads spin at
# every barrier; on a shared 2-core machine a descheduled partner thread then stalls each op, and we
# measured regnetx_002 training at 16 images/s with 2 threads vs 242 images/s with passive waiting.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
from torch.utils.data import DataLoader

from skysift.core.inference import predict_logits
from skysift.core.losses import ClassificationLoss
from skysift.core.task import get_task


def bench_model(task, name: str, data, batch_size: int, train_batches: int) -> dict:
    spec = task.models.get(name)
    params = dict(spec.defaults)
    stats = task.fit_preprocessing(data, params)
    net = spec.build(params, stats, data.n_classes)
    ds_train = task.dataset(data, stats, params, train=True)
    loader = DataLoader(ds_train, batch_size=batch_size, shuffle=True, drop_last=True)
    augment = task.batch_augment(params)
    gen = torch.Generator().manual_seed(0)
    loss_fn = ClassificationLoss("ce")
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net.train()
    seen, t0, batches = 0, None, 0
    while batches < train_batches + 1:
        for x, y in loader:
            if batches == 1:  # the first batch pays one-off allocation costs
                t0, seen = time.perf_counter(), 0
            x, y = augment(x, y, gen)
            loss = loss_fn(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(x)
            batches += 1
            if batches >= train_batches + 1:
                break
    train_ips = seen / (time.perf_counter() - t0)
    ds_eval = task.dataset(data, stats, params, train=False)
    with timed() as t:
        predict_logits(net, ds_eval, batch_size=256, device=torch.device("cpu"))
    predict_ips = t.rate(len(ds_eval))
    with timed() as t:
        predict_logits(net, ds_eval, batch_size=256, device=torch.device("cpu"), tta_views=task.tta_views(params))
    tta_ips = t.rate(len(ds_eval))
    n_params = sum(p.numel() for p in net.parameters())
    return {"model": name, "params_M": n_params / 1e6, "train_img_s": train_ips, "predict_img_s": predict_ips,
            "predict_tta8_img_s": tta_ips}


def throughput(args) -> None:
    task = get_task("galaxies")
    with tempfile.TemporaryDirectory() as tmp:
        with timed() as t:
            path = task.simulate(Path(tmp), n=args.n, seed=0)
        sim_s = t.seconds
        data = task.load(path, labelled=True)
    print(f"torch threads: {torch.get_num_threads()}; simulated {args.n} galaxies in {sim_s:.1f} s "
          f"({args.n / sim_s:.0f} images/s)")
    print("| model | params (M) | train images/s | predict images/s | predict + 8-fold TTA images/s |")
    print("|---|---|---|---|---|")
    for name in args.models.split(","):
        r = bench_model(task, name, data, args.batch_size, args.train_batches)
        print(f"| {r['model']} | {r['params_M']:.2f} | {r['train_img_s']:.0f} | {r['predict_img_s']:.0f} | "
              f"{r['predict_tta8_img_s']:.0f} |", flush=True)
    print(f"peak memory (max RSS): {peak_rss_mib():.0f} MiB")


def _row(name: str, train_s: float, m: dict) -> dict:
    return {"model": name, "train_s": round(train_s, 1), "n_test": m["n"], "accuracy": round(m["accuracy"], 4),
            "macro_f1": round(m["macro_f1"], 4), "roc_auc": m["roc_auc"] and round(m["roc_auc"], 4),
            "ece": round(m["ece"], 4), "roc_auc_per_class": m["roc_auc_per_class"],
            "confusion_matrix": m["confusion_matrix"]}


def _accuracy(y, p):
    return float((p.argmax(1) == y).mean())


def _macro_f1(y, p):
    from sklearn.metrics import f1_score

    return float(f1_score(y, p.argmax(1), average="macro", labels=np.arange(p.shape[1])))


def _intervals(y: np.ndarray, proba: np.ndarray) -> dict:
    """Percentile bootstrap 95 % intervals over the test objects (2,000 resamples)."""
    return {"accuracy_ci": bootstrap_ci(_accuracy, y, proba), "macro_f1_ci": bootstrap_ci(_macro_f1, y, proba)}


def _report(rows: list[dict], out: Path) -> None:
    from skysift.core.io import write_json

    write_json(out / "results.json", rows)
    print("| model | train s (CPU s) | n test | accuracy [95 % CI] | macro-F1 [95 % CI] | mean OvR ROC-AUC | ECE "
          "| load avg |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['train_s']} ({r['train_cpu_s']}) | {r['n_test']} | {fmt_ci(r['accuracy_ci'])} | "
              f"{fmt_ci(r['macro_f1_ci'])} | {r['roc_auc']:.3f} | {r['ece']:.3f} | {r['loadavg_1_5_15'][0]} |")


def _train_eval(task, train, test, out: Path, models: list[str], options: dict, saliency: bool) -> list[dict]:
    from skysift.core.training import fit
    from skysift.galaxies.plots import saliency_maps

    rows = []
    for name in models:
        tag = name.replace(":", "_")
        t0, c0 = time.time(), cpu_seconds()
        model = fit(task, train, out / f"run_{tag}", model=name, progress=False, **options)
        train_s, cpu_s = time.time() - t0, cpu_seconds() - c0
        proba = model.predict_proba(test)
        m = model.evaluate(test, plots_dir=out / f"plots_{tag}", proba=proba)
        np.savez(out / f"proba_{tag}.npz", ids=test.ids.astype(str), y=test.hard_labels, proba=proba)
        if saliency:
            saliency_maps(model, test, np.arange(8), out / f"plots_{tag}" / "saliency.png")
        rows.append({**_row(name, train_s, m), **_intervals(test.hard_labels, proba), "train_cpu_s": round(cpu_s, 1),
                     "epochs_run": len(model.card.get("history", []) or []),
                     "loadavg_1_5_15": [round(v, 2) for v in os.getloadavg()]})
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "confusion_matrix"}), flush=True)
    return rows


def gz1(args) -> None:
    from skysift.core.data import TaskData

    task = get_task("galaxies")
    out = Path(args.out) / args.scheme
    t0 = time.time()
    data: TaskData = task.load(Path(args.data), labelled=True, scheme=args.scheme, image_size=args.size,
                               crop=args.crop)
    print(f"loaded {len(data)} GZ1 cutouts at {args.size} px (crop {data.meta['card']['crop']}) in "
          f"{time.time() - t0:.1f} s; classes {data.class_counts()}", flush=True)
    is_test = outer_mask(data.ids, args.split)
    train, test = data.subset(np.flatnonzero(~is_test)), data.subset(np.flatnonzero(is_test))
    print(f"frozen outer split {args.split}: {len(train)} for training (the core takes 20 % of it for "
          f"validation), {len(test)} held out: {test.class_counts()}", flush=True)
    # the test split is the frozen one above: the core must not carve a second one out of the training part
    options = {"epochs": args.epochs, "seed": args.seed, "tta": args.tta, "test_frac": 0.0,
               **json.loads(args.options)}
    rows = _train_eval(task, train, test, out, args.models.split(","), options, saliency=True)
    _report(rows, out)


def sim(args) -> None:
    task = get_task("galaxies")
    out = Path(args.out)
    t0 = time.time()
    train = task.simulate(out / "train", n=args.n_train, seed=args.seed)
    test = task.simulate(out / "test", n=args.n_test, seed=args.seed + 1000)
    print(f"simulated {args.n_train} + {args.n_test} galaxies in {time.time() - t0:.0f} s", flush=True)
    options = {"epochs": args.epochs, "seed": args.seed, "tta": args.tta, "test_frac": 0.0,
               **json.loads(args.options)}
    rows = _train_eval(task, task.load(train, labelled=True), task.load(test, labelled=True), out,
                       args.models.split(","), options, saliency=True)
    _report(rows, out)


def compare(args) -> None:
    a, b = np.load(args.default), np.load(args.candidate)
    if not (np.array_equal(a["ids"], b["ids"]) and np.array_equal(a["y"], b["y"])):
        raise SystemExit("error: the two files hold different test objects")
    y = a["y"]
    for name, metric in (("accuracy", _accuracy), ("macro-F1", _macro_f1)):
        ci = bootstrap_ci(lambda yy, pa, pb, m=metric: m(yy, pb) - m(yy, pa), y, a["proba"], b["proba"])
        print(f"{name}: default {metric(y, a['proba']):.3f}, candidate {metric(y, b['proba']):.3f}, "
              f"candidate - default {fmt_ci(ci)} (paired bootstrap 95 % CI, {len(y)} objects)")
    ens = (a["proba"] + b["proba"]) / 2
    print(f"mean of the two models' probabilities: accuracy {fmt_ci(bootstrap_ci(_accuracy, y, ens))}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--n", type=int, default=512, help="simulated images (64 px)")
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--train-batches", type=int, default=6)
    t.add_argument("--models", default="galaxy-timm,seed-keras-cnn,seed-oxford-cnn")
    for name in ("gz1", "sim"):
        a = sub.add_parser(name)
        a.add_argument("--models", default="galaxy-timm,seed-keras-cnn,seed-oxford-cnn")
        a.add_argument("--epochs", type=int, default=None)
        a.add_argument("--seed", type=int, default=0)
        a.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                       help="8-symmetry TTA at evaluation (default: the task's, on)")
        a.add_argument("--options", default="{}", help="extra TrainConfig options as JSON")
        a.add_argument("--out", default=f"runs/galaxies_{name}")
    g = sub.choices["gz1"]
    g.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/galaxyzoo/gz1"))
    g.add_argument("--scheme", default="three", choices=["three", "four", "six"])
    g.add_argument("--size", type=int, default=64)
    g.add_argument("--crop", type=float, default=None, help="central fraction kept (default: the layout's)")
    g.add_argument("--split", default="gz1_outer_test", help="frozen outer test split under benchmarks/splits/")
    c = sub.add_parser("compare")
    c.add_argument("default", help="proba_<model>.npz of the default")
    c.add_argument("candidate", help="proba_<model>.npz of the candidate, same test objects")
    s = sub.choices["sim"]
    s.add_argument("--n-train", type=int, default=3000)
    s.add_argument("--n-test", type=int, default=1000)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    {"throughput": throughput, "gz1": gz1, "sim": sim, "compare": compare}[args.cmd](args)


if __name__ == "__main__":
    main()
