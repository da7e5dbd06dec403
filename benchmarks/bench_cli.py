"""Start-up time of the commands that should answer at once, and what they import.

    python benchmarks/bench_cli.py [--repeat 5]

Each command runs ``--repeat`` times in a fresh interpreter; the table gives the median wall seconds
(the target is <= 1 s on an idle machine) and the heavy libraries the command imported (found with
``-X importtime``, one extra run each).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from _common import median_wall, print_table

HEAVY = ("torch", "lightning", "pytorch_lightning", "timm", "sklearn", "pandas", "scipy", "matplotlib",
         "numba", "lightgbm", "fastapi", "pydantic", "requests")

_SRC = Path(__file__).resolve().parents[1] / "src"


def _commands() -> list[tuple[str, list[str]]]:
    # `python -m skysift` rather than the console script: the same code whichever venv runs this file
    cli = [sys.executable, "-m", "skysift"]
    return [("skysift --help", [*cli, "--help"]),
            ("skysift tasks", [*cli, "tasks"]),
            # every task: each has its own models module (and its own network libraries)
            *((f"skysift models {t}", [*cli, "models", t])
              for t in ("transits", "transients", "technosignatures", "galaxies")),
            ("skysift datasets list", [*cli, "datasets", "list"]),
            ('python -c "import skysift"', [sys.executable, "-c", "import skysift"])]


def heavy_imports(cmd: list[str], env: dict) -> list[str]:
    """Top-level packages from ``HEAVY`` that ``cmd`` imports (``-X importtime`` writes to stderr)."""
    import subprocess

    r = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], env=env, capture_output=True, text=True)
    seen = set()
    for line in r.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        name = line.rsplit("|", 1)[1].strip().split(".")[0]
        if name in HEAVY:
            seen.add(name)
    return sorted(seen)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_SRC), os.environ.get("PYTHONPATH")]))}
    rows = []
    for name, cmd in _commands():
        med, runs = median_wall(cmd, repeat=args.repeat, env=env)
        rows.append((name, med, f"{min(runs):.2f}-{max(runs):.2f}", ", ".join(heavy_imports(cmd, env)) or "-"))
    print(f"\nCLI start-up, median of {args.repeat} runs (python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cpus, load avg {os.getloadavg()[0]:.1f})")
    print_table(["command", "median s", "range s", "heavy modules imported"], rows, floatfmt=".2f")


if __name__ == "__main__":
    main()
