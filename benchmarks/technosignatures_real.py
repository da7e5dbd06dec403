"""The technosignatures detector on real Breakthrough Listen backgrounds (issue 18).

    python benchmarks/technosignatures_real.py stats                     # real vs simulated statistics
    python benchmarks/technosignatures_real.py build --out DIR [--n-sim 800] [--n-inj 1200] [--n-test 1200]
        [--n-transient 0]   (training negatives: a line in one ON scan only)
        [--n-uneven 0]      (training positives: a needle bright in one ON scan, faint in the others)
        [--n-test-uneven 0] (DIR/uneven_test: such needles against plain real backgrounds)
        [--test-seed 12 --test-only]   (a second injection test set)
        [--test-placement legacy|corrected] [--train-placement legacy|corrected]
    skysift train technosignatures --model cadence-tracks --data DIR/train --out RUN
    skysift train technosignatures --model cadence-tracks-gbm --data DIR/train --out RUN_GBM
    python benchmarks/technosignatures_real.py evaluate --data DIR --run RUN [--cnn-run RUN2] [--extra NAME=RUN]

``--test-only`` also writes a fresh default-simulator set (seed test-seed + 1) unless
``--n-sim-test 0``. Placement ``legacy`` (the default, for both) is round 2's injection law, whose
needles often leave the band after the first ON scan (see ``inject.add_signal``); it stays the
default so that test figures compare across rounds.

Protocol (backgrounds kept apart, by id):

* **train** (``DIR/train``): the harsher simulator (:data:`~skysift.technosignatures.simulate.HARSH`)
  plus setigen injections (needles in the ON scans, RFI in all or some scans, plain) into variants
  (flips, rolls, time reversal, ON/OFF role swaps, scan permutations) of the **two unlabelled real
  test snippets** (``seti/test``) only;
* **real-background test** (``DIR/inj_test``): injections into variants of the **three real
  negatives** (never a training background);
* **six real labelled snippets** (``seti/train``): never used in training in any form;
* **fresh simulated test** (``DIR/sim_test``): today's default simulator, another seed.

Nothing is tuned on the test sets by this script (the model's parameters are its defaults).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from _common import bootstrap_ci, cpu_seconds, fmt_ci, print_table
from skysift.technosignatures.inject import inject_dataset, pixel_noise
from skysift.technosignatures.simulate import harsh_config, simulate, simulate_snippet

SETI = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "seti"


def real_snippets(kind: str) -> dict[str, np.ndarray]:
    """``kind``: ``"negatives"``, ``"positives"`` or ``"test"`` → id → (6, T, F) float32."""
    if kind == "test":
        files = sorted((SETI / "test").glob("*/*.npy"))
        return {f.stem: np.load(f).astype(np.float32) for f in files}
    labels = dict(line.split(",") for line in (SETI / "train_labels.csv").read_text().split("\n")[1:] if line)
    want = "1" if kind == "positives" else "0"
    return {f.stem: np.load(f).astype(np.float32) for f in sorted((SETI / "train").glob("*/*.npy"))
            if labels.get(f.stem) == want}


def snippet_stats(x: np.ndarray) -> tuple[float, float, float]:
    """(noise level, bandpass range, brightest line S/N) of a standardised ``(6, T, F)`` snippet:
    the pixel σ (median over scans, in the snippet's own standardised units); the range of the
    time-median spectrum in units of that σ (median over scans); the brightest channel of the
    time-averaged spectrum above a 15-channel running median, in units of the radiometer noise of
    a time-averaged channel, σ/√T (max over scans)."""
    from scipy.ndimage import median_filter

    sig = pixel_noise(x)
    spec = np.median(x, axis=1)
    bp_range = float(np.median((spec.max(axis=1) - spec.min(axis=1)) / sig))
    mean_spec = x.mean(axis=1)
    resid = mean_spec - median_filter(mean_spec, size=(1, 15), mode="nearest")
    return float(np.median(sig)), bp_range, float((resid.max(axis=1) / (sig / np.sqrt(x.shape[1]))).max())


def stats(args) -> None:
    rows = []
    for kind in ("negatives", "positives", "test"):
        for sid, x in real_snippets(kind).items():
            rows.append((f"real {kind[:-1] if kind != 'test' else 'unlabelled'} {sid[:7]}", *snippet_stats(x)))
    rng = np.random.default_rng(args.seed)
    for name, cfg in (("harsh sim", harsh_config()), ("default sim", None)):
        for i in range(args.n):
            x, t = simulate_snippet(rng, i % 2 == 0, cfg)
            rows.append((f"{name} {'needle' if i % 2 == 0 else 'noise'} #{i}", *snippet_stats(x)))
    print_table(["snippet", "noise σ (std units)", "bandpass range / σ", "brightest line S/N"], rows, ".2f")


def build(args) -> None:
    out = Path(args.out)
    t0, w0 = cpu_seconds(), time.perf_counter()
    train_bg = real_snippets("test")
    test_bg = real_snippets("negatives")
    # the harsher simulator, then the injections into the training backgrounds, in one folder
    test_seed = args.seed + 2 if args.test_seed is None else args.test_seed
    if not args.test_only:
        simulate(out / "train", n=args.n_sim, seed=args.seed, cfg=harsh_config())
        inject_dataset(train_bg, out / "_inj", n=args.n_inj, seed=args.seed + 1,
                       legacy_placement=args.train_placement == "legacy")
        _merge(out / "_inj", out / "train")
        # transients: training negatives, interference in one ON scan only; uneven: training
        # positives, needles bright in one ON scan and faint in the others (see inject)
        for kind, n, seed in (("transient", args.n_transient, args.seed + 5), ("uneven", args.n_uneven, args.seed + 6)):
            if n:
                inject_dataset(train_bg, out / f"_{kind}", n=n, seed=seed, kinds=(kind,), proportions=(1.0,))
                _merge(out / f"_{kind}", out / "train")
        simulate(out / "sim_test", n=args.n_sim_test, seed=args.seed + 3)
    elif args.n_sim_test > 0:  # a fresh simulated test set beside a fresh injection test set
        simulate(out / "sim_test", n=args.n_sim_test, seed=test_seed + 1)
    inject_dataset(test_bg, out / "inj_test", n=args.n_test, seed=test_seed,
                   legacy_placement=args.test_placement == "legacy")
    if args.n_test_uneven:  # uneven needles against plain variants of the same real negatives
        inject_dataset(test_bg, out / "uneven_test", n=args.n_test_uneven, seed=test_seed + 2,
                       kinds=("uneven", "plain"), proportions=(0.5, 0.5),
                       legacy_placement=args.test_placement == "legacy")
    protocol = {"train_backgrounds": sorted(train_bg), "test_backgrounds": sorted(test_bg),
                "n_harsh_sim": args.n_sim, "n_train_injections": args.n_inj, "n_test_injections": args.n_test,
                "n_sim_test": args.n_sim_test,
                "n_train_transients": args.n_transient, "n_train_uneven": args.n_uneven,
                "n_test_uneven": args.n_test_uneven, "seed": args.seed, "test_seed": test_seed,
                "sim_test_seed": args.seed + 3 if not args.test_only else test_seed + 1,
                "train_placement": args.train_placement, "test_placement": args.test_placement}
    (out / "protocol.json").write_text(json.dumps(protocol, indent=2))
    print(json.dumps(protocol, indent=2))
    print(f"build: {cpu_seconds() - t0:.0f} CPU s, {time.perf_counter() - w0:.0f} s wall, load {os.getloadavg()}")


def _append_rows(src: Path, dst: Path) -> None:
    """The rows of CSV ``src`` after the rows of ``dst`` (same columns; ``src``'s header dropped),
    or ``src`` copied when ``dst`` does not exist yet."""
    if not dst.exists():
        shutil.copy(src, dst)
        return
    rows = src.read_text().split("\n")[1:]
    with open(dst, "a") as fh:
        fh.write("\n".join(line for line in rows if line) + "\n")


def _merge(src: Path, dst: Path) -> None:
    """Move an injected set into a simulated one (both competition layout), labels and truth (a
    second injected set's truth rows go after the first's)."""
    for f in (src / "train").glob("*/*.npy"):
        (dst / "train" / f.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.move(str(f), dst / "train" / f.parent.name / f.name)
    _append_rows(src / "train_labels.csv", dst / "train_labels.csv")
    _append_rows(src / "truth.csv", dst / "injection_truth.csv")
    shutil.rmtree(src)


def _scores(run: str, data) -> np.ndarray:
    import skysift

    return skysift.load(run).predict_proba(data)[:, 1]


def evaluate(args) -> None:
    import skysift
    from skysift.technosignatures.dedoppler import DedopplerBaseline

    task = skysift.get_task("technosignatures")
    runs = {**({"cadence-tracks": args.run} if args.run else {}),
            **({"cadence-cnn": args.cnn_run} if args.cnn_run else {}),
            **dict(e.split("=", 1) for e in args.extra)}
    base = DedopplerBaseline()
    sets = {"six real labelled": task.load(SETI, labelled=True)}
    for name, sub in (("real-background injections", "inj_test"), ("fresh simulated", "sim_test"),
                      ("uneven needles vs plain (real backgrounds)", "uneven_test")):
        if (Path(args.data) / sub).is_dir():
            sets[name] = task.load(Path(args.data) / sub, labelled=True)
    rows, result = [], {}
    for set_name, data in sets.items():
        y = data.hard_labels
        scorers = {name: (lambda d, r=run: _scores(r, d)) for name, run in runs.items()}
        if not args.no_baseline:
            scorers["de-Doppler baseline"] = lambda d: base.scores(d.x)
        for name, fn in scorers.items():
            c0, w0 = cpu_seconds(), time.perf_counter()
            s = fn(data)
            cpu, wall = cpu_seconds() - c0, time.perf_counter() - w0
            ci = bootstrap_ci(roc_auc_score, y, s) if len(y) > 20 else (roc_auc_score(y, s), np.nan, np.nan)
            sep = float(s[y == 1].min() - s[y == 0].max())
            rows.append((set_name, name, len(y), int(y.sum()), fmt_ci(ci), f"{sep:+.3g}", f"{cpu:.0f}/{wall:.0f}"))
            result[f"{set_name}|{name}"] = {"roc_auc": ci, "min_pos_minus_max_neg": sep}
            if set_name == "six real labelled":
                print(name, {i: round(float(v), 4) for i, v in zip(data.ids, s)}, "labels", dict(zip(data.ids, y)))
    print_table(["test set", "scorer", "n", "positives", "ROC-AUC [95% CI]", "min pos − max neg",
                 "CPU/wall s"], rows)
    print(f"load average {os.getloadavg()}")


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    a = sub.add_parser("stats")
    a.add_argument("--n", type=int, default=4)
    a.add_argument("--seed", type=int, default=0)
    b = sub.add_parser("build")
    b.add_argument("--out", required=True)
    b.add_argument("--n-sim", type=int, default=800)
    b.add_argument("--n-inj", type=int, default=1200)
    b.add_argument("--n-test", type=int, default=1200)
    b.add_argument("--n-transient", type=int, default=0,
                   help="training negatives with a line in one ON scan only (inject.draw_injection 'transient')")
    b.add_argument("--n-uneven", type=int, default=0,
                   help="training positives: needles bright in one ON scan, faint in the others ('uneven')")
    b.add_argument("--n-test-uneven", type=int, default=0,
                   help="a test set of uneven needles and plain negatives in the test backgrounds (seed test-seed + 2)")
    b.add_argument("--n-sim-test", type=int, default=1000)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--test-seed", type=int, default=None, help="seed of the injection test set (seed + 2)")
    b.add_argument("--test-only", action="store_true", help="write the injection test set only")
    # round 2 placed needles with the drift direction inverted (fast needles often leave the band
    # after the first ON scan); the test law stays that one unless asked, so figures compare
    b.add_argument("--test-placement", choices=("legacy", "corrected"), default="legacy")
    b.add_argument("--train-placement", choices=("legacy", "corrected"), default="legacy")
    c = sub.add_parser("evaluate")
    c.add_argument("--data", required=True)
    c.add_argument("--run", default=None, help="a cadence-tracks run")
    c.add_argument("--cnn-run", default=None, help="a cadence-cnn run")
    c.add_argument("--extra", action="append", default=[], help="NAME=RUN: any other run to score")
    c.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    os.environ["SKYSIFT_NO_PROGRESS"] = "1"
    {"stats": stats, "build": build, "evaluate": evaluate}[args.mode](args)


if __name__ == "__main__":
    main()
