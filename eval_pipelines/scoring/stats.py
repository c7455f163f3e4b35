"""The statistics of scored runs: paired tests against the baseline, intervals, weighted quantiles, domains.

Paired comparisons (candidate vs baseline on the same cases), with ``d_i = candidate_i - baseline_i`` oriented so
that a positive difference is an improvement (for lower-is-better scores the sign is flipped by the caller):

- Binary scores: McNemar's test on the discordant pairs ``b`` (baseline right, candidate wrong: losses) and ``c``
  (wins). Under H0 (no difference) ``b ~ Binomial(b + c, 1/2)`` given ``b + c``; the exact test is that binomial
  (two-sided: ``min(1, 2 P(X <= min(b, c)))``, which is what ``scipy.stats.binomtest`` gives for p = 1/2), used
  when ``b + c`` is below ``exact_below``. Above it the continuity-corrected statistic
  ``(|b - c| - 1)^2 / (b + c) ~ chi2(1)`` (McNemar 1947; Edwards 1948), one-sided through
  ``z = (b - c - 1) / sqrt(b + c)``. The CI of the difference in proportions ``(c - b) / n`` is the Wald
  interval after adding 1/2 to every cell of the 2x2 table (Agresti & Min 2005), which keeps close to nominal
  coverage even with few discordant pairs.
- Continuous scores: the studentised (bootstrap-t) paired bootstrap of the mean difference (Efron & Tibshirani
  1993, §12.5; Hall 1992, §3.5): each resample gives ``t* = (mean* - mean) / se*``; the CI is
  ``[mean - t*_{1-α/2} se, mean - t*_{α/2} se]`` and the p-values compare ``t = mean / se`` with ``t*``
  (regression ``P(t* <= t)``, two-sided twice the smaller tail), each ``(1 + count) / (1 + B)``. The percentile
  interval and null-shifted mean used before are first-order only and were liberal under skew (one-sided 11 % at
  n = 30 on a centred exponential difference, 5.4 % now). Or the sign-flip permutation test (exact by
  enumeration when ``2^n <= B``), which is exact under H0 of a *symmetric* difference distribution; studentising
  it changes nothing (``sum d²`` is invariant under sign flips, so ``t`` is monotone in the mean), and under a
  skewed difference it stays liberal — prefer the bootstrap there.

"Significant regression" is the one-sided p-value (candidate worse) below α; under H0 it fires at most at rate α
(exactly for the permutation test, conservatively for exact McNemar, asymptotically for the bootstrap).

These tests treat the cases as the population of interest. The eval set is a stratified sample that over-samples
rare strata (failures), so its raw paired difference is not production's: a candidate can win the over-sampled
failure stratum and lose the common one, and look better on the set while being worse in production. For eval-set
cases the comparison is therefore made on the design (``design_difference_test``, ``design_mcnemar_pvalues``):

- the difference is the design-based estimate of the mean of ``d_i`` (stratified or domain estimator), with the
  Wald interval ``d̂ ± t_df se(d̂)`` on the design's degrees of freedom (cases minus strata), which is R survey's
  ``svyttest`` on the paired difference (Lumley 2010, Complex Surveys, §2.3 and §5.2);
- continuous scores: the same design-based t-test, ``t = d̂ / se(d̂)``;
- binary scores: a design-adjusted exact McNemar test. H0 "no difference in production" is "as many production
  cases lost as won", i.e. the share of losses among the discordant cases ``π = L / (L + C)`` is 1/2. ``π̂`` is the
  domain ratio estimator over the discordant pairs with its linearisation variance ``v_0`` evaluated under H0
  (residuals at π = 1/2, a score test); the exact binomial test of π = 1/2 is applied at the effective number of
  discordant pairs ``n_eff = (1/4) / v_0``, as Korn & Graubard (1998) do for a Clopper–Pearson interval, reduced by
  their degrees-of-freedom factor when the design has fewer df than pairs, and capped at the number ``m`` of
  discordant pairs. With equal weights ``n_eff`` is ``m`` (times ``(n - 1) / n``) and the test is exact McNemar
  again; a degenerate variance falls back to ``m``, so 3 losses out of 3 give p = 1/8, not 0.

The interval of a binary difference and the non-inferiority test on it are Tango's (1998) score interval at the
design's effective number of pairs (``n_eff`` above over the design share of discordant pairs,
:func:`paired_effective_n`): its variance is taken at the hypothesised difference, where the Wald interval's
shrinks with the losses drawn.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
from scipy import special

from eval_pipelines.evalsets.estimation import projection_interval
from eval_pipelines.intervals import (
    korn_graubard_factor,
    mean_t_interval,
    stratified_variance_terms,
    stratum_variances,
    variance_degrees_of_freedom,
)
from eval_pipelines.intervals import wilson_interval as shared_wilson_interval

# scipy.stats is imported inside the few functions that use it: at module level it added 0.4 s to loading the
# code location, which every run process does.
_BOOTSTRAP_CHUNK_CELLS = 4_000_000  # resample indices drawn per block (n * resamples), ~32 MB of int64


@dataclass(frozen=True)
class PairedResult:
    """A paired comparison: mean difference (candidate - baseline, positive = better), CI, p-values, counts."""

    test: str  # mcnemar_exact | mcnemar_chi2 | bootstrap | permutation | none
    n_pairs: int
    candidate_mean: float
    baseline_mean: float
    diff: float  # improvement: positive is better for the candidate
    ci_low: float
    ci_high: float
    p_value: float  # two-sided
    p_value_regression: float  # one-sided, H1: the candidate is worse
    wins: int
    losses: int
    ties: int

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)

    def significant_regression(self, alpha: float) -> bool:
        return bool(self.p_value_regression < alpha)


def _empty(test: str = "none") -> PairedResult:
    nan = float("nan")
    return PairedResult(test, 0, nan, nan, nan, nan, nan, nan, nan, 0, 0, 0)


def mcnemar(candidate: np.ndarray, baseline: np.ndarray, exact_below: int = 25,
            confidence: float = 0.95) -> PairedResult:
    """McNemar's test on paired 0/1 scores (NaN pairs dropped); ``diff`` is candidate minus baseline accuracy."""
    from scipy import stats

    keep = ~(np.isnan(candidate) | np.isnan(baseline))
    cand, base = candidate[keep] > 0.5, baseline[keep] > 0.5
    n = int(keep.sum())
    if n == 0:
        return _empty("mcnemar_exact")
    losses = int(np.sum(base & ~cand))  # b
    wins = int(np.sum(~base & cand))  # c
    both = int(np.sum(base & cand))
    neither = n - losses - wins - both
    discordant = losses + wins
    if discordant == 0:
        two_sided, regression, test = 1.0, 1.0, "mcnemar_exact"
    elif discordant < exact_below:
        test = "mcnemar_exact"
        two_sided = float(min(1.0, 2.0 * stats.binom.cdf(min(losses, wins), discordant, 0.5)))
        regression = float(stats.binom.sf(losses - 1, discordant, 0.5))  # P(B >= b): many losses
    else:
        test = "mcnemar_chi2"
        statistic = max(abs(losses - wins) - 1.0, 0.0) ** 2 / discordant
        two_sided = float(stats.chi2.sf(statistic, 1))
        z = (losses - wins - 1.0) / np.sqrt(discordant)
        regression = float(stats.norm.sf(z))
    diff = (wins - losses) / n
    low, high = _agresti_min(both, losses, wins, neither, confidence)
    return PairedResult(test, n, float(cand.mean()), float(base.mean()), diff, low, high, two_sided, regression,
                        wins, losses, both + neither)


def _agresti_min(both: int, losses: int, wins: int, neither: int, confidence: float) -> tuple[float, float]:
    """Wald CI of p(candidate right) - p(baseline right) with 1/2 added to each cell (Agresti & Min 2005)."""
    n11, n10, n01, n00 = both + 0.5, losses + 0.5, wins + 0.5, neither + 0.5
    total = n11 + n10 + n01 + n00
    p10, p01 = n10 / total, n01 / total
    diff = p01 - p10
    variance = (p10 + p01 - diff**2) / total
    z = _z(confidence)
    half = z * np.sqrt(max(variance, 0.0))
    return float(max(diff - half, -1.0)), float(min(diff + half, 1.0))


def _counts(d: np.ndarray) -> tuple[int, int, int]:
    return int(np.sum(d > 0)), int(np.sum(d < 0)), int(np.sum(d == 0))


def bootstrap_means_and_errors(values: np.ndarray, resamples: int,
                               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Means and standard errors (``s / sqrt(n)``) of ``resamples`` with-replacement resamples of ``values``, drawn
    in memory-bounded blocks."""
    n = len(values)
    centre = float(values.mean())
    centred = values - centre  # sums of squares about the sample mean: no cancellation in the variance below
    means = np.empty(resamples, dtype=np.float64)
    errors = np.empty(resamples, dtype=np.float64)
    block = max(1, _BOOTSTRAP_CHUNK_CELLS // max(n, 1))
    for start in range(0, resamples, block):
        stop = min(resamples, start + block)
        drawn = centred[rng.integers(0, n, size=(stop - start, n))]
        shifted = drawn.mean(axis=1)
        squares = np.einsum("ij,ij->i", drawn, drawn)
        means[start:stop] = shifted + centre
        errors[start:stop] = np.sqrt(np.maximum(squares - n * shifted**2, 0.0) / max(n - 1, 1) / n)
    return means, errors


def paired_bootstrap(candidate: np.ndarray, baseline: np.ndarray, resamples: int = 2000, confidence: float = 0.95,
                     seed: int = 0) -> PairedResult:
    """Studentised (bootstrap-t) paired bootstrap of the mean difference (module docstring); NaN pairs dropped."""
    keep = ~(np.isnan(candidate) | np.isnan(baseline))
    cand, base = candidate[keep], baseline[keep]
    n = len(cand)
    if n == 0:
        return _empty("bootstrap")
    d = cand - base
    observed = float(d.mean())
    wins, losses, ties = _counts(d)
    std_error = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    if n == 1 or std_error <= 0.0:  # one pair, or no variability to judge the difference by
        # n identical non-zero differences: the exact sign-flip test's p-values (only the all-same-sign vectors are
        # as extreme: 2^-n one-sided, 2^(1-n) two-sided), never below what B resamples can report, 1 / (B + 1).
        # n pairs cannot give p = 0, whatever they agree on.
        floor = max(2.0 ** -n, 1.0 / (resamples + 1))
        if n == 1 or observed == 0.0:
            p, regression = 1.0, 1.0
        else:
            p, regression = min(1.0, 2.0 * floor), (1.0 if observed > 0 else floor)
        return PairedResult("bootstrap", n, float(cand.mean()), float(base.mean()), observed, observed, observed,
                            p, regression, wins, losses, ties)
    means, errors = bootstrap_means_and_errors(d, resamples, np.random.default_rng(seed))
    # t* = (mean* - mean) / se*: the resampling distribution of the studentised mean approximates that of
    # (mean - μ) / se to second order under skew, where the percentile interval and the null-shifted mean
    # are only first-order right (Hall 1992, §3.5; Efron & Tibshirani 1993, §12.5). A resample of identical
    # values (se* = 0) counts as an infinitely large |t*| in the direction of its shift.
    shift = means - observed
    with np.errstate(divide="ignore", invalid="ignore"):
        t_star = np.where(errors > 0, shift / np.where(errors > 0, errors, 1.0),
                          np.sign(shift) * np.inf)
    alpha = 1.0 - confidence
    # Infinite t* made finite (but huge) so the quantile does not interpolate inf - inf into NaN.
    t_low, t_high = np.quantile(np.nan_to_num(t_star, posinf=1e300, neginf=-1e300),
                                [alpha / 2.0, 1.0 - alpha / 2.0])
    # A mean cannot leave the range of the data: this bounds the interval when degenerate resamples make t* infinite.
    low = float(np.clip(observed - t_high * std_error, d.min(), d.max()))
    high = float(np.clip(observed - t_low * std_error, d.min(), d.max()))
    t_observed = observed / std_error
    tolerance = 1e-12 * max(1.0, abs(t_observed))
    regression = (1 + int(np.sum(t_star <= t_observed + tolerance))) / (resamples + 1)
    improvement = (1 + int(np.sum(t_star >= t_observed - tolerance))) / (resamples + 1)
    two_sided = min(1.0, 2.0 * min(regression, improvement))
    return PairedResult("bootstrap", n, float(cand.mean()), float(base.mean()), observed, float(low), float(high),
                        float(two_sided), float(min(regression, 1.0)), wins, losses, ties)


def sign_flip_pvalues(d: np.ndarray, resamples: int, rng: np.random.Generator) -> tuple[float, float]:
    """Two-sided and "mean is negative" p-values of the paired sign-flip permutation test of mean(d) = 0.

    Exact (every one of the 2^n sign vectors) when 2^n <= ``resamples``, as scipy's ``permutation_test`` does;
    otherwise ``resamples`` random sign vectors and the ``(1 + count) / (1 + B)`` estimate.
    """
    n = len(d)
    observed = float(d.mean())
    tolerance = 1e-12 * max(1.0, float(np.abs(d).max()))
    if n <= 20 and 2**n <= resamples:
        codes = np.arange(2**n, dtype=np.int64)[:, None]
        signs = 1.0 - 2.0 * ((codes >> np.arange(n)) & 1)
        means = signs @ d / n
        two_sided = float(np.mean(np.abs(means) >= abs(observed) - tolerance))
        lower = float(np.mean(means <= observed + tolerance))
        return two_sided, lower
    count_two = count_low = 0
    block = max(1, _BOOTSTRAP_CHUNK_CELLS // max(n, 1))
    for start in range(0, resamples, block):
        size = min(block, resamples - start)
        signs = rng.integers(0, 2, size=(size, n), dtype=np.int8) * 2 - 1
        means = signs @ d / n
        count_two += int(np.sum(np.abs(means) >= abs(observed) - tolerance))
        count_low += int(np.sum(means <= observed + tolerance))
    return (1 + count_two) / (resamples + 1), (1 + count_low) / (resamples + 1)


def paired_permutation(candidate: np.ndarray, baseline: np.ndarray, resamples: int = 2000,
                       confidence: float = 0.95, seed: int = 0) -> PairedResult:
    """Sign-flip permutation p-values with the studentised paired-bootstrap CI of the mean difference."""
    boot = paired_bootstrap(candidate, baseline, resamples, confidence, seed)
    keep = ~(np.isnan(candidate) | np.isnan(baseline))
    d = candidate[keep] - baseline[keep]
    if len(d) < 2:
        two_sided, regression = boot.p_value, boot.p_value_regression
    else:
        two_sided, regression = sign_flip_pvalues(d, resamples, np.random.default_rng(seed + 1))
    return PairedResult("permutation", boot.n_pairs, boot.candidate_mean, boot.baseline_mean, boot.diff,
                        boot.ci_low, boot.ci_high, two_sided, regression, boot.wins, boot.losses, boot.ties)


def paired_compare(candidate: np.ndarray, baseline: np.ndarray, binary: bool, higher_is_better: bool = True,
                   continuous_test: str = "bootstrap", resamples: int = 2000, exact_below: int = 25,
                   confidence: float = 0.95, seed: int = 0) -> PairedResult:
    """The paired test that fits the score: McNemar for binary, bootstrap or permutation otherwise.

    For lower-is-better scores both sides are negated first (binary ones: replaced by their complements ``1 - x``),
    so ``diff > 0`` always means "the candidate is better", ``wins`` counts the cases it did better on and
    ``p_value_regression`` always tests "the candidate is worse"; the reported means are the raw ones.
    """
    cand = np.asarray(candidate, dtype=np.float64)
    base = np.asarray(baseline, dtype=np.float64)
    if binary:
        if higher_is_better:
            return mcnemar(cand, base, exact_below, confidence)
        # A 0/1 score where 1 is bad (e.g. a custom "hallucinated" flag): McNemar on the complements, so a win is
        # the candidate scoring 0 where the baseline scored 1, and diff, its CI and the p-values are oriented.
        flipped = mcnemar(1.0 - cand, 1.0 - base, exact_below, confidence)
        keep = ~(np.isnan(cand) | np.isnan(base))
        nan = float("nan")
        return PairedResult(flipped.test, flipped.n_pairs,
                            float(np.mean(cand[keep] > 0.5)) if keep.any() else nan,
                            float(np.mean(base[keep] > 0.5)) if keep.any() else nan, flipped.diff, flipped.ci_low,
                            flipped.ci_high, flipped.p_value, flipped.p_value_regression, flipped.wins,
                            flipped.losses, flipped.ties)
    sign = 1.0 if higher_is_better else -1.0
    test = paired_permutation if continuous_test == "permutation" else paired_bootstrap
    result = test(sign * cand, sign * base, resamples, confidence, seed)
    if higher_is_better:
        return result
    return PairedResult(result.test, result.n_pairs, -result.candidate_mean, -result.baseline_mean, result.diff,
                        result.ci_low, result.ci_high, result.p_value, result.p_value_regression, result.wins,
                        result.losses, result.ties)


# ----------------------------------------------------------------------------------------------------------------
# Paired comparisons under the stratified design (production, not the over-sampled eval set)
# ----------------------------------------------------------------------------------------------------------------


def design_difference_test(estimate: float, std_error: float, degrees: float, confidence: float = 0.95,
                           bound: float | None = None) -> tuple[float, float, float, float]:
    """``(ci_low, ci_high, p_two_sided, p_regression)`` of a design-based paired difference ``estimate`` (+ = the
    candidate is better) with standard error ``std_error`` on ``degrees`` degrees of freedom.

    The Wald interval ``estimate ± t_{df, 1-α/2} se`` and the t-test of ``H0: mean difference = 0``, two-sided and
    one-sided against "the candidate is worse" (``P(T <= t)``), as ``svyttest`` does. ``bound`` clips the interval
    to ``[-bound, bound]`` (1 for differences of 0/1 scores). A zero standard error gives the point interval and
    p-values 0 or 1 (a census, or no variation at all): callers decide whether to trust that (see
    :func:`design_mcnemar_pvalues` for binary scores).
    """
    nan = float("nan")
    if np.isnan(estimate) or np.isnan(std_error):
        return nan, nan, nan, nan
    degrees = max(float(degrees), 1.0)
    if std_error <= 0.0:
        low = high = float(estimate)
        if estimate == 0.0:
            two_sided, regression = 1.0, 1.0
        else:
            two_sided, regression = 0.0, (0.0 if estimate < 0 else 1.0)
    else:
        half = float(special.stdtrit(degrees, 0.5 + confidence / 2.0)) * std_error
        low, high = estimate - half, estimate + half
        t = estimate / std_error
        regression = float(special.stdtr(degrees, t))
        two_sided = float(min(1.0, 2.0 * special.stdtr(degrees, -abs(t))))
    if bound is not None:
        low, high = max(low, -bound), min(high, bound)
    return float(low), float(high), two_sided, regression


def minimum_detectable_effect(std_error: float, degrees: float, alpha: float, power: float = 0.8) -> float:
    """The smallest true difference a one-sided level-``alpha`` t-test with standard error ``std_error`` on
    ``degrees`` degrees of freedom detects with probability ``power``: ``(t_{df, 1-α} + t_{df, power}) · se``.

    It is also the smallest non-inferiority margin the test shows with that power when the candidate is exactly
    as good as the baseline (the lower bound ``d̂ - t_{1-α} se`` clears ``-δ`` with probability ``power`` when
    ``δ`` is the MDE). NaN without a standard error; 0 for a zero standard error (no variation to measure).
    """
    if std_error is None or np.isnan(std_error):
        return float("nan")
    degrees = max(float(degrees), 1.0) if not np.isnan(degrees) else 1.0
    return float((special.stdtrit(degrees, 1.0 - alpha) + special.stdtrit(degrees, power)) * max(std_error, 0.0))


def non_inferiority_test(estimate: float, std_error: float, degrees: float, margin: float,
                         alpha: float) -> tuple[float, float]:
    """``(lower_bound, p_value)`` of the one-sided test of ``H0: difference <= -margin`` against ``H1: difference >
    -margin`` (the candidate is at most ``margin`` worse): the lower bound ``d̂ - t_{df, 1-α} se`` of the one-sided
    ``1 - α`` interval, and ``p = P(T >= (d̂ + margin) / se)``; ``lower_bound >= -margin`` exactly when
    ``p <= α``. A zero standard error gives the point ``d̂`` and p 0 or 1.

    The gate uses it for continuous scores; for paired 0/1 scores it uses :func:`non_inferiority_score_test`
    (this Wald bound is liberal there when few pairs are discordant).
    """
    nan = float("nan")
    if np.isnan(estimate) or np.isnan(std_error):
        return nan, nan
    degrees = max(float(degrees), 1.0) if not np.isnan(degrees) else 1.0
    if std_error <= 0.0:
        return float(estimate), (0.0 if estimate > -margin else 1.0)
    lower = float(estimate - special.stdtrit(degrees, 1.0 - alpha) * std_error)
    p_value = float(special.stdtr(degrees, -(estimate + margin) / std_error))
    return lower, p_value


def _restricted_loss_share(wins: float, losses: float, difference: float) -> float:
    """Maximum-likelihood share of losses ``p_l`` under ``p_w - p_l = difference``, given the observed shares of
    wins and losses among all pairs (Tango 1998): the root in ``[max(0, -D), (1 - D) / 2]`` of
    ``2 p² - B p - C = 0``, ``B = w (1 - D) + l (1 - 3D) - 2 (1 - w - l) D``, ``C = l D (1 - D)``."""
    ties = max(1.0 - wins - losses, 0.0)
    b = wins * (1.0 - difference) + losses * (1.0 - 3.0 * difference) - 2.0 * ties * difference
    c = losses * difference * (1.0 - difference)
    root = (b + np.sqrt(max(b * b + 8.0 * c, 0.0))) / 4.0
    return float(min(max(root, -difference, 0.0), (1.0 - difference) / 2.0))


def _score_statistic(estimate: float, discordant_share: float, effective_n: float, difference: float) -> float:
    """Tango's (1998) score statistic of ``H0: p_w - p_l = difference`` at ``effective_n`` pairs: ``(d̂ - D) /
    sqrt((2 p̃_l + D (1 - D)) / n)``, the variance of the paired 0/1 difference at the restricted MLE ``p̃_l``."""
    wins = (discordant_share + estimate) / 2.0
    losses = (discordant_share - estimate) / 2.0
    loss_share = _restricted_loss_share(max(wins, 0.0), max(losses, 0.0), difference)
    variance = (2.0 * loss_share + difference * (1.0 - difference)) / effective_n
    if variance <= 0.0:  # no pair can differ at this hypothesis (D = 0 and none discordant): no evidence
        return 0.0 if estimate == difference else float(np.sign(estimate - difference) * np.inf)
    return float((estimate - difference) / np.sqrt(variance))


def paired_proportion_score_bounds(estimate: float, discordant_share: float, effective_n: float, degrees: float,
                                   alpha: float) -> tuple[float, float]:
    """One-sided ``1 - alpha`` lower and upper bounds of the difference ``p_w - p_l`` of two paired proportions,
    found by inverting Tango's score test at ``effective_n`` pairs (critical value ``t_{df, 1-α}``).

    ``estimate``: the design-based ``d̂``; ``discordant_share``: the design-based share of pairs that differ
    ``q̂ = p̂_w + p̂_l``; ``effective_n``: the design's effective number of pairs (:func:`paired_effective_n`).
    Unlike the Wald bound ``d̂ - t se``, whose ``se`` is small exactly when few losses were drawn, the score
    variance is taken at the hypothesised difference, which keeps the size when few pairs are discordant
    (the Wald bound passed 5.3 % instead of 2.5 % at the margin with 1.5 % losses and 0.5 % wins of 400 pairs).
    """
    nan = float("nan")
    if any(np.isnan(v) for v in (estimate, discordant_share, effective_n)) or effective_n <= 0:
        return nan, nan
    from scipy import optimize

    degrees = max(float(degrees), 1.0) if not np.isnan(degrees) else 1.0
    critical = float(special.stdtrit(degrees, 1.0 - alpha))
    estimate = float(min(max(estimate, -1.0), 1.0))
    edge = 1e-12

    def excess(difference: float) -> float:
        return _score_statistic(estimate, discordant_share, effective_n, difference)

    if estimate <= -1.0 + edge or excess(-1.0 + edge) <= critical:
        lower = -1.0
    else:
        lower = float(optimize.brentq(lambda x: excess(x) - critical, -1.0 + edge, estimate, xtol=1e-12))
    if estimate >= 1.0 - edge or excess(1.0 - edge) >= -critical:
        upper = 1.0
    else:
        upper = float(optimize.brentq(lambda x: excess(x) + critical, estimate, 1.0 - edge, xtol=1e-12))
    return lower, upper


def non_inferiority_score_test(estimate: float, discordant_share: float, effective_n: float, degrees: float,
                               margin: float, alpha: float) -> tuple[float, float]:
    """``(lower_bound, p_value)`` of the non-inferiority test of two paired proportions (``H0: p_w - p_l <=
    -margin``): Tango's score test at the design's effective number of pairs, ``p = P(T >= z(-margin))`` on the
    design's degrees of freedom, and the lower bound of :func:`paired_proportion_score_bounds`;
    ``lower_bound >= -margin`` exactly when ``p <= alpha``."""
    nan = float("nan")
    if any(np.isnan(v) for v in (estimate, discordant_share, effective_n)) or effective_n <= 0:
        return nan, nan
    degrees_used = max(float(degrees), 1.0) if not np.isnan(degrees) else 1.0
    statistic = _score_statistic(estimate, discordant_share, effective_n, -margin)
    p_value = float(special.stdtr(degrees_used, -statistic))
    lower, _ = paired_proportion_score_bounds(estimate, discordant_share, effective_n, degrees, alpha)
    return lower, p_value


def paired_effective_n(discordant_share: float, effective_discordant: float, pairs: int) -> float:
    """The design's effective number of pairs for the score interval: the effective number of discordant pairs
    of the design McNemar test (:func:`design_mcnemar_pvalues`, evaluated under H0 and capped at the discordant
    pairs sampled) divided by the design-based share ``q̂`` of discordant pairs; ``pairs`` (the sampled pairs)
    when none is discordant, and never more than ``pairs``. With equal weights it is ``n - 1``."""
    if pairs <= 0:
        return float("nan")
    if np.isnan(discordant_share) or discordant_share <= 0.0 or np.isnan(effective_discordant):
        return float(pairs)
    return float(min(effective_discordant / discordant_share, pairs))


def score_minimum_detectable_effect(discordant_share: float, effective_n: float, degrees: float, alpha: float,
                                    power: float = 0.8) -> float:
    """:func:`minimum_detectable_effect` of a paired proportion difference at the score test's scale: the
    standard error ``sqrt(q̂ / n_eff)`` of an equal candidate (``p_w = p_l``, variance ``q``) at the effective
    number of pairs the gate's score test uses."""
    if np.isnan(discordant_share) or np.isnan(effective_n) or effective_n <= 0:
        return float("nan")
    return minimum_detectable_effect(float(np.sqrt(max(discordant_share, 0.0) / effective_n)), degrees, alpha, power)


def loss_share_under_null(d: np.ndarray, codes: np.ndarray, big_n: np.ndarray, small_n: np.ndarray,
                          in_domain: np.ndarray) -> tuple[float, float, int]:
    """``(π̂, se_0(π̂), m)``: the design-based share of losses among the domain's discordant pairs, its standard
    error under H0 (π = 1/2) and the number ``m`` of discordant pairs in the sample.

    ``π̂`` is the domain ratio estimator of :func:`domain_estimate_coded` over the discordant pairs. Its
    linearisation variance is taken with the residuals at the null value, ``z_i = δ_i (y_i - 1/2) / N̂_d``, not at
    ``π̂``: at the observed share the variance shrinks exactly when the sample drifts away from 1/2 (strata whose
    discordant pairs are nearly all losses or all wins), which made the test reject 14–15 % at α = 5 % in the
    seeded simulation of the tests; the null variance is the score-test choice and keeps the size.
    """
    d = np.asarray(d, dtype=np.float64)
    discordant = np.asarray(in_domain, dtype=bool) & ~np.isnan(d) & (d != 0)
    m = int(discordant.sum())
    if m == 0:
        return float("nan"), float("nan"), 0
    weight = (big_n / small_n)[codes]
    total = float(np.sum(weight[discordant]))
    loss = (d < 0).astype(np.float64)
    share = float(np.sum(weight[discordant] * loss[discordant]) / total)
    z = np.where(discordant, (loss - 0.5) / total, 0.0)
    variance = float(np.sum(stratified_variance_terms(stratum_variances(z, codes, small_n), big_n, small_n)))
    return share, float(np.sqrt(variance)), m


def design_mcnemar_pvalues(loss_share: float, null_std_error: float, discordant: int,
                           degrees: float | None = None) -> tuple[float, float, float]:
    """``(p_two_sided, p_regression, n_effective)`` of the design-adjusted exact McNemar test (module docstring).

    ``loss_share``: the design-based estimate of ``π``, the production share of losses among discordant cases;
    ``null_std_error``: its standard error under H0 (π = 1/2, :func:`loss_share_under_null`); ``discordant``:
    discordant pairs in the sample; ``degrees``: the design's degrees of freedom.

    The effective number of discordant pairs is ``n_eff = (1/4) / v_0``, times the Korn–Graubard factor
    ``(t_{m-1} / t_df)^2`` (at the 0.025 quantiles) when the design has fewer degrees of freedom than ``m - 1``, and
    never more than ``m``: the design cannot carry more evidence than the pairs that differ. The binomial tail at
    the non-integer effective size is the regularised incomplete beta function,
    ``P(X >= k) = I_{1/2}(k, n - k + 1)``, which equals ``scipy.stats.binom.sf(k - 1, n, 1/2)`` at integers.
    """
    nan = float("nan")
    if discordant <= 0:
        return 1.0, 1.0, 0.0
    if np.isnan(loss_share):
        return nan, nan, nan
    share = float(min(max(loss_share, 0.0), 1.0))
    variance = float(null_std_error) ** 2 if not np.isnan(null_std_error) else 0.0
    n_eff = 0.25 / variance if variance > 0 else float(discordant)
    if degrees is not None and discordant > 1 and degrees < discordant - 1:
        n_eff *= korn_graubard_factor(discordant, degrees, 0.05)
    n_eff = min(n_eff, float(discordant))
    losses = n_eff * share
    regression = float(special.betainc(losses, n_eff - losses + 1.0, 0.5)) if losses > 0 else 1.0
    lower = float(special.betainc(n_eff - losses, losses + 1.0, 0.5)) if losses < n_eff else 1.0
    return float(min(1.0, 2.0 * min(regression, lower))), regression, float(n_eff)


# ----------------------------------------------------------------------------------------------------------------
# One-sample intervals and quantiles
# ----------------------------------------------------------------------------------------------------------------


def wilson_interval(successes: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (Wilson 1927); (nan, nan) for n = 0. Scalar form of the shared one."""
    low, high = shared_wilson_interval(successes, n, confidence)
    return float(low), float(high)


def mean_interval(values: np.ndarray, binary: bool, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """(mean, std_error, low, high) of the finite values: Wilson for 0/1 scores, Student t otherwise."""
    x = values[~np.isnan(values)]
    n = len(x)
    if n == 0:
        nan = float("nan")
        return nan, nan, nan, nan
    mean, variance_of_mean, _, low, high = mean_t_interval(x, confidence)
    std_error = float(np.sqrt(variance_of_mean)) if n > 1 else float("nan")
    if binary:
        low, high = wilson_interval(float(x.sum()), n, confidence)
    return mean, std_error, low, high


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The inverse of the weighted empirical CDF at ``q`` (NaN values dropped).

    With integer weights this equals ``np.quantile`` of the sample where each value is repeated ``weight`` times,
    method ``inverted_cdf``: the quantile the population would have if each case stood for ``weight`` cases.
    """
    keep = ~(np.isnan(values) | np.isnan(weights)) & (weights > 0)
    x, w = values[keep], weights[keep]
    if not len(x):
        return float("nan")
    order = np.argsort(x, kind="stable")
    x, w = x[order], w[order]
    cumulative = np.cumsum(w)
    target = q * cumulative[-1]
    index = int(np.searchsorted(cumulative, target - 1e-9 * cumulative[-1], side="left"))
    return float(x[min(index, len(x) - 1)])


# ----------------------------------------------------------------------------------------------------------------
# Domain (slice) estimation under the stratified design
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DomainEstimate:
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    n: int
    population: float  # estimated number of production cases in the domain


def domain_estimate(values: np.ndarray, strata: np.ndarray, population: dict[str, float], in_domain: np.ndarray,
                    sample_sizes: dict[str, int], confidence: float = 0.95) -> DomainEstimate:
    """Mean of ``values`` over a domain (slice) that cuts across strata, under stratified SRSWOR.

    The ratio estimator ``ŷ_d = Σ w_i δ_i y_i / Σ w_i δ_i`` (``w_i = N_h / n_h``, ``δ_i`` in the domain and scored)
    with the linearisation variance ``Σ_h N_h² (1 - n_h/N_h) s²_{z,h} / n_h`` of ``z_i = δ_i (y_i - ŷ_d) / N̂_d``,
    where ``s²_{z,h}`` runs over all ``n_h`` sampled cases of stratum h, zeros outside the domain included
    (Särndal, Swensson & Wretman 1992, §10.3 and Result 5.10.1). When the domain is a union of whole strata this
    is exactly the stratified estimator of :mod:`eval_pipelines.evalsets.estimation`.

    ``sample_sizes`` is ``n_h`` per stratum (all sampled cases, not only the scored ones), ``population`` ``N_h``.
    """
    codes, uniques = _codes(np.asarray(strata, dtype=object))
    big_n = np.array([float(population[str(u)]) for u in uniques])
    small_n = np.array([float(sample_sizes[str(u)]) for u in uniques])
    return domain_estimate_coded(values, codes, big_n, small_n, in_domain, confidence)


def domain_estimate_coded(values: np.ndarray, codes: np.ndarray, big_n: np.ndarray, small_n: np.ndarray,
                          in_domain: np.ndarray, confidence: float = 0.95) -> DomainEstimate:
    """:func:`domain_estimate` with strata already coded 0..H-1 and ``N_h``, ``n_h`` as arrays (the fast path
    when one design serves hundreds of slices). The interval is the eval set's
    (:func:`eval_pipelines.evalsets.estimation.projection_interval`)."""
    values = np.asarray(values, dtype=np.float64)
    member = np.asarray(in_domain, dtype=bool) & ~np.isnan(values)
    nan = float("nan")
    if not member.any():
        return DomainEstimate(nan, nan, nan, nan, 0, 0.0)
    weight = (big_n / small_n)[codes]
    domain_total = float(np.sum(weight[member]))
    estimate = float(np.sum(weight[member] * values[member]) / domain_total)
    z = np.where(member, (np.nan_to_num(values) - estimate) / domain_total, 0.0)
    k = len(big_n)
    variance_h = stratum_variances(z, codes, small_n)
    # A stratum whose sampled z are all equal (all in the slice with one value, or none in it) has no variance;
    # say so exactly, since the one-pass formula leaves ~1e-20 of rounding, which the interval would read as an
    # effective sample size of 10^18.
    in_stratum = np.bincount(codes[member], minlength=k).astype(np.float64)
    low_value, high_value = np.full(k, np.inf), np.full(k, -np.inf)
    np.minimum.at(low_value, codes[member], values[member])
    np.maximum.at(high_value, codes[member], values[member])
    single_valued = (in_stratum > 0) & (low_value == high_value)
    constant = (in_stratum == 0) | ((in_stratum == small_n) & single_valued)
    variance_h = np.where(constant, 0.0, variance_h)
    fpc = 1.0 - small_n / big_n
    contributions = stratified_variance_terms(variance_h, big_n, small_n)
    variance = float(np.sum(contributions))
    std_error = float(np.sqrt(variance))
    binary = bool(np.isin(values[member], (0.0, 1.0)).all())
    census_case = (fpc <= 0.0)[codes[member]]
    # The eval set's interval (Korn-Graubard / Clopper-Pearson at the Kish size / t, on Satterthwaite's degrees of
    # freedom); a stratum's term rests on the slice's cases in it when they are fewer than n_h - 1.
    degrees = np.minimum(small_n - 1.0, in_stratum)
    if binary:
        # Rare errors: a stratum with one error in 128 cases measures its variance on about 2 degrees of freedom,
        # not 127 (the accepted slice of a 600-case set covered 87 % with n_h - 1).
        degrees = np.minimum(degrees, variance_degrees_of_freedom(z, codes, k))
    found = projection_interval(estimate, contributions, degrees, values[member],
                                weight[member], census_case, binary, confidence,
                                max_degrees_of_freedom=float(np.sum(np.maximum(in_stratum - 1.0, 0.0))))
    return DomainEstimate(estimate, std_error, found.low, found.high, int(member.sum()), domain_total)


@lru_cache(maxsize=16)
def _z(confidence: float) -> float:
    from scipy import stats

    return float(stats.norm.ppf(0.5 + confidence / 2.0))


def strata_codes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes 0..H-1 of stratum labels and the sorted labels."""
    return _codes(np.asarray(labels, dtype=object))


def _codes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniques, codes = np.unique(labels.astype(str), return_inverse=True)
    return codes.ravel(), uniques
