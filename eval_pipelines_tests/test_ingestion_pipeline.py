"""production_logs and labeled_cases through real Dagster execution, against the generator's own counts."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from eval_pipelines.demo.generator import generate_logs
from eval_pipelines.ingestion.assets import production_logs
from eval_pipelines.labeling.assets import labeled_cases
from eval_pipelines_tests.conftest import Project

START = date(2026, 10, 1)


@pytest.fixture
def demo_project(project: Project) -> tuple[Project, dict]:
    summary = generate_logs(project.landing_dir, days=3, events_per_day=600, seed=11, start_date=START)
    return project, json.loads(summary.manifest_path.read_text())


def run_day(project: Project, day: str, instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
    return dg.materialize([production_logs, labeled_cases], partition_key=day, resources=project.resources(),
                          instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=False)


def warehouse_state(url: str) -> dict[str, list[tuple]]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        tables = sa.inspect(connection).get_table_names()
        return {t: sorted(map(tuple, connection.execute(sa.text(f'SELECT * FROM "{t}"')).all()), key=repr)
                for t in tables}


def test_a_demo_day_matches_the_generator(demo_project):
    project, manifest = demo_project
    day = "2026-10-02"
    expected = manifest["days"][day]
    instance = dg.DagsterInstance.ephemeral()
    result = run_day(project, day, instance)
    assert result.success
    # issue 14: every check evaluation names its day, in the result and in the instance the UI reads
    assert {e.partition for e in result.get_asset_check_evaluations()} == {day}
    for key in production_logs.check_keys:
        (record,) = instance.event_log_storage.get_asset_check_execution_history(key, limit=5)
        assert record.partition == day, key.to_user_string()

    state = warehouse_state(project.warehouse_url)
    (batch,) = [row for row in state["ingestion_batches"]]
    columns = ["partition_date", "source_kind", "files_read", "files_failed", "rows_read", "rows_valid",
               "rows_quarantined", "rows_duplicate", "rows_conflicting", "rows_filtered", "rows_joined",
               "quarantine_rate",
               "lake_path"]
    batch = dict(zip(columns, batch, strict=True))
    assert batch["rows_read"] == batch["rows_valid"] == expected["events"]
    assert batch["rows_quarantined"] == batch["rows_duplicate"] == batch["rows_conflicting"] == 0
    assert batch["rows_filtered"] == batch["rows_joined"] == 0  # JSONL logs: no span filter, no feedback join
    assert batch["files_failed"] == 0
    assert batch["files_read"] == len(expected["files"])
    assert state["quarantined_events"] == []

    logs = pq.read_table(Path(batch["lake_path"])).to_pandas()
    assert len(logs) == expected["events"]
    assert logs["event_id"].is_unique
    assert logs["model_version"].value_counts().to_dict() == {k: v for k, v in expected["model_version"].items() if v}
    assert logs["status"].value_counts().to_dict() == {k: v for k, v in expected["status"].items() if v}
    actions = logs["user_action"].fillna("none").value_counts().to_dict()
    assert actions == {k: v for k, v in expected["user_action"].items() if v}
    per_file = logs["source_file"].value_counts().to_dict()
    assert per_file == expected["files"]

    cases = pq.read_table(project.root / "lake" / "labeled_cases" / f"{day}.parquet").to_pandas()
    assert len(cases) == expected["events"]
    assert (cases["is_labeled"] == cases["label"].notna()).all()
    # No raw PII survives into labeled_cases.
    assert not cases["input_text"].str.contains(r"[\w.+-]+@[\w-]+\.\w+", regex=True, na=False).any()

    checks = {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"contract_expectations": True, "quarantine_rate": True, "files_readable": True,
                      "no_duplicates_across_days": True, "volume_vs_trailing_days": True}
    materialization = result.asset_materializations_for_node("production_logs")[0]
    assert materialization.metadata["rows_read"].value == expected["events"]


def test_rematerialising_a_day_is_idempotent(demo_project):
    project, _ = demo_project
    day = "2026-10-01"
    with dg.instance_for_test() as instance:
        assert run_day(project, day, instance).success
        first_state = warehouse_state(project.warehouse_url)
        first_lake = {p.relative_to(project.root): p.read_bytes() for p in (project.root / "lake").rglob("*.parquet")}
        assert run_day(project, day, instance).success
    assert warehouse_state(project.warehouse_url) == first_state
    second_lake = {p.relative_to(project.root): p.read_bytes() for p in (project.root / "lake").rglob("*.parquet")}
    assert second_lake == first_lake


def test_a_bad_day_fails_the_blocking_check_and_stops_labeling(project: Project):
    day_dir = project.landing_dir / "2026-10-05"
    day_dir.mkdir(parents=True)
    good = {"event_id": "g1", "timestamp": "2026-10-05T09:00:00Z", "system": "s", "model_version": "v1",
            "segment": "smb", "ai_output": "billing/low", "latency_ms": 10, "cost_usd": 0.0, "status": "ok"}
    lines = [json.dumps(good)] + ['{"broken": '] * 3
    (day_dir / "part-000.jsonl").write_text("\n".join(lines) + "\n")
    result = run_day(project, "2026-10-05")
    checks = {e.asset_check_key.name: e for e in result.get_asset_check_evaluations()}
    assert checks["quarantine_rate"].passed is False
    assert "3 of 4 rows quarantined" in checks["quarantine_rate"].description
    assert result.asset_materializations_for_node("labeled_cases") == []
    with sa.create_engine(project.warehouse_url).connect() as connection:
        rows = connection.execute(sa.text("SELECT line_number, reason FROM quarantined_events ORDER BY 1")).all()
    assert [r[0] for r in rows] == [2, 3, 4] and all("unparseable JSON" in r[1] for r in rows)
    assert len(pd.read_parquet(project.root / "lake" / "production_logs" / "2026-10-05.parquet")) == 1


def test_an_unreadable_file_fails_the_files_check_and_stops_labeling(demo_project):
    """A truncated .gz loses every row it held: the day must not look complete to downstream assets."""
    import gzip

    project, manifest = demo_project
    day = "2026-10-03"
    payload = gzip.compress(b"".join(f'{{"event_id": "z{i}"}}\n'.encode() for i in range(5000)))
    (project.landing_dir / day / "late-export.jsonl.gz").write_bytes(payload[: len(payload) // 2])
    result = run_day(project, day)
    checks = {e.asset_check_key.name: e for e in result.get_asset_check_evaluations()}
    assert checks["files_readable"].passed is False
    assert "late-export.jsonl.gz" in checks["files_readable"].description
    assert checks["quarantine_rate"].passed is True  # the rows that were read are fine; the lost ones are not
    assert result.asset_materializations_for_node("labeled_cases") == []
    materialization = result.asset_materializations_for_node("production_logs")[0]
    assert materialization.metadata["files_failed"].value == 1
    assert materialization.metadata["rows_read"].value == manifest["days"][day]["events"]


def test_the_same_event_in_two_day_folders_warns_without_blocking(demo_project):
    """An export near midnight copied into the next day's folder: both copies are valid (within the timestamp
    tolerance), per-day deduplication keeps both, and the cross-day check names them whichever day runs second."""
    project, _ = demo_project
    first, second = "2026-10-01", "2026-10-02"
    logs = pd.concat([pd.read_json(p, lines=True, dtype=False) for p in (project.landing_dir / first).glob("*.jsonl")])
    late = logs.sort_values("timestamp").tail(3).copy()
    late["event_id"] = ["late-0", "late-1", "late-2"]
    late["timestamp"] = ["2026-10-01T23:40:00Z", "2026-10-01T23:50:00Z", "2026-10-01T21:00:00Z"]
    (project.landing_dir / first / "late.jsonl").write_text(late.to_json(orient="records", lines=True))
    (project.landing_dir / second / "copied.jsonl").write_text(late.iloc[:2].to_json(orient="records", lines=True))

    with dg.instance_for_test() as instance:
        assert run_day(project, first, instance).success
        result = run_day(project, second, instance)
        assert result.success  # a warning: labeled_cases still runs
        assert result.asset_materializations_for_node("labeled_cases")
        check = {e.asset_check_key.name: e for e in result.get_asset_check_evaluations()}["no_duplicates_across_days"]
        assert check.passed is False and check.severity == dg.AssetCheckSeverity.WARN
        assert check.metadata["duplicates"].value == 2
        assert check.metadata["examples"].value == "late-0, late-1"
        assert f"2 also in {first}" in check.description and "not ingested yet: 2026-10-03" in check.description

        again = run_day(project, first, instance)  # now the neighbour exists, so the earlier day sees it too
        check = {e.asset_check_key.name: e for e in again.get_asset_check_evaluations()}["no_duplicates_across_days"]
        assert check.passed is False and check.metadata["duplicates"].value == 2
