"""``eval-pipelines gate`` prints the run's time in UTC whatever zone the warehouse session returns it in."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa
import yaml

from eval_pipelines.scoring.cli import register, utc
from eval_pipelines.scoring.tables import RUN_TABLES, release_gates
from eval_pipelines.warehouse.core import ensure_tables
from eval_pipelines_tests.conftest import make_project
from eval_pipelines_tests.postgres_server import PostgresServer

SCORED_AT = datetime(2026, 10, 8, 6, 12, 9, tzinfo=UTC)


def test_utc_normalises_aware_and_naive_timestamps():
    paris = SCORED_AT.astimezone(ZoneInfo("Europe/Paris"))
    assert paris.hour == 8
    assert utc(paris) == pd.Timestamp(SCORED_AT) and str(utc(paris).tz) == "UTC"
    assert utc(SCORED_AT.replace(tzinfo=None)) == pd.Timestamp(SCORED_AT)  # SQLite: the UTC wall clock as written


def test_gate_cli_prints_utc_from_a_postgresql_session_in_another_zone(
        tmp_path, monkeypatch, capsys, postgres_server: PostgresServer):
    """A real PostgreSQL session in America/New_York returns created_at as 02:12:09-04:00; the CLI says 06:12:09
    UTC (it used to print 02:12:09 labelled UTC)."""
    for name in ("EVAL_PIPELINES_WAREHOUSE_URL", "EVAL_PIPELINES_LAKE_DIR", "EVAL_PIPELINES_LANDING_DIR"):
        monkeypatch.delenv(name, raising=False)
    url = postgres_server.create_database("scoring_cli_utc")
    project = make_project(tmp_path)
    config = yaml.safe_load(project.config_path.read_text())
    config["storage"]["warehouse_url"] = url
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    engine = sa.create_engine(url)
    ensure_tables(engine, RUN_TABLES)
    with engine.begin() as connection:
        connection.execute(sa.insert(release_gates), [{
            "run_id": "run-utc", "position": 0, "candidate": "keyword_rules", "context": "default",
            "created_at": SCORED_AT, "eval_set_version": "v1", "criterion": "accuracy", "value": 0.8, "op": "≥",
            "threshold": 0.6, "passed": True, "detail": "d", "gate_passed": True}])  # verdict NULL: from passed
    engine.dispose()
    monkeypatch.setenv("PGTZ", "America/New_York")  # libpq: the session's time zone
    with sa.create_engine(url).connect() as connection:
        stored = connection.execute(sa.select(release_gates.c.created_at)).scalar_one()
    assert stored.utcoffset() is not None and stored.hour == 2  # what PostgreSQL hands back

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["gate", "--candidate", "keyword_rules"])
    args.config = str(project.config_path)
    code = args.handler(args)
    out = capsys.readouterr().out
    assert code == 0
    assert "run run-utc at 2026-10-08 06:12:09 UTC" in out
    assert "| PASS " in out  # a row stored without a verdict is shown from its passed flag
