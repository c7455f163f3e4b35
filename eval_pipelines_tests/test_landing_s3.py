"""Object-store landing (issue 17 item 2) on a real S3-compatible server (moto in server mode, s3_server.py).

The landing sensor on a bucket sees new, unchanged, late and rewritten objects as it does files on disk; a bucket
too large for one tick is listed over several ticks from the cursor; the same files give the same lake partition
and warehouse rows from disk and from the store; credentials in storage_options are refused with their key path.
"""

from __future__ import annotations

import gzip
import io
import json
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
import yaml

from eval_pipelines.config import ConfigError, load_settings, parse_settings
from eval_pipelines.ingestion.assets import production_logs
from eval_pipelines.ingestion.landing import decode_cursor, decode_listing
from eval_pipelines.ingestion.location import StoreLanding, landing_for
from eval_pipelines.ingestion.readers import read_log_file
from eval_pipelines.ingestion.sensors import landing_sensor
from eval_pipelines.ingestion.store import ObjectLanding
from eval_pipelines.ingestion.tables import INGESTION_TABLES
from eval_pipelines_tests.conftest import Project
from eval_pipelines_tests.otlp_traces import otlp_json_line, record_spans
from eval_pipelines_tests.s3_server import S3Bucket
from eval_pipelines_tests.test_ingest import event, write_jsonl

DAY = date(2026, 11, 20)


def on_store(project: Project, bucket: S3Bucket, **source: Any) -> Project:
    """The project with its landing_dir on the bucket (``landing/`` prefix) and the server's endpoint."""
    config = yaml.safe_load(project.config_path.read_text())
    config["source"] = {**config["source"], "landing_dir": bucket.url(), "storage_options": bucket.storage_options,
                        **source}
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return Project(project.root, project.config_path, load_settings(project.config_path))


def tick(project: Project, cursor: str | None, instance: dg.DagsterInstance | None = None) -> dg.SensorResult:
    with dg.instance_for_test() as fresh:
        context = dg.build_sensor_context(cursor=cursor, instance=instance or fresh,
                                          resources={"project": project.resources()["project"]})
        return landing_sensor(context)


def requested(result: dg.SensorResult) -> list[str]:
    return [r.partition_key for r in result.run_requests or []]


def test_new_unchanged_late_and_rewritten_objects(project: Project, s3_bucket: S3Bucket):
    """The disk sensor tests (test_landing_sensor.py) on a bucket."""
    store = on_store(project, s3_bucket)
    s3_bucket.put("landing/2026-11-01/part-000.jsonl", '{"event_id": "x"}\n')
    s3_bucket.put("landing/2026-11-01/part-001.jsonl", '{"event_id": "y"}\n')
    s3_bucket.put("landing/dt=2026-11-02/part-000.csv", "event_id\nx\n")
    s3_bucket.put("landing/2026-11-03/README.txt", "not a log file")
    new = tick(store, None)
    assert [(r.partition_key, r.run_key.rsplit(":", 1)[0], r.job_name) for r in new.run_requests] == [
        ("2026-11-01", "production_logs:2026-11-01", "daily_chain"),
        ("2026-11-02", "production_logs:2026-11-02", "daily_chain")]
    assert set(decode_cursor(new.cursor)) == {"2026-11-01", "2026-11-02"}

    unchanged = tick(store, new.cursor)
    assert not unchanged.run_requests and unchanged.skip_reason is not None
    assert unchanged.cursor == new.cursor

    s3_bucket.put("landing/2026-11-01/late.jsonl", '{"event_id": "z"}\n')
    late = tick(store, new.cursor)
    assert requested(late) == ["2026-11-01"]
    old_key = next(r.run_key for r in new.run_requests if r.partition_key == "2026-11-01")
    assert late.run_requests[0].run_key != old_key

    s3_bucket.put("landing/dt=2026-11-02/part-000.csv", "event_id\nx\ny\n")  # same key, new content and ETag
    rewritten = tick(store, late.cursor)
    assert requested(rewritten) == ["2026-11-02"]


def test_the_sensor_fingerprint_is_the_one_the_asset_records(project: Project, s3_bucket: S3Bucket):
    """A day materialised from the bucket is not requested again for the same objects, and is after a late one."""
    store = on_store(project, s3_bucket)
    s3_bucket.put(f"landing/{DAY}/a.jsonl", f"{json.dumps(event('a1'))}\n{json.dumps(event('a2'))}\n")
    with dg.instance_for_test() as instance:
        assert dg.materialize([production_logs], partition_key=DAY.isoformat(), resources=store.resources(),
                              instance=instance).success
        first = tick(store, None, instance)
        assert requested(first) == [] and set(decode_cursor(first.cursor)) == {DAY.isoformat()}
        s3_bucket.put(f"landing/dt={DAY}/late.jsonl", json.dumps(event("a3")) + "\n")
        assert requested(tick(store, first.cursor, instance)) == [DAY.isoformat()]


def test_an_emptied_folder_retracts_the_day_and_a_removed_one_does_not(project: Project, s3_bucket: S3Bucket):
    store = on_store(project, s3_bucket)
    s3_bucket.put("landing/2026-11-01/a.jsonl", '{"event_id": "x"}\n')
    s3_bucket.put("landing/2026-11-02/a.jsonl", '{"event_id": "x"}\n')
    s3_bucket.put("landing/2026-11-01/", b"")  # the folder marker an S3 console's "create folder" writes
    first = tick(store, None)
    s3_bucket.delete("landing/2026-11-01/a.jsonl")  # emptied: the marker stays
    s3_bucket.delete("landing/2026-11-02/a.jsonl")  # removed: nothing of the folder is left
    second = tick(store, first.cursor)
    assert [r.run_key.rsplit(":", 1)[0] for r in second.run_requests] == ["production_logs:2026-11-01:retracted"]
    assert decode_cursor(second.cursor) == {}


def test_a_large_bucket_is_listed_over_ticks_with_bounded_calls(project: Project, s3_bucket: S3Bucket,
                                                               monkeypatch: pytest.MonkeyPatch):
    keys = [f"landing/2026-11-0{day}/part-{part}.jsonl" for day in (1, 2, 3) for part in range(3)]
    keys += ["landing/dt=2026-11-02/extra.jsonl"]
    for key in keys:
        s3_bucket.put(key, '{"event_id": "x"}\n')
    paged = on_store(project, s3_bucket, listing={"page_size": 3, "max_pages_per_tick": 1})
    calls: list[int] = []
    original = ObjectLanding.list_page

    def counted(self: ObjectLanding, prefix: str = "", after: str | None = None):
        objects, following = original(self, prefix, after)
        calls.append(len(objects))
        return objects, following

    monkeypatch.setattr(ObjectLanding, "list_page", counted)
    cursor, ticks, result = None, 0, None
    while True:
        calls.clear()
        result = tick(paged, cursor)
        ticks += 1
        assert len(calls) == 1 and max(calls) <= 3  # one bounded call per tick, never the whole bucket
        cursor = result.cursor
        if result.run_requests:
            break
        assert "continued next tick" in result.skip_reason.skip_message
        assert decode_listing(cursor) is not None
    assert ticks == 4  # 10 objects, 3 per page
    assert requested(result) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert decode_listing(cursor) is None  # the pass is complete: the next tick starts a new one
    monkeypatch.setattr(ObjectLanding, "list_page", original)
    # The fingerprints of the paged pass are those of one listing and of the asset's per-day listing.
    whole = landing_for(on_store(project, s3_bucket, listing={"page_size": 1000, "max_pages_per_tick": 20}).settings)
    assert isinstance(whole, StoreLanding)
    days = decode_cursor(cursor)
    assert days == whole.scan("auto").days
    assert days == {day: whole.day_fingerprint(date.fromisoformat(day), "auto") for day in days}


def test_a_missing_bucket_fails_the_tick_naming_the_location_and_the_fix(project: Project, s3_bucket: S3Bucket):
    missing = S3Bucket(s3_bucket.endpoint_url, f"{s3_bucket.name}-missing", s3_bucket.client)
    with pytest.raises(OSError) as failed:
        tick(on_store(project, missing), None)
    message = str(failed.value)
    assert f"listing s3://{missing.name}/landing failed" in message
    assert "client_kwargs.endpoint_url" in message and "AWS_ACCESS_KEY_ID" in message


def test_other_fsspec_stores_go_through_fsspec_listing(tmp_path: Path):
    """gs:// and az:// are not served here; fsspec's memory store stands for any non-S3 filesystem."""
    import fsspec

    memory = fsspec.filesystem("memory")
    root = f"/landing-{tmp_path.name}"
    memory.pipe({f"{root}/2026-11-01/a.jsonl": b'{"event_id": "x"}\n', f"{root}/2026-11-01/n.txt": b"x",
                 f"{root}/dt=2026-11-02/b.jsonl": b'{"event_id": "y"}\n'})
    landing = StoreLanding(ObjectLanding(f"memory://{root}"), max_pages_per_tick=5, tick_budget_seconds=5)
    days = landing.scan("auto").days
    assert days is not None and set(days) == {"2026-11-01", "2026-11-02"}
    assert days == {day: landing.day_fingerprint(date.fromisoformat(day), "auto") for day in days}
    files, skipped = landing.store.day_listing(date(2026, 11, 1), "auto")
    assert [item.name for item in files] == ["2026-11-01/a.jsonl"]
    assert [item.path for item in skipped] == ["2026-11-01/n.txt"]
    memory.pipe(f"{root}/2026-11-01/a.jsonl", b'{"event_id": "x"}\n{"event_id": "z"}\n')  # rewritten
    assert landing.scan("auto").days["2026-11-01"] != days["2026-11-01"]


def _landing_files(root: Path) -> None:
    """One day in every format, with broken lines, a duplicate, both folder spellings and paths that are skipped."""
    day_dir, dt_dir = root / DAY.isoformat(), root / f"dt={DAY.isoformat()}"
    write_jsonl(day_dir / "a.jsonl", [event("a1"), b'{"event_id": broken', event("a2", confidence=3.0),
                                      event("a3", segment="enterprise")])
    with gzip.open(day_dir / "b.jsonl.gz", "wt") as handle:
        handle.write("\n".join(json.dumps(event(f"b{i}", latency_ms=10.0 * i)) for i in range(120)) + "\n")
    dt_dir.mkdir(parents=True)
    pd.DataFrame([event("c1"), event("c2", user_action="edited", final_output="billing/low"), event("a1")]).to_parquet(
        dt_dir / "c.parquet")
    (dt_dir / "d.csv").write_text("event_id,timestamp,system,model_version,segment,ai_output,status,latency_ms,"
                                  "cost_usd\nd1,2026-11-20T11:00:00Z,triage,v1,smb,x,ok,5,0.1\nd2,bad\n"
                                  "d3,2026-11-20T12:00:00Z,triage,v1,smb,y,timeout,7,0.2\n")
    (day_dir / "notes.txt").write_text("not a log")
    write_jsonl(day_dir / "nested" / "e.jsonl", [event("e1")])


def _upload(root: Path, bucket: S3Bucket) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            bucket.put(f"landing/{path.relative_to(root).as_posix()}", path.read_bytes())


def _snapshot(project: Project) -> tuple[pd.DataFrame, dict[str, list[tuple]], dict[str, Any]]:
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([production_logs], partition_key=DAY.isoformat(), resources=project.resources(),
                            instance=instance)
    assert result.success
    (materialization,) = result.asset_materializations_for_node("production_logs")
    lake = pq.read_table(project.root / "lake" / "production_logs" / f"{DAY}.parquet").to_pandas()
    engine = sa.create_engine(project.warehouse_url)
    with engine.connect() as connection:
        rows = {table.name: sorted(tuple(row) for row in connection.execute(sa.select(table)))
                for table in INGESTION_TABLES}
    engine.dispose()
    metadata = {key: materialization.metadata[key].value for key in
                ("rows_read", "rows_valid", "rows_quarantined", "rows_duplicate", "paths_skipped", "skipped_paths",
                 "files")}
    return lake, rows, metadata


def test_the_same_files_give_the_same_partition_and_rows_from_disk_and_from_the_store(project: Project,
                                                                                      s3_bucket: S3Bucket):
    _landing_files(project.landing_dir)
    _upload(project.landing_dir, s3_bucket)
    disk_lake, disk_rows, disk_metadata = _snapshot(project)
    assert disk_metadata["rows_quarantined"] >= 2 and disk_metadata["rows_duplicate"] == 1  # the day is not trivial
    assert disk_metadata["paths_skipped"] == 2
    store_lake, store_rows, store_metadata = _snapshot(on_store(project, s3_bucket))  # same lake and warehouse
    pd.testing.assert_frame_equal(store_lake, disk_lake)
    assert store_rows == disk_rows
    assert store_metadata == disk_metadata


def test_every_reader_gives_the_same_rows_streamed_from_the_store(tmp_path: Path, s3_bucket: S3Bucket):
    def emit(tracer: Any) -> None:
        for index in range(3):
            with tracer.start_as_current_span("llm") as span:
                span.set_attribute("llm.model_name", f"m{index}")
                span.set_attribute("llm.token_count.prompt", 10 + index)

    line = otlp_json_line(record_spans("triage", emit))
    files = {"t.jsonl": f"{line}\nnot json\n{line}\n".encode(),
             "t.json.gz": gzip.compress(f"{line}\n".encode()),
             "p.parquet": _parquet_bytes(pd.DataFrame([event("p1"), event("p2")])),
             "c.csv.gz": gzip.compress(b"event_id,segment\nc1,smb\nc2\n"),
             "j.jsonl": b'{"event_id": "j1", "request": {"text": "hi"}}\n{"event_id": \n'}
    landing = ObjectLanding(s3_bucket.url("readers"), s3_bucket.storage_options)
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        s3_bucket.put(f"readers/{name}", data)
    for name in files:
        source_format = "otlp_json" if name.startswith("t.") else "auto"
        disk = read_log_file(tmp_path / name, source_format=source_format)
        store = read_log_file(PurePosixPath(name), source_format=source_format,
                              open_file=lambda name=name: landing.open(name))
        assert disk.error is None and store.error is None, (name, disk.error, store.error)
        assert len(disk.rows) > 0 and store.file_format == disk.file_format
        pd.testing.assert_frame_equal(store.rows, disk.rows)
        assert store.rejected == disk.rejected and store.rows_filtered == disk.rows_filtered
    assert len(read_log_file(tmp_path / "t.jsonl", source_format="otlp_json").rejected) == 1


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


def test_credentials_in_storage_options_are_refused_with_their_key_path():
    with pytest.raises(ConfigError) as refused:
        parse_settings({"source": {"landing_dir": "s3://logs/landing", "storage_options": {
            "key": "AKIAEXAMPLE", "client_kwargs": {"endpoint_url": "http://127.0.0.1:9000",
                                                    "aws_secret_access_key": "s3cr3t-value"},
            "connection_string": "AccountKey=abc"}}}, "cfg.yaml")
    message = str(refused.value)
    for key_path in ("source.storage_options.key", "source.storage_options.client_kwargs.aws_secret_access_key",
                     "source.storage_options.connection_string"):
        assert f"  - {key_path}: a credential" in message
    assert "AWS_ACCESS_KEY_ID" in message and message.startswith("cfg.yaml: credentials")
    assert "s3cr3t-value" not in message and "AKIAEXAMPLE" not in message and "abc" not in message
    # What is not a credential passes: an endpoint, a region, anonymous access.
    settings = parse_settings({"source": {"landing_dir": "s3://logs/landing", "storage_options": {
        "anon": False, "client_kwargs": {"endpoint_url": "http://127.0.0.1:9000", "region_name": "eu-west-1"}}}})
    assert settings.source.storage_options["client_kwargs"]["region_name"] == "eu-west-1"
    with pytest.raises(ConfigError, match="storage_options applies to an object-store landing_dir"):
        parse_settings({"source": {"landing_dir": "data/landing", "storage_options": {"anon": True}}})
