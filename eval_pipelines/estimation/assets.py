"""Dagster side of estimation: ``performance_estimates``, label-free accuracy per day in the warehouse.

The maths lives in :mod:`eval_pipelines.estimation.cbpe` (estimate, interval, realized gap),
:mod:`~eval_pipelines.estimation.calibration` (scikit-learn fits) and :mod:`~eval_pipelines.estimation.trusted`
(which labels are trusted, with which weights); this module reads the lake, writes the table in one transaction
and reports the figures and the estimated-vs-realized timeline as metadata.
"""

import warnings
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from eval_pipelines.config import Settings, load_settings
from eval_pipelines.estimation.cbpe import ALL_SEGMENTS, STATUS_ESTIMATED, EstimationParams, estimate_day
from eval_pipelines.estimation.render import day_table, timeline
from eval_pipelines.estimation.tables import performance_estimates as table
from eval_pipelines.estimation.trusted import CASE_COLUMNS, REVIEW_COLUMNS, ok_cases, trusted_labels
from eval_pipelines.labeling.labels import LABELED_CASES_ASSET
from eval_pipelines.lake import Lake
from eval_pipelines.partitions import daily_partitions
from eval_pipelines.resources import ProjectConfigResource, WarehouseResource, lake_root
from eval_pipelines.warehouse.core import PartitionWrite, ensure_tables, insert_records, replace_partitions

ASSET = "performance_estimates"
GAP_CHECK = "estimate_matches_realized"
REVIEW_LABELS_ASSET = "review_labels"  # the review loop's verdicts (docs/review.md); a day without them is skipped

# Day D is calibrated on the trusted labels of D-window .. D-1 and checked on D's own: it depends on all of them,
# so a late label for any of those days re-runs D (read from the config when definitions load, like partitions).
WINDOW_DAYS = load_settings().estimation.calibration_window_days
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)  # allow_nonexistent_upstream_partitions is beta in 1.13
    LABEL_WINDOW = dg.TimeWindowPartitionMapping(start_offset=-WINDOW_DAYS, end_offset=0,
                                                 allow_nonexistent_upstream_partitions=True)
# Any updated day of the window re-runs the estimate; a missing window day (no data that day) does not hold it
# back, as eager() would. A day whose own labeled_cases is not there yet writes no rows and runs again with them.
ESTIMATES_AUTOMATION = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
    & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("any_window_day_updated")


def params_of(settings: Settings) -> EstimationParams:
    c = settings.estimation
    return EstimationParams(method=c.method, min_calibration_cases=c.min_calibration_cases, bootstrap=c.bootstrap,
                            seed=c.seed, ci_level=c.ci_level, support_bins=c.support_bins,
                            min_support_cases=c.min_support_cases, min_realized_cases=c.min_realized_cases)


def read_day(lake: Lake, day: date, settings: Settings) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """A day's labeled_cases (the columns estimation needs) and its review_labels; None where absent."""
    key = day.isoformat()
    if not lake.exists(LABELED_CASES_ASSET, key):
        return None, None
    cases = lake.read_columns(LABELED_CASES_ASSET, key,
                              [*CASE_COLUMNS, *settings.estimation.ground_truth_cells]).to_pandas()
    reviewed = None
    if settings.estimation.use_reviewed and lake.exists(REVIEW_LABELS_ASSET, key):
        reviewed = lake.read_columns(REVIEW_LABELS_ASSET, key, list(REVIEW_COLUMNS)).to_pandas()
    return cases, reviewed


def window_labels(lake: Lake, day: date, settings: Settings) -> tuple[pd.DataFrame, list[str]]:
    """Trusted labels of the calibration window (the days before ``day``) and the days that had data."""
    frames, used = [], []
    for offset in range(WINDOW_DAYS, 0, -1):
        previous = day - timedelta(days=offset)
        cases, reviewed = read_day(lake, previous, settings)
        if cases is None:
            continue
        used.append(previous.isoformat())
        frames.append(trusted_labels(cases, reviewed, settings.estimation))
    if not frames:
        return pd.DataFrame(columns=["system", "model_version", "segment", "confidence", "correct", "weight",
                                     "source"]), used
    return pd.concat(frames, ignore_index=True), used


def read_history(engine: sa.Engine, day: date, days: int) -> pd.DataFrame:
    """The segment-'all' rows of the ``days`` days ending on ``day`` (the timeline)."""
    ensure_tables(engine, [table])
    query = sa.select(table).where(table.c.segment == ALL_SEGMENTS, table.c.partition_date <= day,
                                   table.c.partition_date > day - timedelta(days=days))
    with engine.connect() as connection:
        return pd.DataFrame([dict(r) for r in connection.execute(query).mappings()],
                            columns=[c.name for c in table.columns])


def _check(rows: pd.DataFrame, min_realized: int) -> dg.AssetCheckResult:
    flagged = rows[rows["gap_flagged"].astype(bool)]
    tested = rows[(rows["status"] == STATUS_ESTIMATED) & (rows["realized_cases"] >= min_realized)]
    if len(flagged):
        description = "estimate and realized accuracy differ beyond their interval (concept drift?): " + ", ".join(
            f"{r.system}/{r.model_version}/{r.segment} {r.estimation_error * 100:+.1f} pts"
            for r in flagged.itertuples())
    elif len(tested):
        description = f"{len(tested)} group(s) with >= {min_realized} realized labels: every gap within its interval"
    else:
        description = f"no group has {min_realized} realized trusted labels yet: nothing to check"
    return dg.AssetCheckResult(
        check_name=GAP_CHECK, passed=flagged.empty, severity=dg.AssetCheckSeverity.WARN, description=description,
        metadata={"flagged_groups": len(flagged), "tested_groups": len(tested)})


@dg.asset(
    name=ASSET,
    partitions_def=daily_partitions,
    group_name="estimation",
    kinds={"python", "sql"},
    deps=[dg.AssetDep(LABELED_CASES_ASSET, partition_mapping=LABEL_WINDOW),
          dg.AssetDep(REVIEW_LABELS_ASSET, partition_mapping=LABEL_WINDOW)],
    pool="warehouse",
    automation_condition=ESTIMATES_AUTOMATION,
    description=(
        "Label-free accuracy of the day (confidence-based performance estimation): per system x model_version x "
        "segment (and segment 'all'), the mean calibrated top-label confidence over the day's ok cases, with an "
        "interval combining the day's Poisson-binomial variation and a bootstrap of the calibration. Calibrated on "
        "trusted labels only (reviewed labels weighted by 1/inclusion_prob, ground truth) of the "
        "estimation.calibration_window_days before the day; checked against the day's own trusted labels when "
        "they exist. Warehouse table performance_estimates (docs/estimation.md, docs/warehouse.md)."
    ),
    check_specs=[dg.AssetCheckSpec(GAP_CHECK, asset=ASSET, partitions_def=daily_partitions, description=(
        "Warns when the estimated and the realized accuracy of a group differ beyond the interval of their "
        "difference (estimate's calibration error and the realized sample's error): the concept-drift signal."))],
)
def performance_estimates(context: dg.AssetExecutionContext, project: ProjectConfigResource,
                          warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = project.load()
    config = settings.estimation
    day = date.fromisoformat(context.partition_key)
    lake = Lake(lake_root(settings))
    window = f"{day - timedelta(days=WINDOW_DAYS)}..{day - timedelta(days=1)}"
    cases, reviewed = read_day(lake, day, settings)
    notes: list[str] = []
    if not config.enabled:
        rows, used = estimate_day(pd.DataFrame(columns=["system", "model_version", "segment", "confidence"]),
                                  pd.DataFrame(), None, params_of(settings), day, window), []
        notes.append("estimation.enabled is false: no rows")
    elif cases is None:
        rows, used = estimate_day(pd.DataFrame(columns=["system", "model_version", "segment", "confidence"]),
                                  pd.DataFrame(), None, params_of(settings), day, window), []
        notes.append(f"no labeled_cases for {day} yet: no rows (the day runs again when they arrive)")
    else:
        calibration, used = window_labels(lake, day, settings)
        realized = trusted_labels(cases, reviewed, config)
        rows = estimate_day(ok_cases(cases, config), calibration, realized, params_of(settings), day, window)
    for note in notes:
        context.log.info(note)
    frame = rows.assign(computed_at=datetime.now(UTC))
    frame.insert(0, "partition_date", day)
    engine = warehouse.engine()
    try:
        replace_partitions(engine, [PartitionWrite(table, {"partition_date": day},
                                                   insert_records(frame, [c.name for c in table.columns]))])
        history = read_history(engine, day, config.timeline_days)
    finally:
        engine.dispose()
    metadata: dict[str, dg.MetadataValue] = {
        "dagster/row_count": dg.MetadataValue.int(len(rows)),
        "calibration_days_with_data": dg.MetadataValue.int(len(used)),
        "calibration_window": dg.MetadataValue.text(window),
        "estimates": dg.MetadataValue.md(day_table(rows)),
        "estimated_vs_realized": dg.MetadataValue.md(timeline(history)),
        "notes": dg.MetadataValue.text("; ".join(notes) or "none"),
    }
    for r in rows[rows["segment"] == ALL_SEGMENTS].itertuples():
        prefix = f"{r.system}/{r.model_version}"
        if r.status == STATUS_ESTIMATED:
            metadata[f"{prefix}/estimated_accuracy"] = dg.MetadataValue.float(round(float(r.estimated_accuracy), 6))
            metadata[f"{prefix}/outside_support_share"] = dg.MetadataValue.float(
                round(float(r.outside_support_share), 6))
        else:
            metadata[f"{prefix}/no_estimate"] = dg.MetadataValue.text(str(r.reason))
        if r.realized_cases:
            metadata[f"{prefix}/realized_accuracy"] = dg.MetadataValue.float(round(float(r.realized_accuracy), 6))
    return dg.MaterializeResult(metadata=metadata, check_results=[_check(rows, config.min_realized_cases)])


ASSETS = [performance_estimates]
ASSET_CHECKS: list[dg.AssetChecksDefinition] = []  # the gap check is declared on the asset (check_specs)


def gap_summary(engine: sa.Engine, day: date) -> tuple[int, str]:
    """(flagged groups, Markdown) of the day's estimated-vs-realized gaps, for the drift report's metadata.

    Reads what performance_estimates last wrote for the day (nothing when it has not run yet): the drift report
    shows the concept-drift signal beside the input drift without depending on, or re-running after, the estimate.
    """
    if not sa.inspect(engine).has_table(table.name):
        return 0, "_performance_estimates has no rows for this day yet_"
    query = sa.select(table).where(table.c.partition_date == day, table.c.realized_cases > 0)
    with engine.connect() as connection:
        rows = pd.DataFrame([dict(r) for r in connection.execute(query).mappings()],
                            columns=[c.name for c in table.columns])
    if rows.empty:
        return 0, "_no realized trusted labels for this day yet: no estimated-vs-realized gap to show_"
    return int(rows["gap_flagged"].astype(bool).sum()), day_table(rows)
