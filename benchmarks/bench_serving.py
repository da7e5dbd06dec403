"""Requests/s on ``POST /predict`` with 256 objects per request, and report generation time, per task.

Serving: every task's default network (its demo parameters) is written as a bundle with untrained
weights (``serving.testing.random_bundle``: the same architecture and the same compute per object as a
trained model), served by ``skysift serve`` in its own process (uvicorn on 127.0.0.1), and sent
``--requests`` sequential requests of ``--batch`` objects each by an httpx client in this process,
after one warm-up request. Each request repeats the objects of ``task.request_example()`` with
distinct ids, so the body is in the task's own JSON format; a task that caps the objects of one JSON
request below the batch (technosignatures: 64 cadences) gets a multipart upload of ``--batch``
simulated objects in its file format instead (zipped when that is a folder), and the table says
so. Only 127.0.0.1 is contacted.

Report: ``skysift report`` (``build_report``) on the same bundle and ``--report-n`` simulated
labelled objects.

    nice -n 5 .venv/bin/python benchmarks/bench_serving.py                   # every task, both parts
    nice -n 5 .venv/bin/python benchmarks/bench_serving.py --task transits --requests 10 --no-report

Prints a table and one JSON line with every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from _common import timed
from skysift.core.task import get_task, task_names
from skysift.serving.testing import random_bundle


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def batch_body(task, n: int) -> dict:
    example = task.request_example()
    objects = example["objects"] if "objects" in example else [example]
    return {"objects": [{**objects[i % len(objects)], "id": f"obj-{i}"} for i in range(n)]}


def upload_body(task, n: int, work: Path) -> tuple[bytes, str]:
    """``n`` simulated objects in the task's file format, zipped when the format is a folder."""
    import io
    import zipfile

    path = Path(task.simulate(work / "upload", n=n, seed=9))
    if path.is_file():
        return path.read_bytes(), path.name
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for f in sorted(path.rglob("*")):
            if f.is_file():
                z.write(f, f.relative_to(path))
    return buf.getvalue(), "data.zip"


def bench_serving(name: str, run: Path, *, batch: int, requests: int, threads: int, max_body_mb: float) -> dict:
    task = get_task(name)
    body = json.dumps(batch_body(task, batch)).encode()
    mode = "json"
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "SKYSIFT_NO_PROGRESS": "1"}
    exe = str(Path(sys.executable).with_name("skysift"))
    server = subprocess.Popen([exe, "serve", str(run), "--host", "127.0.0.1", "--port", str(port),
                               "--log-level", "warning", "--max-body-mb", str(max_body_mb)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=300, trust_env=False) as client:
            t_start = time.perf_counter()
            for _ in range(600):  # bounded wait for the server to come up (60 s)
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None:
                    raise RuntimeError(f"skysift serve exited: {server.stderr.read().decode()[-2000:]}")
                time.sleep(0.1)
            else:
                raise RuntimeError("skysift serve did not answer /health within 60 s")
            startup = time.perf_counter() - t_start
            headers = {"content-type": "application/json"}

            def post():
                if mode == "json":
                    return client.post("/predict", content=body, headers=headers)
                return client.post("/predict", files={"file": (fname, body)})

            r = post()  # warm-up (first-call allocations)
            if r.status_code == 422 and "at most" in r.text:
                # the task caps objects per JSON request (e.g. 64 cadences): send its file format instead
                mode = "upload"
                body, fname = upload_body(task, batch, run.parent)
                r = post()
            r.raise_for_status()
            assert r.json()["n"] == batch, r.json()["n"]
            lat = []
            t0 = time.perf_counter()
            for _ in range(requests):
                t = time.perf_counter()
                r = post()
                lat.append(time.perf_counter() - t)
                r.raise_for_status()
            total = time.perf_counter() - t0
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    lat.sort()
    p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
    return {"task": name, "network": json.loads((run / "model.json").read_text())["model"]["name"],
            "mode": mode, "batch": batch, "requests": requests, "body_kb": round(len(body) / 1024, 1),
            "req_per_s": requests / total, "objects_per_s": requests * batch / total,
            "p50_ms": 1000 * statistics.median(lat), "p95_ms": 1000 * p95, "server_startup_s": startup}


def bench_report(name: str, run: Path, data: Path, out: Path) -> dict:
    from skysift.report import build_report

    with timed() as t:
        res = build_report(run, data, out)
    return {"task": name, "report_s": t.seconds, "report_images": res["n_images"],
            "report_mb": out.stat().st_size / 1e6}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", action="append", help="only these tasks (default: all installed)")
    ap.add_argument("--batch", type=int, default=256, help="objects per request")
    ap.add_argument("--requests", type=int, default=20, help="timed requests per task (sequential)")
    ap.add_argument("--threads", type=int, default=2, help="OMP threads of the server process")
    ap.add_argument("--max-body-mb", type=float, default=400.0,
                    help="the server's body limit (256 technosignatures cadences are 286 MB of JSON)")
    ap.add_argument("--report-n", type=int, default=200, help="simulated objects the report evaluates")
    ap.add_argument("--run", action="append", default=[], metavar="TASK=RUN_DIR",
                    help="serve/report this trained run instead of an untrained bundle (e.g. an estimator default)")
    ap.add_argument("--no-report", action="store_true")
    ap.add_argument("--no-serving", action="store_true")
    ap.add_argument("--work", type=Path, default=None, help="folder for bundles and data (default: a temp dir)")
    args = ap.parse_args(argv)
    if not 1 <= args.requests <= 1000 or not 1 <= args.batch <= 4096:
        ap.error("--requests must be in 1..1000 and --batch in 1..4096")
    runs = dict(item.split("=", 1) for item in args.run)
    runs = {k: Path(v) for k, v in runs.items()}
    names = args.task or task_names()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_serving_"))
    rows = []
    for name in names:
        task = get_task(name)
        data = task.simulate(work / name / "data", n=args.report_n, seed=5)
        run = runs[name] if name in runs else random_bundle(name, data, work / name / "run")
        row = {"task": name, "trained": name in runs}
        if not args.no_serving:
            row.update(bench_serving(name, run, batch=args.batch, requests=args.requests, threads=args.threads,
                                     max_body_mb=args.max_body_mb))
        if not args.no_report:
            row.update(bench_report(name, run, data, work / name / "report.html"))
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    cols = [("task", "task", "{}"), ("network", "network", "{}"), ("trained", "trained", "{}"), ("mode", "body", "{}"),
            ("body_kb", "body KB", "{:.0f}"),
            ("req_per_s", "req/s", "{:.2f}"), ("objects_per_s", "objects/s", "{:.0f}"),
            ("p50_ms", "p50 ms", "{:.0f}"), ("p95_ms", "p95 ms", "{:.0f}"),
            ("report_s", "report s", "{:.1f}"), ("report_mb", "report MB", "{:.1f}")]
    cols = [c for c in cols if any(c[0] in r for r in rows)]
    print(f"POST /predict, {args.batch} objects per request, {args.requests} sequential requests after 1 warm-up; "
          f"server: skysift serve (uvicorn, 127.0.0.1, {args.threads} threads, --max-body-mb {args.max_body_mb:g}), "
          f"untrained bundles of each task's "
          f"demo network; report on {args.report_n} simulated objects; {os.cpu_count()} CPU cores")
    print(" | ".join(h for _, h, _ in cols))
    for r in rows:
        print(" | ".join(f.format(r[k]) if k in r else "—" for k, _, f in cols))
    summary = {"batch": args.batch, "requests": args.requests, "rows": rows}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
