"""The statistics of scored runs against scipy, closed forms and seeded simulations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from eval_pipelines.evalsets.estimation import stratified_estimate
from eval_pipelines.scoring.stats import (
    bootstrap_means_and_errors,
    domain_estimate,
    mcnemar,
    mean_interval,
    paired_bootstrap,
    paired_compare,
    paired_permutation,
    sign_flip_pvalues,
    weighted_quantile,
    wilson_interval,
)


def _pairs(both: int, losses: int, wins: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidate and baseline 0/1 scores with the given 2x2 table (losses: baseline right, candidate wrong)."""
    candidate = np.array([1] * both + [0] * losses + [1] * wins + [0] * neither, dtype=float)
    baseline = np.array([1] * both + [1] * losses + [0] * wins + [0] * neither, dtype=float)
    return candidate, baseline


@pytest.mark.parametrize(("losses", "wins"), [(0, 0), (3, 0), (7, 2), (2, 9), (12, 11), (1, 23)])
def test_exact_mcnemar_is_scipys_binomial_test(losses, wins):
    candidate, baseline = _pairs(40, losses, wins, 15)
    result = mcnemar(candidate, baseline, exact_below=25)
    assert result.test == "mcnemar_exact"
    assert (result.losses, result.wins, result.ties, result.n_pairs) == (losses, wins, 55, 55 + losses + wins)
    if losses + wins == 0:
        assert result.p_value == 1.0 and result.p_value_regression == 1.0
        return
    expected = stats.binomtest(losses, losses + wins, 0.5)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12)
    greater = stats.binomtest(losses, losses + wins, 0.5, alternative="greater")
    assert result.p_value_regression == pytest.approx(greater.pvalue, rel=1e-12)
    assert result.diff == pytest.approx((wins - losses) / result.n_pairs)


def test_asymptotic_mcnemar_matches_the_closed_form_and_the_exact_test():
    candidate, baseline = _pairs(500, 60, 35, 200)
    result = mcnemar(candidate, baseline, exact_below=25)
    assert result.test == "mcnemar_chi2"
    statistic = (abs(60 - 35) - 1) ** 2 / 95
    assert result.p_value == pytest.approx(stats.chi2.sf(statistic, 1), rel=1e-12)
    assert result.p_value_regression == pytest.approx(stats.norm.sf((60 - 35 - 1) / np.sqrt(95)), rel=1e-12)
    exact = stats.binomtest(60, 95, 0.5)
    assert result.p_value == pytest.approx(exact.pvalue, rel=0.1)  # the corrected chi2 tracks the exact test
    # NaN pairs are dropped, not counted.
    with_nan = mcnemar(np.append(candidate, np.nan), np.append(baseline, 1.0))
    assert with_nan.n_pairs == result.n_pairs


def test_paired_difference_interval_covers_in_simulation():
    """Agresti–Min interval of the difference of paired proportions: coverage near 95 % with few discordant
    pairs (seeded; 2,000 replications, n = 80)."""
    rng = np.random.default_rng(3)
    # cells: both right, baseline only, candidate only, neither -> true diff = 0.10 - 0.04
    probabilities = [0.6, 0.04, 0.10, 0.26]
    truth = probabilities[2] - probabilities[1]
    hits = 0
    replications = 2000
    for _ in range(replications):
        cells = rng.multinomial(80, probabilities)
        result = mcnemar(*_pairs(*cells))
        hits += result.ci_low <= truth <= result.ci_high
    assert 0.93 <= hits / replications <= 0.975


def test_paired_bootstrap_interval_agrees_with_scipy():
    """The studentised interval against scipy's BCa interval (both second-order accurate) and the normal-theory
    interval of a paired mean, which it approaches for n = 300."""
    rng = np.random.default_rng(11)
    baseline = rng.gamma(2.0, 1.0, size=300)
    candidate = baseline + rng.normal(0.15, 0.8, size=300)
    ours = paired_bootstrap(candidate, baseline, resamples=4000, seed=1)
    theirs = stats.bootstrap((candidate, baseline), lambda c, b, axis=-1: np.mean(c - b, axis=axis), paired=True,
                             n_resamples=4000, method="BCa", random_state=np.random.default_rng(2))
    standard_error = theirs.standard_error
    assert ours.diff == pytest.approx(np.mean(candidate - baseline))
    assert ours.ci_low == pytest.approx(theirs.confidence_interval.low, abs=0.15 * standard_error)
    assert ours.ci_high == pytest.approx(theirs.confidence_interval.high, abs=0.15 * standard_error)
    half = stats.t.ppf(0.975, 299) * np.std(candidate - baseline, ddof=1) / np.sqrt(300)
    assert ours.ci_low == pytest.approx(ours.diff - half, abs=0.2 * half)
    assert ours.p_value < 0.05 and ours.p_value_regression > 0.95  # a real improvement


@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_studentised_bootstrap_holds_its_one_sided_size_under_skew(direction):
    """Seeded: n = 30 pairs whose difference is a centred exponential (skewed, mean exactly 0), in both
    directions. The one-sided "significant regression" verdict at α = 5 % fires within two binomial standard
    errors of 5 % of 800 runs (the percentile bootstrap with a null shift fired 11 % on the right-skewed one)."""
    rng = np.random.default_rng(61 if direction > 0 else 62)
    runs, n = 800, 30
    fired = 0
    for run in range(runs):
        d = direction * (rng.exponential(1.0, n) - 1.0)
        fired += paired_bootstrap(d, np.zeros(n), resamples=400, seed=run).p_value_regression < 0.05
    assert abs(fired / runs - 0.05) <= 2 * np.sqrt(0.05 * 0.95 / runs)


def test_studentised_bootstrap_degenerate_cases():
    # No variation: the point interval and a certain verdict by the sign; one pair: nothing to judge by.
    same = paired_bootstrap(np.full(5, 2.0), np.ones(5))
    assert (same.ci_low, same.ci_high, same.p_value_regression) == (1.0, 1.0, 1.0)
    # n identical losses are not p = 0: the exact sign-flip test gives 2^-n one-sided, 2^(1-n) two-sided (the
    # permutation test on the same pairs agrees), floored at 1 / (B + 1).
    worse = paired_bootstrap(np.zeros(5), np.ones(5))
    assert (worse.p_value_regression, worse.p_value) == (2.0**-5, 2.0**-4)
    exact = paired_permutation(np.zeros(5), np.ones(5))
    assert (exact.p_value_regression, exact.p_value) == pytest.approx((2.0**-5, 2.0**-4))
    assert same.p_value == 2.0**-4
    many = paired_bootstrap(np.zeros(30), np.ones(30), resamples=999)
    assert many.p_value_regression == pytest.approx(1 / 1000)
    assert paired_bootstrap(np.array([1.0]), np.array([0.0])).p_value == 1.0
    # Few pairs: resamples of identical values make t* infinite; the interval stays within the data's range.
    tiny = paired_bootstrap(np.array([0.2, 0.9, 0.4]), np.zeros(3), resamples=500)
    assert 0.2 <= tiny.ci_low <= tiny.ci_high <= 0.9
    # The resampled means and standard errors are those of the resamples, computed directly.
    values = np.random.default_rng(1).gamma(2.0, 3.0, 40) + 1e6  # a large offset: no cancellation
    means, errors = bootstrap_means_and_errors(values, 7, np.random.default_rng(2))
    drawn = values[np.random.default_rng(2).integers(0, 40, size=(7, 40))]
    assert means == pytest.approx(drawn.mean(axis=1), rel=1e-12)
    assert errors == pytest.approx(drawn.std(axis=1, ddof=1) / np.sqrt(40), rel=1e-8)


def test_sign_flip_permutation_is_exact_like_scipy():
    d = np.array([0.3, -0.1, 0.45, 0.2, -0.05, 0.6, 0.1, -0.2])
    two_sided, lower = sign_flip_pvalues(d, resamples=10_000, rng=np.random.default_rng(0))
    statistic = lambda x, axis=-1: np.mean(x, axis=axis)  # noqa: E731
    scipy_two = stats.permutation_test((d,), statistic, permutation_type="samples", n_resamples=10_000)
    scipy_less = stats.permutation_test((d,), statistic, permutation_type="samples", n_resamples=10_000,
                                        alternative="less")
    assert two_sided == pytest.approx(scipy_two.pvalue, rel=1e-12)
    assert lower == pytest.approx(scipy_less.pvalue, rel=1e-12)
    result = paired_permutation(d + 1.0, np.ones_like(d), resamples=10_000)
    assert result.test == "permutation" and result.p_value == pytest.approx(scipy_two.pvalue, rel=1e-12)


def test_lower_is_better_scores_are_oriented():
    rng = np.random.default_rng(5)
    baseline = rng.lognormal(6.0, 0.3, size=400)  # latency, ms
    candidate = baseline * 0.8
    result = paired_compare(candidate, baseline, binary=False, higher_is_better=False, resamples=500)
    assert result.diff > 0 and result.wins == 400 and result.losses == 0  # faster is better
    assert result.candidate_mean == pytest.approx(candidate.mean())
    assert result.p_value_regression > 0.99


@pytest.mark.parametrize("kind", ["mcnemar", "bootstrap", "permutation"])
def test_regression_verdict_under_the_null_fires_at_most_at_alpha(kind):
    """Seeded simulation of identical systems: the one-sided "significant regression" verdict at α = 0.05 fires
    in at most α + 0.02 of the runs (two standard errors of a rate of 0.05 over 1,000 runs is 0.014)."""
    rng = np.random.default_rng({"mcnemar": 1, "bootstrap": 2, "permutation": 3}[kind])
    alpha, runs, n = 0.05, 1000, 120
    fired = 0
    for run in range(runs):
        if kind == "mcnemar":
            # Same accuracy (0.68) on both sides, correlated: the discordant cells are equally likely under H0.
            cells = rng.multinomial(n, [0.60, 0.08, 0.08, 0.24])
            result = paired_compare(*_pairs(*cells), binary=True)
        else:
            shared = rng.normal(0.0, 1.0, n)
            candidate, baseline = shared + rng.normal(0, 0.5, n), shared + rng.normal(0, 0.5, n)
            result = paired_compare(candidate, baseline, binary=False, continuous_test=kind, resamples=400,
                                    seed=run)
        fired += result.significant_regression(alpha)
    assert fired / runs <= alpha + 0.02
    assert fired / runs >= 0.01  # and the test is not dead either


def test_wilson_and_t_intervals_match_scipy():
    low, high = wilson_interval(37, 120)
    expected = stats.binomtest(37, 120).proportion_ci(confidence_level=0.95, method="wilson")
    assert (low, high) == pytest.approx((expected.low, expected.high), rel=1e-9)
    values = np.array([3.0, 5.5, 2.1, np.nan, 4.4, 6.0])
    mean, std_error, low, high = mean_interval(values, binary=False)
    finite = values[~np.isnan(values)]
    t_low, t_high = stats.t.interval(0.95, len(finite) - 1, loc=finite.mean(), scale=stats.sem(finite))
    assert (mean, std_error, low, high) == pytest.approx((finite.mean(), stats.sem(finite), t_low, t_high))


def test_weighted_quantile_is_the_quantile_of_the_repeated_sample():
    rng = np.random.default_rng(9)
    values = rng.lognormal(6.5, 0.5, size=200)
    weights = rng.integers(1, 30, size=200)
    repeated = np.repeat(values, weights)
    for q in (0.5, 0.9, 0.95, 0.99):
        assert weighted_quantile(values, weights.astype(float), q) == np.quantile(repeated, q,
                                                                                  method="inverted_cdf")


def _population(rng: np.random.Generator) -> pd.DataFrame:
    strata = np.repeat(["a", "b", "c"], [3000, 1500, 500])
    slice_flag = rng.random(len(strata)) < np.select([strata == "a", strata == "b"], [0.2, 0.5], 0.8)
    accuracy = np.select([strata == "a", strata == "b"], [0.8, 0.6], 0.3) - 0.2 * slice_flag
    return pd.DataFrame({"stratum": strata, "in_slice": slice_flag,
                         "y": (rng.random(len(strata)) < accuracy).astype(float)})


def test_domain_estimate_equals_the_stratified_estimator_on_whole_strata():
    rng = np.random.default_rng(4)
    population = _population(rng)
    sizes = {"a": 3000, "b": 1500, "c": 500}
    sample = pd.concat([group.sample(n, random_state=1) for (name, group), n in
                        zip(population.groupby("stratum"), (60, 60, 40), strict=True)])
    n_h = sample["stratum"].value_counts().to_dict()
    domain = sample["stratum"].isin(["a", "c"]).to_numpy()
    ours = domain_estimate(sample["y"].to_numpy(), sample["stratum"].to_numpy(), sizes, domain, n_h)
    subset = sample[domain]
    theirs = stratified_estimate(subset["y"], subset["stratum"], pd.Series({"a": 3000, "c": 500}))
    assert ours.estimate == pytest.approx(theirs.estimate, rel=1e-12)
    assert ours.std_error == pytest.approx(theirs.std_error, rel=1e-12)
    assert ours.population == pytest.approx(3500)


def test_domain_estimate_covers_a_slice_that_cuts_across_strata():
    """Seeded simulation: stratified samples from a fixed population, a slice crossing all strata; the 95 %
    interval covers the slice's true mean in 93–97 % of 800 samples, and the estimator is unbiased."""
    rng = np.random.default_rng(21)
    population = _population(rng)
    truth = population.loc[population["in_slice"], "y"].mean()
    sizes = {"a": 3000, "b": 1500, "c": 500}
    allocation = {"a": 90, "b": 90, "c": 70}
    groups = {name: group for name, group in population.groupby("stratum")}
    hits, estimates = 0, []
    for _ in range(800):
        sample = pd.concat([groups[s].iloc[rng.choice(len(groups[s]), n, replace=False)]
                            for s, n in allocation.items()])
        result = domain_estimate(sample["y"].to_numpy(), sample["stratum"].to_numpy(), sizes,
                                 sample["in_slice"].to_numpy(), allocation)
        hits += result.ci_low <= truth <= result.ci_high
        estimates.append(result.estimate)
    assert 0.93 <= hits / 800 <= 0.97
    assert np.mean(estimates) == pytest.approx(truth, abs=0.01)


def test_lower_is_better_binary_scores_are_oriented():
    """A custom 0/1 score where 1 is bad (a "hallucinated" flag): the candidate flags 5 cases the baseline did
    not and clears 20 the baseline flagged, so it is better: diff +15/200, 20 wins, and McNemar on the
    complements (scipy's binomial test of 5 losses among 25 discordant pairs)."""
    candidate, baseline = _pairs(30, 20, 5, 145)  # here "losses" = candidate 0 where the baseline is 1
    result = paired_compare(candidate, baseline, binary=True, higher_is_better=False, exact_below=30)
    assert result.diff == pytest.approx(15 / 200) and result.ci_low < result.diff < result.ci_high
    assert (result.wins, result.losses, result.ties) == (20, 5, 175)
    assert result.candidate_mean == pytest.approx(candidate.mean())
    assert result.baseline_mean == pytest.approx(baseline.mean())
    assert result.p_value_regression == pytest.approx(
        stats.binomtest(5, 25, 0.5, alternative="greater").pvalue, rel=1e-12)
    assert result.p_value == pytest.approx(stats.binomtest(5, 25, 0.5).pvalue, rel=1e-12)
    # Higher-is-better on the same data reads the other way round.
    assert paired_compare(candidate, baseline, binary=True).diff == pytest.approx(-15 / 200)
