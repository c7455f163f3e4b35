"""The day's volume against the trailing days: a tiny or empty day must not look healthy.

The rule (``ingestion.volume``): the day's valid rows are compared with the median of ``rows_valid`` over the
ingested days among the ``trailing_days`` before it. Below ``min_fraction`` of that median the check fails
(blocking). With fewer than ``min_days`` trailing days ingested there is no baseline, and the check passes saying
so, except that a day with no valid row at all always fails, unless its day folder was emptied on purpose
(the documented retraction, docs/ingestion.md). The median, not the mean, so that one earlier incident day (or
one huge backfill) does not move the floor.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa

from eval_pipelines.ingestion.settings import VolumeCheckConfig
from eval_pipelines.ingestion.tables import ingestion_batches


@dataclass(frozen=True)
class VolumeVerdict:
    passed: bool
    description: str
    rows_valid: int
    trailing_median: float | None
    floor: float | None
    trailing_days_found: int


def volume_verdict(rows_valid: int, trailing: dict[date, int], config: VolumeCheckConfig,
                   retracted: bool = False) -> VolumeVerdict:
    """Judge one day's valid rows against ``trailing`` (``{day: rows_valid}`` of ingested trailing days)."""
    found = len(trailing)
    median = float(statistics.median(trailing.values())) if trailing else None
    floor = median * config.min_fraction if median is not None else None
    if rows_valid == 0 and retracted:
        return VolumeVerdict(True, "no rows: the day folder is empty, so the day is retracted on purpose",
                             rows_valid, median, floor, found)
    if rows_valid == 0:
        return VolumeVerdict(False, "no valid rows: not enough data for a verdict on this day (an empty folder "
                                    "retracts a day on purpose; otherwise check the landing files and the mapping)",
                             rows_valid, median, floor, found)
    if found < config.min_days or median is None or floor is None:
        return VolumeVerdict(True, f"{rows_valid:,} valid rows; only {found} of the {config.trailing_days} trailing "
                                   f"day(s) ingested (ingestion.volume.min_days={config.min_days}): no baseline yet",
                             rows_valid, median, floor, found)
    passed = rows_valid >= floor
    relation = "at or above" if passed else "below"
    return VolumeVerdict(passed, f"{rows_valid:,} valid rows, {relation} the floor of {floor:,.0f} "
                                 f"({config.min_fraction:.0%} of the median {median:,.0f} over {found} trailing "
                                 "day(s))", rows_valid, median, floor, found)


def trailing_volumes(engine: sa.Engine, day: date, trailing_days: int) -> dict[date, int]:
    """``rows_valid`` of the ingested days in [day - trailing_days, day - 1], from ``ingestion_batches``."""
    start = day - timedelta(days=trailing_days)
    query = (sa.select(ingestion_batches.c.partition_date, ingestion_batches.c.rows_valid)
             .where(ingestion_batches.c.partition_date >= start, ingestion_batches.c.partition_date < day))
    with engine.connect() as connection:
        return {row.partition_date: int(row.rows_valid) for row in connection.execute(query)}
