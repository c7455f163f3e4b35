"""Engine creation and the one write pattern every warehouse table uses: replace a partition in one transaction.

Readers (BI tools, the CLI) therefore see a day either entirely old or entirely new, never half-written, and
re-materialising a partition never duplicates rows. SQLAlchemy Core only, values always bound as parameters.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from eval_pipelines.url_secrets import mask_url

metadata = sa.MetaData()


@dataclass(frozen=True)
class PartitionWrite:
    """Delete the rows of ``table`` matching ``key`` (column -> value), then insert ``rows``."""

    table: sa.Table
    key: Mapping[str, Any]
    rows: Sequence[Mapping[str, Any]]


def create_warehouse_engine(url: str, project_root: Path | None = None) -> sa.Engine:
    """An engine for ``url``; a relative SQLite path is resolved against ``project_root`` and its folder created.

    Without a connection pool: assets write a few large transactions per run, so pooling gains nothing, and a pool
    that outlives its asset keeps PostgreSQL connections open (and databases undroppable) until garbage collection.
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        if not path.is_absolute() and project_root is not None:
            path = project_root / path
        path.parent.mkdir(parents=True, exist_ok=True)
        parsed = parsed.set(database=str(path))
        # Dagster may run partitions in parallel processes; wait for the lock instead of failing at once.
        return sa.create_engine(parsed, connect_args={"timeout": 60}, poolclass=sa.pool.NullPool)
    return sa.create_engine(parsed, poolclass=sa.pool.NullPool)


def db_value(value: Any) -> Any:
    """A value the DB-API accepts: None for every kind of null, Python scalars, datetimes for timestamps.

    SQLite turns NaN into NULL on its own but PostgreSQL stores NaN as a number; converting here keeps both
    backends identical and lets BI treat "undefined" as NULL.
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value


def insert_records(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The rows of ``frame`` (or of its ``columns``) as parameter dicts for an INSERT, every value a ``db_value``.

    Converted column by column: plain numeric columns in one numpy call, the rest value by value.
    """
    names = list(columns) if columns is not None else list(frame.columns)
    values: list[list[Any]] = []
    for name in names:
        series = frame[name]
        if isinstance(series.dtype, np.dtype) and series.dtype.kind in "iub":
            values.append(series.to_numpy().tolist())
        elif isinstance(series.dtype, np.dtype) and series.dtype.kind == "f":
            values.append([None if math.isnan(v) else v for v in series.to_numpy().tolist()])
        else:
            values.append([db_value(v) for v in series.tolist()])
    return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)] if names else \
        [{} for _ in range(len(frame))]


def safe_url(engine_or_url: sa.Engine | str) -> str:
    """The URL with its password and secret-named query values (``?password=``, ``?token=``...) masked, for logs,
    metadata and error messages. A string that is not a URL is masked as text rather than echoed."""
    try:
        url = engine_or_url.url if isinstance(engine_or_url, sa.Engine) else sa.make_url(engine_or_url)
    except (sa.exc.ArgumentError, ValueError):
        return mask_url(str(engine_or_url))
    return mask_url(url.render_as_string(hide_password=True))


# Any constant: serialises first-time table creation across concurrent runs ("eval").
_CREATE_TABLES_LOCK = 0x6576616C


def lock_key(name: str) -> int:
    """The PostgreSQL advisory-lock key of a named lock: a signed 64-bit integer.

    Derived with BLAKE2b, so every process (and every release) computes the same key; Python's ``hash()`` is
    salted per process and would make the lock useless across runs.
    """
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


@contextmanager
def locked_transaction(engine: sa.Engine, lock_names: Iterable[str]) -> Iterator[sa.Connection]:
    """A transaction holding exclusive named locks from before its first read until it commits.

    For read-modify-write work that parallel runs would otherwise interleave (the later writer dropping the
    earlier one's change). PostgreSQL: transaction-level advisory locks on ``lock_key``, taken in ascending key
    order (so two transactions needing overlapping sets cannot deadlock), at READ COMMITTED so the reads that
    follow see every row committed before the lock was granted. SQLite: ``BEGIN IMMEDIATE`` takes the database
    write lock before the first read (SQLite has no finer lock), so the whole read-compute-write is one writer.
    """
    dialect = engine.dialect.name
    if dialect not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"this write needs a lock the warehouse can hold; {dialect} is not supported "
                                  "(use SQLite or PostgreSQL)")
    with engine.connect() as connection:
        if dialect == "postgresql":
            connection = connection.execution_options(isolation_level="READ COMMITTED")
            with connection.begin():
                for key in sorted({lock_key(name) for name in lock_names}):
                    connection.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
                yield connection
        else:
            with connection.begin():
                # pysqlite opens transactions lazily (at the first write): begin the write transaction ourselves.
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                yield connection


class WarehouseSchemaError(RuntimeError):
    """A warehouse table lacks columns this version writes (created by an older version)."""


# (database URL, table) pairs whose columns were checked in this process: a table's columns do not change under a
# running pipeline, and the check would otherwise inspect the catalogue on every write.
_checked_tables: set[tuple[str, str]] = set()


def ensure_tables(engine: sa.Engine, tables: Iterable[sa.Table] | None = None) -> None:
    """Create missing tables, and refuse, with the statements that fix it, a table an older version created
    without some of today's columns (an INSERT would otherwise fail with the driver's bare "no such column").

    On PostgreSQL, days ingested in parallel would race on CREATE TABLE (a unique violation in pg_type); an
    advisory lock held for the transaction makes the first creator win cleanly."""
    chosen = list(tables) if tables is not None else list(metadata.sorted_tables)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CREATE_TABLES_LOCK})
        metadata.create_all(connection, tables=chosen, checkfirst=True)
        unchecked = [t for t in chosen if (str(engine.url), t.name) not in _checked_tables]
        if unchecked:
            inspector = sa.inspect(connection)
            problems = []
            for table in unchecked:
                present = {column["name"] for column in inspector.get_columns(table.name)}
                missing = [column for column in table.columns if column.name not in present]
                if missing:
                    problems.append("; ".join(
                        f"ALTER TABLE {table.name} ADD COLUMN {column.name} "
                        f"{column.type.compile(dialect=connection.dialect)};" for column in missing))
                else:
                    _checked_tables.add((str(engine.url), table.name))
            if problems:
                raise WarehouseSchemaError(
                    f"warehouse {safe_url(str(engine.url))}: tables created by an older version lack columns this "
                    f"version writes; add them (docs/warehouse.md lists every column) and re-run: "
                    + " ".join(problems))


def replace_partitions(engine: sa.Engine, writes: Sequence[PartitionWrite],
                       before_commit: Callable[[], None] | None = None) -> None:
    """Apply every write in a single transaction: all tables move to the new state together, or none does.

    ``before_commit`` runs inside the transaction after every statement succeeded, just before COMMIT; if it
    raises, the transaction rolls back. ``Lake.publishing`` passes its file swap here (old-or-new in both stores).
    """
    ensure_tables(engine, [w.table for w in writes])
    with engine.begin() as connection:
        for write in writes:
            condition = sa.and_(*(write.table.c[column] == value for column, value in write.key.items()))
            connection.execute(sa.delete(write.table).where(condition))
            if write.rows:
                connection.execute(sa.insert(write.table), [dict(row) for row in write.rows])
        if before_commit is not None:
            before_commit()
