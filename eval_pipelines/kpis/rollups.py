"""Weekly and monthly KPI rollups that are right, not just close.

A rate over a week is not the mean of seven daily rates (a quiet Sunday would weigh as much as a busy Monday), and a
weekly p90 is not any average of daily p90s. So a rollup row is built from two sources:

- the ``kpi_daily`` rows of the period: their additive columns (counts, hours, money) are summed, and every rate
  is recomputed from the summed numerator and denominator (``metrics.combine``);
- the cases of the period, read back from the ``labeled_cases`` lake partitions (only the group keys, latency and
  decision time): percentiles are recomputed from them.

Money amounts are summed as the days recorded them, so a change of the impact model applies from the day it was
made and is not re-applied to history. Weeks are ISO weeks (Monday to Sunday, ``week_start`` is the Monday);
months are calendar months (``month_start`` is the 1st). No dagster here: plain functions plus a Parquet reader.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

import numpy as np
import pandas as pd

from eval_pipelines.kpis.metrics import (
    DEFAULT_LOW_VOLUME_BELOW,
    DEFAULT_REVIEWED_MIN_AUDITED,
    KEY_COLUMNS,
    PERCENTILE_COLUMNS,
    PERCENTILE_SOURCES,
    combine,
    group_ids,
    quantiles_of_chunks,
    split_by_group,
)
from eval_pipelines.labeling.labels import LABELED_CASES_ASSET
from eval_pipelines.lake import Lake

Period = Literal["week", "month"]
PERIOD_COLUMNS: dict[str, str] = {"week": "week_start", "month": "month_start"}


def period_start(day: date, period: Period) -> date:
    """Monday of ``day``'s ISO week, or the 1st of its month."""
    return day - timedelta(days=day.weekday()) if period == "week" else day.replace(day=1)


def period_end(day: date, period: Period) -> date:
    """Last day (inclusive) of the period containing ``day``."""
    start = period_start(day, period)
    if period == "week":
        return start + timedelta(days=6)
    return start.replace(day=calendar.monthrange(start.year, start.month)[1])


@dataclass
class PeriodCaseValues:
    """The per-case values percentiles need, for many days, grouped by (period start, system, version, segment).

    Each day's values are split by group as they are added and kept as per-group chunks: 8 bytes per known value
    (latency of every case, decision time of the timed ones), no per-case ids or strings, so a month of
    million-case days stays well under a gigabyte.
    """

    group_index: dict[tuple, int] = field(default_factory=dict)
    _chunks: dict[str, list[list[np.ndarray]]] = field(default_factory=lambda: {s: [] for s in PERCENTILE_SOURCES})

    def add(self, cases: pd.DataFrame, start: date) -> None:
        """Add one day's cases (``KEY_COLUMNS`` + ``PERCENTILE_SOURCES``) to the period starting ``start``."""
        if cases.empty:
            return
        ids, groups = group_ids(cases[list(KEY_COLUMNS)])
        for key in groups.itertuples(index=False, name=None):
            if (start, *key) not in self.group_index:
                self.group_index[(start, *key)] = len(self.group_index)
                for source in PERCENTILE_SOURCES:
                    self._chunks[source].append([])
        positions = [self.group_index[(start, *key)] for key in groups.itertuples(index=False, name=None)]
        for source in PERCENTILE_SOURCES:
            values = cases[source].to_numpy(dtype="float64", na_value=np.nan)
            for position, chunk in zip(positions, split_by_group(ids, values, len(groups)), strict=True):
                if len(chunk):
                    self._chunks[source][position].append(chunk)

    def percentiles(self, period_column: str) -> pd.DataFrame:
        """``period_column`` + ``KEY_COLUMNS`` + every ``PERCENTILE_COLUMNS`` entry, one row per group."""
        out: dict[str, np.ndarray] = {}
        for source in PERCENTILE_SOURCES:
            wanted = [(column, q) for column, (src, q) in PERCENTILE_COLUMNS.items() if src == source]
            result = quantiles_of_chunks(self._chunks[source], [q for _, q in wanted])
            for position, (column, _) in enumerate(wanted):
                out[column] = result[:, position]
        keys = pd.DataFrame(list(self.group_index), columns=[period_column, *KEY_COLUMNS])
        return pd.concat([keys, pd.DataFrame(out)], axis=1)


def read_case_values(lake: Lake, day: date) -> pd.DataFrame:
    """The group keys and percentile inputs of one ``labeled_cases`` partition (nothing else is read)."""
    try:
        table = lake.read_columns(LABELED_CASES_ASSET, day.isoformat(), [*KEY_COLUMNS, *PERCENTILE_SOURCES],
                                  dictionary=KEY_COLUMNS)
    except FileNotFoundError as missing:
        raise FileNotFoundError(f"kpi_daily has rows for {day} but its cases are gone, so percentiles cannot be "
                                f"recomputed: {missing}") from missing
    return table.to_pandas()


def rollup(daily_rows: pd.DataFrame, case_values: PeriodCaseValues, period: Period, ci_level: float,
           low_volume_below: int = DEFAULT_LOW_VOLUME_BELOW, review_cells: pd.DataFrame | None = None,
           reviewed_min_audited: int = DEFAULT_REVIEWED_MIN_AUDITED) -> pd.DataFrame:
    """The rollup table rows for ``period`` from ``kpi_daily`` rows and the same days' case values.

    ``daily_rows`` are ``kpi_daily`` rows (any number of periods); ``case_values`` must hold the cases of every
    day present in them, added under the same period starts. ``review_cells``: the ``kpi_review_cells`` rows of
    the same days (``kpi_date`` + cell columns); the reviewed estimates are recomputed over the period's cells,
    each day's cells separate strata of the period (never an average of daily rates). Returns
    ``<period>_start``, ``KEY_COLUMNS``, ``days_with_data``, ``currency`` and every KPI column.
    """
    column = PERIOD_COLUMNS[period]
    rows = daily_rows.copy()
    rows[column] = [period_start(d, period) for d in rows["kpi_date"]]
    cells = None
    if review_cells is not None and not review_cells.empty:
        cells = review_cells.copy()
        cells[column] = [period_start(d, period) for d in cells["kpi_date"]]
    return combine(rows, case_values.percentiles(column), [column, *KEY_COLUMNS], ci_level, low_volume_below,
                   cells, reviewed_min_audited)


def rollup_from_cases(daily_rows: pd.DataFrame, cases_by_day: Iterable[tuple[date, pd.DataFrame]],
                      periods: Sequence[Period], ci_level: float,
                      low_volume_below: int = DEFAULT_LOW_VOLUME_BELOW, review_cells: pd.DataFrame | None = None,
                      reviewed_min_audited: int = DEFAULT_REVIEWED_MIN_AUDITED) -> dict[str, pd.DataFrame]:
    """Rollups for several period kinds at once, each day's cases loaded once (see ``rollup``)."""
    values = {period: PeriodCaseValues() for period in periods}
    for day, cases in cases_by_day:
        for period in periods:
            values[period].add(cases, period_start(day, period))
    return {period: rollup(daily_rows, values[period], period, ci_level, low_volume_below, review_cells,
                           reviewed_min_audited) for period in periods}

