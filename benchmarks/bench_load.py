"""Concurrent load on ``skysift serve``: many clients at once for a bounded time, zero errors expected.

For each model, a real server (``skysift serve``, uvicorn, one process) is started on 127.0.0.1,
pinned to ``--cores`` CPU cores (``os.sched_setaffinity``; torch and LightGBM use as many threads),
and ``--clients`` asyncio clients (one httpx connection each) send one-object ``POST /predict``
requests in the task's JSON format back to back for ``--seconds`` seconds, after a warm-up. Every
response must be a 200 with one prediction; anything else, a timeout included, counts as an error.
Latency is measured per request by the client (queueing in the server included).

Models: the transients ``lgbm`` (LightGBM on 293 features; trained here on ``--n-train`` simulated
objects, since an estimator has no random initial state) and the galaxies default network
(random weights, the same compute as a trained one: ``serving.testing.random_bundle``).

    python benchmarks/bench_load.py                       # both models, 50 clients, 20 s each
    python benchmarks/bench_load.py --clients 100 --seconds 60 --models galaxies

Only 127.0.0.1 is contacted; the run is bounded by ``--seconds`` per model (plus start-up). Prints
a table and one JSON line with every figure.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from _common import print_table


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_models(work: Path, which: list[str], n_train: int) -> dict[str, Path]:
    import skysift
    from skysift.core.task import get_task
    from skysift.serving.testing import random_bundle

    runs = {}
    if "transients" in which:
        data = get_task("transients").simulate(work / "transients", n=n_train, seed=3)
        skysift.train("transients", data, work / "run_transients", model="lgbm", progress=False)
        runs["transients"] = work / "run_transients"
    if "galaxies" in which:
        data = get_task("galaxies").simulate(work / "galaxies", n=64, seed=3)
        runs["galaxies"] = random_bundle("galaxies", data, work / "run_galaxies")
    return runs


def one_object_body(task_name: str) -> bytes:
    from skysift.core.task import get_task

    example = get_task(task_name).request_example()
    return json.dumps(example["objects"][0]).encode()


async def _load(url: str, body: bytes, clients: int, seconds: float, timeout: float) -> dict:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    headers = {"content-type": "application/json"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits, trust_env=False) as client:
        for _ in range(3):  # warm-up: first-call allocations, feature-extractor caches
            (await client.post("/predict", content=body, headers=headers)).raise_for_status()
        stop = time.perf_counter() + seconds

        async def worker():
            while time.perf_counter() < stop:
                t = time.perf_counter()
                try:
                    r = await client.post("/predict", content=body, headers=headers)
                    ok = r.status_code == 200 and r.json()["n"] == 1
                    key = None if ok else f"HTTP {r.status_code}"
                except httpx.HTTPError as e:
                    key = type(e).__name__
                if key is None:
                    latencies.append(time.perf_counter() - t)
                else:
                    errors[key] = errors.get(key, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {"requests": len(latencies) + sum(errors.values()), "ok": len(latencies), "errors": errors,
            "wall_s": wall, "p50_ms": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
            "p99_ms": float(np.percentile(lat, 99)) if len(lat) else float("nan"),
            "req_per_s": len(latencies) / wall}


def bench(task_name: str, run: Path, *, clients: int, seconds: float, cores: int, timeout: float) -> dict:
    port = free_port()
    threads = str(cores)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "SKYSIFT_NO_PROGRESS": "1"}
    cpus = sorted(os.sched_getaffinity(0))[:cores]
    # the server's log goes to a file: a pipe nobody reads fills up and blocks the server
    log = open(run.parent / f"server-{task_name}.log", "w+b")
    server = subprocess.Popen([sys.executable, "-m", "skysift", "serve", str(run), "--host", "127.0.0.1",
                               "--port", str(port), "--log-level", "warning", "--timeout", str(timeout)],
                              env=env, stdout=log, stderr=subprocess.STDOUT,
                              preexec_fn=lambda: os.sched_setaffinity(0, cpus))
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1200):  # bounded wait for the server (120 s)
            try:
                if httpx.get(f"{url}/ping", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"skysift serve exited: {log.read().decode()[-2000:]}")
            time.sleep(0.1)
        else:
            raise RuntimeError("skysift serve did not answer /ping within 120 s")
        res = asyncio.run(_load(url, one_object_body(task_name), clients, seconds, timeout))
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.seek(0)
        server_log = log.read().decode(errors="replace")
        log.close()
    if res["errors"]:
        print(f"{task_name} server log (end):\n{server_log[-3000:]}", file=sys.stderr)
    card = json.loads((run / "model.json").read_text())
    return {"task": task_name, "model": card["model"]["name"], "clients": clients, "seconds": seconds,
            "cores": len(cpus), **res}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["transients", "galaxies"], choices=["transients", "galaxies"])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=60.0, help="client and server per-request timeout")
    ap.add_argument("--n-train", type=int, default=400, help="simulated objects the lgbm model is trained on")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="skysift-load-") as tmp:
        runs = build_models(Path(tmp), args.models, args.n_train)
        results = [bench(name, run, clients=args.clients, seconds=args.seconds, cores=args.cores,
                         timeout=args.timeout) for name, run in runs.items()]
    print_table(["task / model", "cores", "clients", "duration s", "requests", "errors", "p50 ms", "p99 ms",
                 "requests/s"],
                [[f"{r['task']} / {r['model']}", r["cores"], r["clients"], round(r["wall_s"], 1), r["requests"],
                  sum(r["errors"].values()), r["p50_ms"], r["p99_ms"], r["req_per_s"]] for r in results])
    print(json.dumps(results))
    if any(r["errors"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
