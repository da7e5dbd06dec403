"""Write the frozen outer test splits of ``benchmarks/protocol.md`` (run once; they are committed).

    python benchmarks/make_splits.py [--force]

Each split is a stratified 20 % of a real data set, drawn with ``OUTER_SEED``, a seed no sweep,
cross-validation or benchmark of this repository has used (they use 0-4 and ``seed + fold``), and
stored as object ids only, so that a sweep can drop those objects before it draws anything. Writing
them again with ``--force`` is only for a changed data set; a figure measured on a split that was
redrawn after a choice had seen the results would no longer count.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

OUTER_SEED = 20261130
OUTER_FRAC = 0.2
SHARED = Path(os.environ.get("SKYSIFT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
OUT = Path(__file__).resolve().parent / "splits"


def gz1() -> tuple[list[str], np.ndarray, str]:
    lab = pd.read_csv(SHARED / "galaxyzoo/gz1/labels.csv", dtype={"OBJID": str})
    six = lab.CLASS.to_numpy()
    # stratified on the three-way class (the headline scheme); the six-way benchmark uses the same ids
    three = np.select([six == 0, np.isin(six, [1, 2, 3])], [0, 1], 2)
    return lab.OBJID.tolist(), three, "galaxyzoo/gz1/labels.csv (stratified on the three-way class)"


def plasticc() -> tuple[list[str], np.ndarray, str]:
    meta = pd.read_csv(SHARED / "plasticc/plasticc_train_metadata.csv.gz", skipinitialspace=True,
                       usecols=["object_id", "target"])
    return meta.object_id.astype(str).tolist(), meta.target.to_numpy(), \
        "plasticc/plasticc_train_metadata.csv.gz (stratified on target)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    for name, get in (("gz1_outer_test", gz1), ("plasticc_outer_test", plasticc)):
        path = OUT / f"{name}.json"
        if path.exists() and not args.force:
            print(f"{path} exists (frozen); not rewritten")
            continue
        ids, y, source = get()
        _, test = train_test_split(np.arange(len(ids)), test_size=OUTER_FRAC, stratify=y, random_state=OUTER_SEED)
        test_ids = sorted(ids[i] for i in test)
        path.write_text(json.dumps({"source": source, "n_total": len(ids), "frac": OUTER_FRAC,
                                    "random_state": OUTER_SEED, "test_ids": test_ids}, indent=0) + "\n")
        print(f"{path}: {len(test_ids)} of {len(ids)} objects")


if __name__ == "__main__":
    main()
