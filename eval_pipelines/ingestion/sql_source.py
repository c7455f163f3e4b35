"""Reading one day, ``[D, D+1)``, of events from a SQL table instead of landing files."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import sqlalchemy as sa

from eval_pipelines.config import PROJECT_ROOT, Settings
from eval_pipelines.warehouse.core import create_warehouse_engine, safe_url


def read_sql_day(settings: Settings, day: date) -> pd.DataFrame:
    """The day's rows, selected on the configured timestamp column with bound parameters.

    The column must hold a SQL timestamp, or epoch numbers when ``mapping.timestamp_format`` is epoch_s/epoch_ms.
    """
    sql = settings.source.sql
    if sql is None:
        raise ValueError("source.sql is not configured")
    engine = create_warehouse_engine(sql.url, PROJECT_ROOT)
    schema, _, name = sql.table.rpartition(".")
    try:
        table = sa.Table(name, sa.MetaData(), autoload_with=engine, schema=schema or None)
    except sa.exc.NoSuchTableError:
        raise ValueError(f"source.sql.table: table {sql.table!r} not found in {safe_url(engine)}") from None
    if sql.timestamp_column not in table.c:
        raise ValueError(f"source.sql.timestamp_column: {sql.timestamp_column!r} is not a column of {sql.table!r}; "
                         f"columns are {list(table.c.keys())}")
    start = datetime.combine(day, time.min, tzinfo=UTC)
    end = start + timedelta(days=1)
    column = table.c[sql.timestamp_column]
    fmt = settings.mapping.timestamp_format
    if fmt in ("epoch_s", "epoch_ms"):
        scale = 1000 if fmt == "epoch_ms" else 1
        low, high = start.timestamp() * scale, end.timestamp() * scale
    elif isinstance(column.type, sa.DateTime) and not column.type.timezone:
        low, high = start.replace(tzinfo=None), end.replace(tzinfo=None)  # naive columns hold UTC
    else:
        low, high = start, end
    query = sa.select(table).where(column >= low, column < high).order_by(column)
    with engine.connect() as connection:
        return pd.read_sql(query, connection)
