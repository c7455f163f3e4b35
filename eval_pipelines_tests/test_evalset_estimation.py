"""The projection estimator: closed form, exact unbiasedness by enumeration, and 95% coverage by simulation."""

from __future__ import annotations

from itertools import combinations, product

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from eval_pipelines.evalsets.design import assign_strata, draw, sampling_keys
from eval_pipelines.evalsets.estimation import estimate_from_cases, stratified_estimate


def test_matches_the_closed_form_on_a_hand_example():
    values = [0.9, 0.1, 0.7, 1.0, 0.2, 0.0, 0.6]  # not 0/1, so the interval is not clipped
    strata = ["a", "a", "a", "b", "b", "b", "b"]
    sizes = {"a": 30, "b": 10}
    est = stratified_estimate(values, strata, sizes)
    w_a, w_b = 30 / 40, 10 / 40
    mean_a, mean_b = np.mean(values[:3]), np.mean(values[3:])
    var_a, var_b = np.var(values[:3], ddof=1), np.var(values[3:], ddof=1)
    variance = w_a**2 * (1 - 3 / 30) * var_a / 3 + w_b**2 * (1 - 4 / 10) * var_b / 4
    assert est.estimate == pytest.approx(w_a * mean_a + w_b * mean_b, abs=1e-15)
    assert est.std_error == pytest.approx(np.sqrt(variance), abs=1e-15)
    half = stats.t.ppf(0.975, 7 - 2) * np.sqrt(variance)  # t with n - H degrees of freedom
    assert (est.ci_low, est.ci_high) == pytest.approx((est.estimate - half, est.estimate + half), abs=1e-12)
    normal = stratified_estimate(values, strata, sizes, interval="normal")
    half = stats.norm.ppf(0.975) * np.sqrt(variance)
    assert (normal.ci_low, normal.ci_high) == pytest.approx((est.estimate - half, est.estimate + half), abs=1e-12)
    assert (est.n, est.population, est.strata, est.population_covered) == (7, 40, 2, 1.0)


def test_unbiased_and_variance_estimator_unbiased_by_full_enumeration():
    """Every possible stratified sample, each equally likely: E[estimate] = truth and E[v] = Var(estimate)."""
    population = {"a": [0.0, 1.0, 1.0, 0.3], "b": [1.0, 0.0, 0.5], "c": [0.2, 0.9, 0.4, 0.4, 1.0]}
    sample_sizes = {"a": 2, "b": 2, "c": 3}
    sizes = {h: len(v) for h, v in population.items()}
    truth = np.mean([v for values in population.values() for v in values])
    estimates, variances = [], []
    per_stratum = [list(combinations(range(sizes[h]), sample_sizes[h])) for h in population]
    for choice in product(*per_stratum):
        values, strata = [], []
        for h, rows in zip(population, choice, strict=True):
            values += [population[h][i] for i in rows]
            strata += [h] * len(rows)
        est = stratified_estimate(values, strata, sizes)
        estimates.append(est.estimate)
        variances.append(est.std_error**2)
    assert len(estimates) == 6 * 3 * 10
    assert np.mean(estimates) == pytest.approx(truth, abs=1e-12)
    assert np.mean(variances) == pytest.approx(np.var(estimates), abs=1e-12)


def test_projection_is_unbiased_and_its_95pct_interval_covers_the_truth():
    """1,000 seeded eval sets drawn by the real design from a fixed production window."""
    rng = np.random.default_rng(2026)
    sizes = [4000, 2500, 1200, 800, 600, 400, 300, 200]
    accuracy = [0.97, 0.92, 0.80, 0.55, 0.30, 0.10, 0.65, 0.02]
    labels = np.repeat([f"s{h}" for h in range(len(sizes))], sizes)
    correct = np.concatenate([rng.random(n) < p for n, p in zip(sizes, accuracy, strict=True)])
    truth = correct.mean()
    ids = pd.Series([f"evt-{i:07d}" for i in range(len(correct))])
    frame = pd.DataFrame({"segment": labels})
    strata = assign_strata(frame, ["segment"])
    population = pd.Series(np.bincount(strata.codes), index=strata.labels)
    factors_rich = strata.factors * np.where(np.array(accuracy) < 0.5, 3.0, 1.0)  # over-sample failing strata
    strata_rich = type(strata)(strata.codes, strata.labels, factors_rich)

    draws = 1000
    estimates, covered = np.empty(draws), np.empty(draws, dtype=bool)
    covered_normal = np.empty(draws, dtype=bool)
    for seed in range(draws):
        design = draw(strata_rich, sampling_keys(ids, seed), correct, size=400, allocation="proportional",
                      minimum=5)
        chosen = design.selected
        values, labels_chosen = correct[chosen].astype(float), np.asarray(strata.labels)[strata.codes[chosen]]
        est = stratified_estimate(values, labels_chosen, population)
        estimates[seed] = est.estimate
        covered[seed] = est.ci_low <= truth <= est.ci_high
        normal = stratified_estimate(values, labels_chosen, population, interval="normal")
        covered_normal[seed] = normal.ci_low <= truth <= normal.ci_high
    monte_carlo_se = estimates.std(ddof=1) / np.sqrt(draws)
    bias = estimates.mean() - truth
    coverage = covered.mean()
    print(f"truth {truth:.4f}  mean estimate {estimates.mean():.4f}  bias {bias:+.5f} "
          f"(MC s.e. {monte_carlo_se:.5f})  coverage {coverage:.3f} (normal interval {covered_normal.mean():.3f})")
    assert abs(bias) < 3 * monte_carlo_se
    assert 0.93 <= coverage <= 0.97


def test_korn_graubard_reduces_to_clopper_pearson_for_a_simple_random_sample():
    """One stratum from a huge population: n_eff = n - 1, so the interval is (almost) scipy's exact binomial one."""
    values = [1.0] * 40 + [0.0] * 61
    est = stratified_estimate(values, ["all"] * len(values), {"all": 10**12})
    exact = stats.binomtest(40, len(values)).proportion_ci(confidence_level=0.95, method="exact")
    assert est.ci_low == pytest.approx(exact.low, abs=0.005) and est.ci_high == pytest.approx(exact.high, abs=0.005)
    none_wrong = stratified_estimate([1.0] * 50, ["all"] * 50, {"all": 10**12})
    assert none_wrong.ci_high == 1.0 and none_wrong.ci_low == pytest.approx(0.025 ** (1 / 50), abs=1e-9)


def test_unscored_cases_and_uncovered_strata():
    strata = ["a", "a", "a", "b", "b"]
    full = stratified_estimate([1, 0, 1, 0, 0], strata, {"a": 10, "b": 10})
    # A case that could not be scored drops out of its stratum's mean (ratio estimator).
    partial = stratified_estimate(pd.Series([1, 0, 1, None, 0], dtype="Float64"), strata, {"a": 10, "b": 10})
    assert partial.estimate == pytest.approx(full.estimate) and partial.n == 4
    # A stratum with no scored case: the estimate covers the rest, and says how much that is.
    only_a = stratified_estimate([1, 0, 1, None, None], strata, {"a": 10, "b": 30})
    assert only_a.estimate == pytest.approx(2 / 3) and only_a.population_covered == pytest.approx(0.25)
    with pytest.raises(KeyError):
        stratified_estimate([1, 0], ["a", "z"], {"a": 10})
    with pytest.raises(ValueError):
        stratified_estimate([1, 0, 1], ["a", "a", "a"], {"a": 2})


def test_single_case_strata_and_binary_clipping():
    # A census stratum (n = N = 1) adds no variance; a 1-of-5 stratum borrows the mean variance of the others.
    census = stratified_estimate([1, 0, 1], ["a", "a", "b"], {"a": 10, "b": 1})
    only_a = stratified_estimate([1, 0], ["a", "a"], {"a": 10})
    assert census.std_error == pytest.approx(only_a.std_error * 10 / 11)
    borrowed = stratified_estimate([1, 0, 1], ["a", "a", "b"], {"a": 10, "b": 5})
    s2 = np.var([1, 0], ddof=1)
    expected = (10 / 15) ** 2 * (1 - 2 / 10) * s2 / 2 + (5 / 15) ** 2 * (1 - 1 / 5) * s2 / 1
    assert borrowed.std_error == pytest.approx(np.sqrt(expected))
    # All correct in a small sample: the interval is clipped to [0, 1] for a 0/1 figure.
    clipped = stratified_estimate([1, 1, 1, 0], ["a", "a", "a", "b"], {"a": 3, "b": 100})
    assert clipped.ci_low >= 0.0 and clipped.ci_high <= 1.0


def test_estimate_from_cases_recovers_population_from_weights():
    cases = pd.DataFrame({"stratum": ["a", "a", "b"], "weight": [5.0, 5.0, 20.0],
                          "ok": pd.array([True, False, True], dtype="boolean")})
    est = estimate_from_cases(cases, "ok")
    assert est.population == 30
    explicit = estimate_from_cases(cases, "ok", pd.DataFrame({"stratum": ["a", "b"], "population": [10, 20]}))
    assert est == explicit
