"""FROZEN REFERENCE (test-only): eval_pipelines/alerts/rules.py as it was before it was vectorised (issue 16).

test_alerts_rules_equivalence.py evaluates seeded random rule sets over random frames with this module and with
eval_pipelines.alerts.rules and asserts identical findings: the fast code must keep every behaviour of this slow,
plainly-written one (per subject and day loops). Do not optimise this file; change it only where a deliberate
behaviour change (named here) is made to both.

Deliberate changes made to both:
- min_cases counts the cases that are evidence for the metric (settings.EVIDENCE_CASES: the accepted / overridden
  audited verdicts of automation_bias_rate / override_error_rate, realized_cases for an estimate's
  realized_accuracy and estimation_error), no longer reviewed_cases_audited or the day's population (issue 16);
  a ratio of amounts (roi, roi_over_inference_cost) counts the row's cases, not its denominator's money; the
  label-free estimate counts its calibration_cases; with a min_cases, an unknown (NULL) count is not enough.

The original module docstring follows.

Alert rules over warehouse frames: which findings fire, which have resolved. Pure functions, no Dagster, no I/O.

Every source is first turned into *observations*: one row per subject (a drifted column, a system's KPI, a
candidate's gate, a check) and point in time (a day, or a run for gates and checks), with ``holds`` True (the
condition is met on the evidence), False (it is not) or None (no verdict: too few cases, no interval, no reference).
Observations then become *episodes* (:func:`episodes`): a finding starts on the ``for_days``-th consecutive day the
condition holds, stays one finding while it keeps holding, and resolves on the first later observation where it
does not. A None observation neither continues nor ends an episode, it only breaks a run of consecutive days: a day
with too few cases is no evidence either way.

The evidence rule for rates (docs/alerts.md#evidence): a rule fires when the confidence interval lies beyond the
threshold, not when the point estimate does. For ``op: lt`` the interval's upper bound must be below the threshold,
for ``op: gt`` its lower bound above it. The interval is the row's own (``<metric>_ci_low`` / ``_ci_high``, e.g. the
design-based interval of a reviewed rate) when the finding is per kpi_daily row; pooled rows (``by: [system]``) and
rates without stored bounds get the Wilson score interval of their summed numerator and denominator at
``ci_level``. Figures that are not proportions and carry no interval (counts, amounts, percentiles) are compared as
they are; ``min_cases`` still applies.

A finding's identity is (rule, partition_key, subject, started): for daily sources partition_key = started = the
day it fired; for release gates partition_key is the candidate and started the first failing run; for checks
partition_key is the check's partition and started the first failing evaluation. The same data evaluated again
gives the same identities, which is what makes delivery once per finding (:mod:`eval_pipelines.alerts.state`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

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
    with np.errstate(invalid="ignore"):
        enough = cases >= min_cases if min_cases else np.ones(cases.shape, dtype=bool)
    judged = ~np.isnan(value) & ~np.isnan(threshold) & ~np.isnan(bound) & enough
    holds = _compare(np.where(judged, bound, 0.0), op, np.where(judged, threshold, 0.0))
    return np.where(judged, holds, None)


# ---------------------------------------------------------------------------------------------- daily KPI figures


def _ci_columns(metric: str) -> tuple[str, str]:
    if metric.endswith("_amount"):
        stem = metric[: -len("_amount")]
        return f"{stem}_ci_low_amount", f"{stem}_ci_high_amount"
    return f"{metric}_ci_low", f"{metric}_ci_high"


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
        cases_column = EVIDENCE_CASES.get(metric, "cases" if "cases" in rows.columns else None)
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


def _relative_thresholds(figures: pd.DataFrame, rows: pd.DataFrame, rule: RuleConfig, day_column: str) -> np.ndarray:
    """Each day's threshold from its trailing window: the pooled ratio (rates) or mean value, × (1 ∓ by).

    The base pools the ``trailing_days`` calendar days before the day (at least ``min_days`` of them with data) and
    is treated as known: it rests on several days of cases, the day's own interval carries the day's uncertainty.
    Computed with cumulative sums over a (day × subject) grid, so its cost does not grow with the window.
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
    factor = 1.0 - change.by if rule.op in ("lt", "le") else 1.0 + change.by
    return np.where(window[2] >= change.min_days, base * factor, np.nan)


def _fmt(value: float | None, metric: str | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if metric is not None and (metric.endswith("_rate") or metric in RATIOS or "accuracy" in metric):
        return f"{100 * value:.1f} %"
    return f"{value:,.4g}"


def _in_firing_subjects(subjects: np.ndarray, holds: np.ndarray) -> np.ndarray:
    """Rows of the subjects that hold at least once: the only rows whose words can end up in a message."""
    true = np.array([v is True or v is np.True_ for v in holds], dtype=bool)
    return np.isin(subjects, np.unique(subjects[true])) if true.any() else np.zeros(len(subjects), dtype=bool)


def kpi_observations(rows: pd.DataFrame, rule: RuleConfig, ci_level: float, day_column: str = "kpi_date",
                     asset: str = "kpi_daily", cache: dict | None = None) -> pd.DataFrame:
    """Observations of a rule on a KPI-like table (kpi_daily, performance_estimates).

    ``cache`` (one per evaluation) shares the pooled figures between rules on the same metric and keys.
    """
    if rows.empty:
        return pd.DataFrame(columns=list(OBSERVATION_COLUMNS))
    keys = rule.keys()
    metric = rule.metric_name()
    memo_key = (asset, metric, tuple(keys))
    if cache is not None and memo_key in cache:
        figures, subjects, days = cache[memo_key]
    else:
        figures = metric_figures(rows, rule, day_column, ci_level)
        subjects = _subject_labels(figures, keys).to_numpy()
        days = pd.to_datetime(figures[day_column]).dt.date.to_numpy()
        if cache is not None:
            cache[memo_key] = (figures, subjects, days)
    if rule.threshold is not None:
        thresholds = np.full(len(figures), float(rule.threshold))
    else:
        thresholds = _relative_thresholds(figures, rows, rule, day_column)
    values, lows, highs = (figures[c].to_numpy(dtype=float) for c in ("value", "ci_low", "ci_high"))
    cases = figures["cases"].to_numpy(dtype=float)
    holds = evidence_holds(rule.op or "gt", values, lows, highs, thresholds, cases, rule.min_cases)
    worded = _in_firing_subjects(subjects, holds)
    details = [""] * len(figures)
    for i in np.flatnonzero(worded):
        interval = (f" (CI {_fmt(lows[i], metric)} – {_fmt(highs[i], metric)})" if not math.isnan(lows[i]) else
                    " (no interval)")
        text = f"{metric} {_fmt(values[i], metric)}{interval} vs threshold {OP_TEXT[rule.op or 'gt']} " \
               f"{_fmt(thresholds[i], metric)} over {0 if math.isnan(cases[i]) else int(cases[i]):,} cases"
        if holds[i] is None:
            reason = (f"fewer than min_cases {rule.min_cases}" if not cases[i] >= rule.min_cases else
                      "no reference window" if math.isnan(thresholds[i]) else "no value")
            text += f"; no verdict: {reason}"
        details[i] = text
    points = np.array([d.isoformat() for d in days], dtype=object)
    return pd.DataFrame({
        "subject": subjects, "point": points, "day": days, "partition_key": points, "holds": holds,
        "value": values, "ci_low": lows, "ci_high": highs, "threshold": thresholds, "cases": cases,
        "asset": asset, "detail": details,
    })


# -------------------------------------------------------------------------------------------------- other sources


def _drift_base(results: pd.DataFrame) -> pd.DataFrame:
    """drift_results as observation columns, once per evaluation; the words are added per rule, only where needed."""
    days = pd.to_datetime(results["date"]).dt.date
    points = days.map(date.isoformat).to_numpy()
    tested = results["p_adjusted"].notna().to_numpy() if "p_adjusted" in results.columns \
        else np.ones(len(results), bool)
    return pd.DataFrame({
        "column": results["column"].to_numpy(),
        "subject": (results["column"].astype(str) + " (" + results["kind"].astype(str) + ")").to_numpy(),
        "point": points, "day": days.to_numpy(), "partition_key": points,
        "rank": results["severity"].map(SEVERITY_RANK).fillna(0).to_numpy(),
        "drifted": results["drifted"].astype(bool).to_numpy(), "tested": tested,
        "value": results["effect_size"].to_numpy(dtype=float), "ci_low": results["effect_ci_low"].to_numpy(float),
        "ci_high": results["effect_ci_high"].to_numpy(dtype=float), "threshold": results["threshold"].to_numpy(float),
        "severity": results["severity"].to_numpy(), "p_adjusted": results["p_adjusted"].to_numpy(dtype=float),
        "reason": results["reason"].to_numpy(),
    })


def drift_observations(results: pd.DataFrame, rule: RuleConfig, base: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (day, column, kind) of drift_results: does the day drift with at least the rule's severity?"""
    frame = _drift_base(results) if base is None else base
    if rule.columns:
        frame = frame[frame["column"].isin(rule.columns)]
    if rule.exclude_columns:
        frame = frame[~frame["column"].isin(rule.exclude_columns)]
    if frame.empty:
        return pd.DataFrame(columns=list(OBSERVATION_COLUMNS))
    holds = np.where(frame["tested"].to_numpy(),
                     frame["drifted"].to_numpy() & (frame["rank"].to_numpy() >= SEVERITY_RANK[rule.severity]), None)
    subjects = frame["subject"].to_numpy()
    worded = _in_firing_subjects(subjects, holds)
    details = [""] * len(frame)
    columns = [frame[c].to_numpy() for c in ("severity", "value", "ci_low", "ci_high", "threshold", "p_adjusted",
                                             "reason")]
    for i in np.flatnonzero(worded):
        severity, effect, low, high, threshold, p, reason = (c[i] for c in columns)
        details[i] = (f"{severity} drift: effect {_fmt(effect)} (CI {_fmt(low)} – {_fmt(high)}), material from "
                      f"{_fmt(threshold)}, adjusted p {_fmt(p)}; {reason}")
    out = frame[["subject", "point", "day", "partition_key", "value", "ci_low", "ci_high", "threshold"]].copy()
    out["holds"] = holds
    out["cases"] = np.nan
    out["asset"] = "drift_report"
    out["detail"] = details
    return out[list(OBSERVATION_COLUMNS)]


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


def episodes(observations: pd.DataFrame, rule: RuleConfig, daily: bool, first_day: date | None) -> list[Finding]:
    """The findings of one rule from its observations (see the module docstring for the state machine)."""
    found: list[Finding] = []
    if observations.empty:
        return found
    firing = _in_firing_subjects(observations["subject"].to_numpy(), observations["holds"].to_numpy())
    if not firing.any():
        return found
    observations = observations[firing]
    order = ["subject", "day", "point"] if daily else ["subject"]
    frame = observations.sort_values(order, kind="stable") if daily else observations
    metric = rule.metric_name() if rule.on in ("kpi", "estimate", "automation_bias") else None
    channels = tuple(rule.channels)
    for subject, series in frame.groupby("subject", sort=True):
        records = series.to_dict("records")
        run = 0
        previous_day: date | None = None
        previous_true = False
        open_: dict | None = None
        for record in records:
            verdict = record["holds"]
            day = record["day"]
            consecutive = previous_true and (not daily or (previous_day is not None
                                                           and day - previous_day == timedelta(days=1)))
            if verdict is True or verdict is np.True_:
                run = run + 1 if consecutive else 1
                if open_ is None and run >= rule.for_days:
                    open_ = {"start": record, "last": record, "days": run,
                             "truncated": daily and first_day is not None
                             and day - timedelta(days=run - 1) <= first_day}
                elif open_ is not None:
                    open_["last"] = record
                    open_["days"] += 1
                previous_true = True
            else:
                run = 0
                previous_true = False
                if (verdict is False or verdict is np.False_) and open_ is not None:
                    found.append(_finding(rule, subject, open_, record, metric, channels))
                    open_ = None
            previous_day = day
        if open_ is not None:
            found.append(_finding(rule, subject, open_, None, metric, channels))
    return found


def _none(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _finding(rule: RuleConfig, subject: str, episode: Mapping, resolved: Mapping | None, metric: str | None,
             channels: tuple[str, ...]) -> Finding:
    start, last = episode["start"], episode["last"]
    shown = last if resolved is None else start  # firing: the latest figure; resolved: the one that fired
    return Finding(
        rule=rule.name, source=rule.on, severity=rule.severity, partition_key=str(start["partition_key"]),
        subject=str(subject), started=str(start["point"]), last=str(last["point"]),
        resolved_on=None if resolved is None else str(resolved["point"]), last_day=last["day"],
        asset=str(start["asset"]), metric=metric, op=rule.op, value=_none(shown["value"]),
        ci_low=_none(shown["ci_low"]), ci_high=_none(shown["ci_high"]), threshold=_none(shown["threshold"]),
        cases=_none(shown["cases"]), detail=str(shown["detail"]), days=int(episode["days"]), channels=channels,
        truncated=bool(episode["truncated"]),
        resolved_value=None if resolved is None else _none(resolved["value"]),
        resolved_detail="" if resolved is None else str(resolved["detail"]),
    )


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
    """
    result = Evaluation(newest_day=_newest_day(frames))
    cache: dict = {}
    drift_base: pd.DataFrame | None = None
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
        metric = rule.metric_name()
        computable = metric in frame.columns or (metric in RATIOS and set(RATIOS[metric]) <= set(frame.columns))
        if rule.on in ("kpi", "automation_bias", "estimate") and len(frame) and not computable:
            result.notes.append(f"{rule.name}: {table} has no column {metric} (yet); rule not evaluated")
            continue
        if rule.on == "drift":
            if drift_base is None:
                drift_base = _drift_base(frame)
            observations = drift_observations(frame, rule, drift_base)
        elif rule.on in ("kpi", "automation_bias"):
            observations = kpi_observations(frame, rule, ci_level, cache=cache)
        elif rule.on == "estimate":
            observations = kpi_observations(frame, rule, ci_level, "partition_date", "performance_estimates",
                                            cache=cache)
        elif rule.on == "release_gate":
            observations = gate_observations(frame, rule)
        else:
            observations = check_observations(frame, rule)
        result.findings.extend(episodes(observations, rule, rule.on in DAILY_SOURCES, first_day))
    return result


def required_days(config: AlertsConfig) -> int:
    """How many days before the newest one the daily sources must be loaded for every rule to be judged."""
    extra = [rule.for_days + (rule.relative_change.trailing_days if rule.relative_change else 0)
             for rule in config.rules]
    return config.max_age_days + max(extra, default=1) + 1


def subjects_of(findings: Sequence[Finding]) -> set[tuple[str, str]]:
    return {(f.rule, f.subject) for f in findings}
