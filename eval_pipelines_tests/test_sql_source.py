"""The same production_logs asset reading [D, D+1) of a SQL table instead of landing files."""

from __future__ import annotations

from datetime import datetime

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from eval_pipelines.ingestion.assets import production_logs
from eval_pipelines_tests.conftest import make_project


def source_rows() -> list[dict]:
    stamps = [datetime(2026, 11, 19, 23, 59, 59), datetime(2026, 11, 20, 0, 0, 0), datetime(2026, 11, 20, 13, 5),
              datetime(2026, 11, 20, 23, 59, 59), datetime(2026, 11, 21, 0, 0, 0)]
    return [
        {"id": f"r{i}", "created_at": stamp, "app": "triage", "model": "v3", "tier": "gold", "answer": "billing/low",
         "latency_s": 0.25, "cost": 0.001, "state": "ok", "action": "accepted" if i != 2 else "bogus"}
        for i, stamp in enumerate(stamps)
    ]


@pytest.mark.parametrize("timestamp_kind", ["datetime", "epoch_ms"])
def test_sql_source_reads_exactly_one_day(tmp_path, timestamp_kind):
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    engine = sa.create_engine(source_url)
    rows = source_rows()
    column_type = sa.DateTime() if timestamp_kind == "datetime" else sa.BigInteger()
    if timestamp_kind == "epoch_ms":
        rows = [{**r, "created_at": int(pd.Timestamp(r["created_at"], tz="UTC").timestamp() * 1000)} for r in rows]
    table = sa.Table("events", sa.MetaData(), sa.Column("id", sa.String, primary_key=True),
                     sa.Column("created_at", column_type), *(sa.Column(c, sa.String) for c in
                                                             ("app", "model", "tier", "answer", "state", "action")),
                     sa.Column("latency_s", sa.Float), sa.Column("cost", sa.Float))
    table.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(sa.insert(table), rows)

    project = make_project(tmp_path, {
        "source": {"kind": "sql", "sql": {"url": source_url, "table": "events", "timestamp_column": "created_at"}},
        "mapping": {
            "columns": {"event_id": "id", "timestamp": "created_at", "system": "app", "model_version": "model",
                        "segment": "tier", "ai_output": "answer", "latency_ms": "latency_s", "cost_usd": "cost",
                        "status": "state", "user_action": "action"},
            "scale": {"latency_ms": 1000},
            "timestamp_format": "epoch_ms" if timestamp_kind == "epoch_ms" else "iso8601",
        },
        "features": {"numeric": [], "categorical": []},
    })
    result = dg.materialize([production_logs], partition_key="2026-11-20", resources=project.resources(),
                            raise_on_error=False)
    checks = {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["contract_expectations"] is True
    logs = pd.read_parquet(tmp_path / "lake" / "production_logs" / "2026-11-20.parquet")
    assert sorted(logs["event_id"]) == ["r1", "r3"]  # r2 quarantined; r0 and r4 belong to other days
    assert (logs["latency_ms"] == 250.0).all()
    with sa.create_engine(project.warehouse_url).connect() as connection:
        batch = connection.execute(sa.text("SELECT source_kind, rows_read, rows_valid, rows_quarantined "
                                           "FROM ingestion_batches")).one()
        reason = connection.execute(sa.text("SELECT reason FROM quarantined_events")).scalar_one()
    assert tuple(batch) == ("sql", 3, 2, 1)
    assert "unknown value 'bogus' for user_action" in reason


def test_missing_sql_table_is_named(tmp_path):
    source_url = f"sqlite:///{tmp_path / 'empty.db'}"
    sa.create_engine(source_url).connect().close()
    project = make_project(tmp_path, {
        "source": {"kind": "sql", "sql": {"url": source_url, "table": "nope", "timestamp_column": "ts"}}})
    with pytest.raises(Exception, match=r"source\.sql\.table: table 'nope' not found"):
        dg.materialize([production_logs], partition_key="2026-11-20", resources=project.resources())
