"""The edge-case library in the warehouse: load, persist a day's merge, record a scored run's results.

Each write is one transaction (SQLAlchemy Core, values bound). A merge writes the count columns of the entries it
touched and inserts new ones; a scored run writes only the lifecycle columns. Both hold the library lock
(``LIBRARY_LOCK``) while they write, and a scored run also while it reads the entries it moves, so a merge and
a scored run running at the same time queue instead of undoing each other's work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from eval_pipelines.edge_cases.library import (
    COUNT_COLUMNS,
    ENTRY_COLUMNS,
    EVENT_COLUMNS,
    LIFECYCLE_COLUMNS,
    DayMerge,
    LifecycleUpdate,
    RerunBasis,
    apply_run_results,
    conform_entries,
    empty_entries,
    rerun_basis_from_ledger,
)
from eval_pipelines.edge_cases.tables import (
    EDGE_CASE_TABLES,
    edge_case_days,
    edge_case_events,
    edge_case_merges,
    edge_cases,
)
from eval_pipelines.warehouse.core import ensure_tables, insert_records, locked_transaction

_CHUNK = 500  # ids per IN (...) list: far below every backend's bound-parameter limit
# Held by every read-modify-write of the library (a day's merge, a scored run's lifecycle update).
LIBRARY_LOCK = "edge_case_library"


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start: start + _CHUNK]


def _frame(rows: Sequence[Any], columns: Sequence[str]) -> pd.DataFrame:
    """Result rows (tuples in ``columns`` order, or mappings) as a frame."""
    if rows and isinstance(rows[0], Mapping):
        return pd.DataFrame([dict(row) for row in rows], columns=list(columns))
    return pd.DataFrame.from_records([tuple(row) for row in rows], columns=list(columns))


def load_entries(engine: sa.Engine, entry_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """The library (or the given entries) with every column, signatures included."""
    ensure_tables(engine, EDGE_CASE_TABLES)
    with engine.connect() as connection:
        return _select_entries(connection, entry_ids)


def _select_entries(connection: sa.Connection, entry_ids: Sequence[str] | None) -> pd.DataFrame:
    if entry_ids is None:
        rows = connection.execute(sa.select(edge_cases).order_by(edge_cases.c.creation_seq)).all()
    else:
        rows = []
        for chunk in _chunks(list(entry_ids)):
            rows += connection.execute(sa.select(edge_cases).where(edge_cases.c.entry_id.in_(chunk))).all()
    return conform_entries(_frame(rows, ENTRY_COLUMNS)) if rows else empty_entries()


def load_library(engine: sa.Engine, statuses: Sequence[str] | None = None,
                 include_empty: bool = False) -> pd.DataFrame:
    """The entries to replay (no signatures), optionally only some statuses, e.g. ``("open", "regressed")``.

    Entries with no occurrence left (``occurrences == 0``) are skipped unless ``include_empty``: a re-merge (e.g.
    after a rule change, with ``remerge_days``) takes a scored entry's cases away but keeps the entry for its
    history, and the same cases may then found a new entry — even one with the same representative event. Replaying
    the empty one would score a failure production no longer has, and twice the same event.
    """
    columns = [c for c in edge_cases.c if c.name not in ("minhash", "dedup_key", "fingerprint")]
    ensure_tables(engine, EDGE_CASE_TABLES)
    query = sa.select(*columns).order_by(edge_cases.c.failure_mode, edge_cases.c.entry_id)
    if statuses is not None:
        query = query.where(edge_cases.c.status.in_(list(statuses)))
    if not include_empty:
        query = query.where(edge_cases.c.occurrences > 0)
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return _frame(rows, [c.name for c in columns])


def merged_days(engine: sa.Engine) -> dict[str, str]:
    """The watermark: ``YYYY-MM-DD`` -> stamp of the labeled_cases file that was merged."""
    ensure_tables(engine, EDGE_CASE_TABLES)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(edge_case_merges.c.partition_date, edge_case_merges.c.source_stamp))
        return {row.partition_date.isoformat(): row.source_stamp for row in rows}


def rerun_basis(engine: sa.Engine, day: str) -> RerunBasis | None:
    """For a day merged before: the entries it contributed to and their totals over all other days.

    None when the day was never merged (or contributed nothing). The SQL only fetches the rows
    :func:`~eval_pipelines.edge_cases.library.rerun_basis_from_ledger` needs — the day's ledger rows and, per entry
    of that day, one row aggregating its other days — and that function (the one the unit tests exercise) builds the
    basis.
    """
    ensure_tables(engine, EDGE_CASE_TABLES)
    when = date.fromisoformat(day)
    days = edge_case_days.c
    columns = ["partition_date", "entry_id", "occurrences", "first_seen", "last_seen", "days_seen"]
    with engine.connect() as connection:
        merged = connection.execute(sa.select(edge_case_merges.c.partition_date)
                                    .where(edge_case_merges.c.partition_date == when)).first()
        if merged is None:
            return None
        on_day = connection.execute(
            sa.select(days.partition_date, days.entry_id, days.occurrences, days.first_seen, days.last_seen,
                      sa.literal(1).label("days_seen"))
            .where(days.partition_date == when)).all()
        day_ids = sa.select(days.entry_id).where(days.partition_date == when)
        others = connection.execute(
            sa.select(sa.null().label("partition_date"), days.entry_id,
                      sa.func.sum(days.occurrences).label("occurrences"),
                      sa.func.min(days.first_seen).label("first_seen"),
                      sa.func.max(days.last_seen).label("last_seen"),
                      sa.func.count().label("days_seen"))
            .where(days.partition_date != when, days.entry_id.in_(day_ids))
            .group_by(days.entry_id)).all()
    ledger = _frame([*on_day, *others], columns)
    return rerun_basis_from_ledger(ledger, day)


def write_merge(engine: sa.Engine, merge: DayMerge, day: str, stamp: str, run_id: str | None,
                at: datetime) -> list[str]:
    """Persist a day's merge in one transaction: ledger partition, new and updated entries, events, watermark.

    Entries the merge removes (left without occurrences, never scored) are deleted only if they are still open and
    unscored: a scored run may have replayed one since the library was loaded. Such a survivor keeps its lifecycle
    but gets the counts the merge computed for it (0 occurrences, 0 days, no first/last seen), so the library still
    agrees with ``edge_case_days``, and no ``removed`` event is written for it. Returns the survivors' ids (the
    caller's in-memory library no longer holds them; reload it if it goes on merging).
    """
    ensure_tables(engine, EDGE_CASE_TABLES)
    when = date.fromisoformat(day)
    entries = merge.entries.set_index("entry_id", drop=False)
    survivors: list[str] = []
    events = merge.events
    with locked_transaction(engine, [LIBRARY_LOCK]) as connection:
        connection.execute(sa.delete(edge_case_days).where(edge_case_days.c.partition_date == when))
        ledger = merge.contribution.assign(partition_date=when)
        if len(ledger):
            connection.execute(sa.insert(edge_case_days),
                               insert_records(ledger, ["partition_date", "entry_id", "occurrences", "first_seen",
                                                 "last_seen", "example_event_ids"]))
        if merge.new_ids:
            connection.execute(sa.insert(edge_cases), insert_records(entries.loc[merge.new_ids], ENTRY_COLUMNS))
        if merge.updated_ids:
            statement = sa.update(edge_cases).where(edge_cases.c.entry_id == sa.bindparam("b_entry_id")).values(
                {column: sa.bindparam(f"b_{column}") for column in COUNT_COLUMNS})
            rows = insert_records(entries.loc[merge.updated_ids], ["entry_id", *COUNT_COLUMNS])
            connection.execute(statement, [{f"b_{k}": v for k, v in row.items()} for row in rows])
        if merge.resigned_ids:
            statement = sa.update(edge_cases).where(edge_cases.c.entry_id == sa.bindparam("b_entry_id")).values(
                minhash=sa.bindparam("b_minhash"), fingerprint=sa.bindparam("b_fingerprint"),
                dedup_key=sa.bindparam("b_dedup_key"))
            rows = insert_records(entries.loc[merge.resigned_ids], ["entry_id", "minhash", "fingerprint", "dedup_key"])
            connection.execute(statement, [{f"b_{k}": v for k, v in row.items()} for row in rows])
        for chunk in _chunks(merge.removed_ids):
            connection.execute(sa.delete(edge_cases).where(
                edge_cases.c.entry_id.in_(chunk), edge_cases.c.status == "open", edge_cases.c.last_run_id.is_(None)))
            # Rows still there were scored after the library was loaded: keep them, with the counts of an empty entry.
            connection.execute(sa.update(edge_cases).where(edge_cases.c.entry_id.in_(chunk)).values(
                occurrences=0, days_seen=0, first_seen=None, last_seen=None))
            survivors += connection.execute(
                sa.select(edge_cases.c.entry_id).where(edge_cases.c.entry_id.in_(chunk))).scalars().all()
        if survivors:
            kept = set(survivors)
            events = events[~(events["entry_id"].isin(kept) & (events["to_status"] == "removed"))]
        if len(events):
            connection.execute(sa.insert(edge_case_events), insert_records(events, EVENT_COLUMNS))
        connection.execute(sa.delete(edge_case_merges).where(edge_case_merges.c.partition_date == when))
        connection.execute(sa.insert(edge_case_merges), [{
            "partition_date": when, "source_stamp": stamp, "cases": int(merge.stats.get("cases", 0)),
            "failing_cases": int(merge.stats.get("failing_cases", 0)), "new_entries": len(merge.new_ids),
            "merged_at": at, "run_id": run_id,
        }])
    return sorted(survivors)


def record_run_results(engine: sa.Engine, results: pd.DataFrame, run_id: str, at: datetime) -> LifecycleUpdate:
    """Apply a scored run's per-entry results (``entry_id``, ``passed``) and persist them in one transaction.

    This is what the scored-runs asset calls after replaying the library: it moves statuses (open → fixed →
    regressed), stamps the run on every replayed entry and appends the transitions to ``edge_case_events``.
    """
    ids = sorted(set(results["entry_id"].astype(str)))
    statement = sa.update(edge_cases).where(edge_cases.c.entry_id == sa.bindparam("b_entry_id")).values(
        {column: sa.bindparam(f"b_{column}") for column in LIFECYCLE_COLUMNS})
    ensure_tables(engine, EDGE_CASE_TABLES)
    # Read and write under the library lock: a day's merge may delete an unscored entry, and another scored run
    # may move the same entry; reading outside the lock let either land between this read and this write.
    with locked_transaction(engine, [LIBRARY_LOCK]) as connection:
        update = apply_run_results(_select_entries(connection, ids), results, run_id, at)
        if len(update.updates):
            rows = insert_records(update.updates, ["entry_id", *LIFECYCLE_COLUMNS])
            connection.execute(statement, [{f"b_{k}": v for k, v in row.items()} for row in rows])
        if len(update.events):
            connection.execute(sa.insert(edge_case_events), insert_records(update.events, EVENT_COLUMNS))
    return update


def load_events(engine: sa.Engine, entry_id: str | None = None) -> pd.DataFrame:
    ensure_tables(engine, EDGE_CASE_TABLES)
    query = sa.select(edge_case_events).order_by(edge_case_events.c.event_id)
    if entry_id is not None:
        query = query.where(edge_case_events.c.entry_id == entry_id)
    with engine.connect() as connection:
        return _frame(connection.execute(query).mappings().all(), [c.name for c in edge_case_events.c])


def ledger_mismatches(engine: sa.Engine) -> int:
    """Entries whose occurrences differ from the sum of their per-day contributions, plus ledger rows of unknown
    entries: 0 when the library and its ledger agree."""
    ensure_tables(engine, EDGE_CASE_TABLES)
    totals = sa.select(edge_case_days.c.entry_id, sa.func.sum(edge_case_days.c.occurrences).label("total")) \
        .group_by(edge_case_days.c.entry_id).subquery()
    with engine.connect() as connection:
        wrong = connection.execute(
            sa.select(sa.func.count()).select_from(
                edge_cases.outerjoin(totals, edge_cases.c.entry_id == totals.c.entry_id))
            .where(sa.func.coalesce(totals.c.total, 0) != edge_cases.c.occurrences)).scalar_one()
        orphans = connection.execute(
            sa.select(sa.func.count()).select_from(
                totals.outerjoin(edge_cases, edge_cases.c.entry_id == totals.c.entry_id))
            .where(edge_cases.c.entry_id.is_(None))).scalar_one()
    return int(wrong) + int(orphans)
