"""Rows as DB-API values, and that they round-trip through a real SQLite table with NULLs where pandas has gaps."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from eval_pipelines.warehouse.core import create_warehouse_engine, insert_records, lock_key


def mixed_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "count": np.array([3, 4], dtype="int64"),
        "flag": np.array([True, False]),
        "ratio": [0.5, math.nan],
        "nullable_int": pd.array([7, None], dtype="Int64"),
        "nullable_float": pd.array([1.5, None], dtype="Float64"),
        "text": pd.Series(["a", None], dtype="str"),
        "mixed": pd.Series([np.float64("nan"), np.int64(2)], dtype=object),
        "at": pd.to_datetime(["2026-11-20T10:00:00Z", None], utc=True),
        "day": [date(2026, 11, 20), None],
    })


def test_every_kind_of_gap_becomes_none_and_every_value_a_python_scalar():
    first, second = insert_records(mixed_frame())
    assert first == {"count": 3, "flag": True, "ratio": 0.5, "nullable_int": 7, "nullable_float": 1.5, "text": "a",
                     "mixed": None, "at": datetime(2026, 11, 20, 10, tzinfo=UTC), "day": date(2026, 11, 20)}
    assert second == {"count": 4, "flag": False, "ratio": None, "nullable_int": None, "nullable_float": None,
                      "text": None, "mixed": 2, "at": None, "day": None}
    assert type(first["count"]) is int and type(first["flag"]) is bool and type(second["mixed"]) is int
    assert type(first["at"]) is datetime and type(first["nullable_int"]) is int


def test_a_column_selection_keeps_its_order_and_an_empty_frame_gives_no_rows():
    assert insert_records(mixed_frame(), ["text", "count"]) == [{"text": "a", "count": 3}, {"text": None, "count": 4}]
    assert insert_records(mixed_frame().iloc[:0]) == []


def test_records_round_trip_through_sqlite_with_nulls(tmp_path: Path):
    engine = create_warehouse_engine(f"sqlite:///{tmp_path / 'w.db'}")
    table = sa.Table("t", sa.MetaData(), sa.Column("ratio", sa.Float), sa.Column("nullable_int", sa.Integer),
                     sa.Column("text", sa.String), sa.Column("at", sa.DateTime(timezone=True)))
    table.create(engine)
    with engine.begin() as connection:
        connection.execute(sa.insert(table), insert_records(mixed_frame(), ["ratio", "nullable_int", "text", "at"]))
        rows = connection.execute(sa.select(table)).all()
    assert rows[1] == (None, None, None, None)
    assert rows[0][:3] == (0.5, 7, "a")


def test_lock_keys_are_stable_signed_64_bit_integers():
    assert lock_key("edge_case_library") == 8261522304273742688  # pinned: the same in every process and release
    assert -2**63 <= lock_key("kpi_weekly:2026-03-02") < 2**63
    assert lock_key("edge_case_library") != lock_key("kpi_weekly:2026-03-02")


def test_a_table_from_an_older_version_is_refused_with_the_statements_that_fix_it(tmp_path):
    from eval_pipelines.review.tables import reviewed_cases
    from eval_pipelines.warehouse.core import WarehouseSchemaError, create_warehouse_engine, ensure_tables

    engine = create_warehouse_engine(f"sqlite:///{tmp_path / 'old.db'}")
    old = sa.MetaData()
    sa.Table(reviewed_cases.name, old, *[sa.Column(c.name, c.type) for c in reviewed_cases.columns
                                         if c.name != "draft_verdict"])
    old.create_all(engine)
    with pytest.raises(WarehouseSchemaError, match="ALTER TABLE reviewed_cases ADD COLUMN draft_verdict VARCHAR"):
        ensure_tables(engine, [reviewed_cases])
    with engine.begin() as connection:
        connection.execute(sa.text("ALTER TABLE reviewed_cases ADD COLUMN draft_verdict VARCHAR(16)"))
    ensure_tables(engine, [reviewed_cases])  # fixed: no error
