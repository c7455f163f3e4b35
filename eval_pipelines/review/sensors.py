"""``review_inbox_sensor``: a run of review_labels for each day whose inbox verdict files are new or changed."""


import dagster as dg

from eval_pipelines.ingestion.landing import decode_cursor, encode_cursor
from eval_pipelines.lake import Lake
from eval_pipelines.partitions import daily_partitions
from eval_pipelines.resources import ProjectConfigResource, lake_root
from eval_pipelines.review.inbox import INBOX_FINGERPRINT, LABELS_ASSET, QUEUE_ASSET, scan_inbox

MAX_DAYS_PER_TICK = 20
"""Bounded work per tick: more changed days than this wait for the next tick (they stay out of the cursor)."""


def _already_read(instance: dg.DagsterInstance, day: str, fingerprint: str) -> bool:
    """Whether the latest review_labels materialisation of ``day`` read exactly this inbox state."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(LABELS_ASSET), asset_partitions=[day]), limit=1).records
    if not records or records[0].asset_materialization is None:
        return False
    value = records[0].asset_materialization.metadata.get(INBOX_FINGERPRINT)
    return value is not None and getattr(value, "value", value) == fingerprint


@dg.sensor(
    name="review_inbox_sensor",
    # By key: assets.py imports this module to export the sensor with its domain.
    target=dg.AssetSelection.assets(LABELS_ASSET),
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests review_labels for every day whose inbox folder (<review.inbox_dir>/<YYYY-MM-DD>/) has "
                "new or changed verdict files since the last tick.",
)
def review_inbox_sensor(context: dg.SensorEvaluationContext, project: ProjectConfigResource) -> dg.SensorResult:
    settings = project.load()
    previous = decode_cursor(context.cursor)
    current = scan_inbox(settings.resolve_path(settings.review.inbox_dir))
    lake = Lake(lake_root(settings))
    valid_keys = set(daily_partitions.get_partition_keys())
    accepted = {day: fingerprint for day, fingerprint in previous.items() if day in current}
    requests = []
    changed = sorted(day for day, fingerprint in current.items() if previous.get(day) != fingerprint)
    for day in changed:
        if len(requests) >= MAX_DAYS_PER_TICK:
            break  # not remembered: the next tick takes it
        if day not in valid_keys:
            context.log.warning(f"inbox folder {day} is outside the daily partitions; not read")
            continue
        if not lake.exists(QUEUE_ASSET, day):
            continue  # no audit sample yet: review_labels follows review_queue once it is materialised
        accepted[day] = current[day]
        if _already_read(context.instance, day, current[day]):
            continue
        # The fingerprint in the run key makes a re-tick of the same state idempotent.
        requests.append(dg.RunRequest(run_key=f"review_labels:{day}:{current[day]}", partition_key=day))
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason("no new or changed inbox files"),
                               cursor=encode_cursor(accepted))
    return dg.SensorResult(run_requests=requests, cursor=encode_cursor(accepted))
