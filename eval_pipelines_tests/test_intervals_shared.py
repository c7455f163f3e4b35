"""The variance and degrees-of-freedom helpers shared by the eval set, scored-run slices, the design McNemar test and
the KPI intervals (eval_pipelines.intervals), each against scipy or a closed form."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from eval_pipelines.intervals import (
    korn_graubard_factor,
    mean_t_interval,
    satterthwaite_degrees_of_freedom,
    satterthwaite_from_terms,
    stratified_variance_terms,
    stratum_variances,
    variance_degrees_of_freedom,
)
from eval_pipelines.kpis.metrics import baseline_estimate
from eval_pipelines.scoring.stats import design_mcnemar_pvalues, loss_share_under_null, mean_interval


def test_stratum_variances_count_cases_outside_the_domain_as_zero():
    rng = np.random.default_rng(3)
    codes = np.repeat([0, 1, 2], [6, 4, 1])
    z = np.where(rng.random(11) < 0.6, rng.normal(size=11), 0.0)
    small_n = np.array([6.0, 4.0, 1.0])
    found = stratum_variances(z, codes, small_n)
    expected = [np.var(z[codes == h], ddof=1) for h in (0, 1)] + [0.0]  # one case: no variance
    np.testing.assert_allclose(found, expected, rtol=1e-12, atol=1e-15)


def test_stratified_variance_terms_are_cochrans_and_a_census_adds_nothing():
    big_n, small_n, s2 = np.array([100.0, 40.0, 7.0]), np.array([10.0, 5.0, 7.0]), np.array([0.2, 0.5, 0.9])
    expected = big_n**2 * (1 - small_n / big_n) * s2 / small_n
    np.testing.assert_allclose(stratified_variance_terms(s2, big_n, small_n), expected, rtol=1e-15)
    assert stratified_variance_terms(s2, big_n, small_n)[2] == 0.0
    assert stratified_variance_terms(np.array([-1e-18]), np.array([10.0]), np.array([2.0]))[0] == 0.0


def test_loss_share_null_variance_by_hand():
    """The design McNemar's null variance: residuals at 1/2 over the discordant pairs, Cochran's terms."""
    d = np.array([-1.0, 1.0, -1.0, 0.0, -1.0, 1.0, 0.0, -1.0])
    codes = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    big_n, small_n = np.array([40.0, 80.0]), np.array([4.0, 4.0])
    share, se, m = loss_share_under_null(d, codes, big_n, small_n, np.ones(8, dtype=bool))
    weight = (big_n / small_n)[codes]
    discordant = d != 0
    total = weight[discordant].sum()
    assert m == 6
    assert share == pytest.approx(np.sum(weight[discordant] * (d[discordant] < 0)) / total, rel=1e-12)
    z = np.where(discordant, ((d < 0) - 0.5) / total, 0.0)
    variance = sum(big_n[h] ** 2 * (1 - small_n[h] / big_n[h]) * np.var(z[codes == h], ddof=1) / small_n[h]
                   for h in (0, 1))
    assert se == pytest.approx(np.sqrt(variance), rel=1e-12)


def test_korn_graubard_factor_is_the_squared_ratio_of_t_quantiles():
    assert korn_graubard_factor(40, 4.0) == pytest.approx((stats.t.ppf(0.025, 39) / stats.t.ppf(0.025, 4)) ** 2,
                                                          rel=1e-12)
    assert korn_graubard_factor(40, 0.3) == pytest.approx(korn_graubard_factor(40, 1.0), rel=1e-15)  # floored at 1
    assert korn_graubard_factor(1, 5.0) == 1.0
    # The design McNemar's effective size uses the same factor (evaluated at the number of discordant pairs).
    _, _, n_eff = design_mcnemar_pvalues(0.5, 0.05, 30, degrees=6.0)
    assert n_eff == pytest.approx(min(0.25 / 0.05**2 * korn_graubard_factor(30, 6.0), 30), rel=1e-12)


def test_satterthwaite_from_summed_terms_matches_the_term_wise_formula():
    v, nu = np.array([0.3, 1.2, 0.05]), np.array([4.0, 19.0, 2.0])
    expected = satterthwaite_degrees_of_freedom(v, nu)
    assert expected == pytest.approx(v.sum() ** 2 / np.sum(v**2 / nu), rel=1e-15)
    found = satterthwaite_from_terms(np.array([v.sum(), 0.0]), np.array([np.sum(v**2 / nu), 0.0]))
    assert found[0] == pytest.approx(expected, rel=1e-12)
    assert np.isinf(found[1])  # no estimated variance: the normal quantile


def test_mean_t_interval_is_scipys_and_every_caller_uses_it():
    values = np.random.default_rng(11).lognormal(3.0, 0.8, 25)
    mean, variance_of_mean, df, low, high = mean_t_interval(values, 0.9)
    sem = values.std(ddof=1) / np.sqrt(25)
    assert (mean, df) == (pytest.approx(values.mean(), rel=1e-15), 24.0)
    assert variance_of_mean == pytest.approx(sem**2, rel=1e-12)
    assert (low, high) == pytest.approx(stats.t.interval(0.9, 24, loc=values.mean(), scale=sem), rel=1e-12)
    baseline = baseline_estimate(values, 0.9)
    assert baseline is not None and (baseline.low, baseline.high) == pytest.approx((low, high), rel=1e-15)
    _, std_error, low_95, high_95 = mean_interval(values, binary=False)
    assert std_error == pytest.approx(sem, rel=1e-12)
    assert (low_95, high_95) == pytest.approx(stats.t.interval(0.95, 24, loc=values.mean(), scale=sem), rel=1e-12)
    assert np.isnan(mean_t_interval(np.array([2.0]))[3])  # one value: no interval


def test_variance_degrees_of_freedom_is_the_kurtosis_formula_and_n_minus_1_for_normal_data():
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(size=40), rng.exponential(size=60), np.r_[1.0, 0.0, 0.0, 0.0, 0.0]])
    codes = np.repeat([0, 1, 2], [40, 60, 5])
    found = variance_degrees_of_freedom(values, codes, 4)
    for h in range(3):
        z = values[codes == h]
        n = len(z)
        s2 = np.var(z, ddof=1)
        mu4 = stats.moment(z, 4)  # the fourth central moment about the sample mean
        expected = 2 * s2**2 / ((mu4 - s2**2 * (n - 3) / (n - 1)) / n)
        assert found[h] == pytest.approx(min(expected, n - 1), rel=1e-12)
    assert found[3] == 0.0  # no case: no variance, no degrees of freedom
    # Normal data (fourth moment 3 s^4) gives n - 1: with 200,000 cases the sample kurtosis is within 1 % of 3.
    big = variance_degrees_of_freedom(rng.normal(size=200_000), np.zeros(200_000, dtype=int), 1)[0]
    assert 0.98 * 199_999 <= big <= 199_999


def test_one_error_in_128_cases_measures_a_variance_on_about_2_degrees_of_freedom():
    one_error = np.r_[0.0, np.ones(127)]
    nu = variance_degrees_of_freedom(one_error, np.zeros(128, dtype=int), 1)[0]
    p, n = 1 / 128, 128
    # 0/1 values: mu4 = p q (1 - 3 p q) about the sample mean, s^2 = n p q / (n - 1).
    s2 = n * p * (1 - p) / (n - 1)
    mu4 = p * (1 - p) * (1 - 3 * p * (1 - p))
    assert nu == pytest.approx(2 * s2**2 * n / (mu4 - s2**2 * (n - 3) / (n - 1)), rel=1e-12)
    assert 2.0 < nu < 2.2
    # Half errors: the variance of 0/1 values hardly varies, so the cap n - 1 holds; pure: no variance at all.
    half = variance_degrees_of_freedom(np.r_[np.zeros(64), np.ones(64)], np.zeros(128, dtype=int), 1)[0]
    assert half == 127.0
    assert variance_degrees_of_freedom(np.ones(10), np.zeros(10, dtype=int), 1)[0] == 0.0
