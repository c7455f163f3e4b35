"""Dagster side of the KPIs: ``kpi_daily``, ``kpi_rollups`` and ``kpi_definitions``, written straight to the warehouse.

The maths lives in :mod:`eval_pipelines.kpis.metrics` and :mod:`~eval_pipelines.kpis.rollups`; this module reads
the day's cases, writes the tables transactionally and reports the headline KPIs as numeric metadata (so the UI
plots them over time) and as a Markdown table (the same one ``eval-pipelines kpis`` prints).

The consistency check of ``kpi_daily`` runs before the write: BI reads the table directly, so an inconsistent day
must never reach it. When the check fails, its failed result is recorded and the run fails with the problems
(``dg.Failure``); nothing is written and the day keeps its previous, consistent rows.
"""


import hashlib
from collections.abc import Iterator
from datetime import UTC, date, datetime

import dagster as dg
import pandas as pd

from eval_pipelines.automation import FOLLOW_UPSTREAM_ANY_DAY, follow_upstream_any_day_ignoring_missing
from eval_pipelines.kpis.definitions import DEFINITIONS, undocumented_metrics
from eval_pipelines.kpis.metrics import (
    COUNT_COLUMNS,
    DEFAULT_LOW_VOLUME_BELOW,
    DEFAULT_REVIEWED_MIN_AUDITED,
    RATIOS,
    combine,
    daily_kpis,
    headline_table,
    percentiles_by_group,
    render_markdown,
)
from eval_pipelines.kpis.reviewed import RowNote, attach
from eval_pipelines.kpis.rollups import PERIOD_COLUMNS
from eval_pipelines.kpis.store import (
    REVIEW_LABELS_ASSET,
    REVIEW_QUEUE_ASSET,
    cells_write,
    daily_write,
    read_cases,
    read_review_cells,
    refresh_rollups,
    write_definitions,
)
from eval_pipelines.lake import Lake
from eval_pipelines.metadata import column_schema, duration, milliseconds, money, percent, percent_interval, ratio
from eval_pipelines.partitions import daily_partitions
from eval_pipelines.resources import ProjectConfigResource, WarehouseResource, lake_root
from eval_pipelines.warehouse.core import replace_partitions

CONSISTENCY_CHECK = "kpi_daily_consistent"

REVIEW_DEPS: list[dg.AssetKey] = [dg.AssetKey(REVIEW_QUEUE_ASSET), dg.AssetKey(REVIEW_LABELS_ASSET)]
"""The review loop's assets kpi_daily reads (lake datasets review_queue, review_labels). review_labels is
materialised every day (empty verdicts when review is disabled), and again when the inbox sensor sees new
verdicts: the eager condition then re-runs the day's KPIs with the corrected columns."""
KPI_AUTOMATION = follow_upstream_any_day_ignoring_missing(REVIEW_QUEUE_ASSET, REVIEW_LABELS_ASSET)
"""The business KPIs are never held back by a missing audit; they re-run when its verdicts arrive."""
COLUMN_DESCRIPTIONS = {d.metric: f"{d.formula} [{d.unit}]" for d in DEFINITIONS}

HEADLINE_METADATA: dict[str, str] = {
    "cases": "cases",
    "acceptance_rate": "acceptance_rate",
    "override_rate": "override_rate",
    "accuracy": "accuracy",
    "reviewed_cases_audited": "reviewed_cases_audited",
    "reviewed_accuracy": "reviewed_accuracy",
    "reviewed_accuracy_ci_low": "reviewed_accuracy_ci_low",
    "reviewed_accuracy_ci_high": "reviewed_accuracy_ci_high",
    "automation_bias_rate": "automation_bias_rate",
    "override_error_rate": "override_error_rate",
    "silent_error_cost": "silent_error_cost",
    "decision_seconds_p50": "decision_seconds_p50",
    "hours_saved": "hours_saved",
    "labour_value_saved_amount": "labour_value_saved",
    "ai_cost_amount": "ai_cost",
    "total_cost_amount": "total_cost",
    "error_cost_amount": "error_cost",
    "net_value_amount": "net_value",
    "roi": "roi",
    "error_rate": "error_rate",
    "latency_ms_p95": "latency_ms_p95",
    "slo_attainment_rate": "slo_attainment_rate",
}


def day_total(rows: pd.DataFrame, cases: pd.DataFrame, ci_level: float,
              low_volume_below: int = DEFAULT_LOW_VOLUME_BELOW, review_cells: pd.DataFrame | None = None,
              reviewed_min_audited: int = DEFAULT_REVIEWED_MIN_AUDITED) -> pd.DataFrame:
    """The whole day as one KPI row: sums of the group rows, percentiles over all the day's cases, the reviewed
    estimates over all the day's audit cells."""
    ids = pd.Series(0, index=cases.index).to_numpy()
    values = {s: (ids, cases[s].to_numpy(dtype="float64", na_value=float("nan")))
              for s in ("decision_seconds", "latency_ms")}
    return combine(rows, percentiles_by_group(1 if len(cases) else 0, values), [], ci_level, low_volume_below,
                   review_cells, reviewed_min_audited)


def review_notes_markdown(notes: list[RowNote], limit: int = 30) -> str:
    """Why reviewed estimates are null, one line per (row, estimate); capped for the UI."""
    if not notes:
        return "every reviewed estimate available"
    lines = [f"- {'/'.join(map(str, n.key)) or 'day'} · {n.estimate}: {n.reason}" for n in notes[:limit]]
    if len(notes) > limit:
        lines.append(f"- … {len(notes) - limit} more")
    return "\n".join(lines)


def headline_metadata(total: pd.DataFrame) -> dict[str, dg.MetadataValue]:
    """Numeric metadata for the UI's plots; a value that is undefined (no denominator) is left out."""
    if total.empty:
        return {}
    row = total.iloc[0]
    metadata: dict[str, dg.MetadataValue] = {}
    for column, name in HEADLINE_METADATA.items():
        value = row[column]
        if pd.isna(value):
            continue
        if column in COUNT_COLUMNS:
            metadata[name] = dg.MetadataValue.int(int(value))
        else:
            metadata[name] = dg.MetadataValue.float(round(float(value), 6))
    metadata["currency"] = dg.MetadataValue.text(str(row["currency"]))
    metadata["low_volume"] = dg.MetadataValue.bool(bool(row["low_volume"]))
    metadata["headline"] = dg.MetadataValue.md(headline_text(row))
    return metadata


def headline_text(row: pd.Series) -> str:
    """The day in one line with units: the numeric entries above are bare numbers (for the UI's plots), this
    says what they are (rates in %, money in the row's currency, durations with units, ROI as a ratio)."""
    currency = str(row["currency"])
    roi = "n/a (low volume)" if bool(row["low_volume"]) else ratio(row["roi"], "net value / full cost")
    hours = "n/a" if pd.isna(row["hours_saved"]) else f"{float(row['hours_saved']):,.1f} h"
    return (f"**{int(row['cases']):,} cases** · accuracy {percent(row['accuracy'])} "
            f"{percent_interval(row['accuracy_ci_low'], row['accuracy_ci_high'])} · acceptance "
            f"{percent(row['acceptance_rate'])} · override {percent(row['override_rate'])} · median decision "
            f"{duration(row['decision_seconds_p50'])} · hours saved {hours} · net value "
            f"{money(row['net_value_amount'], currency)} · ROI {roi} · error rate {percent(row['error_rate'])} · "
            f"p95 latency {milliseconds(row['latency_ms_p95'])} · SLO met {percent(row['slo_attainment_rate'])}")


def consistency_problems(frame: pd.DataFrame, case_count: int) -> list[str]:
    """Invariants of a day's KPI rows: the volume reconciles with the cases, the action counts add up, the
    rates are fractions. Cheap to check, and they catch a regression in the maths before BI sees it."""
    problems = []
    if int(frame["cases"].sum()) != case_count:
        problems.append(f"sum of cases {int(frame['cases'].sum())} != labeled_cases rows {case_count}")
    actions = frame[["accepted_cases", "edited_cases", "overridden_cases", "rejected_cases", "ignored_cases"]]
    if (actions.sum(axis=1) != frame["reviewed_cases"]).any():
        problems.append("accepted + edited + overridden + rejected + ignored != reviewed_cases")
    if ((frame["reviewed_cases"] + frame["automated_cases"]) != frame["cases"]).any():
        problems.append("reviewed_cases + automated_cases != cases")
    for column in RATIOS:
        if column in ("roi", "roi_over_inference_cost", "ai_cost_per_decision_amount"):
            continue
        values = frame[column].dropna()
        if ((values < 0) | (values > 1)).any():
            problems.append(f"{column} outside [0, 1]")
    return problems


@dg.asset(
    partitions_def=daily_partitions,
    group_name="kpis",
    kinds={"python", "sql"},
    deps=["labeled_cases", *REVIEW_DEPS],
    pool="warehouse",
    automation_condition=KPI_AUTOMATION,
    description=(
        "Business KPIs of one day in the warehouse table kpi_daily, one row per (kpi_date, system, model_version, "
        "segment): volume, acceptance/edit/override/reject/ignore rates, accuracy with its Wilson CI, decision "
        "time against the manual baseline, hours and money saved, AI and review cost, error events and their "
        "cost, risk mitigated, net value and ROI, reliability and latency SLO; beside the implicit accuracy, the "
        "audit-corrected reviewed_accuracy, automation_bias_rate, override_error_rate (design-based, with CIs, "
        "from the review_queue and review_labels lake datasets; null without an audit) and the silent-error "
        "cost of accepted mistakes. The day's rows are replaced in one "
        "transaction, so late data re-materialised replaces the day whole. The consistency check runs before "
        "the write: an inconsistent day fails the run and is not written. Columns: docs/warehouse.md."
    ),
    check_specs=[dg.AssetCheckSpec(
        CONSISTENCY_CHECK, asset="kpi_daily", blocking=True, partitions_def=daily_partitions,
        description="Volume reconciles with labeled_cases, action counts add up, rates are fractions. Evaluated "
                    "before the write: when it fails the day is not written and the run fails.")],
)
def kpi_daily(
    context: dg.AssetExecutionContext, project: ProjectConfigResource, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    settings = project.load()
    day = date.fromisoformat(context.partition_key)
    lake = Lake(lake_root(settings))
    cases = read_cases(lake, day, settings.impact.control_columns())
    rejected = ""
    try:
        cells = read_review_cells(lake, day)
    except ValueError as problem:
        # Verdicts that do not match the day's phase one cannot be projected; the business KPIs still go out,
        # with the reviewed columns null, and the reason is logged and shown (never a number from bad input).
        cells, rejected = None, str(problem)
        context.log.warning(f"reviewed KPI columns left null for {day}: {rejected}")
    frame = daily_kpis(cases, settings.impact, day, cells)
    problems = consistency_problems(frame, len(cases))
    check_metadata = {"rows": len(frame), "cases": len(cases)}
    if problems:
        # Checked before the write: record the failed check, then fail the run; the warehouse keeps the old day.
        yield dg.AssetCheckResult(check_name=CONSISTENCY_CHECK, passed=False, description="; ".join(problems),
                                  metadata=check_metadata)
        raise dg.Failure(
            description=f"kpi_daily for {day} is inconsistent, not written: {'; '.join(problems)}",
            metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems)), **check_metadata},
        )
    engine = warehouse.engine()
    try:
        stamp = datetime.now(UTC)
        replace_partitions(engine, [daily_write(frame, day, stamp), cells_write(cells, day, stamp)])
    finally:
        engine.dispose()  # one engine per run: close its pooled connections rather than leave them to GC

    total = day_total(frame, cases, settings.impact.ci_level, settings.impact.low_volume_below, cells,
                      settings.impact.reviewed_min_audited)
    notes: list[RowNote] = []
    if cells is not None:
        # The notes of the rows (the day's total is in the metadata numbers); recomputed, cheap: cells are small.
        notes = attach(frame.copy(), cells, ["system", "model_version", "segment"], settings.impact.ci_level,
                       settings.impact.reviewed_min_audited)
    context.log.info(f"{len(frame)} kpi_daily row(s) for {day} from {len(cases):,} cases")
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            **headline_metadata(total),
            "kpis": dg.MetadataValue.md(render_markdown(headline_table(frame))),
            "review_audit": dg.MetadataValue.text(
                f"review data rejected, reviewed columns null: {rejected}" if rejected else
                "no audit (review_queue/review_labels not in the lake): reviewed columns null" if cells is None
                else f"{int(cells['audited'].sum()):,} verdicts over {int(cells['population'].sum()):,} ok cases "
                     f"(phase one), {len(cells)} row × cell counts in kpi_review_cells"),
            "reviewed_not_available": dg.MetadataValue.md(review_notes_markdown(notes)),
            "warehouse": dg.MetadataValue.text(warehouse.describe()),
            "dagster/column_schema": column_schema(frame, COLUMN_DESCRIPTIONS),
        },
        check_results=[dg.AssetCheckResult(
            check_name=CONSISTENCY_CHECK, passed=True,
            description=f"{len(frame)} row(s) consistent with {len(cases):,} cases", metadata=check_metadata,
        )],
    )


@dg.asset(
    partitions_def=daily_partitions,
    group_name="kpis",
    kinds={"python", "sql"},
    deps=[kpi_daily],
    pool="warehouse",
    automation_condition=FOLLOW_UPSTREAM_ANY_DAY,
    description=(
        "Weekly (kpi_weekly, ISO weeks) and monthly (kpi_monthly) KPI rollups of the periods containing this "
        "partition's day, replaced together in one transaction after kpi_daily changes. Additive columns are "
        "summed, rates recomputed from summed numerators and denominators, percentiles recomputed from the "
        "period's cases (labeled_cases) — never averaged."
    ),
)
def kpi_rollups(
    context: dg.AssetExecutionContext, project: ProjectConfigResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    settings = project.load()
    day = date.fromisoformat(context.partition_key)
    engine = warehouse.engine()
    try:
        result = refresh_rollups(engine, Lake(lake_root(settings)), day, settings.impact.ci_level,
                                 low_volume_below=settings.impact.low_volume_below,
                                 reviewed_min_audited=settings.impact.reviewed_min_audited)
    finally:
        engine.dispose()
    metadata: dict[str, dg.MetadataValue] = {
        "dagster/row_count": sum(len(f) for f in result.values()),
    }
    for period, frame in result.items():
        column = PERIOD_COLUMNS[period]
        start = frame[column].iloc[0] if len(frame) else None
        metadata[f"{period}_start"] = dg.MetadataValue.text(str(start) if start else "no data")
        metadata[f"{period}_rows"] = dg.MetadataValue.int(len(frame))
        metadata[f"{period}ly_kpis"] = dg.MetadataValue.md(render_markdown(headline_table(frame)))
    return dg.MaterializeResult(metadata=metadata)


_DEFINITIONS_VERSION = hashlib.sha256(repr(DEFINITIONS).encode()).hexdigest()[:12]


@dg.asset(
    group_name="kpis",
    kinds={"python", "sql"},
    pool="warehouse",
    code_version=_DEFINITIONS_VERSION,
    # on_missing() only fires for partitions that become missing after the first evaluation, so an unpartitioned
    # asset present from the start would never run; plain missing() does.
    automation_condition=(
        (dg.AutomationCondition.missing() & ~dg.AutomationCondition.in_progress()
         & ~dg.AutomationCondition.execution_failed())
        | dg.AutomationCondition.code_version_changed()
    ),
    description=(
        "The kpi_definitions table: for every KPI column its display label, category, unit, whether higher is "
        "better, and the formula in words, so BI tools can label and format the KPI tables. Rewritten whenever "
        "the definitions change (code version)."
    ),
)
def kpi_definitions(warehouse: WarehouseResource) -> dg.MaterializeResult:
    missing = undocumented_metrics()
    if missing:
        raise ValueError(f"KPI columns without a definition: {missing}")
    engine = warehouse.engine()
    try:
        count = write_definitions(engine)
    finally:
        engine.dispose()
    table = pd.DataFrame([{"metric": d.metric, "unit": d.unit, "higher_is_better": d.higher_is_better,
                           "formula": d.formula} for d in DEFINITIONS])
    return dg.MaterializeResult(metadata={
        "dagster/row_count": count,
        "definitions": dg.MetadataValue.md(render_markdown(table)),
    })


ASSETS = [kpi_daily, kpi_rollups, kpi_definitions]
ASSET_CHECKS: list[dg.AssetChecksDefinition] = []  # kpi_daily's check is declared inline (check_specs)

