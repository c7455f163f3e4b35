"""The edge_case_library asset through real Dagster execution on demo data: incremental, idempotent, automated."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from eval_pipelines.demo.generator import generate_logs
from eval_pipelines.edge_cases.assets import LEDGER_CHECK, edge_case_library, pending_days
from eval_pipelines.edge_cases.tables import edge_case_days, edge_case_events, edge_case_merges, edge_cases
from eval_pipelines.ingestion.assets import production_logs
from eval_pipelines.labeling.assets import labeled_cases
from eval_pipelines_tests.conftest import Project

START = date(2026, 10, 1)
DAYS = [(START + timedelta(days=i)).isoformat() for i in range(3)]


@pytest.fixture
def demo(project: Project) -> tuple[Project, dg.DagsterInstance]:
    generate_logs(project.landing_dir, days=len(DAYS), events_per_day=800, seed=9, start_date=START)
    instance = dg.DagsterInstance.ephemeral()
    for day in DAYS[:2]:
        upstream(project, instance, day)
    return project, instance


def upstream(project: Project, instance: dg.DagsterInstance, day: str) -> None:
    assert dg.materialize([production_logs, labeled_cases], partition_key=day, resources=project.resources(),
                          instance=instance).success


def library_run(project: Project, instance: dg.DagsterInstance, remerge: list[str] | None = None) -> dict:
    run_config = {"ops": {"edge_case_library": {"config": {"remerge_days": remerge or []}}}}
    result = dg.materialize([edge_case_library], resources=project.resources(), instance=instance,
                            run_config=run_config)
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == LEDGER_CHECK and check.passed
    (event,) = result.get_asset_materialization_events()
    return {key: getattr(value, "value", value) for key, value in event.materialization.metadata.items()}


def table(url: str, t: sa.Table) -> list[dict]:
    with sa.create_engine(url).connect() as connection:
        return [dict(row) for row in connection.execute(sa.select(t)).mappings().all()]


def test_library_merges_days_incrementally_and_never_double_counts(demo):
    project, instance = demo
    first = library_run(project, instance)
    assert first["days_merged_this_run"] == 2 and first["days_in_library"] == 2
    entries = table(project.warehouse_url, edge_cases)
    assert first["entries"] == first["dagster/row_count"] == len(entries) > 0
    occurrences = sum(e["occurrences"] for e in entries)
    assert occurrences == first["occurrences"] == sum(r["occurrences"] for r in table(project.warehouse_url,
                                                                                      edge_case_days))
    assert {m["partition_date"].isoformat() for m in table(project.warehouse_url, edge_case_merges)} == set(DAYS[:2])
    header = first["by_failure_mode_and_status"].splitlines()[0]
    assert [c.strip() for c in header.strip("|").split("|")] == ["failure_mode", "open", "fixed", "regressed",
                                                                 "entries", "occurrences"]
    assert "| first_seen" in first["newest_entries"]
    created = [e for e in table(project.warehouse_url, edge_case_events) if e["to_status"] == "open"]
    assert len(created) == len(entries)

    # Nothing new upstream: nothing merged, nothing changed.
    idle = library_run(project, instance)
    assert idle["days_merged_this_run"] == 0
    assert table(project.warehouse_url, edge_cases) == entries

    # labeled_cases of day 1 re-materialised (same content): the day is merged again, counts do not double.
    upstream(project, instance, DAYS[0])
    rerun = library_run(project, instance)
    assert rerun["days_merged_this_run"] == 1
    after = table(project.warehouse_url, edge_cases)
    assert sorted((e["entry_id"], e["occurrences"], e["days_seen"]) for e in after) == sorted(
        (e["entry_id"], e["occurrences"], e["days_seen"]) for e in entries)

    # A new day: only that day is merged; older entries change only in their counts and last_seen.
    upstream(project, instance, DAYS[2])
    third = library_run(project, instance)
    assert third["days_merged_this_run"] == 1 and third["days_in_library"] == 3
    newer = {e["entry_id"]: e for e in table(project.warehouse_url, edge_cases)}
    moving = {"occurrences", "days_seen", "last_seen"}
    for old in entries:
        new = newer[old["entry_id"]]
        assert {k: v for k, v in new.items() if k not in moving} == {k: v for k, v in old.items() if k not in moving}
        assert new["occurrences"] >= old["occurrences"]
    assert third["occurrences"] > occurrences

    # On demand: re-merge a day even though its file did not change.
    forced = library_run(project, instance, remerge=[DAYS[1]])
    assert forced["days_merged_this_run"] == 1 and forced["occurrences"] == third["occurrences"]


def test_library_follows_new_labeled_cases_days(demo):
    project, instance = demo
    defs = dg.Definitions(assets=[production_logs, labeled_cases, edge_case_library], resources=project.resources())
    selection = dg.AssetSelection.assets("edge_case_library")
    now = datetime.now(UTC)
    result = dg.evaluate_automation_conditions(defs, instance, asset_selection=selection, evaluation_time=now)
    cursor = result.cursor
    library_run(project, instance)
    result = dg.evaluate_automation_conditions(defs, instance, asset_selection=selection, cursor=cursor,
                                               evaluation_time=now + timedelta(minutes=1))
    assert result.total_requested == 0  # handled: the library ran after the last update
    upstream(project, instance, DAYS[2])
    result = dg.evaluate_automation_conditions(defs, instance, asset_selection=selection, cursor=result.cursor,
                                               evaluation_time=datetime.now(UTC) + timedelta(minutes=2))
    assert result.total_requested == 1  # a new day arrived


def test_pending_days():
    available = {"2026-10-01": "a", "2026-10-02": "b", "2026-10-03": "c"}
    assert pending_days(available, {}) == list(available)
    assert pending_days(available, {"2026-10-01": "a", "2026-10-02": "x"}) == ["2026-10-02", "2026-10-03"]
    assert pending_days(available, dict(available), ["2026-10-01"]) == ["2026-10-01"]


def test_unknown_remerge_day_fails_clearly(demo, tmp_path: Path):
    project, instance = demo
    run_config = {"ops": {"edge_case_library": {"config": {"remerge_days": ["2030-01-01"]}}}}
    result = dg.materialize([edge_case_library], resources=project.resources(), instance=instance,
                            run_config=run_config, raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("edge_case_library")
    assert failure is not None and "2030-01-01" in str(failure.error)
