"""Issue 15 item 10: the lake and the warehouse move together, old-or-new, whatever fails in between.

Faults are injected where they happen in production: ``os.replace`` (the rename into place), a failing statement,
and a failure after the swap but before COMMIT. After each, both stores must show the old state.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from eval_pipelines import lake as lake_module
from eval_pipelines.ingestion.assets import production_logs
from eval_pipelines.lake import Lake
from eval_pipelines.warehouse.core import PartitionWrite, replace_partitions
from eval_pipelines_tests.conftest import Project
from eval_pipelines_tests.faults import fail_first_call, fail_first_rename
from eval_pipelines_tests.test_ingest import event, write_jsonl

DAY = date(2026, 11, 20)
# Its own MetaData: the project's registry lists the real warehouse tables only (docs/warehouse.md checks it).
TEST_METADATA = sa.MetaData()
numbers = sa.Table("lake_test_numbers", TEST_METADATA, sa.Column("day", sa.Date, primary_key=True),
                   sa.Column("n", sa.Integer, primary_key=True))


def state(lake: Lake, engine: sa.Engine) -> tuple[list[int], list[int]]:
    in_lake = lake.read("numbers", DAY.isoformat())["n"].tolist() if lake.exists("numbers", DAY.isoformat()) else []
    with engine.connect() as connection:
        in_warehouse = sorted(connection.execute(sa.select(numbers.c.n)).scalars())
    return in_lake, in_warehouse


def publish(lake: Lake, engine: sa.Engine, values: list[int], fail_before_commit: bool = False) -> None:
    with lake.publishing() as publication:
        publication.stage_table("numbers", DAY.isoformat(), pd.DataFrame({"n": values}))

        def swap_then_maybe_fail() -> None:
            publication.publish()
            if fail_before_commit:
                raise OSError("the COMMIT failed")  # stands for a failed COMMIT after the swap

        replace_partitions(engine, [PartitionWrite(numbers, {"day": DAY}, [{"day": DAY, "n": v} for v in values])],
                           before_commit=swap_then_maybe_fail)


@pytest.fixture
def stores(tmp_path: Path) -> tuple[Lake, sa.Engine]:
    lake, engine = Lake(str(tmp_path / "lake")), sa.create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    TEST_METADATA.create_all(engine)
    publish(lake, engine, [1, 2, 3])
    return lake, engine


def leftovers(lake: Lake) -> list[str]:
    return sorted(p for p in lake.fs.find(lake.root) if p.endswith((".tmp", ".old")))


def test_success_moves_both_and_leaves_no_temporary_file(stores):
    lake, engine = stores
    publish(lake, engine, [4, 5])
    assert state(lake, engine) == ([4, 5], [4, 5]) and leftovers(lake) == []


def test_a_failed_rename_leaves_both_old(stores, monkeypatch: pytest.MonkeyPatch):
    lake, engine = stores
    monkeypatch.setattr(lake_module.os, "replace", fail_first_rename(f"{DAY}.parquet", "disk full"))
    with pytest.raises(OSError, match="disk full"):
        publish(lake, engine, [4, 5])
    assert state(lake, engine) == ([1, 2, 3], [1, 2, 3]) and leftovers(lake) == []


def test_a_failure_after_the_swap_puts_the_old_file_back(stores):
    lake, engine = stores
    with pytest.raises(OSError, match="COMMIT"):
        publish(lake, engine, [4, 5], fail_before_commit=True)
    assert state(lake, engine) == ([1, 2, 3], [1, 2, 3]) and leftovers(lake) == []


def test_a_failed_statement_never_touches_the_lake(stores):
    lake, engine = stores
    with pytest.raises(sa.exc.IntegrityError):
        publish(lake, engine, [7, 7])  # duplicate primary key
    assert state(lake, engine) == ([1, 2, 3], [1, 2, 3]) and leftovers(lake) == []


def test_a_new_partition_is_removed_again_when_the_commit_fails(tmp_path: Path):
    lake, engine = Lake(str(tmp_path / "lake")), sa.create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    TEST_METADATA.create_all(engine)
    with pytest.raises(OSError):
        publish(lake, engine, [1], fail_before_commit=True)
    assert state(lake, engine) == ([], []) and leftovers(lake) == []


@pytest.mark.parametrize("fault", ["rename", "write"])
def test_production_logs_stays_old_or_new_when_the_lake_fails(project: Project, monkeypatch, fault: str):
    """Before: an OSError on the lake write left ingestion_batches at the new count while the lake kept the old
    (the warehouse was committed first, the IO manager wrote the Parquet afterwards)."""
    day_dir = project.landing_dir / DAY.isoformat()
    write_jsonl(day_dir / "a.jsonl", [event(f"e{i}") for i in range(3)])

    def run() -> dg.ExecuteInProcessResult:
        return dg.materialize([production_logs], partition_key=DAY.isoformat(), resources=project.resources(),
                              instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)

    def both() -> tuple[int, int]:
        engine = sa.create_engine(project.warehouse_url)
        with engine.connect() as connection:
            batch = connection.execute(sa.text("SELECT rows_valid FROM ingestion_batches")).scalar_one()
        lake_file = project.root / "lake" / "production_logs" / f"{DAY}.parquet"
        return batch, pq.read_table(lake_file).num_rows

    assert run().success and both() == (3, 3)
    write_jsonl(day_dir / "b.jsonl", [event("e3")])
    if fault == "rename":
        monkeypatch.setattr(lake_module.os, "replace",
                            fail_first_rename(f"production_logs/{DAY}.parquet", "injected: lake rename failed"))
    else:
        monkeypatch.setattr(lake_module.pq, "write_table",
                            fail_first_call(lake_module.pq.write_table, "injected: lake write failed"))
    assert not run().success
    assert both() == (3, 3)  # old in both
    assert run().success and both() == (4, 4)  # new in both
