"""``landing_sensor``: a ``daily_chain`` run (production_logs and every daily asset after it, checks included) for
each day whose landing files are new or changed: one run per day, so a landed file reaches its KPIs without waiting
for automation ticks between the steps (eval_pipelines/jobs.py)."""


from datetime import date

import dagster as dg

from eval_pipelines.ingestion.assets import LANDING_FINGERPRINT, production_logs
from eval_pipelines.ingestion.landing import changed_days, decode_cursor, decode_listing, encode_cursor
from eval_pipelines.ingestion.location import landing_for
from eval_pipelines.jobs import DAILY_CHAIN_JOB
from eval_pipelines.partitions import daily_partitions
from eval_pipelines.resources import ProjectConfigResource


def _already_ingested(instance: dg.DagsterInstance, day: str, fingerprint: str) -> bool:
    """Whether the latest production_logs materialisation of ``day`` ingested exactly this landing state."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=production_logs.key, asset_partitions=[day]), limit=1).records
    if not records:
        return False
    materialization = records[0].asset_materialization
    value = materialization.metadata.get(LANDING_FINGERPRINT) if materialization else None
    return value is not None and getattr(value, "value", value) == fingerprint


@dg.sensor(
    name="landing_sensor",
    job_name=DAILY_CHAIN_JOB,
    # 5 s: half the interval is, on average, the wait between a file landing and its run (file-to-KPI, issue 14),
    # and a tick is cheap: a directory listing (~0.1 s for 10,000 files, bench/bench_sensor.py) or one bounded
    # page of an object store (listing.tick_budget_seconds, bench/bench_sensor_s3.py).
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests the daily_chain job (production_logs through the KPIs, with every check) for each day "
                "folder whose files are new or changed since the last tick.",
)
def landing_sensor(context: dg.SensorEvaluationContext, project: ProjectConfigResource) -> dg.SensorResult:
    settings = project.load()
    if settings.source.kind != "landing":
        return dg.SensorResult(skip_reason=dg.SkipReason("source.kind is not 'landing'"), cursor=context.cursor)
    previous = decode_cursor(context.cursor)
    landing = landing_for(settings)
    scan = landing.scan(settings.source.format, decode_listing(context.cursor))
    if scan.days is None:
        # A large bucket: the listing pass continues next tick from the key kept in the cursor; days are compared
        # only once every object was listed, so a day is never judged on half its objects.
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"listing the landing store: {scan.listed:,} objects so far, continued next "
                                      "tick"), cursor=encode_cursor(previous, scan.progress))
    current = scan.days
    valid_keys = set(daily_partitions.get_partition_keys(dynamic_partitions_store=None))
    requests, accepted = [], dict(previous)
    for day in changed_days(previous, current):
        if day not in valid_keys:
            # Not remembered in the cursor: once the partitions reach this day, the next tick picks it up.
            context.log.warning(f"landing folder {day} is outside the daily partitions; not ingested")
            continue
        accepted[day] = current[day]
        if _already_ingested(context.instance, day, current[day]):
            continue  # e.g. materialised by `eval-pipelines materialize` before the sensor ever ran
        # The fingerprint in the run key makes a re-tick of the same state idempotent.
        requests.append(dg.RunRequest(run_key=f"production_logs:{day}:{current[day]}", partition_key=day,
                                      job_name=DAILY_CHAIN_JOB))
    for day in sorted(set(accepted) - set(current)):
        del accepted[day]  # forgotten, so a re-created folder is ingested again
        emptied = landing.retraction_mark(date.fromisoformat(day))
        if emptied is not None:
            # Emptied on purpose: the documented way to retract a day (docs/ingestion.md#removed-day-folders).
            # The folder's mtime (on a store: its marker object) in the key lets a second retraction run too.
            requests.append(dg.RunRequest(run_key=f"production_logs:{day}:retracted:{emptied}", partition_key=day,
                                          job_name=DAILY_CHAIN_JOB))
        else:
            context.log.warning(f"landing folder {day} was removed; its ingested data is kept, not retracted "
                                "(leave an empty folder to retract the day)")
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason("no new or changed landing files"),
                               cursor=encode_cursor(accepted))
    return dg.SensorResult(run_requests=requests, cursor=encode_cursor(accepted))
