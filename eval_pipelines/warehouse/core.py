"""Engine creation and the one write pattern every warehouse table uses: replace a partition in one transaction.

Readers (BI tools, the CLI) therefore see a day either entirely old or entirely new, never half-written, and
re-materialising a partition never duplicates rows. SQLAlchemy Core only, values always bound as parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

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


def safe_url(engine_or_url: sa.Engine | str) -> str:
    """The URL with any password masked, for logs, metadata and error messages."""
    url = engine_or_url.url if isinstance(engine_or_url, sa.Engine) else sa.make_url(engine_or_url)
    return url.render_as_string(hide_password=True)


# Any constant: serialises first-time table creation across concurrent runs ("eval").
_CREATE_TABLES_LOCK = 0x6576616C


def ensure_tables(engine: sa.Engine, tables: Iterable[sa.Table] | None = None) -> None:
    """Create missing tables. On PostgreSQL, days ingested in parallel would race on CREATE TABLE (a unique
    violation in pg_type); an advisory lock held for the transaction makes the first creator win cleanly."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CREATE_TABLES_LOCK})
        metadata.create_all(connection, tables=list(tables) if tables is not None else None, checkfirst=True)


def replace_partitions(engine: sa.Engine, writes: Sequence[PartitionWrite]) -> None:
    """Apply every write in a single transaction: all tables move to the new state together, or none does."""
    ensure_tables(engine, [w.table for w in writes])
    with engine.begin() as connection:
        for write in writes:
            condition = sa.and_(*(write.table.c[column] == value for column, value in write.key.items()))
            connection.execute(sa.delete(write.table).where(condition))
            if write.rows:
                connection.execute(sa.insert(write.table), [dict(row) for row in write.rows])
