"""The daily partitions every per-day asset shares, keyed by the landing folder's date (UTC)."""


import warnings

import dagster as dg

from eval_pipelines.config import load_settings

# end_offset=1 includes today, so files landing during the day are ingested (and re-ingested) as they arrive.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=load_settings().partitions.start_date.isoformat(), timezone="UTC", end_offset=1
)

# Checks of partitioned assets are partitioned too (AssetCheckSpec(partitions_def=...), README "Partitioned checks"),
# so each evaluation names its day or candidate. Dagster 1.13 marks that parameter as a preview and warns once per
# spec at import: the warning says nothing a user can act on, so it is silenced for this one message only.
warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*", category=dg.PreviewWarning)
