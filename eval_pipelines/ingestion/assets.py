"""Dagster side of ingestion: the ``production_logs`` asset, its contract checks and its warehouse writes."""


from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
    ingest_files,
    ingest_frame,
    landing_files,
)
from eval_pipelines.ingestion.landing import day_fingerprint
from eval_pipelines.ingestion.sql_source import read_sql_day
from eval_pipelines.ingestion.tables import ingestion_batches, ingestion_files, quarantined_events
from eval_pipelines.labeling.pii import mask_pii
from eval_pipelines.lake import Lake
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
ASSET_NAME = "production_logs"


def read_partition(settings: Settings, day: date) -> IngestResult:
    if settings.source.kind == "sql":
        assert settings.source.sql is not None
        return ingest_frame(read_sql_day(settings, day), settings, day, f"sql:{settings.source.sql.table}")
    landing_dir = settings.resolve_path(settings.source.landing_dir)
    return ingest_files(landing_files(landing_dir, day), settings, day, root=landing_dir)


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
    # Raw text may carry PII; the UI preview shows it masked, as labeled_cases will.
    preview = valid.head(5).copy()
    if "input_text" in preview:
        preview["input_text"] = mask_pii(preview["input_text"])[0]
    return markdown_table(preview)


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
        dg.AssetCheckSpec(CONTRACT_CHECK, asset=ASSET_NAME, blocking=True,
                          description="Great Expectations suite generated from the canonical contract."),
        dg.AssetCheckSpec(QUARANTINE_CHECK, asset=ASSET_NAME, blocking=True,
                          description="Share of quarantined rows stays under quality.max_quarantine_rate."),
        dg.AssetCheckSpec(FILES_CHECK, asset=ASSET_NAME, blocking=True,
                          description="Every landing file of the day could be read: an unreadable file's rows are "
                                      "unknown, so the day's figures would be silently incomplete."),
        dg.AssetCheckSpec(CROSS_DAY_CHECK, asset=ASSET_NAME, blocking=False,
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
    fingerprint = (day_fingerprint(settings.resolve_path(settings.source.landing_dir), day)
                   if settings.source.kind == "landing" else None)
    result = read_partition(settings, day)
    lake = Lake(lake_root(settings))
    lake_uri = lake.uri(ASSET_NAME, context.partition_key)
    replace_partitions(warehouse.engine(), warehouse_writes(result, settings.source.kind, lake_uri))
    if result.files_failed:
        context.log.warning(f"{result.files_failed} file(s) could not be read; see ingestion_files.error")
    for warning in unmatched_mappings(settings, result.valid):
        context.log.warning(warning)

    files = (pd.DataFrame(result.file_records()).drop(columns=["partition_date"]).fillna({"error": ""})
             if result.files else pd.DataFrame())
    neighbours = {other: _event_times(lake, other) for other in (day - timedelta(days=1), day + timedelta(days=1))}
    cross_day = cross_day_duplicates(day, result.valid, neighbours, settings.source.timestamp_tolerance_minutes)
    # The GX suite runs while the IO manager writes the Parquet partition: both are mostly native code that
    # releases the GIL, so on two cores the check costs little extra wall time.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="contract") as pool:
        pending_contract = pool.submit(validate_contract, result.valid, target_fields(settings), day,
                                       settings.source.timestamp_tolerance_minutes)
        yield from _outputs(result, files, settings, fingerprint, pending_contract.result)
    yield _cross_day_check(cross_day)


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
             contract_result: Callable[[], ContractValidation]) -> Iterator[dg.Output | dg.AssetCheckResult]:
    yield dg.Output(
        result.valid,
        metadata={
            "dagster/row_count": result.rows_valid,
            "rows_read": result.rows_read,
            "rows_valid": result.rows_valid,
            "rows_quarantined": result.rows_quarantined,
            "rows_duplicate": result.rows_duplicate,
            "files_read": len(result.files) - result.files_failed,
            "files_failed": result.files_failed,
            "quarantine_rate": dg.MetadataValue.float(round(result.quarantine_rate, 6)),
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
    failed_files = [f for f in result.files if f.status == "failed"]
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
