"""The benchmark protocol's pieces: the bootstrap interval helper and the frozen outer splits."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

from _common import bootstrap_ci, load_outer_split, outer_mask  # noqa: E402


def test_bootstrap_ci_covers_the_point_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    small = (rng.random(100) < 0.8).astype(float)
    large = (rng.random(10_000) < 0.8).astype(float)
    p, lo, hi = bootstrap_ci(np.mean, small, n_boot=1000)
    assert lo <= p <= hi
    _, lo2, hi2 = bootstrap_ci(np.mean, large, n_boot=1000)
    assert hi2 - lo2 < (hi - lo) / 3  # width ~ 1/sqrt(n)
    assert lo2 < 0.8 < hi2


def test_bootstrap_ci_keeps_pairs():
    a = np.linspace(0, 1, 200)
    # identical arrays: a paired difference has zero spread; unpaired it would not
    _, lo, hi = bootstrap_ci(lambda x, y: float(np.mean(x - y)), a, a.copy(), n_boot=500)
    assert lo == hi == 0.0


def test_bootstrap_ci_is_reproducible_and_rejects_ragged_arrays():
    x = np.arange(50.0)
    assert bootstrap_ci(np.mean, x, seed=3, n_boot=200) == bootstrap_ci(np.mean, x, seed=3, n_boot=200)
    with pytest.raises(ValueError):
        bootstrap_ci(lambda a, b: 0.0, x, x[:10])


@pytest.mark.parametrize("name,n_total", [("gz1_outer_test", 5665), ("plasticc_outer_test", 7848)])
def test_outer_split_is_frozen_and_unique(name, n_total):
    split = load_outer_split(name)
    assert split["random_state"] == 20261130 and split["n_total"] == n_total
    assert len(split["test_ids"]) == len(set(split["test_ids"])) == round(0.2 * n_total)


@pytest.mark.realdata
def test_gz1_sweep_never_sees_the_outer_split(shared_data):
    import pandas as pd
    from sklearn.model_selection import train_test_split

    lab = pd.read_csv(shared_data / "galaxyzoo/gz1/labels.csv", dtype={"OBJID": str})
    outer = outer_mask(lab.OBJID.to_numpy(), "gz1_outer_test")
    # the sweep's own draw (sweep_galaxies_gz1.run): its selection split and training part come from the rest
    six = lab.CLASS.to_numpy()
    three = np.select([six == 0, np.isin(six, [1, 2, 3])], [0, 1], 2)
    idx = np.flatnonzero(~outer)
    fit, sel = train_test_split(idx, test_size=0.2, stratify=three[idx], random_state=0)
    test = set(np.flatnonzero(outer))
    assert not test & set(fit) and not test & set(sel)
    assert set(lab.OBJID[outer]) == set(json.loads((BENCH / "splits/gz1_outer_test.json").read_text())["test_ids"])


def test_technosignatures_build_merges_several_injected_sets_into_training(tmp_path):
    """``build --n-transient``: a second injected set is merged after the first, its truth rows
    appended to ``injection_truth.csv`` (not replacing the first set's)."""
    from skysift.technosignatures.io import with_content_ids, write_cadence_folder
    from technosignatures_real import _merge

    def write(path, n, level, kind):
        rows = [(np.full((6, 4, 8), level + i, np.float32), int(kind == "needle"), {"kind": kind}) for i in range(n)]
        return write_cadence_folder(path, with_content_ids(rows), ("kind",))

    dst = write(tmp_path / "train", 2, 0.0, "sim")
    _merge(write(tmp_path / "_inj", 2, 10.0, "needle"), dst)
    _merge(write(tmp_path / "_tr", 1, 20.0, "transient"), dst)
    labels = (dst / "train_labels.csv").read_text().split()
    truth = (dst / "injection_truth.csv").read_text().split()
    assert len(labels) == 1 + 5 and len(set(labels)) == 6 and len(list((dst / "train").glob("*/*.npy"))) == 5
    assert truth[0] == "id,target,kind" and [r.split(",")[2] for r in truth[1:]] == ["needle", "needle", "transient"]
    assert not (tmp_path / "_inj").exists() and not (tmp_path / "_tr").exists()
