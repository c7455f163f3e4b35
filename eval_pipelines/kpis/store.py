"""Reading cases from the lake and KPI rows from/to the warehouse; shared by the assets, the CLI and the bench.

No dagster here. Every write is one transaction that deletes the partition's rows and inserts the new ones
(``warehouse.core.replace_partitions``), so a reader sees a day (or a week, a month) entirely old or entirely new,
and re-running never duplicates rows. A rollup is a read-modify-write of its period (read the period's
``kpi_daily`` rows, rewrite the period), so it also holds a lock on the period from the read to the commit: two
rollups of days of the same week, run in parallel, then queue instead of the later writer dropping a day.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import pandas as pd
import sqlalchemy as sa

from eval_pipelines.kpis.definitions import DOMAIN, definition_rows
from eval_pipelines.kpis.metrics import (
    CASE_COLUMNS,
    DEFAULT_LOW_VOLUME_BELOW,
    DEFAULT_REVIEWED_MIN_AUDITED,
    KEY_COLUMNS,
)
from eval_pipelines.kpis.reviewed import CELL_COLUMNS, PHASE_ONE_COLUMNS, VERDICT_COLUMNS, review_cells
from eval_pipelines.kpis.rollups import (
    PERIOD_COLUMNS,
    Period,
    PeriodCaseValues,
    period_end,
    period_start,
    read_case_values,
    rollup,
)
from eval_pipelines.kpis.tables import ROLLUP_TABLES, kpi_daily, kpi_definitions, kpi_review_cells
from eval_pipelines.labeling.labels import LABELED_CASES_ASSET
from eval_pipelines.lake import Lake
from eval_pipelines.warehouse.core import (
    PartitionWrite,
    ensure_tables,
    insert_records,
    locked_transaction,
    replace_partitions,
)

# Low-cardinality text columns are read as dictionaries (pandas categoricals): less memory, faster comparisons.
_DICTIONARY_COLUMNS = (*KEY_COLUMNS, "user_action", "status", "correctness")


def read_cases(lake: Lake, day: date, extra: Sequence[str] = ()) -> pd.DataFrame:
    """The ``CASE_COLUMNS`` (plus ``extra``, e.g. the control-group columns) of one ``labeled_cases`` partition;
    optional ones the file lacks are left out."""
    columns = list(dict.fromkeys([*CASE_COLUMNS, *extra]))
    return lake.read_columns(LABELED_CASES_ASSET, day.isoformat(), [], optional=columns,
                             dictionary=_DICTIONARY_COLUMNS).to_pandas()


REVIEW_QUEUE_ASSET = "review_queue"
REVIEW_LABELS_ASSET = "review_labels"


def read_review_cells(lake: Lake, day: date) -> pd.DataFrame | None:
    """The day's audit as ``reviewed.CELL_COLUMNS`` from the ``review_queue`` and ``review_labels`` lake datasets;
    None when either is missing (no audit that day, or review disabled: the reviewed columns stay null)."""
    try:
        phase_one = lake.read_columns(REVIEW_QUEUE_ASSET, day.isoformat(), list(PHASE_ONE_COLUMNS),
                                      dictionary=(*KEY_COLUMNS, "stratum", "review_action")).to_pandas()
        verdicts = lake.read_columns(REVIEW_LABELS_ASSET, day.isoformat(), list(VERDICT_COLUMNS)).to_pandas()
    except FileNotFoundError:
        return None
    try:
        return review_cells(phase_one, verdicts)
    except (KeyError, ValueError) as problem:
        raise ValueError(f"{lake.uri(REVIEW_LABELS_ASSET, day.isoformat())} does not match "
                         f"{lake.uri(REVIEW_QUEUE_ASSET, day.isoformat())}: {problem}") from problem


def daily_write(frame: pd.DataFrame, day: date, computed_at: datetime) -> PartitionWrite:
    """Replace the ``kpi_daily`` rows of ``day`` with ``frame`` (a ``metrics.daily_kpis`` result)."""
    rows = insert_records(frame.assign(computed_at=computed_at))
    return PartitionWrite(kpi_daily, {"kpi_date": day}, rows)


def cells_write(cells: pd.DataFrame | None, day: date, computed_at: datetime) -> PartitionWrite:
    """Replace the ``kpi_review_cells`` rows of ``day`` (none without an audit), in kpi_daily's transaction."""
    if cells is None or cells.empty:
        return PartitionWrite(kpi_review_cells, {"kpi_date": day}, [])
    frame = cells[list(CELL_COLUMNS)].assign(kpi_date=day, computed_at=computed_at)
    return PartitionWrite(kpi_review_cells, {"kpi_date": day}, insert_records(frame))


def write_daily(engine: sa.Engine, frame: pd.DataFrame, day: date, computed_at: datetime | None = None,
                cells: pd.DataFrame | None = None) -> None:
    stamp = computed_at or datetime.now(UTC)
    replace_partitions(engine, [daily_write(frame, day, stamp), cells_write(cells, day, stamp)])


def write_definitions(engine: sa.Engine) -> int:
    """Replace this domain's ``kpi_definitions`` rows; returns how many were written."""
    rows = definition_rows()
    replace_partitions(engine, [PartitionWrite(kpi_definitions, {"domain": DOMAIN}, rows)])
    return len(rows)


def read_rows(engine: sa.Engine, table: sa.Table, since: date | None = None, until: date | None = None,
              ) -> pd.DataFrame:
    """Rows of a KPI table with its date key in ``[since, until]`` (both inclusive, either open), sorted by key."""
    ensure_tables(engine, [table])
    with engine.connect() as connection:
        return _select_rows(connection, table, since, until)


def _select_rows(connection: sa.Connection, table: sa.Table, since: date | None, until: date | None,
                 ) -> pd.DataFrame:
    date_column = table.c[next(iter(table.primary_key.columns)).name]
    query = sa.select(table)
    if since is not None:
        query = query.where(date_column >= since)
    if until is not None:
        query = query.where(date_column <= until)
    query = query.order_by(*table.primary_key.columns)
    result = connection.execute(query)
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    for column in table.columns:
        if isinstance(column.type, sa.BigInteger | sa.Integer) and column.name in frame:
            frame[column.name] = frame[column.name].astype("int64")
        elif isinstance(column.type, sa.Float) and column.name in frame:
            frame[column.name] = frame[column.name].astype("float64")
    return frame


def period_lock_name(table: sa.Table, start: date) -> str:
    """The name of the lock on one period of a rollup table (see ``warehouse.core.locked_transaction``)."""
    return f"{table.name}:{start.isoformat()}"


def _replace(connection: sa.Connection, writes: Sequence[PartitionWrite]) -> None:
    """``replace_partitions`` inside a transaction the caller holds (same delete-then-insert per partition)."""
    for write in writes:
        condition = sa.and_(*(write.table.c[column] == value for column, value in write.key.items()))
        connection.execute(sa.delete(write.table).where(condition))
        if write.rows:
            connection.execute(sa.insert(write.table), [dict(row) for row in write.rows])


def refresh_rollups(engine: sa.Engine, lake: Lake, day: date, ci_level: float,
                    computed_at: datetime | None = None,
                    low_volume_below: int = DEFAULT_LOW_VOLUME_BELOW,
                    reviewed_min_audited: int = DEFAULT_REVIEWED_MIN_AUDITED) -> dict[Period, pd.DataFrame]:
    """Recompute the week and the month containing ``day`` and replace their rows in one transaction.

    Reads the ``kpi_daily`` rows of both periods, and the cases (keys, latency, decision time) of every day that
    has rows, each day once. The read and the write happen in the same transaction, under a lock on the week and
    the month (``warehouse.core.locked_transaction``): a parallel rollup of another day of the same period waits,
    then reads this run's committed state. Returns the new rows per period kind.
    """
    periods: tuple[Period, ...] = ("week", "month")
    first = min(period_start(day, p) for p in periods)
    last = max(period_end(day, p) for p in periods)
    bounds = {p: (period_start(day, p), period_end(day, p)) for p in periods}
    ensure_tables(engine, [kpi_daily, kpi_review_cells, *(ROLLUP_TABLES[p] for p in periods)])
    with locked_transaction(engine, [period_lock_name(ROLLUP_TABLES[p], bounds[p][0]) for p in periods]) \
            as connection:
        daily = _select_rows(connection, kpi_daily, first, last)
        # Read in the same transaction as the rows: the cells and the kpi_daily rows are one consistent state.
        cells = _select_rows(connection, kpi_review_cells, first, last)
        values = {p: PeriodCaseValues() for p in periods}
        for case_day in sorted(set(daily["kpi_date"])):
            wanted = [p for p in periods if bounds[p][0] <= case_day <= bounds[p][1]]
            if not wanted:
                continue
            cases = read_case_values(lake, case_day)
            for p in wanted:
                values[p].add(cases, bounds[p][0])
        stamp = computed_at or datetime.now(UTC)
        result: dict[Period, pd.DataFrame] = {}
        writes = []
        for p in periods:
            start, end = bounds[p]
            in_period = daily[(daily["kpi_date"] >= start) & (daily["kpi_date"] <= end)]
            period_cells = cells[(cells["kpi_date"] >= start) & (cells["kpi_date"] <= end)]
            frame = rollup(in_period, values[p], p, ci_level, low_volume_below, period_cells,
                           reviewed_min_audited)
            result[p] = frame
            writes.append(PartitionWrite(ROLLUP_TABLES[p], {PERIOD_COLUMNS[p]: start},
                                         insert_records(frame.assign(computed_at=stamp))))
        _replace(connection, writes)
    return result
