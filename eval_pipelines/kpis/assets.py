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

from eval_pipelines.automation import FOLLOW_UPSTREAM_ANY_DAY
from eval_pipelines.kpis.definitions import DEFINITIONS, undocumented_metrics
from eval_pipelines.kpis.metrics import (
    COUNT_COLUMNS,
    DEFAULT_LOW_VOLUME_BELOW,
    RATIOS,
    combine,
    daily_kpis,
    headline_table,
    percentiles_by_group,
    render_markdown,
)
from eval_pipelines.kpis.rollups import PERIOD_COLUMNS
from eval_pipelines.kpis.store import daily_write, read_cases, refresh_rollups, write_definitions
from eval_pipelines.lake import Lake
from eval_pipelines.metadata import column_schema, duration, milliseconds, money, percent, percent_interval, ratio
from eval_pipelines.partitions import daily_partitions
from eval_pipelines.resources import ProjectConfigResource, WarehouseResource, lake_root
from eval_pipelines.warehouse.core import replace_partitions

CONSISTENCY_CHECK = "kpi_daily_consistent"
COLUMN_DESCRIPTIONS = {d.metric: f"{d.formula} [{d.unit}]" for d in DEFINITIONS}

HEADLINE_METADATA: dict[str, str] = {
    "cases": "cases",
    "acceptance_rate": "acceptance_rate",
    "override_rate": "override_rate",
    "accuracy": "accuracy",
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
              low_volume_below: int = DEFAULT_LOW_VOLUME_BELOW) -> pd.DataFrame:
    """The whole day as one KPI row: sums of the group rows, percentiles over all the day's cases."""
    ids = pd.Series(0, index=cases.index).to_numpy()
    values = {s: (ids, cases[s].to_numpy(dtype="float64", na_value=float("nan")))
              for s in ("decision_seconds", "latency_ms")}
    return combine(rows, percentiles_by_group(1 if len(cases) else 0, values), [], ci_level, low_volume_below)


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
    deps=["labeled_cases"],
    pool="warehouse",
    automation_condition=FOLLOW_UPSTREAM_ANY_DAY,
    description=(
        "Business KPIs of one day in the warehouse table kpi_daily, one row per (kpi_date, system, model_version, "
        "segment): volume, acceptance/edit/override/reject/ignore rates, accuracy with its Wilson CI, decision "
        "time against the manual baseline, hours and money saved, AI and review cost, error events and their "
        "cost, risk mitigated, net value and ROI, reliability and latency SLO. The day's rows are replaced in one "
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
    cases = read_cases(Lake(lake_root(settings)), day, settings.impact.control_columns())
    frame = daily_kpis(cases, settings.impact, day)
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
        replace_partitions(engine, [daily_write(frame, day, datetime.now(UTC))])
    finally:
        engine.dispose()  # one engine per run: close its pooled connections rather than leave them to GC

    total = day_total(frame, cases, settings.impact.ci_level, settings.impact.low_volume_below)
    context.log.info(f"{len(frame)} kpi_daily row(s) for {day} from {len(cases):,} cases")
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            **headline_metadata(total),
            "kpis": dg.MetadataValue.md(render_markdown(headline_table(frame))),
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
                                 low_volume_below=settings.impact.low_volume_below)
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

