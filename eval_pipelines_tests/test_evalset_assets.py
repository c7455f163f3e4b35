"""The eval_set asset through real Dagster execution on demo data: versions, immutability, metadata, automation."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from eval_pipelines.demo.generator import generate_logs
from eval_pipelines.evalsets.assets import DESIGN_CHECK, design_problems, eval_set
from eval_pipelines.evalsets.build import sample_cases
from eval_pipelines.evalsets.tables import eval_set_cases, eval_set_strata, eval_set_versions
from eval_pipelines.ingestion.assets import production_logs
from eval_pipelines.labeling.assets import labeled_cases
from eval_pipelines_tests.conftest import Project, make_project
from eval_pipelines_tests.test_evalset_design import cases_frame, config

START = date(2026, 10, 1)
DAYS = [(START + timedelta(days=i)).isoformat() for i in range(4)]
PLAN = {"window_days": 3, "size": 240, "min_per_stratum": 3, "holdout_fraction": 0.25, "seed": 5}


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Project, dg.DagsterInstance]:
    for name in ("EVAL_PIPELINES_WAREHOUSE_URL", "EVAL_PIPELINES_LAKE_DIR", "EVAL_PIPELINES_LANDING_DIR"):
        monkeypatch.delenv(name, raising=False)
    project = make_project(tmp_path, {"eval_set": PLAN})
    generate_logs(project.landing_dir, days=len(DAYS), events_per_day=500, seed=3, start_date=START)
    instance = dg.DagsterInstance.ephemeral()
    for day in DAYS[:3]:
        assert dg.materialize([production_logs, labeled_cases], partition_key=day, resources=project.resources(),
                              instance=instance).success
    return project, instance


def _materialize(project: Project, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    result = dg.materialize([eval_set], resources=project.resources(), instance=instance)
    assert result.success
    return result


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    (event,) = result.get_asset_materialization_events()
    return {key: getattr(value, "value", value) for key, value in event.materialization.metadata.items()}


def _rows(url: str, table: sa.Table) -> list[dict]:
    with sa.create_engine(url).connect() as connection:
        return [dict(row) for row in connection.execute(sa.select(table)).mappings().all()]


def test_eval_set_is_written_once_per_version(demo):
    project, instance = demo
    first = _metadata(_materialize(project, instance))
    assert first["new_version_written"] is True
    assert first["dagster/row_count"] == PLAN["size"]
    assert first["window"] == "2026-10-01 – 2026-10-03"

    versions = _rows(project.warehouse_url, eval_set_versions)
    assert [v["version"] for v in versions] == [first["version"]]
    cases = _rows(project.warehouse_url, eval_set_cases)
    strata = _rows(project.warehouse_url, eval_set_strata)
    assert len(cases) == PLAN["size"] == sum(s["sample"] for s in strata) == versions[0]["size"]
    assert sum(s["population"] for s in strata) == versions[0]["population"] == first["population"]
    assert {c["split"] for c in cases} == {"dev", "holdout"}
    assert all(c["input_text"] is not None and "@" not in c["input_text"] for c in cases)  # masked input, replayable
    assert all(abs(c["weight"] * c["inclusion_prob"] - 1) < 1e-9 for c in cases)

    # Unchanged inputs: same version, nothing new written, the stored row untouched.
    second = _metadata(_materialize(project, instance))
    assert second["version"] == first["version"]
    assert second["new_version_written"] is False
    assert _rows(project.warehouse_url, eval_set_versions) == versions
    assert len(_rows(project.warehouse_url, eval_set_cases)) == PLAN["size"]

    # A new day moves the window: a new version next to the old one.
    assert dg.materialize([production_logs, labeled_cases], partition_key=DAYS[3], resources=project.resources(),
                          instance=instance).success
    third = _metadata(_materialize(project, instance))
    assert third["version"] != first["version"] and third["new_version_written"] is True
    assert third["window"] == "2026-10-02 – 2026-10-04"
    assert {v["version"] for v in _rows(project.warehouse_url, eval_set_versions)} == {first["version"],
                                                                                        third["version"]}


def test_metadata_shows_projection_next_to_the_window_figure(demo):
    project, instance = demo
    result = _materialize(project, instance)
    meta = _metadata(result)
    assert 0 <= meta["projected_ci_low"] <= meta["projected_accuracy"] <= meta["projected_ci_high"] <= 1
    assert meta["projected_interval"].startswith(("Korn–Graubard", "Clopper–Pearson at the Kish"))
    # The window figure is the truth for the frame; a 240-case projection lands near it.
    assert abs(meta["projected_accuracy"] - meta["window_accuracy"]) < 0.1
    assert "projected from the eval set" in meta["accuracy"] and "whole window" in meta["accuracy"]
    assert "| stratum" in meta["strata_table"]
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == DESIGN_CHECK and check.passed
    # The version is the asset's data version, so downstream can tell a refresh from a no-op.
    (event,) = result.get_asset_materialization_events()
    assert event.materialization.tags["dagster/data_version"] == meta["version"]


def test_cron_condition_requests_a_refresh_only_after_the_tick(demo):
    project, instance = demo
    defs = dg.Definitions(assets=[production_logs, labeled_cases, eval_set], resources=project.resources())
    selection = dg.AssetSelection.assets("eval_set")
    # Default cron: Mondays 06:00 UTC. 2026-11-23 is a Monday.
    before = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
    result = dg.evaluate_automation_conditions(defs, instance, asset_selection=selection, evaluation_time=before)
    assert result.total_requested == 0
    # After the tick, once labeled_cases has been updated since the tick, the refresh is requested.
    result = dg.evaluate_automation_conditions(defs, instance, asset_selection=selection,
                                               evaluation_time=datetime(2026, 11, 23, 6, 30, tzinfo=UTC),
                                               cursor=result.cursor)
    assert result.total_requested == 0  # no labeled_cases update since the tick yet
    assert dg.materialize([production_logs, labeled_cases], partition_key=DAYS[3], resources=project.resources(),
                          instance=instance).success
    result = dg.evaluate_automation_conditions(defs, instance, asset_selection=selection,
                                               evaluation_time=datetime.now(UTC) + timedelta(minutes=1),
                                               cursor=result.cursor)
    assert result.total_requested == 1
    # Handled: no second request until the next tick.
    result = dg.evaluate_automation_conditions(defs, instance, asset_selection=selection,
                                               evaluation_time=datetime.now(UTC) + timedelta(minutes=2),
                                               cursor=result.cursor)
    assert result.total_requested == 0


def test_design_check_flags_a_design_that_is_not_the_plan():
    built = sample_cases(cases_frame(3000), config())
    assert design_problems(built, 300, 3) == []
    assert any("allocation sums" in p for p in design_problems(built, 301, 3))
    assert any("fewer than 50" in p for p in design_problems(built, 300, 50))
    skewed = dataclasses.replace(built, strata=built.strata.assign(weight=built.strata["weight"] * 1.1))
    assert any("weights" in p for p in design_problems(skewed, 300, 3))
