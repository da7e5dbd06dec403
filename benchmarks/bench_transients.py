"""Figures of the transients (PLAsTiCC) task on the real training set.

    python benchmarks/bench_transients.py cv --data /work/shared/data/plasticc --models lgbm \\
        [--folds 5] [--option num_leaves=31 ...] [--out /tmp/transients_cv] [--direct]
    python benchmarks/bench_transients.py features --data /work/shared/data/plasticc [--n 2000]
    python benchmarks/bench_transients.py throughput --run RUN_DIR --data /work/shared/data/plasticc

``cv``: stratified k-fold cross-validation → PLAsTiCC weighted log-loss (14 classes) per model,
mean ± std over folds, accuracy, and ECE, before and after calibration. Each fold's training part
is split 80/20 (stratified) into fit and validation sets, as ``skysift.train`` does: early stopping
and the bias-corrected temperature scaling both use the validation part only; the held-out fold is
touched once, for the figures. When ``skysift.transients.task`` exists every model goes through
``skysift.train`` + ``Model.predict_proba`` (the same code for trees and networks); ``--direct``
(or a checkout without the task) runs the LightGBM estimator on features computed once. Out-of-fold
probabilities are written to ``--out/oof_<model>.csv`` for blending later.

``outer``: the figure of ``benchmarks/protocol.md``. The frozen outer test split
``benchmarks/splits/plasticc_outer_test.json`` (1,570 objects, 20 %) is set aside first; the tree
settings are re-selected by an inner stratified k-fold CV on the other 6,278 objects only (``--grid``,
by default the leaf counts the ladder below considered, at the default learning rate); the winner is
trained through ``skysift.train`` on those 6,278 (its own validation split for early stopping and
calibration, ``test_frac=0``) and scored once on the outer test objects: weighted log-loss with a
percentile bootstrap 95 % interval over the test objects::

    python benchmarks/bench_transients.py outer --data /work/shared/data/plasticc --out OUT

``features``: feature extraction CPU time per object (ms) for each feature set, 2 threads.
``throughput``: objects/s of ``Model.predict_proba`` on the data, load excluded and included.

The ladder that chose the ``lgbm`` defaults (measured on the same 5 folds that ``cv`` reports, so
``cv``'s figure for ``lgbm`` is optimistic: see ``outer``; 5-fold CV, weighted log-loss of the raw probabilities,
LightGBM trained with inverse-frequency x Kaggle class weights, early stopping on the fold's 20 %
validation part; the spread over folds is ~0.03-0.04):

=====================================================================  =======
seed aggregates, 15 leaves / depth 6, lr 0.05                           1.116
full (seed + light-curve per band + peak physics + period), same trees  ~0.573 (lr 0.1)
  ... 63 bins instead of 255                                            0.563
  ... 7 leaves / depth 4                                                0.538
  + per-band flux interpolated at -30..+100 d around the peak           0.508
    (the same epochs in the rest frame + rest-frame Bazin times         0.519, dropped)
  5 leaves / depth 3 (lr 0.1)                                           0.498
  5 leaves / depth 3, lr 0.05  (the defaults)                           0.496
=====================================================================  =======

Parsed light curves and features are cached as ``.npz`` under ``$SKYSIFT_BENCH_CACHE``
(default ``/tmp/skysift_bench_cache``) so that repeated runs do not re-parse 1.4 M rows.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import bootstrap_ci, fmt_ci, outer_mask, parse_options, print_table, timed

CACHE = Path(os.environ.get("SKYSIFT_BENCH_CACHE", "/tmp/skysift_bench_cache"))


# ---- real data ------------------------------------------------------------------------------------
def _find_files(path: Path) -> tuple[Path, Path]:
    """(light curves, metadata) files of a PLAsTiCC folder: unblinded or Kaggle layout."""
    for lcs, meta in (("plasticc_train_lightcurves.csv.gz", "plasticc_train_metadata.csv.gz"),
                      ("training_set.csv", "training_set_metadata.csv")):
        if (path / lcs).exists() and (path / meta).exists():
            return path / lcs, path / meta
    sys.exit(f"error: {path}: no PLAsTiCC training light curves + metadata found")


def read_plasticc(path: str | Path):
    """``(ids (N,), targets (N,) int, LightCurves)`` of a PLAsTiCC training folder.

    Uses ``skysift.transients.io`` when it exists; otherwise reads the CSVs here (fields padded with
    spaces, ``-9`` for missing values in the unblinded release). ``hostgal_specz`` is dropped: the
    test set mostly lacks it, so no feature may use it.
    """
    import pandas as pd

    from skysift.transients.data import META_COLUMNS, LightCurves

    lcs_file, meta_file = _find_files(Path(path))
    key = hashlib.sha1(f"{lcs_file.resolve()}:{lcs_file.stat().st_mtime}".encode()).hexdigest()[:12]
    cached = CACHE / f"lc_{key}.npz"
    if cached.exists():
        z = np.load(cached)
        lc = LightCurves(z["offsets"], z["mjd"], z["passband"], z["flux"], z["flux_err"], z["detected"],
                         {c: z[f"meta_{c}"] for c in META_COLUMNS})
        return z["ids"], z["y"], lc
    obs = pd.read_csv(lcs_file, skipinitialspace=True).rename(columns={"detected_bool": "detected"})
    meta = pd.read_csv(meta_file, skipinitialspace=True).rename(columns={"ddf_bool": "ddf"})
    meta = meta.set_index("object_id")
    for c in ("hostgal_photoz", "hostgal_photoz_err", "distmod", "mwebv"):
        meta[c] = meta[c].where(meta[c] != -9)  # the unblinded release's missing-value sentinel
    meta = meta.drop(columns=["hostgal_specz"])
    obs = obs.sort_values(["object_id", "mjd"], kind="stable")
    ids, lc = LightCurves.from_frame(obs, meta)
    y = meta.loc[ids, "target"].to_numpy(dtype=np.int64)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp.npz")
    np.savez(tmp, ids=ids, y=y, offsets=lc.offsets, mjd=lc.mjd, passband=lc.passband, flux=lc.flux,
             flux_err=lc.flux_err, detected=lc.detected, **{f"meta_{c}": lc.meta[c] for c in META_COLUMNS})
    os.replace(tmp, cached)
    return ids, y, lc


def cached_features(path: str | Path, lc, feature_set: str) -> tuple[np.ndarray, list[str]]:
    from skysift.transients import features as F

    lcs_file, _ = _find_files(Path(path))
    src = Path(F.__file__).read_bytes()  # a change of the feature code invalidates the cache
    key = hashlib.sha1(f"{lcs_file.resolve()}:{lcs_file.stat().st_mtime}:{feature_set}".encode() + src
                       ).hexdigest()[:12]
    cached = CACHE / f"features_{feature_set}_{key}.npz"
    if cached.exists():
        z = np.load(cached)
        return z["X"], [str(n) for n in z["names"]]
    X, names = F.extract_features(lc, feature_set, n_jobs=2)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp.npz")
    np.savez(tmp, X=X, names=np.array(names))
    os.replace(tmp, cached)
    return X, names


# ---- cross-validation -----------------------------------------------------------------------------
def weighted_temperature(logits, y, w_class, n_classes):
    """Temperature + per-class bias fitted to the *class-weighted* cross-entropy (the PLAsTiCC
    metric) on the validation part — a variant of the core's calibration, which fits the plain
    cross-entropy and so pulls probabilities back towards the frequent classes. Here for the report."""
    import torch
    import torch.nn.functional as Fn

    z = torch.as_tensor(logits, dtype=torch.float64)
    t = torch.as_tensor(y, dtype=torch.long)
    counts = np.bincount(y, minlength=n_classes).astype(float)
    cw = torch.as_tensor(np.where(counts > 0, w_class / np.maximum(counts, 1), 0.0))
    present = torch.as_tensor((counts > 0).astype(float))
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t, bias], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        nll = Fn.cross_entropy(z / log_t.exp() + bias * present, t, reduction="none")
        loss = (nll * cw[t]).sum() / cw[t].sum() + 1e-3 * (bias * present).pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.exp().detach()), (bias * present).detach().numpy()


def _fold_splits(y, folds, seed):
    from sklearn.model_selection import StratifiedKFold, train_test_split

    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (tr, te) in enumerate(skf.split(np.zeros(len(y)), y)):
        fit, val = train_test_split(tr, test_size=0.2, stratify=y[tr], random_state=seed + k)
        yield k, np.sort(fit), np.sort(val), te


def _summarise(name, y_t, oof, oof_cal, oof_wcal, class_targets, fold_of, rows):
    from skysift.core.calibration import expected_calibration_error
    from skysift.transients.metrics import plasticc_log_loss

    col_of = {t: j for j, t in enumerate(class_targets)}
    yi = np.array([col_of[t] for t in y_t])
    for label, P in (("raw", oof), ("calibrated (core: bias-corrected T)", oof_cal),
                     ("calibrated (class-weighted T)", oof_wcal)):
        if P is None:
            continue
        per_fold = [plasticc_log_loss(y_t[fold_of == k], P[fold_of == k], class_targets)
                    for k in np.unique(fold_of)]
        acc = [float((P[fold_of == k].argmax(1) == yi[fold_of == k]).mean()) for k in np.unique(fold_of)]
        ece = [expected_calibration_error(P[fold_of == k], yi[fold_of == k]) for k in np.unique(fold_of)]
        rows.append((name, label, np.mean(per_fold), np.std(per_fold), np.mean(acc), np.mean(ece)))


def _read_indexed(args):
    """The labelled set of ``args.data`` with its classes indexed (``cv`` and ``outer``): ids, targets,
    light curves, the sorted class targets, their names, each object's class index, the class count,
    and ``args.out`` (created)."""
    ids, y_t, lc = read_plasticc(args.data)
    class_targets = sorted(set(y_t.tolist()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return (ids, y_t, lc, class_targets, [str(t) for t in class_targets], np.searchsorted(class_targets, y_t),
            len(class_targets), out)


def cmd_cv(args) -> None:
    from skysift.core.calibration import fit_bias_corrected_temperature, softmax
    from skysift.transients.gbm import LightGBMEstimator, class_metric_weights
    from skysift.transients.metrics import per_class_log_loss

    ids, y_t, lc, class_targets, class_names, yi, k, out = _read_indexed(args)
    opts = parse_options(args.option)
    use_task = not args.direct
    if use_task:
        try:
            import skysift.transients.task  # noqa: F401
        except ImportError:
            print("skysift.transients.task not found: running the LightGBM estimator directly")
            use_task = False
    rows = []
    for model in args.models.split(","):
        t0 = time.time()
        oof = np.zeros((len(y_t), k))
        oof_cal, oof_wcal = np.zeros_like(oof), np.zeros_like(oof)
        fold_of = np.zeros(len(y_t), np.int64)
        iters = []
        if not use_task:
            if model != "lgbm":
                sys.exit(f"error: model {model!r} needs skysift.transients.task (only lgbm runs directly)")
            fs = opts.get("feature_set", "full")
            X, _ = cached_features(args.data, lc, fs)
        for fold, fit, val, te in _fold_splits(yi, args.folds, args.seed):
            fold_of[te] = fold
            if use_task:
                p_raw, p_cal, logits_val, logits_te = _fold_via_task(model, ids, yi, lc, class_names,
                                                                     fit, val, te, opts, out, fold, args)
            else:
                est = LightGBMEstimator(opts, k, class_names)
                sw = _inverse_frequency(yi[fit], k)[yi[fit]]
                est.fit(X[fit], yi[fit], X[val], yi[val], sample_weight=sw)
                iters.append(est.best_iteration)
                logits_val, logits_te = est.predict_logits(X[val]), est.predict_logits(X[te])
                temp, bias = fit_bias_corrected_temperature(logits_val, yi[val], k)
                p_raw, p_cal = softmax(logits_te), softmax(logits_te, temp, bias)
            oof[te], oof_cal[te] = p_raw, p_cal
            if logits_val is not None:
                wt, wb = weighted_temperature(logits_val, yi[val], class_metric_weights(class_names, k), k)
                oof_wcal[te] = softmax(logits_te, wt, wb)
            print(f"  {model} fold {fold}: {time.time() - t0:.0f} s", flush=True)
        has_w = not use_task  # the class-weighted variant needs the validation logits
        _summarise(model, y_t, oof, oof_cal, oof_wcal if has_w else None, class_targets, fold_of, rows)
        import pandas as pd

        frame = pd.DataFrame(oof_cal, columns=[f"class_{c}" for c in class_names])
        frame.insert(0, "fold", fold_of)
        frame.insert(0, "target", y_t)
        frame.insert(0, "object_id", ids)
        raw = pd.DataFrame(oof, columns=[f"raw_class_{c}" for c in class_names])
        pd.concat([frame, raw], axis=1).to_csv(out / f"oof_{model}.csv", index=False)
        per = per_class_log_loss(y_t, oof_cal, class_targets)
        print(f"{model}: {time.time() - t0:.0f} s" + (f", best iterations {iters}" if iters else "")
              + "\n  per-class log-loss (calibrated): "
              + ", ".join(f"{t}:{v:.2f}" for t, (_, v) in per.items()))
    print(f"\nPLAsTiCC {args.folds}-fold CV ({len(y_t)} objects, {k} classes), options {opts or '{}'}")
    print(f"| {'model':<12} | {'probabilities':<36} | {'weighted log-loss':>19} | {'accuracy':>8} | {'ECE':>6} |")
    print(f"|{'-' * 14}|{'-' * 38}|{'-' * 21}|{'-' * 10}|{'-' * 8}|")
    for name, label, m, s, acc, ece in rows:
        print(f"| {name:<12} | {label:<36} | {m:>10.4f} ± {s:<6.4f} | {acc:>8.4f} | {ece:>6.4f} |")


def _inverse_frequency(y, k):
    from skysift.core.sampling import class_weights

    return class_weights(y, k)


def _fold_via_task(model, ids, yi, lc, class_names, fit, val, te, opts, out, fold, args):
    """One fold through ``skysift.train`` + ``Model.predict_proba``: train on fit+val (the core
    re-splits it 80/20 itself with ``val_frac``), predict the held-out fold."""
    import skysift
    from skysift.core.calibration import softmax
    from skysift.core.data import TaskData

    tr = np.sort(np.concatenate([fit, val]))
    train_data = TaskData(ids[tr], lc.take(tr), yi[tr], list(class_names), source=str(args.data))
    test_data = TaskData(ids[te], lc.take(te), yi[te], list(class_names), source=str(args.data))
    run_dir = Path(tempfile.mkdtemp(prefix=f"cv_{model}_{fold}_", dir=out))
    train_opts = {k: v for k, v in opts.items() if k in _TRAIN_KEYS}
    model_params = {k: v for k, v in opts.items() if k not in _TRAIN_KEYS}
    m = skysift.train("transients", train_data, run_dir, model=model, model_params=model_params,
                      seed=args.seed + fold, progress=False, **train_opts)
    logits_te = m.predict_logits(test_data)
    return softmax(logits_te), m.calibrate(logits_te), None, logits_te


_TRAIN_KEYS = {"epochs", "batch_size", "lr", "weight_decay", "patience", "val_frac", "sampler", "loss",
               "focal_gamma", "resample", "augment", "tta", "calibrate", "max_time_minutes", "num_workers"}


# ---- the protocol's figure: a frozen outer test split, settings re-selected on the rest ------------
_GRID = [{"num_leaves": 5, "max_depth": 3}, {"num_leaves": 7, "max_depth": 4}, {"num_leaves": 15, "max_depth": 6}]


def cmd_outer(args) -> None:
    import skysift
    from skysift.core.calibration import softmax
    from skysift.core.data import TaskData
    from skysift.transients.gbm import LightGBMEstimator
    from skysift.transients.metrics import per_class_log_loss, plasticc_log_loss

    ids, y_t, lc, class_targets, class_names, yi, k, out = _read_indexed(args)
    is_test = outer_mask(ids, args.split)
    rest, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    print(f"frozen outer split {args.split}: {len(rest)} objects for selection and training, "
          f"{len(test)} held out", flush=True)
    grid = json.loads(args.grid) if args.grid else _GRID
    base = parse_options(args.option)

    # inner selection: only the rest's rows of the feature matrix are ever read here
    X, _ = cached_features(args.data, lc, "full")
    Xr, yr, tr_t = X[rest], yi[rest], y_t[rest]
    inner = []
    for cfg in grid:
        t0, losses = time.time(), []
        for _, fit, val, te in _fold_splits(yr, args.inner_folds, args.seed):
            est = LightGBMEstimator({**base, **cfg}, k, class_names)
            est.fit(Xr[fit], yr[fit], Xr[val], yr[val], sample_weight=_inverse_frequency(yr[fit], k)[yr[fit]])
            losses.append(plasticc_log_loss(tr_t[te], softmax(est.predict_logits(Xr[te])), class_targets))
        inner.append({"params": cfg, "inner_loss_mean": float(np.mean(losses)), "inner_loss_std": float(np.std(losses)),
                      "inner_losses": losses, "seconds": round(time.time() - t0, 1)})
        print(f"  inner {args.inner_folds}-fold CV {cfg}: {np.mean(losses):.4f} ± {np.std(losses):.4f} "
              f"({time.time() - t0:.0f} s)", flush=True)
    chosen = min(inner, key=lambda r: r["inner_loss_mean"])["params"]
    print(f"chosen on the inner folds: {chosen}", flush=True)

    # the final fit: the package's own training path on the rest, scored once on the outer test
    t0 = time.time()
    train_data = TaskData(ids[rest], lc.take(rest), yi[rest], list(class_names), source=str(args.data))
    test_data = TaskData(ids[test], lc.take(test), yi[test], list(class_names), source=str(args.data))
    m = skysift.train("transients", train_data, out / "run", model="lgbm", model_params={**base, **chosen},
                      seed=args.seed, test_frac=0.0, progress=False)
    logits = m.predict_logits(test_data)
    fit_s = time.time() - t0
    y_te = y_t[test]
    metric = lambda y, p: plasticc_log_loss(y, p, class_targets)  # noqa: E731
    acc = lambda y, p: float((p.argmax(1) == np.searchsorted(class_targets, y)).mean())  # noqa: E731
    res = {"split": args.split, "n_selection": int(len(rest)), "n_test": int(len(test)), "inner": inner,
           "chosen": chosen, "fit_seconds": round(fit_s, 1), "n_boot": args.n_boot}
    for label, P in (("raw", softmax(logits)), ("calibrated", m.calibrate(logits))):
        res[label] = {"weighted_log_loss_ci": bootstrap_ci(metric, y_te, P, n_boot=args.n_boot),
                      "accuracy_ci": bootstrap_ci(acc, y_te, P, n_boot=args.n_boot),
                      "per_class": {str(t): round(v, 4)
                                    for t, (_, v) in per_class_log_loss(y_te, P, class_targets).items()}}
    from skysift.core.io import write_json

    write_json(out / "outer.json", res)
    print(f"\nPLAsTiCC, frozen outer test split ({len(test)} objects), lgbm {chosen} chosen by inner "
          f"{args.inner_folds}-fold CV on the other {len(rest)}; percentile bootstrap 95 % CI "
          f"({args.n_boot} resamples)")
    print("| probabilities | weighted log-loss [95 % CI] | accuracy [95 % CI] |")
    print("|---|---|---|")
    for label in ("raw", "calibrated"):
        print(f"| {label} | {fmt_ci(res[label]['weighted_log_loss_ci'])} | {fmt_ci(res[label]['accuracy_ci'])} |")
    print(f"final fit + predict {fit_s:.0f} s")


# ---- features + throughput ------------------------------------------------------------------------
def cmd_features(args) -> None:
    from skysift.transients.features import FEATURE_SETS, extract_features

    _, _, lc = read_plasticc(args.data)
    rng = np.random.default_rng(0)
    sub = lc.take(np.sort(rng.choice(len(lc), size=min(args.n, len(lc)), replace=False)))
    print(f"\nfeature extraction on {len(sub)} real objects ({sub.n_observations} observations), 2 threads")
    print(f"| {'feature set':<12} | {'features':>8} | {'CPU ms/object':>13} | {'wall ms/object':>14} |")
    print(f"|{'-' * 14}|{'-' * 10}|{'-' * 15}|{'-' * 16}|")
    for fs in FEATURE_SETS:
        extract_features(sub.take(np.arange(min(20, len(sub)))), fs)  # warm-up: imports, thread pool
        c, w = time.process_time(), time.perf_counter()
        X, names = extract_features(sub, fs, n_jobs=2)
        c, w = time.process_time() - c, time.perf_counter() - w
        print(f"| {fs:<12} | {len(names):>8} | {1e3 * c / len(sub):>13.3f} | {1e3 * w / len(sub):>14.3f} |")


def cmd_throughput(args) -> None:
    import skysift

    model = skysift.load(args.run)
    task = skysift.get_task("transients")
    with timed() as t_load:
        data = task.load(args.data, labelled=False)
    model.predict_proba(data.subset(np.arange(min(10, len(data)))))  # warm-up
    with timed() as t_pred:
        model.predict_proba(data)
    print(f"\npredict throughput of {args.run} on {len(data)} objects")
    print_table(["step", "objects/s"], [("predict_proba (load excluded)", t_pred.rate(len(data))),
                                        ("load + predict_proba", len(data) / (t_pred.seconds + t_load.seconds))])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    cv = sub.add_parser("cv")
    cv.add_argument("--data", default="/work/shared/data/plasticc")
    cv.add_argument("--models", default="lgbm")
    cv.add_argument("--folds", type=int, default=5)
    cv.add_argument("--seed", type=int, default=0)
    cv.add_argument("--option", action="append", default=[], help="k=v, a model or training option")
    cv.add_argument("--out", default="/tmp/transients_cv")
    cv.add_argument("--direct", action="store_true", help="run LightGBM on cached features, not skysift.train")
    ou = sub.add_parser("outer")
    ou.add_argument("--data", default="/work/shared/data/plasticc")
    ou.add_argument("--split", default="plasticc_outer_test", help="frozen outer test split under benchmarks/splits/")
    ou.add_argument("--grid", default="", help="JSON list of lgbm settings to select from (default: leaves 5/7/15)")
    ou.add_argument("--inner-folds", type=int, default=3)
    ou.add_argument("--seed", type=int, default=0)
    ou.add_argument("--n-boot", type=int, default=2000)
    ou.add_argument("--option", action="append", default=[], help="k=v, an lgbm option for every setting")
    ou.add_argument("--out", default="/tmp/transients_outer")
    fe = sub.add_parser("features")
    fe.add_argument("--data", default="/work/shared/data/plasticc")
    fe.add_argument("--n", type=int, default=2000)
    th = sub.add_parser("throughput")
    th.add_argument("--run", required=True)
    th.add_argument("--data", default="/work/shared/data/plasticc")
    args = ap.parse_args(argv)
    np.seterr(all="ignore")
    {"cv": cmd_cv, "outer": cmd_outer, "features": cmd_features, "throughput": cmd_throughput}[args.cmd](args)


if __name__ == "__main__":
    main()
