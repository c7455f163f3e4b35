"""Dagster side of the leadership report: the weekly ``quality_report`` asset (docs/reporting.md).

The numbers come from ``reporting.model.build_report`` (warehouse queries, no dagster); this module writes the HTML
to ``<lake>/quality_report/<YYYY-Www>.html`` atomically (a reader sees the old report or the new one, never half a
file) and puts the Markdown summary and the key numbers, with their units in the labels, into the metadata.
"""

import importlib
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from eval_pipelines.lake import Lake
from eval_pipelines.partitions import weekly_partitions
from eval_pipelines.reporting.model import QualityReport, build_report
from eval_pipelines.reporting.periods import Week, week_of
from eval_pipelines.reporting.render import html_report, markdown_summary
from eval_pipelines.resources import ProjectConfigResource, WarehouseResource, lake_root

REPORT_ASSET = "quality_report"
# Mondays 06:00 UTC, like the eval-set refresh: the week that just ended is complete by then.
REPORT_CRON = "0 6 * * 1"
REPORT_CRON_TIMEZONE = "UTC"

# on_cron() would also wait for every dependency to update after the tick, and scored runs update only when a
# candidate or the eval set changes, so the report would never run. The report reads whatever the warehouse holds.
# At each tick: the week that just ended (now complete: its final report) and the week that starts (the latest
# window, end_offset=1; marked partial). The lookback runs back from the end of the latest window and takes the
# windows wholly inside it, so 14 days hold exactly those two. Any other week, and re-runs, on demand.
WEEKLY_REFRESH = (
    dg.AutomationCondition.in_latest_time_window(lookback_delta=timedelta(days=14))
    & dg.AutomationCondition.cron_tick_passed(REPORT_CRON, REPORT_CRON_TIMEZONE).since_last_handled()
    & ~dg.AutomationCondition.in_progress()
).with_label("weekly_cron")


def _optional_deps() -> list[dg.AssetDep]:
    """Upstream assets of the review loop and the label-free estimates, when this deployment's code has them."""
    deps = []
    for module, name in (("eval_pipelines.review.assets", "review_labels"),
                         ("eval_pipelines.estimation.assets", "performance_estimates")):
        try:
            found = hasattr(importlib.import_module(module), name)
        except ModuleNotFoundError:
            found = False
        if found:
            deps.append(dg.AssetDep(name))
    return deps


def report_path(lake: Lake, week: Week) -> str:
    return f"{lake.path(REPORT_ASSET, week.label).removesuffix('.parquet')}.html"


def report_uri(lake: Lake, week: Week) -> str:
    return f"{lake.uri(REPORT_ASSET, week.label).removesuffix('.parquet')}.html"


def write_report(lake: Lake, week: Week, text: str) -> str:
    """Stage the HTML under a temporary name, then rename it into place (old-or-new); returns its URI."""
    with lake.publishing() as publication:
        publication.stage_bytes(report_path(lake, week), text.encode("utf-8"))
    return report_uri(lake, week)


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 3)


def report_metadata(report: QualityReport, uri: str) -> dict[str, dg.MetadataValue]:
    """The Markdown summary and the headline numbers, their unit in the label (the UI plots them over weeks)."""
    value = report.section("value")
    currency = report.currency or "currency"
    numbers = {
        "hours_saved_week (h)": value.figure("week_hours_saved").value,
        "hours_saved_to_date (h)": value.figure("to_date_hours_saved").value,
        f"net_value_week ({currency})": value.figure("week_net_value").value,
        f"net_value_to_date ({currency})": value.figure("to_date_net_value").value,
        "roi_week (× net value / full cost)": value.figure("week_roi").value,
        "roi_to_date (× net value / full cost)": value.figure("to_date_roi").value,
        "cases_week": value.figure("week_cases").value,
    }
    reliability = report.section("reliability")
    if reliability.available:
        numbers["error_rate_week (%)"] = _pct(reliability.figure("error_rate").value)
        numbers["slo_attainment_week (%)"] = _pct(reliability.figure("slo_attainment_rate").value)
    drift = report.section("drift")
    if drift.available:
        numbers["major_drifts_week"] = drift.figure("major_drifts").value
    metadata: dict[str, dg.MetadataValue] = {
        "summary": dg.MetadataValue.md(markdown_summary(report)),
        "html_report": dg.MetadataValue.path(uri),
        "period": dg.MetadataValue.text(report.week.label),
        "partial": dg.MetadataValue.bool(report.partial),
        "days_with_data": dg.MetadataValue.int(report.days_with_data),
        "currency": dg.MetadataValue.text(report.currency),
    }
    for label, number in numbers.items():
        if number is not None:
            metadata[label] = dg.MetadataValue.float(round(float(number), 6))
    for section in report.sections.values():
        if not section.available:
            metadata[f"{section.key}_section"] = dg.MetadataValue.text(section.reason)
    return metadata


@dg.asset(
    partitions_def=weekly_partitions,
    group_name="reporting",
    kinds={"python", "sql", "html"},
    deps=[
        dg.AssetDep("kpi_daily"),
        dg.AssetDep("drift_report"),
        # Every candidate's latest run counts, whichever week it ran.
        dg.AssetDep("scored_runs", partition_mapping=dg.AllPartitionMapping()),
        dg.AssetDep("edge_case_library"),
        *_optional_deps(),
    ],
    automation_condition=WEEKLY_REFRESH,
    description=(
        "The weekly quality report for leadership, a standalone HTML page in the lake (quality_report/YYYY-Www.html) "
        "with a Markdown summary here: value delivered this week and to date (hours saved, net value, ROI with "
        "their intervals and the assumptions behind them), week over week, model versions side by side, reviewed "
        "vs implicit accuracy and automation bias (when the review loop runs), reliability, release gates, drift "
        "highlights, top failure modes with masked examples, label-free accuracy estimates. Every number is a "
        "warehouse query, listed at the end of the page. Weekly on Mondays 06:00 UTC, and on demand (any week)."
    ),
)
def quality_report(context: dg.AssetExecutionContext, project: ProjectConfigResource,
                   warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = project.load()
    week = week_of(date.fromisoformat(context.partition_key))
    engine = warehouse.engine()
    try:
        report = build_report(engine, week, settings.impact.ci_level, settings.impact.low_volume_below,
                              now=datetime.now(UTC), review_enabled=settings.review.enabled)
    finally:
        engine.dispose()
    uri = write_report(Lake(lake_root(settings)), week, html_report(report))
    context.log.info(f"quality report {week.label} ({'partial' if report.partial else 'complete'}) at {uri}")
    return dg.MaterializeResult(metadata=report_metadata(report, uri))


ASSETS = [quality_report]
ASSET_CHECKS: list[dg.AssetChecksDefinition] = []
