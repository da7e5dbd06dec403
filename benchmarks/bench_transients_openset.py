"""Open-set (class 99) benchmark on the real PLAsTiCC training set.

PLAsTiCC's test set holds four classes absent from training (991 binary microlens, 992 ILOT,
993 Ca-rich transient, 994 pair-instability SN), scored together as class 99. To measure a
class-99 scorer without the test labels we hold *training* classes out, in pairs that resemble
those unknowns:

* ``6+95``  single-lens microlensing + SLSN-I (stand-ins for binary microlensing and PISNe:
  a galactic lensing event and a very slow, very luminous explosion);
* ``52+67`` SN Iax + SN Ia-91bg (faint, fast, peculiar thermonuclear SNe, like Ca-rich
  transients and ILOTs);
* ``15+64`` TDE + kilonova (rare extragalactic transients with distinctive colours/timescales);
* ``16+92`` eclipsing binary + RR Lyrae (periodic galactic variables: a new kind of variable star);
* ``53+88`` Mira + AGN (long-period / stochastic variables, galactic and extragalactic).

For each pair and seed: the objects of the 12 known classes are split 60/20/20 (stratified) into
train/validation/test; every held-out object joins the test split labelled 99. A LightGBM model on
the task's ``full`` features (class-balanced sample weights, early stopping on validation;
``skysift.transients.gbm``) gives 12-class logits, temperature-scaled on validation.
Each scorer is fitted on validation (known classes only) and the test split is scored with the
official weighted log-loss (``skysift.transients.metrics.plasticc_log_loss``, Kaggle weights,
class 99 ×2) over the 12 known columns + class 99.

The separation μ of the quantile-mapped scorers (see ``skysift.transients.openset``) cannot be
learnt from known classes; it is set *leave-one-pair-out*: when scoring a pair, μ is the mean
Gaussianised score of the unknowns of the *other* pairs (same seed), so no pair's own unknowns
tune its own result. ``--default-separation`` shows the fixed default instead.

    .venv/bin/python benchmarks/bench_transients_openset.py --seeds 0 1 2

Besides each scorer's mean ± std it prints the paired difference of each scorer to the seed's
Π(1−p) over the same runs (pair × seed) with a percentile bootstrap 95 % interval: the figure a
choice of default must rest on (``benchmarks/protocol.md``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from _common import bootstrap_ci, fmt_ci

HELD_OUT = {"6+95": (6, 95), "52+67": (52, 67), "15+64": (15, 64), "16+92": (16, 92), "53+88": (53, 88)}
DATA = Path(os.environ.get("SKYSIFT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "plasticc"


def _split(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    tr, rest = train_test_split(idx, test_size=0.4, stratify=y, random_state=seed)
    va, te = train_test_split(rest, test_size=0.5, stratify=y[rest], random_state=seed)
    return tr, va, te


def _lgbm_logits(X_tr, y_tr, X_va, y_va, X_te, class_names: list[str], seed: int,
                 options: dict) -> tuple[np.ndarray, np.ndarray]:
    """Known-class raw scores on validation and test: the task's ``lgbm`` estimator (class-balanced
    core weights × Kaggle weights, early stopping on validation), with ``options`` overriding its
    defaults (e.g. a larger learning rate to fit the benchmark in minutes on 2 cores)."""
    from skysift.core.sampling import class_weights
    from skysift.transients.gbm import MODEL_SPECS as GBM_SPECS

    spec = next(s for s in GBM_SPECS if s.name == "lgbm")
    k = len(class_names)
    est = spec.build({**spec.defaults, "seed": seed, **options}, {"class_names": class_names}, k)
    est.fit(X_tr, y_tr, X_va, y_va, sample_weight=class_weights(y_tr, k)[y_tr])
    return est.predict_logits(X_va), est.predict_logits(X_te)


def fit_pair(name: str, held: tuple[int, ...], X: np.ndarray, targets: np.ndarray, seed: int,
             options: dict, cache: Path | None) -> dict:
    """Split, train LightGBM on the known classes, temperature-scale on validation. Returns the
    pieces the scorers need (cached as .npz under ``cache``: the fit is the slow part)."""
    from skysift.core.calibration import fit_temperature

    known_mask = ~np.isin(targets, held)
    known_classes = np.array(sorted(set(targets[known_mask].tolist())))
    kidx = np.flatnonzero(known_mask)
    y_known = np.searchsorted(known_classes, targets[kidx])
    tr, va, te = _split(y_known, seed)
    tr, va, te_known = kidx[tr], kidx[va], kidx[te]
    te_all = np.concatenate([te_known, np.flatnonzero(~known_mask)])
    y = lambda rows: np.searchsorted(known_classes, targets[rows])  # noqa: E731
    key = f"{name}_s{seed}_" + "_".join(f"{k}{v}" for k, v in sorted(options.items()))
    path = cache / f"openset_{key}.npz" if cache else None
    t0 = time.time()
    if path is not None and path.exists():
        z = np.load(path)
        lv, lt = z["lv"], z["lt"]
    else:
        lv, lt = _lgbm_logits(X[tr], y(tr), X[va], y(va), X[te_all], [str(c) for c in known_classes], seed, options)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, lv=lv, lt=lt)
    temp = fit_temperature(lv, y(va))
    return {"pair": name, "seed": seed, "held": held, "known_classes": known_classes, "va": va, "te_all": te_all,
            "y_va": y(va), "lv": lv / temp, "lt": lt / temp, "temperature": temp,
            "fit_seconds": round(time.time() - t0, 1), "n_test_known": len(te_known),
            "n_test_unknown": int((~known_mask).sum())}


def _variants() -> dict:
    """Scorer name -> (factory, which vectors the distance scorers read)."""
    from skysift.transients.openset import (
        CombinedScorer,
        EnergyScorer,
        MahalanobisScorer,
        ProductMahalanobisScorer,
        ProductScorer,
    )

    return {
        "product": (ProductScorer, None),
        "product×maha-feat": (lambda: ProductMahalanobisScorer(transform="robust"), "features"),
        "product×maha-logit": (ProductMahalanobisScorer, "logits"),
        "energy": (EnergyScorer, None),
        "maha-feat": (lambda: MahalanobisScorer(transform="robust"), "features"),
        "maha-logit": (MahalanobisScorer, "logits"),
        "energy+maha-feat": (lambda: CombinedScorer(transform="robust"), "features"),
        "energy+maha-logit": (CombinedScorer, "logits"),
    }


def score_pair(fitted: dict, X: np.ndarray, targets: np.ndarray) -> dict:
    """Fit every scorer on validation, score the test split: weighted log-loss per scorer (with
    the default separation; ``main`` redoes the quantile-mapped ones with leave-one-pair-out μ)."""
    from skysift.transients.metrics import plasticc_log_loss
    from skysift.transients.openset import UNKNOWN_PRIOR, softmax, with_unknown

    f = fitted
    lv, lt, va, te_all = f["lv"], f["lt"], f["va"], f["te_all"]
    proba_te = softmax(lt)
    truth = np.where(np.isin(targets[te_all], f["held"]), 99, targets[te_all])
    cols = [*f["known_classes"].tolist(), 99]
    known_rows = truth != 99
    out = {k: f[k] for k in ("pair", "seed", "n_test_known", "n_test_unknown", "fit_seconds", "temperature")}
    # the closed-set model alone, on the known test objects (p99 = 0 would make the unknowns' loss infinite)
    out["closed_known_loss"] = plasticc_log_loss(truth[known_rows], proba_te[known_rows], f["known_classes"].tolist())
    out["loss"], out["z_unknown"], out["_scorers"] = {}, {}, {}
    for key, (make, vectors) in _variants().items():
        sc = make()
        fv, ft = {"features": (X[va], X[te_all]), "logits": (lv, lt), None: (None, None)}[vectors]
        sc.fit(lv, f["y_va"], fv)
        if key != "product":
            # the Gaussianised score whose separation μ the Gaussian model needs
            z = sc.mahalanobis.z(lt, ft) if key.startswith("product×") else sc.z(lt, ft)
            out["z_unknown"][key] = float(np.mean(z[~known_rows]))
            out["_scorers"][key] = (sc, ft)
        out["loss"][key] = plasticc_log_loss(truth, with_unknown(proba_te, sc.p_unknown(lt, ft)), cols)
    out["_lt"] = lt
    # constant p99 = the metric's effective prior, for reference
    out["loss"]["constant"] = plasticc_log_loss(truth, with_unknown(proba_te, np.full(len(truth), UNKNOWN_PRIOR)), cols)
    out["_truth"], out["_proba"], out["_cols"] = truth, proba_te, cols
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--pairs", nargs="+", default=list(HELD_OUT), choices=list(HELD_OUT))
    ap.add_argument("--default-separation", action="store_true",
                    help="use each scorer's default μ (openset.DEFAULT_SEPARATIONS) instead of the "
                         "leave-one-pair-out estimate")
    ap.add_argument("--json", default="", help="write the per-run results here")
    ap.add_argument("--cache", default="/tmp/skysift_openset_cache", help="cache of the LightGBM fits ('' = none)")
    ap.add_argument("--lgbm", action="append", default=["learning_rate=0.1", "early_stopping_rounds=40"],
                    help="k=v override of the lgbm defaults (JSON value); default: learning rate 0.1, "
                         "early stopping 40 rounds, to fit several folds in minutes on 2 cores")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(2)
    from skysift.transients import io
    from skysift.transients.features import extract_features
    from skysift.transients.metrics import plasticc_log_loss
    from skysift.transients.openset import with_unknown

    options = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.lgbm)}
    t0 = time.time()
    data = io.load(Path(args.data) / "plasticc_train_lightcurves.csv.gz", labelled=True,
                   metadata=Path(args.data) / "plasticc_train_metadata.csv.gz")
    targets = np.array([int(data.class_names[i]) for i in data.hard_labels])
    X, names = extract_features(data.x, "full")
    X = np.asarray(X, dtype=np.float32)
    print(f"loaded {len(targets)} objects, {X.shape[1]} features in {time.time() - t0:.0f} s", flush=True)

    runs = []
    for seed in args.seeds:
        for name in args.pairs:
            fitted = fit_pair(name, HELD_OUT[name], X, targets, seed, options,
                              Path(args.cache) if args.cache else None)
            r = score_pair(fitted, X, targets)
            runs.append(r)
            print(f"  {name} seed {seed}: fit {r['fit_seconds']} s, " +
                  ", ".join(f"{k} {v:.3f}" for k, v in r["loss"].items()), flush=True)

    # leave-one-pair-out separation μ: the mean Gaussianised score of the *other* pairs' unknowns
    # (the maximum-likelihood μ of the equal-variance model), never below 0
    mapped = [k for k in runs[0]["z_unknown"]]
    for r in runs:
        for key in mapped:
            sc, ft = r["_scorers"][key]
            if args.default_separation:  # score_pair already used each scorer's default μ
                r.setdefault("separation", {})[key] = sc.separation
                continue
            others = [o["z_unknown"][key] for o in runs if o["seed"] == r["seed"] and o["pair"] != r["pair"]]
            mu = max(0.0, float(np.mean(others))) if others else sc.separation
            sc.separation = mu
            if hasattr(sc, "mahalanobis") and key.startswith("product×"):
                sc.mahalanobis.separation = mu
            p99 = sc.p_unknown(r["_lt"], ft)
            r["loss"][key] = plasticc_log_loss(r["_truth"], with_unknown(r["_proba"], p99), r["_cols"])
            r.setdefault("separation", {})[key] = mu

    keys = list(runs[0]["loss"])
    print(f"\nweighted log-loss on test (12 known classes + class 99 ×2; lower is better); "
          f"μ {'= each scorer default' if args.default_separation else 'leave-one-pair-out'}")
    header = f"{'held out':<10}{'seed':>5}" + "".join(f"{k:>20}" for k in keys) + f"{'known-only':>12}"
    print(header)
    print("-" * len(header))
    for r in runs:
        print(f"{r['pair']:<10}{r['seed']:>5}" + "".join(f"{r['loss'][k]:>20.3f}" for k in keys)
              + f"{r['closed_known_loss']:>12.3f}")
    print("-" * len(header))
    mean = {k: np.mean([r["loss"][k] for r in runs]) for k in keys}
    std = {k: np.std([r["loss"][k] for r in runs]) for k in keys}
    print(f"{'mean':<15}" + "".join(f"{mean[k]:>20.3f}" for k in keys))
    print(f"{'std':<15}" + "".join(f"{std[k]:>20.3f}" for k in keys))
    wins = {k: sum(r["loss"][k] < r["loss"]["product"] for r in runs) for k in keys if k != "product"}
    # the question a default rests on: is a scorer better than the seed's rule on the *same* runs?
    # paired differences over runs (pair × seed), percentile bootstrap of their mean
    diffs = {}
    for k in keys:
        if k == "product":
            continue
        d = np.array([r["loss"][k] - r["loss"]["product"] for r in runs])
        diffs[k] = bootstrap_ci(np.mean, d, n_boot=10_000)
    print(f"paired difference to product Π(1-p), mean over {len(runs)} runs [bootstrap 95 % CI]; "
          "negative = better than product:")
    for k, ci in diffs.items():
        print(f"  {k:<20} {fmt_ci(ci)}")
    print("runs better than product Π(1-p): " + ", ".join(f"{k} {v}/{len(runs)}" for k, v in wins.items()))
    print("mean z of unknowns: " + "; ".join(
        f"{k} " + ", ".join(f"{r['pair']}/{r['seed']}={r['z_unknown'][k]:.2f}" for r in runs) for k in mapped))
    if args.json:
        from skysift.core.io import write_json

        write_json(args.json, {"runs": [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs],
                               "difference_to_product_ci": diffs})
    print(f"total {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
