"""The report model: every number of the quality report, each with the warehouse query it comes from.

No dagster, no rendering. ``build_report`` runs read-only queries on the warehouse (SQLAlchemy 2, plain SQL text
with bound parameters, so the text shown as provenance is the text that ran) and returns a ``QualityReport``:
sections of ``Figure`` values (a number, its unit, its interval when it has one, and its provenance) and tables.

KPI totals are not re-derived: the period's ``kpi_daily`` rows go through ``kpis.metrics.combine``, the code that
builds ``kpi_weekly`` / ``kpi_monthly`` (sums of additive columns, ratios of sums, the hours-saved interval from the
per-baseline variances with Welch–Satterthwaite df). So "hours saved this week" here equals SUM(hours_saved) of
kpi_daily over the week, and its interval is the rollup's.

Optional tables (written by domains that a deployment may not run: the review loop's columns of ``kpi_daily``,
``performance_estimates``, the scoring and drift tables) are looked up in the live schema; a section whose table or
columns are missing says so (``available=False`` with the reason) instead of failing or inventing zeros.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from eval_pipelines.kpis.metrics import NO_CURRENCY, PERCENTILE_COLUMNS, combine
from eval_pipelines.reporting.periods import Week
from eval_pipelines.review.adjudication import agreement_by_system

REVIEW_COLUMNS = ("reviewed_cases_audited", "reviewed_accuracy", "reviewed_accuracy_ci_low",
                  "reviewed_accuracy_ci_high", "automation_bias_rate", "automation_bias_rate_ci_low",
                  "automation_bias_rate_ci_high")
"""The corrected-KPI columns of kpi_daily (docs/warehouse.md); the review section needs all of them."""
ESTIMATE_COLUMNS = ("partition_date", "system", "model_version", "segment", "cases", "estimated_accuracy",
                    "estimated_accuracy_ci_low", "estimated_accuracy_ci_high", "realized_accuracy", "realized_cases")
TREND_DAYS = 56  # the plots show the last eight weeks up to the period's end
TOP_FAILURE_MODES = 5
EXAMPLES_PER_MODE = 2
EXAMPLE_CHARS = 160


@dataclass(frozen=True)
class Query:
    """One SQL statement as it ran: the text and its parameters (the provenance of the numbers it produced)."""

    sql: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        shown = ", ".join(f":{k} = {v}" for k, v in self.params.items())
        return " ".join(self.sql.split()) + (f"  [{shown}]" if shown else "")


@dataclass(frozen=True)
class Figure:
    """A number of the report. ``unit``: percent (value is a fraction), currency code, hours, count, ms, times (a
    ratio shown as a multiple, like the kpi_daily metadata), verdict, date."""

    key: str
    label: str
    value: float | None
    unit: str
    source: str  # how the number is derived from the query's rows, in words ("SUM(hours_saved)")
    query: Query
    ci_low: float | None = None
    ci_high: float | None = None
    note: str = ""


@dataclass
class Section:
    key: str
    title: str
    available: bool = True
    reason: str = ""  # why the section is not available
    figures: list[Figure] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    queries: list[Query] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def figure(self, key: str) -> Figure:
        return next(f for f in self.figures if f.key == key)


@dataclass
class QualityReport:
    week: Week
    generated_at: datetime
    partial: bool
    days_with_data: int
    currency: str
    ci_level: float
    sections: dict[str, Section]
    series: dict[str, pd.DataFrame]  # daily series behind the plots

    def section(self, key: str) -> Section:
        return self.sections[key]

    def figures(self) -> dict[str, Figure]:
        """Every figure by ``<section>.<key>``."""
        return {f"{s.key}.{f.key}": f for s in self.sections.values() for f in s.figures}


# ----------------------------------------------------------------------------------------------------- queries


def _statement(query: Query) -> sa.TextClause:
    """The query with typed parameters: dates and timestamps bound as such (PostgreSQL compares them to DATE and
    TIMESTAMPTZ columns; SQLite gets SQLAlchemy's own string format), lists as expanding IN lists."""
    binds = []
    for name, value in query.params.items():
        if isinstance(value, list | tuple):
            binds.append(sa.bindparam(name, expanding=True))
        elif isinstance(value, datetime):
            binds.append(sa.bindparam(name, type_=sa.DateTime(timezone=True)))
        elif isinstance(value, date):
            binds.append(sa.bindparam(name, type_=sa.Date()))
    return sa.text(query.sql).bindparams(*binds)


def _frame(connection: sa.Connection, query: Query) -> pd.DataFrame:
    result = connection.execute(_statement(query), dict(query.params))
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def _number(value: Any) -> float | None:
    if value is None or value is pd.NA:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _kpi_rows(connection: sa.Connection, query: Query) -> pd.DataFrame:
    frame = _frame(connection, query)
    if frame.empty:
        return frame
    frame["kpi_date"] = pd.to_datetime(frame["kpi_date"]).dt.date
    for column in frame.columns:
        if column not in ("kpi_date", "system", "model_version", "segment", "currency", "computed_at", "low_volume"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame["low_volume"] = frame["low_volume"].astype(bool)
    return frame


def _no_percentiles(group_by: Sequence[str]) -> pd.DataFrame:
    # Percentiles are recomputed from cases in rollups; the report reads them from kpi_weekly instead.
    return pd.DataFrame(columns=[*group_by, *PERCENTILE_COLUMNS])


def combine_rows(rows: pd.DataFrame, group_by: Sequence[str], ci_level: float, low_volume_below: int
                 ) -> pd.DataFrame:
    """``kpis.metrics.combine`` of kpi_daily rows (percentile columns left null)."""
    percentiles = _no_percentiles(group_by)
    if group_by and not rows.empty:
        percentiles = rows[list(group_by)].drop_duplicates().assign(**{c: np.nan for c in PERCENTILE_COLUMNS})
    return combine(rows, percentiles, group_by, ci_level, low_volume_below)


def _kpi_query(since: date | None, until: date) -> Query:
    if since is None:
        return Query("SELECT * FROM kpi_daily WHERE kpi_date <= :until ORDER BY kpi_date, system, model_version, "
                     "segment", {"until": until})
    return Query("SELECT * FROM kpi_daily WHERE kpi_date >= :since AND kpi_date <= :until ORDER BY kpi_date, "
                 "system, model_version, segment", {"since": since, "until": until})


def _value_figures(total: pd.Series | None, query: Query, prefix: str, currency: str) -> list[Figure]:
    """Hours saved, net value and ROI (with their intervals) of a combined KPI row."""
    def get(column: str) -> float | None:
        return None if total is None else _number(total[column])

    net, cost = get("net_value_amount"), get("total_cost_amount")
    net_low, net_high = get("net_value_ci_low_amount"), get("net_value_ci_high_amount")
    roi = get("roi")
    # The full cost is a census (no uncertainty); only the baseline is uncertain, so ROI's interval is the net
    # value's divided by the same cost.
    roi_low = net_low / cost if roi is not None and net_low is not None and cost else None
    roi_high = net_high / cost if roi is not None and net_high is not None and cost else None
    assumed = int(get("assumed_baseline_decisions") or 0)
    interval_note = ("no interval: " f"{assumed:,} credited decision(s) priced at the assumed manual baseline "
                     "(impact.systems.<system>.manual_baseline_seconds); the figure moves linearly with it") \
        if assumed else ""
    return [
        Figure(f"{prefix}hours_saved", "Hours saved", get("hours_saved"), "hours", "SUM(hours_saved)", query,
               get("hours_saved_ci_low"), get("hours_saved_ci_high"), interval_note),
        Figure(f"{prefix}net_value", "Net value", net, currency, "SUM(net_value_amount)", query, net_low, net_high,
               interval_note),
        Figure(f"{prefix}roi", "ROI (net value / full cost of running)", roi, "times",
               "SUM(net_value_amount) / SUM(total_cost_amount)", query, roi_low, roi_high,
               interval_note or ("withheld: fewer cases than impact.low_volume_below" if roi is None and total is not
                                 None and bool(total["low_volume"]) else "")),
        Figure(f"{prefix}total_cost", "Full cost of running (AI + review labour + platform)", cost, currency,
               "SUM(total_cost_amount)", query),
        Figure(f"{prefix}cases", "Cases", get("cases"), "count", "SUM(cases)", query),
    ]


def _currency_of(rows: pd.DataFrame) -> str:
    currencies = sorted(set(rows["currency"])) if len(rows) else []
    return currencies[0] if len(currencies) == 1 else (NO_CURRENCY if currencies else "")


def _table_columns(inspector: sa.Inspector, table: str) -> set[str]:
    return {c["name"] for c in inspector.get_columns(table)} if inspector.has_table(table) else set()


# ----------------------------------------------------------------------------------------------------- sections


def _value_section(connection: sa.Connection, week: Week, ci_level: float, low_volume_below: int
                   ) -> tuple[Section, pd.DataFrame, str]:
    section = Section("value", "Value delivered")
    week_query, to_date_query = _kpi_query(week.start, week.end), _kpi_query(None, week.end)
    previous = week.previous()
    previous_query = _kpi_query(previous.start, previous.end)
    week_rows = _kpi_rows(connection, week_query)
    to_date_rows = _kpi_rows(connection, to_date_query)
    previous_rows = _kpi_rows(connection, previous_query)
    section.queries += [week_query, to_date_query, previous_query]
    currency = _currency_of(to_date_rows)
    totals = {}
    for name, rows in (("week", week_rows), ("to_date", to_date_rows), ("previous", previous_rows)):
        combined = combine_rows(rows, [], ci_level, low_volume_below) if len(rows) else None
        totals[name] = None if combined is None or combined.empty else combined.iloc[0]
    section.figures += _value_figures(totals["week"], week_query, "week_", currency)
    section.figures += _value_figures(totals["to_date"], to_date_query, "to_date_", currency)
    if len(to_date_rows):
        section.figures.append(Figure("first_day", "First day with data", None, "date", "MIN(kpi_date)",
                                      to_date_query, note=str(min(to_date_rows["kpi_date"]))))
    # Week over week: the same figures for the previous week, and the change.
    changes = []
    for column, label, unit in (("cases", "Cases", "count"), ("hours_saved", "Hours saved", "hours"),
                                ("net_value_amount", "Net value", currency),
                                ("roi", "ROI (net value / full cost of running)", "times"),
                                ("accuracy", "Accuracy (implicit labels)", "percent"),
                                ("error_rate", "Error rate", "percent"),
                                ("slo_attainment_rate", "Latency SLO attainment", "percent")):
        now = None if totals["week"] is None else _number(totals["week"][column])
        before = None if totals["previous"] is None else _number(totals["previous"][column])
        change = now - before if now is not None and before is not None else None
        changes.append({"metric": label, "unit": unit, "this_week": now, "previous_week": before, "change": change})
        section.figures.append(Figure(f"wow_{column}", f"{label}: change vs previous week", change, unit,
                                      f"{column} of this week − {column} of the previous week", previous_query))
    section.tables["week_over_week"] = pd.DataFrame(changes)
    assumptions = _assumptions(to_date_rows, connection, section)
    section.tables["assumptions"] = assumptions
    return section, week_rows, currency


def _assumptions(rows: pd.DataFrame, connection: sa.Connection, section: Section) -> pd.DataFrame:
    """The impact-model inputs behind the money figures, as the KPI rows recorded them, plus kpi_definitions."""
    out = []
    if len(rows):
        for system, part in rows.groupby("system", sort=True):
            weights = part["cases"].astype(float)
            total = float(weights.sum()) or 1.0
            out.append({
                "system": system,
                "manual baseline (s per decision)": float((part["baseline_seconds_per_decision"] * weights).sum()
                                                          / total),
                "baseline": "measured (control group)" if int(part["assumed_baseline_decisions"].sum()) == 0
                and int(part["baseline_control_decisions"].sum()) > 0 else "ASSUMED (configured constant)",
                "labour cost per hour": float((part["labour_cost_per_hour"] * weights).sum() / total),
                "currency": _currency_of(part),
            })
    query = Query("SELECT metric, label, unit, formula FROM kpi_definitions WHERE metric IN ('hours_saved', "
                  "'net_value_amount', 'roi', 'baseline_seconds_per_decision') ORDER BY metric")
    if sa.inspect(connection).has_table("kpi_definitions"):
        definitions = _frame(connection, query)
        section.queries.append(query)
        section.tables["definitions"] = definitions
    return pd.DataFrame(out)


def _versions_section(week_rows: pd.DataFrame, ci_level: float, low_volume_below: int, query: Query) -> Section:
    section = Section("versions", "Model versions side by side", queries=[query])
    if week_rows.empty:
        section.available, section.reason = False, "no kpi_daily rows in this period"
        return section
    frame = combine_rows(week_rows, ["system", "model_version"], ci_level, low_volume_below)
    section.tables["versions"] = frame[["system", "model_version", "cases", "days_with_data", "accuracy",
                                        "accuracy_ci_low", "accuracy_ci_high", "acceptance_rate", "override_rate",
                                        "hours_saved", "hours_saved_ci_low", "hours_saved_ci_high",
                                        "net_value_amount", "roi", "error_rate", "slo_attainment_rate"]]
    for row in frame.itertuples(index=False):
        key = f"{row.system}/{row.model_version}"
        section.figures.append(Figure(f"accuracy:{key}", f"Accuracy (implicit) {key}", _number(row.accuracy),
                                      "percent", "SUM(correct_cases) / SUM(labeled_cases) GROUP BY system, "
                                      "model_version", query, _number(row.accuracy_ci_low),
                                      _number(row.accuracy_ci_high)))
        section.figures.append(Figure(f"cases:{key}", f"Cases {key}", _number(row.cases), "count",
                                      "SUM(cases) GROUP BY system, model_version", query))
    return section


def _review_section(connection: sa.Connection, week: Week, columns: set[str], review_enabled: bool) -> Section:
    section = Section("review", "Reviewed vs implicit accuracy, automation bias")
    if not review_enabled:
        section.available = False
        section.reason = "review loop disabled (review.enabled: false in the config; docs/review.md)"
        return section
    missing = [c for c in REVIEW_COLUMNS if c not in columns]
    if missing:
        section.available = False
        section.reason = ("review loop not configured: kpi_daily has no " + ", ".join(missing) +
                          " (the audit review writes them; docs/review.md)")
        return section
    query = Query("SELECT kpi_date, system, model_version, segment, labeled_cases, accuracy, accuracy_ci_low, "
                  "accuracy_ci_high, " + ", ".join(REVIEW_COLUMNS) + " FROM kpi_daily WHERE kpi_date >= :since AND "
                  "kpi_date <= :until AND reviewed_accuracy IS NOT NULL ORDER BY kpi_date, system, model_version, "
                  "segment", {"since": week.start, "until": week.end})
    frame = _frame(connection, query)
    section.queries.append(query)
    if frame.empty:
        section.available = False
        section.reason = ("no audited day in this period: reviewed_accuracy is null on every kpi_daily row (the "
                          "review loop is off, or has not reviewed these days yet)")
        return section
    section.tables["reviewed"] = frame
    for row in frame.itertuples(index=False):
        key = f"{row.kpi_date}/{row.system}/{row.model_version}/{row.segment}"
        section.figures.append(Figure(f"reviewed_accuracy:{key}", f"Reviewed accuracy {key}",
                                      _number(row.reviewed_accuracy), "percent", "reviewed_accuracy", query,
                                      _number(row.reviewed_accuracy_ci_low), _number(row.reviewed_accuracy_ci_high)))
        section.figures.append(Figure(f"automation_bias_rate:{key}", f"Automation-bias rate {key}",
                                      _number(row.automation_bias_rate), "percent", "automation_bias_rate", query,
                                      _number(row.automation_bias_rate_ci_low),
                                      _number(row.automation_bias_rate_ci_high)))
    _week_agreement(connection, week, section)
    section.notes.append("Implicit accuracy takes the human's action as the label, so a wrong suggestion that was "
                         "accepted counts as correct; reviewed accuracy is the audit sample's design-weighted "
                         "estimate over the day's ok cases. The automation-bias rate is the share of accepted "
                         "cases the AI got wrong.")
    return section


def _week_agreement(connection: sa.Connection, week: Week, section: Section) -> None:
    """Reviewer agreement rolled up over the week (issue 12 item 3; review_agreement holds it per day): Krippendorff's
    α, and Cohen's κ when the same two reviewers read every double-reviewed case, over the week's cases with two or
    more verdicts, recomputed from reviewed_cases (coefficients do not add up across days).

    The verdict compared is ``COALESCE(draft_verdict, label)``: a free-text system's binary verdict on the draft
    (the one review_labels adjudicated and measured agreement on; two different corrections of a wrong draft
    agree), a label system's label. A reviewed_cases table from before the column compares labels, and says so."""
    columns = _table_columns(sa.inspect(connection), "reviewed_cases")
    if not columns:
        return
    stored = "draft_verdict" in columns
    verdict = "COALESCE(draft_verdict, label)" if stored else "label"
    query = Query(f"SELECT partition_date, event_id, system, reviewer, {verdict} AS verdict"
                  + (", draft_verdict IS NOT NULL AS on_draft" if stored else "") + " FROM reviewed_cases WHERE "
                  "partition_date >= :since AND partition_date <= :until ORDER BY partition_date, event_id, reviewer",
                  {"since": week.start, "until": week.end})
    verdicts = _frame(connection, query)
    if verdicts.empty:
        return
    section.queries.append(query)
    if not stored:
        section.notes.append("reviewed_cases has no draft_verdict column (created before it existed): reviewer "
                             "agreement compares the verdicts' labels, which for a free-text system are reply texts "
                             "that rarely match; add the column (docs/warehouse.md) and re-materialise review_labels.")
    else:
        on_draft = verdicts["on_draft"].astype(bool)
        mixed = sorted(set(verdicts.loc[on_draft, "system"]) & set(verdicts.loc[~on_draft, "system"]))
        if mixed:
            section.notes.append(f"Some verdicts of {', '.join(mixed)} have no draft_verdict (reviewed before the "
                                 "column existed): their reply texts are compared as they are; re-materialise "
                                 "review_labels for those days.")
    # A case is (day, event): the same event id on two days is two cases.
    verdicts = verdicts.assign(event_id=verdicts["partition_date"].astype(str) + "/" + verdicts["event_id"].astype(str),
                               label=verdicts["verdict"])
    rows = []
    for found in agreement_by_system(verdicts):
        if not found.double_reviewed_cases:
            continue
        rows.append(found.row())
        section.figures.append(Figure(
            f"reviewer_agreement_alpha:{found.system}", f"Reviewer agreement (Krippendorff's α) {found.system}",
            _number(found.alpha.estimate), "coefficient", f"Krippendorff's α (nominal) of {verdict} over the week's "
            "cases with two or more verdicts (review/agreement.py)", query, _number(found.alpha.ci_low),
            _number(found.alpha.ci_high), note=f"{found.double_reviewed_cases} double-reviewed cases, "
            f"{len(found.disputed)} disputed"))
    if rows:
        section.tables["agreement"] = pd.DataFrame(rows)


def _reliability_section(connection: sa.Connection, week: Week, total: pd.Series | None, query: Query,
                         inspector: sa.Inspector) -> Section:
    section = Section("reliability", "Reliability", queries=[query])
    if total is None:
        section.available, section.reason = False, "no kpi_daily rows in this period"
        return section
    for column, label, source in (("error_rate", "Error rate", "SUM(error_cases) / SUM(cases)"),
                                  ("timeout_rate", "Timeout rate", "SUM(timeout_cases) / SUM(cases)"),
                                  ("slo_attainment_rate", "Latency SLO attainment",
                                   "SUM(slo_met_cases) / SUM(cases)")):
        section.figures.append(Figure(column, label, _number(total[column]), "percent", source, query))
    if inspector.has_table("kpi_weekly"):
        weekly = Query("SELECT system, model_version, segment, cases, latency_ms_p50, latency_ms_p95, "
                       "latency_ms_p99, latency_slo_ms, slo_attainment_rate FROM kpi_weekly WHERE week_start = "
                       ":week_start ORDER BY system, model_version, segment", {"week_start": week.start})
        frame = _frame(connection, weekly)
        section.queries.append(weekly)
        section.tables["latency"] = frame
        for row in frame.itertuples(index=False):
            key = f"{row.system}/{row.model_version}/{row.segment}"
            section.figures.append(Figure(f"latency_p95:{key}", f"p95 latency {key}", _number(row.latency_ms_p95),
                                          "ms", "kpi_weekly.latency_ms_p95", weekly,
                                          note=f"SLO {_number(row.latency_slo_ms):.0f} ms"
                                          if _number(row.latency_slo_ms) is not None else ""))
    return section


def _gates_section(connection: sa.Connection, week: Week, inspector: sa.Inspector) -> Section:
    section = Section("gates", "Release gates and verdicts")
    if not (inspector.has_table("release_gates") and inspector.has_table("scored_runs")):
        section.available, section.reason = False, "no candidate has been scored (no release_gates table)"
        return section
    until = datetime.combine(week.end + timedelta(days=1), time(), tzinfo=UTC)
    # The latest scored run of each candidate up to the period's end.
    latest = Query("SELECT g.run_id, g.candidate, g.context, g.created_at, g.eval_set_version, g.position, "
                   "g.criterion, g.value, g.op, g.threshold, g.verdict, g.passed, g.gate_passed, g.detail "
                   "FROM release_gates g WHERE g.created_at < :until AND g.created_at = (SELECT MAX(h.created_at) "
                   "FROM release_gates h WHERE h.candidate = g.candidate AND h.created_at < :until) "
                   "ORDER BY g.candidate, g.position", {"until": until})
    gates = _frame(connection, latest)
    section.queries.append(latest)
    if gates.empty:
        section.available, section.reason = False, "no scored run up to the end of this period"
        return section
    section.tables["criteria"] = gates
    runs = sorted(set(gates["run_id"]))
    summary = Query("SELECT run_id, candidate, scorer, n_scored, estimate, ci_low, ci_high, baseline, "
                    "baseline_estimate, diff, diff_ci_low, diff_ci_high, p_value FROM scored_runs WHERE "
                    "case_set = 'eval_set' AND slice_dim = 'all' AND run_id IN :runs ORDER BY candidate, scorer",
                    {"runs": runs})
    section.tables["scores"] = _frame(connection, summary)
    section.queries.append(summary)
    for candidate, part in gates.groupby("candidate", sort=True):
        passed = bool(part["gate_passed"].iloc[0])
        failing = part[~part["passed"].astype(bool)]
        section.figures.append(Figure(
            f"gate:{candidate}", f"Release gate {candidate} ({part['context'].iloc[0]})", 1.0 if passed else 0.0,
            "verdict", "release_gates.gate_passed of the candidate's latest run", latest,
            note="PASS" if passed else "FAIL: " + "; ".join(f"{r.criterion} ({r.verdict})"
                                                            for r in failing.itertuples(index=False))))
    return section


def _drift_section(connection: sa.Connection, week: Week, inspector: sa.Inspector) -> Section:
    section = Section("drift", "Drift highlights")
    if not inspector.has_table("drift_results"):
        section.available, section.reason = False, "no drift report yet (no drift_results table)"
        return section
    query = Query('SELECT "column", kind, COUNT(*) AS days_drifted, SUM(CASE WHEN severity = \'major\' THEN 1 '
                  "ELSE 0 END) AS major_days, MAX(effect_size) AS max_effect, MAX(threshold) AS threshold, "
                  'MIN(date) AS first_day, MAX(date) AS last_day FROM drift_results WHERE date >= :since AND '
                  "date <= :until AND drifted AND severity <> 'none' GROUP BY \"column\", kind "
                  'ORDER BY major_days DESC, days_drifted DESC, max_effect DESC, "column"',
                  {"since": week.start, "until": week.end})
    per_day = Query("SELECT date, SUM(CASE WHEN severity = 'major' AND drifted THEN 1 ELSE 0 END) AS major, "
                    "SUM(CASE WHEN severity = 'minor' AND drifted THEN 1 ELSE 0 END) AS minor, COUNT(*) AS checks "
                    "FROM drift_results WHERE date >= :since AND date <= :until GROUP BY date ORDER BY date",
                    {"since": week.start, "until": week.end})
    highlights, days = _frame(connection, query), _frame(connection, per_day)
    section.queries += [query, per_day]
    section.tables["highlights"] = highlights
    section.tables["per_day"] = days
    section.figures.append(Figure("major_drifts", "Major drifts (column × day)",
                                  float(days["major"].sum()) if len(days) else 0.0, "count",
                                  "SUM over days of drifted rows with severity major", per_day))
    section.figures.append(Figure("minor_drifts", "Minor drifts (column × day)",
                                  float(days["minor"].sum()) if len(days) else 0.0, "count",
                                  "SUM over days of drifted rows with severity minor", per_day))
    section.figures.append(Figure("days_checked", "Days with a drift report", float(len(days)), "count",
                                  "COUNT(DISTINCT date)", per_day))
    return section


def _failure_section(connection: sa.Connection, week: Week, inspector: sa.Inspector) -> Section:
    section = Section("failures", "Top failure modes")
    if not (inspector.has_table("edge_cases") and inspector.has_table("edge_case_days")):
        section.available, section.reason = False, "no edge-case library yet (no edge_cases table)"
        return section
    period = Query("SELECT e.failure_mode, SUM(d.occurrences) AS occurrences, COUNT(DISTINCT d.entry_id) AS "
                   "entries FROM edge_case_days d JOIN edge_cases e ON e.entry_id = d.entry_id WHERE "
                   "d.partition_date >= :since AND d.partition_date <= :until GROUP BY e.failure_mode "
                   "ORDER BY occurrences DESC, e.failure_mode LIMIT :top",
                   {"since": week.start, "until": week.end, "top": TOP_FAILURE_MODES})
    status = Query("SELECT failure_mode, status, COUNT(*) AS entries FROM edge_cases GROUP BY failure_mode, status "
                   "ORDER BY failure_mode, status")
    top, statuses = _frame(connection, period), _frame(connection, status)
    section.queries += [period, status]
    counts = statuses.pivot_table(index="failure_mode", columns="status", values="entries", aggfunc="sum",
                                  fill_value=0) if len(statuses) else pd.DataFrame()
    for name in ("open", "fixed", "regressed"):
        top[name] = [int(counts.loc[m, name]) if m in counts.index and name in counts.columns else 0
                     for m in top["failure_mode"]]
    section.tables["top"] = top
    examples = Query("SELECT e.failure_mode, e.entry_id, e.status, e.input_text, e.ai_output, e.expected_output, "
                     "SUM(d.occurrences) AS occurrences FROM edge_case_days d JOIN edge_cases e ON e.entry_id = "
                     "d.entry_id WHERE d.partition_date >= :since AND d.partition_date <= :until GROUP BY "
                     "e.failure_mode, e.entry_id, e.status, e.input_text, e.ai_output, e.expected_output "
                     "ORDER BY e.failure_mode, occurrences DESC, e.entry_id",
                     {"since": week.start, "until": week.end})
    rows = _frame(connection, examples)
    section.queries.append(examples)
    chosen = rows[rows["failure_mode"].isin(set(top["failure_mode"]))].groupby("failure_mode", sort=False).head(
        EXAMPLES_PER_MODE)
    for column in ("input_text", "ai_output", "expected_output"):
        # Texts were PII-masked at ingestion (the warehouse never holds raw PII); cut for the page.
        chosen[column] = chosen[column].fillna("").astype(str).map(
            lambda t: t if len(t) <= EXAMPLE_CHARS else t[:EXAMPLE_CHARS - 1] + "…")
    section.tables["examples"] = chosen.reset_index(drop=True)
    for row in top.itertuples(index=False):
        section.figures.append(Figure(f"occurrences:{row.failure_mode}", f"Occurrences of {row.failure_mode}",
                                      float(row.occurrences), "count", "SUM(edge_case_days.occurrences) in the "
                                      "period per failure mode", period))
    section.notes.append("Example texts are as stored in the warehouse: PII-masked at ingestion.")
    return section


def _estimates_section(connection: sa.Connection, week: Week, inspector: sa.Inspector) -> Section:
    section = Section("estimates", "Estimated accuracy on unlabeled days")
    missing = [c for c in ESTIMATE_COLUMNS if c not in _table_columns(inspector, "performance_estimates")]
    if missing:
        section.available = False
        section.reason = ("label-free estimation not configured: no performance_estimates table" if
                          not inspector.has_table("performance_estimates") else
                          "performance_estimates lacks " + ", ".join(missing))
        return section
    query = Query("SELECT " + ", ".join(ESTIMATE_COLUMNS) + " FROM performance_estimates WHERE segment = 'all' AND "
                  "partition_date >= :since AND partition_date <= :until ORDER BY partition_date, system, "
                  "model_version", {"since": week.start, "until": week.end})
    frame = _frame(connection, query)
    section.queries.append(query)
    if frame.empty:
        section.available, section.reason = False, "no label-free estimate in this period"
        return section
    section.tables["estimates"] = frame
    for row in frame.itertuples(index=False):
        key = f"{row.partition_date}/{row.system}/{row.model_version}"
        section.figures.append(Figure(f"estimated_accuracy:{key}", f"Estimated accuracy {key}",
                                      _number(row.estimated_accuracy), "percent", "estimated_accuracy", query,
                                      _number(row.estimated_accuracy_ci_low), _number(row.estimated_accuracy_ci_high),
                                      note="labels not in yet" if _number(row.realized_accuracy) is None else
                                      f"realized {_number(row.realized_accuracy):.1%}"))
    return section


def _trend_series(connection: sa.Connection, week: Week, ci_level: float, low_volume_below: int,
                  review: bool) -> dict[str, pd.DataFrame]:
    since = week.end - timedelta(days=TREND_DAYS - 1)
    query = _kpi_query(since, week.end)
    rows = _kpi_rows(connection, query)
    if rows.empty:
        return {}
    daily = combine_rows(rows, ["kpi_date"], ci_level, low_volume_below)
    series = {"daily": daily[["kpi_date", "cases", "hours_saved", "hours_saved_ci_low", "hours_saved_ci_high",
                              "net_value_amount", "net_value_ci_low_amount", "net_value_ci_high_amount", "accuracy",
                              "accuracy_ci_low", "accuracy_ci_high", "error_rate", "slo_attainment_rate"]]}
    if review:
        reviewed = rows[rows["reviewed_accuracy"].notna()] if "reviewed_accuracy" in rows else rows.iloc[:0]
        series["reviewed"] = reviewed[["kpi_date", "system", "model_version", "segment", "reviewed_cases_audited",
                                       "reviewed_accuracy", "reviewed_accuracy_ci_low", "reviewed_accuracy_ci_high",
                                       "automation_bias_rate", "accuracy"]]
    return series


def build_report(engine: sa.Engine, week: Week, ci_level: float = 0.95, low_volume_below: int = 30,
                 now: datetime | None = None, review_enabled: bool = True) -> QualityReport:
    """The report of ``week`` from the warehouse behind ``engine`` (read only).

    ``review_enabled`` is the config's ``review.enabled``: off, the review section says so instead of reading
    the (null) reviewed columns of kpi_daily.
    """
    now = now or datetime.now(UTC)
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        kpi_columns = _table_columns(inspector, "kpi_daily")
        if not kpi_columns:
            raise LookupError("the warehouse has no kpi_daily table: materialise kpi_daily first "
                              "(eval-pipelines materialize, or the daily chain)")
        value, week_rows, currency = _value_section(connection, week, ci_level, low_volume_below)
        week_query = value.queries[0]
        total = combine_rows(week_rows, [], ci_level, low_volume_below).iloc[0] if len(week_rows) else None
        sections = {s.key: s for s in (
            value,
            _versions_section(week_rows, ci_level, low_volume_below, week_query),
            _review_section(connection, week, kpi_columns, review_enabled),
            _reliability_section(connection, week, total, week_query, inspector),
            _gates_section(connection, week, inspector),
            _drift_section(connection, week, inspector),
            _failure_section(connection, week, inspector),
            _estimates_section(connection, week, inspector),
        )}
        series = _trend_series(connection, week, ci_level, low_volume_below, sections["review"].available)
    days_with_data = len(set(week_rows["kpi_date"])) if len(week_rows) else 0
    # Partial: the week is not over yet, or some of its days have no KPI rows (not ingested, or before the start).
    partial = now.date() <= week.end or days_with_data < 7
    return QualityReport(week, now, partial, days_with_data, currency, ci_level, sections, series)
