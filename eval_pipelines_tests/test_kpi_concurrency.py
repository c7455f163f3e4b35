"""Parallel writers of the KPI tables on a real SQLite file and a real PostgreSQL server.

Production runs up to four warehouse steps at once (deploy/dagster.yaml, pool ``warehouse``), so two
``kpi_rollups`` runs for two days of the same week can overlap. Each reads the period's ``kpi_daily`` rows and
rewrites the week: without a lock held from the read to the write, the run that read first and wrote last
drops the other day. The interleaving is forced deterministically: run A pauses between its read and its write
until run B (the second day's ``kpi_daily`` write, then its rollup) has finished or has been held off for
``HOLD_S`` seconds.
"""

from __future__ import annotations

import threading
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

import eval_pipelines.kpis.store as store
from eval_pipelines.kpis.metrics import daily_kpis
from eval_pipelines.kpis.store import period_lock_name, read_rows, refresh_rollups, write_daily
from eval_pipelines.kpis.tables import kpi_monthly, kpi_weekly
from eval_pipelines.lake import Lake
from eval_pipelines.warehouse.core import create_warehouse_engine, lock_key
from eval_pipelines_tests.postgres_server import (  # noqa: F401
    postgres_database,
    postgres_server,
)
from eval_pipelines_tests.test_kpi_metrics import IMPACT, fixture_cases

MONDAY = date(2026, 3, 2)
TUESDAY = MONDAY + timedelta(days=1)
HOLD_S = 1.5  # how long run A keeps B waiting when B cannot get through (only then: B done releases A at once)


@pytest.fixture(params=("sqlite", "postgresql"))
def warehouse_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.db'}"
    return request.getfixturevalue("postgres_database")


def _blocked_on_advisory_lock(monitor: sa.Engine) -> bool:
    """True when some PostgreSQL session waits for an advisory lock (B queued behind A's period lock)."""
    query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND wait_event = 'advisory'")
    with monitor.connect() as connection:
        return bool(connection.execute(query).scalar())


def test_two_parallel_rollups_of_one_week_keep_both_days(warehouse_url: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    lake = Lake(str(tmp_path / "lake"))
    cases = fixture_cases()
    for day in (MONDAY, TUESDAY):
        lake.write("labeled_cases", day.isoformat(), cases)
    engine_a, engine_b, monitor = (create_warehouse_engine(warehouse_url) for _ in range(3))
    write_daily(engine_a, daily_kpis(cases, IMPACT, MONDAY), MONDAY)
    a_has_read, b_done = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    resumed: list[str] = []  # why A went on to its write
    real_rollup = store.rollup

    def rollup_then_pause(*args, **kwargs):
        if threading.current_thread().name == "A" and not a_has_read.is_set():
            a_has_read.set()  # A has read kpi_daily (Monday only) and not written yet
            deadline = threading.Event()
            timer = threading.Timer(HOLD_S, deadline.set)
            timer.start()
            while not (b_done.is_set() or deadline.is_set()):
                if monitor.dialect.name == "postgresql" and _blocked_on_advisory_lock(monitor):
                    resumed.append("B waits for the period lock")
                    break
                b_done.wait(0.02)
            timer.cancel()
            resumed.append("B finished first" if b_done.is_set() else "B held off")
        return real_rollup(*args, **kwargs)

    monkeypatch.setattr(store, "rollup", rollup_then_pause)

    def run_a() -> None:
        try:
            refresh_rollups(engine_a, lake, MONDAY, 0.95)
        except BaseException as error:  # surfaced in the main thread
            errors.append(error)
            a_has_read.set()

    def run_b() -> None:
        try:
            assert a_has_read.wait(30)
            write_daily(engine_b, daily_kpis(cases, IMPACT, TUESDAY), TUESDAY)
            refresh_rollups(engine_b, lake, TUESDAY, 0.95)
        except BaseException as error:
            errors.append(error)
        finally:
            b_done.set()

    threads = [threading.Thread(target=run_a, name="A"), threading.Thread(target=run_b, name="B")]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
        assert not errors, errors
        assert "B finished first" not in resumed, resumed  # B could not write the week between A's read and write
        if monitor.dialect.name == "postgresql":
            assert resumed[0] == "B waits for the period lock", resumed
        for table, column in ((kpi_weekly, "week_start"), (kpi_monthly, "month_start")):
            rows = read_rows(engine_a, table)
            assert set(rows[column]) == {MONDAY if table is kpi_weekly else MONDAY.replace(day=1)}
            assert int(rows["cases"].sum()) == 2 * len(cases), table.name  # both days, not the last writer's
            assert rows["days_with_data"].max() == 2, table.name
    finally:
        for engine in (engine_a, engine_b, monitor):
            engine.dispose()


def test_the_period_lock_key_is_a_stable_signed_64_bit_integer():
    """A PostgreSQL advisory lock key must be the same in every process: not Python's salted ``hash()``."""
    key = lock_key(period_lock_name(kpi_weekly, MONDAY))
    assert key == 4712532857517837710  # pinned: computed once, must never change between processes or releases
    assert -2**63 <= key < 2**63
    assert len({lock_key(period_lock_name(t, d)) for t in (kpi_weekly, kpi_monthly)
                for d in pd.date_range("2020-01-01", periods=400).date}) == 800
