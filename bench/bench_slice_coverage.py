"""Coverage of the 95 % slice intervals of a scored run: the normal interval of the old code, the design interval
without and with the small-pure-stratum floor.

A fixed synthetic production window (segment x user_action x model_version strata, errors and overrides
over-sampled, a 3 % `language=ja` column that cuts across strata) is sampled again and again by the eval set's
allocation (400 cases, at least 5 per stratum) with stratified simple random sampling; every slice a scored run
reports (each value of each column, and each single stratum) is projected with the domain estimator of
``eval_pipelines.scoring.stats.domain_estimate_coded``. For each slice the share of samples whose interval holds the
slice's true production accuracy is the coverage; nominal is 95 %, and with R samples its Monte-Carlo s.e. is
sqrt(0.95 * 0.05 / R) (0.7 points at R = 1,000).

All three intervals come from the same samples, estimate and standard error in the same run: ``old`` is
``estimate ± z·se`` clipped to [0, 1] (what domain slices reported first), ``new`` the design interval
(Korn–Graubard on Satterthwaite's degrees of freedom, Clopper–Pearson at the Kish size when the variance estimate
is 0), ``floor`` the same with ``pure_stratum_floor=True`` (what a scored run's slices report: small pure strata
get the variance of a one-case prior at the slice's accuracy).

    python bench/bench_slice_coverage.py [--reps 1000] [--size 400] [--seed 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy import stats

from eval_pipelines.evalsets.design import allocate, allocation_scores, assign_strata
from eval_pipelines.scoring.stats import domain_estimate_coded


def production_window(seed: int = 7, size: int = 20_000) -> tuple[pd.DataFrame, np.ndarray, list[str], np.ndarray]:
    """(frame, correct, stratum labels, stratum code per case) of a synthetic window with demo-like accuracies."""
    rng = np.random.default_rng(seed)
    segment = rng.choice(["consumer", "smb", "enterprise"], size, p=[0.70, 0.22, 0.08])
    action = rng.choice(["accepted", "edited", "overridden", "ignored"], size, p=[0.80, 0.08, 0.07, 0.05])
    model = rng.choice(["v1", "v2"], size)
    language = rng.choice(["en", "de", "ja"], size, p=[0.85, 0.12, 0.03])
    accuracy = pd.Series(action).map({"accepted": 0.985, "edited": 0.55, "overridden": 0.05,
                                      "ignored": 0.9}).to_numpy()
    accuracy = np.where((segment == "enterprise") & (action == "accepted"), 0.995, accuracy)
    accuracy = np.where(model == "v2", np.minimum(accuracy + 0.01, 1.0), accuracy)
    error = rng.random(size) < 0.02  # the system returned an error: always wrong
    correct = (rng.random(size) < np.where(error, 0.0, accuracy)).astype(np.float64)
    failure = np.where(error, "error", np.where(action == "overridden", "override", "none"))
    frame = pd.DataFrame({"segment": segment, "user_action": action, "model_version": model, "language": language,
                          "failure": failure})
    strata = assign_strata(frame, ["segment", "user_action", "model_version", "failure"])
    return frame, correct, list(strata.labels), strata.codes


def slices(frame: pd.DataFrame, labels: list[str], codes: np.ndarray) -> dict[str, np.ndarray]:
    found = {"all": np.ones(len(frame), dtype=bool)}
    for column in ("segment", "user_action", "model_version", "language"):
        for value in sorted(frame[column].unique()):
            found[f"{column}={value}"] = (frame[column] == value).to_numpy()
    for h, label in enumerate(labels):
        found[f"stratum {label}"] = codes == h
    return found


def eval_set_world(size: int):
    """The bench's window and the eval-set design drawn on it: (correct, stratum labels, stratum codes,
    N_h, n_h, each stratum's row indices, slice masks), errors and overrides over-sampled 2x, >= 5 per stratum."""
    frame, correct, labels, codes = production_window()
    big_n = np.bincount(codes, minlength=len(labels)).astype(np.float64)
    factors = np.array([2.0 if ("failure=error" in label or "failure=override" in label) else 1.0
                        for label in labels])
    small_n = allocate(big_n.astype(np.int64), allocation_scores(big_n, None, "proportional", factors),
                       size, 5).sizes.astype(np.float64)
    members = [np.flatnonzero(codes == h) for h in range(len(labels))]
    return correct, labels, codes, big_n, small_n, members, slices(frame, labels, codes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--size", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    correct, labels, codes, big_n, small_n, members, masks = eval_set_world(args.size)
    truth = {name: float(correct[mask].mean()) for name, mask in masks.items()}
    census_stratum = small_n >= big_n  # taken whole: no sampling error, a zero width is right
    census = {name: bool(census_stratum[np.unique(codes[mask])].all()) for name, mask in masks.items()}
    z = float(stats.norm.ppf(0.975))
    names = list(masks)
    kinds = ("old", "new", "floor")
    covered = {key: np.zeros(len(names)) for key in kinds}
    width = {key: np.zeros(len(names)) for key in kinds}
    zero = {key: np.zeros(len(names)) for key in kinds}
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    for _ in range(args.reps):
        chosen = np.concatenate([rng.choice(members[h], int(small_n[h]), replace=False)
                                 for h in range(len(labels))])
        y, sample_codes = correct[chosen], codes[chosen]
        for i, name in enumerate(names):
            found = domain_estimate_coded(y, sample_codes, big_n, small_n, masks[name][chosen], 0.95)
            floored = domain_estimate_coded(y, sample_codes, big_n, small_n, masks[name][chosen], 0.95,
                                            pure_stratum_floor=True)
            old = (max(found.estimate - z * found.std_error, 0.0), min(found.estimate + z * found.std_error, 1.0))
            for key, (low, high) in (("old", old), ("new", (found.ci_low, found.ci_high)),
                                     ("floor", (floored.ci_low, floored.ci_high))):
                covered[key][i] += low <= truth[name] <= high
                width[key][i] += high - low
                zero[key][i] += (high - low) == 0.0 and found.n >= 2 and not census[name]
    elapsed = time.perf_counter() - started

    se = np.sqrt(0.95 * 0.05 / args.reps)
    print(f"{len(labels)} strata, eval set of {int(small_n.sum())}, {args.reps} samples, {len(names)} slices "
          f"({elapsed:.1f} s); Monte-Carlo s.e. of a coverage {se:.3f}")
    table = pd.DataFrame({"slice": names, "N": [int(masks[n].sum()) for n in names],
                          "truth": [truth[n] for n in names],
                          **{key: covered[key] / args.reps for key in kinds},
                          **{f"{key}_width": width[key] / args.reps for key in kinds},
                          **{f"{key}_zero_width": zero[key] / args.reps for key in kinds}})
    for key in kinds:
        stratum_rows = table["slice"].str.startswith("stratum ")
        print(f"{key}: slices below 90 %: {int((table[key] < 0.90).sum())} of {len(table)} "
              f"(stratum slices {int((table.loc[stratum_rows, key] < 0.90).sum())} of {int(stratum_rows.sum())}); "
              f"below 93 %: {int((table[key] < 0.93).sum())}; median coverage {table[key].median():.3f}, "
              f"minimum {table[key].min():.3f}; zero-width intervals on >= 2 cases (census strata aside) "
              f"{table[f'{key}_zero_width'].mean():.1%} of slice estimates; median width "
              f"{table[f'{key}_width'].median():.3f} "
              f"(column slices {table.loc[~stratum_rows, f'{key}_width'].median():.3f})")
    with pd.option_context("display.width", 200, "display.max_rows", 200, "display.max_colwidth", 70):
        print(table.round(3).sort_values("floor").to_string(index=False))


if __name__ == "__main__":
    main()
