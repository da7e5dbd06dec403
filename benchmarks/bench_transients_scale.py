"""Survey scale for the transients task: feature cost per extractor, a PLAsTiCC-sized synthetic test
set written and predicted by streaming (kill + resume, peak memory), and Dask 1 vs 2 workers.

Every figure is printed with CPU seconds (user + system, the process and its children) beside wall
seconds, and the load average, because the wall time of a shared machine says little. One command
per figure::

    # cost of every feature block / light-curve extractor, ms of CPU per object on 1 thread
    python benchmarks/bench_transients_scale.py profile --data /work/shared/data/plasticc [--n 3000]
    #   ... of the code before: PYTHONPATH=<old checkout>/src python benchmarks/bench_transients_scale.py profile

    # paired difference of the 5-fold CV weighted log-loss of two out-of-fold files of
    # `bench_transients.py cv --direct` (e.g. before/after a feature change), bootstrap 95 % CI
    python benchmarks/bench_transients_scale.py cvdiff A/oof_lgbm.csv B/oof_lgbm.csv

    # the default LightGBM on the frozen outer test split, features of the code before vs now (paired)
    python benchmarks/bench_transients_scale.py split --baseline <old checkout>/src/skysift/transients/features.py

    # a test set in the Kaggle layout, written by streaming (time, CPU, peak RSS, size)
    python benchmarks/bench_transients_scale.py simulate --out /scratch/plasticc_1m --n 1000000

    # `skysift predict` streamed on it: one uninterrupted run, one killed at 40 % and resumed;
    # wall, CPU, objects/s, peak RSS of each, and whether the two outputs are byte-identical
    python benchmarks/bench_transients_scale.py stream --run RUN --data /scratch/plasticc_1m --out /scratch/pred

    # the same objects as a Parquet catalogue, predicted with `--dask tcp://...` on local clusters
    # of 1 and 2 single-threaded workers: speed-up, worker CPU, identical predictions
    python benchmarks/bench_transients_scale.py dask --run RUN --data /scratch/plasticc_200k --out /scratch/dask

``RUN`` is a model trained with the defaults: ``skysift train transients --data
/work/shared/data/plasticc --out RUN``. ``stream`` forces streaming whatever the file size.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _common import bootstrap_ci, fmt_ci, print_table

PY = sys.executable


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run_measured(cmd: list[str], env: dict | None = None, kill_when=None) -> dict:
    """Run ``cmd``; wall seconds, CPU seconds and peak RSS (MiB) of it and its waited children
    (``wait4``'s rusage), whether it was killed. ``kill_when()`` is polled every 0.2 s; when true,
    the process gets SIGKILL (a crash, not a clean stop)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed = False
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if kill_when is not None and not killed and kill_when():
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
        time.sleep(0.2)
    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0 and not killed:
        sys.exit(f"error: {' '.join(cmd)} failed ({rc}):\n{out[-3000:]}")
    return {"wall": time.perf_counter() - t0, "cpu": ru.ru_utime + ru.ru_stime,
            "rss_mib": ru.ru_maxrss / 1024, "killed": killed, "output": out}


def skysift_env(**extra: str) -> dict:
    src = Path(__file__).resolve().parent.parent / "src"
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{src}{os.pathsep}{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(src)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra)
    return env


def count_objects(meta: Path) -> int:
    with open(meta, "rb") as fh:
        return sum(1 for _ in fh) - 1


# ---- profile ----------------------------------------------------------------------------------------
def cmd_profile(args) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import light_curve as lcp

    import skysift.transients.features as F
    from bench_transients import read_plasticc

    _, _, lc = read_plasticc(args.data)
    sub = lc.take(np.sort(np.random.default_rng(args.seed).choice(len(lc), min(args.n, len(lc)), replace=False)))
    n = len(sub)
    rows = []

    def cost(label, fn):
        c = time.process_time()
        w = time.perf_counter()
        fn()
        rows.append((label, 1e3 * (time.process_time() - c) / n, 1e3 * (time.perf_counter() - w) / n))

    memo = getattr(F, "_MEMO", None)
    token = memo.set({}) if memo is not None else None  # the sorts the blocks share, computed once
    cost("seed aggregates (27)", lambda: F.seed_aggregates(sub))
    cost("metadata (6)", lambda: F._meta_features(sub))
    cost("light-curve package, per band (all 19)", lambda: F._light_curve_package_features(sub, 1))
    cost("peak physics", lambda: F._peak_features(sub))
    cost("shape around the peak", lambda: F._shape_features(sub))
    cost("multi-band periodogram (galactic only)", lambda: F._multiband_period(sub, 1))
    if token is not None:
        memo.reset(token)
    order, _, boff = F._band_order(sub)
    curves = F._split_copies(sub.mjd[order], sub.flux[order].astype(np.float64),
                             sub.flux_err[order].astype(np.float64), boff)
    niter = getattr(F, "BAZIN_LMSDER_NITER", 10)
    cheap = [lcp.Amplitude(), lcp.BeyondNStd(1.0), lcp.Cusum(), lcp.Eta(), lcp.EtaE(),
             lcp.InterPercentileRange(0.1), lcp.Kurtosis(), lcp.LinearFit(), lcp.LinearTrend(),
             lcp.MaximumSlope(), lcp.Mean(), lcp.WeightedMean(), lcp.Median(), lcp.Skew(),
             lcp.StandardDeviation(), lcp.StetsonK(), lcp.ExcessVariance(), lcp.ReducedChi2()]
    cost("  of which the 18 cheap extractors", lambda: lcp.Extractor(*cheap).many(
        curves, sorted=True, check=False, fill_value=np.nan, n_jobs=1))
    cost(f"  of which BazinFit (lmsder, {niter} iterations)", lambda: lcp.BazinFit("lmsder", lmsder_niter=niter).many(
        curves, sorted=True, check=False, fill_value=np.nan, n_jobs=1))
    cost("full feature set (one call)", lambda: F.full_features(sub, n_jobs=1))
    print(f"\nfeature cost, {n} real PLAsTiCC training objects (seed {args.seed}), 1 extractor thread, "
          f"skysift from {Path(F.__file__).resolve().parents[3]}, load average {load_avg()}")
    print_table(["block", "CPU ms/object", "wall ms/object"], rows, floatfmt=".3f")


# ---- cvdiff -----------------------------------------------------------------------------------------
def cmd_cvdiff(args) -> None:
    import pandas as pd

    from skysift.transients.metrics import plasticc_log_loss

    a, b = pd.read_csv(args.a), pd.read_csv(args.b)
    if not np.array_equal(a["object_id"].to_numpy(), b["object_id"].to_numpy()):
        sys.exit("error: the two out-of-fold files hold different objects")
    y = a["target"].to_numpy()
    cols = [c for c in a.columns if c.startswith(args.prefix)]
    targets = [int(c[len(args.prefix):]) for c in cols]
    pa, pb = a[cols].to_numpy(), b[cols].to_numpy()
    idx = np.arange(len(y))

    def loss(P):
        return lambda i: plasticc_log_loss(y[i], P[i], targets)

    ca = bootstrap_ci(loss(pa), idx, n_boot=args.n_boot)
    cb = bootstrap_ci(loss(pb), idx, n_boot=args.n_boot)
    cd = bootstrap_ci(lambda i: loss(pb)(i) - loss(pa)(i), idx, n_boot=args.n_boot)
    print(f"5-fold CV weighted log-loss ({args.prefix}probabilities), {len(y)} objects, "
          f"percentile bootstrap 95 % CI over objects ({args.n_boot} resamples)")
    print_table(["out-of-fold file", "weighted log-loss"],
                [(args.a, fmt_ci(ca)), (args.b, fmt_ci(cb)), ("B - A (paired)", fmt_ci(cd))])


# ---- split: before / after on the frozen outer test split ------------------------------------------
def _features_of(module_path: Path | None, lc):
    """``extract_features(lc)`` of this checkout, or of the ``features.py`` file at ``module_path``
    (an older checkout's: the feature code before a change), imported under a private name."""
    if module_path is None:
        from skysift.transients.features import extract_features

        return extract_features(lc)[0]
    import importlib.util

    spec = importlib.util.spec_from_file_location("skysift.transients._features_baseline", module_path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.extract_features(lc)[0]


def cmd_split(args) -> None:
    """The default LightGBM (fixed settings, as ``skysift train`` fits it: 80/20 fit/validation split
    of the training part for early stopping and temperature scaling) trained on the 6,278 objects
    outside the frozen outer test split, with the features of a baseline ``features.py`` and of
    this checkout; weighted log-loss on the 1,570 outer test objects, paired bootstrap."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from sklearn.model_selection import train_test_split

    from _common import outer_mask
    from bench_transients import _inverse_frequency, read_plasticc
    from skysift.core.calibration import fit_bias_corrected_temperature, softmax
    from skysift.transients.gbm import LightGBMEstimator
    from skysift.transients.metrics import plasticc_log_loss

    ids, y_t, lc = read_plasticc(args.data)
    targets = sorted(set(y_t.tolist()))
    yi = np.searchsorted(targets, y_t)
    k = len(targets)
    test = np.flatnonzero(outer_mask(ids, args.split))
    train = np.flatnonzero(~outer_mask(ids, args.split))
    fit, val = train_test_split(train, test_size=0.2, stratify=yi[train], random_state=args.seed)
    probs, rows = {}, []
    for label, path in (("baseline", Path(args.baseline)), ("this checkout", None)):
        c = time.process_time()
        X = _features_of(path, lc)
        cpu = time.process_time() - c
        est = LightGBMEstimator({}, k, [str(t) for t in targets])
        est.fit(X[fit], yi[fit], X[val], yi[val], sample_weight=_inverse_frequency(yi[fit], k)[yi[fit]])
        temp, bias = fit_bias_corrected_temperature(est.predict_logits(X[val]), yi[val], k)
        logits = est.predict_logits(X[test])
        probs[label] = (softmax(logits), softmax(logits, temp, bias))
        rows.append((label, f"{1e3 * cpu / len(lc):.3f}", est.best_iteration))
    idx = np.arange(len(test))

    def loss(P):
        return lambda i: plasticc_log_loss(y_t[test][i], P[i], targets)

    table = []
    for j, kind in enumerate(("raw", "calibrated")):
        a, b = probs["baseline"][j], probs["this checkout"][j]
        table.append((kind, fmt_ci(bootstrap_ci(loss(a), idx, n_boot=args.n_boot)),
                      fmt_ci(bootstrap_ci(loss(b), idx, n_boot=args.n_boot)),
                      fmt_ci(bootstrap_ci(lambda i, a=a, b=b: loss(b)(i) - loss(a)(i), idx, n_boot=args.n_boot))))
    print(f"\nfrozen outer split {args.split}: {len(train)} training objects, {len(test)} test objects; "
          f"baseline features {args.baseline}; load average {load_avg()}")
    print_table(["features", "CPU ms/object (features)", "best iteration"], rows)
    print(f"weighted log-loss on the outer test objects, percentile bootstrap 95 % CI ({args.n_boot} resamples)")
    print_table(["probabilities", "baseline", "this checkout", "difference (paired)"], table)


# ---- simulate ---------------------------------------------------------------------------------------
def cmd_simulate(args) -> None:
    code = ("import sys; from skysift.transients.simulate import simulate; "
            f"simulate({str(args.out)!r}, {args.n}, seed={args.seed}, labelled=False, chunk_objects={args.chunk})")
    r = run_measured([PY, "-c", code], env=skysift_env())
    size = sum(f.stat().st_size for f in Path(args.out).glob("*.csv"))
    rows_n = sum(1 for _ in open(Path(args.out) / "test_set.csv", "rb")) - 1 if args.count_rows else None
    print(f"\nstreaming simulator: {args.n:,} objects (chunks of {args.chunk:,}) into {args.out}, "
          f"load average {load_avg()}")
    print_table(["objects", "rows", "GB of CSV", "wall s", "CPU s", "CPU ms/object", "peak RSS MiB"],
                [(f"{args.n:,}", f"{rows_n:,}" if rows_n else "-", f"{size / 1e9:.2f}", f"{r['wall']:.0f}",
                  f"{r['cpu']:.0f}", f"{1e3 * r['cpu'] / args.n:.3f}", f"{r['rss_mib']:.0f}")])


# ---- stream -----------------------------------------------------------------------------------------
def _predict_cmd(args, out: Path, resume: bool) -> list[str]:
    return [PY, "-m", "skysift", "predict", str(args.run), "--data", str(args.data), "--out", str(out),
            "--resume" if resume else "--no-resume"]


def cmd_stream(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = Path(args.data) / "test_set_metadata.csv"
    n_obj = count_objects(meta)
    # stream whatever the size (the CLI streams files of 512 MB and more)
    env = skysift_env(SKYSIFT_STREAM_MIN_BYTES="0", SKYSIFT_NO_PROGRESS="1")
    if args.workers:
        env["SKYSIFT_STREAM_WORKERS"] = str(args.workers)
    rows = []
    ref = out / "uninterrupted.csv"
    if not args.skip_reference:
        r = run_measured(_predict_cmd(args, ref, resume=False), env=env)
        rows.append(("uninterrupted", f"{r['wall']:.0f}", f"{r['cpu']:.0f}", f"{1e3 * r['cpu'] / n_obj:.3f}",
                     f"{n_obj / r['wall']:,.0f}", f"{r['rss_mib']:.0f}"))
    res = out / "resumed.csv"
    ckpt = res.with_name(res.name + ".progress.json")

    def past_fraction() -> bool:
        try:
            return json.loads(ckpt.read_text())["rows"] >= args.kill_at * n_obj
        except (OSError, ValueError, KeyError):
            return False

    r1 = run_measured(_predict_cmd(args, res, resume=False), env=env, kill_when=past_fraction)
    done = json.loads(ckpt.read_text())["rows"]
    r2 = run_measured(_predict_cmd(args, res, resume=True), env=env)
    rows.append((f"killed at {done:,} objects" + ("" if r1["killed"] else " (finished first!)"),
                 f"{r1['wall']:.0f}", f"{r1['cpu']:.0f}", "-", "-", f"{r1['rss_mib']:.0f}"))
    rows.append(("resumed to the end", f"{r2['wall']:.0f}", f"{r2['cpu']:.0f}",
                 f"{1e3 * r2['cpu'] / max(n_obj - done, 1):.3f}", f"{(n_obj - done) / r2['wall']:,.0f}",
                 f"{r2['rss_mib']:.0f}"))
    print(f"\nstreamed `skysift predict` of {n_obj:,} objects ({args.data}), model {args.run}, "
          f"chunk workers {env.get('SKYSIFT_STREAM_WORKERS', 'default')}, load average {load_avg()}")
    print_table(["run", "wall s", "CPU s", "CPU ms/object", "objects/s (wall)", "peak RSS MiB"], rows)
    import pandas as pd

    got = pd.read_csv(res)
    want = pd.read_csv(meta, usecols=["object_id"])["object_id"].to_numpy()
    every_once = np.array_equal(got["object_id"].to_numpy(), want)  # each object once, in file order
    sums = got.drop(columns="object_id").to_numpy().sum(axis=1)
    print(f"resumed output: {len(got):,} rows for {n_obj:,} metadata objects; every object once, in order: "
          f"{every_once}; rows sum to 1 (max deviation {np.abs(sums - 1).max():.1e}); sha256 {sha256(res)[:16]}")
    if not every_once:
        sys.exit(1)
    if ref.exists():
        same = sha256(ref) == sha256(res)
        print(f"uninterrupted == killed + resumed (byte for byte): {same}")
        if not same:
            sys.exit(1)


# ---- dask -------------------------------------------------------------------------------------------
def _warm_worker(run_dir: str) -> None:
    from skysift.core.scale import _model

    _model(run_dir)


def cmd_dask(args) -> None:
    import dask
    from distributed import Client, LocalCluster

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cat = out / "catalogue"
    env = skysift_env(SKYSIFT_NO_PROGRESS="1")
    if not any(cat.glob("part-*.parquet")):
        code = ("from skysift.transients.stream import write_parquet_catalogue; "
                f"write_parquet_catalogue({str(Path(args.data) / 'test_set.csv')!r}, None, {str(cat)!r}, "
                f"{args.per_partition})")
        r = run_measured([PY, "-c", code], env=env)
        print(f"catalogue: {len(list(cat.glob('part-*.parquet')))} partitions of {args.per_partition:,} objects "
              f"in {r['wall']:.0f} s wall, {r['cpu']:.0f} s CPU, peak RSS {r['rss_mib']:.0f} MiB")
    n_obj = count_objects(Path(args.data) / "test_set_metadata.csv")
    rows, outputs = [], {}

    def worker_cpu(client) -> float:
        import resource

        def cpu():
            ru = resource.getrusage(resource.RUSAGE_SELF)
            return ru.ru_utime + ru.ru_stime

        return sum(client.run(cpu).values())

    for n in args.workers:
        with dask.config.set({"distributed.worker.daemon": False}):
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None,
                                   env={"OMP_NUM_THREADS": "1", "SKYSIFT_NO_PROGRESS": "1"})
        client = Client(cluster)
        try:
            addr = cluster.scheduler_address
            # warm-up: every worker imports skysift and loads the model once, as a long-lived
            # cluster would have before the run that is timed (the model stays cached in the worker)
            client.run(_warm_worker, str(Path(args.run).resolve()))
            c0 = worker_cpu(client)
            res = out / f"dask_{n}.csv"
            r = run_measured([PY, "-m", "skysift", "predict", str(args.run), "--data", str(cat), "--out",
                              str(res), "--dask", addr], env=env)
            cpu_w = worker_cpu(client) - c0
        finally:
            client.close()
            cluster.close()
        outputs[n] = sha256(res)
        rows.append((n, f"{r['wall']:.1f}", f"{n_obj / r['wall']:,.0f}", f"{cpu_w:.0f}",
                     f"{1e3 * cpu_w / n_obj:.3f}", f"{r['cpu']:.1f}"))
    inline = out / "inline.csv"
    r = run_measured([PY, "-m", "skysift", "predict", str(args.run), "--data", str(cat), "--out", str(inline),
                      "--dask", "inline"], env=env)
    rows.append(("inline (no Dask)", f"{r['wall']:.1f}", f"{n_obj / r['wall']:,.0f}", f"{r['cpu']:.0f}",
                 f"{1e3 * r['cpu'] / n_obj:.3f}", "-"))
    print(f"\n`skysift predict --dask tcp://...`, {n_obj:,} objects in {len(list(cat.glob('part-*.parquet')))} "
          f"partitions, local clusters of single-threaded workers, load average {load_avg()}")
    print_table(["workers", "wall s", "objects/s", "worker CPU s", "CPU ms/object", "client CPU s"], rows)
    if 1 in args.workers and 2 in args.workers:
        w1, w2 = float(rows[0][1]), float(rows[1][1])
        print(f"speed-up 2 vs 1 workers (wall): {w1 / w2:.2f}x")
    same = len(set(outputs.values()) | {sha256(inline)}) == 1
    print(f"identical predictions (every cluster size and inline, byte for byte): {same}")
    if not same:
        sys.exit(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("profile")
    p.add_argument("--data", default="/work/shared/data/plasticc")
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("cvdiff")
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("--prefix", default="raw_class_", help="probability columns (raw_class_ or class_)")
    c.add_argument("--n-boot", type=int, default=1000)
    sp = sub.add_parser("split")
    sp.add_argument("--data", default="/work/shared/data/plasticc")
    sp.add_argument("--baseline", required=True, help="the features.py of the code before (another checkout)")
    sp.add_argument("--split", default="plasticc_outer_test")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--n-boot", type=int, default=1000)
    s = sub.add_parser("simulate")
    s.add_argument("--out", required=True)
    s.add_argument("--n", type=int, default=1_000_000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--chunk", type=int, default=20_000)
    s.add_argument("--count-rows", action="store_true")
    t = sub.add_parser("stream")
    t.add_argument("--run", required=True)
    t.add_argument("--data", required=True, help="folder with test_set.csv + test_set_metadata.csv")
    t.add_argument("--out", required=True)
    t.add_argument("--kill-at", type=float, default=0.4, help="fraction of objects done when the run is killed")
    t.add_argument("--workers", type=int, default=0, help="chunks at a time (0: the default)")
    t.add_argument("--skip-reference", action="store_true", help="no uninterrupted run (half the time)")
    d = sub.add_parser("dask")
    d.add_argument("--run", required=True)
    d.add_argument("--data", required=True, help="folder with test_set.csv + test_set_metadata.csv")
    d.add_argument("--out", required=True)
    d.add_argument("--per-partition", type=int, default=10_000)
    d.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    {"profile": cmd_profile, "cvdiff": cmd_cvdiff, "split": cmd_split, "simulate": cmd_simulate, "stream": cmd_stream,
     "dask": cmd_dask}[args.cmd](args)


if __name__ == "__main__":
    main()
