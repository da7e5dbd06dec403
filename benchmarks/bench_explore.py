"""Time ``explore`` on a dataset, stage by stage (load, galleries, raw matrix, PCA, UMAP).

Real PLAsTiCC training set (7,848 objects) from ``../shared/data``::

    nice -n 10 .venv/bin/python benchmarks/bench_explore.py transients ../shared/data/plasticc \\
        --out /tmp/explore_plasticc

Real Galaxy Zoo 1 cutouts::

    nice -n 10 .venv/bin/python benchmarks/bench_explore.py galaxies ../shared/data/galaxyzoo/gz1 --out /tmp/explore_gz1

Simulated data of any task (written first with the task's simulator)::

    nice -n 10 .venv/bin/python benchmarks/bench_explore.py transits --simulate 2000 --out /tmp/explore_sim

Prints one JSON line: wall time per stage (from ``explore.json``), total, peak memory, files.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _common import peak_rss_mib, timed
from skysift.core.task import get_task
from skysift.explore import MAX_EMBED, explore


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task")
    ap.add_argument("data", nargs="?", help="path the task's loader reads (or use --simulate)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--simulate", type=int, default=None, help="simulate this many objects instead")
    ap.add_argument("--max-n", type=int, default=MAX_EMBED)
    ap.add_argument("--umap", action="store_true", help="also UMAP (needs umap-learn)")
    args = ap.parse_args(argv)
    if (args.data is None) == (args.simulate is None):
        ap.error("give DATA or --simulate N")
    task = get_task(args.task)
    data = args.data
    if args.simulate:
        data = task.simulate(Path(tempfile.mkdtemp(prefix="bench_explore_")), n=args.simulate, seed=0)
    with timed() as t:
        files = explore(task, data, args.out, max_n=args.max_n, umap=args.umap or None)
    total = t.seconds
    info = json.loads(Path(files["summary_json"]).read_text())
    result = {"task": task.name, "data": str(data), "n_objects": info["n_objects"],
              "n_embedded": info["n_embedded"], "raw_features": info["raw_features"],
              "wall_s": round(total, 2), "stages_s": {k: round(v, 2) for k, v in info["timings"].items()},
              "peak_rss_mb": round(peak_rss_mib(), 1),
              "files": sorted(p.name for p in map(Path, files.values()))}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
