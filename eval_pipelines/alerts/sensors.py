"""``alerts_sensor``: evaluates the alert rules after the assets they read were updated, and delivers once per finding.

The cursor holds the newest event storage id the sensor has seen per watched asset (materialisations of kpi_daily,
drift_report, scored_runs, performance_estimates) and per blocking check (evaluations): a tick with nothing new
and no failed delivery waiting for a retry skips at once. Otherwise it runs :func:`~eval_pipelines.alerts.service.
run_alerts`, the same code as ``eval-pipelines alerts``, whose state in ``alert_events`` (not the cursor) is what
makes a re-tick or a re-materialised day send nothing twice. Delivery never raises into the tick; a tick is bounded
by ``alerts.max_deliveries_per_tick`` and a time budget, and the rest waits for the next tick (the cursor is then
not advanced).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import dagster as dg
import pandas as pd

from eval_pipelines.alerts.rules import CHECK_COLUMNS, SOURCE_ASSET
from eval_pipelines.alerts.service import run_alerts
from eval_pipelines.alerts.state import pending_failures
from eval_pipelines.resources import ProjectConfigResource, WarehouseResource

WATCHED_ASSETS = tuple(dict.fromkeys(SOURCE_ASSET.values()))
CHECK_HISTORY = 100  # evaluations read per check: enough to see when a failing streak began
TICK_BUDGET_SECONDS = 40.0  # the daemon's sensor timeout is 60 s by default
MINIMUM_INTERVAL_SECONDS = 30


def blocking_check_keys(asset_graph) -> list[dg.AssetCheckKey]:
    """The blocking asset checks of a code location's asset graph."""
    keys = []
    for key in sorted(asset_graph.asset_check_keys, key=lambda k: k.to_user_string()):
        spec = asset_graph.get_check_spec(key)
        if spec is not None and spec.blocking:
            keys.append(key)
    return keys


def check_evaluations(instance: dg.DagsterInstance, keys: Iterable[dg.AssetCheckKey],
                      limit: int = CHECK_HISTORY) -> pd.DataFrame:
    """The latest evaluations of ``keys`` as the frame :func:`~eval_pipelines.alerts.rules.check_observations`
    reads (oldest first); planned executions without a result yet are left out."""
    rows = []
    run_partitions: dict[str, str | None] = {}

    def partition_of(record) -> str | None:
        # Checks declared without their own partitions record none: the run's partition is the day it checked.
        found = getattr(record.evaluation, "partition", None) or record.partition
        if found:
            return found
        if record.run_id not in run_partitions:
            run = instance.get_run_by_id(record.run_id)
            run_partitions[record.run_id] = run.tags.get("dagster/partition") if run is not None else None
        return run_partitions[record.run_id]

    for key in keys:
        for record in instance.event_log_storage.get_asset_check_execution_history(key, limit=limit):
            evaluation = record.evaluation
            if evaluation is None or not hasattr(evaluation, "passed"):
                continue  # planned, not evaluated yet
            rows.append({"asset_key": key.asset_key.to_user_string(), "check_name": key.name,
                         "partition_key": partition_of(record), "passed": bool(evaluation.passed),
                         "blocking": bool(evaluation.blocking), "run_id": record.run_id, "storage_id": record.id,
                         "timestamp": record.create_timestamp, "description": evaluation.description or ""})
    frame = pd.DataFrame(rows, columns=list(CHECK_COLUMNS))
    return frame.sort_values("storage_id").reset_index(drop=True)


def latest_storage_ids(instance: dg.DagsterInstance, check_keys: Iterable[dg.AssetCheckKey]) -> dict[str, int]:
    """Newest event storage id per watched asset (materialisations) and per blocking check (evaluations)."""
    seen: dict[str, int] = {}
    for name in WATCHED_ASSETS:
        records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey(name)),
                                                  limit=1).records
        if records:
            seen[name] = int(records[0].storage_id)
    for key in check_keys:
        history = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
        if history:
            seen[key.to_user_string()] = int(history[0].id)
    return seen


@dg.sensor(
    name="alerts_sensor",
    minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Evaluates the alert rules (alerts.rules) after kpi_daily, drift_report, scored_runs, "
                "performance_estimates or a blocking check changed, and delivers each finding once per channel "
                "(state: warehouse table alert_events). Retries failed deliveries on later ticks.",
)
def alerts_sensor(context: dg.SensorEvaluationContext, project: ProjectConfigResource,
                  warehouse: WarehouseResource) -> dg.SensorResult:
    settings = project.load()
    config = settings.alerts
    if not config.rules:
        return dg.SensorResult(skip_reason=dg.SkipReason("alerts.rules is empty"), cursor=context.cursor)
    needs_checks = any(rule.on == "checks" for rule in config.rules)
    keys = blocking_check_keys(context.repository_def.asset_graph) \
        if needs_checks and context.repository_def is not None else []
    previous = json.loads(context.cursor) if context.cursor else {}
    seen = latest_storage_ids(context.instance, keys)
    engine = warehouse.engine()
    try:
        retries = pending_failures(engine, config.max_attempts)
        if seen == previous.get("seen") and not previous.get("unfinished") and not retries:
            return dg.SensorResult(skip_reason=dg.SkipReason("no asset the rules read changed since the last tick"),
                                   cursor=context.cursor)
        checks = check_evaluations(context.instance, keys) if needs_checks else None
        report = run_alerts(settings, engine, checks, budget_seconds=TICK_BUDGET_SECONDS)
    finally:
        engine.dispose()
    for note in report.notes:
        context.log.info(note)
    for item in report.planned:
        if item.message is not None:
            context.log.info(f"{item.channel}: {item.message.title}")
    context.log.info(report.summary())
    cursor = json.dumps({"seen": seen, "unfinished": report.left_for_next_tick > 0}, sort_keys=True)
    return dg.SensorResult(skip_reason=dg.SkipReason(report.summary()), cursor=cursor)


SENSORS = [alerts_sensor]
