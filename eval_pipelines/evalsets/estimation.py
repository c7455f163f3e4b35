"""Projecting a figure measured on the eval set back to all of production, with a confidence interval.

Under the stratified simple random design of :mod:`eval_pipelines.evalsets.design` the Horvitz–Thompson estimator
of a population mean, ``sum_i y_i / pi_i / N`` with ``pi_i = n_h / N_h``, is the stratified mean

    y_st = sum_h W_h * ybar_h,        W_h = N_h / N,

unbiased for the population mean, with the unbiased variance estimator

    v(y_st) = sum_h W_h^2 * (1 - n_h / N_h) * s_h^2 / n_h

(Cochran 1977, Sampling Techniques, 3rd ed., Thm 5.1-5.3; Särndal, Swensson & Wretman 1992, §3.7.2).

The interval (:func:`projection_interval`, the same for the whole set and for every slice of a scored run, which
calls it from :func:`eval_pipelines.scoring.stats.domain_estimate_coded`):

- degrees of freedom: Satterthwaite's ``ν = v² / Σ_h (c_h² / ν_h)`` over the strata's variance terms ``c_h``
  (Cochran 1977 eq. 5.16), ``ν_h = n_h - 1`` — for a slice, the number of the slice's cases in the stratum when
  fewer, for 0/1 values the stratum's kurtosis-measured ``2 s⁴ / Var̂(s²)`` when smaller (about twice its errors
  when they are rare: :func:`eval_pipelines.intervals.variance_degrees_of_freedom`), and capped for a slice at
  ``Σ_h (n_dh - 1)`` (R survey's degrees of freedom of a subset). ``ν <= n - H``,
  and it is small when a few strata carry the variance, as when most are pure;
- 0/1 values (accuracy): Korn–Graubard (Korn & Graubard 1998, Survey Methodology 24:193-201; ``svyciprop(method =
  "beta")`` in R's survey package), Clopper–Pearson at the effective sample size ``n_eff = p (1 - p) / v``
  shrunk by ``(t_{n-1} / t_ν)²``. When ``v = 0`` (every stratum pure, which a handful of cases per stratum often
  is) Clopper–Pearson at the Kish effective size of the cases' weights instead of a zero-width interval;
  census strata (taken whole) are held out of the Korn–Graubard step, which is applied to the sampled part;
- other values: ``y_st ± t_ν sqrt(v)``.

Unlike ``p ± 1.96 sqrt(v)`` it stays inside [0, 1] and keeps its coverage when a stratum's accuracy is near 0 or 1.

Cases without a value (a scored run that could not score a case) are dropped and the stratum mean is taken over
the scored ones: the stratified ratio estimator, still unbiased when scoring failures are random within a stratum.
A stratum with no scored case cannot be projected; the estimate then covers the other strata only and
``population_covered`` says which share of the population that is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import special

from eval_pipelines.intervals import (
    DesignInterval,
    design_interval,
    kish_effective_size,
    satterthwaite_degrees_of_freedom,
    variance_degrees_of_freedom,
)


@dataclass(frozen=True)
class Estimate:
    """A projected population mean with its standard error and confidence interval."""

    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    confidence: float
    n: int  # cases with a value
    population: int  # N of the covered strata
    strata: int  # strata with at least one value
    population_covered: float  # share of the population whose strata have a value
    interval: str = "korn_graubard"  # how ci_low/ci_high were made: see projection_interval
    degrees_of_freedom: float = float("nan")  # Satterthwaite degrees of freedom of the variance estimate
    effective_n: float = float("nan")  # sample size of the Clopper-Pearson step (0/1 values)

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def describe(self) -> str:
        return (f"{self.estimate:.4f} (95% CI {self.ci_low:.4f} – {self.ci_high:.4f}, n={self.n:,})"
                if self.confidence == 0.95 else
                f"{self.estimate:.4f} ({self.confidence:.0%} CI {self.ci_low:.4f} – {self.ci_high:.4f}, "
                f"n={self.n:,})")


def stratified_estimate(values: Sequence[float] | np.ndarray | pd.Series,
                        strata: Sequence[str] | np.ndarray | pd.Series,
                        population_sizes: Mapping[str, int] | pd.Series,
                        confidence: float = 0.95, interval: Literal["auto", "normal"] = "auto") -> Estimate:
    """Estimate the population mean of ``values`` from a stratified simple random sample.

    ``values``: the measured value per sampled case (e.g. 1.0 when the candidate got the case right), NaN/NA for
    a case that could not be scored. ``strata``: the case's stratum (``eval_set_cases.stratum``).
    ``population_sizes``: ``N_h`` per stratum (``eval_set_strata.population``), covering at least every stratum
    that appears in ``strata``. Works for the whole set and for either split alone.

    ``interval``: ``"auto"`` (:func:`projection_interval`: Korn–Graubard, or Clopper–Pearson at the Kish size when
    the variance is 0, for 0/1 values; Student t on Satterthwaite's degrees of freedom otherwise) or ``"normal"``
    (``estimate ± z sqrt(v)``, clipped to [0, 1] for 0/1 values; for comparison only).

    A stratum with a single value has no within-stratum variance; it borrows the mean ``s_h^2`` of the other strata
    (a collapsed-strata approximation, Cochran §5A.12), or contributes nothing when it is a census (``n_h = N_h``).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        y = values.astype(np.float64, copy=False)
    else:
        series = values.reset_index(drop=True) if isinstance(values, pd.Series) else pd.Series(values)
        y = series.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    labels = np.asarray(strata)
    if len(labels) != len(y):
        raise ValueError(f"{len(y)} values but {len(labels)} strata")
    scored = ~np.isnan(y)
    y, labels = y[scored], labels[scored]
    sizes = pd.Series(population_sizes, dtype="float64") if not isinstance(population_sizes, pd.Series) \
        else population_sizes.astype("float64")
    total_population = float(sizes.sum())
    if not len(y):
        return Estimate(float("nan"), float("nan"), float("nan"), float("nan"), confidence, 0, 0, 0, 0.0, "none")
    names, codes = np.unique(labels if labels.dtype.kind == "U" else labels.astype(str), return_inverse=True)
    codes = codes.ravel()
    unknown = pd.Index(names).difference(sizes.index)
    if len(unknown):
        raise KeyError(f"no population size for stratum/strata {list(unknown[:5])}")
    big_n = sizes.reindex(names).to_numpy()
    n = np.bincount(codes, minlength=len(names)).astype(np.float64)
    if (n > big_n).any():
        raise ValueError("a stratum has more values than its population size")
    means = np.bincount(codes, weights=y, minlength=len(names)) / n
    squares = np.bincount(codes, weights=(y - means[codes]) ** 2, minlength=len(names))
    single = n < 2
    variances = np.where(single, 0.0, squares / np.maximum(n - 1.0, 1.0))
    # Variance term per stratum, c_h = W_h^2 (1 - f_h) s_h^2 / n_h, on n_h - 1 degrees of freedom.
    covered = float(big_n.sum())
    weights = big_n / covered
    factor = weights**2 * (1.0 - n / big_n) / n
    contributions = factor * variances
    degrees = n - 1.0
    if single.any() and (~single).any():
        # A single-value stratum borrows the mean s^2 of the others: its term is a share of theirs, so it is added
        # to them (each s_j^2 gets factor_single / J more weight) rather than counted as independent information.
        contributions = np.where(single, 0.0, contributions + factor[single].sum() * variances / (~single).sum())
    estimate = float(np.sum(weights * means))
    variance = float(np.sum(contributions))
    std_error = float(np.sqrt(max(variance, 0.0)))
    binary = bool(np.isin(y, (0.0, 1.0)).all())
    if binary:
        # 0/1 values: a stratum's variance rests on its few errors, not on its n_h - 1 cases.
        degrees = np.minimum(degrees, variance_degrees_of_freedom(y, codes, len(names)))
    if interval == "normal":
        low, high = _normal_interval(estimate, variance, confidence, binary)
        found = DesignInterval(low, high, "normal", float("nan"), float("nan"))
    elif interval == "auto":
        found = projection_interval(estimate, contributions, degrees, y, (big_n / n)[codes], (n >= big_n)[codes],
                                    binary, confidence)
    else:
        raise ValueError(f"interval must be auto or normal, got {interval!r}")
    return Estimate(estimate, std_error, found.low, found.high, confidence, int(n.sum()), int(covered), len(names),
                    covered / total_population if total_population else 0.0, found.method,
                    found.degrees_of_freedom, found.effective_n)


def projection_interval(estimate: float, contributions: np.ndarray, degrees: np.ndarray, values: np.ndarray,
                        case_weights: np.ndarray, census: np.ndarray, binary: bool, confidence: float = 0.95,
                        max_degrees_of_freedom: float = float("inf")) -> DesignInterval:
    """The confidence interval of a design-based mean, for the whole eval set and for every slice of it.

    ``contributions``: the variance estimate's term per stratum (``v = Σ_h c_h``); ``degrees``: each term's degrees
    of freedom; ``max_degrees_of_freedom``: a cap on Satterthwaite's ``ν`` (a slice's ``Σ_h (n_dh - 1)``).
    ``values``, ``case_weights``, ``census``: per case with a value, its value, design weight and whether its
    stratum was taken whole. See :func:`eval_pipelines.intervals.design_interval` for the construction.

    Cases of census strata are known without sampling error: for 0/1 values the Korn–Graubard step is applied to
    the sampled part alone, ``p_s = (p̂ - c p_c) / (1 - c)`` with ``c`` the census share of the weight and
    ``v_s = v / (1 - c)²``, and the bounds mapped back, ``c p_c + (1 - c) bound_s``. Otherwise a slice whose
    failures all sit in census strata would have ``p̂ (1 - p̂)`` far above its sampling variance and an effective
    size of thousands from a dozen sampled cases.

    """
    weights = np.asarray(case_weights, dtype=np.float64)
    census = np.asarray(census, dtype=bool)
    variance = float(np.sum(np.maximum(contributions, 0.0)))
    nu = min(satterthwaite_degrees_of_freedom(contributions, degrees), max_degrees_of_freedom)
    if max_degrees_of_freedom < 1:
        nu = float("nan")  # no stratum holds two of the slice's cases: the design cannot measure the variance
    sampled = ~census
    if not sampled.any():
        return design_interval(estimate, variance, len(weights), nu, kish_effective_size(weights), binary,
                               confidence, exact=True)
    if not binary or not census.any():
        return design_interval(estimate, variance, len(weights), nu, kish_effective_size(weights), binary,
                               confidence)
    share = float(weights[census].sum() / weights.sum())
    census_mean = float(np.average(values[census], weights=weights[census]))
    sampled_mean = min(max((estimate - share * census_mean) / (1.0 - share), 0.0), 1.0)
    found = design_interval(sampled_mean, variance / (1.0 - share) ** 2, int(sampled.sum()), nu,
                            kish_effective_size(weights[sampled]), binary, confidence)
    return DesignInterval(share * census_mean + (1.0 - share) * found.low,
                          share * census_mean + (1.0 - share) * found.high, found.method,
                          found.degrees_of_freedom, found.effective_n)


def _normal_interval(estimate: float, variance: float, confidence: float, binary: bool) -> tuple[float, float]:
    half = float(special.ndtri(0.5 + confidence / 2.0)) * np.sqrt(max(variance, 0.0))
    low, high = estimate - half, estimate + half
    return (max(low, 0.0), min(high, 1.0)) if binary else (low, high)


_METHODS = {
    "korn_graubard": "Korn–Graubard (Clopper–Pearson at effective n {n:,.1f}, Satterthwaite df {df:,.1f})",
    "clopper_pearson_kish": "Clopper–Pearson at the Kish effective size {n:,.1f} (variance estimate 0)",
    "t": "Student t, Satterthwaite df {df:,.1f}",
    "exact": "none: every stratum taken whole",
}


def describe_interval(estimate: Estimate) -> str:
    """The 95 % interval's construction in words (docs/eval_sets.md, "The interval")."""
    template = _METHODS.get(estimate.interval, estimate.interval)
    return template.format(n=estimate.effective_n, df=estimate.degrees_of_freedom)


def estimate_from_cases(cases: pd.DataFrame, value_column: str, strata_population: pd.DataFrame | None = None,
                        confidence: float = 0.95) -> Estimate:
    """The estimate over eval-set cases (``stratum``, ``weight`` and ``value_column`` columns).

    ``strata_population`` (``stratum``, ``population``) gives ``N_h``; without it ``N_h`` is recovered as the sum of
    the design weights of the stratum's cases, which is exact only when every sampled case of the stratum is
    present (the whole set, not a split).
    """
    if strata_population is not None:
        sizes = strata_population.set_index("stratum")["population"]
    else:
        sizes = cases.groupby("stratum")["weight"].sum().round().astype("int64")
    return stratified_estimate(cases[value_column], cases["stratum"], sizes, confidence)
