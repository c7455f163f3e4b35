"""The candidate fixes for slices whose small strata are pure by chance, measured on the same samples.

The world, the eval-set design and the slices are those of ``bench/bench_slice_coverage.py`` (1,000 eval sets of
400 from a 20,000-case window, 58 slices). Each variant adds, for the interval only, a variance term for each pure
stratum (sampled, not a census, its ``m`` sampled cases all in the slice and all alike) to the domain estimator's
design variance, ``N_h² (1 - f_h) v_h / N̂_d²``, and differs in

- ``v_h``: ``pc a``: the sample variance of an accuracy ``(x + a) / (m + 2a)``, ``p̃ (1 - p̃) / (m - 1)``;
  ``jeffreys``: the variance of the posterior ``Beta(x + 1/2, m - x + 1/2)``; ``one-case``: of
  ``Beta(x + p₀, m - x + 1 - p₀)``, a prior worth one case at the slice's sampled accuracy ``p₀``
  (:func:`eval_pipelines.intervals.small_pure_stratum_variances`);
- which strata: every pure stratum, or only those of ``m <= 5`` (``small``: the sign test cannot reject 1/2);
- ``df``: whether the term enters Satterthwaite's degrees of freedom (on ``m - 1``) or not;
- ``gate``: whether it is added only when the design variance is > 0 (a variance of 0 keeps Clopper–Pearson at
  the Kish size) or always. Off ``df`` the gate changes nothing: a zero design variance leaves no degrees of
  freedom, and the interval falls back to Clopper–Pearson at the Kish size anyway; in ``df`` it matters (the
  rejected attempt's floors alone made ``ν`` and the effective size large).

``design`` is the interval without any term (what slices report without the floor); ``one-case small gate``
is what ``domain_estimate_coded(pure_stratum_floor=True)`` reports (checked here against it on every estimate).
Prints per variant the lowest slice coverage, the count below 93 % and 94.5 %, and the median widths, then the
coverage and width of every column slice.

    python bench/bench_slice_floor_variants.py [--reps 1000] [--size 400] [--seed 1]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from bench_slice_coverage import eval_set_world

from eval_pipelines.evalsets.estimation import projection_interval
from eval_pipelines.intervals import (
    largest_uninformative_pure_size,
    small_pure_stratum_variances,
    stratified_variance_terms,
    stratum_variances,
)
from eval_pipelines.scoring.stats import domain_estimate_coded


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str  # none | pc | jeffreys | one-case
    a: float = 0.0
    small_only: bool = False
    in_df: bool = False
    gate: bool = True


VARIANTS = (
    Variant("design", "none"),
    Variant("pc 0.1 all df nogate (the rejected attempt)", "pc", 0.1, in_df=True, gate=False),
    Variant("pc 0.02 all df gate", "pc", 0.02, in_df=True),
    Variant("pc 0.01 all gate", "pc", 0.01),
    Variant("pc 0.02 all gate", "pc", 0.02),
    Variant("pc 0.05 all gate", "pc", 0.05),
    Variant("jeffreys all gate", "jeffreys"),
    Variant("one-case all gate", "one-case"),
    Variant("jeffreys small gate", "jeffreys", small_only=True),
    Variant("one-case small gate", "one-case", small_only=True),
)


def interval(variant: Variant, values: np.ndarray, codes: np.ndarray, big_n: np.ndarray, small_n: np.ndarray,
             in_domain: np.ndarray) -> tuple[float, float]:
    """The variant's 95 % interval of the slice mean (0/1 values): the domain estimator of
    :func:`eval_pipelines.scoring.stats.domain_estimate_coded` with the variant's pure-stratum term."""
    member = in_domain
    weight = (big_n / small_n)[codes]
    total = float(np.sum(weight[member]))
    estimate = float(np.sum(weight[member] * values[member]) / total)
    z = np.where(member, (values - estimate) / total, 0.0)
    k = len(big_n)
    in_stratum = np.bincount(codes[member], minlength=k).astype(np.float64)
    low, high = np.full(k, np.inf), np.full(k, -np.inf)
    np.minimum.at(low, codes[member], values[member])
    np.maximum.at(high, codes[member], values[member])
    single = (in_stratum > 0) & (low == high)
    variance_h = np.where((in_stratum == 0) | ((in_stratum == small_n) & single), 0.0,
                          stratum_variances(z, codes, small_n))
    fpc = 1.0 - small_n / big_n
    contributions = stratified_variance_terms(variance_h, big_n, small_n)
    degrees = np.minimum(small_n - 1.0, in_stratum)
    census_case = (fpc <= 0.0)[codes[member]]
    prior = None
    pure = (in_stratum == small_n) & single & (small_n >= 2) & (fpc > 0.0)
    if variant.small_only:
        pure &= small_n <= largest_uninformative_pure_size(0.95)
    sampled = ~census_case
    if variant.kind != "none" and pure.any() and sampled.any() and (not variant.gate or contributions.sum() > 0):
        m, right = small_n, high > 0.5
        x = np.where(right, m, 0.0)
        if variant.kind == "pc":
            smoothed = (x + variant.a) / (m + 2.0 * variant.a)
            accuracy_variance = smoothed * (1.0 - smoothed) / np.maximum(m - 1.0, 1.0)
        elif variant.kind == "jeffreys":
            a, b = x + 0.5, m - x + 0.5
            accuracy_variance = a * b / ((a + b) ** 2 * (a + b + 1.0))
        else:
            prior_mean = float(np.sum(weight[member][sampled] * values[member][sampled])
                               / np.sum(weight[member][sampled]))
            accuracy_variance = (small_pure_stratum_variances(m, right, prior_mean) if 0.0 < prior_mean < 1.0
                                 else np.zeros(k))
        prior = np.where(pure, big_n**2 * fpc * accuracy_variance / total**2, 0.0)
        if variant.in_df:
            contributions, prior = contributions + prior, None
    found = projection_interval(estimate, contributions, degrees, values[member], weight[member], census_case,
                                True, 0.95, max_degrees_of_freedom=float(np.sum(np.maximum(in_stratum - 1.0, 0.0))),
                                prior_contributions=prior)
    return found.low, found.high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--size", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    correct, labels, codes, big_n, small_n, members, masks = eval_set_world(args.size)
    names = list(masks)
    truth = np.array([float(correct[masks[name]].mean()) for name in names])
    covered = np.zeros((len(VARIANTS), len(names)))
    width = np.zeros((len(VARIANTS), len(names)))
    estimates = np.zeros(len(names))
    adopted = next(i for i, v in enumerate(VARIANTS) if v.name == "one-case small gate")
    mismatches = 0
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    for _ in range(args.reps):
        chosen = np.concatenate([rng.choice(members[h], int(small_n[h]), replace=False)
                                 for h in range(len(labels))])
        y, sample_codes = correct[chosen], codes[chosen]
        for j, name in enumerate(names):
            member = masks[name][chosen]
            if not member.any():
                continue
            estimates[j] += 1
            for i, variant in enumerate(VARIANTS):
                low, high = interval(variant, y, sample_codes, big_n, small_n, member)
                covered[i, j] += low <= truth[j] <= high
                width[i, j] += high - low
                if i == adopted:
                    library = domain_estimate_coded(y, sample_codes, big_n, small_n, member, 0.95,
                                                    pure_stratum_floor=True)
                    mismatches += not np.allclose((library.ci_low, library.ci_high), (low, high), rtol=0,
                                                  atol=1e-12)
    elapsed = time.perf_counter() - started
    coverage = covered / np.maximum(estimates, 1)
    mean_width = width / np.maximum(estimates, 1)
    column = np.array([not name.startswith("stratum ") for name in names])
    print(f"eval set of {int(small_n.sum())}, {args.reps} samples, {len(names)} slices, {len(VARIANTS)} variants "
          f"({elapsed:.0f} s); Monte-Carlo s.e. of a coverage {np.sqrt(0.95 * 0.05 / args.reps):.3f}; "
          f"'one-case small gate' differs from domain_estimate_coded(pure_stratum_floor=True) on {mismatches} "
          "estimates")
    for i, variant in enumerate(VARIANTS):
        worst = int(coverage[i].argmin())
        print(f"{variant.name:44s} lowest {coverage[i, worst]:.3f} ({names[worst]}); below 93 %: "
              f"{int((coverage[i] < 0.93).sum())}, below 94.5 %: {int((coverage[i] < 0.945).sum())}; median width "
              f"column slices {np.median(mean_width[i, column]):.3f}, stratum slices "
              f"{np.median(mean_width[i, ~column]):.3f}")
    table = pd.DataFrame({"slice": np.array(names)[column]})
    for i in range(len(VARIANTS)):
        short = f"v{i}"
        table[short] = coverage[i, column]
        table[f"{short}_w"] = mean_width[i, column]
    print("columns: v<i> = coverage, v<i>_w = mean width of variant i, in the order above (v0 = design)")
    with pd.option_context("display.width", 250, "display.max_columns", 50):
        print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
