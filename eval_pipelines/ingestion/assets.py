"""Dagster side of ingestion: the ``production_logs`` asset, its contract checks and its warehouse writes."""


from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import date, timedelta

import dagster as dg
import pandas as pd

from eval_pipelines.config import Settings
from eval_pipelines.config_checks import unmatched_mappings
from eval_pipelines.ingestion.conform import target_fields
from eval_pipelines.ingestion.expectations import ContractValidation, validate_contract
from eval_pipelines.ingestion.ingest import (
    CrossDayDuplicates,
    IngestResult,
    cross_day_duplicates,
    ingest_frame,
)
from eval_pipelines.ingestion.location import landing_for
from eval_pipelines.ingestion.privacy import mask_ingest_result, masker_for, store_raw
from eval_pipelines.ingestion.sql_source import read_sql_day
from eval_pipelines.ingestion.tables import ingestion_batches, ingestion_files, quarantined_events
from eval_pipelines.ingestion.volume import trailing_volumes, volume_verdict
from eval_pipelines.lake import InLake, Lake
from eval_pipelines.metadata import column_schema, markdown_table
from eval_pipelines.partitions import daily_partitions
from eval_pipelines.resources import ProjectConfigResource, WarehouseResource, lake_root
from eval_pipelines.warehouse.core import PartitionWrite, insert_records, replace_partitions

CONTRACT_CHECK = "contract_expectations"
# Metadata key holding the landing state a materialisation ingested; the sensor compares against it.
LANDING_FINGERPRINT = "landing_fingerprint"
QUARANTINE_CHECK = "quarantine_rate"
FILES_CHECK = "files_readable"
CROSS_DAY_CHECK = "no_duplicates_across_days"
VOLUME_CHECK = "volume_vs_trailing_days"
ASSET_NAME = "production_logs"


def read_partition(settings: Settings, day: date) -> IngestResult:
    if settings.source.kind == "sql":
        assert settings.source.sql is not None
        return ingest_frame(read_sql_day(settings, day), settings, day, f"sql:{settings.source.sql.table}")
    return landing_for(settings).read_day(settings, day, daily_partitions.get_partition_keys())


def removed_day_folder(settings: Settings, lake: Lake, day: date) -> str | None:
    """Why the day must not be re-ingested now, or None: its folder is gone but its data was ingested before.

    The data is kept, not retracted: a folder disappears for many reasons (archiving, a retention job, a failed
    sync), and an empty partition would silently zero the day's KPIs. Retracting a day is explicit: leave an
    empty folder for it and re-materialise (docs/ingestion.md#removed-day-folders).
    """
    if settings.source.kind != "landing":
        return None
    landing = landing_for(settings)
    if landing.has_day_folder(day) or not lake.exists(ASSET_NAME, day.isoformat()):
        return None
    return (f"the landing folder of {day} is gone but the day was ingested before; its data is kept (not "
            f"retracted). To retract the day, create an empty folder {landing.folder_label(day)} and "
            "re-materialise it; to keep it, do nothing")


def warehouse_writes(result: IngestResult, source_kind: str, lake_uri: str) -> list[PartitionWrite]:
    """The day's rows for the three ingestion tables, replaced together."""
    key = {"partition_date": result.day}
    quarantine_rows = [{"partition_date": result.day, **row} for row in insert_records(result.quarantined)]
    return [
        PartitionWrite(ingestion_batches, key,
                       [{**result.batch_record(), "source_kind": source_kind, "lake_path": lake_uri}]),
        PartitionWrite(ingestion_files, key, result.file_records()),
        PartitionWrite(quarantined_events, key, quarantine_rows),
    ]


def _preview(valid: pd.DataFrame) -> dg.MetadataValue:
    return markdown_table(valid.head(5))  # already masked: see mask_ingest_result


@dg.asset(
    partitions_def=daily_partitions,
    group_name="ingestion",
    kinds={"python", "parquet", "sql"},
    io_manager_key="lake_io_manager",
    pool="warehouse",
    description=(
        "Canonical production events of one day: every landing file of the day (or [D, D+1) of the SQL source) "
        "mapped by the config, validated row by row and deduplicated on event_id. Rejected rows go to the "
        "warehouse table quarantined_events with a reason; per-day accounting to ingestion_batches."
    ),
    check_specs=[
        dg.AssetCheckSpec(CONTRACT_CHECK, asset=ASSET_NAME, blocking=True, partitions_def=daily_partitions,
                          description="Great Expectations suite generated from the canonical contract."),
        dg.AssetCheckSpec(QUARANTINE_CHECK, asset=ASSET_NAME, blocking=True, partitions_def=daily_partitions,
                          description="Share of quarantined rows stays under quality.max_quarantine_rate."),
        dg.AssetCheckSpec(FILES_CHECK, asset=ASSET_NAME, blocking=True, partitions_def=daily_partitions,
                          description="Every landing file of the day could be read: an unreadable file's rows are "
                                      "unknown, so the day's figures would be silently incomplete."),
        dg.AssetCheckSpec(VOLUME_CHECK, asset=ASSET_NAME, blocking=True, partitions_def=daily_partitions,
                          description="The day's valid rows are at least ingestion.volume.min_fraction of the "
                                      "median over the trailing ingested days; a day with no valid row fails "
                                      "unless its folder was emptied on purpose (a retraction)."),
        dg.AssetCheckSpec(CROSS_DAY_CHECK, asset=ASSET_NAME, blocking=False, partitions_def=daily_partitions,
                          description="Warns when events of the day also landed in the day before or after "
                                      "(deduplication is per day; this finds the same event in two folders)."),
    ],
)
def production_logs(
    context: dg.AssetExecutionContext, project: ProjectConfigResource, warehouse: WarehouseResource
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    settings = project.load()
    day = date.fromisoformat(context.partition_key)
    # Taken before reading: if files change during the read, the sensor sees a different fingerprint and re-runs.
    fingerprint = (landing_for(settings).day_fingerprint(day, settings.source.format)
                   if settings.source.kind == "landing" else None)
    lake = Lake(lake_root(settings))
    refusal = removed_day_folder(settings, lake, day)
    if refusal is not None:
        raise dg.Failure(refusal)
    raw = read_partition(settings, day)
    # Masked here, before the warehouse, the lake partition, the contract check and every metadata value see it.
    masker = masker_for(settings)
    if masker.uses_default_salt:
        context.log.warning(f"${settings.privacy.salt_env} is not set: PII tokens use the built-in salt, so anyone "
                            "can confirm a guessed value by hashing it; set a secret salt in production")
    result, masks = mask_ingest_result(raw, settings, masker)
    store_raw(lake, context.partition_key, raw, settings.privacy.keep_raw_in_lake)
    del raw
    lake_uri = lake.uri(ASSET_NAME, context.partition_key)
    engine = warehouse.engine()
    # The GX suite runs while the Parquet partition is written: both are mostly native code that releases the
    # GIL, so on two cores the check costs little extra wall time.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="contract") as pool:
        pending_contract = pool.submit(validate_contract, result.valid, target_fields(settings), day,
                                       settings.source.timestamp_tolerance_minutes)
        # Old-or-new in both stores: the Parquet is staged, the warehouse transaction renames it into place just
        # before COMMIT, and any failure restores the previous file (Lake.publishing).
        with lake.publishing() as publication:
            publication.stage_table(ASSET_NAME, context.partition_key, result.valid)
            replace_partitions(engine, warehouse_writes(result, settings.source.kind, lake_uri),
                               before_commit=publication.publish)
        _warn(context, result)
        for warning in unmatched_mappings(settings, result.valid):
            context.log.warning(warning)
        volume = volume_verdict(result.rows_valid,
                                trailing_volumes(engine, day, settings.ingestion.volume.trailing_days),
                                settings.ingestion.volume, retracted=_retracted(settings, result))
        files = (pd.DataFrame(result.file_records()).drop(columns=["partition_date"]).fillna({"error": ""})
                 if result.files else pd.DataFrame())
        neighbours = {other: _event_times(lake, other)
                      for other in (day - timedelta(days=1), day + timedelta(days=1))}
        cross_day = cross_day_duplicates(day, result.valid, neighbours, settings.source.timestamp_tolerance_minutes)
        yield from _outputs(result, files, settings, fingerprint, lake_uri, pending_contract.result, masks)
    yield _cross_day_check(cross_day)
    yield dg.AssetCheckResult(
        check_name=VOLUME_CHECK,
        passed=volume.passed,
        description=volume.description,
        metadata={"rows_valid": volume.rows_valid, "trailing_days_found": volume.trailing_days_found,
                  "trailing_median": dg.MetadataValue.float(volume.trailing_median if volume.trailing_median
                                                            is not None else float("nan")),
                  "floor": dg.MetadataValue.float(volume.floor if volume.floor is not None else float("nan"))},
    )


def _warn(context: dg.AssetExecutionContext, result: IngestResult) -> None:
    """One WARN line per kind of problem the day's figures alone would not show."""
    if result.files_failed:
        context.log.warning(f"{result.files_failed} file(s) could not be read; see ingestion_files.error")
    if result.skipped:
        shown = "; ".join(f"{item.path} ({item.reason})" for item in result.skipped[:10])
        more = f" and {len(result.skipped) - 10} more" if len(result.skipped) > 10 else ""
        context.log.warning(f"{len(result.skipped)} landing path(s) skipped, not read by any partition: "
                            f"{shown}{more}; see the 'skipped_paths' metadata")
    if result.rows_conflicting:
        examples = ", ".join(result.conflicts["event_id"].astype(str).head(10))
        context.log.warning(
            f"{result.rows_conflicting:,} row(s) share an event_id with a kept row but differ in content (e.g. "
            f"{examples}); one row per event_id was kept by content (docs/ingestion.md#conflicting-duplicates), "
            "see the 'conflicts' metadata")


def _retracted(settings: Settings, result: IngestResult) -> bool:
    """A landing day whose folder exists but holds no log file: emptied on purpose (docs/ingestion.md)."""
    if settings.source.kind != "landing" or result.files:
        return False
    return landing_for(settings).has_day_folder(result.day)


def _event_times(lake: Lake, day: date) -> pd.DataFrame | None:
    """A neighbouring day's event ids and timestamps from the lake, or None when it has not been ingested."""
    if not lake.exists(ASSET_NAME, day.isoformat()):
        return None
    return lake.read_columns(ASSET_NAME, day.isoformat(), ["event_id", "timestamp"]).to_pandas()


def _cross_day_check(found: CrossDayDuplicates) -> dg.AssetCheckResult:
    parts = [f"{len(ids):,} also in {other}" for other, ids in found.event_ids.items() if ids]
    waiting = ", ".join(str(other) for other in found.not_ingested)
    description = ("; ".join(parts) + " (same event_id and a timestamp within source.timestamp_tolerance_minutes of "
                   "the shared midnight: the same event exported into two day folders; remove it from one and "
                   "re-materialise that day)") if parts else \
        f"no event of the day found in the {len(found.event_ids)} neighbouring day(s) ingested"
    if waiting:
        description += f"; not ingested yet: {waiting} (its own run compares)"
    examples = sorted({event_id for ids in found.event_ids.values() for event_id in ids})[:20]
    return dg.AssetCheckResult(
        check_name=CROSS_DAY_CHECK,
        passed=found.total == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={"duplicates": found.total, "days_compared": len(found.event_ids),
                  "examples": ", ".join(examples) or "none"},
    )


def _outputs(result: IngestResult, files: pd.DataFrame, settings: Settings, fingerprint: str | None,
             lake_uri: str, contract_result: Callable[[], ContractValidation], masks: int,
             ) -> Iterator[dg.Output | dg.AssetCheckResult]:
    yield dg.Output(
        InLake(lake_uri, result.rows_valid),
        metadata={
            "dagster/row_count": result.rows_valid,
            "rows_read": result.rows_read,
            "rows_valid": result.rows_valid,
            "rows_quarantined": result.rows_quarantined,
            "rows_duplicate": result.rows_duplicate,
            "rows_conflicting": result.rows_conflicting,
            "conflicts": markdown_table(result.conflicts, max_rows=20),
            "paths_skipped": len(result.skipped),
            "skipped_paths": markdown_table(pd.DataFrame([asdict(item) for item in result.skipped],
                                                         columns=["path", "reason"]), max_rows=50, max_chars=120),
            "files_read": len(result.files) - result.files_failed,
            "files_failed": result.files_failed,
            "quarantine_rate": dg.MetadataValue.float(round(result.quarantine_rate, 6)),
            "pii_masks_applied": masks,
            LANDING_FINGERPRINT: fingerprint or "",
            "files": markdown_table(files, max_rows=50),
            "quarantine_reasons": markdown_table(
                result.quarantined["reason"].str.slice(0, 90).value_counts().rename_axis("reason")
                .reset_index(name="rows")
            ),
            "preview": _preview(result.valid),
            "dagster/column_schema": column_schema(
                result.valid, {spec.name: spec.description for spec in target_fields(settings)}
            ),
        },
    )

    contract = contract_result()
    yield dg.AssetCheckResult(
        check_name=CONTRACT_CHECK,
        passed=contract.success,
        description=contract.summary(),
        metadata={
            "expectations": len(contract.outcomes),
            "failed": len(contract.failures),
            "results": markdown_table(pd.DataFrame(contract.outcomes), max_rows=100),
        },
    )
    failed_files = [f for f in result.files if f.status != "ok"]
    yield dg.AssetCheckResult(
        check_name=FILES_CHECK,
        passed=not failed_files,
        description=(f"all {len(result.files)} file(s) read" if not failed_files else
                     f"{len(failed_files)} of {len(result.files)} file(s) could not be read; fix or remove them and "
                     "re-materialise the day: " + "; ".join(f"{f.source_file}: {f.error}" for f in failed_files)),
        metadata={"files_failed": len(failed_files), "files": len(result.files)},
    )
    limit = settings.quality.max_quarantine_rate
    yield dg.AssetCheckResult(
        check_name=QUARANTINE_CHECK,
        passed=result.quarantine_rate <= limit,
        description=f"{result.rows_quarantined:,} of {result.rows_read:,} rows quarantined "
                    f"({result.quarantine_rate:.2%}; limit {limit:.2%})",
        metadata={"quarantine_rate": result.quarantine_rate, "limit": limit,
                  "rows_quarantined": result.rows_quarantined},
    )
