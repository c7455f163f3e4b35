"""The daily partitions every per-day asset shares, keyed by the landing folder's date (UTC)."""


from datetime import date, timedelta

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
# so every daily partition belongs to exactly one weekly one. end_offset=0: only complete weeks are partitions (the
# current week is reported on demand by `eval-pipelines report --period latest`, marked partial).
weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date=_monday_on_or_before(load_settings().partitions.start_date.isoformat()), day_offset=1, timezone="UTC"
)
