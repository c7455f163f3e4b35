"""Dagster side of drift: ``drift_profile`` (a day's reference statistics) and ``drift_report`` (the day vs its window).

The maths lives in :mod:`eval_pipelines.drift.report` and friends; this module only reads and writes: the day's
cases in, the window's stored profiles from the lake, results to the warehouse table ``drift_results`` (one
transaction per day), the Markdown summary to the metadata and a standalone HTML report next to the report frame in
the lake (``<lake>/drift_report/<day>.html``).
"""


import uuid
import warnings
from collections.abc import Iterator
from datetime import date, timedelta

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from eval_pipelines.automation import FOLLOW_UPSTREAM_ANY_DAY
from eval_pipelines.config import Settings, load_settings
from eval_pipelines.drift.monitors import Monitor, available, default_monitors
from eval_pipelines.drift.profile import (
    CategoricalProfile,
    NumericProfile,
    ProfileSet,
    profile_from_frame,
    profile_to_frame,
)
from eval_pipelines.drift.render import html_report, markdown_summary
from eval_pipelines.drift.report import (
    NOT_ENOUGH_DATA,
    DriftReport,
    compare,
    major_drift_exclusions,
    profile_frame,
    reference_span_days,
    reference_window,
    screen_major_drift,
    window_label,
    window_profile,
)
from eval_pipelines.drift.tables import drift_results
from eval_pipelines.estimation.assets import gap_summary
from eval_pipelines.labeling.labels import LABELED_CASES_ASSET
from eval_pipelines.lake import InLake, Lake
from eval_pipelines.metadata import markdown_table
from eval_pipelines.partitions import daily_partitions
from eval_pipelines.resources import ProjectConfigResource, WarehouseResource, lake_root
from eval_pipelines.warehouse.core import PartitionWrite, ensure_tables, replace_partitions

DRIFT_CHECK = "no_major_drift"
PROFILE_ASSET = "drift_profile"
REPORT_ASSET = "drift_report"

# drift_report reads the stored profiles of its reference window, so it depends on them: day D's report on the
# profiles of D-span .. D (span = how far back drift.reference reaches). A late change to day D's profile then marks
# the reports of D .. D+span as having an updated dependency, and the automation condition re-runs them with the
# new reference. Read from the config when definitions load, like the partitions.
REFERENCE_SPAN_DAYS = reference_span_days(load_settings().drift.reference)
with warnings.catch_warnings():
    # allow_nonexistent_upstream_partitions is marked beta in Dagster 1.13; it is what lets the first days of the
    # partitions (whose window reaches before start_date) map to the profile days that exist.
    warnings.simplefilter("ignore", dg.BetaWarning)
    PROFILE_WINDOW = dg.TimeWindowPartitionMapping(start_offset=-REFERENCE_SPAN_DAYS, end_offset=0,
                                                   allow_nonexistent_upstream_partitions=True)
# FOLLOW_UPSTREAM_ANY_DAY, except that a missing profile in the window does not hold the report back (eager()
# waits for every dependency partition to exist; a window day without data never gets a profile, and the report
# profiles a window day whose profile is not stored yet from its labeled_cases).
REPORT_AUTOMATION = (
    (dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated()).since_last_handled()
    & ~dg.AutomationCondition.any_deps_missing().ignore(dg.AssetSelection.assets(PROFILE_ASSET))
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
    & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager_any_day_with_reference_window")



def monitors_for(settings: Settings) -> list[Monitor]:
    drift = settings.drift
    return default_monitors(settings.features.numeric, settings.features.categorical, drift.exclude,
                            drift.language_column, text_outputs=bool(settings.labeling.text_systems()))


def _read_cases(lake: Lake, day: str, monitors: list[Monitor]) -> pd.DataFrame | None:
    """The columns the monitors need from a day's labeled_cases in the lake, or None when the day is absent."""
    if not lake.exists(LABELED_CASES_ASSET, day):
        return None
    sources = sorted({source for monitor in monitors for source in monitor.sources})
    return lake.read_columns(LABELED_CASES_ASSET, day, [], optional=sources).to_pandas()


def load_reference(lake: Lake, days: list[date], monitors: list[Monitor], settings: Settings,
                   log: dg.DagsterLogManager | None = None) -> tuple[ProfileSet, list[str]]:
    """Merge the stored day profiles of the window (see :func:`load_day_profiles`). Returns (profile, days used)."""
    profiles = load_day_profiles(lake, days, monitors, settings, log)
    return window_profile(profiles, settings.drift), [d for p in profiles for d in p.days]


def load_day_profiles(lake: Lake, days: list[date], monitors: list[Monitor], settings: Settings,
                      log: dg.DagsterLogManager | None = None) -> list[ProfileSet]:
    """The stored day profiles of the window; a day without one (or with an out-of-date one, missing a monitored
    column its cases have) is profiled from its labeled_cases in memory; a day with neither is skipped."""
    profiles: list[ProfileSet] = []
    for day in days:
        key = day.isoformat()
        stored = profile_from_frame(lake.read(PROFILE_ASSET, key)) if lake.exists(PROFILE_ASSET, key) else None
        if stored is not None and all(m.key in stored.columns for m in monitors):
            profiles.append(stored)
            continue
        cases = _read_cases(lake, key, monitors)
        if cases is None:
            if stored is not None:
                profiles.append(stored)
            continue
        usable, _ = available(monitors, cases.columns)
        if stored is not None and all(m.key in stored.columns for m in usable):
            profiles.append(stored)
            continue
        if log is not None:
            log.warning(f"{PROFILE_ASSET} for {key} is missing or out of date; profiled labeled_cases in memory "
                        f"(materialise {PROFILE_ASSET} for {key} to store it)")
        profiles.append(profile_frame(cases, monitors, settings.drift, key))
    return profiles


def read_history(engine: sa.Engine, day: date, days: int) -> pd.DataFrame:
    """drift_results of the ``days`` days ending on ``day``, for the timeline."""
    table = drift_results
    query = sa.select(table.c.date, table.c.column, table.c.kind, table.c.effect_size, table.c.threshold,
                      table.c.severity, table.c.drifted).where(table.c.date >= day - timedelta(days=days - 1),
                                                               table.c.date <= day)
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return pd.DataFrame([dict(r) for r in rows],
                        columns=["date", "column", "kind", "effect_size", "threshold", "severity", "drifted"])


def html_path(lake: Lake, day: str) -> str:
    """Where a day's standalone HTML report lives in the lake."""
    return lake.path(REPORT_ASSET, day).removesuffix(".parquet") + ".html"


def html_uri(lake: Lake, day: str) -> str:
    return lake.uri(REPORT_ASSET, day).removesuffix(".parquet") + ".html"


def write_html(lake: Lake, day: str, text: str) -> str:
    """Write ``<lake>/drift_report/<day>.html`` atomically; returns its URI.

    Like ``Lake.write``: a temporary file with a unique name, then a rename, so a reader never sees half a page
    and two runs of the same day (a re-run while the first is still writing) never share a temporary file.
    """
    final = lake.path(REPORT_ASSET, day).removesuffix(".parquet") + ".html"
    lake.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
    temporary = f"{final}.{uuid.uuid4().hex}.tmp"
    try:
        with lake.fs.open(temporary, "wb") as handle:
            handle.write(text.encode("utf-8"))
        lake.fs.mv(temporary, final)
    except BaseException:
        if lake.fs.exists(temporary):
            lake.fs.rm(temporary)
        raise
    return lake.uri(REPORT_ASSET, day).removesuffix(".parquet") + ".html"


def _profile_overview(profile: ProfileSet) -> pd.DataFrame:
    rows = []
    for (column, kind), item in profile.columns.items():
        size = (len(item.band.knots) if isinstance(item, NumericProfile)
                else len(item.categories) if isinstance(item, CategoricalProfile) else len(item.rows))
        exact = item.band.exact if isinstance(item, NumericProfile) else True
        rows.append({"column": column, "kind": kind, "rows": item.n, "missing": item.n_missing,
                     "knots / categories / bins": size, "exact": exact})
    return pd.DataFrame(rows)


@dg.asset(
    partitions_def=daily_partitions,
    group_name="drift",
    kinds={"python", "parquet"},
    io_manager_key="lake_io_manager",
    automation_condition=FOLLOW_UPSTREAM_ANY_DAY,
    description=(
        "Reference statistics of one day's labeled_cases, per monitored column: numeric ECDF knots with counts and "
        "moments, category counts, accuracy by confidence bin. Mergeable, so a report's reference window is the "
        "merge of its days' profiles and no report re-reads the raw reference."
    ),
)
def drift_profile(
    context: dg.AssetExecutionContext, project: ProjectConfigResource, labeled_cases: pd.DataFrame
) -> dg.Output[pd.DataFrame]:
    settings = project.load()
    profile = profile_frame(labeled_cases, monitors_for(settings), settings.drift, context.partition_key)
    overview = _profile_overview(profile)
    return dg.Output(
        profile_to_frame(profile),
        metadata={
            "dagster/row_count": len(profile.columns),
            "rows_profiled": len(labeled_cases),
            "exact_numeric_columns": int(overview["exact"].sum()) if len(overview) else 0,
            "profile": markdown_table(overview, max_rows=100),
        },
    )


def _check_result(report: DriftReport, reference_days: list[str], day: str | None = None) -> dg.AssetCheckResult:
    major = report.major
    names = [f"{r.column} ({r.kind})" for r in major]
    if not report.results:
        description = "no reference data for this day: nothing compared"
    elif report.verdict == NOT_ENOUGH_DATA:
        description = (f"not enough data: {report.current_rows:,} current rows, no check could be judged "
                       "(drift.min_rows values needed on both sides)")
    elif major:
        description = f"{len(major)} major drift(s): {', '.join(names)}"
    else:
        minor = [f"{r.column} ({r.kind})" for r in report.drifted]
        description = "no major drift" + (f"; minor: {', '.join(minor)}" if minor else "")
    if day:  # the day leads, so the check's history reads "2026-11-26: 7 major drift(s): ..."
        description = f"{day}: {description}"
    return dg.AssetCheckResult(
        check_name=DRIFT_CHECK,
        passed=not major,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={"major_drift_columns": dg.MetadataValue.text(", ".join(names) or "none"),
                  "major": len(major), "minor": len(report.drifted) - len(major), "verdict": report.verdict,
                  "reference_days": dg.MetadataValue.text(window_label(reference_days))},
    )


@dg.asset(
    partitions_def=daily_partitions,
    group_name="drift",
    kinds={"python", "parquet", "sql"},
    io_manager_key="lake_io_manager",
    automation_condition=REPORT_AUTOMATION,
    pool="warehouse",
    deps=[dg.AssetDep(drift_profile, partition_mapping=PROFILE_WINDOW)],
    description=(
        "The day's labeled_cases against its reference window (drift.reference: trailing N days or a fixed "
        "baseline, read as stored drift_profile days): KS / Wasserstein / PSI for numeric columns, chi-square / "
        "Jensen–Shannon / PSI / share changes for categorical ones, missing shares, calibration. A check drifts "
        "when its Benjamini–Hochberg adjusted p-value is at most drift.alpha and its effect size is material. "
        "Rows to the warehouse table drift_results; the standalone HTML report to `<lake>/drift_report/<day>.html`."
    ),
    check_specs=[dg.AssetCheckSpec(DRIFT_CHECK, asset=REPORT_ASSET, partitions_def=daily_partitions,
                                   description="Warns when a monitored column drifts with major severity.")],
)
def drift_report(
    context: dg.AssetExecutionContext,
    project: ProjectConfigResource,
    warehouse: WarehouseResource,
    labeled_cases: pd.DataFrame,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    settings = project.load()
    config = settings.drift
    key = context.partition_key
    day = date.fromisoformat(key)
    lake = Lake(lake_root(settings))
    monitors = monitors_for(settings)
    engine = warehouse.engine()
    profiles = load_day_profiles(lake, reference_window(config.reference, day), monitors, settings, context.log)
    used = [d for p in profiles for d in p.days]
    # Window days that are a major drift in a column against the rest of the window leave that column's reference
    # (when configured), decided from the window's own cases (report.screen_major_drift), never from stored
    # reports: the day's report is the same whatever order the days are materialised in.
    excluded: dict[str, list[str]] = {}
    if config.reference.exclude_major_drift:
        window_cases = {d: c for d in used if (c := _read_cases(lake, d, monitors)) is not None}
        excluded = major_drift_exclusions(config.reference, used,
                                          screen_major_drift(profiles, window_cases, monitors, config))
    reference = window_profile(profiles, config, excluded)
    if len(used) >= config.reference.min_days:
        report = compare(reference, labeled_cases, monitors, config, excluded=excluded)
    else:
        report = DriftReport([], reference.rows, len(labeled_cases), tuple(used), config.alpha,
                             (f"{len(used)} reference day(s) with data, fewer than "
                              f"drift.reference.min_days={config.reference.min_days}",))
        context.log.warning(report.notes[0])

    records = report.records(day)
    ensure_tables(engine, [drift_results])  # the first report reads its history before any write
    # The timeline shows the day's new results before they are committed: the page is published with them.
    history = read_history(engine, day - timedelta(days=1), config.timeline_days - 1)
    if records:
        history = pd.concat([history, pd.DataFrame(records)[list(history.columns)]], ignore_index=True)
    label = window_label(used)
    frame = report.frame(key)
    # Parquet, HTML page and drift_results old-or-new together (Lake.publishing; docs/ingestion.md).
    with lake.publishing() as publication:
        parquet_uri = publication.stage_table(REPORT_ASSET, key, frame)
        publication.stage_bytes(html_path(lake, key), html_report(report, key, label, history).encode("utf-8"))
        replace_partitions(engine, [PartitionWrite(drift_results, {"date": day}, records)],
                           before_commit=publication.publish)
    uri = html_uri(lake, key)
    # The concept-drift signal of label-free estimation (docs/estimation.md), as last written for the day.
    gaps, gap_table = gap_summary(engine, day)
    yield dg.Output(
        InLake(parquet_uri, len(frame)),
        metadata={
            "dagster/row_count": len(frame),
            "checks": len(report.results),
            "verdict": report.verdict,
            "tested": len(report.tested),
            "drifted": len(report.drifted),
            "major": len(report.major),
            "drifted_columns": dg.MetadataValue.text(
                ", ".join(f"{r.column} ({r.kind}, {r.severity})" for r in report.drifted) or "none"),
            "reference_days": dg.MetadataValue.text(label),
            "reference_excluded": dg.MetadataValue.text(
                "; ".join(f"{column}: {', '.join(days)}" for column, days in sorted(excluded.items())) or "none"),
            "reference_rows": report.reference_rows,
            "current_rows": report.current_rows,
            "summary": dg.MetadataValue.md(markdown_summary(report, key, label, history, config.plot_columns)),
            "html_report": dg.MetadataValue.path(uri),
            "estimation_gaps_flagged": gaps,
            "estimated_vs_realized": dg.MetadataValue.md(gap_table),
        },
    )
    yield _check_result(report, used, context.partition_key)


ASSETS = [drift_profile, drift_report]
ASSET_CHECKS: list[dg.AssetChecksDefinition] = []  # the check is declared on drift_report (check_specs)
