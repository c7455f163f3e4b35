"""landing_sensor through build_sensor_context: new, unchanged, late files, and a cursor that stays small."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import dagster as dg

from eval_pipelines.ingestion.landing import decode_cursor, encode_cursor, scan_landing
from eval_pipelines.ingestion.sensors import landing_sensor
from eval_pipelines_tests.conftest import Project


def tick(project: Project, cursor: str | None) -> dg.SensorResult:
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(cursor=cursor, instance=instance,
                                          resources={"project": project.resources()["project"]})
        return landing_sensor(context)


def drop(project: Project, day: str, name: str, content: str = '{"event_id": "x"}\n') -> Path:
    path = project.landing_dir / day / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


def test_new_files_request_one_run_per_day(project: Project):
    drop(project, "2026-11-01", "part-000.jsonl")
    drop(project, "2026-11-01", "part-001.jsonl")
    drop(project, "dt=2026-11-02", "part-000.csv", "event_id\nx\n")
    drop(project, "2026-11-03", "README.txt", "not a log file")
    result = tick(project, None)
    assert [(r.partition_key, r.run_key.rsplit(":", 1)[0]) for r in result.run_requests] == [
        ("2026-11-01", "production_logs:2026-11-01"), ("2026-11-02", "production_logs:2026-11-02")]
    # issue 14: each request is the day's whole chain as one named run
    assert {r.job_name for r in result.run_requests} == {"daily_chain"}
    assert set(decode_cursor(result.cursor)) == {"2026-11-01", "2026-11-02"}


def test_unchanged_state_requests_nothing(project: Project):
    drop(project, "2026-11-01", "part-000.jsonl")
    first = tick(project, None)
    second = tick(project, first.cursor)
    assert second.run_requests == [] or second.run_requests is None
    assert second.skip_reason is not None
    assert second.cursor == first.cursor


def test_a_late_file_reruns_only_its_day_with_a_new_run_key(project: Project):
    drop(project, "2026-11-01", "part-000.jsonl")
    drop(project, "2026-11-02", "part-000.jsonl")
    first = tick(project, None)
    drop(project, "2026-11-01", "late.jsonl")
    second = tick(project, first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["2026-11-01"]
    old_key = next(r.run_key for r in first.run_requests if r.partition_key == "2026-11-01")
    assert second.run_requests[0].run_key != old_key


def test_a_rewritten_file_counts_as_changed(project: Project):
    path = drop(project, "2026-11-01", "part-000.jsonl")
    first = tick(project, None)
    path.write_text('{"event_id": "x"}\n{"event_id": "y"}\n')
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert [r.partition_key for r in tick(project, first.cursor).run_requests] == ["2026-11-01"]


def test_days_outside_the_partitions_are_not_requested_nor_remembered(project: Project):
    drop(project, "2019-01-01", "old.jsonl")  # before partitions.start_date
    result = tick(project, None)
    assert not result.run_requests
    assert decode_cursor(result.cursor) == {}


def test_cursor_grows_with_days_not_files(project: Project):
    for day in range(1, 31):
        for part in range(40):
            drop(project, f"2026-10-{day:02d}", f"part-{part:03d}.jsonl")
    state = scan_landing(project.landing_dir)
    cursor = encode_cursor(state)
    assert len(state) == 30
    assert len(cursor) < 30 * 32  # ~27 bytes per day, independent of the 1,200 files
    assert decode_cursor(cursor) == state
    assert decode_cursor("not json") == {}


def test_days_already_materialised_from_the_same_files_are_not_rerun(project: Project):
    from eval_pipelines.demo.generator import generate_logs
    from eval_pipelines.ingestion.assets import production_logs

    generate_logs(project.landing_dir, days=2, events_per_day=50, seed=3, start_date=date(2026, 10, 1))
    with dg.instance_for_test() as instance:
        assert dg.materialize([production_logs], partition_key="2026-10-01", resources=project.resources(),
                              instance=instance).success
        context = dg.build_sensor_context(instance=instance, resources={"project": project.resources()["project"]})
        result = landing_sensor(context)
        assert [r.partition_key for r in result.run_requests] == ["2026-10-02"]
        assert set(decode_cursor(result.cursor)) == {"2026-10-01", "2026-10-02"}
        drop(project, "2026-10-01", "late.jsonl")  # new data for the ingested day: now it must run again
        context = dg.build_sensor_context(cursor=result.cursor, instance=instance,
                                          resources={"project": project.resources()["project"]})
        assert [r.partition_key for r in landing_sensor(context).run_requests] == ["2026-10-01"]
