"""The daily partitions every per-day asset shares, keyed by the landing folder's date (UTC)."""


import warnings
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from eval_pipelines.config import load_settings

# end_offset=1 includes today, so files landing during the day are ingested (and re-ingested) as they arrive.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=load_settings().partitions.start_date.isoformat(), timezone="UTC", end_offset=1
)


def _monday_on_or_before(day: str) -> str:
    start = date.fromisoformat(day)
    return (start - timedelta(days=start.weekday())).isoformat()


# ISO weeks (Monday start, UTC) aligned with the daily partitions: the first week is the one holding the first day,
# so every daily partition belongs to exactly one weekly one. end_offset=1 includes the current week, like the daily
# partitions include today: it can be reported on demand while it runs (marked partial).
weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date=_monday_on_or_before(load_settings().partitions.start_date.isoformat()), day_offset=1, timezone="UTC",
    end_offset=1,
)


def partitions_holding(partitions_def: dg.PartitionsDefinition, days: Iterable[str]) -> list[str]:
    """The keys of ``partitions_def`` (e.g. weekly) whose time window holds one of ``days`` (YYYY-MM-DD, UTC), in
    order: what to (re)build after those days changed. Non-time partitions: all their keys."""
    if not isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        return list(partitions_def.get_partition_keys())
    keys = set()
    for day in days:
        moment = datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(hours=12)
        key = partitions_def.get_partition_key_for_timestamp(moment.timestamp())
        if key in partitions_def.get_partition_keys():
            keys.add(key)
    return sorted(keys)

# Checks of partitioned assets are partitioned too (AssetCheckSpec(partitions_def=...), README "Partitioned checks"),
# so each evaluation names its day or candidate. Dagster 1.13 marks that parameter as a preview and warns once per
# spec at import: the warning says nothing a user can act on, so it is silenced for this one message only.
warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*", category=dg.PreviewWarning)
