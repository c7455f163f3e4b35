"""Alert rules over warehouse frames: which findings fire, which have resolved. Pure functions, no Dagster, no I/O.

Every source is first turned into *observations* (:class:`Observations`): one entry per subject (a drifted column,
a system's KPI, a candidate's gate, a check) and point in time (a day, or a run for gates and checks), with a
verdict that holds (the condition is met on the evidence), does not hold, or is no verdict (too few cases, no
interval, no reference). Observations then become *episodes* (:func:`episode_bounds`, every subject of a rule at
once with array operations; the figures, walk order and trailing bases are shared by every rule on the same table,
metric and keys, so 1,000 rules cost a fraction of a second): a finding starts on the ``for_days``-th consecutive
day the condition holds, stays one finding while it keeps holding, and resolves on the first later observation where it
does not. A None observation neither continues nor ends an episode, it only breaks a run of consecutive days: a day
with too few cases is no evidence either way.

The evidence rule for rates (docs/alerts.md#the-evidence-rule): a rule fires when the confidence interval lies
beyond the threshold, not when the point estimate does. For ``op: lt`` the interval's upper bound must be below the
threshold, for ``op: gt`` its lower bound above it. The interval is the row's own (``<metric>_ci_low`` /
``_ci_high``, e.g. the design-based interval of a reviewed rate) when the finding is per kpi_daily row; pooled rows
(``by: [system]``) and rates without stored bounds get the Wilson score interval of their summed numerator and
denominator at ``ci_level``. Figures that are not proportions and carry no interval (counts, amounts, percentiles)
are compared as they are; ``min_cases`` still applies.

A finding's identity is (rule, partition_key, subject, started): for daily sources partition_key = started = the
day it fired; for release gates partition_key is the candidate and started the first failing run; for checks
partition_key is the check's partition and started the first failing evaluation. The same data evaluated again
gives the same identities, which is what makes delivery once per finding (:mod:`eval_pipelines.alerts.state`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from eval_pipelines.alerts.settings import EVIDENCE_CASES, AlertsConfig, RuleConfig
from eval_pipelines.intervals import wilson_interval
from eval_pipelines.kpis.metrics import COUNT_COLUMNS, KEY_COLUMNS, RATIOS

SEVERITY_RANK = {"none": 0, "minor": 1, "major": 2}
OP_TEXT = {"lt": "<", "le": "≤", "gt": ">", "ge": "≥"}
# Which source table feeds which rule, and the asset whose page the message links to.
SOURCE_TABLE = {"drift": "drift_results", "kpi": "kpi_daily", "automation_bias": "kpi_daily",
                "estimate": "performance_estimates", "release_gate": "release_gates", "checks": "checks"}
SOURCE_ASSET = {"drift": "drift_report", "kpi": "kpi_daily", "automation_bias": "kpi_daily",
                "estimate": "performance_estimates", "release_gate": "scored_runs"}
DAILY_SOURCES = ("drift", "kpi", "automation_bias", "estimate")
OBSERVATION_COLUMNS = ("subject", "point", "day", "partition_key", "holds", "value", "ci_low", "ci_high",
                       "threshold", "cases", "asset", "detail")


def finding_id(rule: str, partition_key: str, subject: str, started: str) -> str:
    """Stable identity of a finding (hex, 32 chars): the same data gives the same id on every tick and host."""
    text = "\x1f".join((rule, partition_key, subject, started))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Finding:
    """One episode of a rule's condition on one subject, and the figures a person needs to act on it."""

    rule: str
    source: str
    severity: str
    partition_key: str  # the Dagster partition the link opens (the day it fired, the candidate, the check's)
    subject: str  # what it is about: "language (categorical)", "support_triage", "naive_rules/default", ...
    started: str  # the day (ISO) or run id where the episode started: with the three above, the identity
    last: str  # the last day / run where the condition held
    resolved_on: str | None  # the first day / run where it no longer held; None while firing
    last_day: date  # the calendar day of ``last`` (its age decides whether an old finding is announced)
    asset: str
    metric: str | None
    op: str | None
    value: float | None
    ci_low: float | None
    ci_high: float | None
    threshold: float | None
    cases: float | None
    detail: str
    days: int  # observations the condition held in the episode
    channels: tuple[str, ...]
    truncated: bool = False  # the episode reaches back to the first loaded day: it may have started earlier
    resolved_value: float | None = None
    resolved_detail: str = ""

    @property
    def state(self) -> str:
        return "firing" if self.resolved_on is None else "resolved"

    @property
    def id(self) -> str:
        return finding_id(self.rule, self.partition_key, self.subject, self.started)


@dataclass
class Evaluation:
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # rules skipped and why (a missing table, a missing column)
    newest_day: date | None = None


# ------------------------------------------------------------------------------------------------------ evidence


def _compare(values: np.ndarray, op: str, threshold: np.ndarray) -> np.ndarray:
    if op == "lt":
        return values < threshold
    if op == "le":
        return values <= threshold
    if op == "gt":
        return values > threshold
    return values >= threshold


def evidence_holds(op: str, value: np.ndarray, ci_low: np.ndarray, ci_high: np.ndarray, threshold: np.ndarray,
                   cases: np.ndarray, min_cases: int) -> np.ndarray:
    """True/False/None per row: the interval's far bound beyond the threshold (the point when there is no interval).

    For lt/le the upper bound must be beyond, for gt/ge the lower bound: the whole interval is on the firing side,
    so a day whose estimate crosses the threshold by chance alone does not fire. None where there are fewer than
    ``min_cases`` cases, no value, or no threshold (relative rules without a reference).
    """
    value = np.asarray(value, dtype=float)
    bound = np.asarray(ci_high if op in ("lt", "le") else ci_low, dtype=float)
    bound = np.where(np.isnan(bound), value, bound)  # no interval: the figure itself
    threshold = np.asarray(threshold, dtype=float)
    cases = np.asarray(cases, dtype=float)
    judged = ~np.isnan(value) & ~np.isnan(threshold) & ~np.isnan(bound) & _enough_cases(cases, min_cases)
    holds = _compare(np.where(judged, bound, 0.0), op, np.where(judged, threshold, 0.0))
    return np.where(judged, holds, None)


# ---------------------------------------------------------------------------------------------- daily KPI figures


def _ci_columns(metric: str) -> tuple[str, str]:
    if metric.endswith("_amount"):
        stem = metric[: -len("_amount")]
        return f"{stem}_ci_low_amount", f"{stem}_ci_high_amount"
    return f"{metric}_ci_low", f"{metric}_ci_high"


def evidence_cases_column(metric: str) -> str:
    """The column counting the cases a row-level figure rests on (what ``min_cases`` is compared with).

    A reviewed rate counts its audited verdicts of the right denominator (automation_bias_rate: the accepted
    audited cases), an estimate's realized accuracy or estimation error the day's trusted labels
    (``realized_cases``); any other figure the row's ``cases``. Rates of counts use their denominator instead.
    """
    return EVIDENCE_CASES.get(metric, "cases")


def metric_figures(rows: pd.DataFrame, rule: RuleConfig, day_column: str, ci_level: float) -> pd.DataFrame:
    """Per (day, subject keys): value, ci_low, ci_high and cases of the rule's metric.

    Row-level findings keep the row's stored interval; pooled findings sum numerators and denominators (a rate) or
    the column (a count or sum) and recompute a Wilson interval for rates of counts.
    """
    metric = rule.metric_name() or ""
    keys = rule.keys()
    group = [day_column, *keys]
    row_level = set(keys) == set(KEY_COLUMNS)
    low_name, high_name = _ci_columns(metric)
    if metric in RATIOS:
        numerator, denominator = RATIOS[metric]
        # A ratio of amounts (roi: net value / total cost) rests on the row's cases, not on its denominator's money.
        counted = denominator in COUNT_COLUMNS or "cases" not in rows.columns
        summed = [numerator, denominator] + ([] if counted else ["cases"])
        pooled = rows.groupby(group, sort=True, dropna=False)[summed].sum().reset_index()
        num = pooled[numerator].to_numpy(dtype=float)
        den = pooled[denominator].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
        if numerator in COUNT_COLUMNS and denominator in COUNT_COLUMNS:
            low, high = wilson_interval(num, den, ci_level)
        else:
            low = high = np.full(len(pooled), np.nan)
        if row_level and low_name in rows.columns:
            stored = rows.set_index(group)[[low_name, high_name]]
            joined = pooled.join(stored, on=group)
            low = np.where(joined[low_name].notna(), joined[low_name], low)
            high = np.where(joined[high_name].notna(), joined[high_name], high)
        cases = den if counted else pooled["cases"].to_numpy(dtype=float)
        return pooled[group].assign(value=value, ci_low=low, ci_high=high, cases=cases)
    if row_level:
        cases_column = evidence_cases_column(metric)
        frame = rows[group].copy()
        frame["value"] = pd.to_numeric(rows[metric], errors="coerce").to_numpy(dtype=float)
        for name, out in ((low_name, "ci_low"), (high_name, "ci_high")):
            frame[out] = rows[name].to_numpy(dtype=float) if name in rows.columns else np.nan
        frame["cases"] = (rows[cases_column].to_numpy(dtype=float) if cases_column in rows.columns
                          else np.nan)
        return frame.sort_values(group).reset_index(drop=True)
    # a count or a sum, pooled: no interval
    columns = [metric] + (["cases"] if "cases" in rows.columns and metric != "cases" else [])
    pooled = rows.groupby(group, sort=True, dropna=False)[columns].sum().reset_index()
    cases = pooled["cases"] if "cases" in pooled.columns else pooled[metric]
    return pooled[group].assign(value=pooled[metric].to_numpy(dtype=float), ci_low=np.nan, ci_high=np.nan,
                                cases=cases.to_numpy(dtype=float))


def _subject_labels(frame: pd.DataFrame, keys: Sequence[str]) -> pd.Series:
    if not keys:
        return pd.Series("all", index=frame.index)
    labels = frame[keys[0]].astype(str)
    for key in keys[1:]:
        labels = labels + "/" + frame[key].astype(str)
    return labels


def _trailing_window(figures: pd.DataFrame, rows: pd.DataFrame, rule: RuleConfig,
                     day_column: str) -> tuple[np.ndarray, np.ndarray]:
    """Per figure row, the base of a relative threshold and how many trailing days had data.

    The base pools the ``trailing_days`` calendar days before the day (the pooled ratio for rates, the mean value
    otherwise); a day's threshold is base × (1 ∓ by) where at least ``min_days`` of them had data (else none). The
    base is treated as known: it rests on several days of cases, the day's own interval carries the day's
    uncertainty. Computed with cumulative sums over a (day × subject) grid, so its cost does not grow with the
    window; shared by every rule on the same metric, keys and trailing_days (:func:`_trailing_base`).
    """
    change = rule.relative_change
    assert change is not None
    metric = rule.metric_name() or ""
    keys = rule.keys()
    if metric in RATIOS:
        numerator, denominator = RATIOS[metric]
        daily = rows.groupby([day_column, *keys], dropna=False)[[numerator, denominator]].sum().reset_index()
        top, bottom = daily[numerator].to_numpy(float), daily[denominator].to_numpy(float)
    else:
        daily = figures[[day_column, *keys, "value"]]
        present = daily["value"].notna().to_numpy()
        top, bottom = np.where(present, daily["value"].to_numpy(float), 0.0), present.astype(float)
    day_numbers = np.array([d.toordinal() for d in pd.to_datetime(daily[day_column]).dt.date])
    subjects, subject_index = np.unique(_subject_labels(daily, keys).to_numpy().astype(str), return_inverse=True)
    first = int(day_numbers.min())
    span = int(day_numbers.max()) - first + 1
    grid_top = np.zeros((span + 1, len(subjects)))
    grid_bottom = np.zeros((span + 1, len(subjects)))
    grid_days = np.zeros((span + 1, len(subjects)))
    rows_at = day_numbers - first + 1  # row 0 stays zero: cumulative sums start before the first day
    np.add.at(grid_top, (rows_at, subject_index), top)
    np.add.at(grid_bottom, (rows_at, subject_index), bottom)
    np.add.at(grid_days, (rows_at, subject_index), 1.0)
    sums = [np.cumsum(grid, axis=0) for grid in (grid_top, grid_bottom, grid_days)]
    wanted_days = np.array([d.toordinal() for d in pd.to_datetime(figures[day_column]).dt.date]) - first + 1
    wanted_subjects = np.searchsorted(subjects, _subject_labels(figures, keys).to_numpy().astype(str))
    end = wanted_days - 1  # the window ends the day before
    start = np.maximum(wanted_days - 1 - change.trailing_days, 0)
    window = [s[end, wanted_subjects] - s[start, wanted_subjects] for s in sums]
    with np.errstate(divide="ignore", invalid="ignore"):
        base = np.where(window[1] > 0, window[0] / np.where(window[1] > 0, window[1], 1.0), np.nan)
    return base, window[2]


def _fmt(value: float | None, metric: str | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if metric is not None and (metric.endswith("_rate") or metric in RATIOS or "accuracy" in metric):
        return f"{100 * value:.1f} %"
    return f"{value:,.4g}"


# ---------------------------------------------------------------------------------------------------- observations
# Verdicts are int8 codes so that a rule's whole series is judged with array operations.
HOLDS, DOES_NOT_HOLD, NO_VERDICT = np.int8(1), np.int8(0), np.int8(-1)


@dataclass(frozen=True)
class Observations:
    """A source's observations as arrays, one entry per subject and point, in the source's row order.

    ``order`` is the walk the episodes take (by subject, then for daily sources by day and point; ties keep their row
    order); ``subject_code`` and ``day_number`` are given along that walk. What differs between rules on the same
    observations (the verdicts, relative thresholds, the words) is passed beside them, so one ``Observations`` serves
    every rule on the same table, metric and keys.
    """

    subject: np.ndarray
    point: np.ndarray
    day: np.ndarray  # datetime.date per entry
    partition_key: np.ndarray
    value: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    cases: np.ndarray
    asset: np.ndarray
    daily: bool
    order: np.ndarray
    subject_code: np.ndarray
    day_number: np.ndarray

    @classmethod
    def build(cls, *, subject: Sequence, point: Sequence, day: Sequence, partition_key: Sequence, value: Sequence,
              ci_low: Sequence, ci_high: Sequence, cases: Sequence, asset: Sequence | str,
              daily: bool) -> Observations:
        subject = np.asarray(subject, dtype=object)
        point = np.asarray(point, dtype=object)
        day = np.asarray(day, dtype=object)
        count = len(subject)
        asset = np.full(count, asset, dtype=object) if isinstance(asset, str) else np.asarray(asset, dtype=object)
        subject_code = np.unique(subject.astype(str), return_inverse=True)[1].reshape(-1) if count else \
            np.zeros(0, dtype=np.int64)
        if daily:
            day_number = np.fromiter((d.toordinal() for d in day), dtype=np.int64, count=count)
            point_code = np.unique(point.astype(str), return_inverse=True)[1].reshape(-1) if count else day_number
            order = np.lexsort((np.arange(count), point_code, day_number, subject_code))
        else:
            day_number = np.zeros(count, dtype=np.int64)
            order = np.lexsort((np.arange(count), subject_code))
        return cls(subject=subject, point=point, day=day, partition_key=np.asarray(partition_key, dtype=object),
                   value=np.asarray(value, dtype=float), ci_low=np.asarray(ci_low, dtype=float),
                   ci_high=np.asarray(ci_high, dtype=float), cases=np.asarray(cases, dtype=float), asset=asset,
                   daily=daily, order=order, subject_code=subject_code[order], day_number=day_number[order])

    def __len__(self) -> int:
        return len(self.subject)


def _codes(holds: np.ndarray) -> np.ndarray:
    """int8 verdicts from True / False / None (None, or anything but a boolean, is no verdict)."""
    return np.fromiter((HOLDS if v is True or v is np.True_ else DOES_NOT_HOLD if v is False or v is np.False_
                        else NO_VERDICT for v in holds), dtype=np.int8, count=len(holds))


def _evidence_codes(op: str, value: np.ndarray, ci_low: np.ndarray, ci_high: np.ndarray, threshold: np.ndarray,
                    cases: np.ndarray, min_cases: int) -> np.ndarray:
    bound = np.asarray(ci_high if op in ("lt", "le") else ci_low, dtype=float)
    bound = np.where(np.isnan(bound), value, bound)  # no interval: the figure itself
    judged = ~np.isnan(value) & ~np.isnan(threshold) & ~np.isnan(bound) & _enough_cases(cases, min_cases)
    holds = _compare(np.where(judged, bound, 0.0), op, np.where(judged, threshold, 0.0))
    return np.where(judged, np.where(holds, HOLDS, DOES_NOT_HOLD), NO_VERDICT).astype(np.int8)


def _enough_cases(cases: np.ndarray, min_cases: int) -> np.ndarray | bool:
    """Whether each figure rests on at least ``min_cases`` cases; an unknown count (NULL, e.g. a row written before
    its count column existed) is not enough evidence when a minimum is set."""
    if not min_cases:
        return True
    with np.errstate(invalid="ignore"):
        return np.asarray(cases, dtype=float) >= min_cases


@dataclass
class _Cache:
    """What rules on the same table, metric and keys share within one evaluation."""

    kpi: dict = field(default_factory=dict)  # (asset, metric, keys) -> (figures, Observations)
    trailing: dict = field(default_factory=dict)  # (asset, metric, keys, trailing_days) -> (base, days with data)
    drift: _DriftBase | None = None


def _trailing_base(figures: pd.DataFrame, rows: pd.DataFrame, rule: RuleConfig, day_column: str,
                   cache: _Cache) -> tuple[np.ndarray, np.ndarray]:
    change = rule.relative_change
    assert change is not None
    key = (day_column, rule.metric_name(), tuple(rule.keys()), change.trailing_days)
    if key not in cache.trailing:
        cache.trailing[key] = _trailing_window(figures, rows, rule, day_column)
    return cache.trailing[key]


def _kpi_observations(rows: pd.DataFrame, rule: RuleConfig, ci_level: float, day_column: str, asset: str,
                      cache: _Cache):
    """A rule on a KPI-like table (kpi_daily, performance_estimates): observations, verdicts, thresholds, words."""
    keys = rule.keys()
    metric = rule.metric_name()
    memo_key = (asset, metric, tuple(keys))
    if memo_key not in cache.kpi:
        figures = metric_figures(rows, rule, day_column, ci_level)
        days = pd.to_datetime(figures[day_column]).dt.date.to_numpy()
        points = np.array([d.isoformat() for d in days], dtype=object)
        cache.kpi[memo_key] = (figures, Observations.build(
            subject=_subject_labels(figures, keys).to_numpy(), point=points, day=days, partition_key=points,
            value=figures["value"].to_numpy(dtype=float), ci_low=figures["ci_low"].to_numpy(dtype=float),
            ci_high=figures["ci_high"].to_numpy(dtype=float), cases=figures["cases"].to_numpy(dtype=float),
            asset=asset, daily=True))
    figures, observed = cache.kpi[memo_key]
    if rule.threshold is not None:
        thresholds = np.full(len(observed), float(rule.threshold))
    else:
        change = rule.relative_change
        assert change is not None
        base, days_with_data = _trailing_base(figures, rows, rule, day_column, cache)
        factor = 1.0 - change.by if rule.op in ("lt", "le") else 1.0 + change.by
        thresholds = np.where(days_with_data >= change.min_days, base * factor, np.nan)
    op = rule.op or "gt"
    holds = _evidence_codes(op, observed.value, observed.ci_low, observed.ci_high, thresholds, observed.cases,
                            rule.min_cases)

    def detail(i: int) -> str:
        value, low, high = observed.value[i], observed.ci_low[i], observed.ci_high[i]
        cases, threshold = observed.cases[i], thresholds[i]
        interval = f" (CI {_fmt(low, metric)} – {_fmt(high, metric)})" if not math.isnan(low) else " (no interval)"
        text = f"{metric} {_fmt(value, metric)}{interval} vs threshold {OP_TEXT[op]} " \
               f"{_fmt(threshold, metric)} over {0 if math.isnan(cases) else int(cases):,} cases"
        if holds[i] == NO_VERDICT:
            reason = (f"fewer than min_cases {rule.min_cases}" if not cases >= rule.min_cases else
                      "no reference window" if math.isnan(threshold) else "no value")
            text += f"; no verdict: {reason}"
        return text

    return observed, holds, thresholds, detail


@dataclass(frozen=True)
class _DriftBase:
    """drift_results as arrays, once per evaluation; the words are made per finding, only where needed."""

    observed: Observations
    column: np.ndarray
    holds_from: dict[str, np.ndarray]  # rule severity -> verdicts (drifted with at least that severity)
    threshold: np.ndarray
    severity: np.ndarray
    p_adjusted: np.ndarray
    reason: np.ndarray


def _drift_base(results: pd.DataFrame) -> _DriftBase:
    days = pd.to_datetime(results["date"]).dt.date.to_numpy()
    points = np.array([d.isoformat() for d in days], dtype=object)
    tested = results["p_adjusted"].notna().to_numpy() if "p_adjusted" in results.columns \
        else np.ones(len(results), bool)
    rank = results["severity"].map(SEVERITY_RANK).fillna(0).to_numpy()
    drifted = results["drifted"].astype(bool).to_numpy()
    observed = Observations.build(
        subject=(results["column"].astype(str) + " (" + results["kind"].astype(str) + ")").to_numpy(),
        point=points, day=days, partition_key=points, value=results["effect_size"].to_numpy(dtype=float),
        ci_low=results["effect_ci_low"].to_numpy(dtype=float), ci_high=results["effect_ci_high"].to_numpy(float),
        cases=np.full(len(results), np.nan), asset="drift_report", daily=True)
    holds_from = {name: np.where(tested, np.where(drifted & (rank >= level), HOLDS, DOES_NOT_HOLD),
                                 NO_VERDICT).astype(np.int8)
                  for name, level in SEVERITY_RANK.items()}
    return _DriftBase(observed=observed, column=results["column"].to_numpy(dtype=object), holds_from=holds_from,
                      threshold=results["threshold"].to_numpy(dtype=float),
                      severity=results["severity"].to_numpy(dtype=object),
                      p_adjusted=results["p_adjusted"].to_numpy(dtype=float),
                      reason=results["reason"].to_numpy(dtype=object))


def _drift_observations(results: pd.DataFrame, rule: RuleConfig, cache: _Cache):
    """Per (day, column, kind) of drift_results: does the day drift with at least the rule's severity?

    Columns the rule leaves out get no verdict rather than being dropped: a column is part of its subject, so a
    subject either keeps all its rows or has no verdict at all, and the shared arrays need no copy per rule.
    """
    if cache.drift is None:
        cache.drift = _drift_base(results)
    base: _DriftBase = cache.drift
    holds = base.holds_from[rule.severity]
    if rule.columns or rule.exclude_columns:
        holds = holds.copy()
        if rule.columns:
            holds[~np.isin(base.column, rule.columns)] = NO_VERDICT
        if rule.exclude_columns:
            holds[np.isin(base.column, rule.exclude_columns)] = NO_VERDICT
    observed = base.observed

    def detail(i: int) -> str:
        return (f"{base.severity[i]} drift: effect {_fmt(observed.value[i])} (CI {_fmt(observed.ci_low[i])} – "
                f"{_fmt(observed.ci_high[i])}), material from {_fmt(base.threshold[i])}, adjusted p "
                f"{_fmt(base.p_adjusted[i])}; {base.reason[i]}")

    return observed, holds, base.threshold, detail


def _frame_observations(frame: pd.DataFrame):
    """Observations of the sources with few rows (gates, checks), given as a frame with ``holds`` and ``detail``."""
    observed = Observations.build(
        subject=frame["subject"].to_numpy(), point=frame["point"].to_numpy(), day=frame["day"].to_numpy(),
        partition_key=frame["partition_key"].to_numpy(), value=frame["value"].to_numpy(dtype=float),
        ci_low=frame["ci_low"].to_numpy(dtype=float), ci_high=frame["ci_high"].to_numpy(dtype=float),
        cases=frame["cases"].to_numpy(dtype=float), asset=frame["asset"].to_numpy(), daily=False)
    details = frame["detail"].to_numpy()
    return observed, _codes(frame["holds"].to_numpy()), frame["threshold"].to_numpy(dtype=float), \
        lambda i: details[i]


def gate_observations(gates: pd.DataFrame, rule: RuleConfig) -> pd.DataFrame:
    """One observation per scored run (release_gates rows grouped by run_id): did the candidate's gate fail?"""
    frame = gates if not rule.candidates else gates[gates["candidate"].isin(rule.candidates)]
    if frame.empty:
        return pd.DataFrame(columns=list(OBSERVATION_COLUMNS))
    rows = []
    for run_id, run in frame.sort_values(["created_at", "run_id", "position"]).groupby("run_id", sort=False):
        first = run.iloc[0]
        failed = run[~run["passed"].astype(bool)]
        detail = "; ".join(f"{r.criterion}: {_fmt(r.value)} (needs {OP_TEXT.get(r.op, r.op)} {_fmt(r.threshold)}, "
                           f"{r.verdict})" for r in failed.itertuples()) or "every criterion passes"
        created = pd.Timestamp(first["created_at"])
        rows.append({"subject": f"{first['candidate']}/{first['context']}", "point": str(run_id),
                     "order": created, "day": created.date(), "partition_key": str(first["candidate"]),
                     "holds": not bool(first["gate_passed"]), "value": float(len(failed)), "ci_low": np.nan,
                     "ci_high": np.nan, "threshold": np.nan, "cases": np.nan, "asset": "scored_runs",
                     "detail": f"eval set {first['eval_set_version']}, run {str(run_id)[:8]}: {detail}"})
    return pd.DataFrame(rows).sort_values("order").drop(columns="order").reset_index(drop=True)


CHECK_COLUMNS = ("asset_key", "check_name", "partition_key", "passed", "blocking", "run_id", "storage_id",
                 "timestamp", "description")


def check_observations(checks: pd.DataFrame, rule: RuleConfig) -> pd.DataFrame:
    """One observation per blocking asset-check evaluation (frames from the Dagster instance, oldest first)."""
    frame = checks[checks["blocking"].astype(bool)] if len(checks) else checks
    if rule.checks and len(frame):
        names = frame["asset_key"].astype(str) + ":" + frame["check_name"].astype(str)
        frame = frame[names.isin(rule.checks) | frame["check_name"].isin(rule.checks)]
    if frame.empty:
        return pd.DataFrame(columns=list(OBSERVATION_COLUMNS))
    frame = frame.sort_values("storage_id")
    partitions = frame["partition_key"].fillna("").astype(str)
    # One series per check and partition: the subject carries both, the partition is also the link's.
    subjects = frame["asset_key"].astype(str) + ":" + frame["check_name"].astype(str) + \
        np.where(partitions != "", "[" + partitions + "]", "")
    days = pd.to_datetime(frame["timestamp"], unit="s", utc=True).dt.date
    return pd.DataFrame({
        "subject": subjects.to_numpy(), "point": frame["run_id"].astype(str).to_numpy(), "day": days.to_numpy(),
        "partition_key": partitions.to_numpy(), "holds": ~frame["passed"].astype(bool).to_numpy(),
        "value": np.nan, "ci_low": np.nan, "ci_high": np.nan, "threshold": np.nan, "cases": np.nan,
        "asset": frame["asset_key"].astype(str).to_numpy(),
        "detail": frame["description"].fillna("").astype(str).to_numpy(),
    })


# ------------------------------------------------------------------------------------------------------- episodes


@dataclass(frozen=True)
class EpisodeBounds:
    """Episodes as positions along an observation walk (``Observations.order``); ``resolved`` is -1 while firing."""

    start: np.ndarray
    last: np.ndarray
    resolved: np.ndarray
    days: np.ndarray
    truncated: np.ndarray


def episode_bounds(holds: np.ndarray, subject_code: np.ndarray, day_number: np.ndarray, for_days: int,
                   daily: bool, first_day_number: int | None) -> EpisodeBounds:
    """The state machine of the module docstring, over a whole walk at once (verdicts given along the walk).

    A true observation extends the run of the one before it when that one held too, is the same subject and (daily
    sources) the day before; an episode opens at the first observation whose run reaches ``for_days`` after the
    subject's start or the last false observation, and ends at the next false observation of its subject. True
    observations after the opening count as days of the episode (also after a gap); no-verdict ones do nothing.
    """
    count = len(holds)
    empty = np.zeros(0, dtype=np.int64)
    if count == 0:
        return EpisodeBounds(empty, empty, empty, empty, np.zeros(0, dtype=bool))
    is_true = holds == HOLDS
    is_false = holds == DOES_NOT_HOLD
    index = np.arange(count)
    new_subject = np.ones(count, dtype=bool)
    new_subject[1:] = subject_code[1:] != subject_code[:-1]
    extends = np.zeros(count, dtype=bool)
    extends[1:] = is_true[:-1] & ~new_subject[1:]
    if daily:
        extends[1:] &= (day_number[1:] - day_number[:-1]) == 1
    run_start = np.maximum.accumulate(np.where(is_true & ~extends, index, -1))
    run = np.where(is_true, index - run_start + 1, 0)
    # A subject's start and every false observation begin an epoch; an episode opens at the first observation of
    # its epoch whose run reaches for_days, and ends where the next epoch begins (resolved if that is a false
    # observation of the same subject, still firing if it is the next subject or the end).
    boundary = is_false | new_subject
    epoch = np.cumsum(boundary)
    opens = np.flatnonzero(run >= for_days)
    if len(opens) == 0:
        return EpisodeBounds(empty, empty, empty, empty, np.zeros(0, dtype=bool))
    first_of_epoch = np.ones(len(opens), dtype=bool)
    first_of_epoch[1:] = epoch[opens[1:]] != epoch[opens[:-1]]
    start = opens[first_of_epoch]
    boundaries = np.flatnonzero(boundary)
    following = np.searchsorted(boundaries, start, side="right")
    end = np.where(following < len(boundaries), boundaries[np.minimum(following, len(boundaries) - 1)], count)
    resolved = np.where((end < count) & ~new_subject[np.minimum(end, count - 1)], end, -1)
    last_true = np.maximum.accumulate(np.where(is_true, index, -1))
    true_so_far = np.cumsum(is_true)
    last = last_true[end - 1]
    days = run[start] + true_so_far[end - 1] - true_so_far[start]
    truncated = (np.zeros(len(start), dtype=bool) if not daily or first_day_number is None
                 else day_number[start] - (run[start] - 1) <= first_day_number)
    return EpisodeBounds(start, last, resolved, days, truncated)


def _none(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _findings(rule: RuleConfig, observed: Observations, holds: np.ndarray, thresholds: np.ndarray,
              detail: Callable[[int], str], first_day: date | None) -> list[Finding]:
    """The findings of one rule: episodes of its verdicts, and each episode's figures (firing: the latest one;
    resolved: the one that fired, and the day it stopped)."""
    if len(observed) == 0 or not (holds == HOLDS).any():
        return []
    bounds = episode_bounds(holds[observed.order], observed.subject_code, observed.day_number, rule.for_days,
                            observed.daily, None if first_day is None else first_day.toordinal())
    metric = rule.metric_name() if rule.on in ("kpi", "estimate", "automation_bias") else None
    channels = tuple(rule.channels)
    order = observed.order
    found = []
    for start_at, last_at, resolved_at, days, truncated in zip(
            bounds.start.tolist(), bounds.last.tolist(), bounds.resolved.tolist(), bounds.days.tolist(),
            bounds.truncated.tolist(), strict=True):
        start, last = int(order[start_at]), int(order[last_at])
        resolved = None if resolved_at < 0 else int(order[resolved_at])
        shown = last if resolved is None else start
        found.append(Finding(
            rule=rule.name, source=rule.on, severity=rule.severity, partition_key=str(observed.partition_key[start]),
            subject=str(observed.subject[start]), started=str(observed.point[start]), last=str(observed.point[last]),
            resolved_on=None if resolved is None else str(observed.point[resolved]), last_day=observed.day[last],
            asset=str(observed.asset[start]), metric=metric, op=rule.op, value=_none(observed.value[shown]),
            ci_low=_none(observed.ci_low[shown]), ci_high=_none(observed.ci_high[shown]),
            threshold=_none(thresholds[shown]), cases=_none(observed.cases[shown]), detail=str(detail(shown)),
            days=int(days), channels=channels, truncated=bool(truncated),
            resolved_value=None if resolved is None else _none(observed.value[resolved]),
            resolved_detail="" if resolved is None else str(detail(resolved)),
        ))
    return found


# ------------------------------------------------------------------------------------------------------ evaluate


def _newest_day(frames: Mapping[str, pd.DataFrame | None]) -> date | None:
    days = []
    for name, column in (("kpi_daily", "kpi_date"), ("drift_results", "date"),
                         ("performance_estimates", "partition_date")):
        frame = frames.get(name)
        if frame is not None and len(frame):
            days.append(pd.to_datetime(frame[column]).max().date())
    return max(days) if days else None


def evaluate(config: AlertsConfig, frames: Mapping[str, pd.DataFrame | None], ci_level: float = 0.95,
             first_day: date | None = None) -> Evaluation:
    """Every rule of ``config`` over ``frames`` (table name -> frame, None when the table does not exist).

    ``first_day`` is the first day loaded: episodes reaching back to it are marked ``truncated`` (their true
    start may lie before the window; :func:`eval_pipelines.alerts.state.plan` matches them to known findings).
    Rules on the same table, metric and keys share their figures and their walk order (:class:`_Cache`), so a
    rule costs a few array operations over the window plus the findings it has.
    """
    result = Evaluation(newest_day=_newest_day(frames))
    cache = _Cache()
    columns_of: dict[str, set[str]] = {}
    for rule in config.rules:
        table = SOURCE_TABLE[rule.on]
        frame = frames.get(table)
        if frame is None and rule.on == "checks":
            result.notes.append(f"{rule.name}: no check evaluations were read (the Dagster instance is needed); "
                                "rule not evaluated")
            continue
        if frame is None:
            result.notes.append(f"{rule.name}: table {table} does not exist (yet); rule not evaluated")
            continue
        if table not in columns_of:
            columns_of[table] = set(frame.columns)
        columns = columns_of[table]
        metric = rule.metric_name()
        computable = metric in columns or (metric in RATIOS and set(RATIOS[metric]) <= columns)
        if rule.on in ("kpi", "automation_bias", "estimate") and len(frame) and not computable:
            result.notes.append(f"{rule.name}: {table} has no column {metric} (yet); rule not evaluated")
            continue
        if rule.on in ("kpi", "automation_bias", "estimate") and len(frame) and rule.min_cases \
                and metric not in RATIOS and set(rule.keys()) == set(KEY_COLUMNS) \
                and evidence_cases_column(metric or "") not in columns:
            # Without the count, every row would pass min_cases: no verdict is the honest answer.
            result.notes.append(f"{rule.name}: {table} has no column {evidence_cases_column(metric or '')} (the "
                                f"cases behind {metric} that min_cases counts) (yet); rule not evaluated")
            continue
        if len(frame) == 0:
            continue
        if rule.on == "drift":
            observed = _drift_observations(frame, rule, cache)
        elif rule.on in ("kpi", "automation_bias"):
            observed = _kpi_observations(frame, rule, ci_level, "kpi_date", "kpi_daily", cache)
        elif rule.on == "estimate":
            observed = _kpi_observations(frame, rule, ci_level, "partition_date", "performance_estimates", cache)
        else:
            rows = gate_observations(frame, rule) if rule.on == "release_gate" else check_observations(frame, rule)
            if rows.empty:
                continue
            observed = _frame_observations(rows)
        result.findings.extend(_findings(rule, *observed, first_day))
    return result


def required_days(config: AlertsConfig) -> int:
    """How many days before the newest one the daily sources must be loaded for every rule to be judged."""
    extra = [rule.for_days + (rule.relative_change.trailing_days if rule.relative_change else 0)
             for rule in config.rules]
    return config.max_age_days + max(extra, default=1) + 1


def subjects_of(findings: Sequence[Finding]) -> set[tuple[str, str]]:
    return {(f.rule, f.subject) for f in findings}
