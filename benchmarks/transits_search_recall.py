"""Where the transits pipeline loses planets: does the box-least-squares search find the period of
a simulated host at all (a *search* miss, which no classifier can undo), by its expected MES?

    python benchmarks/transits_search_recall.py [--n 600] [--seed 77] [--anti-weight 1.5]

Protocol: ``--n`` stars with half of them hosts, from the training simulator and from the
independent generator (:mod:`skysift.transits.independent`); the default search settings; a host
counts as found when the period of the first candidate, or of either of the two candidates of the
iterated search, is within 1% of the true period of its (first) planet or of 2, 3, 1/2 or 1/3 of
it. The MES bins are each generator's own detection statistic (training simulator: depth over the
star's noise averaged over the transit, after a 1-day high-pass, × √transits; independent
generator: its SNR against a CDPP high-passed at three transit durations). A diagnostic: no model
is trained and nothing here is tuned on.
"""
from __future__ import annotations

import argparse

import numpy as np

from _common import print_table
from skysift.transits.independent import independent_light_curves
from skysift.transits.search import SearchSettings, compute_views
from skysift.transits.simulate import simulate_light_curves

BINS = ((0, 10), (10, 15), (15, 25), (25, 50), (50, np.inf))


def _matches(found: np.ndarray, true: np.ndarray) -> np.ndarray:
    r = found / true
    return np.any([np.abs(r / m - 1) < 0.01 for m in (1, 2, 3, 1 / 2, 1 / 3)], axis=0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--seed", type=int, default=77)
    ap.add_argument("--anti-weight", type=float, default=None,
                    help="SearchSettings.anti_weight (the bump-power contrast); default: the default")
    args = ap.parse_args()
    s = SearchSettings() if args.anti_weight is None else SearchSettings(anti_weight=args.anti_weight)
    rows = []
    for name, make in (("training simulator", lambda: simulate_light_curves(args.n, seed=args.seed,
                                                                            positive_fraction=0.5, workers=1)),
                       ("independent generator", lambda: independent_light_curves(args.n, seed=args.seed,
                                                                                  positive_fraction=0.5))):
        flux, y, info = make()
        hosts = np.flatnonzero(y == 1)
        _, found = compute_views(flux[hosts], s, with_search=True)
        true = np.array([info[i]["period"] for i in hosts])
        mes = np.array([info[i].get("mes", info[i].get("snr", np.nan)) for i in hosts])
        first = _matches(found["period"], true)
        either = first | _matches(found["period_2"], true) if "period_2" in found else first
        for lo, hi in (*BINS, (0, np.inf)):
            sel = (mes >= lo) & (mes < hi)
            label = "all" if (lo, hi) == (0, np.inf) else f"{lo:g}–{hi:g}"
            rows.append([name, label, int(sel.sum()), f"{first[sel].mean():.2f}" if sel.any() else "-",
                         f"{either[sel].mean():.2f}" if sel.any() else "-"])
    print_table(["generator", "MES", "hosts", "found (first candidate)", "found (either candidate)"], rows)


if __name__ == "__main__":
    main()
