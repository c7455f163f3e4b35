"""The ingestion core on hostile input: nothing lost, every rejection explained, the good rows still land."""

from __future__ import annotations

import gzip
import json
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eval_pipelines.config import parse_settings
from eval_pipelines.ingestion import readers
from eval_pipelines.ingestion.ingest import (
    cross_day_duplicates,
    day_folder_date,
    ingest_files,
    ingest_frame,
    landing_files,
)
from eval_pipelines.ingestion.readers import read_log_file

DAY = date(2026, 11, 20)


def event(event_id: str, **changes) -> dict:
    base = {
        "event_id": event_id, "timestamp": "2026-11-20T10:00:00Z", "system": "triage", "model_version": "v1",
        "segment": "smb", "input_text": "my invoice is wrong", "ai_output": "billing/high", "confidence": 0.8,
        "latency_ms": 120.0, "cost_usd": 0.002, "status": "ok", "user_action": "accepted",
        "final_output": "billing/high", "decision_seconds": 7.5, "compliance_flag": False,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def write_jsonl(path: Path, lines: list[bytes | str | dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    chunks = [line if isinstance(line, bytes) else (json.dumps(line) if isinstance(line, dict) else line).encode()
              for line in lines]
    path.write_bytes(b"\n".join(chunks) + b"\n")


@pytest.fixture
def malformed_landing(tmp_path: Path) -> Path:
    day_dir = tmp_path / DAY.isoformat()
    write_jsonl(day_dir / "a.jsonl", [
        event("a1"),
        '{"event_id": "a2", "timestamp": ',                          # broken JSON line
        event("a3", latency_ms="fast"),                               # wrong type
        event("a4", latency_ms=...),                                  # missing required field
        event("a5", confidence=1.7),                                  # out of range
        event("a6", user_action="thumbs_up"),                          # unknown enum value
        event("a7", timestamp="2026-11-23T10:00:00Z"),                # outside the day
        event("a8", input_text="x" * 1_000_000),                      # a 1 MB text field
        event("a1", latency_ms=999.0),                                # duplicate of a1
        "",                                                           # blank line: not a row
        event("a9"),
    ])
    bad_utf8 = json.dumps(event("b1", input_text="PLACEHOLDER")).encode().replace(b"PLACEHOLDER", b"caf\xe9")
    write_jsonl(day_dir / "b.jsonl", [event("b0"), bad_utf8, event("b2")])
    with gzip.open(day_dir / "c.jsonl.gz", "wt") as handle:
        handle.write(json.dumps(event("c1")) + "\n" + json.dumps(event("a9")) + "\n")  # a9 duplicates across files
    (day_dir / "d.csv").write_text(
        "event_id,timestamp,system,model_version,segment,ai_output,latency_ms,cost_usd,status,complaint\n"
        "d1,2026-11-20T01:00:00Z,triage,v1,smb,billing/low,12,0.1,ok,yes\n"
        "d2,2026-11-20T01:00:00Z,triage,v1,smb\n"                        # missing columns
        "d3,2026-11-20T01:00:00Z,triage,v1,smb,billing/low,12,0.1,ok,maybe\n"
    )
    (day_dir / "e.parquet").write_bytes(b"this is not parquet")         # unreadable file
    pq.write_table(pa.Table.from_pylist([event("f1"), event("f2", status="exploded")]), day_dir / "f.parquet")
    (day_dir / "notes.txt").write_text("ignored: not a log file")
    return tmp_path


def test_malformed_set_loses_nothing_and_explains_every_rejection(malformed_landing: Path):
    settings = parse_settings({"source": {"max_text_chars": 100_000}})
    files = landing_files(malformed_landing, DAY)
    assert [f.name for f in files] == ["a.jsonl", "b.jsonl", "c.jsonl.gz", "d.csv", "e.parquet", "f.parquet"]
    result = ingest_files(files, settings, DAY, root=malformed_landing)

    assert result.rows_read == (result.rows_valid + result.rows_quarantined + result.rows_duplicate
                                + result.rows_conflicting)
    for report in result.files:
        assert report.rows_read == (report.rows_valid + report.rows_quarantined + report.rows_duplicate
                                    + report.rows_conflicting)
    assert result.rows_read == 10 + 3 + 2 + 3 + 2  # non-blank lines / CSV records / parquet rows of readable files
    assert sorted(result.valid["event_id"]) == ["a1", "a9", "b0", "b2", "c1", "d1", "f1"]
    # a9 twice with the same content: a duplicate; a1 twice with different latencies: a conflict, counted apart
    assert result.rows_duplicate == 1 and result.rows_conflicting == 1
    assert result.conflicts["event_id"].tolist() == ["a1"]
    assert result.valid.set_index("event_id").loc["a1", "latency_ms"] in (120.0, 999.0)
    assert bool(result.valid.set_index("event_id").loc["d1", "complaint"]) is True

    q = result.quarantined.set_index(["source_file", "line_number"])
    assert q["reason"].notna().all() and (q["reason"].str.len() > 10).all()
    expected = {
        ("2026-11-20/a.jsonl", 2): (None, "unparseable JSON"),
        ("2026-11-20/a.jsonl", 3): ("latency_ms", "expected a number, got 'fast'"),
        ("2026-11-20/a.jsonl", 4): ("latency_ms", "missing required field latency_ms"),
        ("2026-11-20/a.jsonl", 5): ("confidence", "out of range [0.0, 1.0]"),
        ("2026-11-20/a.jsonl", 6): ("user_action", "unknown value 'thumbs_up'"),
        ("2026-11-20/a.jsonl", 7): ("timestamp", "outside partition day 2026-11-20"),
        ("2026-11-20/a.jsonl", 8): ("input_text", "over the limit of 100,000; raise source.max_text_chars"),
        ("2026-11-20/b.jsonl", 2): (None, "non-UTF-8 bytes"),
        ("2026-11-20/d.csv", 3): (None, "wrong number of fields"),
        ("2026-11-20/d.csv", 4): ("complaint", "expected true/false, got 'maybe'"),
        ("2026-11-20/f.parquet", 2): ("status", "unknown value 'exploded'"),
    }
    assert set(q.index) == set(expected)
    for key, (field, fragment) in expected.items():
        assert q.loc[key, "field"] == field or (field is None and pd.isna(q.loc[key, "field"]))
        assert fragment in q.loc[key, "reason"], (key, q.loc[key, "reason"])
    assert q.loc[("2026-11-20/a.jsonl", 8), "raw_record"].count("x") >= 1_000_000  # the raw record is kept whole
    assert "caf\\xe9" in q.loc[("2026-11-20/b.jsonl", 2), "raw_record"]

    failed = [f for f in result.files if f.status == "failed"]
    assert [f.source_file for f in failed] == ["2026-11-20/e.parquet"]
    assert "Parquet" in failed[0].error
    assert result.files_failed == 1


def test_clean_jsonl_takes_the_vectorised_path(tmp_path: Path):
    path = tmp_path / "clean.jsonl"
    write_jsonl(path, [event(f"e{i}") for i in range(50)])
    read = read_log_file(path)
    assert not read.used_fallback and read.error is None and len(read.rows) == 50


def test_a_line_longer_than_a_parse_block_stays_on_the_vectorised_path(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(readers, "_JSON_BLOCK_BYTES", 1 << 16)
    path = tmp_path / "long-line.jsonl"
    write_jsonl(path, [event("e0"), event("e1", input_text="x" * 300_000), event("e2")])
    read = read_log_file(path)
    assert not read.used_fallback and read.error is None
    assert read.rows["event_id"].tolist() == ["e0", "e1", "e2"]
    assert read.rows["__line__"].tolist() == [1, 2, 3]


@pytest.mark.parametrize("gz", [False, True])
def test_blank_lines_send_a_file_to_the_line_reader_so_line_numbers_stay_true(tmp_path: Path, gz: bool):
    path = tmp_path / ("gaps.jsonl.gz" if gz else "gaps.jsonl")
    content = (json.dumps(event("e0")) + "\n\n" + json.dumps(event("e1")) + "\n").encode()
    path.write_bytes(gzip.compress(content) if gz else content)
    read = read_log_file(path)
    assert read.used_fallback
    assert read.rows["__line__"].tolist() == [1, 3]


def test_a_row_with_several_problems_is_quarantined_for_the_first_field_in_contract_order(monkeypatch):
    """Fields convert in parallel threads; segment is made to finish last, and its reason must still win."""
    from eval_pipelines.ingestion import conform as conform_module
    from eval_pipelines.ingestion.contract import FieldKind

    to_text = conform_module._CONVERTERS[FieldKind.STRING]

    def slow_segment(series, spec, settings, findings):
        if spec.name == "segment":
            time.sleep(0.3)
        return to_text(series, spec, settings, findings)

    monkeypatch.setitem(conform_module._CONVERTERS, FieldKind.STRING, slow_segment)
    row = event("many", segment=None, latency_ms="fast", status="exploded")
    frame = pd.DataFrame([row, event("ok")] * 50)
    frame.loc[frame["event_id"] == "ok", "event_id"] = [f"ok{i}" for i in range(50)]
    result = ingest_frame(frame, parse_settings({}), DAY, "frame")
    assert result.rows_quarantined == 50 and result.rows_valid == 50
    assert set(result.quarantined["field"]) == {"segment"}
    assert set(result.quarantined["reason"]) == {"missing required field segment (null or empty)"}


def test_text_limits_count_characters_not_bytes():
    frame = pd.DataFrame([event("at_limit", segment="語" * 256), event("over", segment="語" * 257)])
    result = ingest_frame(frame, parse_settings({}), DAY, "frame")
    assert result.valid["event_id"].tolist() == ["at_limit"]  # 768 bytes, 256 characters: a valid key
    (reason,) = result.quarantined["reason"]
    assert "segment is 257 characters, over the limit of 256" in reason


def test_foreign_log_format_by_config_alone(tmp_path: Path):
    """Other column names, nested JSON, epoch-ms timestamps, latency in seconds, another action vocabulary."""
    settings = parse_settings({
        "mapping": {
            "columns": {
                "event_id": "id", "timestamp": "meta.created_ms", "system": "meta.app", "model_version": "model.rev",
                "segment": "customer.plan", "input_text": "request.body", "ai_output": "response.label",
                "confidence": "response.score", "latency_ms": "perf.latency_s", "cost_usd": "perf.cost",
                "status": "outcome", "user_action": "review.verdict", "final_output": "review.final",
                "decision_seconds": "review.secs", "escalation": "flags.escalated", "channel": "customer.via",
            },
            "value_maps": {
                "user_action": {"ok": "accepted", "changed": "edited", "replaced": "overridden", "skip": "ignored"},
                "status": {"success": "ok", "fail": "error", "slow": "timeout"},
                "escalation": {"Y": "true", "N": "false"},
            },
            "scale": {"latency_ms": 1000},
            "timestamp_format": "epoch_ms",
        },
        "features": {"categorical": ["channel"]},
    })
    created = 1_795_136_400_000  # 2026-11-20T01:00:00Z in epoch milliseconds
    records = [
        {"id": 17, "meta": {"created_ms": created, "app": "claims"}, "model": {"rev": "r7"},
         "customer": {"plan": "gold", "via": "chat"}, "request": {"body": "call me on +49 30 1234567"},
         "response": {"label": "approve", "score": 0.91}, "perf": {"latency_s": 0.42, "cost": 0.01},
         "outcome": "success", "review": {"verdict": "replaced", "final": "deny", "secs": 33},
         "flags": {"escalated": "Y"}},
        {"id": 18, "meta": {"created_ms": created + 1000, "app": "claims"}, "model": {"rev": "r7"},
         "customer": {"plan": "gold", "via": "web"}, "request": {"body": "thanks"},
         "response": {"label": "deny", "score": 0.55}, "perf": {"latency_s": 1.5, "cost": 0.02},
         "outcome": "slow", "review": {"verdict": "ok", "final": "deny", "secs": 4}, "flags": {"escalated": "N"}},
    ]
    write_jsonl(tmp_path / "2026-11-20" / "export.jsonl", records)
    result = ingest_files(landing_files(tmp_path, DAY), settings, DAY, root=tmp_path)
    assert result.rows_quarantined == 0, result.quarantined["reason"].tolist()
    valid = result.valid.set_index("event_id")
    assert list(valid.index) == ["17", "18"]
    assert valid.loc["17", "timestamp"] == pd.Timestamp("2026-11-20T01:00:00Z")
    assert valid.loc["17", "latency_ms"] == pytest.approx(420.0)
    assert valid.loc["18", "latency_ms"] == pytest.approx(1500.0)
    assert valid["user_action"].tolist() == ["overridden", "accepted"]
    assert valid["status"].tolist() == ["ok", "timeout"]
    assert valid["escalation"].tolist() == [True, False]
    assert valid["segment"].tolist() == ["gold", "gold"]
    assert valid["channel"].tolist() == ["chat", "web"]
    assert valid["system"].tolist() == ["claims", "claims"]


@pytest.mark.parametrize(
    ("fmt", "value", "expected"),
    [
        ("iso8601", "2026-11-20T12:30:00+02:00", "2026-11-20T10:30:00Z"),
        ("iso8601", "2026-11-20 10:30:00", "2026-11-20T10:30:00Z"),
        ("epoch_s", 1_795_170_600, "2026-11-20T10:30:00Z"),
        ("epoch_ms", "1795170600000", "2026-11-20T10:30:00Z"),
        ("%d/%m/%Y %H:%M", "20/11/2026 10:30", "2026-11-20T10:30:00Z"),
    ],
)
def test_timestamp_formats(fmt: str, value: object, expected: str):
    settings = parse_settings({"mapping": {"timestamp_format": fmt}})
    result = ingest_frame(pd.DataFrame([event("t1", timestamp=value)]), settings, DAY, "frame")
    assert result.rows_quarantined == 0, result.quarantined["reason"].tolist()
    assert result.valid.loc[0, "timestamp"] == pd.Timestamp(expected)


@pytest.mark.parametrize("extra", [[], ["2026-11-20", "2026-11-20 23:59:59", "2026-11-20T10:00:00.123456789Z"]])
def test_iso8601_timestamps_read_as_pandas_reads_them(extra: list[str]):
    """The fast Arrow parse (full date-times with a zone) and the pandas fallback give pandas' instants."""
    values = ["2026-11-20T00:00:00.107Z", "2026-11-20T01:30:00+02:00", "2026-11-19T22:15:00-05:00",
              "2026-11-20T12:00:00.5+00:00", "2026-11-20T23:59:59.999999Z", *extra]
    frame = pd.DataFrame([event(f"t{i}", timestamp=value) for i, value in enumerate(values)])
    result = ingest_frame(frame, parse_settings({}), DAY, "frame")
    assert result.rows_quarantined == 0, result.quarantined["reason"].tolist()
    expected = pd.to_datetime(pd.Series(values), utc=True, format="ISO8601").dt.as_unit("us")  # stored in µs
    assert result.valid["timestamp"].tolist() == expected.tolist()


def test_the_fast_iso8601_parse_runs_on_zoned_values_and_keeps_the_frames_labels():
    from eval_pipelines.ingestion.conform import _iso8601_with_offsets

    text = pd.Series(["2026-11-20T02:00:00Z", "2026-11-20T03:00:00+01:00"], index=[5, 6], dtype="str")
    parsed = _iso8601_with_offsets(text)
    assert parsed is not None  # the Arrow path, not the pandas fallback
    assert parsed.index.tolist() == [5, 6]
    assert parsed.tolist() == [pd.Timestamp("2026-11-20T02:00:00Z"), pd.Timestamp("2026-11-20T02:00:00Z")]
    assert _iso8601_with_offsets(pd.Series(["2026-11-20"], dtype="str")) is None


@pytest.mark.parametrize("index", [[2, 3], [0, 1, 0, 1]])
def test_a_parquet_file_written_with_its_pandas_index_keeps_each_rows_timestamp(tmp_path: Path, index: list[int]):
    """A sliced or concatenated export stores its index; rows must keep their own values, not a relabelled copy."""
    rows = [event(f"e{i}", timestamp=f"2026-11-20T{i:02d}:00:00Z") for i in range(len(index))]
    frame = pd.DataFrame(rows, index=index)
    day_dir = tmp_path / DAY.isoformat()
    day_dir.mkdir()
    frame.to_parquet(day_dir / "export.parquet")  # pandas keeps a non-range index in the file
    result = ingest_files(landing_files(tmp_path, DAY), parse_settings({}), DAY, root=tmp_path)
    assert result.rows_quarantined == 0, result.quarantined["reason"].tolist()
    stamps = dict(zip(result.valid["event_id"], result.valid["timestamp"], strict=True))
    assert stamps == {f"e{i}": pd.Timestamp(f"2026-11-20T{i:02d}:00:00Z") for i in range(len(index))}


def test_a_parquet_file_with_its_ids_as_the_pandas_index_keeps_them(tmp_path: Path):
    frame = pd.DataFrame([event("e0"), event("e1")]).set_index("event_id")
    day_dir = tmp_path / DAY.isoformat()
    day_dir.mkdir()
    frame.to_parquet(day_dir / "indexed.parquet")
    result = ingest_files(landing_files(tmp_path, DAY), parse_settings({}), DAY, root=tmp_path)
    assert result.rows_quarantined == 0, result.quarantined["reason"].tolist()
    assert result.valid["event_id"].tolist() == ["e0", "e1"]
    assert result.valid["source_line"].tolist() == [1, 2]


def test_an_unparseable_iso8601_timestamp_is_quarantined_and_the_rest_land():
    frame = pd.DataFrame([event("good", timestamp="2026-11-20T01:00:00Z"), event("bad", timestamp="20th Nov")])
    result = ingest_frame(frame, parse_settings({}), DAY, "frame")
    assert result.valid["event_id"].tolist() == ["good"]
    assert result.quarantined["reason"].str.contains("unparseable timestamp '20th Nov'").all()


def test_empty_day_gives_an_empty_canonical_frame():
    result = ingest_files([], parse_settings({}), DAY)
    assert result.rows_read == 0 and result.rows_valid == 0 and result.quarantine_rate == 0.0
    assert "event_id" in result.valid.columns and "source_line" in result.valid.columns


def test_day_folder_names():
    assert day_folder_date("2026-11-20") == date(2026, 11, 20)
    assert day_folder_date("dt=2026-11-20") == date(2026, 11, 20)
    assert day_folder_date("2026-13-40") is None
    assert day_folder_date("latest") is None


def test_csv_with_non_utf8_bytes_keeps_its_good_rows_and_line_numbers(tmp_path: Path):
    header = "event_id,timestamp,system,model_version,segment,ai_output,latency_ms,cost_usd,status"
    good = "{},2026-11-20T01:00:00Z,triage,v1,smb,billing/low,12,0.1,ok"
    lines = [header.encode(), good.format("k1").encode(), good.format("k2").encode().replace(b"smb", b"sm\xff"),
             good.format("k3").encode()]
    day_dir = tmp_path / DAY.isoformat()
    day_dir.mkdir()
    (day_dir / "x.csv").write_bytes(b"\n".join(lines) + b"\n")
    result = ingest_files(landing_files(tmp_path, DAY), parse_settings({}), DAY, root=tmp_path)
    assert result.valid["event_id"].tolist() == ["k1", "k3"]
    assert result.valid["source_line"].tolist() == [2, 4]
    (quarantined,) = result.quarantined.to_dict("records")
    assert quarantined["line_number"] == 3 and "non-UTF-8" in quarantined["reason"]
    assert result.rows_read == 3


def test_csv_with_quoted_newlines_and_bad_rows_keeps_physical_line_numbers(tmp_path: Path):
    header = "event_id,timestamp,system,model_version,segment,input_text,ai_output,latency_ms,cost_usd,status"
    row = "{},2026-11-20T01:00:00Z,triage,v1,smb,{},billing/low,{},0.1,ok"
    lines = [
        header,
        'e1,2026-11-20T01:00:00Z,triage,v1,smb,"first line',  # a quoted value over lines 2-4
        "second line",
        'third line",billing/low,12,0.1,ok',
        "e2,2026-11-20T01:00:00Z,triage,v1,smb",   # too few fields: line 5
        row.format("e3", "plain", "-4"),           # invalid value: line 6
        'e4,2026-11-20T01:00:00Z,triage,v1,smb,"multi',  # starts on line 7
        'line",billing/low,12,0.1,ok',
        row.format("e5", "plain", "12"),           # line 9
    ]
    day_dir = tmp_path / DAY.isoformat()
    day_dir.mkdir()
    (day_dir / "x.csv").write_text("\n".join(lines) + "\n")
    result = ingest_files(landing_files(tmp_path, DAY), parse_settings({}), DAY, root=tmp_path)
    assert result.valid[["event_id", "source_line"]].values.tolist() == [["e1", 2], ["e4", 7], ["e5", 9]]
    assert result.valid.loc[0, "input_text"] == "first line\nsecond line\nthird line"
    assert result.quarantined[["line_number", "field"]].values.tolist() == [[5, None], [6, "latency_ms"]]
    assert "wrong number of fields: expected 10, got 5" in result.quarantined.loc[0, "reason"]
    assert result.quarantined["line_number"].is_unique
    assert result.rows_read == result.rows_valid + result.rows_quarantined == 5


def test_identifiers_longer_than_a_warehouse_key_are_quarantined():
    long_segment = "s" * 300
    frame = pd.DataFrame([event("ok1"), event("long1", segment=long_segment), event("ok2", input_text="x" * 5000)])
    result = ingest_frame(frame, parse_settings({}), DAY, "frame")
    assert result.valid["event_id"].tolist() == ["ok1", "ok2"]  # long free text is fine, long keys are not
    (reason,) = result.quarantined["reason"]
    assert "segment is 300 characters, over the limit of 256" in reason


def _id_times(*pairs: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"event_id": [p[0] for p in pairs],
                         "timestamp": pd.to_datetime([p[1] for p in pairs], utc=True)})


def test_cross_day_duplicates_compare_only_what_can_be_valid_in_both_days():
    day = date(2026, 11, 20)
    ours = _id_times(("a", "2026-11-20T00:10:00Z"), ("b", "2026-11-20T12:00:00Z"), ("c", "2026-11-20T23:55:00Z"),
                     ("d", "2026-11-21T00:20:00Z"))
    before = _id_times(("a", "2026-11-19T23:59:00Z"), ("b", "2026-11-19T12:00:00Z"))  # b: far from midnight
    after = _id_times(("c", "2026-11-20T23:55:00Z"), ("d", "2026-11-21T00:20:00Z"), ("a", "2026-11-21T00:05:00Z"))
    found = cross_day_duplicates(day, ours, {date(2026, 11, 19): before, date(2026, 11, 21): after}, 60)
    assert found.event_ids == {date(2026, 11, 19): ["a"], date(2026, 11, 21): ["c", "d"]}
    assert found.total == 3 and found.not_ingested == ()
    # Without tolerance no event can be valid in two days; a neighbour not ingested yet is reported as such.
    none = cross_day_duplicates(day, ours, {date(2026, 11, 19): before, date(2026, 11, 21): None}, 0)
    assert none.total == 0 and none.not_ingested == (date(2026, 11, 21),)
