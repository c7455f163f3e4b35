"""The KPI model: from a day of labeled cases to one row per (system, model_version, segment), in business units.

Plain functions over DataFrames and numpy arrays, no dagster and no I/O, so every formula is testable against a
hand-computed fixture. The table is built in three layers so rollups stay exact:

1. **additive columns** (``ADDITIVE_COLUMNS``): counts, hours and money amounts, sums over cases. A week's value is
   the sum of its days', so rollups add them.
2. **percentiles** (``PERCENTILE_COLUMNS``): recomputed from the cases of whatever period is asked for, never
   averaged (``grouped_quantiles``, numpy's default linear method, bit-identical to ``np.quantile``).
3. **derived columns**: ratios of summed numerators and denominators (``RATIOS``), the Wilson interval of the
   accuracy, and the mean decision time over the baseline; ``finalize`` computes them the same way for a day, a
   week or a month.

Per case, with ``b`` the system's ``manual_baseline_seconds`` and ``r`` its ``labour_cost_per_hour``:

- a *reviewed* case has a ``user_action``; an *automated* one has none (no human in the loop);
- a *timed decision* has a known human decision time (``decision_seconds``), or is automated with status ok (the
  AI decided, taking no human time);
- the AI is credited only for what it did. A *credited decision* is a timed decision where the AI's output was
  used: reviewed and ``accepted`` or ``edited`` (an ignored, overridden or rejected suggestion was decided by
  hand, so neither its baseline nor its decision time enters the savings or the review cost; the cost of a wrong
  suggestion is in the error costs), or automated and not known to be wrong (``ai_correct`` False from ground
  truth: a wrong automated decision saved nobody's time, it made work). ``manual_baseline_hours`` = credited
  decisions × b / 3600, ``review_hours`` = Σ decision_seconds of the credited decisions / 3600, ``hours_saved`` =
  their difference (negative when the AI adds friction), ``labour_value_saved_amount`` = hours_saved × r,
  ``review_cost_amount`` = review_hours × r;
- the baseline ``b`` is either the configured constant ``manual_baseline_seconds`` (an *assumption*: hours saved
  move linearly with it, and carry no interval) or *measured* from a control group (``baseline_control``: the
  day's cases of the system decided without the AI): b = their mean decision_seconds, with the t interval
  b ± t_{n-1} · s/√n. Control cases are never credited. The interval is carried linearly, since hours_saved =
  C·b/3600 − review_hours is linear in b: ``hours_saved_variance`` = (C/3600)² s²/n, and ``hours_saved_ci_*`` =
  hours_saved ± t_df · √variance, the value columns ± r times that. Rows of one system's day share that baseline,
  so a combination adds their standard deviations ((Σ C_r)² s²/n, not Σ C_r² s²/n); days and systems are
  independent control samples, so a combination sums the variances of its baselines and takes Welch–Satterthwaite
  degrees of freedom, df = V² / Σ (v_b² / df_b) (``combined_hours_saved_variance``); a row
  or period priced (in part) at the assumed constant (``assumed_baseline_decisions`` > 0) has null intervals;
- ``decision_seconds_mean`` = Σ decision_seconds / credited human-timed decisions, and
  ``decision_time_to_baseline_ratio`` = decision_seconds_mean / b: a mean over a mean, like the savings (the
  median ``decision_seconds_p50`` is its own column);
- a human *caught* a wrong suggestion when the case was edited, overridden or rejected and its correctness is
  ``wrong`` or ``partly_wrong``; a compliance-flagged caught case is *risk mitigated* (its
  ``cost_per_compliance_flag`` was avoided), the other flagged cases cost it;
- error cost = wasted reviewer time of overrides, edits and rejects (valued at r) + compliance issues not caught +
  complaints + escalations, each × its configured cost;
- a *correct automated decision* is a verified-correct AI output used as is (accepted, or automated) with status
  ok; it earns ``value_per_correct_automated_decision`` when configured;
- platform cost = the system's ``platform_cost_per_day`` shared among its rows of the day by their share of the
  system's cases (``compute_kpis`` treats its cases as one day; rollups sum the days' shares);
- full cost of running the system = AI (inference) cost + review labour cost + platform cost;
- net value = labour value saved + correct-decision value − AI cost − platform cost − error cost (labour value
  saved is already net of the review labour); ROI = net value / full cost, i.e. (value created − cost of running −
  cost of errors) / cost of running. ``roi_over_inference_cost`` = net value / AI cost is the older, inference-only
  ratio, kept for comparison. Risk mitigated is reported beside it, not added: the credit belongs to the review,
  not to the AI.
- a row with fewer than ``impact.low_volume_below`` cases is ``low_volume``: its ``roi`` and
  ``roi_over_inference_cost`` are null (the counts and amounts are still there, and add up in rollups, where the
  flag is recomputed on the period's cases).

Money is in the system's ``currency``; ``cost_usd`` is converted with ``usd_to_currency``. A combination over rows
in different currencies (only possible when the config changed mid-period) gets currency ``XXX`` (ISO 4217: no
currency) and null amounts rather than a sum of apples and pears.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from scipy.special import stdtrit

from eval_pipelines.frames import flag_column
from eval_pipelines.intervals import mean_t_interval, satterthwaite_from_terms, wilson_interval
from eval_pipelines.kpis import reviewed as review_estimates
from eval_pipelines.kpis.reviewed import REVIEW_COUNT_COLUMNS, REVIEW_FLOAT_COLUMNS
from eval_pipelines.kpis.settings import (
    DEFAULT_LOW_VOLUME_BELOW,
    DEFAULT_REVIEWED_MIN_AUDITED,
    ImpactConfig,
    SystemImpact,
)

KEY_COLUMNS: tuple[str, ...] = ("system", "model_version", "segment")
NO_CURRENCY = "XXX"

CASE_COLUMNS: tuple[str, ...] = (
    *KEY_COLUMNS, "user_action", "status", "latency_ms", "cost_usd", "decision_seconds", "is_labeled", "ai_correct",
    "correctness", "compliance_flag", "complaint", "escalation", "edit_similarity", "retained_share",
)
"""The labeled_cases columns the KPIs read (the rest of the frame is never loaded)."""

COUNT_COLUMNS: tuple[str, ...] = (
    "cases", "reviewed_cases", "automated_cases",
    "accepted_cases", "edited_cases", "overridden_cases", "rejected_cases", "ignored_cases",
    "labeled_cases", "correct_cases",
    "timed_decisions", "human_timed_decisions", "credited_decisions", "credited_human_decisions",
    "baseline_control_decisions", "assumed_baseline_decisions",
    "compliance_flags", "complaints", "escalations",
    "risk_mitigated_cases", "correct_automated_decisions",
    "error_cases", "timeout_cases", "slo_met_cases",
    *REVIEW_COUNT_COLUMNS,
    "edit_compared_cases", "retained_compared_cases",
)
AMOUNT_COLUMNS: tuple[str, ...] = (
    "labour_value_saved_amount", "ai_cost_amount", "review_cost_amount", "platform_cost_amount", "total_cost_amount",
    "override_waste_cost_amount", "edit_waste_cost_amount", "reject_waste_cost_amount",
    "compliance_cost_amount", "complaint_cost_amount", "escalation_cost_amount", "error_cost_amount",
    "risk_mitigated_amount", "correct_decision_value_amount", "net_value_amount",
)
"""Money in the row's currency: additive, but only within one currency."""

SUM_COLUMNS: tuple[str, ...] = ("manual_baseline_hours", "review_hours", "hours_saved", "ai_cost_usd",
                                "edit_similarity_sum", "retained_share_sum", *AMOUNT_COLUMNS)
ADDITIVE_COLUMNS: tuple[str, ...] = COUNT_COLUMNS + SUM_COLUMNS

VARIANCE_COLUMNS: tuple[str, ...] = ("hours_saved_variance", "hours_saved_variance_df_term")
"""The hours_saved variance and its Satterthwaite df term. Not additive: rows of one (system, day) share one
measured baseline, so their errors are perfectly correlated; ``combined_hours_saved_variance`` combines them."""
BASELINE_IDENTITY: tuple[str, ...] = ("kpi_date", "system")
"""The columns that identify one measured baseline (one control sample): a system's cases of one day."""

FLAG_COLUMNS: tuple[str, ...] = ("low_volume",)
"""Boolean columns, derived from the counts (recomputed for rollups)."""
HEADLINE_RATIOS: tuple[str, ...] = ("roi", "roi_over_inference_cost")
"""Ratios withheld (null) on low-volume rows."""

CONFIG_COLUMNS: tuple[str, ...] = ("baseline_seconds_per_decision", "labour_cost_per_hour", "latency_slo_ms",
                                   "cost_per_silent_error")
"""Echoes of the impact model; a rollup shows their case-weighted mean (the value itself when it did not change)."""

RATIOS: dict[str, tuple[str, str]] = {
    "automation_rate": ("automated_cases", "cases"),
    "acceptance_rate": ("accepted_cases", "reviewed_cases"),
    "edit_rate": ("edited_cases", "reviewed_cases"),
    "override_rate": ("overridden_cases", "reviewed_cases"),
    "reject_rate": ("rejected_cases", "reviewed_cases"),
    "ignore_rate": ("ignored_cases", "reviewed_cases"),
    "accuracy": ("correct_cases", "labeled_cases"),
    "ai_cost_per_decision_amount": ("ai_cost_amount", "cases"),
    "roi": ("net_value_amount", "total_cost_amount"),
    "roi_over_inference_cost": ("net_value_amount", "ai_cost_amount"),
    "error_rate": ("error_cases", "cases"),
    "timeout_rate": ("timeout_cases", "cases"),
    "slo_attainment_rate": ("slo_met_cases", "cases"),
    "edit_similarity_mean": ("edit_similarity_sum", "edit_compared_cases"),
    "retained_share_mean": ("retained_share_sum", "retained_compared_cases"),
}
"""Derived column -> (numerator, denominator); null when the denominator is 0."""

PERCENTILE_COLUMNS: dict[str, tuple[str, float]] = {
    "decision_seconds_p50": ("decision_seconds", 0.50),
    "decision_seconds_p90": ("decision_seconds", 0.90),
    "latency_ms_p50": ("latency_ms", 0.50),
    "latency_ms_p95": ("latency_ms", 0.95),
    "latency_ms_p99": ("latency_ms", 0.99),
}
"""Percentile column -> (case column, quantile); over the cases where the value is known."""

PERCENTILE_SOURCES: tuple[str, ...] = ("decision_seconds", "latency_ms")

# The table's column order, grouped by the question each block answers.
METRIC_COLUMNS: tuple[str, ...] = (
    # volume
    "cases", "low_volume", "reviewed_cases", "automated_cases", "automation_rate",
    # adoption
    "accepted_cases", "edited_cases", "overridden_cases", "rejected_cases", "ignored_cases",
    "acceptance_rate", "edit_rate", "override_rate", "reject_rate", "ignore_rate",
    # quality
    "labeled_cases", "correct_cases", "accuracy", "accuracy_ci_low", "accuracy_ci_high",
    # quality corrected by the audit (kpis/reviewed.py)
    *REVIEW_COUNT_COLUMNS,
    "reviewed_accuracy", "reviewed_accuracy_ci_low", "reviewed_accuracy_ci_high",
    "automation_bias_rate", "automation_bias_rate_ci_low", "automation_bias_rate_ci_high",
    "override_error_rate", "override_error_rate_ci_low", "override_error_rate_ci_high",
    # speed and time
    "timed_decisions", "human_timed_decisions", "credited_decisions", "credited_human_decisions",
    "decision_seconds_p50", "decision_seconds_p90", "decision_seconds_mean",
    "baseline_seconds_per_decision", "baseline_control_decisions", "assumed_baseline_decisions",
    "baseline_seconds_ci_low", "baseline_seconds_ci_high", "decision_time_to_baseline_ratio",
    # free-text outputs: how much of the AI's draft survived (labeling.systems.<name>.output_kind: text)
    "edit_compared_cases", "edit_similarity_sum", "edit_similarity_mean", "retained_compared_cases",
    "retained_share_sum", "retained_share_mean",
    "manual_baseline_hours", "review_hours", "hours_saved", "hours_saved_ci_low", "hours_saved_ci_high",
    "hours_saved_variance", "hours_saved_variance_df_term",
    # money
    "labour_cost_per_hour", "labour_value_saved_amount", "labour_value_saved_ci_low_amount",
    "labour_value_saved_ci_high_amount", "ai_cost_usd", "ai_cost_amount", "ai_cost_per_decision_amount",
    "review_cost_amount", "platform_cost_amount", "total_cost_amount",
    # errors and their cost
    "compliance_flags", "complaints", "escalations",
    "override_waste_cost_amount", "edit_waste_cost_amount", "reject_waste_cost_amount",
    "compliance_cost_amount", "complaint_cost_amount", "escalation_cost_amount", "error_cost_amount",
    # silent errors: accepted mistakes, estimated from the audit
    "cost_per_silent_error", "silent_error_cases", "silent_error_cost", "silent_error_cost_ci_low",
    "silent_error_cost_ci_high",
    # risk
    "risk_mitigated_cases", "risk_mitigated_amount",
    # value
    "correct_automated_decisions", "correct_decision_value_amount", "net_value_amount", "net_value_ci_low_amount",
    "net_value_ci_high_amount", "net_value_after_silent_errors_amount",
    "net_value_after_silent_errors_ci_low_amount", "net_value_after_silent_errors_ci_high_amount", "roi",
    "roi_over_inference_cost",
    # reliability
    "error_cases", "timeout_cases", "error_rate", "timeout_rate",
    "latency_ms_p50", "latency_ms_p95", "latency_ms_p99", "latency_slo_ms", "slo_met_cases", "slo_attainment_rate",
)
FLOAT_METRICS: frozenset[str] = frozenset(set(METRIC_COLUMNS) - set(COUNT_COLUMNS) - set(FLAG_COLUMNS))


def _dtype(column: str) -> str:
    return "float64" if column in FLOAT_METRICS else "bool" if column in FLAG_COLUMNS else "int64"

_CAUGHT_ACTIONS = ("edited", "overridden", "rejected")
_WRONG = ("wrong", "partly_wrong")


# ---------------------------------------------------------------------------------------------------------- maths


def split_by_group(group_ids: np.ndarray, values: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """``values`` split into one array per group id (0 .. n_groups-1), NaN values dropped.

    One stable integer sort (radix) instead of a sort of the values themselves: the quantiles below then only
    partition each group's slice.
    """
    ids = np.asarray(group_ids, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float64)
    known = ~np.isnan(vals)
    if not known.all():
        ids, vals = ids[known], vals[known]
    order = np.argsort(ids, kind="stable")
    counts = np.bincount(ids, minlength=n_groups)[:n_groups]
    return np.split(vals[order], np.cumsum(counts)[:-1])


def grouped_quantiles(group_ids: np.ndarray, values: np.ndarray, n_groups: int,
                      quantiles: Sequence[float]) -> np.ndarray:
    """Quantiles of ``values`` per group, NaN values ignored; shape ``(n_groups, len(quantiles))``.

    Each group's quantiles are ``np.quantile`` of its values (numpy's default "linear" method, Hyndman & Fan type
    7), so a rollup's percentile is exactly the percentile of the period's cases. Groups without values get NaN.
    """
    return quantiles_of_chunks(split_by_group(group_ids, values, n_groups), quantiles)


def quantiles_of_chunks(groups: Sequence[np.ndarray | Sequence[np.ndarray]], quantiles: Sequence[float]) -> np.ndarray:
    """``np.quantile`` per group, a group given as one array or as a list of chunks (e.g. one per day)."""
    result = np.full((len(groups), len(quantiles)), np.nan)
    for position, group in enumerate(groups):
        values = group if isinstance(group, np.ndarray) else (np.concatenate(group) if len(group) else np.zeros(0))
        if len(values):
            result[position] = np.quantile(values, list(quantiles))
    return result


def ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """``numerator / denominator`` as float, NaN (stored as NULL) where the denominator is 0."""
    num = numerator.to_numpy(dtype=float, na_value=np.nan)
    den = denominator.to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.Series(np.where(den != 0, num / den, np.nan), index=numerator.index)


# ----------------------------------------------------------------------------------------------- per-case inputs


def _text(cases: pd.DataFrame, name: str) -> pd.Series:
    """A text column as is (``str`` or categorical: both compare with ``==`` and ``isin``); absent -> all null."""
    if name not in cases.columns:
        return pd.Series(np.nan, index=cases.index, dtype="str")
    column = cases[name]
    return column if isinstance(column.dtype, pd.CategoricalDtype | pd.StringDtype) else column.astype("str")


def _number(cases: pd.DataFrame, name: str) -> np.ndarray:
    if name not in cases.columns:
        return np.full(len(cases), np.nan)
    return cases[name].to_numpy(dtype="float64", na_value=np.nan)


def group_ids(keys: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Dense group ids for the rows of ``keys`` and the frame of distinct keys, sorted; id = row in that frame.

    Works on ``str`` and categorical columns alike (categoricals are not converted per row, which would cost more
    than the whole KPI computation); the order of the distinct keys is lexical either way.
    """
    if len(keys.columns) == 0:
        return np.zeros(len(keys), dtype=np.int64), pd.DataFrame(index=range(1 if len(keys) else 0))
    codes: list[np.ndarray] = []
    uniques: list[np.ndarray] = []
    for column in keys.columns:
        code, unique = pd.factorize(keys[column], use_na_sentinel=False)
        codes.append(code.astype(np.int64))
        uniques.append(np.asarray(unique, dtype=object))
    combined = np.zeros(len(keys), dtype=np.int64)
    for code, unique in zip(codes, uniques, strict=True):
        combined = combined * len(unique) + code
    distinct, ids = np.unique(combined, return_inverse=True)
    table: dict[str, list[str]] = {}
    remainder = distinct
    for column, unique in reversed(list(zip(keys.columns, uniques, strict=True))):
        remainder, code = np.divmod(remainder, len(unique))
        table[column] = [str(value) for value in unique[code]]
    frame = pd.DataFrame({column: pd.Series(table[column], dtype="str") for column in keys.columns})
    order = frame.sort_values(list(keys.columns), kind="stable").index.to_numpy()
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[ids.ravel()].astype(np.int64), frame.iloc[order].reset_index(drop=True)


@dataclass(frozen=True)
class BaselineEstimate:
    """The manual baseline measured on control cases: mean seconds per decision and its t interval."""

    n: int  # control decisions with a decision time
    mean: float
    variance_of_mean: float  # s² / n
    df: float  # n - 1
    low: float
    high: float


def baseline_estimate(seconds: np.ndarray, level: float) -> BaselineEstimate | None:
    """Mean of the control decisions' seconds with the Student t interval mean ± t_{n-1, (1+level)/2} · s/√n.

    None with fewer than 2 values (no variance: the caller falls back to the assumed constant). The same interval
    as ``scipy.stats.t.interval(level, n - 1, loc=mean, scale=sem)``; valid for skewed times by the CLT, which
    the seeded coverage test checks on a log-normal at the sizes a control group has.
    """
    values = np.asarray(seconds, dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return None
    mean, variance_of_mean, df, low, high = mean_t_interval(values, level)
    return BaselineEstimate(len(values), mean, variance_of_mean, df, low, high)


def _control_mask(cases: pd.DataFrame, system_of_case: np.ndarray, impact: ImpactConfig) -> np.ndarray:
    """Cases in their system's configured control group (decided without the AI); all False when none is."""
    mask = np.zeros(len(cases), dtype=bool)
    for system in np.unique(system_of_case):
        control = impact.for_system(str(system)).baseline_control
        if control is None or control.column not in cases.columns:
            continue
        column = cases[control.column]
        if isinstance(control.value, bool):
            matches = column.astype("boolean").fillna(False).to_numpy(dtype=bool) == control.value
        else:
            matches = (column.astype("str") == control.value).fillna(False).to_numpy(dtype=bool)
        mask |= (system_of_case == system) & matches
    return mask


def _impact_arrays(systems: Sequence[str], impact: ImpactConfig) -> dict[str, np.ndarray]:
    models: list[SystemImpact] = [impact.for_system(str(system)) for system in systems]
    fields = ("labour_cost_per_hour", "manual_baseline_seconds", "wasted_seconds_per_override",
              "wasted_seconds_per_edit", "wasted_seconds_per_reject", "cost_per_compliance_flag",
              "cost_per_complaint", "cost_per_escalation", "latency_slo_ms", "usd_to_currency",
              "platform_cost_per_day", "cost_per_silent_error")
    arrays = {name: np.array([getattr(m, name) for m in models], dtype=float) for name in fields}
    arrays["value_per_correct"] = np.array([m.value_per_correct_automated_decision or 0.0 for m in models])
    arrays["currency"] = np.array([m.currency for m in models], dtype=object)
    return arrays


# ------------------------------------------------------------------------------------------------ the daily table


def compute_kpis(cases: pd.DataFrame, impact: ImpactConfig, review_cells: pd.DataFrame | None = None
                 ) -> pd.DataFrame:
    """One row per (system, model_version, segment) of ``cases`` with every column of ``METRIC_COLUMNS``.

    ``cases`` has the ``CASE_COLUMNS`` of ``labeled_cases`` (optional ones may be absent or null).
    ``review_cells``: the day's audit as :func:`eval_pipelines.kpis.reviewed.review_cells` (None: no audit, the
    reviewed columns are null and their counts 0). Returns
    ``KEY_COLUMNS + ("currency",) + METRIC_COLUMNS``, sorted by the keys; an empty frame with those columns when
    there are no cases. Counts are int64, everything else float64 with NaN where undefined (a rate over nobody).
    """
    if cases.empty:
        return empty_kpis()
    ids, groups = group_ids(cases[list(KEY_COLUMNS)])
    n = len(groups)
    model = _impact_arrays(groups["system"].tolist(), impact)
    slo_per_case = model["latency_slo_ms"][ids]

    action = _text(cases, "user_action")
    status = _text(cases, "status")
    correctness = _text(cases, "correctness")
    decision = _number(cases, "decision_seconds")
    latency = _number(cases, "latency_ms")
    cost_usd = np.nan_to_num(_number(cases, "cost_usd"), nan=0.0)

    reviewed = action.notna().to_numpy(dtype=bool)
    ok = (status == "ok").to_numpy(dtype=bool)
    is_action = {name: (action == name).to_numpy(dtype=bool)
                 for name in ("accepted", "edited", "overridden", "rejected", "ignored")}
    labeled = flag_column(cases, "is_labeled")
    correct = flag_column(cases, "ai_correct") & labeled
    human_timed = ~np.isnan(decision)
    timed = human_timed | (~reviewed & ok)
    known_wrong = labeled & ~correct
    system_of_case = groups["system"].to_numpy(dtype=object)[ids]
    control = _control_mask(cases, system_of_case, impact)
    # The AI is credited only where its output was used: accepted as is or edited into the decision. An ignored,
    # overridden or rejected suggestion was decided by hand (the cost of a wrong one is in the error costs).
    # Control cases were decided without the AI: they measure the baseline and earn no credit themselves.
    output_used = is_action["accepted"] | is_action["edited"]
    credited = timed & np.where(reviewed, output_used, ~known_wrong) & ~control
    credited_human = credited & human_timed
    caught = (action.isin(_CAUGHT_ACTIONS) & correctness.isin(_WRONG)).to_numpy(dtype=bool)
    compliance = flag_column(cases, "compliance_flag")

    case_flags: dict[str, np.ndarray] = {
        "cases": np.ones(len(cases), dtype=bool),
        "reviewed_cases": reviewed,
        "automated_cases": ~reviewed,
        "accepted_cases": is_action["accepted"],
        "edited_cases": is_action["edited"],
        "overridden_cases": is_action["overridden"],
        "rejected_cases": is_action["rejected"],
        "ignored_cases": is_action["ignored"],
        "labeled_cases": labeled,
        "correct_cases": correct,
        "timed_decisions": timed,
        "human_timed_decisions": human_timed,
        "credited_decisions": credited,
        "credited_human_decisions": credited_human,
        "baseline_control_decisions": control & human_timed,
        "compliance_flags": compliance,
        "complaints": flag_column(cases, "complaint"),
        "escalations": flag_column(cases, "escalation"),
        "risk_mitigated_cases": compliance & caught,
        "correct_automated_decisions": correct & ok & (is_action["accepted"] | ~reviewed),
        "error_cases": (status == "error").to_numpy(dtype=bool),
        "timeout_cases": (status == "timeout").to_numpy(dtype=bool),
        "slo_met_cases": ok & (latency <= slo_per_case),
    }
    frame = groups.copy()
    frame["currency"] = model["currency"]
    for name, flags in case_flags.items():
        frame[name] = np.bincount(ids, weights=flags, minlength=n).round().astype(np.int64)
    seconds = np.bincount(ids, weights=np.where(credited_human, decision, 0.0), minlength=n)
    similarity = _number(cases, "edit_similarity")
    retained = _number(cases, "retained_share")
    frame["edit_compared_cases"] = np.bincount(ids, weights=~np.isnan(similarity), minlength=n).round().astype(np.int64)
    frame["retained_compared_cases"] = np.bincount(ids, weights=~np.isnan(retained),
                                                   minlength=n).round().astype(np.int64)
    frame["edit_similarity_sum"] = np.bincount(ids, weights=np.nan_to_num(similarity), minlength=n)
    frame["retained_share_sum"] = np.bincount(ids, weights=np.nan_to_num(retained), minlength=n)
    usd = np.bincount(ids, weights=cost_usd, minlength=n)

    rate = model["labour_cost_per_hour"]
    baseline = model["manual_baseline_seconds"].copy()
    variance_of_mean = np.full(n, np.nan)
    df = np.full(n, np.nan)
    baseline_low, baseline_high = np.full(n, np.nan), np.full(n, np.nan)
    for system in np.unique(groups["system"].to_numpy(dtype=object)):
        in_system = system_of_case == system
        estimate = baseline_estimate(decision[in_system & control], impact.ci_level) if control[in_system].any() \
            else None
        if estimate is None:
            continue  # no (usable) control group: the assumed constant stays
        rows = (groups["system"] == system).to_numpy(dtype=bool)
        baseline[rows], variance_of_mean[rows], df[rows] = estimate.mean, estimate.variance_of_mean, estimate.df
        baseline_low[rows], baseline_high[rows] = estimate.low, estimate.high
    measured = ~np.isnan(variance_of_mean)
    frame["assumed_baseline_decisions"] = np.where(measured, 0, frame["credited_decisions"]).astype(np.int64)
    frame["baseline_seconds_ci_low"] = baseline_low
    frame["baseline_seconds_ci_high"] = baseline_high
    credited_hours = frame["credited_decisions"].to_numpy(dtype=float) / 3600.0
    variance = np.where(measured, credited_hours ** 2 * np.nan_to_num(variance_of_mean), 0.0)
    frame["hours_saved_variance"] = variance
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["hours_saved_variance_df_term"] = np.where(measured & (variance > 0), variance ** 2 / df, 0.0)
    frame["manual_baseline_hours"] = frame["credited_decisions"] * baseline / 3600.0
    frame["review_hours"] = seconds / 3600.0
    frame["hours_saved"] = frame["manual_baseline_hours"] - frame["review_hours"]
    frame["ai_cost_usd"] = usd
    frame["labour_value_saved_amount"] = frame["hours_saved"] * rate
    frame["ai_cost_amount"] = usd * model["usd_to_currency"]
    frame["review_cost_amount"] = frame["review_hours"] * rate
    # The fixed cost is per system and day: each row carries its share of the system's cases.
    system_cases = frame.groupby("system", sort=False)["cases"].transform("sum").to_numpy(dtype=float)
    frame["platform_cost_amount"] = model["platform_cost_per_day"] * frame["cases"].to_numpy(dtype=float) / system_cases
    frame["total_cost_amount"] = frame["ai_cost_amount"] + frame["review_cost_amount"] + frame["platform_cost_amount"]
    frame["override_waste_cost_amount"] = frame["overridden_cases"] * model["wasted_seconds_per_override"] / 3600 * rate
    frame["edit_waste_cost_amount"] = frame["edited_cases"] * model["wasted_seconds_per_edit"] / 3600 * rate
    frame["reject_waste_cost_amount"] = frame["rejected_cases"] * model["wasted_seconds_per_reject"] / 3600 * rate
    frame["compliance_cost_amount"] = ((frame["compliance_flags"] - frame["risk_mitigated_cases"])
                                       * model["cost_per_compliance_flag"])
    frame["complaint_cost_amount"] = frame["complaints"] * model["cost_per_complaint"]
    frame["escalation_cost_amount"] = frame["escalations"] * model["cost_per_escalation"]
    frame["error_cost_amount"] = (frame["override_waste_cost_amount"] + frame["edit_waste_cost_amount"]
                                  + frame["reject_waste_cost_amount"] + frame["compliance_cost_amount"]
                                  + frame["complaint_cost_amount"] + frame["escalation_cost_amount"])
    frame["risk_mitigated_amount"] = frame["risk_mitigated_cases"] * model["cost_per_compliance_flag"]
    frame["correct_decision_value_amount"] = frame["correct_automated_decisions"] * model["value_per_correct"]
    frame["net_value_amount"] = (frame["labour_value_saved_amount"] + frame["correct_decision_value_amount"]
                                 - frame["ai_cost_amount"] - frame["platform_cost_amount"]
                                 - frame["error_cost_amount"])
    frame["baseline_seconds_per_decision"] = baseline
    frame["labour_cost_per_hour"] = rate
    frame["latency_slo_ms"] = model["latency_slo_ms"]
    frame["cost_per_silent_error"] = model["cost_per_silent_error"]
    review_estimates.attach(frame, review_cells, KEY_COLUMNS, impact.ci_level, impact.reviewed_min_audited)

    percentiles = percentiles_by_group(n, {"decision_seconds": (ids, decision), "latency_ms": (ids, latency)})
    for column in PERCENTILE_COLUMNS:
        frame[column] = percentiles[column].to_numpy()
    return finalize(frame, impact.ci_level, impact.low_volume_below)


def percentiles_by_group(n_groups: int, values: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """Every ``PERCENTILE_COLUMNS`` entry per group id; ``values`` maps each source column to (group ids, values)."""
    out: dict[str, np.ndarray] = {}
    for source in PERCENTILE_SOURCES:
        wanted = [(column, q) for column, (src, q) in PERCENTILE_COLUMNS.items() if src == source]
        ids, vals = values[source]
        result = grouped_quantiles(ids, vals, n_groups, [q for _, q in wanted])
        for position, (column, _) in enumerate(wanted):
            out[column] = result[:, position]
    return pd.DataFrame(out)


def _hours_saved_interval(frame: pd.DataFrame, level: float) -> None:
    """``hours_saved_ci_*`` and the value intervals from the summed variance (Welch–Satterthwaite df).

    Null where any credited decision was priced at the assumed baseline (an assumption has no interval), and
    where no decision was credited.
    """
    variance = frame["hours_saved_variance"].to_numpy(dtype=float)
    df_term = frame["hours_saved_variance_df_term"].to_numpy(dtype=float)
    usable = (frame["assumed_baseline_decisions"].to_numpy() == 0) & (frame["credited_decisions"].to_numpy() > 0)
    df = satterthwaite_from_terms(variance, df_term)
    quantile = np.where(np.isinf(df), float(stdtrit(np.inf, 0.5 + level / 2.0)), stdtrit(df, 0.5 + level / 2.0))
    half = np.where(usable, quantile * np.sqrt(variance), np.nan)
    hours = frame["hours_saved"].to_numpy(dtype=float)
    money_half = half * frame["labour_cost_per_hour"].to_numpy(dtype=float)
    frame["hours_saved_ci_low"], frame["hours_saved_ci_high"] = hours - half, hours + half
    labour = frame["labour_value_saved_amount"].to_numpy(dtype=float)
    frame["labour_value_saved_ci_low_amount"] = labour - money_half
    frame["labour_value_saved_ci_high_amount"] = labour + money_half
    net = frame["net_value_amount"].to_numpy(dtype=float)
    frame["net_value_ci_low_amount"], frame["net_value_ci_high_amount"] = net - money_half, net + money_half


def _net_value_after_silent_errors(frame: pd.DataFrame) -> None:
    """``net_value_after_silent_errors_*``: net value minus the estimated cost of accepted mistakes.

    The point is net − silent. Its interval: the silent-error interval alone where net value has none (assumed
    baseline), else each side's half-widths combined in quadrature (the two rest on independent samples: the
    control group and the audit), ``low = point − √((net − net_low)² + (silent_high − silent)²)`` and likewise
    above. Null where the silent-error cost is not available.
    """
    net = frame["net_value_amount"].to_numpy(dtype=float)
    silent = frame["silent_error_cost"].to_numpy(dtype=float)
    s_low = frame["silent_error_cost_ci_low"].to_numpy(dtype=float)
    s_high = frame["silent_error_cost_ci_high"].to_numpy(dtype=float)
    n_low = frame["net_value_ci_low_amount"].to_numpy(dtype=float)
    n_high = frame["net_value_ci_high_amount"].to_numpy(dtype=float)
    point = net - silent
    below = np.hypot(np.nan_to_num(net - n_low), s_high - silent)
    above = np.hypot(np.nan_to_num(n_high - net), silent - s_low)
    frame["net_value_after_silent_errors_amount"] = point
    frame["net_value_after_silent_errors_ci_low_amount"] = point - below
    frame["net_value_after_silent_errors_ci_high_amount"] = point + above


def finalize(frame: pd.DataFrame, ci_level: float, low_volume_below: int = DEFAULT_LOW_VOLUME_BELOW) -> pd.DataFrame:
    """Add the derived columns (ratios, accuracy interval, mean decision time and its ratio to the baseline) and
    order the columns.

    ``frame`` holds the keys, ``currency``, ``ADDITIVE_COLUMNS``, ``CONFIG_COLUMNS`` and ``PERCENTILE_COLUMNS``;
    used for days and rollups alike so a ratio is always a ratio of sums. Rows with fewer than
    ``low_volume_below`` cases are flagged ``low_volume`` and get null ``HEADLINE_RATIOS``.
    """
    frame = frame.copy()
    for column, (numerator, denominator) in RATIOS.items():
        frame[column] = ratio(frame[numerator], frame[denominator])
    for column in (*REVIEW_COUNT_COLUMNS, *REVIEW_FLOAT_COLUMNS, "cost_per_silent_error"):
        if column not in frame.columns:  # rows built without the audit (older callers): not available
            frame[column] = 0 if column in REVIEW_COUNT_COLUMNS else float("nan")
    _hours_saved_interval(frame, ci_level)
    _net_value_after_silent_errors(frame)
    frame["low_volume"] = frame["cases"].to_numpy() < low_volume_below
    frame.loc[frame["low_volume"], list(HEADLINE_RATIOS)] = np.nan
    low, high = wilson_interval(frame["correct_cases"].to_numpy(), frame["labeled_cases"].to_numpy(), ci_level)
    frame["accuracy_ci_low"] = low
    frame["accuracy_ci_high"] = high
    frame["decision_seconds_mean"] = ratio(frame["review_hours"] * 3600.0, frame["credited_human_decisions"])
    frame["decision_time_to_baseline_ratio"] = ratio(frame["decision_seconds_mean"],
                                                     frame["baseline_seconds_per_decision"])
    leading = [c for c in frame.columns if c not in METRIC_COLUMNS and c != "currency"]
    frame = frame[[*leading, "currency", *METRIC_COLUMNS]]
    for column in METRIC_COLUMNS:
        frame[column] = frame[column].astype(_dtype(column))
    return frame.reset_index(drop=True).copy()  # one block per dtype: the column-by-column build fragments it


def empty_kpis(leading: Sequence[str] = KEY_COLUMNS) -> pd.DataFrame:
    """The KPI frame with no rows (a day without cases), with the right columns and dtypes."""
    columns: dict[str, pd.Series] = {name: pd.Series([], dtype="str") for name in (*leading, "currency")}
    for name in METRIC_COLUMNS:
        columns[name] = pd.Series([], dtype=_dtype(name))
    return pd.DataFrame(columns)


def daily_kpis(cases: pd.DataFrame, impact: ImpactConfig, day: date, review_cells: pd.DataFrame | None = None
               ) -> pd.DataFrame:
    """``compute_kpis`` for one day, with the ``kpi_date`` key first (the grain of the ``kpi_daily`` table)."""
    frame = compute_kpis(cases, impact, review_cells) if len(cases) else empty_kpis()
    frame.insert(0, "kpi_date", pd.Series([day] * len(frame), dtype="object"))
    return frame


# --------------------------------------------------------------------------------------- combining rows (rollups)


def combine(rows: pd.DataFrame, percentiles: pd.DataFrame, group_by: Sequence[str], ci_level: float,
            low_volume_below: int = DEFAULT_LOW_VOLUME_BELOW, review_cells: pd.DataFrame | None = None,
            reviewed_min_audited: int = DEFAULT_REVIEWED_MIN_AUDITED) -> pd.DataFrame:
    """Combine KPI rows (days) into coarser groups: sums of the additive columns, ratios recomputed from them.

    ``rows`` are KPI rows (e.g. ``kpi_daily`` rows of a week, with the ``group_by`` columns present);
    ``percentiles`` holds ``group_by`` plus every ``PERCENTILE_COLUMNS`` entry recomputed from the cases of each
    group (never derived from the rows' own percentiles). ``CONFIG_COLUMNS`` become their case-weighted mean. Adds
    ``days_with_data`` (distinct ``kpi_date`` per group) when ``rows`` has ``kpi_date``. A group whose rows
    carry more than one currency gets currency ``XXX`` and null amounts.

    ``review_cells``: the ``kpi_review_cells`` rows of the same days (``kpi_date`` + ``reviewed.CELL_COLUMNS``, plus
    the ``group_by`` columns the KPI keys do not give, such as the period start): the reviewed estimates are
    recomputed over them, each day's cells separate strata; None leaves them null (counts 0).
    """
    group_by = list(group_by)
    if rows.empty:
        frame = empty_kpis(group_by)
        if "kpi_date" in rows.columns:
            frame.insert(len(group_by), "days_with_data", pd.Series([], dtype="int64"))
        return frame
    work = rows.copy()
    if not group_by:
        work["_all"] = 0
    by = group_by or ["_all"]
    weights = work["cases"].astype(float)
    for column in CONFIG_COLUMNS:
        work[f"_{column}_weighted"] = work[column].astype(float) * weights
    grouped = work.groupby(by, sort=True, dropna=False)
    sums = grouped[[*ADDITIVE_COLUMNS, *(f"_{c}_weighted" for c in CONFIG_COLUMNS)]].sum()
    frame = sums.reset_index()
    variance = combined_hours_saved_variance(work, by)
    frame = frame.merge(variance, on=by, how="left", validate="one_to_one")
    for column in CONFIG_COLUMNS:
        frame[column] = ratio(frame.pop(f"_{column}_weighted"), frame["cases"])
    # The days' baseline intervals do not combine into one (each day has its own control sample); the period's
    # hours_saved interval is computed from the summed variances instead.
    frame["baseline_seconds_ci_low"] = np.nan
    frame["baseline_seconds_ci_high"] = np.nan
    currencies = grouped["currency"].agg(lambda values: values.iloc[0] if values.nunique() == 1 else NO_CURRENCY)
    frame["currency"] = currencies.to_numpy()
    mixed = frame["currency"] == NO_CURRENCY
    if mixed.any():
        frame.loc[mixed, list(AMOUNT_COLUMNS)] = np.nan
    if "kpi_date" in work.columns:
        frame.insert(len(by), "days_with_data", grouped["kpi_date"].nunique().to_numpy().astype(np.int64))
    if group_by:
        frame = frame.merge(percentiles[[*group_by, *PERCENTILE_COLUMNS]], on=group_by, how="left",
                            validate="one_to_one")
    else:
        frame = frame.drop(columns="_all")
        for column in PERCENTILE_COLUMNS:
            frame[column] = percentiles[column].iloc[0] if len(percentiles) else np.nan
    identity = ["kpi_date"] if review_cells is not None and "kpi_date" in review_cells.columns else []
    review_estimates.attach(frame, review_cells, group_by, ci_level, reviewed_min_audited, identity)
    return finalize(frame, ci_level, low_volume_below)


def combined_hours_saved_variance(rows: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """``by`` plus the ``VARIANCE_COLUMNS`` of each group of KPI ``rows``, exact for rows sharing a baseline.

    Every row of one baseline (``BASELINE_IDENTITY``: a system's day; the system alone when ``rows`` has no
    ``kpi_date``, i.e. one day) is priced with the same estimate b̂ of variance v, so their hours_saved errors are
    C_r · (b̂ − b) / 3600, perfectly correlated: the group's part of that baseline has variance (Σ_r C_r)² v / 3600²,
    not Σ_r C_r² v / 3600² (√k too narrow for k equal rows). Since a row's variance is C_r² v / 3600², that is
    (Σ_r √variance_r)²: standard deviations add within a baseline. Distinct baselines are independent control
    samples, so their variances add across systems and days, and the df term of each baseline (its variance² over
    its own n − 1, recovered from the row as variance_r² / df_term_r) adds for Welch–Satterthwaite.
    """
    by = list(by)
    identity = [c for c in BASELINE_IDENTITY if c in rows.columns and c not in by]
    work = rows[[*by, *identity, *VARIANCE_COLUMNS]].copy()
    variance = work["hours_saved_variance"].to_numpy(dtype=float)
    df_term = work["hours_saved_variance_df_term"].to_numpy(dtype=float)
    work["_sd"] = np.sqrt(np.maximum(variance, 0.0))
    # The baseline's n − 1; every row of one baseline carries the same, rows without variance carry none.
    df = satterthwaite_from_terms(variance, df_term)
    work["_df"] = np.where(np.isinf(df), np.nan, df)
    per_baseline = work.groupby([*by, *identity], sort=False, dropna=False).agg(_sd=("_sd", "sum"), _df=("_df", "max"))
    baseline_variance = per_baseline["_sd"].to_numpy() ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        baseline_df_term = np.where(baseline_variance > 0, baseline_variance ** 2 / per_baseline["_df"].to_numpy(),
                                    0.0)
    per_baseline = per_baseline.reset_index()[by].assign(hours_saved_variance=baseline_variance,
                                                         hours_saved_variance_df_term=np.nan_to_num(baseline_df_term))
    return per_baseline.groupby(by, sort=False, dropna=False)[list(VARIANCE_COLUMNS)].sum().reset_index()


# ------------------------------------------------------------------------------------- rows for people and the DB


def _pct(value: float) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1%}"


def _num(value: float, digits: int = 1) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


# The label-free estimate (performance_estimates) that `eval-pipelines kpis` shows beside a day's KPI row.
ESTIMATE_COLUMNS = ("estimated_accuracy", "estimated_accuracy_ci_low", "estimated_accuracy_ci_high")


def estimate_cells(frame: pd.DataFrame) -> list[str]:
    """The label-free estimate of KPI rows (ESTIMATE_COLUMNS) as "78.1 % [75.0 %, 81.2 %]", "–" where none."""
    return [f"{_pct(a)} [{_pct(lo)}, {_pct(hi)}]" if not math.isnan(a) else "–"
            for a, lo, hi in zip(frame["estimated_accuracy"].astype(float),
                                 frame["estimated_accuracy_ci_low"].astype(float),
                                 frame["estimated_accuracy_ci_high"].astype(float), strict=True)]


def headline_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The headline KPIs of KPI rows as display strings; the same table in the Dagster UI and the terminal."""
    leading = [c for c in frame.columns if c not in METRIC_COLUMNS and c not in ESTIMATE_COLUMNS
               and c not in ("currency", "computed_at", "days_with_data")]
    out = pd.DataFrame({c: frame[c].astype(str) for c in leading})
    out["cases"] = [f"{int(v):,}" for v in frame["cases"]]
    out["accept"] = [_pct(v) for v in frame["acceptance_rate"]]
    out["override"] = [_pct(v) for v in frame["override_rate"]]
    out["accuracy [CI]"] = [f"{_pct(a)} [{_pct(lo)}, {_pct(hi)}]" if not math.isnan(a) else "–"
                            for a, lo, hi in zip(frame["accuracy"], frame["accuracy_ci_low"],
                                                 frame["accuracy_ci_high"], strict=True)]
    # Beside the implicit figure, the audit's: "–" where not available (no audit, too few verdicts).
    out["reviewed accuracy [CI]"] = [f"{_pct(a)} [{_pct(lo)}, {_pct(hi)}]" if not math.isnan(a) else "–"
                                     for a, lo, hi in zip(frame["reviewed_accuracy"],
                                                          frame["reviewed_accuracy_ci_low"],
                                                          frame["reviewed_accuracy_ci_high"], strict=True)]
    out["automation bias"] = [_pct(v) for v in frame["automation_bias_rate"]]
    out["p50 decision s (baseline)"] = [f"{_num(p)} ({_num(b, 0)})" for p, b in
                                        zip(frame["decision_seconds_p50"], frame["baseline_seconds_per_decision"],
                                            strict=True)]
    # With a measured baseline the interval comes along; an assumed one has none to show.
    out["hours saved (h)"] = [_num(v) if math.isnan(lo) else f"{_num(v)} [{_num(lo)}, {_num(hi)}]"
                          for v, lo, hi in zip(frame["hours_saved"], frame["hours_saved_ci_low"],
                                               frame["hours_saved_ci_high"], strict=True)]
    out["net value"] = [f"{_num(v, 2)} {c}" for v, c in zip(frame["net_value_amount"], frame["currency"],
                                                              strict=True)]
    # ROI is a ratio (net value per unit of full cost), shown as "2.00×", never as a bare number or a percentage.
    out["ROI (net value / full cost)"] = ["low volume" if low else ("–" if _num(v, 2) == "–" else f"{_num(v, 2)}×")
                                          for v, low in zip(frame["roi"], frame["low_volume"], strict=True)]
    out["error rate"] = [_pct(v) for v in frame["error_rate"]]
    out["p95 latency ms"] = [_num(v, 0) for v in frame["latency_ms_p95"]]
    out["SLO met"] = [_pct(v) for v in frame["slo_attainment_rate"]]
    return out


def render_markdown(table: pd.DataFrame) -> str:
    """A Markdown pipe table (what the UI renders and the CLI prints); ``_no rows_`` when empty."""
    if table.empty:
        return "_no rows_"
    return table.to_markdown(index=False, disable_numparse=True)


