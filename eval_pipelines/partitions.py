"""The daily partitions every per-day asset shares, keyed by the landing folder's date (UTC)."""


import dagster as dg

from eval_pipelines.config import load_settings

# end_offset=1 includes today, so files landing during the day are ingested (and re-ingested) as they arrive.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=load_settings().partitions.start_date.isoformat(), timezone="UTC", end_offset=1
)
