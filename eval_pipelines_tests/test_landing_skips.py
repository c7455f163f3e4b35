"""Issue 15 item 6: every landing path no partition reads is reported; a removed day folder is handled on purpose."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from eval_pipelines import cli
from eval_pipelines.ingestion.assets import production_logs
from eval_pipelines.ingestion.ingest import day_listing, landing_root_skips
from eval_pipelines_tests.conftest import Project
from eval_pipelines_tests.test_ingest import event, write_jsonl
from eval_pipelines_tests.test_landing_sensor import tick

DAY = date(2026, 11, 20)


def test_every_skipped_path_is_listed_with_its_reason(tmp_path: Path):
    """Before: subfolders, other suffixes, non-date folders and out-of-range days were ignored without a word."""
    day_dir = tmp_path / DAY.isoformat()
    write_jsonl(day_dir / "a.jsonl", [event("a1")])
    write_jsonl(day_dir / "nested" / "b.jsonl", [event("b1")])
    (day_dir / "c.json").write_text("{}")
    (tmp_path / "misc").mkdir()
    (tmp_path / "stray.jsonl").write_text("{}")
    (tmp_path / "2019-01-01").mkdir()
    files, skipped = day_listing(tmp_path, DAY)
    assert [f.name for f in files] == ["a.jsonl"]
    reasons = {item.path: item.reason for item in skipped}
    assert set(reasons) == {f"{DAY}/nested", f"{DAY}/c.json"}
    assert reasons[f"{DAY}/nested"].startswith("subfolder")
    assert reasons[f"{DAY}/c.json"].startswith("unsupported file type")
    top = {item.path: item.reason for item in landing_root_skips(tmp_path, {DAY.isoformat()})}
    assert set(top) == {"misc", "stray.jsonl", "2019-01-01"}
    assert "outside the daily partitions" in top["2019-01-01"]
    assert "not a day" in top["misc"]


def materialise(project: Project, day: str = DAY.isoformat(),
                instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
    return dg.materialize([production_logs], partition_key=day, resources=project.resources(),
                          instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=False)


def test_the_asset_reports_skipped_paths_in_metadata(project: Project):
    write_jsonl(project.landing_dir / DAY.isoformat() / "a.jsonl", [event("a1")])
    (project.landing_dir / DAY.isoformat() / "notes.txt").write_text("x")
    (project.landing_dir / "archive").mkdir()
    instance = dg.DagsterInstance.ephemeral()
    result = materialise(project, instance=instance)
    assert result.success
    (materialization,) = result.asset_materializations_for_node("production_logs")
    assert materialization.metadata["paths_skipped"].value == 2
    table = materialization.metadata["skipped_paths"].value
    assert f"{DAY}/notes.txt" in table and "archive" in table
    warnings = [entry.user_message for entry in instance.all_logs(result.run_id)
                if entry.level == 30 and "landing path(s) skipped" in entry.user_message]
    assert warnings and warnings[0].startswith("2 landing path(s) skipped")


def test_a_removed_day_folder_keeps_its_data_and_an_empty_folder_retracts_it(project: Project):
    day_dir = project.landing_dir / DAY.isoformat()
    write_jsonl(day_dir / "a.jsonl", [event("a1"), event("a2")])
    assert materialise(project).success
    lake_file = project.root / "lake" / "production_logs" / f"{DAY}.parquet"
    assert pq.read_table(lake_file).num_rows == 2

    shutil.rmtree(day_dir)  # gone: the run fails on purpose and the data stays
    removed = materialise(project)
    assert not removed.success
    failure = removed.failure_data_for_node("production_logs")
    assert "landing folder of 2026-11-20 is gone" in failure.error.message
    assert pq.read_table(lake_file).num_rows == 2

    day_dir.mkdir()  # empty: an explicit retraction
    assert materialise(project).success
    assert pq.read_table(lake_file).num_rows == 0


def test_the_sensor_warns_on_a_removed_folder_and_retracts_an_emptied_one(project: Project):
    for day in ("2026-11-01", "2026-11-02"):
        write_jsonl(project.landing_dir / day / "a.jsonl", [event("a1", timestamp=f"{day}T10:00:00Z")])
    first = tick(project, None)
    shutil.rmtree(project.landing_dir / "2026-11-01")
    (project.landing_dir / "2026-11-02" / "a.jsonl").unlink()
    second = tick(project, first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["2026-11-02"]
    assert ":retracted:" in second.run_requests[0].run_key
    assert json.loads(second.cursor) == {}


def test_a_named_day_outside_the_partitions_is_an_error(project: Project, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]):
    """Before: `materialize 2019-01-01` dropped the day and said only 'no partition days to materialise'."""
    monkeypatch.setenv("DAGSTER_HOME", str(project.root / "dagster_home"))
    (project.root / "dagster_home").mkdir()
    monkeypatch.setenv("EVAL_PIPELINES_CONFIG", str(project.config_path))
    assert cli.main(["materialize", "2019-01-01"]) == 2
    error = capsys.readouterr().err
    assert "outside the daily partitions" in error and "2019-01-01" in error
