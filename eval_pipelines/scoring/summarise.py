"""Per-case scores to summary rows: one row per case set, scorer and slice, with the projection and the comparison.

Eval-set cases carry the design (stratum, weight, N_h), so their summaries project to production:

- the whole set, and any slice that is a union of whole strata (a segment when segment is a strata column, a
  single stratum), use the stratified estimator of :func:`eval_pipelines.evalsets.estimation.stratified_estimate`;
- a slice that cuts across strata (failure tag, split, a column that is not a stratum) uses the domain ratio
  estimator :func:`eval_pipelines.scoring.stats.domain_estimate`, which reduces to the former on unions of strata.

Quantiles (p50..p99, e.g. of latency) are weighted by the design weights, so they describe production too. Edge
cases have no design: their summaries are plain means with Wilson (0/1) or t intervals.

Every row also carries the paired comparison with the baseline on the same cases of the slice, ``d_i = sign ·
(candidate_i - baseline_i)`` (sign = -1 for lower-is-better scorers, so + always means "the candidate is better"):

- ``diff``, ``diff_ci_low``, ``diff_ci_high``, ``p_value``, ``p_value_regression``: for eval-set rows the
  difference *in production*, estimated with the design like ``estimate`` (stratified estimator on 'all', domain
  estimator on slices), with a design-based test: the design-adjusted exact McNemar for binary scores, the
  design-based t-test for continuous ones (:func:`eval_pipelines.scoring.stats.design_mcnemar_pvalues`,
  :func:`eval_pipelines.scoring.stats.design_difference_test`). The eval set over-samples failures, so the raw
  difference over its cases can have the opposite sign of production's; the release gate reads these columns.
  For edge-case rows (no design: the entries are the population) they are the unweighted paired test.
  On eval-set rows of binary scores ``diff_ci_low`` / ``diff_ci_high`` are the score interval (Tango 1998,
  inverted, at the effective number of pairs below:
  :func:`eval_pipelines.scoring.stats.paired_proportion_score_bounds`), the interval the non-inferiority gate
  reads; continuous scores keep the design Wald interval ``d̂ ± t se``.
- ``diff_std_error``, ``diff_df``: the standard error of ``diff`` (design-based on eval-set rows; ``s_d / sqrt(n)``
  on edge-case rows) and its degrees of freedom.
- ``diff_discordant_share``, ``diff_effective_n`` (binary scores): the share ``q̂`` of pairs that differ (design-based
  on eval-set rows) and the effective number of pairs ``n_eff`` (the design McNemar test's effective discordant
  count over ``q̂``, at most the pairs sampled; the pairs themselves on edge-case rows), the inputs of the score test.
- ``mde``: the minimum detectable effect of the one-sided test at level ``(1 - confidence) / 2`` (2.5 %) with 80 %
  power, ``(t_{1-α} + t_{0.8}) · se`` (:func:`eval_pipelines.scoring.stats.minimum_detectable_effect`), ``se``
  being ``diff_std_error`` for continuous scores and ``sqrt(q̂ / n_eff)`` for binary ones (the scale of the score
  test): a difference or a non-inferiority margin smaller than it is beyond what the slice can show.
- ``q_value``, ``q_value_regression``: Benjamini–Hochberg q-values of ``p_value`` and ``p_value_regression`` over
  the slice rows of the scorer (not 'all'): the slice table compares tens of slices, and under the global null
  some slice shows p < 0.05 in most runs; q < 0.05 keeps the share of false discoveries at 5 %.
- ``test``, ``sample_diff``, ``sample_p_value``, ``sample_p_value_regression``, ``wins``, ``losses``, ``ties``:
  the unweighted paired comparison over the slice's cases as they are in the set
  (:func:`eval_pipelines.scoring.stats.paired_compare`: McNemar, paired bootstrap or permutation), for inspection.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from eval_pipelines.evalsets.estimation import stratified_estimate
from eval_pipelines.evalsets.trusted import pooled_cell_strata
from eval_pipelines.multiplicity import benjamini_hochberg
from eval_pipelines.scoring.scorers import ScorerTraits
from eval_pipelines.scoring.settings import ComparisonConfig
from eval_pipelines.scoring.stats import (
    PairedResult,
    design_difference_test,
    design_mcnemar_pvalues,
    domain_estimate_coded,
    loss_share_under_null,
    mean_interval,
    minimum_detectable_effect,
    paired_compare,
    paired_effective_n,
    paired_proportion_score_bounds,
    score_minimum_detectable_effect,
    strata_codes,
    weighted_quantile,
)

EVAL_SET = "eval_set"
EDGE_CASES = "edge_cases"
ALL = "all"
EDGE_CASE_PASS = "edge_case_pass"
"""Pseudo-scorer of the edge-case rows: 1 when the candidate passes a library entry."""

QUANTILES: dict[str, float] = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
NO_FAILURE = "none"

SUMMARY_COLUMNS: tuple[str, ...] = (
    "case_set", "scorer", "slice_dim", "slice_value", "binary", "higher_is_better", "n_cases", "n_scored", "mean",
    "estimate", "std_error", "ci_low", "ci_high", "population", *QUANTILES, "baseline_mean", "baseline_estimate",
    "diff", "diff_ci_low", "diff_ci_high", "diff_std_error", "diff_df", "diff_discordant_share",
    "diff_effective_n", "mde", "p_value", "p_value_regression",
    "q_value", "q_value_regression", "test", "sample_diff", "sample_p_value", "sample_p_value_regression", "wins",
    "losses", "ties", "label_basis", "n_self_labeled", "judge_agreement_pairs", "judge_observed_agreement",
    "judge_kappa", "judge_kappa_ci_low", "judge_kappa_ci_high",
)


def score_column(scorer: str) -> str:
    return f"score__{scorer}"


def baseline_column(scorer: str) -> str:
    return f"baseline_score__{scorer}"


def slice_masks(cases: pd.DataFrame, dimensions: Sequence[str]) -> Iterator[tuple[str, str, np.ndarray]]:
    """``(dimension, value, mask)`` for 'all' and every value of each dimension present in ``cases``.

    ``failure_mode`` slices overlap: a case is in the slice of every tag of its ``failure_mode`` ('|'-joined),
    or in 'none' when it has none. ``stratum`` slices of a trusted eval set pool each audit stratum over the
    window's days (:func:`~eval_pipelines.evalsets.trusted.pooled_cell_strata`).
    """
    yield ALL, ALL, np.ones(len(cases), dtype=bool)
    for dimension in dimensions:
        if dimension not in cases.columns:
            continue
        values = cases[dimension].astype("str").fillna("<null>")
        if dimension == "stratum":
            values = pooled_cell_strata(values)
        if dimension == "failure_mode":
            parts = values.replace("", NO_FAILURE).str.split("|")
            levels = sorted({tag for tags in parts for tag in tags})
            for level in levels:
                yield dimension, level, parts.map(lambda tags, level=level: level in tags).to_numpy(dtype=bool)
            continue
        for level in sorted(values.unique()):
            yield dimension, str(level), (values == level).to_numpy(dtype=bool)


@dataclass(frozen=True)
class Design:
    """The eval set's design for the cases in a frame: N_h and n_h per stratum."""

    population: dict[str, float]  # N_h
    sample: dict[str, int]  # n_h, all sampled cases of the stratum

    @classmethod
    def from_strata(cls, strata: pd.DataFrame) -> Design:
        return cls(dict(zip(strata["stratum"].astype(str), strata["population"].astype(float), strict=True)),
                   dict(zip(strata["stratum"].astype(str), strata["sample"].astype(int), strict=True)))


class _Projector:
    """Projects slice means of one frame: the whole set through the eval-set estimator, slices through the
    domain estimator (vectorised with the strata coded once); a slice that is a union of whole strata through the
    eval-set estimator on those strata."""

    def __init__(self, strata: np.ndarray, design: Design, confidence: float) -> None:
        self.strata = strata
        self.design = design
        self.confidence = confidence
        self.codes, uniques = strata_codes(strata)
        self.big_n = np.array([design.population[str(u)] for u in uniques], dtype=np.float64)
        self.small_n = np.array([design.sample[str(u)] for u in uniques], dtype=np.float64)
        self.sizes = pd.Series(self.big_n, index=[str(u) for u in uniques])

    def __call__(self, values: np.ndarray, mask: np.ndarray, whole: bool) -> tuple[float, float, float, float,
                                                                                  float]:
        """(estimate, std_error, ci_low, ci_high, population) of the slice mean projected to production."""
        touched = np.bincount(self.codes[mask], minlength=len(self.big_n))
        if whole or np.all((touched == 0) | (touched == self.small_n)):
            # The whole set, or a union of whole strata (a stratum slice; a trusted set's audit stratum pooled over
            # its day cells): the eval set's own estimator, which gives a one-case stratum the variance the others
            # show instead of none (the domain estimator's linearisation has nothing to measure in it).
            sizes = self.sizes if whole else self.sizes[touched > 0]
            result = stratified_estimate(values[mask], self.strata[mask], sizes, self.confidence)
            return result.estimate, result.std_error, result.ci_low, result.ci_high, float(result.population)
        found = domain_estimate_coded(values, self.codes, self.big_n, self.small_n, mask, self.confidence)
        return found.estimate, found.std_error, found.ci_low, found.ci_high, found.population

    def compare(self, d: np.ndarray, mask: np.ndarray, whole: bool, binary: bool,
                unweighted: PairedResult) -> tuple[float, float, float, float, float, float, float, float, float]:
        """(diff, ci_low, ci_high, std_error, degrees, p_value, p_value_regression, discordant_share, effective_n)
        of the slice's paired difference in production (the last two NaN for continuous scores).

        ``d`` is the oriented paired difference of every case of the frame (NaN when either side is unscored).
        For binary scores the CI is the score interval the non-inferiority gate reads
        (:func:`paired_proportion_score_bounds` at the design's effective number of pairs), not the Wald one.
        """
        nan = float("nan")
        paired = ~np.isnan(d)
        member = mask & paired
        if not member.any():
            return nan, nan, nan, nan, nan, nan, nan, nan, nan
        # The design's degrees of freedom (scored pairs minus strata holding one), for the whole set and, as in
        # R's survey package, for its domains too.
        pairs_per_stratum = np.bincount(self.codes[paired], minlength=len(self.big_n))
        degrees = float(pairs_per_stratum.sum() - np.count_nonzero(pairs_per_stratum))
        if whole:
            found = stratified_estimate(d[paired], self.strata[paired], self.sizes, self.confidence)
            estimate, std_error = found.estimate, found.std_error
        else:
            domain = domain_estimate_coded(d, self.codes, self.big_n, self.small_n, mask, self.confidence)
            estimate, std_error = domain.estimate, domain.std_error
        low, high, two_sided, regression = design_difference_test(estimate, std_error, degrees, self.confidence,
                                                                  1.0 if binary else None)
        if binary:
            # Share of losses among the discordant pairs, estimated over production (a domain of the design). On
            # the whole set the sample of a stratum is its scored pairs, as in the stratified estimator above.
            small_n = np.maximum(pairs_per_stratum, 1).astype(np.float64) if whole else self.small_n
            share, null_se, discordant = loss_share_under_null(d, self.codes, self.big_n, small_n, member)
            two_sided, regression, effective_discordant = design_mcnemar_pvalues(share, null_se, discordant,
                                                                                 degrees)
            differs = np.where(paired, (d != 0).astype(np.float64), np.nan)
            if whole:
                discordant_share = stratified_estimate(differs[paired], self.strata[paired], self.sizes,
                                                       self.confidence).estimate
            else:
                discordant_share = domain_estimate_coded(differs, self.codes, self.big_n, self.small_n, mask,
                                                         self.confidence).estimate
            effective_n = paired_effective_n(discordant_share, effective_discordant, int(member.sum()))
            low, high = paired_proportion_score_bounds(estimate, discordant_share, effective_n, degrees,
                                                       (1.0 - self.confidence) / 2.0)
            return (estimate, low, high, std_error, degrees, two_sided, regression, discordant_share,
                    effective_n)
        if std_error <= 0.0 and estimate != 0.0:
            # No within-stratum variation of the difference: the design cannot measure its uncertainty; do not
            # claim certainty from a handful of identical pairs, keep the unweighted test's p-values.
            two_sided, regression = unweighted.p_value, unweighted.p_value_regression
        return estimate, low, high, std_error, degrees, two_sided, regression, nan, nan


def _unweighted_spread(x: np.ndarray, b: np.ndarray, higher_is_better: bool) -> tuple[float, float]:
    """(std_error, degrees) of the mean paired difference over the cases themselves: ``s_d / sqrt(n)``, n - 1."""
    d = (x - b) * (1.0 if higher_is_better else -1.0)
    d = d[~np.isnan(d)]
    if len(d) < 2:
        return float("nan"), float("nan")
    return float(d.std(ddof=1) / np.sqrt(len(d))), float(len(d) - 1)


def _unweighted_discordance(paired: PairedResult, binary: bool) -> tuple[float, float]:
    """(discordant_share, effective_n) of a binary comparison over the cases themselves (NaN for continuous)."""
    if not binary or paired.n_pairs == 0:
        return float("nan"), float("nan")
    return (paired.wins + paired.losses) / paired.n_pairs, float(paired.n_pairs)


def _seed(base: int, *parts: str) -> int:
    return (base * 1_000_003 + zlib.crc32("|".join(parts).encode())) % 2**32


def summarise(frame: pd.DataFrame, scorers: Mapping[str, ScorerTraits], dimensions: Sequence[str],
              comparison: ComparisonConfig, design: Design | None = None, case_set: str = EVAL_SET,
              with_baseline: bool = True) -> pd.DataFrame:
    """Summary rows (``SUMMARY_COLUMNS``) of one case set.

    ``frame`` has ``score__<name>`` (and ``baseline_score__<name>`` when ``with_baseline``) per scorer; with a
    ``design`` also ``stratum`` and ``weight``, and the estimates are projections; without, plain means.
    """
    rows: list[dict[str, object]] = []
    project = _Projector(frame["stratum"].astype(str).to_numpy(), design, comparison.confidence) \
        if design is not None else None
    weights = frame["weight"].to_numpy(dtype=np.float64) if design is not None else np.ones(len(frame))
    masks = list(slice_masks(frame, dimensions))
    for name, trait in scorers.items():
        values = frame[score_column(name)].to_numpy(dtype=np.float64)
        base = frame[baseline_column(name)].to_numpy(dtype=np.float64) if with_baseline else None
        d = (values - base) * (1.0 if trait.higher_is_better else -1.0) if base is not None else None
        for dimension, level, mask in masks:
            x = values[mask]
            mean, std_error, low, high = mean_interval(x, trait.binary, comparison.confidence)
            estimate, population = mean, float(np.sum(~np.isnan(x)))
            if project is not None:
                estimate, std_error, low, high, population = project(values, mask, dimension == ALL)
            row: dict[str, object] = {
                "case_set": case_set, "scorer": name, "slice_dim": dimension, "slice_value": level,
                "binary": trait.binary, "higher_is_better": trait.higher_is_better, "n_cases": int(mask.sum()),
                "n_scored": int(np.sum(~np.isnan(x))), "mean": mean, "estimate": estimate, "std_error": std_error,
                "ci_low": low, "ci_high": high, "population": population,
                **{key: weighted_quantile(x, weights[mask], q) for key, q in QUANTILES.items()},
            }
            if base is not None:
                b = base[mask]
                baseline_estimate = float(np.nanmean(b)) if np.any(~np.isnan(b)) else float("nan")
                if project is not None:
                    baseline_estimate = project(base, mask, dimension == ALL)[0]
                paired = paired_compare(x, b, trait.binary, trait.higher_is_better, comparison.continuous_test,
                                        comparison.resamples, comparison.exact_below, comparison.confidence,
                                        _seed(comparison.seed, case_set, name, dimension, level))
                comparison_row = (paired.diff, paired.ci_low, paired.ci_high,
                                  *_unweighted_spread(x, b, trait.higher_is_better), paired.p_value,
                                  paired.p_value_regression, *_unweighted_discordance(paired, trait.binary))
                if project is not None:
                    assert d is not None
                    comparison_row = project.compare(d, mask, dimension == ALL, trait.binary, paired)
                (diff, diff_low, diff_high, diff_se, diff_df, p_value, p_regression, discordant_share,
                 effective_n) = comparison_row
                one_sided = (1.0 - comparison.confidence) / 2.0
                mde = (score_minimum_detectable_effect(discordant_share, effective_n, diff_df, one_sided)
                       if trait.binary else minimum_detectable_effect(diff_se, diff_df, one_sided))
                row.update({
                    "baseline_mean": float(np.nanmean(b)) if np.any(~np.isnan(b)) else float("nan"),
                    "baseline_estimate": baseline_estimate, "diff": diff, "diff_ci_low": diff_low,
                    "diff_ci_high": diff_high, "diff_std_error": diff_se, "diff_df": diff_df,
                    "diff_discordant_share": discordant_share, "diff_effective_n": effective_n, "mde": mde,
                    "p_value": p_value, "p_value_regression": p_regression,
                    "test": paired.test, "sample_diff": paired.diff, "sample_p_value": paired.p_value,
                    "sample_p_value_regression": paired.p_value_regression, "wins": paired.wins,
                    "losses": paired.losses, "ties": paired.ties,
                })
            rows.append(row)
    return _with_q_values(pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)))


def _with_q_values(summary: pd.DataFrame) -> pd.DataFrame:
    """BH q-values of ``p_value`` and ``p_value_regression`` over the slices of each scorer (every row but 'all',
    which the gate reads on its own): one family per scorer and case set, the slice table a reader scans."""
    slices = summary["slice_dim"] != ALL
    for column, source in (("q_value", "p_value"), ("q_value_regression", "p_value_regression")):
        summary[column] = np.nan
        for _, index in summary[slices].groupby("scorer", sort=False).groups.items():
            p = pd.to_numeric(summary.loc[index, source], errors="coerce").to_numpy(dtype=np.float64)
            summary.loc[index, column] = benjamini_hochberg(p)
    return summary


def edge_case_outcomes(frame: pd.DataFrame, primary: str, min_share: float = 1.0,
                       with_baseline: bool = True) -> pd.DataFrame:
    """Per library entry: whether the candidate (and the baseline) passes it.

    A replayed case with a label passes when the primary scorer is 1; one without a label (the failure was the
    system failing, e.g. an error or a rejection with no final decision) passes when the system answered without
    an error. An entry passes when at least ``min_share`` of its replayed cases pass.
    """
    labeled = frame["label"].notna().to_numpy(dtype=bool)
    ok = (frame["status"].astype("str") == "ok").to_numpy(dtype=bool, na_value=False)
    passed = np.where(labeled, frame[score_column(primary)].to_numpy(dtype=np.float64) > 0.5, ok)
    data = {"entry_id": frame["entry_id"].astype("str"), "failure_mode": frame["failure_mode"].astype("str"),
            "passed": passed}
    if with_baseline:
        base_ok = (frame["baseline_status"].astype("str") == "ok").to_numpy(dtype=bool, na_value=False)
        data["baseline_passed"] = np.where(
            labeled, frame[baseline_column(primary)].to_numpy(dtype=np.float64) > 0.5, base_ok)
    per_case = pd.DataFrame(data)
    grouped = per_case.groupby(["entry_id", "failure_mode"], sort=True)
    outcome = grouped["passed"].mean().ge(min_share - 1e-12).rename("passed").to_frame()
    outcome["cases"] = grouped.size()
    if with_baseline:
        outcome["baseline_passed"] = grouped["baseline_passed"].mean().ge(min_share - 1e-12)
    return outcome.reset_index()


def edge_case_summary(outcomes: pd.DataFrame, comparison: ComparisonConfig) -> pd.DataFrame:
    """Pass-rate rows (scorer ``edge_case_pass``) overall and per failure mode, compared with the baseline."""
    frame = pd.DataFrame({
        "failure_mode": outcomes["failure_mode"],
        score_column(EDGE_CASE_PASS): outcomes["passed"].astype(float),
    })
    with_baseline = "baseline_passed" in outcomes.columns
    if with_baseline:
        frame[baseline_column(EDGE_CASE_PASS)] = outcomes["baseline_passed"].astype(float)
    return summarise(frame, {EDGE_CASE_PASS: ScorerTraits(True, True)}, ["failure_mode"], comparison,
                     case_set=EDGE_CASES, with_baseline=with_baseline)
