"""Coverage of the 95 % slice intervals of a scored run, over several production populations and eval-set sizes:
the normal interval of the old code and variants of the design interval, the pipeline's among them.

A synthetic production window (segment x user_action x model_version strata, errors and overrides over-sampled,
a 3 % `language=ja` column that cuts across strata) is drawn once per population seed, then sampled again and
again by the eval set's allocation (400 cases, at least 5 per stratum) with stratified simple random sampling;
every slice a scored run reports (each value of each column, and each single stratum) is projected with the domain
estimator of ``eval_pipelines.scoring.stats.domain_estimate_coded``. For each slice the share of samples whose
interval holds the slice's true production accuracy is the coverage; nominal is 95 %, and with R samples its
Monte-Carlo s.e. is sqrt(0.95 * 0.05 / R) (0.7 points at R = 1,000). The population seeds are the out-of-sample
check: a rule tuned on one population must hold on the others.

Every interval comes from the same samples, estimate and standard error: ``old`` is ``estimate ± z·se`` clipped
to [0, 1] (what domain slices reported first); the others are the design interval (Korn–Graubard on Satterthwaite's
degrees of freedom, Clopper–Pearson at the Kish size when the variance estimate is 0): ``previous`` with each
stratum's variance on ``n_h - 1`` degrees of freedom and no cap (what slices reported before the two changes
that follow); ``uncapped`` with 0/1 strata's degrees of freedom measured from their kurtosis
(``eval_pipelines.intervals.variance_degrees_of_freedom``: about 2 for one error in 128 cases); ``design`` that and
the effective size capped at n below 8 degrees of freedom (``MIN_RELIABLE_DESIGN_DF``: what every design-based
estimate of the pipeline reports); ``nchs`` capped always (surveytable's ``svyciprop_adjusted``).

    python bench/bench_slice_coverage.py [--reps 1000] [--sizes 400] [--seed 1] [--population-seeds 7,8,9,10,11]
        [--table]          (--sizes 250,400,600 --reps 500: the sizes check in docs/eval_sets.md)
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
from scipy import stats

from eval_pipelines import intervals
from eval_pipelines.evalsets.design import allocate, allocation_scores, assign_strata
from eval_pipelines.scoring import stats as stats_module
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


def eval_set_world(size: int, population_seed: int = 7):
    """The bench's window and the eval-set design drawn on it: (correct, stratum labels, stratum codes,
    N_h, n_h, each stratum's row indices, slice masks), errors and overrides over-sampled 2x, >= 5 per stratum."""
    frame, correct, labels, codes = production_window(population_seed)
    big_n = np.bincount(codes, minlength=len(labels)).astype(np.float64)
    factors = np.array([2.0 if ("failure=error" in label or "failure=override" in label) else 1.0
                        for label in labels])
    small_n = allocate(big_n.astype(np.int64), allocation_scores(big_n, None, "proportional", factors),
                       size, 5).sizes.astype(np.float64)
    members = [np.flatnonzero(codes == h) for h in range(len(labels))]
    return correct, labels, codes, big_n, small_n, members, slices(frame, labels, codes)


# name: (effective-size cap below this many degrees of freedom, degrees of freedom measured from the kurtosis)
VARIANTS = {"previous": (0.0, False), "uncapped": (0.0, True),
            "design": (float(intervals.MIN_RELIABLE_DESIGN_DF), True), "nchs": (float("inf"), True)}
KINDS = ("old", *VARIANTS)


def _normal_theory_degrees(values: np.ndarray, codes: np.ndarray, minlength: int) -> np.ndarray:
    return np.full(minlength, np.inf)  # leaves every stratum on n_h - 1


@contextlib.contextmanager
def interval_variant(threshold: float, kurtosis_degrees: bool) -> Iterator[None]:
    """The design interval with its effective-size cap below ``threshold`` degrees of freedom (the pipeline: 8)
    and, unless ``kurtosis_degrees``, each stratum's variance on n_h - 1 degrees of freedom."""
    kept = intervals.MIN_RELIABLE_DESIGN_DF, stats_module.variance_degrees_of_freedom
    intervals.MIN_RELIABLE_DESIGN_DF = threshold
    if not kurtosis_degrees:
        stats_module.variance_degrees_of_freedom = _normal_theory_degrees
    try:
        yield
    finally:
        intervals.MIN_RELIABLE_DESIGN_DF, stats_module.variance_degrees_of_freedom = kept


def coverage_table(size: int, reps: int, seed: int, population_seed: int) -> tuple[pd.DataFrame, int, int, float]:
    """Per slice: N, truth, and per interval kind its coverage, mean width and share of zero-width intervals."""
    correct, labels, codes, big_n, small_n, members, masks = eval_set_world(size, population_seed)
    truth = {name: float(correct[mask].mean()) for name, mask in masks.items()}
    census_stratum = small_n >= big_n  # taken whole: no sampling error, a zero width is right
    census = {name: bool(census_stratum[np.unique(codes[mask])].all()) for name, mask in masks.items()}
    z = float(stats.norm.ppf(0.975))
    names = list(masks)
    covered = {key: np.zeros(len(names)) for key in KINDS}
    width = {key: np.zeros(len(names)) for key in KINDS}
    zero = {key: np.zeros(len(names)) for key in KINDS}
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    for _ in range(reps):
        chosen = np.concatenate([rng.choice(members[h], int(small_n[h]), replace=False)
                                 for h in range(len(labels))])
        y, sample_codes = correct[chosen], codes[chosen]
        for i, name in enumerate(names):
            found = {}
            for key, variant in VARIANTS.items():
                with interval_variant(*variant):
                    found[key] = domain_estimate_coded(y, sample_codes, big_n, small_n, masks[name][chosen], 0.95)
            base = found["design"]
            bounds = {"old": (max(base.estimate - z * base.std_error, 0.0),
                              min(base.estimate + z * base.std_error, 1.0)),
                      **{key: (got.ci_low, got.ci_high) for key, got in found.items()}}
            for key, (low, high) in bounds.items():
                covered[key][i] += low <= truth[name] <= high
                width[key][i] += high - low
                zero[key][i] += (high - low) == 0.0 and base.n >= 2 and not census[name]
    elapsed = time.perf_counter() - started
    table = pd.DataFrame({"slice": names, "N": [int(masks[n].sum()) for n in names],
                          "truth": [truth[n] for n in names],
                          **{key: covered[key] / reps for key in KINDS},
                          **{f"{key}_width": width[key] / reps for key in KINDS},
                          **{f"{key}_zero_width": zero[key] / reps for key in KINDS}})
    return table, len(labels), int(small_n.sum()), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--sizes", default="400", help="eval-set sizes, comma-separated")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--population-seeds", default="7,8,9,10,11")
    parser.add_argument("--table", action="store_true", help="print every slice of every population")
    args = parser.parse_args()

    se = np.sqrt(0.95 * 0.05 / args.reps)
    lowest = {key: [] for key in KINDS}
    runs = [(int(size), int(seed)) for size in args.sizes.split(",") for seed in args.population_seeds.split(",")]
    for size, population_seed in runs:
        table, strata, sampled, elapsed = coverage_table(size, args.reps, args.seed, population_seed)
        stratum_rows = table["slice"].str.startswith("stratum ")
        print(f"population seed {population_seed}: {strata} strata, eval set of {sampled}, {args.reps} samples, "
              f"{len(table)} slices ({elapsed:.1f} s); Monte-Carlo s.e. of a coverage {se:.3f}")
        for key in KINDS:
            worst = table.loc[table[key].idxmin()]
            lowest[key].append(float(worst[key]))
            print(f"  {key:>8}: lowest {worst[key]:.3f} ({worst['slice']}); below 90 % "
                  f"{int((table[key] < 0.90).sum())}, below 93 % {int((table[key] < 0.93).sum())} of {len(table)}; "
                  f"whole set {table.loc[0, key]:.3f} width {table.loc[0, f'{key}_width']:.3f}; median width "
                  f"column slices {table.loc[~stratum_rows & (table.index > 0), f'{key}_width'].median():.3f}, "
                  f"strata {table.loc[stratum_rows, f'{key}_width'].median():.3f}; zero-width on >= 2 cases "
                  f"{table[f'{key}_zero_width'].mean():.1%}")
        if args.table:
            with pd.option_context("display.width", 250, "display.max_rows", 200, "display.max_colwidth", 70):
                print(table.round(3).sort_values("design").to_string(index=False))
    print(f"lowest slice coverage per (size, population seed) {runs}: "
          + "; ".join(f"{key} {' '.join(f'{value:.3f}' for value in values)}" for key, values in lowest.items()))


if __name__ == "__main__":
    main()
