"""Confidence intervals and variance helpers shared by the domains.

KPIs and scored runs report the same Wilson interval for plain proportions; the eval set and every slice of a scored
run report the design-based interval of :func:`design_interval` (Korn–Graubard, Clopper–Pearson, t). The stratified
variance terms (:func:`stratum_variances`, :func:`stratified_variance_terms`), Satterthwaite's degrees of freedom and
the Korn–Graubard degrees-of-freedom factor live here too, so the eval set, scored-run slices, the design McNemar
test and the KPI intervals compute them one way. No dagster import: plain numpy/scipy.
"""

from dataclasses import dataclass

import numpy as np
from scipy import special
from scipy.special import ndtri


def wilson_interval(successes: np.ndarray | float, trials: np.ndarray | float,
                    level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion (Wilson 1927; no continuity correction).

    Chosen over the normal (Wald) interval because accuracy sits near 1 and groups can be small: Wilson stays
    inside [0, 1] and keeps close to its nominal coverage there. Same as
    ``scipy.stats.binomtest(k, n).proportion_ci(level, method="wilson")``; NaN where ``trials`` is 0.
    """
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    z = float(ndtri(0.5 + level / 2.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denominator = 1.0 + z * z / n
        center = (p + z * z / (2.0 * n)) / denominator
        half = z / denominator * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n))
        low = np.where(n > 0, np.clip(center - half, 0.0, 1.0), np.nan)
        high = np.where(n > 0, np.clip(center + half, 0.0, 1.0), np.nan)
    return low, high


def clopper_pearson_interval(successes: float, trials: float, level: float = 0.95) -> tuple[float, float]:
    """Clopper–Pearson ("exact") interval of a binomial proportion, for real-valued counts too.

    ``(B(α/2; x, n - x + 1), B(1 - α/2; x + 1, n - x))`` with ``B(q; a, b)`` the beta quantile, 0 when ``x = 0``
    and 1 when ``x = n`` (Clopper & Pearson 1934). At integer counts this is
    ``scipy.stats.binomtest(x, n).proportion_ci(level, method="exact")``; the Korn–Graubard interval evaluates it
    at an effective, usually fractional, sample size. NaN when ``trials`` is not positive.
    """
    if not trials > 0:
        return float("nan"), float("nan")
    alpha = 1.0 - level
    x = min(max(float(successes), 0.0), float(trials))
    low = float(special.betaincinv(x, trials - x + 1.0, alpha / 2.0)) if x > 0 else 0.0
    high = float(special.betaincinv(x + 1.0, trials - x, 1.0 - alpha / 2.0)) if x < trials else 1.0
    return low, high


def satterthwaite_degrees_of_freedom(contributions: np.ndarray, degrees: np.ndarray) -> float:
    """Effective degrees of freedom of a variance estimate ``v = Σ_h c_h``, each ``c_h`` on ``degrees[h]``.

    ``ν = (Σ c_h)² / Σ (c_h² / ν_h)`` (Satterthwaite 1946; for the stratified variance, Cochran 1977 eq. 5.16,
    ``c_h = N_h (N_h - n_h) s_h² / n_h`` on ``n_h - 1``). It lies between the smallest ``ν_h`` and ``Σ ν_h``, and
    is small when a few strata carry the variance: with near-pure strata most ``c_h`` are 0 and the variance rests
    on the one or two strata that happened to show both outcomes. Terms with ``c_h = 0`` or ``ν_h <= 0`` carry no
    information and are skipped; NaN when no term is left (no variance estimate at all).
    """
    c = np.asarray(contributions, dtype=np.float64)
    nu = np.asarray(degrees, dtype=np.float64)
    keep = (c > 0) & (nu > 0)
    if not keep.any():
        return float("nan")
    c, nu = c[keep], nu[keep]
    return float(c.sum() ** 2 / np.sum(c * c / nu))


def stratum_variances(z: np.ndarray, codes: np.ndarray, small_n: np.ndarray) -> np.ndarray:
    """Per stratum, the sample variance ``s_h²`` of linearised values ``z`` over its ``n_h`` sampled cases.

    Sampled cases that are not in ``z``'s frame (outside a domain) count as ``z = 0``: the sums are divided by
    ``n_h``, not by the count present. A stratum with one case has no variance (0 here; callers decide).
    """
    k = len(small_n)
    sums = np.bincount(codes, weights=z, minlength=k)
    squares = np.bincount(codes, weights=z * z, minlength=k)
    means = sums / small_n
    return np.where(small_n > 1, (squares - small_n * means**2) / np.maximum(small_n - 1, 1), 0.0)


def variance_degrees_of_freedom(values: np.ndarray, codes: np.ndarray, minlength: int) -> np.ndarray:
    """Per stratum, the degrees of freedom of its sample variance ``s_h²`` measured from its own kurtosis:
    ``ν_h = 2 s⁴ / Var̂(s²)`` with ``Var(s²) = (μ₄ − σ⁴ (n − 3)/(n − 1)) / n`` (the variance of the sample
    variance; Kendall & Stuart, Advanced Theory of Statistics, vol. 1, §10.5), capped at ``n_h − 1``, which it
    equals for normal data (``μ₄ = 3σ⁴``).

    Why: Satterthwaite's ``n_h − 1`` is the chi-square of normal data. A 0/1 stratum with one error in 128 cases
    has a variance estimate that rests on that one error, about as stable as a Poisson count of 1: ``ν_h ≈ 2``, not
    127 (``2 n p̂ (1 − p̂) / (1 − 4 p̂ (1 − p̂))`` for 0/1 values). Every case of each stratum must be in ``values``
    (zeros for a domain's outsiders, as :func:`stratum_variances` counts them). A stratum with no variance gets 0.
    """
    z = np.asarray(values, dtype=np.float64)
    n = np.bincount(codes, minlength=minlength).astype(np.float64)
    safe_n = np.maximum(n, 1.0)
    means = np.bincount(codes, weights=z, minlength=minlength) / safe_n
    deviation = z - means[codes]
    second = np.bincount(codes, weights=deviation**2, minlength=minlength)
    fourth = np.bincount(codes, weights=deviation**4, minlength=minlength) / safe_n
    s2 = np.where(n > 1, second / np.maximum(n - 1.0, 1.0), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = (fourth - s2**2 * (n - 3.0) / np.maximum(n - 1.0, 1.0)) / safe_n
        nu = np.where(spread > 0, 2.0 * s2**2 / spread, np.inf)
    return np.where(s2 > 0, np.minimum(nu, n - 1.0), 0.0)


def stratified_variance_terms(variances: np.ndarray, big_n: np.ndarray, small_n: np.ndarray) -> np.ndarray:
    """Per stratum the term ``c_h = N_h² (1 - n_h / N_h) s_h² / n_h`` of the variance of an estimated total under
    stratified simple random sampling without replacement (Cochran 1977, Thm 5.3); divided by ``N̂²`` (or with
    ``z`` already scaled by it, as the linearised values of a ratio are) it is the variance of the mean. Negative
    rounding residue of ``s_h²`` is taken as 0; a stratum taken whole (``n_h = N_h``) adds nothing."""
    fpc = 1.0 - small_n / big_n
    return big_n**2 * fpc * np.maximum(variances, 0.0) / small_n


MIN_RELIABLE_DESIGN_DF = 8
"""Degrees of freedom below which a design-based variance estimate is too unstable to claim a design effect
under 1: NCHS's Data Presentation Standards for Proportions (Parker et al. 2017) send an estimate on fewer than 8
degrees of freedom for review as possibly unreliable; :func:`design_interval` caps a Korn–Graubard effective
size at ``n`` below it."""


def korn_graubard_factor(n: float, degrees_of_freedom: float, alpha: float = 0.05) -> float:
    """``(t_{n-1, α/2} / t_{ν, α/2})²``: Korn & Graubard's (1998) shrinkage of an effective sample size for a
    variance estimate on ``ν`` degrees of freedom instead of the ``n - 1`` of a simple random sample of ``n``
    (``ν`` floored at 1); 1 when ``n <= 1``."""
    if n <= 1:
        return 1.0
    nu = max(float(degrees_of_freedom), 1.0)
    return float(special.stdtrit(n - 1, alpha / 2.0) / special.stdtrit(nu, alpha / 2.0)) ** 2


def satterthwaite_from_terms(variance: np.ndarray, df_terms: np.ndarray) -> np.ndarray:
    """Welch–Satterthwaite degrees of freedom ``V² / Σ_b (v_b² / ν_b)`` from a summed variance ``V`` and its summed
    df terms ``Σ_b v_b² / ν_b`` (vectorised, for rows that carry the sums); ``inf`` where the df term is 0 (no
    estimated variance: the normal quantile). :func:`satterthwaite_degrees_of_freedom` from the terms themselves."""
    v = np.asarray(variance, dtype=np.float64)
    terms = np.asarray(df_terms, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(terms > 0, v**2 / np.where(terms > 0, terms, 1.0), np.inf)


def mean_t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float, float, float]:
    """``(mean, variance_of_mean, df, low, high)`` of the Student t interval ``x̄ ± t_{n-1} s / √n`` of a simple
    random sample (as ``scipy.stats.t.interval(level, n - 1, x̄, s / √n)``); NaN bounds with fewer than 2
    values (``variance_of_mean`` NaN, ``df`` 0)."""
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    nan = float("nan")
    if n == 0:
        return nan, nan, 0.0, nan, nan
    mean = float(x.mean())
    if n < 2:
        return mean, nan, 0.0, nan, nan
    variance_of_mean = float(x.var(ddof=1)) / n
    half = float(special.stdtrit(n - 1, 0.5 + level / 2.0)) * float(np.sqrt(variance_of_mean))
    return mean, variance_of_mean, float(n - 1), mean - half, mean + half


def kish_effective_size(weights: np.ndarray) -> float:
    """Kish's effective sample size ``(Σ w)² / Σ w²`` of design weights (Kish 1965, §11.7).

    The number of equally weighted independent cases giving the weighted mean the same variance, when every case
    has the same variance: ``Var(Σ w y / Σ w) = σ² Σ w² / (Σ w)² = σ² / n_Kish``. Equal to the number of cases when
    the weights are equal, smaller when they vary (over-sampled failures weigh less).
    """
    w = np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    return total * total / float(np.sum(w * w)) if total > 0 else 0.0


@dataclass(frozen=True)
class DesignInterval:
    """A confidence interval of a design-based mean, with what it was computed from."""

    low: float
    high: float
    method: str  # korn_graubard | clopper_pearson_kish | t | exact (census) | none
    degrees_of_freedom: float  # Satterthwaite ν used (NaN when no variance estimate was used)
    effective_n: float  # the sample size of the Clopper–Pearson step for 0/1 values (NaN otherwise)


def design_interval(estimate: float, variance: float, n: int, degrees_of_freedom: float, kish_n: float,
                    binary: bool, level: float = 0.95, exact: bool = False) -> DesignInterval:
    """The interval of a design-based mean of ``n`` cases, for the whole eval set and for any slice of it.

    - 0/1 values, ``variance > 0``: Korn–Graubard (Korn & Graubard 1998; R survey's ``svyciprop(method =
      "beta")``): Clopper–Pearson at ``n_eff = p̂ (1 - p̂) / v · (t_{n-1, α/2} / t_{ν, α/2})²``, the effective
      sample size shrunk for the few degrees of freedom ``ν`` the variance estimate rests on, and capped at ``n``
      when ``ν < MIN_RELIABLE_DESIGN_DF`` (8, NCHS's minimum for a reliable design-based estimate, Parker et al.
      2017): below it a design effect under 1 is not believed.
    - 0/1 values, ``variance = 0`` (every stratum of the slice pure, e.g. five cases all right): a zero variance is
      not evidence of certainty, so Clopper–Pearson at ``x = p̂ · n_Kish`` of ``n_Kish`` trials, the Kish effective
      size of the slice's weights: under the working model that its cases are independent with one accuracy, the
      weighted mean has exactly the variance of a mean of ``n_Kish`` cases. ``n_Kish <= n`` (equal when the weights
      are equal), so unequal weights (over-sampled failures) do not overstate the information.
    - other values: ``p̂ ± t_ν √v``.
    - ``exact``: every case comes from a stratum taken whole (a census): no sampling error, the point.

    ``degrees_of_freedom`` is ``ν`` (NaN when the variance is 0); it is floored at 1.
    """
    nan = float("nan")
    if n <= 0 or not np.isfinite(estimate):
        return DesignInterval(nan, nan, "none", nan, nan)
    if exact and variance <= 0.0:
        return DesignInterval(estimate, estimate, "exact", nan, nan)
    alpha = 1.0 - level
    if not binary:
        if variance <= 0.0 or not np.isfinite(degrees_of_freedom):
            return DesignInterval(estimate, estimate, "t", nan, nan)
        nu = max(float(degrees_of_freedom), 1.0)
        half = float(special.stdtrit(nu, 1.0 - alpha / 2.0)) * float(np.sqrt(variance))
        return DesignInterval(estimate - half, estimate + half, "t", nu, nan)
    if variance <= 0.0 or not np.isfinite(degrees_of_freedom) or estimate * (1.0 - estimate) <= 0.0:
        low, high = clopper_pearson_interval(estimate * kish_n, kish_n, level)
        return DesignInterval(low, high, "clopper_pearson_kish", nan, kish_n)
    nu = max(float(degrees_of_freedom), 1.0)
    n_eff = estimate * (1.0 - estimate) / variance * korn_graubard_factor(n, nu, alpha)
    if nu < MIN_RELIABLE_DESIGN_DF:
        # A design effect below 1 (n_eff > n) claimed by a variance estimate on so few degrees of freedom is
        # chance, not evidence: 5-case strata that happen to be pure leave the variance resting on the one that
        # showed an error (docs/eval_sets.md, "The interval"). NCHS's rule (surveytable's svyciprop_adjusted)
        # caps n_eff at n always; here only below its reliability threshold, so well-measured gains are kept.
        n_eff = min(n_eff, float(n))
    low, high = clopper_pearson_interval(estimate * n_eff, n_eff, level)
    return DesignInterval(low, high, "korn_graubard", nu, n_eff)
